import Foundation
import HeraldCore
import HeraldStore
import Testing

/// The store's group commit (concurrent writes share one transaction and one fsync) must keep
/// each write's own guarantees: atomic, isolated from a failing neighbour, durable on return.
@Suite("Store group commit")
struct GroupCommitTests {
    static func incident(_ n: Int, at now: Date = Date()) -> Incident {
        Incident(id: "inc_gc\(n)", number: Int64(n), dedupKey: "gc-\(n)", service: "default", title: "Alert \(n)", description: "",
                 severity: .critical, status: .triggered, labels: n % 2 == 0 ? [:] : ["host": "h\(n)", "quote": "a \"b\" \\ c"],
                 alertCount: 1, createdAt: now, updatedAt: now, acknowledgedBy: [], rule: nil, level: 0, escalationGeneration: 0)
    }

    static func temporaryStorePath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("herald-gc-\(UUID().uuidString)/herald.sqlite").path
    }

    @Test func concurrentWritesAllLandAndAFailingOneRollsBackAlone() async throws {
        let path = Self.temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path) }
        let store = try SQLiteStore(path: path)
        struct Refused: Error {}
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 1...200 {
                group.addTask {
                    do {
                        try await store.write { tx in
                            try tx.insert(Self.incident(n))
                            try tx.append(TimelineEntry(incidentID: "inc_gc\(n)", at: Date(), kind: "test", detail: "written"))
                            if n % 7 == 0 { throw Refused() }  // after its inserts: they must be undone
                        }
                        return (n, true)
                    } catch {
                        #expect(error is Refused)
                        return (n, false)
                    }
                }
            }
            var all: [Int: Bool] = [:]
            for await (n, ok) in group { all[n] = ok }
            return all
        }
        // Read back through a fresh connection: only committed data is on disk.
        let reopened = try SQLiteStore(path: path)
        for n in 1...200 {
            let stored = try await reopened.read { try $0.incident(id: "inc_gc\(n)") }
            let timeline = try await reopened.read { try $0.timeline(incidentID: "inc_gc\(n)") }
            if n % 7 == 0 {
                #expect(outcomes[n] == false)
                #expect(stored == nil && timeline.isEmpty, "write \(n) threw, yet some of it was kept")
            } else {
                #expect(outcomes[n] == true)
                #expect(stored == Self.incident(n, at: stored?.createdAt ?? Date()), "write \(n) returned, yet it is not stored as written")
                #expect(timeline.count == 1)
            }
        }
    }

    @Test func writesSeeTheWritesBeforeThem() async throws {
        let store = try SQLiteStore.inMemory()
        // Concurrent read-modify-writes of one counter: serial semantics means no lost update.
        try await store.write { tx in try tx.insert(Self.incident(1)) }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    _ = try? await store.write { tx in
                        var incident = try #require(try tx.incident(id: "inc_gc1"))
                        incident.alertCount += 1
                        try tx.update(incident)
                    }
                }
            }
        }
        #expect(try await store.read { try $0.incident(id: "inc_gc1")?.alertCount } == 101)
    }

    @Test func queueDepthCountsOnlyTheQueueThroughItsIndexes() async throws {
        let store = try SQLiteStore.inMemory()
        let plans = try await store.queryPlans()
        #expect(plans["queueDepth"]?.contains("SCAN notification USING INDEX notification_due") == true, "\(plans)")
        #expect(plans["queueDepth"]?.contains("SCAN notification USING INDEX notification_lease") == true, "\(plans)")
        let now = Date()
        try await store.write { tx in
            try tx.insert(Self.incident(1))
            for (k, state) in [OutboxEntry.State.pending, .pending, .leased, .delivered, .dead, .cancelled].enumerated() {
                var row = OutboxEntry(idempotencyKey: "inc_gc1:\(k)", incidentID: "inc_gc1", integration: "x", event: .fire, level: 0, createdAt: now)
                row.state = state
                if state == .leased { row.leaseUntil = now.addingTimeInterval(60) }
                try tx.enqueue(row)
            }
        }
        #expect(try await store.read { try $0.queueDepth() } == 3)
    }
}

@Suite("Link signing")
struct LinkTokenTests {
    @Test func tokensRoundTripAndUseUnpaddedBase64url() throws {
        let signer = LinkSigner(secret: String(repeating: "k", count: 32), publicURL: "https://herald.test")
        let now = Date()
        for member in ["", "ann", "a/b+c=d?", "名前"] {
            let token = signer.token(incidentID: "inc_0123456789abcdefghjk", action: .acknowledge, member: member, now: now)
            #expect(token.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }, "\(token)")
            let claims = try signer.verify(token, now: now)
            #expect(claims.member == member && claims.incidentID == "inc_0123456789abcdefghjk" && claims.action == .acknowledge)
            #expect(claims.nonce.count == 16)  // 12 random bytes
        }
    }
}
