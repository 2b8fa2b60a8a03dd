import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Logging
import Synchronization
import Testing

/// Collects every log line (plugin and delivery) so tests can check nothing secret is printed.
final class AliyunLogSink: @unchecked Sendable {
    // @unchecked: `lines` is guarded by its Mutex.
    let lines = Mutex<[String]>([])
    var all: String { lines.withLock { $0.joined(separator: "\n") } }

    func logger(_ label: String) -> Logger {
        Logger(label: label) { _ in Handler(sink: self) }
    }

    struct Handler: LogHandler {
        let sink: AliyunLogSink
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            let extra = (metadata ?? [:]).merging(self.metadata) { a, _ in a }.map { "\($0)=\($1)" }.joined(separator: " ")
            sink.lines.withLock { $0.append("\(level) \(message) \(extra)") }
        }
    }
}

/// One integration of an Alibaba Cloud plugin against `aliyun_mock.py`.
struct AliyunRig {
    static let keyID = "LTAI5tHeraldTestKey01"
    static let secret = "HeraldTestSecret0123456789abcdef"
    static let token = "cb-token-0123456789abcdef"

    let mock: MockServer
    let runtime: HeraldRuntime
    let integration: Integration
    let logs: AliyunLogSink

    init(_ plugin: String, flags: [String] = [], settings extra: String = "", keyID: String = keyID, secret: String = secret) throws {
        mock = try MockServer(script: "aliyun_mock.py", arguments: ["--access-key-id", Self.keyID, "--secret", Self.secret, "--oracle"] + flags)
        let common = #"access_key_id: "\#(keyID)", access_key_secret: "\#(secret)", endpoint: "\#(mock.base)""#
        let specific = plugin == "aliyun-sms"
            ? #"sign_name: "Herald", template_code: "SMS_123456789", template_params: {title: title, sev: severity, no: incident_number, link: view_link}"#
            : #"called_show_number: "057112345678", start_code: "TTS_100000001", ack_code: "TTS_100000002", template_params: {title: title, sev: severity}, callback_token: "\#(Self.token)""#
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: ali
            plugin: \(plugin)
            settings: {\(common), \(specific)\(extra.isEmpty ? "" : ", " + extra)}
            egress: {allow: [127.0.0.1], allow_loopback: true}
        """, file: "/tmp/aliyun.yaml", environment: [:])
        logs = AliyunLogSink()
        runtime = HeraldRuntime(config: config, environment: PluginHostEnvironment(logger: logs.logger("herald.plugin")),
                                logger: logs.logger("herald"))
        guard let integration = runtime.integrations["ali"] else {
            mock.stop()
            throw Fixtures.BuildError(description: "integration did not start: \(runtime.problems)")
        }
        self.integration = integration
    }

    func stop() {
        runtime.shutdown()
        mock.stop()
    }

    static func message(_ key: String = "k-\(UUID().uuidString.prefix(8))", recipient: String = "+8613812345678",
                        incident: String = "inc-42") -> OutgoingMessage {
        var m = OutgoingMessage(idempotencyKey: key, title: "Disk almost full on db-1, 92% used on /var and still growing fast", body: "92% used")
        m.severity = .critical
        m.incidentID = incident
        m.incidentNumber = 42
        m.recipient = recipient
        m.links = [MessageLink(kind: .view, label: "View", url: "https://herald.example/i/inc-42")]
        return m
    }

    func deliver(_ message: OutgoingMessage = message()) async -> DeliveryResult {
        var deliverer = runtime.deliverer
        deliverer.logger = logs.logger("herald.delivery")
        return await deliverer.deliver(message, through: integration)
    }

    func received() async throws -> [JSONValue] {
        try JSONValue.parse(Data(try await mock.get("/_received"))).arrayValue ?? []
    }

    func oracleStats() async throws -> (checks: Double, disagreements: Double) {
        let stats = try JSONValue.parse(Data(try await mock.get("/_stats")))
        return (stats["oracle_checks"]?.numberValue ?? -1, stats["oracle_disagreements"]?.numberValue ?? -1)
    }

    func push(_ items: String, token: String = token) -> CallbackResult {
        integration.instance.parseCallback(InboundRequest(method: "POST", path: "/callbacks/ali/\(token)",
                                                          headers: [HeaderField("Content-Type", "application/json")], body: Array(items.utf8)))
    }
}

@Suite("Alibaba Cloud SMS plugin against the mock gateway")
struct AliyunSMSTests {
    @Test(arguments: ["v3", "v2"])
    func aSignedSendSmsIsDelivered(_ version: String) async throws {
        let rig = try AliyunRig("aliyun-sms", settings: "signature_version: \(version)")
        defer { rig.stop() }
        let result = await rig.deliver()
        guard case .delivered(let id) = result.outcome else { Issue.record("\(result.outcome)"); return }
        let received = try await rig.received()
        #expect(received.count == 1)
        let call = try #require(received.first)
        #expect(call["signature_version"]?.stringValue == version)
        #expect(call["action"]?.stringValue == "SendSms")
        let params = try #require(call["params"])
        #expect(params["PhoneNumbers"]?.stringValue == "+8613812345678")
        #expect(params["SignName"]?.stringValue == "Herald")
        #expect(params["TemplateCode"]?.stringValue == "SMS_123456789")
        // TemplateParam: a JSON object of strings, each value cleaned and cut to 35 characters.
        let vars = try JSONValue.parse(try #require(params["TemplateParam"]?.stringValue))
        let title = try #require(vars["title"]?.stringValue)
        #expect(title.count == 35 && title.hasSuffix("…") && title.hasPrefix("Disk almost full on db-1"), "\(title)")
        #expect(vars["sev"]?.stringValue == "Critical")
        #expect(vars["no"]?.stringValue == "42")
        #expect(vars["link"]?.stringValue == "https://herald.example/i/inc-42")
        #expect(id?.hasSuffix("^0") == true, "the BizId is the provider id: \(String(describing: id))")
        let oracle = try await rig.oracleStats()
        #expect(oracle.checks >= 1 && oracle.disagreements == 0, "the SDK's own signing helper must agree: \(oracle)")
    }

    @Test func aRetryOfADeliveredMessageSendsNothing() async throws {
        let rig = try AliyunRig("aliyun-sms")
        defer { rig.stop() }
        let message = AliyunRig.message("same-key")
        let first = await rig.deliver(message)
        let second = await rig.deliver(message)
        #expect(first.outcome == second.outcome)
        #expect(try await rig.received().count == 1, "SendSms has no idempotency key; the plugin must not send twice")
    }

    @Test func theDefaultRecipientIsUsedAndAMissingOneFails() async throws {
        let rig = try AliyunRig("aliyun-sms", settings: #"default_recipient: "13900001111""#)
        defer { rig.stop() }
        guard case .delivered = await rig.deliver(AliyunRig.message(recipient: "")).outcome else { Issue.record("default recipient"); return }
        #expect(try await rig.received().first?["params"]?["PhoneNumbers"]?.stringValue == "13900001111")

        let bare = try AliyunRig("aliyun-sms")
        defer { bare.stop() }
        guard case .failed(let reason) = await bare.deliver(AliyunRig.message(recipient: "")).outcome else { Issue.record("no recipient"); return }
        #expect(reason.contains("recipient"), "\(reason)")
        #expect(try await bare.received().isEmpty)
    }

    /// Each vendor error class ends in the right outcome, and the reason names the code.
    struct Case: Sendable, CustomStringConvertible {
        let flags: [String]
        let retry: Bool
        let word: String
        var retryAfter: UInt64? = nil
        var description: String { flags.joined(separator: " ") }
    }

    static let cases: [Case] = [
        Case(flags: ["--fail", "isv.BUSINESS_LIMIT_CONTROL"], retry: false, word: "isv.BUSINESS_LIMIT_CONTROL"),
        Case(flags: ["--fail", "isv.BUSINESS_LIMIT_CONTROL", "--limit-message", "触发分钟级流控Permits:1"], retry: true,
             word: "isv.BUSINESS_LIMIT_CONTROL", retryAfter: 60_000),
        Case(flags: ["--fail", "Throttling.User"], retry: true, word: "Throttling.User"),
        Case(flags: ["--fail", "ServiceUnavailable"], retry: true, word: "ServiceUnavailable"),
        Case(flags: ["--fail", "InternalError"], retry: true, word: "InternalError"),
        Case(flags: ["--fail", "isp.SYSTEM_ERROR"], retry: true, word: "isp.SYSTEM_ERROR"),
        Case(flags: ["--fail", "isp.GATEWAY_ERROR"], retry: true, word: "isp.GATEWAY_ERROR"),
        Case(flags: ["--fail", "isv.AMOUNT_NOT_ENOUGH"], retry: false, word: "balance"),
        Case(flags: ["--fail", "isv.OUT_OF_SERVICE"], retry: false, word: "isv.OUT_OF_SERVICE"),
        Case(flags: ["--template-code", "SMS_999"], retry: false, word: "isv.SMS_TEMPLATE_ILLEGAL"),
        Case(flags: ["--sign-name", "Other"], retry: false, word: "isv.SMS_SIGNATURE_ILLEGAL"),
        Case(flags: ["--template-vars", "title,missing"], retry: false, word: "isv.TEMPLATE_MISSING_PARAMETERS"),
        Case(flags: ["--param-max", "10"], retry: false, word: "isv.PARAM_LENGTH_LIMIT"),
        Case(flags: ["--fail", "isv.SOMETHING_NEW_77777"], retry: false, word: "unknown code isv.SOMETHING_NEW_77777"),
        Case(flags: ["--fail", "Brand.New:418"], retry: false, word: "unknown code Brand.New"),
    ]

    @Test(arguments: cases)
    func everyErrorClassHasItsOutcome(_ c: Case) async throws {
        let rig = try AliyunRig("aliyun-sms", flags: c.flags)
        defer { rig.stop() }
        let outcome = await rig.deliver().outcome
        switch outcome {
        case .retry(let after, let reason) where c.retry:
            #expect(reason.contains(c.word), "\(reason)")
            if let expected = c.retryAfter { #expect(after == expected) }
        case .failed(let reason) where !c.retry:
            #expect(reason.contains(c.word), "\(reason)")
        default:
            Issue.record("\(c): \(outcome)")
        }
    }

    @Test func aWrongSecretOrKeyFailsWithoutLeakingAnything() async throws {
        for (keyID, secret, word) in [(AliyunRig.keyID, "WrongSecret0000000000000000000000", "SignatureDoesNotMatch"),
                                      ("LTAI5tSomeOtherKey999", AliyunRig.secret, "InvalidAccessKeyId")] {
            let rig = try AliyunRig("aliyun-sms", keyID: keyID, secret: secret)
            defer { rig.stop() }
            guard case .failed(let reason) = await rig.deliver().outcome else { Issue.record("\(word) must fail"); continue }
            #expect(reason.contains(word), "\(reason)")
            let seen = reason + "\n" + rig.logs.all
            for secretText in ["13812345678", keyID, secret, "server string to sign"] {
                #expect(!seen.contains(secretText), "'\(secretText)' must not appear: \(seen)")
            }
        }
    }

    @Test func anIllegalNumberFailsAndIsMasked() async throws {
        let rig = try AliyunRig("aliyun-sms")
        defer { rig.stop() }
        guard case .failed(let reason) = await rig.deliver(AliyunRig.message(recipient: "2345678901234")).outcome else {
            Issue.record("an illegal number must fail"); return
        }
        #expect(reason.contains("isv.MOBILE_NUMBER_ILLEGAL"), "\(reason)")
        #expect(!(reason + rig.logs.all).contains("2345678901234"))
        guard case .failed(let local) = await rig.deliver(AliyunRig.message(recipient: "call 13812345678 now")).outcome else {
            Issue.record("a non-number must fail"); return
        }
        #expect(local.contains("138****5678") && !local.contains("13812345678"), "\(local)")
    }

    @Test(arguments: ["v3", "v2"])
    func aSkewedClockIsLearnedAndTheRequestReSigned(_ version: String) async throws {
        let rig = try AliyunRig("aliyun-sms", flags: ["--clock-skew", "3600"], settings: "signature_version: \(version)")
        defer { rig.stop() }
        let result = await rig.deliver()
        guard case .delivered = result.outcome else { Issue.record("\(result.outcome)"); return }
        #expect(result.exchanges.count == 2, "refused once (InvalidTimeStamp.Expired), then re-signed on the server's clock")
        #expect(rig.logs.all.contains("InvalidTimeStamp.Expired"))
        // The next delivery uses the learned offset at once.
        let next = await rig.deliver()
        #expect(next.exchanges.count == 1, "\(next.outcome)")
    }
}

@Suite("Alibaba Cloud voice plugin: IvrCall and receipts")
struct AliyunVoiceTests {
    /// Places a call and returns (call_id, out_id) as the mock received them.
    func call(_ rig: AliyunRig, incident: String, recipient: String = "+8613812345678") async throws -> (String, String) {
        let result = await rig.deliver(AliyunRig.message(recipient: recipient, incident: incident))
        guard case .delivered(let id) = result.outcome, let callID = id else { throw Fixtures.BuildError(description: "\(result.outcome)") }
        let params = try #require(try await rig.received().last?["params"])
        return (callID, try #require(params["OutId"]?.stringValue))
    }

    @Test(arguments: ["v3", "v2"])
    func anIvrCallReadsTheAlertAndMapsKeyOne(_ version: String) async throws {
        let rig = try AliyunRig("aliyun-voice", settings: "signature_version: \(version), play_times: 2, timeout_ms: 5000")
        defer { rig.stop() }
        let (callID, outID) = try await call(rig, incident: "inc-7")
        let call = try #require(try await rig.received().first)
        #expect(call["action"]?.stringValue == "IvrCall")
        let p = try #require(call["params"])
        #expect(p["CalledNumber"]?.stringValue == "13812345678", "mainland number without +86")
        #expect(p["CalledShowNumber"]?.stringValue == "057112345678")
        #expect(p["StartCode"]?.stringValue == "TTS_100000001")
        #expect(p["MenuKeyMap.1.Key"]?.stringValue == "1")
        #expect(p["MenuKeyMap.1.Code"]?.stringValue == "TTS_100000002")
        #expect(p["PlayTimes"]?.stringValue == "2" && p["Timeout"]?.stringValue == "5000")
        #expect(outID.utf8.count <= 15 && !outID.isEmpty)
        let tts = try JSONValue.parse(try #require(p["StartTtsParams"]?.stringValue))
        #expect(tts["sev"]?.stringValue == "Critical")
        #expect(callID.hasPrefix("116012354148^"))
        let oracle = try await rig.oracleStats()
        #expect(oracle.checks >= 1 && oracle.disagreements == 0)
    }

    @Test func keyOneAcknowledgesOnceAndOtherOutcomesBecomeNotes() async throws {
        let rig = try AliyunRig("aliyun-voice")
        defer { rig.stop() }
        let (callA, outA) = try await call(rig, incident: "inc-A")
        let keyOne = #"[{"status_code":"300000","smart_status_code":"ANSWERED","dtmf":"1","status_time":"2026-11-20 16:21:12","out_id":"\#(outA)","call_id":"\#(callA)"}]"#
        let ack = rig.push(keyOne)
        #expect(ack.authentic)
        #expect(ack.actions == [InboundAction(kind: .acknowledge, incidentID: "inc-A", actor: "mobile:+8613812345678", via: "voice (key 1)")])
        #expect(ack.reply?.status == 200)
        let replyBody = try JSONValue.parse(Data(ack.reply?.body ?? []))
        #expect(replyBody["code"]?.numberValue == 0, "Alibaba's push expects {\"code\":0,...}")

        // The same push again (Alibaba retries) and the final report of the same call: nothing.
        let replay = rig.push(keyOne)
        #expect(replay.authentic && replay.actions.isEmpty, "\(replay.actions)")
        let final = rig.push(#"[{"call_id":"\#(callA)","out_id":"\#(outA)","status_code":"200001","dtmf":"1","callee":"13812345678","duration":"12"}]"#)
        #expect(final.authentic && final.actions.isEmpty, "already acknowledged: \(final.actions)")

        // Another key on another call: a note, masked. Matched by call_id alone.
        let (callB, _) = try await call(rig, incident: "inc-B")
        let two = rig.push(#"[{"status_code":"300000","dtmf":"2","call_id":"\#(callB)"}]"#)
        #expect(two.actions.count == 1)
        #expect(two.actions.first?.kind == .note && two.actions.first?.incidentID == "inc-B")
        let note = two.actions.first?.note ?? ""
        #expect(note.contains("key 2") && note.contains("138****5678") && !note.contains("13812345678"), "\(note)")

        // Busy and no answer (final VoiceReports), in one batch.
        let (callC, outC) = try await call(rig, incident: "inc-C")
        let (callD, outD) = try await call(rig, incident: "inc-D")
        let batch = rig.push(#"""
        [{"call_id":"\#(callC)","out_id":"\#(outC)","status_code":"200002","status_msg":"用户忙","dtmf":"","duration":"0"},
         {"call_id":"\#(callD)","out_id":"\#(outD)","status_code":"200003","status_msg":"无人接听","duration":"0"}]
        """#)
        #expect(batch.actions.map(\.kind) == [.note, .note])
        #expect(batch.actions.map(\.incidentID) == ["inc-C", "inc-D"])
        #expect(batch.actions.first?.note.contains("busy") == true, "\(batch.actions)")
        #expect(batch.actions.last?.note.contains("nobody answered") == true, "\(batch.actions)")
        #expect(rig.push(#"[{"call_id":"\#(callC)","out_id":"\#(outC)","status_code":"200002","dtmf":""}]"#).actions.isEmpty, "replayed busy report")
        #expect(!rig.logs.all.contains("13812345678"), "no full phone number in the logs")
    }

    @Test func forgedOrMalformedPushesAreRefused() async throws {
        let rig = try AliyunRig("aliyun-voice")
        defer { rig.stop() }
        let (callA, outA) = try await call(rig, incident: "inc-F")
        let keyOne = #"[{"status_code":"300000","dtmf":"1","out_id":"\#(outA)","call_id":"\#(callA)"}]"#
        for token in ["cb-token-0123456789abcdeX", "cb-token-0123456789abcde", "", "cb-token-0123456789abcdef0"] {
            let forged = rig.push(keyOne, token: token)
            #expect(!forged.authentic && forged.actions.isEmpty, "token '\(token)'")
            #expect((400..<500).contains(forged.reply?.status ?? 0), "a forged push gets a 4xx: \(String(describing: forged.reply))")
        }
        let noPath = rig.integration.instance.parseCallback(InboundRequest(method: "POST", path: "/", body: Array(keyOne.utf8)))
        #expect(!noPath.authentic && noPath.actions.isEmpty)
        let garbage = rig.push("not json")
        #expect(!garbage.authentic && garbage.reply?.status == 400)
        // After all that, the genuine push still acknowledges.
        #expect(rig.push(keyOne).actions.map(\.kind) == [.acknowledge])
    }

    @Test func aCallOutsideMainlandChinaFailsBeforeCalling() async throws {
        let rig = try AliyunRig("aliyun-voice")
        defer { rig.stop() }
        guard case .failed(let reason) = await rig.deliver(AliyunRig.message(recipient: "+14155550123")).outcome else {
            Issue.record("IvrCall is mainland only"); return
        }
        #expect(reason.contains("mainland") && !reason.contains("4155550123"), "\(reason)")
        #expect(try await rig.received().isEmpty)
    }

    @Test func voiceErrorsAreClassifiedLikeSMS() async throws {
        for (flag, retry) in [("Throttling.Api", true), ("isv.AMOUNT_NOT_ENOUGH", false), ("ServiceUnavailable", true)] {
            let rig = try AliyunRig("aliyun-voice", flags: ["--fail", flag])
            defer { rig.stop() }
            switch await rig.deliver().outcome {
            case .retry(_, let reason) where retry: #expect(reason.contains(flag))
            case .failed(let reason) where !retry: #expect(reason.contains(flag))
            case let other: Issue.record("\(flag): \(other)")
            }
        }
    }
}
