import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldStore
import HeraldTestSupport
import Synchronization
import Testing

/// A clock the test moves by hand.
final class TestClock: Sendable {
    let now = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    func advance(minutes: Double) { now.withLock { $0 = $0.addingTimeInterval(minutes * 60) } }
    func read() -> Date { now.withLock { $0 } }
}

/// Herald's engine in one process: config, plugins, the SQLite store, the incident service and
/// the dispatcher, delivering through the webhook plugin to `notify_sink.py`.
struct Engine {
    let sink: MockServer
    let runtime: HeraldRuntime
    let store: SQLiteStore
    let service: IncidentService
    let dispatcher: Dispatcher
    let clock: TestClock

    static let policy = """
    members:
      - {name: ann, email: ann@example.com, phone: "+8613800000001", preferences: {critical: [ann-hook]}}
      - {name: bob, email: bob@example.com, preferences: {critical: [bob-hook], warning: [bob-hook]}}
    teams:
      - {name: dba, members: [bob]}
    services:
      - name: default
        rules:
          - name: quiet
            when: [{severity: [info]}]
            levels: [{group_chats: [ops], timeout_minutes: 0}]
          - name: page
            levels:
              - members: [ann]
                direct: follow_preference
                group_chats: [ops]
                timeout_minutes: 5
                repeat: {times: 2, interval_minutes: 1}
              - teams: [dba]
                direct: {critical: [bob-hook], warning: [bob-hook]}
                timeout_minutes: 0
    """

