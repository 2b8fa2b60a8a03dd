import Foundation

/// Where incidents, alerts, timelines, the outbox and timers live. The core asks for atomic
/// units of work (`write`), so the rules stay here and a store only persists.
///
/// The SQLite implementation (`HeraldStore.SQLiteStore`) is the embedded default. A PostgreSQL
/// implementation fills the same protocol: `write` becomes one SQL transaction (its closure runs
/// on a thread that may block on the connection), `leaseNotifications` uses
/// `FOR UPDATE SKIP LOCKED`, and every other method is one statement.
public protocol IncidentStore: Sendable {
    /// Runs `body` in one transaction: all of its changes are stored, or none.
    func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) throws -> T) async throws -> T
    /// Runs `body` against a consistent snapshot.
    func read<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T
}

/// Reads, available in and out of transactions.
public protocol StoreReader {
    func incident(id: String) throws -> Incident?
    /// The open (triggered or acknowledged) incident with this dedup key, if any.
    func openIncident(dedupKey: String) throws -> Incident?
    /// Newest first.
    func incidents(_ query: IncidentQuery) throws -> [Incident]
    func timeline(incidentID: String) throws -> [TimelineEntry]
    func notifications(incidentID: String) throws -> [OutboxEntry]
    func notification(id: Int64) throws -> OutboxEntry?
    /// Timers due at or before `now`, earliest first. Must cost O(due), not O(all timers).
    func dueTimers(now: Date, limit: Int) throws -> [EscalationTimer]
    /// The earliest time any timer or pending notification is due, for the scheduler's sleep.
    func nextWakeUp() throws -> Date?
    /// Pending or leased notifications: the outbox's depth.
    func queueDepth() throws -> Int
    func openIncidentCount() throws -> Int
}

/// Writes, only inside `IncidentStore.write`.
public protocol StoreTransaction: StoreReader {
    /// The next incident number (1, 2, 3...).
    func nextIncidentNumber() throws -> Int64
    func insert(_ incident: Incident) throws
    func update(_ incident: Incident) throws
    /// Keeps the raw alert for the record.
    func recordAlert(_ event: AlertEvent, incidentID: String, at: Date) throws
    func append(_ entry: TimelineEntry) throws
    /// Adds an outbox row; a row whose idempotency key exists already is ignored (false).
    @discardableResult func enqueue(_ notification: OutboxEntry) throws -> Bool
    func update(_ notification: OutboxEntry) throws
    /// Marks every pending notification of the incident cancelled; returns how many.
    @discardableResult func cancelPendingNotifications(incidentID: String, reason: String) throws -> Int
    func insert(_ timer: EscalationTimer) throws
    /// Deletes a timer; false when it was gone already (fired or cancelled elsewhere).
    func deleteTimer(id: Int64) throws -> Bool
    /// Deletes the incident's timers, all or of the given kinds; returns how many.
    @discardableResult func deleteTimers(incidentID: String, kinds: [EscalationTimer.Kind]?) throws -> Int
    /// Leases up to `limit` due notifications (pending with `nextAttemptAt <= now`, or leased
    /// with an expired lease) until `leaseUntil`, earliest first.
    func leaseNotifications(now: Date, leaseUntil: Date, limit: Int) throws -> [OutboxEntry]
    /// Records a signed link's nonce; false when it was used already (a replay). Nonces of links
    /// expired before `now` may be forgotten: such links are refused by their expiry anyway.
    func useLinkNonce(_ nonce: String, expiresAt: Date, now: Date) throws -> Bool
}
