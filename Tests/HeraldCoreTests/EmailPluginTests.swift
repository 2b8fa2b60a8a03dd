import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Testing

/// The email plugin against a real SMTP server (aiosmtpd, Tests/mocks/smtp_mock.py) on loopback:
/// STARTTLS with AUTH, implicit TLS, a plain relay, per-recipient refusals. The mock parses each
/// message with Python's `email` package, so headers, encodings and parts are checked by an
/// independent parser, not by reading our own bytes back.
@Suite("email plugin against a real SMTP server")
struct EmailPluginTests {
    /// The running mock and what it reports about itself.
    struct SMTPMock {
        let server: MockServer
        let starttls: Int
        let smtps: Int
        let plain: Int
        let caFile: String

        static func start() async throws -> SMTPMock {
            let server = try MockServer(script: "smtp_mock.py")
            let ports = try JSONValue.parse(Data(try await server.get("/_ports")))
            func port(_ name: String) throws -> Int { Int(try #require(ports[name]?.numberValue, "\(ports.jsonText)")) }
            return SMTPMock(server: server, starttls: try port("starttls"), smtps: try port("smtps"), plain: try port("plain"),
                            caFile: try #require(ports["ca_file"]?.stringValue))
        }

        func received() async throws -> [JSONValue] {
            try JSONValue.parse(Data(try await server.get("/_received"))).arrayValue ?? []
        }
    }

    /// A JSON object text for the integration's settings (YAML accepts JSON flow mappings).
    static func settings(_ members: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: members, options: [.sortedKeys]), as: UTF8.self)
    }

    static func login(_ url: String, _ extra: [String: Any] = [:]) -> [String: Any] {
        ["smtp_url": url, "from": "Herald Alerts <alerts@herald.example>", "username": "herald", "password": "s3cret",
         "to": ["oncall@example.com"]].merging(extra) { $1 }
    }

