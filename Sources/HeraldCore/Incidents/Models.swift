import Foundation
import HeraldPluginHost

// The records Herald keeps: incidents, the alerts merged into them, their timeline, the outbox
// of notifications and the escalation timers. Plain values; `IncidentStore` persists them.

/// What an alert source asks for.
public enum AlertAction: String, Sendable, CaseIterable {
    case trigger, acknowledge, resolve
}

/// One alert, normalised from the native event API or an Alertmanager webhook.
public struct AlertEvent: Sendable, Equatable {
    public var action: AlertAction
    /// Alerts with the same key update one open incident.
    public var dedupKey: String
    public var title: String
    public var description: String
    public var severity: Severity
    public var labels: [String: String]
    /// The service whose escalation rules apply; empty: the `default` service.
    public var service: String
    /// "api", "alertmanager"...
    public var source: String

    public init(action: AlertAction = .trigger, dedupKey: String, title: String, description: String = "",
                severity: Severity = .warning, labels: [String: String] = [:], service: String = "", source: String = "api") {
        self.action = action
        self.dedupKey = dedupKey
        self.title = title
        self.description = description
        self.severity = severity
        self.labels = labels
        self.service = service
        self.source = source
    }
}

public struct Incident: Sendable, Equatable {
    public var id: String
    public var number: Int64
    public var dedupKey: String
    public var service: String
    public var title: String
    public var description: String
    public var severity: Severity
    public var status: IncidentStatus
    public var labels: [String: String]
    public var alertCount: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var acknowledgedAt: Date?
    public var resolvedAt: Date?
    public var closedAt: Date?
    /// Set while an acknowledged incident is snoozed.
    public var snoozedUntil: Date?
    /// Members who acknowledged it (unacknowledge removes one; triggered again when none is left).
    public var acknowledgedBy: [String]
    /// The escalation rule that matched, and the level reached (0-based); nil when none matched.
    public var rule: String?
    public var level: Int
    /// Bumped each time escalation (re)starts; timers of an older generation are ignored.
    public var escalationGeneration: Int

    public var isOpen: Bool { status == .triggered || status == .acknowledged }

    public init(id: String, number: Int64, dedupKey: String, service: String, title: String, description: String, severity: Severity,
                status: IncidentStatus, labels: [String: String], alertCount: Int, createdAt: Date, updatedAt: Date,
                acknowledgedAt: Date? = nil, resolvedAt: Date? = nil, closedAt: Date? = nil, snoozedUntil: Date? = nil,
                acknowledgedBy: [String], rule: String?, level: Int, escalationGeneration: Int) {
        self.id = id
        self.number = number
        self.dedupKey = dedupKey
        self.service = service
        self.title = title
        self.description = description
        self.severity = severity
        self.status = status
        self.labels = labels
        self.alertCount = alertCount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.acknowledgedAt = acknowledgedAt
        self.resolvedAt = resolvedAt
        self.closedAt = closedAt
        self.snoozedUntil = snoozedUntil
        self.acknowledgedBy = acknowledgedBy
        self.rule = rule
        self.level = level
        self.escalationGeneration = escalationGeneration
    }
}

/// Enums stored and shown by their names ("critical", "acknowledged", "refire").
public protocol NamedCase: CaseIterable, CustomStringConvertible {}

extension NamedCase {
    public init?(name: String) {
        guard let value = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = value
    }
}

extension IncidentStatus: NamedCase {}
extension MessageEvent: NamedCase {}

/// One line of an incident's history.
public struct TimelineEntry: Sendable, Equatable {
    public var incidentID: String
    public var at: Date
    /// "triggered", "alert", "acknowledged", "notified", "delivery_failed", "escalated"...
    public var kind: String
    /// Who did it: a member name, "alertmanager", "system".
    public var actor: String
    public var detail: String

    public init(incidentID: String, at: Date, kind: String, actor: String = "system", detail: String) {
        self.incidentID = incidentID
        self.at = at
        self.kind = kind
        self.actor = actor
        self.detail = detail
    }
}

