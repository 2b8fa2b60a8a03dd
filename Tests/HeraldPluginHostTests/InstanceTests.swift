import Foundation
import HeraldPluginHost
import HeraldTestSupport
import Testing

@Suite("Plugin instances and the host API")
struct InstanceTests {
    let clock = ManualClock()
    let store = InMemoryKeyValueStore()

    func instance(_ variant: String = "good", defines: [String] = [], name: String = "test", config: JSONValue? = nil) throws -> PluginInstance {
        let plugin = try PluginLoader.load(libraryAt: try Fixtures.library(variant, defines: defines))
        let settings = config ?? .object(["url": .string("https://fixture.example.com/send"), "token": .string("s3cret")])
        return try PluginInstance.create(plugin: plugin, name: name, config: settings, environment: environment(clock: clock, store: store))
    }

    func action(_ i: PluginInstance, _ name: String, _ input: String = "") throws -> JSONValue {
        let step = i.invokeAction(name, input: input, response: nil)
        guard case .done(let output) = step else { throw Failure(description: "action \(name): \(step)") }
        return try JSONValue.parse(output)
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    @Test func configIsValidatedAgainstTheSchemaBeforeCreate() throws {
        let error = #expect(throws: PluginLoadError.self) {
            _ = try instance(config: .object(["token": .string("ab"), "mode": .string("turbo"), "count": .number(9), "colour": .string("red")]))
        }
        #expect(error?.code == .invalidConfig)
        let message = error?.message ?? ""
        #expect(message.hasPrefix("integration 'test' (plugin fixture): "))
        #expect(message.contains("setting 'url' is required"))
        #expect(message.contains("setting 'token' must be at least 4 characters long"))
        #expect(message.contains(#"setting 'mode' must be one of "fast", "safe""#))
        #expect(message.contains("setting 'count' must be at most 5"))
        #expect(message.contains("setting 'colour' is not a known setting (known: count, mode, token, url)"))
    }

    @Test func createFailureCarriesThePluginsSentence() throws {
        let error = #expect(throws: PluginLoadError.self) { _ = try instance("create-fails", defines: ["FIXTURE_CREATE_FAILS"]) }
        #expect(error?.code == .createFailed)
        #expect(error?.message == "integration 'test' (plugin fixture): instance_create failed (7): setting 'url' points at a host the fixture refuses")
    }

