import Foundation
import HeraldPluginHost

/// What the renderer knows about an incident when it renders one message: plain values, no
/// references into the store. Every string here is untrusted data (it came from an alert or a
/// person) and is escaped for the plugin's text format before it reaches a template's output.
public struct IncidentSnapshot: Sendable, Equatable {
    public struct Label: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public var id: String
    public var number: UInt64
    public var title: String
    public var description: String
    public var severity: Severity
    public var status: IncidentStatus
    public var event: MessageEvent
    public var labels: [Label]
    public var startedAt: Date?
    public var acknowledgedAt: Date?
    public var closedAt: Date?
    /// Display names of the people the incident is assigned to.
    public var assignees: [String]
    public var alertCount: Int
    public var links: [MessageLink]
    /// Already resolved (see `MentionResolver`).
    public var mentions: [Mention]

    public init(id: String, number: UInt64 = 0, title: String, description: String = "", severity: Severity = .warning,
                status: IncidentStatus = .triggered, event: MessageEvent = .fire, labels: [Label] = [],
                startedAt: Date? = nil, acknowledgedAt: Date? = nil, closedAt: Date? = nil, assignees: [String] = [],
                alertCount: Int = 1, links: [MessageLink] = [], mentions: [Mention] = []) {
        self.id = id
        self.number = number
        self.title = title
        self.description = description
        self.severity = severity
        self.status = status
        self.event = event
        self.labels = labels
        self.startedAt = startedAt
        self.acknowledgedAt = acknowledgedAt
        self.closedAt = closedAt
        self.assignees = assignees
        self.alertCount = alertCount
        self.links = links
        self.mentions = mentions
    }

    /// A snapshot with every field and list filled, used to check templates at load time.
    public static let sample = IncidentSnapshot(
        id: "inc-sample", number: 118, title: "Disk almost full on db-1", description: "92% used on /var",
        severity: .critical, status: .acknowledged, event: .refire,
        labels: [Label("host", "db-1"), Label("service", "postgres")],
        startedAt: Date(timeIntervalSince1970: 1_700_000_000), acknowledgedAt: Date(timeIntervalSince1970: 1_700_000_060),
        closedAt: Date(timeIntervalSince1970: 1_700_000_120), assignees: ["Ann Lee", "Bob Wu"], alertCount: 3,
        links: [MessageLink(kind: .view, label: "View", url: "https://herald.example.com/i/1"),
                MessageLink(kind: .acknowledge, label: "Acknowledge", url: "https://herald.example.com/a/1"),
                MessageLink(kind: .snooze, label: "Snooze", url: "https://herald.example.com/s/1"),
                MessageLink(kind: .close, label: "Close", url: "https://herald.example.com/c/1")],
        mentions: [Mention(displayName: "Ann Lee", id: "ou_1", idKind: "open_id")])

    /// A snapshot with every optional field and list empty.
    public static let minimal = IncidentSnapshot(id: "inc-sample", title: "Disk almost full on db-1")
}
