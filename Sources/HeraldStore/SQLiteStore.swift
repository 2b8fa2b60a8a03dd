import Foundation
import GRDB
import HeraldCore
import HeraldPluginHost
import Synchronization

/// The embedded store: one SQLite file in WAL mode through GRDB. Writes are serialised by
/// GRDB's writer; reads run concurrently on snapshots. Times are stored as Unix seconds (REAL)
/// so due-time queries use plain indexes.
public final class SQLiteStore: IncidentStore {
    let db: any DatabaseWriter
    let committer: GroupCommit

    /// Opens (creating if needed) the store at `path` and migrates it to the current schema.
    public init(path: String) throws {
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL with synchronous=NORMAL loses no committed transaction on a process crash
            // (SIGKILL); FULL also survives power loss, at a cost per commit.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        db = try DatabasePool(path: path, configuration: configuration)
        committer = GroupCommit(writer: db)
        try Self.migrator.migrate(db)
    }

    /// A private in-memory store, for tests.
    public static func inMemory() throws -> SQLiteStore { try SQLiteStore(queue: DatabaseQueue()) }

    init(queue: DatabaseQueue) throws {
        db = queue
        committer = GroupCommit(writer: db)
        try Self.migrator.migrate(db)
    }

    /// Versioned migrations: each runs once, in order, in its own transaction. Never edit a
    /// shipped migration; add the next one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: incidents, alerts, timeline, outbox, timers, link nonces") { db in
            try db.execute(sql: """
            CREATE TABLE incident (
                id TEXT PRIMARY KEY,
                number INTEGER NOT NULL UNIQUE,
                dedup_key TEXT NOT NULL,
                service TEXT NOT NULL,
                title TEXT NOT NULL,
                description TEXT NOT NULL,
                severity TEXT NOT NULL,
                status TEXT NOT NULL,
                labels TEXT NOT NULL,
                alert_count INTEGER NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                acknowledged_at REAL,
                resolved_at REAL,
                closed_at REAL,
                snoozed_until REAL,
                acknowledged_by TEXT NOT NULL,
                rule TEXT,
                level INTEGER NOT NULL,
                generation INTEGER NOT NULL
            );
            -- At most one open incident per dedup key.
            CREATE UNIQUE INDEX incident_open_dedup ON incident(dedup_key) WHERE status IN ('triggered', 'acknowledged');
            CREATE INDEX incident_status ON incident(status, number);
            CREATE TABLE alert (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                incident_id TEXT NOT NULL REFERENCES incident(id),
                received_at REAL NOT NULL,
                action TEXT NOT NULL,
                source TEXT NOT NULL,
                title TEXT NOT NULL,
                severity TEXT NOT NULL,
                labels TEXT NOT NULL
            );
            CREATE INDEX alert_incident ON alert(incident_id);
            CREATE TABLE timeline (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                incident_id TEXT NOT NULL REFERENCES incident(id),
                at REAL NOT NULL,
                kind TEXT NOT NULL,
                actor TEXT NOT NULL,
                detail TEXT NOT NULL
            );
            CREATE INDEX timeline_incident ON timeline(incident_id, id);
            CREATE TABLE notification (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                idempotency_key TEXT NOT NULL UNIQUE,
                incident_id TEXT NOT NULL REFERENCES incident(id),
                integration TEXT NOT NULL,
                recipient TEXT NOT NULL,
                member TEXT NOT NULL,
                event TEXT NOT NULL,
                level INTEGER NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                created_at REAL NOT NULL,
                next_attempt_at REAL NOT NULL,
                lease_until REAL,
                delivered_at REAL,
                last_error TEXT,
                provider_id TEXT,
                merged_into INTEGER,
                notes TEXT
            );
            CREATE INDEX notification_incident ON notification(incident_id, id);
            -- The dispatcher's query: due rows only, so a large backlog of future rows costs nothing.
            CREATE INDEX notification_due ON notification(next_attempt_at) WHERE state = 'pending';
            CREATE INDEX notification_lease ON notification(lease_until) WHERE state = 'leased';
            CREATE TABLE timer (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                incident_id TEXT NOT NULL REFERENCES incident(id),
                kind TEXT NOT NULL,
                due_at REAL NOT NULL,
                level INTEGER NOT NULL,
                remaining INTEGER NOT NULL,
                generation INTEGER NOT NULL
            );
            CREATE INDEX timer_due ON timer(due_at);
            CREATE INDEX timer_incident ON timer(incident_id);
            CREATE TABLE link_nonce (
                nonce TEXT PRIMARY KEY,
                expires_at REAL NOT NULL
            );
            """)
        }
        return migrator
    }

    /// Concurrent writes share one transaction, so one commit (one fsync) covers all of them:
    /// see `GroupCommit`. Each body is still all-or-nothing, and this returns only once its
    /// changes are committed.
    public func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) throws -> T) async throws -> T {
        try await withoutActuallyEscaping(body) { body in
            // The job holds the body only in `slot`, which `finish` empties before the caller
            // resumes: the closure does not outlive this call (the runtime checks).
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let slot = Mutex<(@Sendable (any StoreTransaction) throws -> T)?>(body)
                let result = Mutex<Result<T, any Error>?>(nil)
                committer.submit(GroupCommit.Job(
                    run: { db in
                        do {
                            guard let body = slot.withLock({ $0 }) else { throw CancellationError() }
                            var value: T?
                            try db.inSavepoint {
                                value = try body(Transaction(db: db))
                                return .commit
                            }
                            result.withLock { $0 = .success(value!) }
                            return nil
                        } catch {
                            result.withLock { $0 = .failure(error) }
                            return error
                        }
                    },
                    finish: { batchError in
                        slot.withLock { $0 = nil }
                        let outcome = result.withLock { $0 }
                        switch (outcome, batchError) {
                        case (.failure(let error)?, _): continuation.resume(throwing: error)
                        case (_, let error?): continuation.resume(throwing: error)
                        case (.success(let value)?, nil): continuation.resume(returning: value)
                        case (nil, nil): continuation.resume(throwing: DatabaseError(resultCode: .SQLITE_ABORT, message: "write was not run"))
                        }
                    }))
            }
        }
    }

    public func read<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T {
        try await db.read { db in try body(Transaction(db: db)) }
    }
}

