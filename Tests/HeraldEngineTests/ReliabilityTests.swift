import Foundation
import HeraldCore
import HeraldHTTP
import HeraldPluginHost
import HeraldTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Reliability of the real `herald serve` process: a SIGKILL in the middle of a burst of alerts,
// receivers that fail in every way a receiver fails, and a SIGTERM while deliveries are in
// flight. Each test runs the binary built next to the tests on its own port, config folder and
// SQLite file, and delivers through the webhook plugin to Tests/mocks/notify_sink.py.
//
// Timings are bounds, not exact values: the test machine may be small and busy.

/// `herald serve` as a child process. Stdout and stderr go to one log file, so nothing blocks
/// on a full pipe and a failure can show what the server said.
final class ServeProcess: @unchecked Sendable {
    // @unchecked: the Process is only started, signalled and waited for, from one test at a time.
    let port: Int
    let logPath: String
    private let process = Process()

    init(config: String, port: Int, logPath: String) throws {
        self.port = port
        self.logPath = logPath
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.executableURL = URL(fileURLWithPath: HeraldBinary.path)
        process.arguments = ["serve", "--config", config]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log.close()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var logTail: String { String(log.suffix(3000)) }

    /// Waits for the "herald: serving on" line, then for /healthz to answer 200.
    func waitUntilServing(_ client: APIClient, timeout: TimeInterval = 60) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard process.isRunning else {
                throw Fixtures.BuildError(description: "herald serve exited (\(process.terminationStatus)) before serving:\n\(logTail)")
            }
            if log.contains("herald: serving on"), (try? await client.send("GET", "/healthz", timeoutMs: 2000).status) == 200 {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Fixtures.BuildError(description: "herald serve did not serve within \(Int(timeout)) s:\n\(logTail)")
    }

    func signal(_ signal: Int32) { if process.isRunning { _ = kill(process.processIdentifier, signal) } }

    /// Waits for the process to exit; returns its exit status (nil on a signal or on the timeout).
    func waitForExit(timeout: TimeInterval) async -> (exited: Bool, status: Int32?) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        guard !process.isRunning else { return (false, nil) }
        return (true, process.terminationReason == .exit ? process.terminationStatus : nil)
    }

    /// SIGKILL and reap, if it still runs: no test leaves a server behind.
    func stop() {
        guard process.isRunning else { return }
        _ = kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }

    /// A port nobody listens on now: bind port 0, read what the kernel chose, close.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Fixtures.BuildError(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Fixtures.BuildError(description: "bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw Fixtures.BuildError(description: "getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Herald's HTTP API, with the admin token.
struct APIClient: Sendable {
    static let token = "reliability-admin-token-0123456789"
    let engine: TransferEngine
    let base: String

    init(port: Int) {
        engine = TransferEngine()
        base = "http://127.0.0.1:\(port)"
    }

    func send(_ method: String, _ path: String, json: String? = nil, timeoutMs: Int = 15_000) async throws -> (status: Int, body: JSONValue?) {
        var headers = [HTTPHeader(name: "Authorization", value: "Bearer \(Self.token)")]
        if json != nil { headers.append(HTTPHeader(name: "Content-Type", value: "application/json")) }
        let options = TransferOptions(egress: EgressPolicy(allowedHosts: ["127.0.0.1"], allowLoopback: true))
        do {
            let response = try await engine.perform(.http(method: method, url: base + path, headers: headers, body: Array((json ?? "").utf8),
                                                          timeoutMilliseconds: timeoutMs), options: options)
            return (response.status, try? JSONValue.parse(Data(response.body)))
        } catch {
            throw error
        }
    }

    /// Posts a trigger; returns the status and the incident id of a 202.
    func trigger(_ dedupKey: String, service: String = "", title: String? = nil) async throws -> (status: Int, incidentID: String?) {
        let body = #"{"event_action":"trigger","dedup_key":"\#(dedupKey)","title":"\#(title ?? "Reliability \(dedupKey)")","severity":"critical","service":"\#(service)"}"#
        let (status, json) = try await send("POST", "/api/v1/events", json: body)
        return (status, json?["incident_id"]?.stringValue)
    }

