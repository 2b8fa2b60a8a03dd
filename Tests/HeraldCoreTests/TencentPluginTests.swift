import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Logging
import Synchronization
import Testing

/// Log lines the plugins wrote, kept so the tests can check nothing sensitive reached them.
final class CapturedLogs: @unchecked Sendable {
    // @unchecked: every access goes through the mutex.
    let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }

    struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            sink.lines.withLock { $0.append(message.description) }
        }
    }

    var logger: Logger { Logger(label: "tencent-test") { _ in Handler(sink: self) } }
}

/// tencent-sms and tencent-voice against Tests/mocks/tencent_mock.py, which verifies every TC3
/// signature itself and, with --oracle, with the official tencentcloud-sdk-python-common.
@Suite("Tencent Cloud SMS and voice plugins against a mock Tencent Cloud")
struct TencentPluginTests {
    static let secretID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
    static let secretKey = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
    static let token = "tok_0123456789abcdef"

    struct Setup {
        let mock: MockServer
        let runtime: HeraldRuntime
        let integration: Integration
        let logs: CapturedLogs
        func stop() {
            runtime.shutdown()
            mock.stop()
        }
    }

    func start(_ plugin: String, flags: [String] = [], settings: (String) -> String) throws -> Setup {
        let mock = try MockServer(script: "tencent_mock.py", arguments: ["--oracle"] + flags)
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: tc
            plugin: \(plugin)
            settings: \(settings(mock.base))
            egress: {allow: [127.0.0.1], allow_loopback: true}
        """, file: "/tmp/tencent.yaml", environment: [:])
        let logs = CapturedLogs()
        let runtime = HeraldRuntime(config: config, environment: PluginHostEnvironment(logger: logs.logger), logger: logs.logger)
        guard let integration = runtime.integrations["tc"] else {
            runtime.shutdown()
            mock.stop()
            throw Failure(description: "the integration did not start: \(runtime.problems)")
        }
        return Setup(mock: mock, runtime: runtime, integration: integration, logs: logs)
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    static func sms(_ base: String, key: String = secretKey, id: String = secretID, numbers: [String] = ["+8613800000001"],
                    params: String = "[title, severity, incident_number]") -> String {
        #"{secret_id: "\#(id)", secret_key: "\#(key)", sdk_app_id: "1400006666", sign_name: "Herald", template_id: "449739", "#
            + #"template_params: \#(params), phone_numbers: [\#(numbers.map { "\"\($0)\"" }.joined(separator: ", "))], endpoint: "\#(base)"}"#
    }

    static func voice(_ base: String, numbers: [String] = ["+8613800000001"]) -> String {
        #"{secret_id: "\#(secretID)", secret_key: "\#(secretKey)", voice_sdk_app_id: "1400000000", template_id: "449739", "#
            + #"template_params: [title, incident_number], play_times: 1, callback_token: "\#(token)", "#
            + #"phone_numbers: [\#(numbers.map { "\"\($0)\"" }.joined(separator: ", "))], endpoint: "\#(base)"}"#
    }

    static func message(key: String = "k-\(UUID().uuidString.prefix(8))", recipient: String = "") -> OutgoingMessage {
        var m = OutgoingMessage(idempotencyKey: key, title: "Disk full on db-1", body: "92% used on /var")
        m.severity = .critical
        m.incidentID = "inc-42"
        m.incidentNumber = 42
        m.recipient = recipient
        return m
    }

    func json(_ s: Setup, _ path: String) async throws -> [JSONValue] {
        try JSONValue.parse(Data(try await s.mock.get(path))).arrayValue ?? []
    }

    /// No full phone number, SecretKey or SecretId in `texts`.
    func expectNothingSensitive(_ texts: [String], numbers: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for text in texts {
            for number in numbers {
                let digits = String(number.dropFirst(3)) // the national part
                #expect(!text.contains(digits), "a full phone number leaked: \(text)", sourceLocation: sourceLocation)
            }
            #expect(!text.contains(Self.secretKey) && !text.contains(Self.secretID), "a key leaked: \(text)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - SMS

    @Test func anSMSIsSignedAndItsTemplateFilledFromTheMessage() async throws {
        let s = try start("tencent-sms", flags: ["--template-vars", "3", "--param-max", "6"]) { Self.sms($0) }
        defer { s.stop() }
        let message = Self.message()
        let outcome = await s.runtime.deliverer.deliver(message, through: s.integration).outcome
        guard case .delivered(let id) = outcome else { Issue.record("\(outcome)"); return }
        #expect(id?.hasPrefix("5000:") == true, "the provider id is Tencent's SerialNo: \(String(describing: id))")
        let received = try await json(s, "/_received")
        #expect(received.count == 1)
        let payload = received.first?["payload"]
        #expect(payload?["PhoneNumberSet"]?.arrayValue?.compactMap(\.stringValue) == ["+8613800000001"])
        #expect(payload?["SessionContext"]?.stringValue == message.idempotencyKey)
        // Each variable is the message field, cut to 6 characters (the mock enforces the limit).
        let params = payload?["TemplateParamSet"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(params == [String(message.title.prefix(6)), String("critical".prefix(6)), "42"])
        let headers = received.first?["headers"]
        #expect(headers?["host"]?.stringValue == "127.0.0.1:\(s.mock.port)", "the signed host is the Host header with its port")
        #expect(headers?["x-tc-region"]?.stringValue == "ap-guangzhou")
        #expect(headers?["authorization"]?.stringValue?.contains("SignedHeaders=content-type;host,") == true)
    }

    @Test func recipientsComeFromTheMessageAndAreNormalisedToE164() async throws {
        let s = try start("tencent-sms") { Self.sms($0) }
        defer { s.stop() }
        let outcome = await s.runtime.deliverer.deliver(Self.message(recipient: "13800000002, +86 138-0000-0003;008613800000002"),
                                                        through: s.integration).outcome
        guard case .delivered = outcome else { Issue.record("\(outcome)"); return }
        let numbers = try await json(s, "/_received").first?["payload"]?["PhoneNumberSet"]?.arrayValue?.compactMap(\.stringValue)
        #expect(numbers == ["+8613800000002", "+8613800000003"])

        let bad = await s.runtime.deliverer.deliver(Self.message(recipient: "+8613800000002, 12345678901234567"), through: s.integration).outcome
        guard case .failed(let reason) = bad else { Issue.record("\(bad)"); return }
        #expect(reason.contains("recipient 2") && reason.contains("not a phone number"), "\(reason)")
        expectNothingSensitive([reason], numbers: ["+8613800000002", "+8612345678901234567"])
        #expect(try await json(s, "/_all").count == 1, "a bad recipient sends nothing")
    }

    @Test func aPartialFailureNamesEachRefusedNumberMasked() async throws {
        let numbers = ["+8613800000001", "+8613800000002", "+8613800000003"]
        let s = try start("tencent-sms", flags: ["--number-code", "+8613800000002=LimitExceeded.PhoneNumberDailyLimit",
                                                 "--number-code", "+8613800000003=FailedOperation.PhoneNumberInBlacklist"]) {
            Self.sms($0, numbers: numbers)
        }
        defer { s.stop() }
        let outcome = await s.runtime.deliverer.deliver(Self.message(), through: s.integration).outcome
        guard case .failed(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.contains("2 of 3"), "\(reason)")
        #expect(reason.contains("+86138****0002 (LimitExceeded.PhoneNumberDailyLimit"), "\(reason)")
        #expect(reason.contains("+86138****0003 (FailedOperation.PhoneNumberInBlacklist"), "\(reason)")
        #expect(!reason.contains("****0001"), "the number that got it is not a failure: \(reason)")
        // The mock's per-number messages quote the number in full; the plugin masks them.
        expectNothingSensitive([reason] + s.logs.all, numbers: numbers)
    }

    @Test func aRetryTextsOnlyTheNumbersThatDidNotGetIt() async throws {
        let numbers = ["+8613800000001", "+8613800000002"]
        let s = try start("tencent-sms", flags: ["--number-code", "+8613800000002=InternalError.Timeout:1"]) { Self.sms($0, numbers: numbers) }
        defer { s.stop() }
        let message = Self.message()
        let first = await s.runtime.deliverer.deliver(message, through: s.integration).outcome
        guard case .retry(_, let reason) = first else { Issue.record("\(first)"); return }
        #expect(reason.contains("+86138****0002 (InternalError.Timeout)") && reason.contains("1 of 2"), "\(reason)")
        let second = await s.runtime.deliverer.deliver(message, through: s.integration).outcome
        guard case .delivered = second else { Issue.record("\(second)"); return }
        let sent = try await json(s, "/_received").map { $0["payload"]?["PhoneNumberSet"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        #expect(sent == [numbers, ["+8613800000002"]], "the retry must not text +...0001 again")
        // A third attempt (the outcome was lost) sends nothing and reports delivered.
        let third = await s.runtime.deliverer.deliver(message, through: s.integration).outcome
        guard case .delivered = third else { Issue.record("\(third)"); return }
        #expect(try await json(s, "/_all").count == 2)
        expectNothingSensitive([reason] + s.logs.all, numbers: numbers)
    }

    enum Expect: Sendable { case retry, failed }

    static let smsFailures: [(flags: [String], key: String, id: String, expect: Expect, word: String)] = [
        (["--fail", "RequestLimitExceeded"], secretKey, secretID, .retry, "RequestLimitExceeded"),
        (["--fail", "InternalError"], secretKey, secretID, .retry, "InternalError"),
        (["--number-code", "+8613800000001=LimitExceeded.PhoneNumberThirtySecondLimit"], secretKey, secretID, .retry, "ThirtySecondLimit"),
        (["--http-status", "502"], secretKey, secretID, .retry, "502"),
        ([], "wrongSecretKeyWrongSecretKey", secretID, .failed, "AuthFailure.SignatureFailure"),
        ([], secretKey, "AKIDunknownunknownunknown", .failed, "AuthFailure.SecretIdNotFound"),
        (["--fail", "FailedOperation.InsufficientBalanceInSmsPackage"], secretKey, secretID, .failed, "InsufficientBalanceInSmsPackage"),
        (["--template-vars", "2"], secretKey, secretID, .failed, "TemplateParamSetNotMatchApprovedTemplate"),
        (["--param-max", "3"], secretKey, secretID, .failed, "TemplateParameterLengthLimit"),
        (["--template-id", "1"], secretKey, secretID, .failed, "TemplateIncorrectOrUnapproved"),
        (["--number-code", "+8613800000001=InvalidParameterValue.IncorrectPhoneNumber"], secretKey, secretID, .failed, "IncorrectPhoneNumber"),
        (["--fail", "FailedOperation.SomethingNew77777"], secretKey, secretID, .failed, "FailedOperation.SomethingNew77777"),
    ]

    @Test(arguments: 0..<smsFailures.count)
    func everySMSFailureClassGetsItsOutcome(_ index: Int) async throws {
        let c = Self.smsFailures[index]
        let s = try start("tencent-sms", flags: c.flags) { Self.sms($0, key: c.key, id: c.id) }
        defer { s.stop() }
        let outcome = await s.runtime.deliverer.deliver(Self.message(), through: s.integration).outcome
        switch (c.expect, outcome) {
        case (.retry, .retry(_, let reason)), (.failed, .failed(let reason)):
            #expect(reason.contains(c.word), "\(c.flags): \(reason)")
            expectNothingSensitive([reason] + s.logs.all, numbers: ["+8613800000001"])
            #expect(!reason.contains("wrongSecretKey"), "\(reason)")
        default:
            Issue.record("\(c.flags): expected \(c.expect), got \(outcome)")
        }
    }

    @Test func anExpiredSignatureIsSignedAgainWithTencentsClock() async throws {
        let s = try start("tencent-sms", flags: ["--skew", "900"]) { Self.sms($0) }
        defer { s.stop() }
        let outcome = await s.runtime.deliverer.deliver(Self.message(), through: s.integration).outcome
        guard case .delivered = outcome else { Issue.record("\(outcome)"); return }
        let codes = try await json(s, "/_all").compactMap { $0["code"]?.stringValue }
        #expect(codes == ["AuthFailure.SignatureExpire", ""])
        // The learnt offset is kept: the next message is signed right the first time.
        let next = await s.runtime.deliverer.deliver(Self.message(), through: s.integration).outcome
        guard case .delivered = next else { Issue.record("\(next)"); return }
        #expect(try await json(s, "/_all").count == 3)
    }

    @Test func aConfigThatMixesMainlandAndInternationalNumbersIsRefused() throws {
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: tc
            plugin: tencent-sms
            settings: \(Self.sms("https://sms.tencentcloudapi.com", numbers: ["+8613800000001", "+12025550123"]))
        """, file: "/tmp/tencent.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        #expect(runtime.integrations["tc"] == nil)
        #expect(runtime.problems.contains { $0.contains("mixes mainland China") }, "\(runtime.problems)")
    }

