import Crypto
import Foundation
import HeraldPluginHost
import Logging
import Metrics

/// An action the incident's state does not allow, or an incident that does not exist.
public struct IncidentError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable { case notFound, conflict, invalid }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// What the service needs to know about an integration to route to it.
public struct RouteTarget: Sendable, Equatable {
    public var kind: ChannelKind
    /// Group chats that were told about an incident hear these later events (empty: all).
    public var updateEvents: Set<MessageEvent>
    /// ...for incidents of these severities (empty: all).
    public var updateSeverities: Set<Severity>

    public init(kind: ChannelKind, updateEvents: Set<MessageEvent> = [], updateSeverities: Set<Severity> = []) {
        self.kind = kind
        self.updateEvents = updateEvents
        self.updateSeverities = updateSeverities
    }

    func wantsUpdate(_ event: MessageEvent, severity: Severity) -> Bool {
        (updateEvents.isEmpty || updateEvents.contains(event)) && (updateSeverities.isEmpty || updateSeverities.contains(severity))
    }
}

/// Alerts in, incidents out: deduplication, the incident state machine and escalation, each
/// change one store transaction together with the notifications and timers it causes.
public final class IncidentService: Sendable {
    public struct IngestResult: Sendable {
        public var incident: Incident
        /// False when the alert updated an open incident with the same dedup key.
        public var created: Bool
    }

    public let store: any IncidentStore
    public let policy: EscalationPolicy
    public let targets: [String: RouteTarget]
    let clock: @Sendable () -> Date
    let logger: Logger
    /// Called after a transaction that queued notifications, so the dispatcher wakes.
    let onQueued: @Sendable () -> Void