    /// GET /api/v1/incidents/{id}: the incident, its timeline and its deliveries.
    func incident(_ id: String) async throws -> JSONValue {
        let (status, json) = try await send("GET", "/api/v1/incidents/\(id)")
        guard status == 200, let json else { throw Fixtures.BuildError(description: "GET incident \(id): \(status)") }
        return json
    }

    func shutdown() { engine.shutdown() }
}

/// One delivery row as GET /api/v1/incidents/{id} shows it.
struct DeliveryRow {
    let integration: String
    let event: String
    let state: String
    let attempts: Int
    let lastError: String

    init(_ json: JSONValue) {
        integration = json["integration"]?.stringValue ?? ""
        event = json["event"]?.stringValue ?? ""
        state = json["state"]?.stringValue ?? ""
        attempts = Int(json["attempts"]?.numberValue ?? -1)
        lastError = json["last_error"]?.stringValue ?? ""
    }

    var isFinal: Bool { ["delivered", "dead", "cancelled", "merged"].contains(state) }
}

/// A record of notify_sink.py (/_received or /_attempts).
struct SinkRecord {
    let key: String
    let event: String
    let at: Double
    let answer: String
    var incidentID: String { String(key.prefix { $0 != ":" }) }

    init(_ json: JSONValue) {
        key = json["key"]?.stringValue ?? ""
        event = json["event"]?.stringValue ?? ""
        at = json["at"]?.numberValue ?? 0
        answer = json["answer"]?.stringValue ?? ""
    }

    static func list(_ sink: MockServer, _ path: String) async throws -> [SinkRecord] {
        (try JSONValue.parse(Data(try await sink.get(path))).arrayValue ?? []).map(SinkRecord.init)
    }
}

/// What the senders of a burst saw.
final class BurstLog: Sendable {
    let accepted = Mutex<[(key: String, id: String)]>([])
    let unanswered = Mutex<[String]>([])   // sent, but no answer: the kill came first
    let refused = Mutex<[String]>([])      // answered, but not 202
    let atKill = Mutex<(accepted: Int, delivered: Int)>((0, 0))
}

/// A temp folder with herald.yaml and the store; its servers are killed when the test ends.
final class ReliabilityHarness: @unchecked Sendable {
    // @unchecked: servers are appended and stopped from the test's own task.
    let dir: String
    let port: Int
    let client: APIClient
    private(set) var servers: [ServeProcess] = []

    init(name: String) throws {
        dir = NSTemporaryDirectory() + "herald-reliability-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        port = try ServeProcess.freePort()
        client = APIClient(port: port)
    }

    var configPath: String { dir + "/herald.yaml" }