    init(clock: TestClock = TestClock(), storePath: String? = nil, opsRateLimit: String? = nil, settings: DispatchSettings = DispatchSettings(),
         policy: String = Engine.policy) async throws {
        self.clock = clock
        let sink = try MockServer(script: "notify_sink.py")
        self.sink = sink
        func hook(_ name: String, _ extra: String = "") -> String {
            """
              - name: \(name)
                plugin: webhook
                settings: {url: "\(sink.base)/\(name)"}
                egress: {allow_loopback: true}
            \(extra)
            """
        }
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
        \(hook("ann-hook"))
        \(hook("bob-hook"))
        \(hook("ops", "    updates: {events: [acknowledged, resolved, closed]}" + (opsRateLimit.map { "\n    rate_limit: \($0)" } ?? "")))
        \(policy)
        """, file: "/tmp/engine.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        guard runtime.problems.isEmpty else { throw Fixtures.BuildError(description: "\(runtime.problems)") }
        self.runtime = runtime
        store = try storePath.map { try SQLiteStore(path: $0) } ?? SQLiteStore.inMemory()
        var targets: [String: RouteTarget] = [:]
        var limits: [String: RateLimit] = [:]
        for entry in config.integrations {
            targets[entry.name] = RouteTarget(kind: .webhook, updateEvents: entry.updateEvents, updateSeverities: entry.updateSeverities)
            limits[entry.name] = entry.rateLimit
        }
        service = IncidentService(store: store, policy: config.policy, targets: targets, clock: { clock.read() })
        dispatcher = Dispatcher(service: service, integrations: runtime.integrations, deliverer: runtime.deliverer,
                                signer: LinkSigner(secret: String(repeating: "k", count: 32), publicURL: "https://herald.test"),
                                rateLimits: limits, settings: settings)
    }

    /// Fires due timers and delivers everything due now.
    func pass() async throws {
        try await service.fireDueTimers()
        while try await dispatcher.dispatchDue() > 0 {}
    }

    func received() async throws -> [[String: JSONValue]] {
        let list = try JSONValue.parse(Data(try await sink.get("/_received"))).arrayValue ?? []
        return list.compactMap { $0.objectValue }
    }

    func paths() async throws -> [String] { try await received().compactMap { $0["path"]?.stringValue } }

    func stop() {
        runtime.shutdown()
        sink.stop()
    }
}

@Suite("Escalation, outbox and store", .serialized)
struct EscalationTests {
    @Test func aCriticalIncidentNotifiesRepeatsClimbsAndStopsWhenAcknowledged() async throws {
        let engine = try await Engine()
        defer { engine.stop() }
        let result = try await engine.service.ingest(AlertEvent(dedupKey: "db-1/disk", title: "Disk full on db-1", severity: .critical))
        #expect(result.created && result.incident.rule == "page")
        try await engine.pass()
        #expect(try await engine.paths().sorted() == ["/ann-hook", "/ops"])

        // Loop notification: level 1 again after 1 and 2 minutes.
        engine.clock.advance(minutes: 1)
        try await engine.pass()
        engine.clock.advance(minutes: 1)
        try await engine.pass()
        #expect(try await engine.paths().count == 6)
        let events = try await engine.received().compactMap { $0["event"]?.stringValue }
        #expect(events.filter { $0 == "refire" }.count == 4, "\(events)")

        // Not acknowledged within 5 minutes: level 2 (team dba = bob).
        engine.clock.advance(minutes: 3)
        try await engine.pass()
        #expect(try await engine.paths().last == "/bob-hook")
        #expect(try await engine.service.incident(result.incident.id)?.level == 1)

        // Bob acknowledges by phone identity-less name: the group chat hears it, nothing else follows.
        let acked = try await engine.service.act(.acknowledge, on: result.incident.id, by: "bob", via: "test")
        #expect(acked.status == .acknowledged && acked.acknowledgedBy == ["bob"])
        try await engine.pass()
        #expect(try await engine.received().last?["event"]?.stringValue == "acknowledged")
        let count = try await engine.paths().count
        engine.clock.advance(minutes: 120)
        try await engine.pass()
        #expect(try await engine.paths().count == count, "nothing may be sent after the acknowledgement")
        let timeline = try await engine.service.timeline(result.incident.id).map(\.kind)
        #expect(timeline.contains("escalated") && timeline.contains("acknowledged"), "\(timeline)")
    }

    @Test func alertsWithTheSameDedupKeyUpdateOneIncidentAndResolveIt() async throws {
        let engine = try await Engine()
        defer { engine.stop() }
        let first = try await engine.service.ingest(AlertEvent(dedupKey: "k", title: "CPU high", severity: .warning))
        let second = try await engine.service.ingest(AlertEvent(dedupKey: "k", title: "CPU high", severity: .critical, labels: ["host": "a"]))
        #expect(first.created && !second.created)
        #expect(second.incident.id == first.incident.id && second.incident.alertCount == 2 && second.incident.severity == .critical)
        let resolved = try await engine.service.ingest(AlertEvent(action: .resolve, dedupKey: "k", title: "CPU high"))
        #expect(resolved.incident.status == .resolved)
        // The next alert with that key is a new incident.
        let third = try await engine.service.ingest(AlertEvent(dedupKey: "k", title: "CPU high again"))
        #expect(third.created && third.incident.number == first.incident.number + 1)
        await #expect(throws: IncidentError.self) { try await engine.service.ingest(AlertEvent(action: .acknowledge, dedupKey: "nope", title: "x")) }
    }

    @Test func snoozeNeedsAnAcknowledgementAndRestartsEscalationWhenItEnds() async throws {
        let engine = try await Engine()
        defer { engine.stop() }
        let incident = try await engine.service.ingest(AlertEvent(dedupKey: "s", title: "Queue stuck", severity: .critical)).incident
        await #expect(throws: IncidentError(.conflict, "incident #1 is triggered; acknowledge it before snoozing")) {
            try await engine.service.act(.snooze(minutes: 10), on: incident.id, by: "ann", via: "")
        }
        try await engine.pass()
        _ = try await engine.service.act(.acknowledge, on: incident.id, by: "ann", via: "")
        await #expect(throws: IncidentError.self) { try await engine.service.act(.snooze(minutes: 0), on: incident.id, by: "ann", via: "") }
        _ = try await engine.service.act(.snooze(minutes: 10), on: incident.id, by: "ann", via: "")
        let before = try await engine.paths().filter { $0 == "/ann-hook" }.count
        engine.clock.advance(minutes: 9)
        try await engine.pass()
        #expect(try await engine.paths().filter { $0 == "/ann-hook" }.count == before)
        engine.clock.advance(minutes: 1)
        try await engine.pass()
        let after = try await engine.service.incident(incident.id)
        #expect(after?.status == .triggered && after?.snoozedUntil == nil)
        #expect(try await engine.paths().filter { $0 == "/ann-hook" }.count == before + 1)
    }

    @Test func unacknowledgeByTheLastAcknowledgerRestartsEscalation() async throws {
        let engine = try await Engine()
        defer { engine.stop() }
        let incident = try await engine.service.ingest(AlertEvent(dedupKey: "u", title: "Flaky", severity: .critical)).incident
        _ = try await engine.service.act(.acknowledge, on: incident.id, by: "ann", via: "")
        _ = try await engine.service.act(.acknowledge, on: incident.id, by: "bob", via: "")
        #expect(try await engine.service.act(.unacknowledge, on: incident.id, by: "ann", via: "").status == .acknowledged)
        let back = try await engine.service.act(.unacknowledge, on: incident.id, by: "bob", via: "")
        #expect(back.status == .triggered && back.escalationGeneration == 2)
        _ = try await engine.service.act(.close, on: incident.id, by: "ann", via: "")
        let reopened = try await engine.service.act(.reopen, on: incident.id, by: "ann", via: "")
        #expect(reopened.status == .triggered && reopened.closedAt == nil)
    }

    @Test func aPlatformIdentityActsAsItsMember() async throws {
        let engine = try await Engine()
        defer { engine.stop() }
        let incident = try await engine.service.ingest(AlertEvent(dedupKey: "v", title: "Down", severity: .critical)).incident
        let acked = try await engine.service.act(.acknowledge, on: incident.id, by: "mobile:+86 138-0000-0001", via: "voice (key 1)")
        #expect(acked.acknowledgedBy == ["ann"])
        #expect(try await engine.service.timeline(incident.id).contains { $0.detail == "acknowledged via voice (key 1) by ann" })
    }

    @Test func timersSurviveARestartAndFireOnce() async throws {
        let path = NSTemporaryDirectory() + "herald-restart-\(UUID().uuidString.prefix(8))/herald.sqlite"
        let clock = TestClock()
        var engine = try await Engine(clock: clock, storePath: path)
        let incident = try await engine.service.ingest(AlertEvent(dedupKey: "r", title: "Restart me", severity: .critical)).incident
        try await engine.pass()
        engine.stop()
        // A new process on the same file: the repeat timer is still there and fires once.
        engine = try await Engine(clock: clock, storePath: path)
        defer { engine.stop() }
        clock.advance(minutes: 1)
        let service = engine.service
        async let a: Int = service.fireDueTimers()
        async let b: Int = service.fireDueTimers()
        #expect(try await a + b == 1)
        while try await engine.dispatcher.dispatchDue() > 0 {}
        #expect(try await engine.paths().sorted() == ["/ann-hook", "/ops"])
        let rows = try await engine.service.deliveries(incident.id)
        #expect(rows.count == 4 && rows.allSatisfy { $0.state == .delivered })
    }

    @Test func retryHintsBackoffAndDeadRowsAreRecorded() async throws {
        var settings = DispatchSettings()
        settings.maxAttempts = 3
        let engine = try await Engine(settings: settings)
        defer { engine.stop() }
        try await engine.sink.post("/_mode", json: #"{"mode": "429:7", "count": 1}"#)
        let incident = try await engine.service.ingest(AlertEvent(dedupKey: "q", title: "Info only", severity: .info)).incident
        try await engine.pass()
        var row = try #require(try await engine.service.deliveries(incident.id).first)
        #expect(row.state == .pending && row.attempts == 1 && row.lastError != nil)
        #expect(abs(row.nextAttemptAt.timeIntervalSince(engine.clock.read()) - 7) < 0.01, "Retry-After: 7 must be honoured")
        engine.clock.advance(minutes: 0.2)
        try await engine.pass()
        row = try #require(try await engine.service.deliveries(incident.id).first)
        #expect(row.state == .delivered && row.attempts == 2)

        try await engine.sink.post("/_mode", json: #"{"mode": "500", "count": 0}"#)
        let failing = try await engine.service.ingest(AlertEvent(dedupKey: "f", title: "Always 500", severity: .info)).incident
        var waits: [Double] = []
        for _ in 0..<3 {
            try await engine.pass()
            let r = try #require(try await engine.service.deliveries(failing.id).first)
            if r.state == .dead { break }
            waits.append(r.nextAttemptAt.timeIntervalSince(engine.clock.read()))
            engine.clock.advance(minutes: 30)
        }
        let dead = try #require(try await engine.service.deliveries(failing.id).first)
        #expect(dead.state == .dead && dead.attempts == 3 && (dead.lastError ?? "").contains("500"), "\(dead)")
        // Exponential with ±25 % jitter: about 2 s, then about 4 s.
        #expect(waits.count == 2 && (1.5...2.5).contains(waits[0]) && (3...5).contains(waits[1]), "\(waits)")
        #expect(try await engine.service.timeline(failing.id).contains { $0.kind == "delivery_failed" })

        try await engine.sink.post("/_mode", json: #"{"mode": "400", "count": 0}"#)
        let refused = try await engine.service.ingest(AlertEvent(dedupKey: "p", title: "Refused", severity: .info)).incident
        try await engine.pass()
        let permanent = try #require(try await engine.service.deliveries(refused.id).first)
        #expect(permanent.state == .dead && permanent.attempts == 1)
    }

    @Test func aSaturatedDestinationGetsOneSummaryInsteadOfDrops() async throws {
        let engine = try await Engine(opsRateLimit: "{count: 2, per_seconds: 60}")
        defer { engine.stop() }
        var ids: [String] = []
        for n in 1...5 {
            ids.append(try await engine.service.ingest(AlertEvent(dedupKey: "burst-\(n)", title: "Burst \(n)", severity: .info)).incident.id)
        }
        try await engine.pass()
        let got = try await engine.received()
        #expect(got.count == 2, "two messages fit the quota: \(got)")
        // Both go out concurrently: either may arrive first.
        #expect(got.filter { $0["title"]?.stringValue?.hasPrefix("4 notifications (rate limited)") == true }.count == 1, "\(got)")
        var states: [OutboxEntry.State] = []
        for id in ids { states += try await engine.service.deliveries(id).map(\.state) }
        #expect(states.filter { $0 == .delivered }.count == 2 && states.filter { $0 == .merged }.count == 3, "\(states)")

        // The bucket is empty: the next message waits for a token (30 s at 2/min), it is not dropped.
        let late = try await engine.service.ingest(AlertEvent(dedupKey: "late", title: "Late", severity: .info)).incident
        try await engine.pass()
        #expect(try await engine.received().count == 2)
        let waiting = try #require(try await engine.service.deliveries(late.id).first)
        #expect(waiting.state == .pending && abs(waiting.nextAttemptAt.timeIntervalSince(engine.clock.read()) - 30) < 1)
        engine.clock.advance(minutes: 0.5)
        try await engine.pass()
        #expect(try await engine.received().count == 3)
    }

    @Test func dueQueriesUseTheirIndexes() async throws {
        let store = try SQLiteStore.inMemory()
        let plans = try await store.queryPlans()
        #expect(plans["dueTimers"]?.contains("USING INDEX timer_due") == true, "\(plans)")
        #expect(plans["lease"]?.contains("USING INDEX notification_due") == true, "\(plans)")
        #expect(plans["lease"]?.contains("SCAN notification") == false, "\(plans)")
    }
}

@Suite("Escalation rules")
struct RuleTests {
    static func policy(_ yaml: String) throws -> EscalationPolicy {
        try HeraldConfig.parse("plugin_dirs: []\n" + yaml, file: "/tmp/rules.yaml", environment: [:]).policy
    }

    static func incident(_ title: String = "Disk full", severity: Severity = .critical, labels: [String: String] = [:], service: String = "default") -> Incident {
        Incident(id: "inc_x", number: 1, dedupKey: "k", service: service, title: title, description: "", severity: severity, status: .triggered,
                 labels: labels, alertCount: 1, createdAt: Date(), updatedAt: Date(), acknowledgedBy: [], rule: nil, level: 0, escalationGeneration: 0)
    }

    @Test func rulesMatchTopToBottomOnSeverityTitleAndLabelsAsAnOrOfAndGroups() throws {
        let policy = try Self.policy("""
        members: [{name: ann}]
        services:
          - name: default
            rules:
              - name: prod-db
                when:
                  - {severity: [critical], labels: {env: {in: [prod]}, team: {not_in: [test]}}}
                  - {title: {contains: [replica, lag]}}
                levels: [{members: [ann]}]
              - name: anything-critical
                when: [{severity: [critical]}]
                levels: [{members: [ann]}]
          - name: payments
            rules:
              - {name: all, levels: [{members: [ann]}]}
        """)
        let now = Date()
        #expect(policy.rule(for: Self.incident(labels: ["env": "prod"]), at: now)?.name == "prod-db")
        #expect(policy.rule(for: Self.incident(labels: ["env": "prod", "team": "test"]), at: now)?.name == "anything-critical", "NOT IN excludes")
        #expect(policy.rule(for: Self.incident(labels: ["env": "staging"]), at: now)?.name == "anything-critical")
        #expect(policy.rule(for: Self.incident("Replica LAG 30s", severity: .info), at: now)?.name == "prod-db", "the second AND group, case-insensitive")
        #expect(policy.rule(for: Self.incident("Replica only", severity: .info), at: now) == nil, "every test of a group must hold")
        #expect(policy.rule(for: Self.incident(severity: .info, service: "payments"), at: now)?.name == "all")
        #expect(policy.rule(for: Self.incident(severity: .warning, service: "unknown"), at: now) == nil, "unknown services use default")
    }

    @Test func aWeeklyTimeWindowIsReadInItsTimeZoneAndMayCrossMidnight() throws {
        let policy = try Self.policy("""
        members: [{name: ann}]
        services:
          - name: default
            rules:
              - name: office-hours
                time_window: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00", timezone: Asia/Shanghai}
                levels: [{members: [ann]}]
              - name: nights
                time_window: {days: [fri], from: "22:00", to: "06:00", timezone: UTC}
                levels: [{members: [ann]}]
        """)
        func at(_ iso: String) -> Date { try! Date(iso, strategy: .iso8601) }
        // 2026-11-24 is a Tuesday. 02:00 UTC is 10:00 in Shanghai.
        #expect(policy.rule(for: Self.incident(), at: at("2026-11-24T02:00:00Z"))?.name == "office-hours")
        #expect(policy.rule(for: Self.incident(), at: at("2026-11-24T11:00:00Z")) == nil, "19:00 in Shanghai")
        // Friday 23:00 UTC and Saturday 05:00 UTC belong to Friday's night window; Saturday 23:00 does not.
        #expect(policy.rule(for: Self.incident(), at: at("2026-11-27T23:00:00Z"))?.name == "nights")
        #expect(policy.rule(for: Self.incident(), at: at("2026-11-28T05:00:00Z"))?.name == "nights")
        #expect(policy.rule(for: Self.incident(), at: at("2026-11-28T23:00:00Z")) == nil)
    }

    @Test func policyMistakesAreReportedWithTheirPlace() {
        do {
            _ = try Self.policy("""
            members: [{name: ann, phone: "12345"}]
            teams: [{name: dba, members: [ghost]}]
            services:
              - name: default
                rules:
                  - name: r
                    delay_seconds: 4000
                    levels:
                      - {members: [ann], timeout_minutes: 721, repeat: {times: 7, interval_minutes: 0.1}}
                      - {teams: [nope], group_chats: [no-such-chat]}
            """)
            Issue.record("the config was accepted")
        } catch {
            let text = (error as? ConfigErrors)?.errors.map(\.description) ?? ["\(error)"]
            #expect(text.contains { $0.contains(":2:") && $0.contains("members[0].phone: must be an E.164 number") }, "\(text)")
            #expect(text.contains { $0.contains("delay_seconds: must be a whole number from 0 to 3600") }, "\(text)")
            #expect(text.contains { $0.contains("timeout_minutes: must be a whole number from 0 to 720") }, "\(text)")
            #expect(text.contains { $0.contains("repeat.times: must be a whole number from 0 to 6") }, "\(text)")
            #expect(text.contains { $0.contains("repeat.interval_minutes: must be a number of minutes from 0.5 to 120") }, "\(text)")
        }
        do {
            _ = try Self.policy("""
            members: [{name: ann}]
            teams: [{name: dba, members: [ghost]}]
            services:
              - name: default
                rules:
                  - name: r
                    levels:
                      - {members: [ann]}
                      - {teams: [nope], group_chats: [no-such-chat]}
            """)
            Issue.record("the config was accepted")
        } catch {
            let text = (error as? ConfigErrors)?.errors.map(\.description) ?? ["\(error)"]
            #expect(text.contains { $0.contains(":3:") && $0.contains("teams.dba: member 'ghost' is not under members:") }, "\(text)")
            #expect(text.contains { $0.contains(":10:") && $0.contains("levels[1]: team 'nope' is not under teams:") }, "\(text)")
            #expect(text.contains { $0.contains("group chat 'no-such-chat' is not an integration") }, "\(text)")
        }
    }
}

@Suite("Escalation windows", .serialized)
struct EscalationWindowTests {
    @Test func anIncidentClosedWithinTheDelayWindowNotifiesNobody() async throws {
        let engine = try await Engine(policy: """
        members: [{name: ann, preferences: {critical: [ann-hook]}}]
        services:
          - name: default
            rules:
              - {name: delayed, delay_seconds: 120, levels: [{members: [ann], direct: follow_preference, group_chats: [ops]}]}
        """)
        defer { engine.stop() }
        let quiet = try await engine.service.ingest(AlertEvent(dedupKey: "flap", title: "Flapping", severity: .critical)).incident
        engine.clock.advance(minutes: 1)
        try await engine.pass()
        _ = try await engine.service.ingest(AlertEvent(action: .resolve, dedupKey: "flap", title: "Flapping"))
        engine.clock.advance(minutes: 5)
        try await engine.pass()
        #expect(try await engine.paths().isEmpty, "resolved within the delay: nobody is told")
        #expect(try await engine.service.timeline(quiet.id).contains { $0.kind == "delayed" })

        _ = try await engine.service.ingest(AlertEvent(dedupKey: "real", title: "Real", severity: .critical))
        engine.clock.advance(minutes: 2)
        try await engine.pass()
        #expect(try await engine.paths().sorted() == ["/ann-hook", "/ops"])
    }

    @Test func aForcedLevelEscalatesAnAcknowledgedIncidentUntilItIsClosed() async throws {
        let engine = try await Engine(policy: """
        members: [{name: ann, preferences: {critical: [ann-hook]}}, {name: bob, preferences: {critical: [bob-hook]}}]
        services:
          - name: default
            rules:
              - name: forced
                levels:
                  - {members: [ann], direct: follow_preference, timeout_minutes: 10, force: true}
                  - {members: [bob], direct: follow_preference, timeout_minutes: 0}
        """)
        defer { engine.stop() }
        let incident = try await engine.service.ingest(AlertEvent(dedupKey: "f", title: "Must be fixed", severity: .critical)).incident
        try await engine.pass()
        _ = try await engine.service.act(.acknowledge, on: incident.id, by: "ann", via: "")
        engine.clock.advance(minutes: 10)
        try await engine.pass()
        #expect(try await engine.paths() == ["/ann-hook", "/bob-hook"], "acknowledged but not closed: bob is told")

        let other = try await engine.service.ingest(AlertEvent(dedupKey: "g", title: "Closed in time", severity: .critical)).incident
        try await engine.pass()
        _ = try await engine.service.act(.close, on: other.id, by: "ann", via: "")
        engine.clock.advance(minutes: 10)
        try await engine.pass()
        #expect(try await engine.paths().count == 3, "closed: no escalation")
    }
}