    public init(store: any IncidentStore, policy: EscalationPolicy, targets: [String: RouteTarget],
                clock: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "herald.incidents"),
                onQueued: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.policy = policy
        self.targets = targets
        self.clock = clock
        self.logger = logger
        self.onQueued = onQueued
    }

    // MARK: Alerts

    /// Stores the alert and applies it: a trigger opens an incident (or merges into the open one
    /// with its dedup key); acknowledge and resolve act on the open one. Returns once durable.
    public func ingest(_ event: AlertEvent) async throws -> IngestResult {
        let now = clock()
        let result = try await store.write { [self] tx in
            if var incident = try tx.openIncident(dedupKey: event.dedupKey) {
                try tx.recordAlert(event, incidentID: incident.id, at: now)
                switch event.action {
                case .trigger:
                    incident.alertCount += 1
                    incident.updatedAt = now
                    if !event.description.isEmpty { incident.description = event.description }
                    for (k, v) in event.labels { incident.labels[k] = v }
                    // A worse severity escalates the incident's severity; a milder one does not.
                    if event.severity.rawValue < incident.severity.rawValue { incident.severity = event.severity }
                    try tx.update(incident)
                    try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: "alert", actor: event.source,
                                                detail: "alert merged (\(incident.alertCount) in all): \(event.title)"))
                case .acknowledge:
                    incident = try apply(.acknowledge, to: incident, actor: event.source, via: "alert source", tx: tx, now: now)
                case .resolve:
                    incident = try apply(.resolve, to: incident, actor: event.source, via: "alert source", tx: tx, now: now)
                }
                return IngestResult(incident: incident, created: false)
            }
            guard event.action == .trigger else {
                throw IncidentError(.notFound, "no open incident has dedup_key '\(event.dedupKey)'")
            }
            let number = try tx.nextIncidentNumber()
            var incident = Incident(
                id: Self.newID(), number: number, dedupKey: event.dedupKey, service: event.service.isEmpty ? "default" : event.service,
                title: event.title, description: event.description, severity: event.severity, status: .triggered, labels: event.labels,
                alertCount: 1, createdAt: now, updatedAt: now, acknowledgedBy: [], rule: nil, level: 0, escalationGeneration: 0)
            try tx.insert(incident)
            try tx.recordAlert(event, incidentID: incident.id, at: now)
            try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: "triggered", actor: event.source,
                                        detail: "incident #\(number) opened (\(event.severity)): \(event.title)"))
            incident = try startEscalation(incident, tx: tx, now: now)
            return IngestResult(incident: incident, created: true)
        }
        Counter(label: "herald_alerts_total", dimensions: [("source", event.source), ("action", event.action.rawValue)]).increment()
        if result.created { Counter(label: "herald_incidents_total", dimensions: [("severity", result.incident.severity.description)]).increment() }
        onQueued()
        return result
    }

    // MARK: Actions

    /// Acts on an incident as `actor` (a member name, or a platform identity the policy maps to one).
    public func act(_ action: IncidentAction, on id: String, by actor: String, via: String) async throws -> Incident {
        let now = clock()
        let who = policy.person(matching: actor)?.member.name ?? actor
        let incident = try await store.write { [self] tx in
            guard let incident = try tx.incident(id: id) else { throw IncidentError(.notFound, "no incident '\(id)'") }
            return try apply(action, to: incident, actor: who, via: via, tx: tx, now: now)
        }
        onQueued()
        return incident
    }

    func apply(_ action: IncidentAction, to current: Incident, actor: String, via: String, tx: any StoreTransaction, now: Date) throws -> Incident {
        var incident = current
        let how = via.isEmpty ? "" : " via \(via)"
        func timeline(_ kind: String, _ detail: String) throws {
            try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: kind, actor: actor, detail: detail))
        }
        func stopEscalation(keepForced: Bool) throws {
            var kinds: [EscalationTimer.Kind] = [.delayEnd, .repeatLevel, .snoozeEnd]
            let level = currentLevel(incident)
            if !(keepForced && (level?.force ?? false)) { kinds.append(.escalate) }
            try tx.deleteTimers(incidentID: incident.id, kinds: kinds)
            try tx.cancelPendingNotifications(incidentID: incident.id, reason: "incident \(incident.status) by \(actor)")
        }
        switch action {
        case .acknowledge:
            guard incident.status == .triggered || incident.status == .acknowledged else {
                throw IncidentError(.conflict, "incident #\(incident.number) is \(incident.status); only an open incident can be acknowledged")
            }
            if incident.acknowledgedBy.contains(actor) { return incident }
            incident.acknowledgedBy.append(actor)
            let first = incident.status == .triggered
            incident.status = .acknowledged
            if first { incident.acknowledgedAt = now }
            incident.updatedAt = now
            try tx.update(incident)
            try timeline("acknowledged", "acknowledged\(how) by \(actor)")
            if first {
                try stopEscalation(keepForced: true)
                try announce(.acknowledged, incident, tx: tx, now: now)
            }
        case .unacknowledge:
            guard incident.status == .acknowledged, let index = incident.acknowledgedBy.firstIndex(of: actor) else {
                throw IncidentError(.conflict, "incident #\(incident.number) is not acknowledged by \(actor)")
            }
            incident.acknowledgedBy.remove(at: index)
            incident.updatedAt = now
            try timeline("unacknowledged", "\(actor) took back their acknowledgement\(how)")
            if incident.acknowledgedBy.isEmpty {
                incident.status = .triggered
                incident.acknowledgedAt = nil
                incident.snoozedUntil = nil
                try tx.update(incident)
                incident = try startEscalation(incident, tx: tx, now: now)
            } else {
                try tx.update(incident)
            }
        case .snooze(let minutes):
            guard (1...1440).contains(minutes) else { throw IncidentError(.invalid, "snooze minutes must be 1 to 1440 (got \(minutes))") }
            guard incident.status == .acknowledged else {
                throw IncidentError(.conflict, "incident #\(incident.number) is \(incident.status); acknowledge it before snoozing")
            }
            let until = now.addingTimeInterval(Double(minutes) * 60)
            incident.snoozedUntil = until
            incident.updatedAt = now
            try tx.update(incident)
            try tx.deleteTimers(incidentID: incident.id, kinds: [.snoozeEnd])
            try tx.insert(EscalationTimer(incidentID: incident.id, kind: .snoozeEnd, dueAt: until, generation: incident.escalationGeneration))
            try timeline("snoozed", "snoozed for \(minutes) min\(how) by \(actor)")
            try announce(.snoozed, incident, tx: tx, now: now)
        case .resolve, .close:
            let target: IncidentStatus = action == .resolve ? .resolved : .closed
            guard incident.isOpen || (target == .closed && incident.status == .resolved) else {
                throw IncidentError(.conflict, "incident #\(incident.number) is \(incident.status) already")
            }
            incident.status = target
            if target == .resolved { incident.resolvedAt = now } else { incident.closedAt = now }
            incident.snoozedUntil = nil
            incident.updatedAt = now
            try tx.update(incident)
            try tx.deleteTimers(incidentID: incident.id, kinds: nil)
            try tx.cancelPendingNotifications(incidentID: incident.id, reason: "incident \(target) by \(actor)")
            try timeline(target.description, "\(target)\(how) by \(actor)")
            try announce(target == .resolved ? .resolved : .closed, incident, tx: tx, now: now)
        case .reopen:
            guard !incident.isOpen else { throw IncidentError(.conflict, "incident #\(incident.number) is open already") }
            if let other = try tx.openIncident(dedupKey: incident.dedupKey), other.id != incident.id {
                throw IncidentError(.conflict, "incident #\(other.number) is open with the same dedup key; act on it instead")
            }
            incident.status = .triggered
            incident.resolvedAt = nil
            incident.closedAt = nil
            incident.acknowledgedAt = nil
            incident.acknowledgedBy = []
            incident.updatedAt = now
            try tx.update(incident)
            try timeline("reopened", "reopened\(how) by \(actor)")
            incident = try startEscalation(incident, tx: tx, now: now)
        case .note(let text):
            try timeline("note", text + how)
        }
        return incident
    }

    // MARK: Timers

    /// Fires the timers that are due, each in its own transaction with its effects. Returns how many fired.
    @discardableResult
    public func fireDueTimers(limit: Int = 256) async throws -> Int {
        let now = clock()
        let due = try await store.read { try $0.dueTimers(now: now, limit: limit) }
        var fired = 0
        for timer in due {
            let didFire = try await store.write { [self] tx in
                guard let id = timer.id, try tx.deleteTimer(id: id) else { return false }  // fired elsewhere
                guard let incident = try tx.incident(id: timer.incidentID) else { return true }
                try fire(timer, incident, tx: tx, now: now)
                return true
            }
            if didFire { fired += 1 }
        }
        if fired > 0 { onQueued() }
        return fired
    }

    func fire(_ timer: EscalationTimer, _ current: Incident, tx: any StoreTransaction, now: Date) throws {
        var incident = current
        guard timer.generation == incident.escalationGeneration else { return }  // from an escalation since restarted
        switch timer.kind {
        case .snoozeEnd:
            guard incident.status == .acknowledged, incident.snoozedUntil != nil else { return }
            incident.status = .triggered
            incident.snoozedUntil = nil
            incident.acknowledgedAt = nil
            incident.acknowledgedBy = []
            incident.updatedAt = now
            try tx.update(incident)
            try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: "snooze_ended", detail: "snooze ended; back to triggered, escalation restarts"))
            _ = try startEscalation(incident, tx: tx, now: now)
        case .delayEnd:
            guard incident.status == .triggered, let rule = incident.rule.flatMap({ policy.rule(named: $0, service: incident.service) }) else { return }
            try notifyLevel(0, of: rule, incident, event: .fire, round: 0, tx: tx, now: now)
        case .repeatLevel:
            guard incident.status == .triggered, let rule = incident.rule.flatMap({ policy.rule(named: $0, service: incident.service) }),
                  timer.level == incident.level, timer.level < rule.levels.count else { return }
            let level = rule.levels[timer.level]
            let round = level.repeatTimes - timer.remaining
            try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: "repeated",
                                        detail: "not acknowledged: level \(timer.level + 1) notified again (repeat \(round) of \(level.repeatTimes))"))
            try enqueue(level: level, index: timer.level, incident, event: .refire, round: round, tx: tx, now: now)
            if timer.remaining > 0 {
                try tx.insert(EscalationTimer(incidentID: incident.id, kind: .repeatLevel, dueAt: now.addingTimeInterval(level.repeatIntervalMinutes * 60),
                                              level: timer.level, remaining: timer.remaining - 1, generation: incident.escalationGeneration))
            }
        case .escalate:
            guard let rule = incident.rule.flatMap({ policy.rule(named: $0, service: incident.service) }), timer.level == incident.level,
                  timer.level + 1 < rule.levels.count else { return }
            let forced = rule.levels[timer.level].force
            guard incident.status == .triggered || (forced && incident.status == .acknowledged) else { return }
            try tx.deleteTimers(incidentID: incident.id, kinds: [.repeatLevel])
            incident.level = timer.level + 1
            incident.updatedAt = now
            try tx.update(incident)
            let why = incident.status == .triggered ? "not acknowledged" : "not closed (forced escalation)"
            try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: "escalated",
                                        detail: "\(why) within \(rule.levels[timer.level].timeoutMinutes) min: escalated to level \(incident.level + 1)"))
            try notifyLevel(incident.level, of: rule, incident, event: .fire, round: 0, tx: tx, now: now)
        }
    }

    // MARK: Escalation

    /// Matches the rule and notifies its first level (or waits out its delay). A new generation
    /// makes every earlier timer of this incident moot.
    func startEscalation(_ current: Incident, tx: any StoreTransaction, now: Date) throws -> Incident {
        var incident = current
        try tx.deleteTimers(incidentID: incident.id, kinds: nil)
        incident.escalationGeneration += 1
        incident.level = 0
        guard let rule = policy.rule(for: incident, at: now) else {
            incident.rule = nil
            try tx.update(incident)
            try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: "unrouted",
                                        detail: "no escalation rule of service '\(incident.service)' matched; nobody was notified"))
            return incident
        }
        incident.rule = rule.name
        try tx.update(incident)
        if rule.delaySeconds > 0 {
            try tx.insert(EscalationTimer(incidentID: incident.id, kind: .delayEnd, dueAt: now.addingTimeInterval(Double(rule.delaySeconds)),
                                          generation: incident.escalationGeneration))
            try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: "delayed",
                                        detail: "rule '\(rule.name)' matched; waiting \(rule.delaySeconds) s before notifying"))
        } else {
            try notifyLevel(0, of: rule, incident, event: .fire, round: 0, tx: tx, now: now)
        }
        return incident
    }

    func notifyLevel(_ index: Int, of rule: EscalationPolicy.Rule, _ incident: Incident, event: MessageEvent, round: Int,
                     tx: any StoreTransaction, now: Date) throws {
        guard index < rule.levels.count else { return }
        let level = rule.levels[index]
        let count = try enqueue(level: level, index: index, incident, event: event, round: round, tx: tx, now: now)
        try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: "escalation",
                                    detail: "rule '\(rule.name)' level \(index + 1): \(count) notification(s) queued"))
        if level.repeatTimes > 0 {
            try tx.insert(EscalationTimer(incidentID: incident.id, kind: .repeatLevel, dueAt: now.addingTimeInterval(level.repeatIntervalMinutes * 60),
                                          level: index, remaining: level.repeatTimes - 1, generation: incident.escalationGeneration))
        }
        if level.timeoutMinutes > 0, index + 1 < rule.levels.count {
            try tx.insert(EscalationTimer(incidentID: incident.id, kind: .escalate, dueAt: now.addingTimeInterval(Double(level.timeoutMinutes) * 60),
                                          level: index, generation: incident.escalationGeneration))
        }
    }

    /// Queues a level's direct messages and group chats; returns how many rows were queued.
    @discardableResult
    func enqueue(level: EscalationPolicy.Level, index: Int, _ incident: Incident, event: MessageEvent, round: Int,
                 tx: any StoreTransaction, now: Date) throws -> Int {
        var queued = 0
        func add(_ integration: String, recipient: String, member: String) throws {
            let key = Self.key(incident.id, "g\(incident.escalationGeneration)", "l\(index)", "r\(round)", integration, recipient, member)
            let row = OutboxEntry(idempotencyKey: key, incidentID: incident.id, integration: integration, recipient: recipient,
                                   member: member, event: event, level: index, createdAt: now)
            if try tx.enqueue(row) { queued += 1 }
        }
        for person in policy.people(of: level) {
            for integration in directChannels(level, person: person, severity: incident.severity) {
                guard let recipient = recipient(integration, person.member) else {
                    try tx.append(TimelineEntry(incidentID: incident.id, at: now, kind: "unreachable",
                                                detail: "\(person.member.name) has no \(targets[integration]?.kind == .email ? "email address" : "phone number") for '\(integration)'"))
                    continue
                }
                try add(integration, recipient: recipient, member: person.member.name)
            }
        }
        for email in level.emails {
            for integration in directChannels(level, person: nil, severity: incident.severity) where targets[integration]?.kind == .email {
                try add(integration, recipient: email, member: "")
            }
        }
        for chat in level.groupChats where targets[chat] != nil {
            try add(chat, recipient: "", member: "")
        }
        return queued
    }

    func directChannels(_ level: EscalationPolicy.Level, person: EscalationPolicy.Person?, severity: Severity) -> [String] {
        switch level.direct {
        case .none: return []
        case .unified(let bySeverity): return (bySeverity[severity] ?? []).filter { targets[$0] != nil }
        case .followPreference:
            if let person { return (person.preferences[severity] ?? []).filter { targets[$0] != nil } }
            // Raw email targets have no preferences: any email integration will do.
            return targets.filter { $0.value.kind == .email }.map(\.key).sorted().prefix(1).map { $0 }
        }
    }

    /// The address a direct channel needs for a member; nil when they have none.
    func recipient(_ integration: String, _ member: Member) -> String? {
        switch targets[integration]?.kind {
        case .sms, .voice: member.phone.isEmpty ? nil : member.phone
        case .email: member.email.isEmpty ? nil : member.email
        default: ""
        }
    }

    /// Tells the group chats that heard about the incident of a change, as each one's filter allows.
    func announce(_ event: MessageEvent, _ incident: Incident, tx: any StoreTransaction, now: Date) throws {
        let told = Set(try tx.notifications(incidentID: incident.id).filter { $0.member.isEmpty && $0.recipient.isEmpty && $0.level >= 0 }.map(\.integration))
        for chat in told.sorted() {
            guard let target = targets[chat], target.wantsUpdate(event, severity: incident.severity) else { continue }
            let key = Self.key(incident.id, "u", event.description, chat, String(Int64(now.timeIntervalSince1970 * 1000)))
            try tx.enqueue(OutboxEntry(idempotencyKey: key, incidentID: incident.id, integration: chat, event: event, level: -1, createdAt: now))
        }
    }

    func currentLevel(_ incident: Incident) -> EscalationPolicy.Level? {
        guard let rule = incident.rule.flatMap({ policy.rule(named: $0, service: incident.service) }), incident.level < rule.levels.count else { return nil }
        return rule.levels[incident.level]
    }

    // MARK: Reads

    public func incident(_ id: String) async throws -> Incident? { try await store.read { try $0.incident(id: id) } }
    public func incidents(_ query: IncidentQuery) async throws -> [Incident] { try await store.read { try $0.incidents(query) } }
    public func timeline(_ id: String) async throws -> [TimelineEntry] { try await store.read { try $0.timeline(incidentID: id) } }
    public func deliveries(_ id: String) async throws -> [OutboxEntry] { try await store.read { try $0.notifications(incidentID: id) } }

    // MARK: Ids

    /// "inc_" and 20 random base-32 characters: unguessable, URL- and key-safe.
    static func newID() -> String {
        let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")
        return "inc_" + String((0..<20).map { _ in alphabet[Int.random(in: 0..<32)] })
    }

    /// An idempotency key: the incident id and a digest of what makes the row unique, within
    /// the ABI's 128 bytes of [A-Za-z0-9._:-].
    static func key(_ incidentID: String, _ parts: String...) -> String {
        let digest = SHA256.hash(data: Array(parts.joined(separator: "\u{1F}").utf8))
        return "\(incidentID):" + digest.prefix(12).map { String(format: "%02x", $0) }.joined()
    }
}
