import Foundation
import HeraldPluginHost

/// Who is told, on which channel and when: members, teams, services and their escalation rules,
/// as `herald.yaml` declares them.
///
/// ```yaml
/// members:
///   - name: ann
///     email: ann@example.com
///     phone: "+8613800000001"
///     preferences: {critical: [aliyun-voice, email], warning: [email]}   # integration names
/// teams:
///   - {name: dba, members: [ann, bob]}
/// services:
///   - name: db                   # alerts name it in `service`; others use `default`
///     rules:                     # top to bottom, first match wins
///       - name: prod-critical
///         when:                  # OR of AND groups; omitted: always
///           - severity: [critical]
///             labels: {env: {in: [prod]}, team: {not_in: [test]}}
///             title: {contains: disk}
///         time_window: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00", timezone: Asia/Shanghai}
///         delay_seconds: 0       # nothing is sent if the incident closes within it
///         levels:
///           - members: [ann]
///             teams: [dba]
///             emails: [oncall@example.com]
///             direct: follow_preference          # or {critical: [aliyun-sms], warning: [email]}
///             group_chats: [ops-feishu]
///             timeout_minutes: 30               # 0..720; escalate when not acknowledged
///             force: false                      # escalate when not closed, even if acknowledged
///             repeat: {times: 2, interval_minutes: 5}
/// ```
public struct EscalationPolicy: Sendable {
    public struct Person: Sendable, Equatable {
        public var member: Member
        /// Integration names by severity, for levels that follow personal preferences.
        public var preferences: [Severity: [String]]
    }

    public struct Team: Sendable, Equatable {
        public var name: String
        public var members: [String]
    }

    public enum LabelTest: Sendable, Equatable {
        case isIn([String]), notIn([String])
        func matches(_ value: String?) -> Bool {
            switch self {
            case .isIn(let values): value.map(values.contains) ?? false
            case .notIn(let values): !(value.map(values.contains) ?? false)
            }
        }
    }

    /// An AND group: every given test must hold.
    public struct Condition: Sendable, Equatable {
        public var severities: [Severity] = []
        public var titleContains: [String] = []
        public var labels: [String: LabelTest] = [:]

        func matches(_ incident: Incident) -> Bool {
            (severities.isEmpty || severities.contains(incident.severity))
                && titleContains.allSatisfy { incident.title.localizedCaseInsensitiveContains($0) }
                && labels.allSatisfy { $0.value.matches(incident.labels[$0.key]) }
        }
    }

    /// Weekly hours in a time zone; the rule applies only inside them.
    public struct TimeWindow: Sendable, Equatable {
        /// 1 = Sunday ... 7 = Saturday (Calendar's numbering).
        public var weekdays: Set<Int>
        /// Minutes after midnight; `to` may be below `from` for a window over midnight.
        public var from: Int
        public var to: Int
        public var timeZone: TimeZone

        func contains(_ date: Date) -> Bool {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
            let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
            let weekday = parts.weekday ?? 1
            if from <= to { return weekdays.contains(weekday) && minute >= from && minute < to }
            // Over midnight: the early part belongs to the previous day's window.
            if minute >= from { return weekdays.contains(weekday) }
            let previous = weekday == 1 ? 7 : weekday - 1
            return minute < to && weekdays.contains(previous)
        }
    }

    public enum DirectChannels: Sendable, Equatable {
        case none
        /// Each member's own per-severity choice.
        case followPreference
        /// The same integrations for every target, by severity.
        case unified([Severity: [String]])
    }

    public struct Level: Sendable, Equatable {
        public var members: [String] = []
        public var teams: [String] = []
        public var emails: [String] = []
        public var direct: DirectChannels = .none
        public var groupChats: [String] = []
        /// 0...720; 0: never escalate from this level.
        public var timeoutMinutes: Int = 30
        public var force = false
        /// 0...6 repeats every `repeatIntervalMinutes` (0.5...120).
        public var repeatTimes = 0
        public var repeatIntervalMinutes: Double = 5
    }

    public struct Rule: Sendable, Equatable {
        public var name: String
        /// OR of AND groups; empty: always.
        public var when: [Condition] = []
        public var timeWindow: TimeWindow?
        /// 0...3600.
        public var delaySeconds: Int = 0
        public var levels: [Level]

        public func matches(_ incident: Incident, at date: Date) -> Bool {
            (when.isEmpty || when.contains { $0.matches(incident) }) && (timeWindow?.contains(date) ?? true)
        }
    }

    public struct Service: Sendable, Equatable {
        public var name: String
        public var rules: [Rule]
    }

    public var people: [String: Person] = [:]
    public var teams: [String: Team] = [:]
    public var services: [String: Service] = [:]

    public init() {}

    /// The first rule of the incident's service (or `default`) that matches.
    public func rule(for incident: Incident, at date: Date) -> Rule? {
        let service = services[incident.service] ?? services["default"]
        return service?.rules.first { $0.matches(incident, at: date) }
    }

    public func rule(named name: String, service: String) -> Rule? {
        (services[service] ?? services["default"])?.rules.first { $0.name == name }
    }

    /// A level's people: its members, then its teams' members, each once, in order.
    public func people(of level: Level) -> [Person] {
        var seen: Set<String> = []
        var result: [Person] = []
        for name in level.members + level.teams.flatMap({ teams[$0]?.members ?? [] }) where seen.insert(name).inserted {
            if let person = people[name] { result.append(person) }
        }
        return result
    }

    /// The member a platform identity belongs to ("mobile:+86...", "email:...", or a name).
    public func person(matching actor: String) -> Person? {
        if let person = people[actor] { return person }
        let parts = actor.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        let value = parts[1]
        switch parts[0] {
        case "mobile", "phone":
            let digits = { (s: String) in s.filter(\.isNumber) }
            let wanted = digits(value)
            return people.values.first { p in
                let mine = digits(p.member.phone)
                return !mine.isEmpty && (mine == wanted || mine.hasSuffix(wanted) && wanted.count >= 7 || wanted.hasSuffix(mine) && mine.count >= 7)
            }
        case "email": return people.values.first { $0.member.email.lowercased() == value.lowercased() }
        default: return people[value]
        }
    }
}
