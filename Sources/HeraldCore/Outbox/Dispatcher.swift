import Foundation
import HeraldPluginHost
import Logging
import Metrics
import Synchronization

/// Retry policy for outbox rows.
public struct DispatchSettings: Sendable, Equatable {
    /// Attempts before a row is dead.
    public var maxAttempts = 8
    /// Backoff before attempt n+1 is `base * 2^(n-1)`, jittered ±25 %, at most `maxBackoff`.
    public var baseBackoff: TimeInterval = 2
    public var maxBackoff: TimeInterval = 600
    /// How long a leased row is ours; a crashed dispatcher's rows come back after it.
    public var leaseSeconds: TimeInterval = 120
    /// Rows leased per pass (delivered concurrently).
    public var batchSize = 128
    public init() {}
}

/// Leases due outbox rows, renders and delivers them through their integration, and records the
/// outcome: delivered, retried with backoff (or the provider's hint), or dead with its reason.
/// Each destination gets at most its platform's quota; when more is queued for a saturated
/// destination, the surplus goes out as one summary message instead of being dropped.
public final class Dispatcher: Sendable {
    public let service: IncidentService
    public let integrations: [String: Integration]
    public let deliverer: Deliverer
    public let signer: LinkSigner?
    public let settings: DispatchSettings
    let limits: [String: RateLimit]
    let limiter = Mutex(RateLimiter())
    let wakeup = Wakeup()
    let stopping = Atomic<Bool>(false)
    let logger: Logger
    var store: any IncidentStore { service.store }
    var now: Date { service.clock() }

    public init(service: IncidentService, integrations: [String: Integration], deliverer: Deliverer, signer: LinkSigner?,
                rateLimits: [String: RateLimit] = [:], settings: DispatchSettings = DispatchSettings(),
                logger: Logger = Logger(label: "herald.dispatch")) {
        self.service = service
        self.integrations = integrations
        self.deliverer = deliverer
        self.signer = signer
        self.limits = rateLimits
        self.settings = settings
        self.logger = logger
    }

    /// Makes a sleeping `run` loop look at the store now.
    public func wake() { wakeup.signal() }