/// Group commit. With synchronous=FULL every commit costs an fsync, so committing each write on
/// its own caps Herald at one alert (or one delivery record) per fsync. Instead, writes queue up
/// while a commit is in progress, and the next commit takes all of them: one `BEGIN IMMEDIATE`,
/// each write in its own savepoint (a write that throws rolls back only its own changes), one
/// `COMMIT`, then every caller resumes. Callers still see their write as one atomic transaction,
/// run in submission order after the ones before it, and durable before `write` returns; if the
/// commit fails, every write of the batch fails.
final class GroupCommit: Sendable {
    final class Job: Sendable {
        /// Runs the write in a savepoint; returns the error it threw, if any.
        let run: @Sendable (Database) -> (any Error)?
        /// Resumes the caller once the batch committed, or with the batch's error.
        let finish: @Sendable ((any Error)?) -> Void
        init(run: @escaping @Sendable (Database) -> (any Error)?, finish: @escaping @Sendable ((any Error)?) -> Void) {
            self.run = run
            self.finish = finish
        }
    }

    let writer: any DatabaseWriter
    private let queue = Mutex<(jobs: [Job], draining: Bool)>(([], false))

    init(writer: any DatabaseWriter) { self.writer = writer }

    func submit(_ job: Job) {
        let start = queue.withLock { q -> Bool in
            q.jobs.append(job)
            if q.draining { return false }
            q.draining = true
            return true
        }
        if start { writer.asyncWriteWithoutTransaction { db in self.drain(db) } }
    }

    /// On the writer's queue: commits batches until nothing is waiting.
    private func drain(_ db: Database) {
        while true {
            let batch = queue.withLock { q -> [Job] in
                if q.jobs.isEmpty { q.draining = false }
                defer { q.jobs = [] }
                return q.jobs
            }
            if batch.isEmpty { return }
            var failure: (any Error)?
            do {
                try db.beginTransaction(.immediate)
                for job in batch {
                    // An error SQLite answers by rolling back the whole transaction (I/O, full
                    // disk) takes the writes before it in the batch with it: fail them all.
                    if let error = job.run(db), !db.isInsideTransaction { throw error }
                }
                try db.commit()
            } catch {
                failure = error
                if db.isInsideTransaction { try? db.rollback() }
            }
            for job in batch { job.finish(failure) }
        }
    }
}

/// Both the reader and (inside `write`) the transaction: GRDB refuses writes on a read connection.
struct Transaction: StoreTransaction {
    let db: Database

    // MARK: Incidents