    @Test func prepareDescribesTheRequest() throws {
        let i = try instance()
        var message = OutgoingMessage(idempotencyKey: "delivery-1", title: #"CPU > 90% "quoted" <b>&"#, body: "b")
        message.labels = [("host", "db-1")]
        message.links = [MessageLink(kind: .view, label: "View", url: "https://herald.example/i/1")]
        guard case .request(let request) = i.prepare(PreparedMessage(message)) else { Issue.record("no request"); return }
        #expect(request.kind == .http)
        #expect(request.method == "POST")
        #expect(request.url == "https://fixture.example.com/send")
        #expect(request.tag == 1)
        let body = String(decoding: request.body, as: UTF8.self)
        // json_escape, through the libffi closure, escaped quotes and HTML-significant characters.
        #expect(body == #"{"title":"CPU \u003e 90% \"quoted\" \u003cb\u003e\u0026","labels":1,"links":1}"#)
        #expect(try JSONValue.parse(body)["title"]?.stringValue == message.title)
        let mac = HostCrypto.hmacSHA256(key: Array("fixture-key".utf8), message: request.body).map { String(format: "%02x", $0) }.joined()
        #expect(request.headers.contains(HeaderField("X-Signature", mac)))
        #expect(request.headers.contains(HeaderField("X-Idempotency-Key", "delivery-1")))
    }

    @Test func outcomesMapToDeliverySteps() throws {
        let i = try instance()
        let message = PreparedMessage(OutgoingMessage(idempotencyKey: "k", title: "t", body: "b"))
        #expect(i.onResponse(message, PluginResponse(status: 200, body: Array("msg-42".utf8), tag: 1)) == .delivered(providerID: "msg-42"))
        #expect(i.onResponse(message, PluginResponse(status: 429, tag: 1)) == .retry(afterMilliseconds: 1500, reason: "rate limited"))
        #expect(i.onResponse(message, PluginResponse(status: 503, tag: 1)) == .retry(afterMilliseconds: nil, reason: "server error"))
        #expect(i.onResponse(message, PluginResponse(status: 404, tag: 1)) == .failed(reason: "rejected"))
        guard case .request(let next) = i.onResponse(message, PluginResponse(status: 401, tag: 1)) else { Issue.record("no next request"); return }
        #expect(next.method == "GET" && next.tag == 2)
    }

    @Test func pluginBugsBecomePermanentFailuresWithTheCause() throws {
        let i = try instance()
        func step(_ title: String) -> DeliveryStep { i.prepare(PreparedMessage(OutgoingMessage(idempotencyKey: "k", title: title, body: ""))) }
        #expect(step("fail") == .failed(reason: "the title says fail"))
        #expect(step("bogus") == .failed(reason: "plugin bug: prepare returned unknown outcome 42"))
        #expect(step("no-request") == .failed(reason: "plugin bug: prepare returned REQUEST but set no request"))
        #expect(step("header-injection") == .failed(reason: "plugin bug: prepare returned REQUEST but its request was refused: request header 'X-Signature' has a value with CR, LF or NUL"))
    }

    @Test func cryptoAndEncodingThroughTheHostTable() throws {
        let out = try action(try instance(), "crypto")
        #expect(out["hmac_sha1"]?.stringValue == "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9")
        #expect(out["hmac_sha256"]?.stringValue == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
        #expect(out["sha256"]?.stringValue == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(out["random"]?.numberValue == 0)
        #expect(out["base64"]?.stringValue == "aGVsbG8/")
        #expect(out["bad_base64"]?.numberValue == -1)
        #expect(out["decoded"]?.numberValue == 0)
        #expect(out["decoded_text"]?.stringValue == "hello")
        #expect(out["percent"]?.stringValue == "a%20b%26c%3Dd%2F%C3%A9")
        #expect(out["now"]?.numberValue == Double(clock.read()))
    }

    @Test func aesDecryptMatchesFeishusPublishedVector() throws {
        // Feishu: key = SHA-256("test key"); the base64 text is IV || ciphertext of "hello world".
        let key = HostCrypto.sha256(Array("test key".utf8))
        let blob = try #require(HostCrypto.base64Decode(Array("P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=".utf8)))
        let input = String(decoding: HostCrypto.base64Encode(key + blob), as: UTF8.self)
        let out = try action(try instance(), "aes", input)
        #expect(out["status"]?.numberValue == 0)
        #expect(out["plain"]?.stringValue == "hello world")
        // The wrong key fails the padding check instead of returning garbage.
        let wrong = String(decoding: HostCrypto.base64Encode(HostCrypto.sha256(Array("other".utf8)) + blob), as: UTF8.self)
        #expect(try action(try instance(), "aes", wrong)["status"]?.numberValue == -1)
    }

    @Test func keyValueStoreFollowsTheBufferRulesAndIsScopedPerInstance() throws {
        let i = try instance(name: "one")
        let out = try action(i, "kv", "stored-value")
        #expect(out["set"]?.numberValue == 0)
        #expect(out["small"]?.numberValue == -2)   // BUFFER_TOO_SMALL
        #expect(out["need"]?.numberValue == 12)
        #expect(out["get"]?.numberValue == 0)
        #expect(out["value"]?.stringValue == "stored-value")
        #expect(out["del1"]?.numberValue == 0)
        #expect(out["del2"]?.numberValue == -3)    // NOT_FOUND
        #expect(out["missing"]?.numberValue == -3)
        #expect(out["ttl"]?.numberValue == 0)
        #expect(try action(i, "kv-read", "short")["value"]?.stringValue == "lived")
        // Another instance of the same plugin sees nothing of "one".
        let other = try instance(name: "two")
        #expect(try action(other, "kv-read", "short")["status"]?.numberValue == -3)
        // TTL: 1000 ms.
        clock.advance(1001)
        #expect(try action(i, "kv-read", "short")["status"]?.numberValue == -3)
    }

    @Test func configSettingsAreReadableByPath() throws {
        let i = try instance(config: .object(["url": .string("https://fixture.example.com/x"), "token": .string("s3cret"), "count": .number(3)]))
        #expect(try action(i, "config", "url")["value"]?.stringValue == "https://fixture.example.com/x")
        #expect(try action(i, "config", "count")["value"]?.stringValue == "3")
        #expect(try action(i, "config", "")["value"]?.stringValue == #"{"count":3,"token":"s3cret","url":"https://fixture.example.com/x"}"#)
        #expect(try action(i, "config", "missing")["status"]?.numberValue == -3)
        #expect(try action(i, "config", "url.deeper")["status"]?.numberValue == -3)
        #expect(try action(i, "config-keys", "")["keys"]?.stringValue == "count,token,url,")
        #expect(try action(i, "config-keys", "url")["status"]?.numberValue == -1)
        #expect(try action(i, "config-keys", "nothing")["status"]?.numberValue == -3)
    }

    @Test func hostFunctionsWorkFromAPluginThread() throws {
        let i = try instance(name: "threads")
        #expect(try action(i, "thread")["kv_set"]?.numberValue == 0)
        #expect(try action(i, "kv-read", "thread")["value"]?.stringValue == "was here")
    }

    @Test func anExchangeKeptPastItsHookIsRefused() throws {
        let i = try instance()
        #expect(try action(i, "stale-exchange")["kept"]?.boolValue == true)
        #expect(try action(i, "stale-exchange")["stale"]?.numberValue == -4)  // HERALD_ERR_STATE
    }

    @Test func actionsCanMakeRequests() throws {
        let i = try instance()
        guard case .request(let request) = i.invokeAction("fetch", input: "{}", response: nil) else { Issue.record("no request"); return }
        #expect(request.tag == 9)
        let done = i.invokeAction("fetch", input: "{}", response: PluginResponse(status: 200, tag: request.tag))
        #expect(done == .done(output: #"{"status":200,"tag":9}"#))
        #expect(i.invokeAction("nope", input: "", response: nil) == .failed(reason: "unknown action"))
    }

    @Test func callbacksAreVerifiedAndTurnedIntoActions() throws {
        let i = try instance()
        let forged = i.parseCallback(InboundRequest(method: "POST", path: "/cb", headers: [HeaderField("X-Token", "guess")], body: Array("ack:inc-1".utf8)))
        #expect(!forged.authentic)
        #expect(forged.actions.isEmpty)
        #expect(forged.reason == "X-Token does not match")

        let real = i.parseCallback(InboundRequest(method: "POST", path: "/cb", headers: [HeaderField("X-Token", "s3cret")], body: Array("ack:inc-1".utf8)))
        #expect(real.authentic)
        #expect(real.actions == [InboundAction(kind: .acknowledge, incidentID: "inc-1", callbackToken: "", actor: "mobile:+8613800000000",
                                               via: "voice (key 1)", snoozeMinutes: 0, note: "")])
        #expect(real.reply == CallbackReply(status: 200, contentType: "application/json", body: Array(#"{"result":0}"#.utf8)))
    }

    @Test func callsIntoOneInstanceAreSerialised() async throws {
        let serial = try instance()
        _ = try action(serial, "max-concurrency")
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<6 {
                group.addTask { _ = serial.prepare(PreparedMessage(OutgoingMessage(idempotencyKey: "\(n)", title: "slow", body: ""))) }
            }
        }
        #expect(try action(serial, "max-concurrency")["max"]?.numberValue == 1)
    }

    @Test func pluginsThatAllowItAreCalledConcurrently() async throws {
        let concurrent = try instance("concurrent", defines: ["FIXTURE_CONCURRENT", "FIXTURE_ID=\"fixture\""])
        _ = try action(concurrent, "max-concurrency")
        // Threads, not tasks: the cooperative pool may have only two threads on a small machine.
        let threads = (0..<4).map { n in
            Thread { _ = concurrent.prepare(PreparedMessage(OutgoingMessage(idempotencyKey: "\(n)", title: "slow", body: ""))) }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { try await Task.sleep(for: .milliseconds(5)) }
        #expect((try action(concurrent, "max-concurrency")["max"]?.numberValue ?? 0) > 1)
    }

    @Test func destroyedInstancesRefuseWork() throws {
        let i = try instance()
        i.destroy()
        i.destroy()  // idempotent
        #expect(i.prepare(PreparedMessage(OutgoingMessage(idempotencyKey: "k", title: "t", body: ""))) == .failed(reason: "the integration was shut down"))
    }
}