    /// Ends `run` after the pass in flight: no new leases.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        wakeup.signal()
    }

    /// Fires due timers and delivers due rows until the task is cancelled, sleeping until the
    /// next due time (at most `tick`) or a `wake()`.
    public func run(tick: TimeInterval) async {
        while !Task.isCancelled, !stopping.load(ordering: .relaxed) {
            do {
                try await service.fireDueTimers()
                let sent = try await dispatchDue()
                Gauge(label: "herald_outbox_depth").record(try await store.read { try $0.queueDepth() })
                if sent > 0 || stopping.load(ordering: .relaxed) { continue }
                let next = try await store.read { try $0.nextWakeUp() }
                let wait = min(tick, max(0.001, (next ?? now.addingTimeInterval(tick)).timeIntervalSince(now)))
                await wakeup.wait(seconds: wait)
            } catch {
                logger.error("dispatcher pass failed; retrying", metadata: ["error": "\(error)"])
                await wakeup.wait(seconds: tick)
            }
        }
    }

    /// One pass: leases due rows and delivers them. Returns how many rows it leased.
    @discardableResult
    public func dispatchDue() async throws -> Int {
        let start = now
        let leased = try await store.write { [settings] tx in
            try tx.leaseNotifications(now: start, leaseUntil: start.addingTimeInterval(settings.leaseSeconds), limit: settings.batchSize)
        }
        guard !leased.isEmpty else { return 0 }
        var sends: [(OutboxEntry, [OutboxEntry])] = []
        var postponed: [(OutboxEntry, Date)] = []
        for (destination, rows) in Dictionary(grouping: leased, by: \.destination) {
            let limit = limits[rows[0].integration]
            let available = limiter.withLock { $0.available(destination, limit: limit, now: start) }
            if rows.count <= available {
                sends += rows.map { ($0, []) }
            } else if available >= 1 {
                // Send what the quota allows, folding the surplus into the last message.
                sends += rows.prefix(available - 1).map { ($0, []) }
                let rest = Array(rows.dropFirst(available - 1))
                sends.append((rest[0], Array(rest.dropFirst())))
            } else {
                let at = limiter.withLock { $0.nextToken(destination, limit: limit, now: start) }
                postponed += rows.map { ($0, at) }
            }
            for _ in 0..<min(rows.count, available) { limiter.withLock { $0.take(destination, limit: limit, now: start) } }
        }
        if !postponed.isEmpty {
            try await store.write { [postponed] tx in
                for (var row, at) in postponed {
                    row.state = .pending
                    row.leaseUntil = nil
                    row.nextAttemptAt = at
                    try tx.update(row)
                }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for (row, merged) in sends {
                group.addTask { await self.deliver(row, merging: merged) }
            }
        }
        return leased.count
    }

    /// Delivers one row (with `merged` folded into it as a summary) and records the outcome.
    func deliver(_ row: OutboxEntry, merging merged: [OutboxEntry]) async {
        do {
            guard let integration = integrations[row.integration] else {
                try await record(row, merged, .failed(reason: "integration '\(row.integration)' is not configured or did not start"), notes: [])
                return
            }
            let ids = [row.incidentID] + merged.map(\.incidentID)
            let incidents = try await store.read { tx in try ids.compactMap { try tx.incident(id: $0) } }
            guard let incident = incidents.first else {
                try await record(row, merged, .failed(reason: "incident \(row.incidentID) does not exist"), notes: [])
                return
            }
            // An escalation message queued before someone took the incident, or for one that is
            // over, is moot (a forced level's later messages are not).
            let moot = switch incident.status {
            case .triggered: false
            case .acknowledged: row.createdAt <= (incident.acknowledgedAt ?? .distantPast)
            case .resolved, .closed: true
            }
            if merged.isEmpty, row.event == .fire || row.event == .refire, moot {
                try await store.write { tx in
                    var r = row
                    r.state = .cancelled
                    r.lastError = "incident was \(incident.status) before it was sent"
                    try tx.update(r)
                }
                return
            }
            var snapshot = self.snapshot(incident, event: row.event, member: row.member)
            if !merged.isEmpty { snapshot = summary(snapshot, incidents: incidents, count: merged.count + 1) }
            let members = row.member.isEmpty ? mentions(for: incident) : []
            let composed: ComposedMessage
            do {
                composed = try integration.compose(snapshot, mentioning: members, recipient: row.recipient, idempotencyKey: row.idempotencyKey)
            } catch {
                try await record(row, merged, .failed(reason: "cannot render: \(error.message)"), notes: [])
                return
            }
            let result = await deliverer.deliver(composed, through: integration)
            Counter(label: "herald_deliveries_total", dimensions: [("plugin", integration.plugin.descriptor.id), ("outcome", Self.name(result.outcome))]).increment()
            try await record(row, merged, result.outcome, notes: result.notes)
        } catch {
            // The store failed: the lease runs out and the row is tried again.
            logger.error("could not record a delivery", metadata: ["notification": "\(row.id ?? 0)", "error": "\(error)"])
        }
    }

    func record(_ row: OutboxEntry, _ merged: [OutboxEntry], _ outcome: DeliveryOutcome, notes: [String]) async throws {
        let at = now
        var r = row
        r.attempts += 1
        r.leaseUntil = nil
        r.notes = notes.isEmpty ? nil : notes.joined(separator: "\n")
        var timeline: String?
        switch outcome {
        case .delivered(let providerID):
            r.state = .delivered
            r.deliveredAt = at
            r.providerID = providerID
            r.lastError = nil
            Timer(label: "herald_delivery_latency_seconds", dimensions: [("integration", row.integration)])
                .recordNanoseconds(Int64(max(0, at.timeIntervalSince(row.createdAt)) * 1e9))
            timeline = "notified via \(row.integration)\(row.member.isEmpty ? "" : " (\(row.member))")" + (merged.isEmpty ? "" : " in a summary of \(merged.count + 1) messages")
        case .retry(let hint, let reason):
            r.lastError = reason
            if r.attempts >= settings.maxAttempts {
                r.state = .dead
                timeline = "gave up on \(row.integration)\(row.member.isEmpty ? "" : " (\(row.member))") after \(r.attempts) attempts: \(reason)"
            } else {
                r.state = .pending
                r.nextAttemptAt = at.addingTimeInterval(hint.map { Double($0) / 1000 } ?? backoff(after: r.attempts))
            }
        case .failed(let reason):
            r.state = .dead
            r.lastError = reason
            timeline = "could not notify via \(row.integration)\(row.member.isEmpty ? "" : " (\(row.member))"): \(reason)"
        }
        let final = r
        let entry = timeline
        try await store.write { tx in
            try tx.update(final)
            for var m in merged {
                m.leaseUntil = nil
                if final.state == .delivered {
                    m.state = .merged
                    m.mergedInto = final.id
                    m.deliveredAt = at
                } else {
                    // The summary did not go out: each row goes back to wait its turn.
                    m.state = .pending
                    m.nextAttemptAt = final.nextAttemptAt
                }
                try tx.update(m)
            }
            if let entry {
                try tx.append(TimelineEntry(incidentID: final.incidentID, at: at, kind: final.state == .delivered ? "notified" : "delivery_failed", detail: entry))
            }
        }
    }

    func backoff(after attempts: Int) -> TimeInterval {
        let raw = min(settings.maxBackoff, settings.baseBackoff * pow(2, Double(max(0, attempts - 1))))
        return raw * Double.random(in: 0.75...1.25)
    }

    // MARK: Messages

    func snapshot(_ incident: Incident, event: MessageEvent, member: String) -> IncidentSnapshot {
        var links: [MessageLink] = []
        if let signer {
            let at = now
            let actions: [(LinkSigner.Action, MessageLink.Kind, String)] = [(.view, .view, "View")]
                + (incident.isOpen ? [(.acknowledge, .acknowledge, "Acknowledge"), (.snooze, .snooze, "Snooze"), (.close, .close, "Close")] : [])
            links = actions.map { MessageLink(kind: $1, label: $2, url: signer.url(incidentID: incident.id, action: $0, member: member, now: at)) }
        }
        return IncidentSnapshot(
            id: incident.id, number: UInt64(incident.number), title: incident.title, description: incident.description,
            severity: incident.severity, status: incident.status, event: event,
            labels: incident.labels.sorted { $0.key < $1.key }.map { .init($0.key, $0.value) },
            startedAt: incident.createdAt, acknowledgedAt: incident.acknowledgedAt, closedAt: incident.closedAt ?? incident.resolvedAt,
            assignees: incident.acknowledgedBy, alertCount: incident.alertCount, links: links)
    }

    /// One message standing for several held back by a destination's quota.
    func summary(_ first: IncidentSnapshot, incidents: [Incident], count: Int) -> IncidentSnapshot {
        var s = first
        s.title = "\(count) notifications (rate limited): \(first.title)"
        s.description = incidents.map { "#\($0.number) [\($0.severity)] \($0.title) (\($0.status))" }.joined(separator: "\n")
        return s
    }

    /// Group chats @mention the people of the incident's current level.
    func mentions(for incident: Incident) -> [Member] {
        guard let level = service.currentLevel(incident) else { return [] }
        return service.policy.people(of: level).map(\.member)
    }

    static func name(_ outcome: DeliveryOutcome) -> String {
        switch outcome {
        case .delivered: "delivered"
        case .retry: "retry"
        case .failed: "failed"
        }
    }
}

/// A wake-up signal with a timeout; a signal while nobody waits is kept for the next wait.
final class Wakeup: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?, generation: Int)>((false, nil, 0))

    func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else { s.pending = true; return nil }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    func wait(seconds: TimeInterval) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let generation = state.withLock { s -> Int? in
                if s.pending { s.pending = false; return nil }
                s.waiter = c
                s.generation += 1
                return s.generation
            }
            guard let generation else { c.resume(); return }
            Task {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                let waiter = self.state.withLock { s -> CheckedContinuation<Void, Never>? in
                    guard s.generation == generation, let w = s.waiter else { return nil }
                    s.waiter = nil
                    return w
                }
                waiter?.resume()
            }
        }
    }
}
