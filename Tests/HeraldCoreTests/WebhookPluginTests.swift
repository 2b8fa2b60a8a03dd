import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Testing

/// The webhook plugin end to end: built by scripts/build-plugins.sh, loaded from its manifest,
/// sending through the engine to a receiver that verifies the Standard Webhooks signature with
/// the `standardwebhooks` package from PyPI.
@Suite("webhook plugin", .serialized)
struct WebhookPluginTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    func config(url: String, secret: String = Self.secret) throws -> (file: String, text: String) {
        let text = """
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: ops
            plugin: webhook
            settings:
              url: \(url)
              secret: ${TEST_WEBHOOK_SECRET}
              receiver: ops-team
              headers: {X-Team: sre}
            egress: {allow_loopback: true}
        """
        let file = Fixtures.workDirectory + "/webhook-\(UUID().uuidString).yaml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return (file, text)
    }

    func runtime(url: String, secret: String = Self.secret) throws -> HeraldRuntime {
        let config = try HeraldConfig.load(file: try config(url: url).file, environment: ["TEST_WEBHOOK_SECRET": secret])
        return HeraldRuntime(config: config)
    }

    func incident(title: String) -> OutgoingMessage {
        var m = OutgoingMessage(idempotencyKey: "delivery-\(UUID().uuidString.prefix(8))", title: title, body: "p99 latency 2.3 s\nsecond line")
        m.incidentID = "inc-77"
        m.incidentNumber = 77
        m.severity = .critical
        m.labels = [("service", "checkout"), ("region", "eu-1")]
        m.links = [MessageLink(kind: .view, label: "View", url: "https://herald.example/i/inc-77"),
                   MessageLink(kind: .acknowledge, label: "Acknowledge", url: "https://herald.example/a/x")]
        m.startedAtMs = 1_700_000_000_000
        return m
    }

    @Test func aSignedIncidentReachesTheReceiverIntact() async throws {
        let receiver = try MockServer(script: "webhook_receiver.py", arguments: ["--secret", Self.secret])
        defer { receiver.stop() }
        let runtime = try runtime(url: receiver.base + "/hook")
        defer { runtime.shutdown() }
        let ops = try #require(runtime.integrations["ops"], "\(runtime.problems)")
        let title = #"Checkout "p99" > 2s <b>&</b> *now* _eu_ \ 🚨"#
        let message = incident(title: title)
        let result = await runtime.deliverer.deliver(message, through: ops)
        #expect(result.outcome == .delivered(providerID: message.idempotencyKey))

        let received = try await Self.received(receiver)
        #expect(received.count == 1)
        let headers = try #require(received.first?["headers"])
        #expect(headers["webhook-id"]?.stringValue == message.idempotencyKey)
        #expect(headers["idempotency-key"]?.stringValue == message.idempotencyKey)
        #expect(headers["x-team"]?.stringValue == "sre")
        let payload = try #require(received.first?["payload"])
        #expect(payload["version"]?.stringValue == "4")
        #expect(payload["status"]?.stringValue == "firing")
        #expect(payload["receiver"]?.stringValue == "ops-team")
        #expect(payload["groupKey"]?.stringValue == "inc-77")
        let alert = try #require(payload["alerts"]?.arrayValue?.first)
        #expect(alert["annotations"]?["summary"]?.stringValue == title)
        #expect(alert["annotations"]?["description"]?.stringValue == message.body)
        #expect(alert["labels"]?["severity"]?.stringValue == "critical")
        #expect(alert["labels"]?["service"]?.stringValue == "checkout")
        #expect(alert["startsAt"]?.stringValue == "2023-11-14T22:13:20Z")
        #expect(alert["generatorURL"]?.stringValue == "https://herald.example/i/inc-77")
        #expect(payload["herald"]?["incident_number"]?.numberValue == 77)
        #expect(payload["herald"]?["links"]?.arrayValue?.count == 2)
    }

    @Test func aWrongSecretIsAPermanentFailureNamingTheStatus() async throws {
        let receiver = try MockServer(script: "webhook_receiver.py", arguments: ["--secret", Self.secret])
        defer { receiver.stop() }
        let runtime = try runtime(url: receiver.base + "/hook", secret: "whsec_" + Data("another secret entirely".utf8).base64EncodedString())
        defer { runtime.shutdown() }
        let result = await runtime.deliverer.deliver(incident(title: "x"), through: try #require(runtime.integrations["ops"]))
        guard case .failed(let reason) = result.outcome else { Issue.record("\(result.outcome)"); return }
        #expect(reason.contains("401"))
        #expect(reason.contains("signature"))
        #expect(try await Self.received(receiver).isEmpty)
    }

    @Test(arguments: [(429, UInt64(7000)), (503, 7000), (400, 0)])
    func receiverAnswersAreClassified(status: Int, retryAfter: UInt64) async throws {
        let receiver = try MockServer(script: "webhook_receiver.py", arguments: ["--secret", Self.secret])
        defer { receiver.stop() }
        let runtime = try runtime(url: receiver.base + "/status/\(status)")
        defer { runtime.shutdown() }
        let result = await runtime.deliverer.deliver(incident(title: "x"), through: try #require(runtime.integrations["ops"]))
        switch result.outcome {
        case .retry(let after, let reason):
            #expect(status != 400)
            #expect(after == retryAfter)
            #expect(reason.contains("\(status)"))
        case .failed(let reason):
            #expect(status == 400)
            #expect(reason.contains("400"))
        case .delivered:
            Issue.record("\(status) must not be delivered")
        }
    }

    @Test func cliSendsAndNeverPrintsTheSecret() throws {
        let receiver = try MockServer(script: "webhook_receiver.py", arguments: ["--secret", Self.secret])
        defer { receiver.stop() }
        let (file, _) = try config(url: receiver.base + "/hook")
        let env = ["TEST_WEBHOOK_SECRET": Self.secret]
        let send = try HeraldBinary.run(["send", "--config", file, "--integration", "ops", "--title", "CLI test", "--body", "hello",
                                         "--severity", "warning", "--verbose"], environment: env)
        #expect(send.status == 0, "\(send.out)\(send.err)")
        #expect(send.out.hasPrefix("delivered through 'ops'"))
        let check = try HeraldBinary.run(["config", "check", file], environment: env)
        #expect(check.status == 0, "\(check.out)\(check.err)")
        #expect(check.out.contains(#""secret":"(secret)""#), "\(check.out)")
        for output in [send.out, send.err, check.out, check.err] {
            #expect(!output.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "the secret leaked: \(output)")
        }
    }

    @Test func cliListsFromManifestsAndInspectsTheDescriptor() throws {
        let (file, _) = try config(url: "https://hooks.example.com/x")
        let list = try HeraldBinary.run(["plugins", "list", "--config", file], environment: ["TEST_WEBHOOK_SECRET": Self.secret])
        #expect(list.status == 0, "\(list.err)")
        #expect(list.out.contains("webhook        1.0.0     webhook    Generic webhook"), "\(list.out)")
        let inspect = try HeraldBinary.run(["plugins", "inspect", "webhook", "--config", file], environment: ["TEST_WEBHOOK_SECRET": Self.secret])
        #expect(inspect.status == 0, "\(inspect.err)")
        for line in ["id:            webhook", "abi:           1.0", "channel kind:  webhook", "capabilities:  concurrent_calls",
                     "egress hosts:  config:url", "\"writeOnly\" : true"] {
            #expect(inspect.out.contains(line), "missing \(line) in \(inspect.out)")
        }
        let missing = try HeraldBinary.run(["plugins", "inspect", "nonesuch", "--config", file], environment: ["TEST_WEBHOOK_SECRET": Self.secret])
        #expect(missing.status != 0)
        #expect(missing.err.contains("no plugin 'nonesuch'"), "\(missing.err)")
    }

    @Test func cliReportsConfigErrorsWithFileAndLine() throws {
        let file = Fixtures.workDirectory + "/broken.yaml"
        try "plugin_dirs: [\(try BuiltPlugins.directory())]\nintegrations:\n  - name: ops\n    plugin: webhook\n    settings: {url: 42}\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let check = try HeraldBinary.run(["config", "check", file])
        #expect(check.status == 1)
        #expect(check.err.contains("\(file):5:21: integrations[0].settings.url: must be a string, not an integer"), "\(check.err)")
    }

    static func received(_ receiver: MockServer) async throws -> [JSONValue] {
        try JSONValue.parse(Data(try await receiver.get("/_received"))).arrayValue ?? []
    }
}