    /// Writes herald.yaml: the given integrations (name -> URL) and policy, a fast scheduler tick.
    func writeConfig(hooks: [(name: String, url: String, timeoutMs: Int)], dispatch: String?, policy: String) throws {
        let integrations = hooks.map { hook in
            """
              - name: \(hook.name)
                plugin: webhook
                settings: {url: "\(hook.url)", timeout_ms: \(hook.timeoutMs)}
                egress: {allow_loopback: true}
            """
        }.joined(separator: "\n")
        let text = """
        plugin_dirs: [\(try BuiltPlugins.directory())]
        store: {path: \(dir)/herald.sqlite}
        server:
          listen: 127.0.0.1:\(port)
          public_url: http://127.0.0.1:\(port)
          link_secret: reliability-link-secret-0123456789abcdef
          tick_seconds: 0.1
          api_tokens:
            - {token: \(APIClient.token), role: admin}
        \(dispatch.map { "  dispatch: \($0)" } ?? "")
        integrations:
        \(integrations)
        \(policy)
        """
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Starts `herald serve` on the folder's config and store and waits until it serves.
    @discardableResult
    func start() async throws -> ServeProcess {
        let server = try ServeProcess(config: configPath, port: port, logPath: dir + "/herald-\(servers.count + 1).log")
        servers.append(server)
        try await server.waitUntilServing(client)
        return server
    }

    func stop() {
        servers.forEach { $0.stop() }
        client.shutdown()
    }

    deinit { stop() }
}

/// Polls GET /api/v1/incidents/{id} until every delivery row of each incident is final.
func waitForFinalDeliveries(_ client: APIClient, _ ids: [String], timeout: TimeInterval) async throws -> [String: [DeliveryRow]] {
    let deadline = Date().addingTimeInterval(timeout)
    var rows: [String: [DeliveryRow]] = [:]
    while true {
        for id in ids {
            rows[id] = (try await client.incident(id)["deliveries"]?.arrayValue ?? []).map(DeliveryRow.init)
        }
        let open = rows.values.flatMap { $0 }.filter { !$0.isFinal }
        if open.isEmpty && rows.values.allSatisfy({ !$0.isEmpty }) { return rows }
        if Date() > deadline { return rows }
        try await Task.sleep(for: .milliseconds(200))
    }
}

@Suite("Reliability: herald serve under crashes, failing receivers and shutdown", .serialized)
struct ReliabilityTests {
    /// One level that tells the `hook` webhook and tells it again 30 s later (a store timer).
    static let repeatingPolicy = """
    services:
      - name: default
        rules:
          - name: page
            levels:
              - group_chats: [hook]
                repeat: {times: 1, interval_minutes: 0.5}
                timeout_minutes: 0
    """

    // MARK: 1. Crash safety

