import Foundation
@testable import HeraldCore
import HeraldHTTP
import HeraldPluginHost
import HeraldTestSupport
import Testing

@Suite("Delivering through plugins")
struct DeliveryTests {
    /// A runtime with one fixture integration aimed at `url`.
    func runtime(url: String, allowLoopback: Bool = true) throws -> HeraldRuntime {
        let dir = URL(fileURLWithPath: try Fixtures.build("good")).deletingLastPathComponent().path
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(dir)]
        integrations:
          - name: sink
            plugin: fixture
            settings: {url: "\(url)", token: "s3cret"}
            egress: {allow_loopback: \(allowLoopback)}
        """, file: "/tmp/herald.yaml", environment: [:])
        return HeraldRuntime(config: config)
    }

    func message(_ title: String = "Disk full") -> OutgoingMessage {
        OutgoingMessage(idempotencyKey: "k-\(UUID().uuidString)", title: title, body: "body")
    }

    @Test func aMessageTravelsPluginEngineAndBack() async throws {
        let sink = try MockServer(script: "http_sink.py")
        defer { sink.stop() }
        let runtime = try runtime(url: sink.base + "/echo")
        defer { runtime.shutdown() }
        let integration = try #require(runtime.integrations["sink"], "\(runtime.problems)")
        let result = await runtime.deliverer.deliver(message(#"Quote " and <tag>"#), through: integration)
        guard case .delivered(let id?) = result.outcome else { Issue.record("\(result.outcome)"); return }
        // The fixture reports the response body as the provider id: the sink's echo of the request.
        let echo = try JSONValue.parse(id)
        #expect(echo["method"]?.stringValue == "POST")
        #expect(echo["path"]?.stringValue == "/echo")
        let body = try JSONValue.parse(echo["body_utf8"]?.stringValue ?? "")
        #expect(body["title"]?.stringValue == #"Quote " and <tag>"#)
        #expect(result.exchanges.count == 1)
        #expect(result.exchanges[0].target == sink.base)
        #expect(result.exchanges[0].status == 200)
    }

    @Test func providerAnswersBecomeOutcomes() async throws {
        let sink = try MockServer(script: "http_sink.py")
        defer { sink.stop() }
        for (path, expected) in [("/status/429", DeliveryOutcome.retry(afterMilliseconds: 1500, reason: "rate limited")),
                                 ("/status/503", .retry(afterMilliseconds: nil, reason: "server error")),
                                 ("/status/404", .failed(reason: "rejected"))] {
            let runtime = try runtime(url: sink.base + path)
            let result = await runtime.deliverer.deliver(message(), through: try #require(runtime.integrations["sink"]))
            #expect(result.outcome == expected, "\(path)")
            runtime.shutdown()
        }
    }

    @Test func aNextRequestIsFollowed() async throws {
        // 401 on the first request makes the fixture ask for a second one (like a token refresh).
        let sink = try MockServer(script: "http_sink.py")
        defer { sink.stop() }
        let runtime = try runtime(url: sink.base + "/status/401")
        defer { runtime.shutdown() }
        let result = await runtime.deliverer.deliver(message(), through: try #require(runtime.integrations["sink"]))
        #expect(result.exchanges.count == 2)
        #expect(result.outcome == .failed(reason: "rejected"))
    }

    @Test func loopbackNeedsTheOperatorsPermission() async throws {
        let sink = try MockServer(script: "http_sink.py")
        defer { sink.stop() }
        let runtime = try runtime(url: sink.base + "/echo", allowLoopback: false)
        defer { runtime.shutdown() }
        let result = await runtime.deliverer.deliver(message(), through: try #require(runtime.integrations["sink"]))
        guard case .failed(let reason) = result.outcome else { Issue.record("\(result.outcome)"); return }
        #expect(reason.contains("127.0.0.1"))
        #expect(reason.contains("loopback"))
        #expect(try await sinkRequests(sink).isEmpty, "nothing may reach the sink")
    }

    @Test func anUnreachableReceiverIsRetriedLater() async throws {
        let sink = try MockServer(script: "http_sink.py")
        let port = sink.port
        sink.stop()
        let runtime = try runtime(url: "http://127.0.0.1:\(port)/gone")
        defer { runtime.shutdown() }
        let result = await runtime.deliverer.deliver(message(), through: try #require(runtime.integrations["sink"]))
        guard case .retry(nil, let reason) = result.outcome else { Issue.record("\(result.outcome)"); return }
        #expect(!reason.isEmpty)
    }

    @Test func badIntegrationsAreReportedAndTheRestStart() throws {
        let dir = URL(fileURLWithPath: try Fixtures.build("good")).deletingLastPathComponent().path
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(dir)]
        integrations:
          - {name: good, plugin: fixture, settings: {url: "https://fixture.example.com/a"}}
          - {name: bad, plugin: fixture, settings: {url: 12}}
        """, file: "/tmp/herald.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        #expect(runtime.integrations.keys.sorted() == ["good"])
        #expect(runtime.problems.contains("/tmp/herald.yaml:4:50: integrations[1].settings.url: must be a string, not an integer"), "\(runtime.problems)")
    }

    private func sinkRequests(_ sink: MockServer) async throws -> [JSONValue] {
        try JSONValue.parse(Data(try await sink.get("/_requests"))).arrayValue ?? []
    }
}

@Suite("Retry-After")
struct RetryAfterTests {
    @Test func deltaSecondsAndHTTPDatesAreHonouredAndCapped() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(Deliverer.retryAfter([HeaderField("retry-after", "7")], now: now) == 7000)
        #expect(Deliverer.retryAfter([HeaderField("Retry-After", "Tue, 14 Nov 2023 22:15:20 GMT")], now: now) == 120_000)
        #expect(Deliverer.retryAfter([HeaderField("Retry-After", "999999")], now: now) == 3_600_000)
        #expect(Deliverer.retryAfter([HeaderField("Retry-After", "soon")], now: now) == nil)
        #expect(Deliverer.retryAfter([HeaderField("Retry-After", "Mon, 13 Nov 2023 00:00:00 GMT")], now: now) == nil)
        #expect(Deliverer.retryAfter([], now: now) == nil)
    }
}