    // MARK: - Voice

    func callback(_ s: Setup, _ body: String, token: String = token) -> CallbackResult {
        s.integration.instance.parseCallback(InboundRequest(method: "POST", path: "/callbacks/tc/\(token)",
                                                            headers: [HeaderField("Content-Type", "application/json")], body: Array(body.utf8)))
    }

    @Test func pressingOneOnTheCallAcknowledgesTheIncident() async throws {
        let s = try start("tencent-voice") { Self.voice($0) }
        defer { s.stop() }
        let message = Self.message()
        let outcome = await s.runtime.deliverer.deliver(message, through: s.integration).outcome
        guard case .delivered(let id) = outcome else { Issue.record("\(outcome)"); return }
        let received = try await json(s, "/_received")
        let callID = try #require(received.first?["call_id"]?.stringValue)
        #expect(id == callID)
        let payload = received.first?["payload"]
        #expect(payload?["CalledNumber"]?.stringValue == "+8613800000001")
        #expect(payload?["PlayTimes"]?.numberValue == 1)
        #expect(payload?["TemplateParamSet"]?.arrayValue?.compactMap(\.stringValue) == [message.title, "42"])

        let key1 = #"{"voicekey_callback":{"call_from":"","callid":"\#(callID)","keypress":"1","mobile":"13800000001","nationcode":"86"}}"#
        let ack = callback(s, key1)
        #expect(ack.authentic)
        #expect(ack.actions == [InboundAction(kind: .acknowledge, incidentID: "inc-42", actor: "mobile:+8613800000001", via: "voice (key 1)")])
        #expect(ack.reply?.status == 200)
        #expect(ack.reply.map { String(decoding: $0.body, as: UTF8.self) } == #"{"result":0,"errmsg":"OK"}"#)

        // Tencent retries a callback it thinks was lost: the replay changes nothing.
        let replay = callback(s, key1)
        #expect(replay.authentic && replay.actions.isEmpty && replay.reply?.status == 200)

        // Another key is only noted.
        let key2 = callback(s, #"{"voicekey_callback":{"call_from":"","callid":"\#(callID)","keypress":"2","mobile":"13800000001","nationcode":"86"}}"#)
        #expect(key2.actions.count == 1)
        #expect(key2.actions.first?.kind == .note && key2.actions.first?.incidentID == "inc-42")
        #expect(key2.actions.first?.note.contains("key 2") == true)
        expectNothingSensitive(key2.actions.map(\.note) + s.logs.all, numbers: ["+8613800000001"])
    }

    @Test func missedAndFailedCallsAreNotedAndForgeriesRefused() async throws {
        let s = try start("tencent-voice") { Self.voice($0) }
        defer { s.stop() }
        let outcome = await s.runtime.deliverer.deliver(Self.message(), through: s.integration).outcome
        guard case .delivered = outcome else { Issue.record("\(outcome)"); return }
        let callID = try #require(try await json(s, "/_received").first?["call_id"]?.stringValue)
        let prompt = #"{"voiceprompt_callback":{"result":"1","accept_time":"0","call_from":"","callid":"\#(callID)","end_calltime":"1700000060","fee":"0","mobile":"13800000001","nationcode":"86","start_calltime":"1700000000"}}"#

        // A forged token: nothing happens, and the caller gets a 4xx.
        let forged = callback(s, prompt, token: "tok_guessed_guessed_guess")
        #expect(!forged.authentic && forged.actions.isEmpty)
        #expect((400...499).contains(forged.reply?.status ?? 0))
        let noToken = s.integration.instance.parseCallback(InboundRequest(method: "POST", path: "/callbacks/tc", body: Array(prompt.utf8)))
        #expect(!noToken.authentic && noToken.actions.isEmpty)

        let missed = callback(s, prompt)
        #expect(missed.authentic && missed.actions.count == 1)
        #expect(missed.actions.first?.kind == .note && missed.actions.first?.note.contains("not answered") == true, "\(missed.actions)")
        #expect(callback(s, prompt).actions.isEmpty, "a replayed status callback is acted on once")

        let answered = callback(s, prompt.replacingOccurrences(of: #""result":"1""#, with: #""result":"0""#))
        #expect(answered.authentic && answered.actions.isEmpty)

        let failure = callback(s, #"{"voice_failure_callback":{"call_from":"","callid":"\#(callID)","failure_code":8,"failure_reason":"空号","mobile":"13800000001","nationcode":"86"}}"#)
        #expect(failure.actions.first?.kind == .note && failure.actions.first?.note.contains("空号") == true, "\(failure.actions)")

        // An unknown call: no action, but the reply Tencent expects, so it stops retrying.
        let unknown = callback(s, #"{"voicekey_callback":{"call_from":"","callid":"not-ours","keypress":"1","mobile":"13800000009","nationcode":"86"}}"#)
        #expect(unknown.authentic && unknown.actions.isEmpty && unknown.reply?.status == 200)
        expectNothingSensitive((missed.actions + failure.actions).map(\.note) + s.logs.all, numbers: ["+8613800000001", "+8613800000009"])
    }

    static let voiceFailures: [(flags: [String], expect: Expect, word: String)] = [
        (["--fail", "RequestLimitExceeded"], .retry, "RequestLimitExceeded"),
        (["--fail", "InternalError.UpstreamError"], .retry, "InternalError.UpstreamError"),
        (["--fail", "FailedOperation.InsufficientBalanceInVoicePackage"], .failed, "InsufficientBalanceInVoicePackage"),
        (["--voice-app-id", "1"], .failed, "VoiceSdkAppidVerifyFail"),
        (["--fail", "FailedOperation.SomethingNew77777"], .failed, "SomethingNew77777"),
    ]

    @Test(arguments: 0..<voiceFailures.count)
    func everyVoiceFailureClassGetsItsOutcome(_ index: Int) async throws {
        let c = Self.voiceFailures[index]
        let s = try start("tencent-voice", flags: c.flags) { Self.voice($0) }
        defer { s.stop() }
        let outcome = await s.runtime.deliverer.deliver(Self.message(), through: s.integration).outcome
        switch (c.expect, outcome) {
        case (.retry, .retry(_, let reason)), (.failed, .failed(let reason)):
            #expect(reason.contains(c.word), "\(c.flags): \(reason)")
            expectNothingSensitive([reason] + s.logs.all, numbers: ["+8613800000001"])
        default:
            Issue.record("\(c.flags): expected \(c.expect), got \(outcome)")
        }
    }

    @Test func aNumberTencentRefusesDoesNotStopTheOtherCalls() async throws {
        let numbers = ["+8613800000001", "+8613800000002"]
        let s = try start("tencent-voice", flags: ["--number-code", "+8613800000001=InvalidParameterValue.CalledNumberVerifyFail"]) {
            Self.voice($0, numbers: numbers)
        }
        defer { s.stop() }
        let outcome = await s.runtime.deliverer.deliver(Self.message(), through: s.integration).outcome
        guard case .failed(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.contains("+86138****0001 (InvalidParameterValue.CalledNumberVerifyFail"), "\(reason)")
        #expect(reason.contains("the other 1 was called"), "\(reason)")
        let called = try await json(s, "/_received").compactMap { $0["payload"]?["CalledNumber"]?.stringValue }
        #expect(called == ["+8613800000002"])
        expectNothingSensitive([reason] + s.logs.all, numbers: numbers)
    }
}