    func incident(id: String) throws -> Incident? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM incident WHERE id = ?"), arguments: [id]).map(Self.incident)
    }

    func openIncident(dedupKey: String) throws -> Incident? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM incident WHERE dedup_key = ? AND status IN ('triggered', 'acknowledged')"),
                         arguments: [dedupKey]).map(Self.incident)
    }

    func incidents(_ query: IncidentQuery) throws -> [Incident] {
        var sql = "SELECT * FROM incident WHERE number < ?"
        var arguments: StatementArguments = [query.before ?? Int64.max]
        if !query.statuses.isEmpty {
            sql += " AND status IN (" + query.statuses.map { _ in "?" }.joined(separator: ",") + ")"
            for status in query.statuses { _ = arguments.append(contentsOf: [status.description]) }
        }
        sql += " ORDER BY number DESC LIMIT ?"
        _ = arguments.append(contentsOf: [max(0, query.limit)])
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.incident)
    }

    func nextIncidentNumber() throws -> Int64 {
        (try Int64.fetchOne(db.cachedStatement(sql: "SELECT MAX(number) FROM incident")) ?? 0) + 1
    }

    func insert(_ i: Incident) throws {
        try db.cachedStatement(sql: """
            INSERT INTO incident (id, number, dedup_key, service, title, description, severity, status, labels, alert_count,
                created_at, updated_at, acknowledged_at, resolved_at, closed_at, snoozed_until, acknowledged_by, rule, level, generation)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: Self.arguments(i))
    }

    func update(_ i: Incident) throws {
        var arguments = Self.arguments(i)
        _ = arguments.append(contentsOf: [i.id])
        try db.cachedStatement(sql: """
            UPDATE incident SET id = ?, number = ?, dedup_key = ?, service = ?, title = ?, description = ?, severity = ?, status = ?,
                labels = ?, alert_count = ?, created_at = ?, updated_at = ?, acknowledged_at = ?, resolved_at = ?, closed_at = ?,
                snoozed_until = ?, acknowledged_by = ?, rule = ?, level = ?, generation = ?
            WHERE id = ?
            """).execute(arguments: arguments)
    }

    static func arguments(_ i: Incident) -> StatementArguments {
        [i.id, i.number, i.dedupKey, i.service, i.title, i.description, i.severity.description, i.status.description,
         json(i.labels), i.alertCount, seconds(i.createdAt), seconds(i.updatedAt), seconds(i.acknowledgedAt), seconds(i.resolvedAt),
         seconds(i.closedAt), seconds(i.snoozedUntil), json(i.acknowledgedBy), i.rule, i.level, i.escalationGeneration]
    }

    static func incident(_ row: Row) -> Incident {
        Incident(id: row["id"], number: row["number"], dedupKey: row["dedup_key"], service: row["service"], title: row["title"],
                 description: row["description"], severity: Severity(name: row["severity"]) ?? .warning,
                 status: IncidentStatus(name: row["status"]) ?? .triggered, labels: decode(row["labels"]) ?? [:],
                 alertCount: row["alert_count"], createdAt: date(row["created_at"]), updatedAt: date(row["updated_at"]),
                 acknowledgedAt: optionalDate(row["acknowledged_at"]), resolvedAt: optionalDate(row["resolved_at"]),
                 closedAt: optionalDate(row["closed_at"]), snoozedUntil: optionalDate(row["snoozed_until"]),
                 acknowledgedBy: decode(row["acknowledged_by"]) ?? [], rule: row["rule"], level: row["level"],
                 escalationGeneration: row["generation"])
    }

    func openIncidentCount() throws -> Int {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM incident WHERE status IN ('triggered', 'acknowledged')")) ?? 0
    }

    // MARK: Alerts and timeline

    func recordAlert(_ event: AlertEvent, incidentID: String, at: Date) throws {
        try db.cachedStatement(sql: "INSERT INTO alert (incident_id, received_at, action, source, title, severity, labels) VALUES (?, ?, ?, ?, ?, ?, ?)").execute(
            arguments: [incidentID, Self.seconds(at), event.action.rawValue, event.source, event.title, event.severity.description,
                        Self.json(event.labels)])
    }

    func append(_ entry: TimelineEntry) throws {
        try db.cachedStatement(sql: "INSERT INTO timeline (incident_id, at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)").execute(
            arguments: [entry.incidentID, Self.seconds(entry.at), entry.kind, entry.actor, entry.detail])
    }

    func timeline(incidentID: String) throws -> [TimelineEntry] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM timeline WHERE incident_id = ? ORDER BY id"), arguments: [incidentID]).map {
            TimelineEntry(incidentID: $0["incident_id"], at: Self.date($0["at"]), kind: $0["kind"], actor: $0["actor"], detail: $0["detail"])
        }
    }

    // MARK: Outbox

    func enqueue(_ n: OutboxEntry) throws -> Bool {
        try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO notification (idempotency_key, incident_id, integration, recipient, member, event, level, state, attempts,
                created_at, next_attempt_at, lease_until, delivered_at, last_error, provider_id, merged_into, notes)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [n.idempotencyKey, n.incidentID, n.integration, n.recipient, n.member, n.event.description, n.level,
                             n.state.rawValue, n.attempts, Self.seconds(n.createdAt), Self.seconds(n.nextAttemptAt), Self.seconds(n.leaseUntil),
                             Self.seconds(n.deliveredAt), n.lastError, n.providerID, n.mergedInto, n.notes])
        return db.changesCount > 0
    }

    func update(_ n: OutboxEntry) throws {
        guard let id = n.id else { return }
        try db.cachedStatement(sql: """
            UPDATE notification SET state = ?, attempts = ?, next_attempt_at = ?, lease_until = ?, delivered_at = ?, last_error = ?,
                provider_id = ?, merged_into = ?, notes = ? WHERE id = ?
            """).execute(arguments: [n.state.rawValue, n.attempts, Self.seconds(n.nextAttemptAt), Self.seconds(n.leaseUntil), Self.seconds(n.deliveredAt),
                             n.lastError, n.providerID, n.mergedInto, n.notes, id])
    }

    func notifications(incidentID: String) throws -> [OutboxEntry] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM notification WHERE incident_id = ? ORDER BY id"), arguments: [incidentID]).map(Self.notification)
    }

    func notification(id: Int64) throws -> OutboxEntry? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM notification WHERE id = ?"), arguments: [id]).map(Self.notification)
    }

    func cancelPendingNotifications(incidentID: String, reason: String) throws -> Int {
        try db.cachedStatement(sql: "UPDATE notification SET state = 'cancelled', last_error = ? WHERE incident_id = ? AND state = 'pending'").execute(
            arguments: [reason, incidentID])
        return db.changesCount
    }

    func leaseNotifications(now: Date, leaseUntil: Date, limit: Int) throws -> [OutboxEntry] {
        let t = Self.seconds(now)
        // Two index range scans: due pending rows, and leases that ran out (a crashed dispatcher).
        let ids = try Int64.fetchAll(db.cachedStatement(sql: """
            SELECT id FROM (
                SELECT id, next_attempt_at AS due FROM notification WHERE state = 'pending' AND next_attempt_at <= ?
                UNION ALL
                SELECT id, lease_until AS due FROM notification WHERE state = 'leased' AND lease_until <= ?
            ) ORDER BY due LIMIT ?
            """), arguments: [t, t, limit])
        guard !ids.isEmpty else { return [] }
        let list = ids.map(String.init).joined(separator: ",")
        try db.execute(sql: "UPDATE notification SET state = 'leased', lease_until = ? WHERE id IN (\(list))", arguments: [Self.seconds(leaseUntil)])
        return try Row.fetchAll(db, sql: "SELECT * FROM notification WHERE id IN (\(list)) ORDER BY next_attempt_at, id").map(Self.notification)
    }

    func queueDepth() throws -> Int {
        // Two counts over the partial indexes: O(queue). `state IN (...)` scans the whole table,
        // delivered history included, and the dispatcher asks after every pass.
        try Int.fetchOne(db.cachedStatement(sql: """
            SELECT (SELECT COUNT(*) FROM notification WHERE state = 'pending') + (SELECT COUNT(*) FROM notification WHERE state = 'leased')
            """)) ?? 0
    }

    static func notification(_ row: Row) -> OutboxEntry {
        var n = OutboxEntry(idempotencyKey: row["idempotency_key"], incidentID: row["incident_id"], integration: row["integration"],
                             recipient: row["recipient"], member: row["member"], event: MessageEvent(name: row["event"]) ?? .fire,
                             level: row["level"], createdAt: date(row["created_at"]))
        n.id = row["id"]
        n.state = OutboxEntry.State(rawValue: row["state"]) ?? .pending
        n.attempts = row["attempts"]
        n.nextAttemptAt = date(row["next_attempt_at"])
        n.leaseUntil = optionalDate(row["lease_until"])
        n.deliveredAt = optionalDate(row["delivered_at"])
        n.lastError = row["last_error"]
        n.providerID = row["provider_id"]
        n.mergedInto = row["merged_into"]
        n.notes = row["notes"]
        return n
    }

    // MARK: Timers

    func insert(_ timer: EscalationTimer) throws {
        try db.cachedStatement(sql: "INSERT INTO timer (incident_id, kind, due_at, level, remaining, generation) VALUES (?, ?, ?, ?, ?, ?)").execute(
            arguments: [timer.incidentID, timer.kind.rawValue, Self.seconds(timer.dueAt), timer.level, timer.remaining, timer.generation])
    }

    func deleteTimer(id: Int64) throws -> Bool {
        try db.cachedStatement(sql: "DELETE FROM timer WHERE id = ?").execute(arguments: [id])
        return db.changesCount > 0
    }

    func deleteTimers(incidentID: String, kinds: [EscalationTimer.Kind]?) throws -> Int {
        if let kinds {
            guard !kinds.isEmpty else { return 0 }
            let list = kinds.map { "'\($0.rawValue)'" }.joined(separator: ",")
            try db.execute(sql: "DELETE FROM timer WHERE incident_id = ? AND kind IN (\(list))", arguments: [incidentID])
        } else {
            try db.cachedStatement(sql: "DELETE FROM timer WHERE incident_id = ?").execute(arguments: [incidentID])
        }
        return db.changesCount
    }

    func dueTimers(now: Date, limit: Int) throws -> [EscalationTimer] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM timer WHERE due_at <= ? ORDER BY due_at LIMIT ?"), arguments: [Self.seconds(now), limit]).map { row in
            var timer = EscalationTimer(incidentID: row["incident_id"], kind: EscalationTimer.Kind(rawValue: row["kind"]) ?? .escalate,
                                        dueAt: Self.date(row["due_at"]), level: row["level"], remaining: row["remaining"], generation: row["generation"])
            timer.id = row["id"]
            return timer
        }
    }

    func nextWakeUp() throws -> Date? {
        let timer = try Double.fetchOne(db.cachedStatement(sql: "SELECT MIN(due_at) FROM timer"))
        let pending = try Double.fetchOne(db.cachedStatement(sql: "SELECT MIN(next_attempt_at) FROM notification WHERE state = 'pending'"))
        let lease = try Double.fetchOne(db.cachedStatement(sql: "SELECT MIN(lease_until) FROM notification WHERE state = 'leased'"))
        return [timer, pending, lease].compactMap { $0 }.min().map(Self.date)
    }

    // MARK: Links

    func useLinkNonce(_ nonce: String, expiresAt: Date, now: Date) throws -> Bool {
        // Forget nonces of links that cannot verify any more: they are refused by time anyway.
        try db.cachedStatement(sql: "DELETE FROM link_nonce WHERE expires_at < ?").execute(arguments: [Self.seconds(now)])
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO link_nonce (nonce, expires_at) VALUES (?, ?)").execute(arguments: [nonce, Self.seconds(expiresAt)])
        return db.changesCount > 0
    }

    // MARK: Encoding

    static func seconds(_ date: Date) -> Double { date.timeIntervalSince1970 }
    static func seconds(_ date: Date?) -> Double? { date.map(seconds) }
    static func date(_ seconds: Double) -> Date { Date(timeIntervalSince1970: seconds) }
    static func optionalDate(_ seconds: Double?) -> Date? { seconds.map(date) }

    static func json<T: Encodable>(_ value: T) -> String {
        // Most incidents have no acknowledgers yet, and many alerts no labels.
        if let map = value as? [String: String], map.isEmpty { return "{}" }
        if let list = value as? [String], list.isEmpty { return "[]" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
    }

    static func decode<T: Decodable>(_ text: String) -> T? {
        if text == "{}", let empty = [String: String]() as? T { return empty }
        if text == "[]", let empty = [String]() as? T { return empty }
        return try? JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}

extension SQLiteStore {
    /// SQLite's plans for the queries that must cost O(due), for tests and `EXPLAIN`-minded operators.
    public func queryPlans() async throws -> [String: String] {
        try await db.read { db in
            func plan(_ sql: String) throws -> String {
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "; ")
            }
            return [
                "dueTimers": try plan("SELECT * FROM timer WHERE due_at <= 0 ORDER BY due_at LIMIT 10"),
                "queueDepth": try plan("""
                    SELECT (SELECT COUNT(*) FROM notification WHERE state = 'pending') + (SELECT COUNT(*) FROM notification WHERE state = 'leased')
                    """),
                "lease": try plan("""
                    SELECT id FROM (SELECT id, next_attempt_at AS due FROM notification WHERE state = 'pending' AND next_attempt_at <= 0
                    UNION ALL SELECT id, lease_until AS due FROM notification WHERE state = 'leased' AND lease_until <= 0) ORDER BY due LIMIT 10
                    """),
            ]
        }
    }
}