    /// SIGKILL in the middle of a burst of 300 alerts (4 concurrent senders, distinct dedup
    /// keys), then a restart on the same store: every 202 is an incident, every notification
    /// that was due is delivered (at least once: duplicates are counted), and every repeat timer
    /// stored before the kill still fires 30 s after its incident opened.
    @Test func aKilledServerLosesNoAcceptedAlertNotificationOrTimer() async throws {
        let harness = try ReliabilityHarness(name: "crash")
        defer { harness.stop() }
        let sink = try MockServer(script: "notify_sink.py", arguments: ["--log", harness.dir + "/sink.jsonl"])
        defer { sink.stop() }
        // A short lease: rows a killed server had leased come back after 5 s, not 120 s.
        try harness.writeConfig(hooks: [("hook", sink.base + "/hook", 3000)], dispatch: "{lease_seconds: 5}", policy: Self.repeatingPolicy)
        let first = try await harness.start()

        let total = 300, senders = 4, killAfter = 100
        let log = BurstLog()
        let client = harness.client
        let started = Date()
        await withTaskGroup(of: Void.self) { group in
            for s in 0..<senders {
                group.addTask {
                    for i in stride(from: s, to: total, by: senders) {
                        let key = "crash-\(i)"
                        do {
                            let (status, id) = try await client.trigger(key)
                            if status == 202, let id { log.accepted.withLock { $0.append((key, id)) } } else { log.refused.withLock { $0.append("\(key): \(status)") } }
                        } catch {
                            log.unanswered.withLock { $0.append(key) }
                            return  // the server is gone; the rest of this sender's alerts are never sent
                        }
                    }
                }
            }
            group.addTask {
                while log.accepted.withLock({ $0.count }) < killAfter { try? await Task.sleep(for: .milliseconds(1)) }
                first.signal(SIGKILL)
                let delivered = (try? await SinkRecord.list(sink, "/_received").count) ?? -1
                log.atKill.withLock { $0 = (log.accepted.withLock { $0.count }, delivered) }
            }
        }
        let burst = Date().timeIntervalSince(started)
        let exit = await first.waitForExit(timeout: 10)
        #expect(exit.exited && exit.status == nil, "SIGKILL ends the server")
        #expect(log.refused.withLock { $0 }.isEmpty, "every alert answered before the kill was accepted: \(log.refused.withLock { $0 })")
        let acceptedAlerts = log.accepted.withLock { $0 }
        let lost = log.unanswered.withLock { $0 }
        #expect(acceptedAlerts.count >= killAfter && acceptedAlerts.count < total, "the kill came in the middle of the burst")

        // Restart on the same store.
        try await harness.start()

        // Every 202 became an incident with its dedup key. What the killed server left: rows
        // still leased (they come back when the 5 s lease ends), pending, delivered.
        var statesAtRestart: [String: Int] = [:]
        for (key, id) in acceptedAlerts {
            let incident = try await harness.client.incident(id)
            #expect(incident["incident"]?["dedup_key"]?.stringValue == key, "incident \(id) of \(key)")
            for row in (incident["deliveries"]?.arrayValue ?? []).map(DeliveryRow.init) { statesAtRestart[row.state, default: 0] += 1 }
        }
        // Nothing else exists, except possibly the alerts in flight at the kill (no answer).
        let (listStatus, list) = try await harness.client.send("GET", "/api/v1/incidents?limit=500")
        #expect(listStatus == 200)
        let incidents = (list?["incidents"]?.arrayValue ?? []).compactMap { item -> (id: String, key: String, created: Date)? in
            guard let id = item["id"]?.stringValue, let key = item["dedup_key"]?.stringValue, let text = item["created_at"]?.stringValue,
                  let created = try? Date(text, strategy: .iso8601) else { return nil }
            return (id, key, created)
        }
        let acceptedKeys = Set(acceptedAlerts.map(\.key)), unansweredKeys = Set(lost)
        #expect(incidents.count >= acceptedAlerts.count && incidents.count <= acceptedAlerts.count + lost.count)
        #expect(incidents.allSatisfy { acceptedKeys.contains($0.key) || unansweredKeys.contains($0.key) })
        #expect(Set(incidents.map(\.key)).count == incidents.count, "one incident per dedup key")

        // Every incident's first notification and its repeat 30 s later reach the sink.
        let lastCreated = incidents.map(\.created).max() ?? Date()
        let deadline = lastCreated.addingTimeInterval(30 + 25)
        var received: [SinkRecord] = []
        var missing: [String] = []
        repeat {
            try await Task.sleep(for: .seconds(1))
            received = try await SinkRecord.list(sink, "/_received")
            let byIncident = Dictionary(grouping: received, by: \.incidentID)
            missing = incidents.filter { incident in
                let events = Set((byIncident[incident.id] ?? []).map(\.event))
                return !(events.contains("fire") && events.contains("refire"))
            }.map(\.id)
        } while !missing.isEmpty && Date() < deadline
        #expect(missing.isEmpty, "\(missing.count) incident(s) without both notifications, e.g. \(missing.prefix(3))\n\(harness.servers.last?.logTail ?? "")")

        // The store agrees: two rows per incident (fire, refire), both delivered; and the repeat
        // came from the timer, 30 s after the incident opened, even when the kill fell between.
        let byKey = Dictionary(grouping: received, by: \.key)
        var early: [String] = []
        for incident in incidents {
            let rows = (try await harness.client.incident(incident.id)["deliveries"]?.arrayValue ?? []).map(DeliveryRow.init)
            #expect(rows.map(\.event).sorted() == ["fire", "refire"] && rows.allSatisfy { $0.state == "delivered" },
                    "incident \(incident.id): \(rows.map { "\($0.event)=\($0.state)" })")
            let refire = received.filter { $0.incidentID == incident.id && $0.event == "refire" }.map(\.at).min() ?? 0
            if refire < incident.created.timeIntervalSince1970 + 29 { early.append(incident.id) }
        }
        #expect(early.isEmpty, "repeats sent before their 30 s: \(early.prefix(3))")
        let distinct = byKey.count
        let duplicates = received.count - distinct
        #expect(distinct == incidents.count * 2)
        print("""
            reliability/crash: burst of \(total) alerts from \(senders) senders, SIGKILL after \(String(format: "%.2f", burst)) s with \
            \(log.atKill.withLock { $0.accepted }) accepted (\(acceptedAlerts.count) in all, \(lost.count) unanswered, \(incidents.count) incidents \
            after restart); \(log.atKill.withLock { $0.delivered }) notifications delivered before the kill; rows at restart \
            \(statesAtRestart.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); after restart \(distinct) distinct \
            notifications delivered (\(received.count) deliveries, \(duplicates) duplicate(s), at-least-once)
            """)
    }

