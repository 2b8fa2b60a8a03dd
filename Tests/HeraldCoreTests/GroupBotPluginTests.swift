import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Testing

/// Each group-bot plugin against a mock of its provider that checks what the provider checks
/// (token, signature and its time window, keyword, size, shape) and answers with the provider's
/// real bodies. The renderer is not in the path yet: titles and bodies go in as final text.
struct Provider: Sendable, CustomStringConvertible {
    let id: String
    let mock: String
    /// Mock flags for each scenario.
    let secretFlags: [String]
    let rateLimitFlags: [String]
    let serverErrorFlags: [String]
    let unknownCodeFlags: [String]
    /// The integration's settings for a mock at `base` (a YAML flow mapping), with `secret`.
    let settings: @Sendable (_ base: String, _ secret: String) -> String
    var description: String { id }

    static let all: [Provider] = [
        Provider(id: "feishu", mock: "feishu_mock.py", secretFlags: ["--secret", "s3cret"], rateLimitFlags: ["--rate-limit", "1"],
                 serverErrorFlags: ["--http-status", "503"], unknownCodeFlags: ["--code", "77777", "--msg", "something new"],
                 settings: { base, secret in #"{webhook_url: "\#(base)/open-apis/bot/v2/hook/test-token", secret: "\#(secret)"}"# }),
        Provider(id: "dingtalk", mock: "dingtalk_mock.py", secretFlags: ["--secret", "s3cret"], rateLimitFlags: ["--rate-limit", "1"],
                 serverErrorFlags: ["--http-status", "503"], unknownCodeFlags: ["--errcode", "77777", "--errmsg", "something new"],
                 settings: { base, secret in #"{webhook_url: "\#(base)/robot/send?access_token=test-token", secret: "\#(secret)"}"# }),
    ]
}

@Suite("Group-bot plugins against mock providers")
struct GroupBotPluginTests {
    static let title = #"Disk "full" & <hot> on db-1 🚨"#

    func deliver(_ provider: Provider, mockFlags: [String], secret: String = "s3cret", times: Int = 1) async throws -> (DeliveryOutcome, MockServer) {
        let mock = try MockServer(script: provider.mock, arguments: mockFlags)
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: bot
            plugin: \(provider.id)
            settings: \(provider.settings(mock.base, secret))
            egress: {allow: [127.0.0.1], allow_loopback: true}
        """, file: "/tmp/bots.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        let bot = try #require(runtime.integrations["bot"], "\(runtime.problems)")
        var outcome = DeliveryOutcome.failed(reason: "not sent")
        for n in 0..<times {
            var message = OutgoingMessage(idempotencyKey: "k\(n)-\(UUID().uuidString.prefix(8))", title: Self.title, body: "92% used on /var\nsecond line")
            message.severity = .critical
            message.incidentID = "inc-1"
            message.labels = [("host", "db-1")]
            message.links = [MessageLink(kind: .view, label: "View", url: "https://herald.example/i/inc-1")]
            outcome = await runtime.deliverer.deliver(message, through: bot).outcome
        }
        return (outcome, mock)
    }

    @Test(arguments: Provider.all)
    func aSignedMessageIsDeliveredIntact(_ provider: Provider) async throws {
        let (outcome, mock) = try await deliver(provider, mockFlags: provider.secretFlags)
        defer { mock.stop() }
        guard case .delivered = outcome else { Issue.record("\(outcome)"); return }
        let received = try JSONValue.parse(Data(try await mock.get("/_received"))).arrayValue ?? []
        #expect(received.count == 1)
        #expect(Self.strings(in: received.first ?? .null).contains { $0.contains(Self.title) }, "the title must arrive intact: \(received)")
    }

    @Test(arguments: Provider.all)
    func aWrongSecretFailsPermanently(_ provider: Provider) async throws {
        let (outcome, mock) = try await deliver(provider, mockFlags: provider.secretFlags, secret: "not-the-secret")
        defer { mock.stop() }
        guard case .failed(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.lowercased().contains("sign"), "\(reason)")
    }

    @Test(arguments: Provider.all)
    func rateLimitsAndServerErrorsAreRetried(_ provider: Provider) async throws {
        let (limited, mock) = try await deliver(provider, mockFlags: provider.rateLimitFlags, times: 2)
        mock.stop()
        guard case .retry = limited else { Issue.record("rate limit: \(limited)"); return }
        let (failing, mock2) = try await deliver(provider, mockFlags: provider.serverErrorFlags)
        mock2.stop()
        guard case .retry = failing else { Issue.record("5xx: \(failing)"); return }
    }

    @Test(arguments: Provider.all)
    func anUnknownErrorCodeIsNeverDelivered(_ provider: Provider) async throws {
        let (outcome, mock) = try await deliver(provider, mockFlags: provider.unknownCodeFlags)
        defer { mock.stop() }
        guard case .failed(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.contains("something new") || reason.contains("77777"), "\(reason)")
    }

    /// Every string in a JSON document, recursively.
    static func strings(in value: JSONValue) -> [String] {
        switch value {
        case .string(let s): [s]
        case .array(let items): items.flatMap(strings)
        case .object(let members): members.values.flatMap(strings)
        default: []
        }
    }
}
