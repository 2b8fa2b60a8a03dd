import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldServer
import HeraldStore
import HeraldTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// Issue 5's end-to-end voice flow, for each vendor: an alert reaches a level whose member is
/// called (the mock vendor records the call), the test posts the vendor's key-press callback to
/// Herald's callback URL, and the incident is acknowledged by that member: escalation stops.
@Suite("Press 1 to acknowledge, end to end")
struct VoiceAcknowledgementTests {
    struct Vendor: Sendable, CustomStringConvertible {
        let plugin: String
        let mock: String
        let flags: [String]
        let settings: @Sendable (_ base: String) -> String
        /// The vendor's key-press callback body for a call id.
        let keyPress: @Sendable (_ callID: String, _ key: String) -> String
        /// What the vendor expects back.
        let replyContains: String
        var description: String { plugin }
    }

    static let token = "cb-token-0123456789abcdef"

    static let vendors: [Vendor] = [
        Vendor(plugin: "tencent-voice", mock: "tencent_mock.py", flags: ["--oracle"],
               settings: { base in
                   #"{secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secret_key: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "#
                       + #"voice_sdk_app_id: "1400000000", template_id: "449739", template_params: [title, incident_number], "#
                       + #"callback_token: "\#(token)", endpoint: "\#(base)"}"#
               },
               keyPress: { id, key in #"{"voicekey_callback":{"call_from":"","callid":"\#(id)","keypress":"\#(key)","mobile":"13800000001","nationcode":"86"}}"# },
               replyContains: #""result":0"#),
        Vendor(plugin: "aliyun-voice", mock: "aliyun_mock.py",
               flags: ["--access-key-id", "LTAI5tHeraldTestKey01", "--secret", "HeraldTestSecret0123456789abcdef", "--oracle"],
               settings: { base in
                   #"{access_key_id: "LTAI5tHeraldTestKey01", access_key_secret: "HeraldTestSecret0123456789abcdef", endpoint: "\#(base)", "#
                       + #"called_show_number: "057112345678", start_code: "TTS_100000001", ack_code: "TTS_100000002", "#
                       + #"template_params: {title: title, sev: severity}, callback_token: "\#(token)"}"#
               },
               keyPress: { id, key in #"[{"status_code":"300000","smart_status_code":"ANSWERED","dtmf":"\#(key)","status_time":"2026-11-20 16:21:12","call_id":"\#(id)"}]"# },
               replyContains: #""code":0"#),
    ]

    @Test(arguments: vendors)
    func pressingOneAcknowledgesAndStopsTheEscalation(_ vendor: Vendor) async throws {
        let mock = try MockServer(script: vendor.mock, arguments: vendor.flags)
        defer { mock.stop() }
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: phone
            plugin: \(vendor.plugin)
            settings: \(vendor.settings(mock.base))
            egress: {allow: [127.0.0.1], allow_loopback: true}
        members:
          - {name: ann, phone: "+8613800000001", preferences: {critical: [phone]}}
          - {name: bob, phone: "+8613900000002", preferences: {critical: [phone]}}
        services:
          - name: default
            rules:
              - name: call-on-call
                levels:
                  - {members: [ann], direct: follow_preference, repeat: {times: 2, interval_minutes: 1}, timeout_minutes: 5}
                  - {members: [bob], direct: follow_preference, timeout_minutes: 0}
        """, file: "/tmp/voice.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        #expect(runtime.problems.isEmpty, "\(runtime.problems)")
        let time = TestClock()
        let store = try SQLiteStore.inMemory()
        let service = IncidentService(store: store, policy: config.policy, targets: ["phone": RouteTarget(kind: .voice)], clock: time.read)
        let signer = LinkSigner(secret: String(repeating: "s", count: 32), publicURL: "http://127.0.0.1:8080")
        let dispatcher = Dispatcher(service: service, integrations: runtime.integrations, deliverer: runtime.deliverer, signer: signer)
        let app = buildApplication(ServerContext(service: service, integrations: runtime.integrations, signer: signer,
                                                 settings: config.server, clock: time.read),
                                   address: .hostname("127.0.0.1", port: 0))

        // The alert: ann is called.
        let incident = try await service.ingest(AlertEvent(dedupKey: "db-down", title: "Primary database down", severity: .critical)).incident
        while try await dispatcher.dispatchDue() > 0 {}
        let call = try #require(try await service.deliveries(incident.id).first)
        #expect(call.state == .delivered && call.member == "ann" && call.recipient == "+8613800000001", "\(call)")
        let callID = try #require(call.providerID, "the vendor's call id is the delivery's provider id")

        try await app.test(.router) { client in
            // A wrong key is noted; a forged callback changes nothing; key 1 acknowledges as ann.
            let two = try await client.execute(uri: "/callbacks/phone/\(Self.token)", method: .post, headers: [.contentType: "application/json"],
                                               body: ByteBuffer(string: vendor.keyPress(callID, "2")))
            #expect(two.status == .ok)
            #expect(try await service.incident(incident.id)?.status == .triggered)
            let forged = try await client.execute(uri: "/callbacks/phone/not-the-token", method: .post, headers: [.contentType: "application/json"],
                                                  body: ByteBuffer(string: vendor.keyPress(callID, "1")))
            #expect(forged.status.code >= 400)
            #expect(try await service.incident(incident.id)?.status == .triggered)
            let one = try await client.execute(uri: "/callbacks/phone/\(Self.token)", method: .post, headers: [.contentType: "application/json"],
                                               body: ByteBuffer(string: vendor.keyPress(callID, "1")))
            #expect(one.status == .ok)
            #expect(String(buffer: one.body).contains(vendor.replyContains), "\(String(buffer: one.body))")
        }
        let acknowledged = try #require(try await service.incident(incident.id))
        #expect(acknowledged.status == .acknowledged && acknowledged.acknowledgedBy == ["ann"])
        let timeline = try await service.timeline(incident.id)
        #expect(timeline.contains { $0.kind == "acknowledged" && $0.detail == "acknowledged via voice (key 1) by ann" }, "\(timeline.map(\.detail))")
        #expect(timeline.contains { $0.kind == "note" && $0.detail.contains("2") }, "the wrong key is on the timeline: \(timeline.map(\.detail))")

        // Nobody is called again: not ann's repeats, not bob at level 2.
        for _ in 0..<6 {
            time.advance(60)
            try await service.fireDueTimers()
            while try await dispatcher.dispatchDue() > 0 {}
        }
        #expect(try await service.deliveries(incident.id).count == 1)
    }
}