    /// Delivers each message through a fresh runtime with one `email` integration; with
    /// `caFile` the integration trusts the mock's self-signed certificate.
    func deliver(_ messages: [OutgoingMessage], settings: [String: Any], mock: SMTPMock, caFile: Bool = true) async throws -> [DeliveryOutcome] {
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: mail
            plugin: email
            settings: \(try Self.settings(settings))
            egress: {allow: [127.0.0.1], allow_loopback: true}
        \(caFile ? "    ca_file: \(mock.caFile)" : "")
        """, file: "/tmp/email.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        let mail = try #require(runtime.integrations["mail"], "\(runtime.problems)")
        var outcomes: [DeliveryOutcome] = []
        for message in messages { outcomes.append(await runtime.deliverer.deliver(message, through: mail).outcome) }
        return outcomes
    }

    static func message(title: String = "Disk almost full on db-1", body: String = "<b>92%</b> used on /var &amp; growing\nsecond line",
                        key: String = "email-\(UUID().uuidString.prefix(8))") -> OutgoingMessage {
        var message = OutgoingMessage(idempotencyKey: key, title: title, body: body)
        message.severity = .critical
        message.incidentID = "inc-7"
        message.incidentNumber = 7
        message.labels = [("host", "db-1"), ("team", "storage & <ops>")]
        message.links = [MessageLink(kind: .view, label: "View", url: "https://herald.example/i/inc-7"),
                         MessageLink(kind: .acknowledge, label: "Acknowledge", url: "https://herald.example/a/ack?t=x&u=y")]
        message.startedAtMs = 1_700_000_000_000
        return message
    }

    static func parts(_ record: JSONValue) -> [(type: String, text: String)] {
        (record["parts"]?.arrayValue ?? []).map { ($0["type"]?.stringValue ?? "", $0["text"]?.stringValue ?? "") }
    }

    /// Structure every message must have, whatever it says.
    static func expectWellFormed(_ record: JSONValue) {
        #expect(record["defects"]?.arrayValue?.isEmpty == true, "parser defects: \(record["defects"]?.jsonText ?? "")")
        #expect(record["bare_lf"]?.numberValue == 0 && record["bare_cr"]?.numberValue == 0, "every line ends in CRLF")
        #expect((record["max_line"]?.numberValue ?? 999) <= 78, "no line is longer than 78 octets: \(record["max_line"]?.jsonText ?? "")")
        #expect(record["mime_version"]?.stringValue == "1.0")
        #expect(record["date_ok"] == .bool(true), "Date parses: \(record["date"]?.jsonText ?? "")")
        #expect(record["content_type"]?.stringValue == "multipart/alternative")
        #expect(parts(record).map(\.type) == ["text/plain", "text/html"], "plain text first, then HTML")
        let headers = record["header_names"]?.arrayValue?.compactMap(\.stringValue) ?? []
        for name in ["Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "Content-Type"] {
            #expect(headers.filter { $0.lowercased() == name.lowercased() }.count == 1, "exactly one \(name): \(headers)")
        }
    }

    @Test func deliversThroughStarttlsWithAuthAsPlainTextAndHTML() async throws {
        let mock = try await SMTPMock.start()
        defer { mock.server.stop() }
        let outcomes = try await deliver([Self.message(), Self.message()], settings: Self.login("smtp://127.0.0.1:\(mock.starttls)"), mock: mock)
        for outcome in outcomes {
            guard case .delivered(let id) = outcome else { Issue.record("\(outcome)"); return }
            #expect(id?.hasPrefix("MOCK") == true, "the queue id is the provider id: \(String(describing: id))")
        }
        let received = try await mock.received()
        try #require(received.count == 2, "\(received)")
        let mail = received[0]
        Self.expectWellFormed(mail)
        #expect(mail["listener"]?.stringValue == "starttls")
        #expect(mail["tls"] == .bool(true))
        #expect(mail["auth_login"]?.stringValue == "herald")
        #expect(mail["mail_from"]?.stringValue == "alerts@herald.example")
        #expect(mail["rcpt_tos"]?.arrayValue == [.string("oncall@example.com")])
        #expect(mail["from"]?.arrayValue?.first?["name"]?.stringValue == "Herald Alerts")
        #expect(mail["to"]?.arrayValue?.first?["address"]?.stringValue == "oncall@example.com")
        let subject = try #require(mail["subject"]?.stringValue)
        #expect(subject.contains("Disk almost full on db-1") && subject.contains("Critical"), "\(subject)")

        let ids = received.compactMap { $0["message_id"]?.stringValue }
        #expect(ids.count == 2 && ids[0] != ids[1], "Message-IDs are unique: \(ids)")
        #expect(ids.allSatisfy { $0.hasPrefix("<") && $0.hasSuffix("@herald.example>") }, "Message-ID is in the sender's domain: \(ids)")

        let parts = Self.parts(mail)
        let text = parts[0].text, html = parts[1].text
        #expect(text.contains("92% used on /var & growing"), "the plain part strips tags and decodes entities: \(text)")
        #expect(!text.contains("<b>") && !text.contains("&amp;"), "\(text)")
        #expect(text.contains("second line"))
        #expect(text.contains("host: db-1") && text.contains("team: storage & <ops>"), "labels as text: \(text)")
        #expect(text.contains("https://herald.example/i/inc-7") && text.contains("https://herald.example/a/ack?t=x&u=y"), "links in the text part: \(text)")
        #expect(text.contains("Incident #7"))
        #expect(html.contains("<b>92%</b> used on /var &amp; growing"), "the rendered HTML body is kept: \(html)")
        #expect(html.contains("storage &amp; &lt;ops&gt;"), "labels are escaped in HTML: \(html)")
        #expect(html.contains(#"href="https://herald.example/i/inc-7""#) && html.contains(#"href="https://herald.example/a/ack?t=x&amp;u=y""#),
                "links in the HTML part: \(html)")
    }

    @Test func deliversOverImplicitTLSWithAuthLogin() async throws {
        let mock = try await SMTPMock.start()
        defer { mock.server.stop() }
        let outcomes = try await deliver([Self.message()], settings: Self.login("smtps://127.0.0.1:\(mock.smtps)", ["auth": "login"]), mock: mock)
        guard case .delivered = outcomes[0] else { Issue.record("\(outcomes)"); return }
        let received = try await mock.received()
        try #require(received.count == 1)
        Self.expectWellFormed(received[0])
        #expect(received[0]["listener"]?.stringValue == "smtps")
        #expect(received[0]["tls"] == .bool(true))
        #expect(received[0]["auth_mechanism"]?.stringValue == "LOGIN")
    }

    @Test func anUntrustedCertificateIsNotAccepted() async throws {
        let mock = try await SMTPMock.start()
        defer { mock.server.stop() }
        let outcomes = try await deliver([Self.message()], settings: Self.login("smtps://127.0.0.1:\(mock.smtps)"), mock: mock, caFile: false)
        if case .delivered = outcomes[0] { Issue.record("delivered over an unverified TLS connection") }
        #expect(try await mock.received().isEmpty)
    }

    @Test func plainSMTPIsRefusedUnlessAllowed() async throws {
        let mock = try await SMTPMock.start()
        defer { mock.server.stop() }
        let relay: [String: Any] = ["smtp_url": "smtp://127.0.0.1:\(mock.plain)", "from": "alerts@herald.example", "to": ["oncall@example.com"]]
        let refused = try await deliver([Self.message()], settings: relay, mock: mock)
        switch refused[0] {
        case .delivered: Issue.record("sent without TLS although allow_plaintext is off")
        case .retry(_, let reason), .failed(let reason):
            #expect(reason.uppercased().contains("TLS"), "the reason names the missing TLS: \(reason)")
        }
        #expect(try await mock.received().isEmpty, "nothing may reach a server without STARTTLS")

        let allowed = try await deliver([Self.message()], settings: relay.merging(["allow_plaintext": true]) { $1 }, mock: mock)
        guard case .delivered = allowed[0] else { Issue.record("\(allowed)"); return }
        let received = try await mock.received()
        try #require(received.count == 1)
        #expect(received[0]["listener"]?.stringValue == "plain")
        #expect(received[0]["tls"] == .bool(false))
        Self.expectWellFormed(received[0])
    }

    @Test func utf8SubjectsAndNamesArriveDecodedIntact() async throws {
        let mock = try await SMTPMock.start()
        defer { mock.server.stop() }
        let title = "磁盘告警 🚨 db-1：ディスク使用率 95% — a long title that needs several encoded words 🔥🔥 and folding to stay within 78 columns"
        var message = Self.message(title: title, body: "详情：<i>/var</i> 已满 🚨")
        message.recipient = #"张三 <zhang@example.com>, "Doe, Jane" <jane@example.com>, ops@example.com"#
        let outcomes = try await deliver([message], settings: Self.login("smtp://127.0.0.1:\(mock.starttls)", ["from_name": "告警中心 🚨 Herald"]), mock: mock)
        guard case .delivered = outcomes[0] else { Issue.record("\(outcomes)"); return }
        let received = try await mock.received()
        try #require(received.count == 1)
        let mail = received[0]
        Self.expectWellFormed(mail)
        #expect(mail["subject"]?.stringValue == "[Critical] \(title) (#7)")
        #expect(mail["from"]?.arrayValue?.first?["name"]?.stringValue == "告警中心 🚨 Herald")
        let to = mail["to"]?.arrayValue ?? []
        #expect(to.compactMap { $0["name"]?.stringValue } == ["张三", "Doe, Jane", ""], "\(to)")
        #expect(to.compactMap { $0["address"]?.stringValue } == ["zhang@example.com", "jane@example.com", "ops@example.com"])
        #expect(Set(mail["rcpt_tos"]?.arrayValue?.compactMap(\.stringValue) ?? []) == ["zhang@example.com", "jane@example.com", "ops@example.com"])
        let lines = mail["subject_lines"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(lines.count > 1, "a long subject is folded: \(lines)")
        for line in lines {
            #expect(line.utf8.count <= 78, "folded subject line within 78 octets: \(line)")
            for word in line.split(separator: " ") where word.hasPrefix("=?") {
                #expect(word.count <= 75, "encoded-word within 75 characters: \(word)")
            }
        }
        let parts = Self.parts(mail)
        #expect(parts[0].text.contains(title) && parts[0].text.contains("详情：/var 已满 🚨"), "\(parts[0].text)")
        #expect(parts[1].text.contains("详情：<i>/var</i> 已满 🚨"))
    }

    @Test func aHostileSubjectOrNameCreatesNoHeader() async throws {
        let mock = try await SMTPMock.start()
        defer { mock.server.stop() }
        var message = Self.message(title: "Disk full\r\nBcc: victim@evil.example\r\nX-Injected: yes\n\nbody?")
        message.recipient = "Eve\r\nCc: spy@evil.example <eve@example.com>"
        let outcomes = try await deliver([message], settings: Self.login("smtp://127.0.0.1:\(mock.starttls)"), mock: mock)
        guard case .delivered = outcomes[0] else { Issue.record("\(outcomes)"); return }
        let received = try await mock.received()
        try #require(received.count == 1)
        let mail = received[0]
        Self.expectWellFormed(mail)
        let headers = (mail["header_names"]?.arrayValue ?? []).compactMap(\.stringValue).map { $0.lowercased() }
        #expect(!headers.contains("bcc") && !headers.contains("x-injected") && !headers.contains("cc"), "\(headers)")
        #expect(mail["rcpt_tos"]?.arrayValue == [.string("eve@example.com")], "only the named address is a recipient")
        let subject = mail["subject"]?.stringValue ?? ""
        #expect(subject.contains("Disk full Bcc: victim@evil.example X-Injected: yes body?"), "the line breaks became spaces: \(subject)")
        #expect(mail["to"]?.arrayValue?.first?["name"]?.stringValue == "Eve Cc: spy@evil.example")
    }

    @Test func refusedRecipientsAreReportedOneByOne() async throws {
        let mock = try await SMTPMock.start()
        defer { mock.server.stop() }
        var message = Self.message()
        message.recipient = "ok@example.com, nobody@refuse.example, other@example.com"
        let outcomes = try await deliver([message], settings: Self.login("smtp://127.0.0.1:\(mock.starttls)"), mock: mock)
        guard case .failed(let reason) = outcomes[0] else { Issue.record("a 5xx refusal is permanent: \(outcomes)"); return }
        #expect(reason.contains("n***@refuse.example") && reason.contains("550"), "the refused address is named, masked, with its code: \(reason)")
        #expect(!reason.contains("nobody@"), "addresses are masked: \(reason)")
        #expect(reason.contains("2 recipients"), "\(reason)")
        let received = try await mock.received()
        try #require(received.count == 1)
        #expect(received[0]["rcpt_tos"]?.arrayValue == [.string("ok@example.com"), .string("other@example.com")])
    }

    @Test func greylistedRecipientsAreRetriedAloneAnd535IsPermanent() async throws {
        let mock = try await SMTPMock.start()
        defer { mock.server.stop() }
        var message = Self.message()
        message.recipient = "first@example.com, later@greylist.example"
        // The same delivery twice (same idempotency key): the second attempt must not send the
        // accepted recipient a second copy.
        let outcomes = try await deliver([message, message], settings: Self.login("smtp://127.0.0.1:\(mock.starttls)"), mock: mock)
        for outcome in outcomes {
            guard case .retry(_, let reason) = outcome else { Issue.record("a 4xx refusal is retried: \(outcome)"); continue }
            #expect(reason.contains("l***@greylist.example") && reason.contains("450"), "\(reason)")
        }
        let received = try await mock.received()
        #expect(received.count == 1, "the retry goes to the greylisted recipient only: \(received.map { $0["rcpt_tos"]?.jsonText ?? "" })")
        #expect(received.first?["rcpt_tos"]?.arrayValue == [.string("first@example.com")])

        var greylisted = Self.message()
        greylisted.recipient = "only@greylist.example"
        let deferred = try await deliver([greylisted], settings: Self.login("smtp://127.0.0.1:\(mock.starttls)"), mock: mock)
        guard case .retry = deferred[0] else { Issue.record("every recipient greylisted: \(deferred)"); return }

        let wrong = try await deliver([Self.message()], settings: Self.login("smtp://127.0.0.1:\(mock.starttls)", ["password": "wrong-pass-42"]), mock: mock)
        guard case .failed(let reason) = wrong[0] else { Issue.record("535 is permanent: \(wrong)"); return }
        #expect(reason.lowercased().contains("authentication") && reason.contains("535"), "\(reason)")
        #expect(!reason.contains("wrong-pass-42"))
        #expect(try await mock.received().count == 1)
    }

    @Test func aMessageWithoutRecipientsOrWithABadOneFails() async throws {
        let mock = try await SMTPMock.start()
        defer { mock.server.stop() }
        var bad = Self.message()
        bad.recipient = "not-an-address"
        let none: [String: Any] = ["smtp_url": "smtp://127.0.0.1:\(mock.starttls)", "from": "alerts@herald.example", "username": "herald", "password": "s3cret"]
        let outcomes = try await deliver([bad, Self.message()], settings: none, mock: mock)
        guard case .failed(let badReason) = outcomes[0], case .failed(let noneReason) = outcomes[1] else { Issue.record("\(outcomes)"); return }
        #expect(badReason.contains("not an e-mail address"), "\(badReason)")
        #expect(noneReason.contains("no recipient"), "\(noneReason)")
    }
}