    // MARK: 2. Failing receivers

    /// Each scenario has its own sink in one failure mode, its own integration and service.
    struct Scenario {
        let name: String
        let mode: String
        let count: Int       // 0 = every request
        let alerts: Int
        let expect: Expect
        var timeoutMs = 1000
        enum Expect { case dead(reason: String), delivered(attempts: ClosedRange<Int>) }
    }

    /// With receivers answering 500, 429 + Retry-After, hanging past the plugin's timeout and
    /// resetting connections (for good, or for a few requests), every notification ends
    /// delivered or dead with a reason, and retries of a 429 wait what Retry-After says, even
    /// when that is longer than the configured maximum backoff.
    @Test func everyNotificationEndsDeliveredOrDeadWithAReason() async throws {
        let maxAttempts = 4
        let scenarios = [
            Scenario(name: "s500", mode: "500", count: 0, alerts: 3, expect: .dead(reason: "receiver answered 500")),
            Scenario(name: "reset", mode: "reset", count: 0, alerts: 3, expect: .dead(reason: "receiving from host")),
            Scenario(name: "hang", mode: "hang:4", count: 0, alerts: 3, expect: .dead(reason: "timed out after 1000 ms")),
            Scenario(name: "throttle", mode: "429:2", count: 0, alerts: 2, expect: .dead(reason: "receiver answered 429")),
            Scenario(name: "throttle-once", mode: "429:2", count: 2, alerts: 1, expect: .delivered(attempts: 3...3)),
            Scenario(name: "flaky500", mode: "500", count: 2, alerts: 1, expect: .delivered(attempts: 3...3)),
            // libcurl may resend on a fresh connection by itself when a reused one is reset.
            Scenario(name: "flakyreset", mode: "reset", count: 1, alerts: 1, expect: .delivered(attempts: 1...2)),
            Scenario(name: "slow-once", mode: "hang:4", count: 1, alerts: 1, expect: .delivered(attempts: 2...2)),
        ]
        let harness = try ReliabilityHarness(name: "sinks")
        defer { harness.stop() }
        var sinks: [String: MockServer] = [:]
        defer { sinks.values.forEach { $0.stop() } }
        for s in scenarios { sinks[s.name] = try MockServer(script: "notify_sink.py") }
        let policy = "services:\n" + scenarios.map { s in
            """
              - name: \(s.name)
                rules:
                  - name: \(s.name)
                    levels: [{group_chats: [\(s.name)], timeout_minutes: 0}]
            """
        }.joined(separator: "\n")
        // Short backoffs (0.2 s base, 1 s at most): a Retry-After of 2 s is longer than any of them.
        try harness.writeConfig(hooks: scenarios.map { ($0.name, sinks[$0.name]!.base + "/" + $0.name, $0.timeoutMs) },
                                dispatch: "{max_attempts: \(maxAttempts), base_backoff_seconds: 0.2, max_backoff_seconds: 1, lease_seconds: 30}",
                                policy: policy)
        try await harness.start()
        for s in scenarios { try await sinks[s.name]!.post("/_mode", json: #"{"mode": "\#(s.mode)", "count": \#(s.count)}"#) }

        var incidents: [String: [String]] = [:]
        for s in scenarios {
            for i in 0..<s.alerts {
                let (status, id) = try await harness.client.trigger("\(s.name)-\(i)", service: s.name)
                #expect(status == 202)
                if let id { incidents[s.name, default: []].append(id) }
            }
        }
        let rows = try await waitForFinalDeliveries(harness.client, incidents.values.flatMap { $0 }, timeout: 45)

        var summary: [String] = []
        for s in scenarios {
            let ids = incidents[s.name] ?? []
            let attempts = try await SinkRecord.list(sinks[s.name]!, "/_attempts")
            for id in ids {
                let list = rows[id] ?? []
                #expect(list.count == 1, "\(s.name): one notification per incident, got \(list.count)")
                guard let row = list.first else { continue }
                let seen = attempts.filter { $0.incidentID == id }.sorted { $0.at < $1.at }
                let gaps = zip(seen.dropFirst(), seen).map { $0.at - $1.at }
                switch s.expect {
                case .dead(let reason):
                    #expect(row.state == "dead" && row.attempts == maxAttempts, "\(s.name): \(row.state) after \(row.attempts) attempt(s)")
                    #expect(row.lastError.contains(reason), "\(s.name): the reason is '\(row.lastError)'")
                    let timeline = try await harness.client.incident(id)["timeline"]?.arrayValue ?? []
                    #expect(timeline.contains { $0["kind"]?.stringValue == "delivery_failed" && ($0["detail"]?.stringValue ?? "").contains(reason) },
                            "\(s.name): the timeline says why it gave up")
                case .delivered(let range):
                    #expect(row.state == "delivered" && range.contains(row.attempts), "\(s.name): \(row.state) after \(row.attempts) attempt(s)")
                }
                if s.mode.hasPrefix("hang") {
                    // Seen before CURLOPT_PIPEWAIT was limited to https: libcurl queued requests to a
                    // plain-HTTP host behind the hanging one, and some timed out before being sent
                    // ("Failed to resolve host '127.0.0.1' with timeout after 0 ms"). Kept as intermittent
                    // until confirmed gone on a build with a working store.
                    withKnownIssue("attempts after a timeout can fail before reaching the receiver", isIntermittent: true) {
                        #expect(seen.count >= row.attempts, "\(s.name): the sink saw \(seen.count) request(s) for \(row.attempts) attempt(s): \(row.lastError)")
                    }
                } else {
                    #expect(seen.count >= row.attempts, "\(s.name): the sink saw \(seen.count) request(s) for \(row.attempts) attempt(s)")
                }
                if s.mode.hasPrefix("429") {
                    // Every retry after a 429 waited for its Retry-After (2 s); backoff alone is ≤ 1.25 s.
                    #expect(gaps.count >= 2 && gaps.allSatisfy { $0 >= 1.9 && $0 < 6 }, "\(s.name): retries \(gaps) s apart")
                }
                if s.mode.hasPrefix("hang") {
                    // The retry came after the 1 s timeout, without waiting for the 4 s hang to end.
                    #expect(gaps.allSatisfy { $0 >= 0.9 && $0 < 3.9 }, "\(s.name): attempts \(gaps) s apart")
                }
                summary.append("\(s.name) \(row.state)/\(row.attempts) (sink saw \(seen.count)) gaps \(gaps.map { String(format: "%.2f", $0) })")
            }
        }
        print("reliability/sinks: " + summary.joined(separator: "; "))
    }

    // MARK: 3. Graceful shutdown

    /// SIGTERM while deliveries hang at the receiver: the server finishes the deliveries in
    /// flight and exits 0 within a bound; after a restart every notification is delivered at
    /// once: no row was left leased (with the default 120 s lease this would take minutes).
    @Test func sigtermFinishesDeliveriesInFlightAndLosesNothing() async throws {
        let harness = try ReliabilityHarness(name: "sigterm")
        defer { harness.stop() }
        let sink = try MockServer(script: "notify_sink.py")
        defer { sink.stop() }
        try harness.writeConfig(hooks: [("hook", sink.base + "/hook", 10_000)], dispatch: nil, policy: """
            services:
              - name: default
                rules:
                  - name: page
                    levels: [{group_chats: [hook], timeout_minutes: 0}]
            """)
        let server = try await harness.start()
        try await sink.post("/_mode", json: #"{"mode": "hang:2", "count": 0}"#)
        // Sent together, so that several deliveries are in flight at once.
        let client = harness.client
        let posted = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for i in 0..<12 { group.addTask { try await client.trigger("term-\(i)") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(posted.allSatisfy { $0.0 == 202 })
        let ids = posted.compactMap(\.1)
        // Wait until deliveries are in flight at the sink.
        let deadline = Date().addingTimeInterval(15)
        while try await SinkRecord.list(sink, "/_attempts").isEmpty && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(300))
        let inFlight = try await SinkRecord.list(sink, "/_attempts").count
        #expect(inFlight > 0, "deliveries are in flight")

        let signalled = Date()
        server.signal(SIGTERM)
        let exit = await server.waitForExit(timeout: 20)
        let took = Date().timeIntervalSince(signalled)
        #expect(exit.exited, "herald exits within 20 s of SIGTERM\n\(server.logTail)")
        #expect(exit.status == 0, "herald exits 0 after SIGTERM\n\(server.logTail)")
        let deliveredBefore = try await SinkRecord.list(sink, "/_received").count

        try await sink.post("/_mode", json: #"{"mode": "ok", "count": 0}"#)
        let restarted = Date()
        try await harness.start()
        let rows = try await waitForFinalDeliveries(harness.client, ids, timeout: 20)
        let afterRestart = Date().timeIntervalSince(restarted)
        for id in ids {
            #expect(rows[id]?.map(\.state) == ["delivered"], "incident \(id): \(rows[id]?.map { "\($0.state)/\($0.attempts) \($0.lastError)" } ?? [])")
        }
        #expect(afterRestart < 20, "no row waited for its lease to end")
        let received = try await SinkRecord.list(sink, "/_received")
        let keys = Set(received.map(\.key))
        #expect(keys.count == ids.count, "every notification reached the sink")
        print("""
            reliability/sigterm: \(inFlight) deliveries in flight at SIGTERM; exit \(exit.status.map(String.init) ?? "none") after \
            \(String(format: "%.2f", took)) s with \(deliveredBefore) delivered; after restart all \(ids.count) delivered within \
            \(String(format: "%.2f", afterRestart)) s (\(received.count - keys.count) duplicate(s))
            """)
    }

    // MARK: Config

    @Test func serverDispatchSettingsParse() throws {
        let config = try HeraldConfig.parse("""
            plugin_dirs: [plugins]
            server:
              dispatch: {max_attempts: 4, base_backoff_seconds: 0.2, max_backoff_seconds: 1, lease_seconds: 30}
            """, file: "/etc/herald/herald.yaml", environment: [:])
        var expected = DispatchSettings()
        expected.maxAttempts = 4
        expected.baseBackoff = 0.2
        expected.maxBackoff = 1
        expected.leaseSeconds = 30
        #expect(config.server.dispatch == expected)
        #expect(try HeraldConfig.parse("plugin_dirs: [p]\nserver: {listen: 127.0.0.1:1}", file: "/h.yaml", environment: [:]).server.dispatch == DispatchSettings())

        do {
            _ = try HeraldConfig.parse("""
                plugin_dirs: [plugins]
                server:
                  dispatch: {max_attempts: 0, lease_seconds: 0.5, base_backoff_seconds: x, retries: 3}
                """, file: "/etc/herald/herald.yaml", environment: [:])
            Issue.record("bad dispatch settings were accepted")
        } catch {
            let text = error.errors.map(\.description).joined(separator: "\n")
            #expect(text.contains("server.dispatch.retries: unknown key"), "\(text)")
            #expect(text.contains("server.dispatch.max_attempts: must be a whole number from 1 to 100"), "\(text)")
            #expect(text.contains("server.dispatch.lease_seconds: must be a number of seconds from 1 to 3600"), "\(text)")
            #expect(text.contains("server.dispatch.base_backoff_seconds: must be a number of seconds"), "\(text)")
        }
    }
}