/// An outbox row (a notification): one message to one destination, delivered at least once.
public struct OutboxEntry: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Waiting for `nextAttemptAt`.
        case pending
        /// A dispatcher holds it until `leaseUntil`; after that it is pending again.
        case leased
        case delivered
        /// Given up: the last attempt failed, or the failure was permanent. `lastError` says why.
        case dead
        /// Folded into another row's summary (`mergedInto`) because its destination was saturated.
        case merged
        /// Made moot before it was sent (the incident was acknowledged or closed).
        case cancelled
    }

    public var id: Int64?
    /// Unique; the plugin receives it as the message's idempotency key.
    public var idempotencyKey: String
    public var incidentID: String
    public var integration: String
    /// Destination within the integration (phone, email, chat id); empty: the configured one.
    public var recipient: String
    /// The member this is for (direct messages); empty for group chats.
    public var member: String
    public var event: MessageEvent
    /// Escalation level (0-based) it belongs to; -1 for status updates.
    public var level: Int
    public var state: State
    public var attempts: Int
    public var createdAt: Date
    public var nextAttemptAt: Date
    public var leaseUntil: Date?
    public var deliveredAt: Date?
    public var lastError: String?
    public var providerID: String?
    public var mergedInto: Int64?
    /// Rendering notes (template error, truncation, unresolved mentions).
    public var notes: String?

    public init(idempotencyKey: String, incidentID: String, integration: String, recipient: String = "", member: String = "",
                event: MessageEvent, level: Int, createdAt: Date) {
        self.idempotencyKey = idempotencyKey
        self.incidentID = incidentID
        self.integration = integration
        self.recipient = recipient
        self.member = member
        self.event = event
        self.level = level
        self.state = .pending
        self.attempts = 0
        self.createdAt = createdAt
        self.nextAttemptAt = createdAt
    }

    /// Where it goes, for rate limits and merging.
    public var destination: String { recipient.isEmpty ? integration : "\(integration)/\(recipient)" }
}

/// A durable escalation timer. Firing deletes the row in the same transaction as its effects,
/// so a restart neither loses nor repeats one.
public struct EscalationTimer: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The rule's delay window ended: notify level 0 if the incident is still open.
        case delayEnd = "delay_end"
        /// Loop notification: notify the current level again.
        case repeatLevel = "repeat"
        /// Escalation timeout: climb to the next level.
        case escalate
        /// A snooze ended: back to triggered, escalation restarts.
        case snoozeEnd = "snooze_end"
    }
    public var id: Int64?
    public var incidentID: String
    public var kind: Kind
    public var dueAt: Date
    public var level: Int
    /// For `repeatLevel`: how many repeats are left after this one.
    public var remaining: Int
    public var generation: Int

    public init(incidentID: String, kind: Kind, dueAt: Date, level: Int = 0, remaining: Int = 0, generation: Int) {
        self.incidentID = incidentID
        self.kind = kind
        self.dueAt = dueAt
        self.level = level
        self.remaining = remaining
        self.generation = generation
    }
}

/// How a person or system acts on an incident.
public enum IncidentAction: Sendable, Equatable {
    case acknowledge
    case unacknowledge
    /// 1...1440 minutes; only after acknowledge.
    case snooze(minutes: Int)
    case resolve
    case close
    case reopen
    /// Nothing changes; the note goes on the timeline (a missed call, a wrong key).
    case note(String)

    public var name: String {
        switch self {
        case .acknowledge: "acknowledge"
        case .unacknowledge: "unacknowledge"
        case .snooze: "snooze"
        case .resolve: "resolve"
        case .close: "close"
        case .reopen: "reopen"
        case .note: "note"
        }
    }
}

/// Filters for listing incidents.
public struct IncidentQuery: Sendable {
    public var statuses: [IncidentStatus]
    public var limit: Int
    /// Incidents with a number below this (for paging, newest first).
    public var before: Int64?
    public init(statuses: [IncidentStatus] = [], limit: Int = 50, before: Int64? = nil) {
        self.statuses = statuses
        self.limit = limit
        self.before = before
    }
}
