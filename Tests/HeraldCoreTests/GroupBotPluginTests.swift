import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Testing

/// Each group-bot plugin against a mock of its provider that checks what the provider checks
/// (token, signature and its time window, keyword, size, shape) and answers with the provider's
/// real bodies. The renderer is not in the path yet: titles and bodies go in as final text.
struct Provider: Sendable, CustomStringConvertible {
    /// Mock flags and the integration's settings (a YAML flow mapping for a mock at `base`).
    struct Scenario: Sendable {
        var flags: [String] = []
        var settings: @Sendable (_ base: String) -> String
    }

    let id: String
    let mock: String
    let good: Scenario
    let badCredential: Scenario
    /// What the reason must mention when the credential is wrong.
    let credentialWord: String
    /// Sent twice: the second must be throttled.
    let rateLimit: Scenario
    let serverError: Scenario
    /// Answers an error the plugin has no rule for; the reason must mention `unknownWord`.
    let unknownCode: Scenario
    var unknownWord = "77777"
    /// The escaping the core's renderer applies for the plugin's text format.
    var render: @Sendable (String) -> String = { $0 }
    var description: String { id }

    static let all: [Provider] = [feishu, dingtalk, wecom, slack, telegram, zoom, teams]

    static let telegram: Provider = {
        let settings: @Sendable (String, String) -> String = { base, token in
            #"{bot_token: "\#(token)", chat_ids: ["-1001234567890"], api_base: "\#(base)"}"#
        }
        let chat = "--chat=-1001234567890:supergroup:Ops"
        // --oracle makes the mock serialise each parsed message again with python-telegram-bot
        // (PyPI) and refuse it unless that reads back as the same text and entities.
        return Provider(id: "telegram", mock: "telegram_mock.py",
            good: Scenario(flags: ["--token", "123456:good", chat, "--oracle"]) { settings($0, "123456:good") },
            badCredential: Scenario(flags: ["--token", "123456:good", chat, "--oracle"]) { settings($0, "123456:bad") }, credentialWord: "unauthorized",
            rateLimit: Scenario(flags: ["--token", "1:t", chat, "--rate-limit", "1", "--oracle"]) { settings($0, "1:t") },
            serverError: Scenario(flags: ["--token", "1:t", chat, "--fail=*:502:0"]) { settings($0, "1:t") },
            unknownCode: Scenario(flags: ["--token", "1:t", chat, "--fail=*:400:0"]) { settings($0, "1:t") }, unknownWord: "wrong parameter",
            render: { $0.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;") })
    }()

    static let zoom: Provider = {
        let settings: @Sendable (String, String) -> String = { base, token in
            #"{webhook_url: "\#(base)/chat/webhooks/incomingwebhook/AbCdEf123", verification_token: "\#(token)"}"#
        }
        let flags = ["--webhook-id", "AbCdEf123", "--token", "tok"]
        return Provider(id: "zoom", mock: "zoom_mock.py",
            good: Scenario(flags: flags) { settings($0, "tok") },
            badCredential: Scenario(flags: flags) { settings($0, "wrong") }, credentialWord: "401",
            rateLimit: Scenario(flags: flags + ["--rate-limit", "1"]) { settings($0, "tok") },
            serverError: Scenario(flags: flags + ["--fail", "503:0"]) { settings($0, "tok") },
            unknownCode: Scenario(flags: flags + ["--fail", "418:0"]) { settings($0, "tok") }, unknownWord: "418")
    }()

    static let teams: Provider = {
        let settings: @Sendable (String, String) -> String = { base, sig in
            #"{webhook_url: "\#(base)/workflows/0123abcd/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=\#(sig)"}"#
        }
        let flags = ["--workflow-id", "0123abcd", "--sig", "AbCdEf"]
        return Provider(id: "teams", mock: "teams_mock.py",
            good: Scenario(flags: flags) { settings($0, "AbCdEf") },
            badCredential: Scenario(flags: flags) { settings($0, "Wrong") }, credentialWord: "401",
            rateLimit: Scenario(flags: flags + ["--rate-limit", "1"]) { settings($0, "AbCdEf") },
            serverError: Scenario(flags: flags + ["--fail", "503:0"]) { settings($0, "AbCdEf") },
            unknownCode: Scenario(flags: flags + ["--fail", "418:0"]) { settings($0, "AbCdEf") }, unknownWord: "418")
    }()

    static let feishu: Provider = {
        let url: @Sendable (String, String) -> String = { base, secret in
            #"{webhook_url: "\#(base)/open-apis/bot/v2/hook/test-token", secret: "\#(secret)"}"#
        }
        return Provider(id: "feishu", mock: "feishu_mock.py",
            good: Scenario(flags: ["--secret", "s3cret"]) { url($0, "s3cret") },
            badCredential: Scenario(flags: ["--secret", "s3cret"]) { url($0, "wrong") }, credentialWord: "sign",
            rateLimit: Scenario(flags: ["--rate-limit", "1"]) { url($0, "s") },
            serverError: Scenario(flags: ["--http-status", "503"]) { url($0, "s") },
            unknownCode: Scenario(flags: ["--code", "77777", "--msg", "something new"]) { url($0, "s") })
    }()

    static let dingtalk: Provider = {
        let url: @Sendable (String, String) -> String = { base, secret in
            #"{webhook_url: "\#(base)/robot/send?access_token=test-token", secret: "\#(secret)"}"#
        }
        // DingTalk secrets start with "SEC"; --oracle makes the mock check each sign with the
        // DingtalkChatbot package from PyPI as well as its own HMAC.
        return Provider(id: "dingtalk", mock: "dingtalk_mock.py",
            good: Scenario(flags: ["--secret", "SECs3cret", "--oracle"]) { url($0, "SECs3cret") },
            badCredential: Scenario(flags: ["--secret", "SECs3cret", "--oracle"]) { url($0, "SECwrong") }, credentialWord: "sign",
            rateLimit: Scenario(flags: ["--rate-limit", "1"]) { url($0, "s") },
            serverError: Scenario(flags: ["--http-status", "503"]) { url($0, "s") },
            unknownCode: Scenario(flags: ["--errcode", "77777", "--errmsg", "something new"]) { url($0, "s") })
    }()

    static let wecom: Provider = {
        let url: @Sendable (String, String) -> String = { base, key in #"{webhook_url: "\#(base)/cgi-bin/webhook/send?key=\#(key)"}"# }
        return Provider(id: "wecom", mock: "wecom_mock.py",
            good: Scenario(flags: ["--key", "good-key"]) { url($0, "good-key") },
            badCredential: Scenario(flags: ["--key", "good-key"]) { url($0, "other-key") }, credentialWord: "93000",
            rateLimit: Scenario(flags: ["--key", "k", "--rate-limit", "1"]) { url($0, "k") },
            serverError: Scenario { url($0, "http-502") },
            unknownCode: Scenario { url($0, "errcode-77777") })
    }()

    static let slack: Provider = {
        let url: @Sendable (String, String) -> String = { base, path in #"{webhook_url: "\#(base)/services/\#(path)"}"# }
        // --oracle makes the mock run every block through slack-sdk (PyPI) and hold every mrkdwn
        // text to Slack's escaping rule.
        return Provider(id: "slack", mock: "slack_mock.py",
            good: Scenario(flags: ["--secret", "good", "--oracle"]) { url($0, "T00000000/B00000000/good") },
            badCredential: Scenario(flags: ["--secret", "good", "--oracle"]) { url($0, "T00000000/B00000000/bad") }, credentialWord: "invalid_token",
            rateLimit: Scenario(flags: ["--secret", "good", "--rate-limit", "1", "--oracle"]) { url($0, "T00000000/B00000000/good") },
            serverError: Scenario { url($0, "TFAIL/503/service_unavailable") },
            unknownCode: Scenario { url($0, "TFAIL/400/something_new_77777") },
            render: { $0.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;") })
    }()
}

@Suite("Group-bot plugins against mock providers")
struct GroupBotPluginTests {
    static let title = #"Disk "full" & <hot> on db-1 🚨"#

    func deliver(_ provider: Provider, _ scenario: Provider.Scenario, times: Int = 1) async throws -> (DeliveryOutcome, MockServer) {
        let mock = try MockServer(script: provider.mock, arguments: scenario.flags)
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: bot
            plugin: \(provider.id)
            settings: \(scenario.settings(mock.base))
            egress: {allow: [127.0.0.1], allow_loopback: true}
        """, file: "/tmp/bots.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        let bot = try #require(runtime.integrations["bot"], "\(runtime.problems)")
        var outcome = DeliveryOutcome.failed(reason: "not sent")
        for n in 0..<times {
            var message = OutgoingMessage(idempotencyKey: "k\(n)-\(UUID().uuidString.prefix(8))", title: provider.render(Self.title),
                                          body: "92% used on /var\nsecond line")
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
        let (outcome, mock) = try await deliver(provider, provider.good)
        defer { mock.stop() }
        guard case .delivered = outcome else { Issue.record("\(outcome)"); return }
        let received = try JSONValue.parse(Data(try await mock.get("/_received"))).arrayValue ?? []
        #expect(received.count == 1)
        #expect(Self.strings(in: received.first ?? .null).contains { $0.contains(Self.title) }, "the title must arrive intact: \(received)")
    }

    @Test(arguments: Provider.all)
    func aWrongCredentialFailsPermanently(_ provider: Provider) async throws {
        let (outcome, mock) = try await deliver(provider, provider.badCredential)
        defer { mock.stop() }
        guard case .failed(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.lowercased().contains(provider.credentialWord), "\(reason)")
    }

    @Test(arguments: Provider.all)
    func rateLimitsAndServerErrorsAreRetried(_ provider: Provider) async throws {
        let (limited, mock) = try await deliver(provider, provider.rateLimit, times: 2)
        mock.stop()
        guard case .retry = limited else { Issue.record("rate limit: \(limited)"); return }
        let (failing, mock2) = try await deliver(provider, provider.serverError)
        mock2.stop()
        guard case .retry = failing else { Issue.record("5xx: \(failing)"); return }
    }

    @Test(arguments: Provider.all)
    func anUnknownErrorCodeIsNeverDelivered(_ provider: Provider) async throws {
        let (outcome, mock) = try await deliver(provider, provider.unknownCode)
        defer { mock.stop() }
        guard case .failed(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.contains(provider.unknownWord), "\(reason)")
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

/// The Telegram and Slack mocks with `--oracle`: what the plugin sends is read back the way the
/// platform shows it and re-checked with an independent PyPI package (python-telegram-bot's HTML
/// serialiser, slack-sdk's Block Kit validation). Hostile text the plugin escapes itself (labels,
/// names, button labels) and text the core escaped (title, body) must show exactly as written.
@Suite("Group-bot escaping checked by PyPI oracles")
struct GroupBotOracleTests {
    static let title = GroupBotPluginTests.title
    static let body = #"load <9.7> & "rising" on db-1 🚨"#

    func message(_ provider: Provider, title: String = Self.title, body: String = Self.body) -> OutgoingMessage {
        var message = OutgoingMessage(idempotencyKey: "o-\(UUID().uuidString.prefix(8))", title: provider.render(title),
                                      body: provider.render(body))
        message.severity = .critical
        message.incidentID = "inc-1"
        message.incidentNumber = 42
        return message
    }

    /// Delivers through the provider's good scenario (which must run the oracle); returns the outcome and the one accepted message.
    func deliver(_ provider: Provider, _ message: OutgoingMessage) async throws -> (DeliveryOutcome, JSONValue?) {
        #expect(provider.good.flags.contains("--oracle"))
        let mock = try MockServer(script: provider.mock, arguments: provider.good.flags)
        defer { mock.stop() }
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: bot
            plugin: \(provider.id)
            settings: \(provider.good.settings(mock.base))
            egress: {allow: [127.0.0.1], allow_loopback: true}
        """, file: "/tmp/oracle-\(provider.id).yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        let bot = try #require(runtime.integrations["bot"], "\(runtime.problems)")
        let outcome = await runtime.deliverer.deliver(message, through: bot).outcome
        let received = try JSONValue.parse(Data(try await mock.get("/_received"))).arrayValue ?? []
        #expect(received.count <= 1)
        return (outcome, received.first)
    }

    /// The text an entity covers: Telegram's offsets and lengths count UTF-16 code units.
    static func covered(_ text: String, _ entity: JSONValue) -> String {
        let units = Array(text.utf16)
        let offset = Int(entity["offset"]?.numberValue ?? -1), length = Int(entity["length"]?.numberValue ?? -1)
        guard offset >= 0, length >= 0, offset + length <= units.count else { return "<out of range>" }
        return String(decoding: units[offset..<offset + length], as: UTF16.self)
    }

    @Test func telegramHTMLReadsBackAsWrittenThroughPythonTelegramBot() async throws {
        var message = message(.telegram)
        let label = (name: "env <prod>", value: #"a "b" & <c> 🚨"#)
        let name = #"Ann "<Ops>" & co 🚨"#
        message.labels = [label]
        message.mentions = [Mention(displayName: name, id: "111111", idKind: "user_id")]
        let (outcome, sent) = try await deliver(.telegram, message)
        guard case .delivered = outcome, let sent else { Issue.record("\(outcome)"); return }
        // The plain text the chat shows (HTML parsed as Telegram does), not the markup.
        let text = try #require(sent["text"]?.stringValue)
        #expect(text.contains(Self.title), "\(text)")
        #expect(text.contains(Self.body), "\(text)")
        #expect(text.contains("\(label.name): \(label.value)"), "\(text)")
        let entities = sent["entities"]?.arrayValue ?? []
        #expect(entities.contains { $0["type"]?.stringValue == "bold" && Self.covered(text, $0) == Self.title }, "\(entities)")
        #expect(entities.contains { $0["type"]?.stringValue == "bold" && Self.covered(text, $0) == label.name }, "\(entities)")
        #expect(entities.contains { $0["type"]?.stringValue == "text_mention" && $0["user_id"]?.numberValue == 111111
            && Self.covered(text, $0) == name }, "\(entities)")
        #expect(sent["ptb_html"]?.stringValue?.isEmpty == false, "the oracle ran")
    }

    @Test func slackTextShowsAsWrittenThroughSlackSDK() async throws {
        var message = message(.slack)
        let label = (name: "env <prod>", value: #"a "b" & <c> 🚨"#)
        let button = #"Ack <now> & "go""#
        message.labels = [label]
        message.mentions = [Mention(displayName: "Ann", id: "U012AB3CD", idKind: "user_id"),
                            Mention(displayName: #"Bob "<Ops>" & co"#, id: "bob@example.com", idKind: "email")]
        message.links = [MessageLink(kind: .acknowledge, label: button, url: "https://herald.example/i/inc-1?a=1&b=2")]
        let (outcome, sent) = try await deliver(.slack, message)
        guard case .delivered = outcome, let sent else { Issue.record("\(outcome)"); return }
        let shown = try #require(sent["shown"], "the oracle ran")
        let blocks = (shown["blocks"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap(\.stringValue) }
        let texts = blocks.flatMap { $0 }
        #expect(blocks.first == [":rotating_light: " + Self.title], "the header is plain_text, decoded: \(blocks)")
        #expect(shown["text"]?.stringValue?.contains(Self.title) == true, "\(shown)")
        #expect(texts.contains(Self.body), "\(texts)")
        #expect(texts.contains("*\(label.name)*\n\(label.value)"), "\(texts)")
        #expect(texts.contains { $0.contains("@U012AB3CD") && $0.contains(#"@Bob "<Ops>" & co"#) }, "\(texts)")
        #expect(texts.contains(button), "button labels are plain_text, raw: \(texts)")
    }

    @Test func slackLongMessagesStayWithinBlockKitAsSlackSDKChecksIt() async throws {
        // A body of about 10,000 characters once escaped, in long lines: more than three sections.
        var body = ""
        for n in 0... {
            body += "\(n): disk <sda\(n)> & \"sdb\" at 97% 🚨" + (n % 9 == 8 ? "\n" : " ")
            if Provider.slack.render(body).unicodeScalars.count > 10_000 { break }
        }
        let title = String(repeating: Self.title + " ", count: 8)   // too long for a header
        var message = message(.slack, title: title, body: body)
        message.labels = [("log", String(repeating: "x <y> & z ", count: 300))]   // longer than a field
        message.links = [MessageLink(kind: .view, label: String(repeating: "View <it> & ", count: 10), url: "https://herald.example/i/inc-1")]
        let (outcome, sent) = try await deliver(.slack, message)
        guard case .delivered = outcome, let sent else { Issue.record("\(outcome)"); return }
        let payload = sent["payload"]?["blocks"]?.arrayValue ?? []
        let shown = (sent["shown"]?["blocks"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap(\.stringValue) }
        try #require(payload.count == shown.count && payload.count > 4, "\(payload.count) blocks")
        #expect(payload[0]["type"]?.stringValue == "section" && shown[0].first?.contains(Self.title) == true, "\(shown[0])")
        // The body's sections: each within 3000 characters, and together exactly the body (no entity cut in two).
        let bodySections = (2..<payload.count).prefix { payload[$0]["type"]?.stringValue == "section" && payload[$0]["text"] != nil }
        #expect(bodySections.count >= 4)
        #expect(bodySections.allSatisfy { (payload[$0]["text"]?["text"]?.stringValue?.unicodeScalars.count ?? 0) <= 3000 })
        #expect(bodySections.map { shown[$0].joined() }.joined() == body)
        let field = payload.compactMap { $0["fields"]?.arrayValue?.first?["text"]?.stringValue }.first ?? ""
        #expect(field.hasPrefix("*log*\n") && field.unicodeScalars.count <= 2000, "\(field.unicodeScalars.count)")
        let buttonText = shown.last?.first ?? ""
        #expect(buttonText.hasPrefix("View <it> & ") && buttonText.unicodeScalars.count <= 75 && buttonText.hasSuffix("…"), "\(buttonText)")
    }
}

@Suite("telegram admin action")
struct TelegramActionTests {
    func run(_ flags: [String]) async throws -> Result<String, DeliveryOutcome> {
        let mock = try MockServer(script: "telegram_mock.py", arguments: ["--token", "123:abc"] + flags)
        defer { mock.stop() }
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: tg
            plugin: telegram
            settings: {bot_token: "123:abc", chat_ids: ["-1001"], api_base: "\(mock.base)"}
            egress: {allow: [127.0.0.1], allow_loopback: true}
        """, file: "/tmp/tg.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        return await runtime.deliverer.runAction("discover-chats", input: "{}", on: try #require(runtime.integrations["tg"]))
    }

    @Test func discoverChatsListsEveryChatOnce() async throws {
        let output = try await run(["--chat=-1001234567890:supergroup:Ops room", "--chat=@alerts:channel:Alerts"]).get()
        let chats = try JSONValue.parse(output)["chats"]?.arrayValue ?? []
        let ids = chats.compactMap { chat in chat["id"].map { $0.stringValue ?? $0.jsonText } }
        #expect(Set(ids).count == ids.count, "no duplicates: \(output)")
        #expect(ids.contains("-1001234567890"), "\(output)")
        #expect(chats.contains { $0["title"]?.stringValue == "Ops room" }, "\(output)")
    }

    @Test func aWebhookConflictIsExplained() async throws {
        let result = try await run(["--chat=-1001:supergroup:Ops", "--webhook-set"])
        guard case .failure(.failed(let reason)) = result else { Issue.record("\(result)"); return }
        #expect(reason.contains("409") || reason.lowercased().contains("webhook"), "\(reason)")
    }
}

/// `herald send` renders with each plugin's default template and escapes for its text format;
/// the mocks parse what they receive as their platform would (Telegram's HTML parser refuses a
/// stray `<`), and the hostile title must come out intact.
@Suite("herald send through every group bot")
struct SendCommandTests {
    static let title = #"CPU <90%> & "hot" on db-1 🚨"#

    @Test(arguments: Provider.all)
    func hostileTitlesArriveIntact(_ provider: Provider) async throws {
        let mock = try MockServer(script: provider.mock, arguments: provider.good.flags)
        defer { mock.stop() }
        let file = Fixtures.workDirectory + "/send-\(provider.id).yaml"
        try """
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: bot
            plugin: \(provider.id)
            settings: \(provider.good.settings(mock.base))
            egress: {allow: [127.0.0.1], allow_loopback: true}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let run = try HeraldBinary.run(["send", "--config", file, "--integration", "bot", "--title", Self.title,
                                        "--body", "load 9.7 on db-1", "--severity", "critical"])
        #expect(run.status == 0, "\(run.out)\(run.err)")
        #expect(!run.err.contains("template problem"), "\(run.err)")
        let received = try JSONValue.parse(Data(try await mock.get("/_received"))).arrayValue ?? []
        let texts = received.flatMap(GroupBotPluginTests.strings)
        #expect(texts.contains { $0.contains(Self.title) || Self.unescaped($0).contains(Self.title) }, "\(texts)")
    }

    /// What a Markdown or mrkdwn client shows: backslash escapes and the three entities undone.
    static func unescaped(_ text: String) -> String {
        var out = ""
        var escaping = false
        for c in text {
            if escaping { out.append(c); escaping = false } else if c == "\\" { escaping = true } else { out.append(c) }
        }
        return out.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }
}
