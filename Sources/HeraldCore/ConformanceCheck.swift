import Foundation
import HeraldHTTP
import HeraldPluginHost

/// `herald plugins check`: what any plugin author can run against a `.so` before shipping it.
/// Loads and negotiates, checks the descriptor, runs `prepare` on sample messages (hostile ones
/// included) and checks each request is well-formed and inside the declared egress hosts, then
/// feeds `on_response` success, rate-limit, server-error and garbage answers.
public struct ConformanceCheck {
    public struct Finding: Sendable {
        public var passed: Bool
        public var text: String
    }

    public private(set) var findings: [Finding] = []
    public var failures: Int { findings.filter { !$0.passed }.count }

    /// Called before each step, so a crash handler can say where the plugin died.
    public var onPhase: (String) -> Void = { _ in }

    public init() {}

    private mutating func pass(_ text: String) { findings.append(Finding(passed: true, text: text)) }
    private mutating func fail(_ text: String) { findings.append(Finding(passed: false, text: text)) }
    private mutating func check(_ ok: Bool, _ text: String) { ok ? pass(text) : fail(text) }

    public mutating func run(library path: String, config explicitConfig: JSONValue?) {
        onPhase("loading")
        let manifestPath = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("manifest.json").path
        var manifest: PluginManifest?
        if FileManager.default.fileExists(atPath: manifestPath) {
            do {
                manifest = try PluginManifest.read(at: manifestPath)
                pass("manifest \(manifestPath) is valid")
            } catch {
                fail(error.message)
            }
        } else {
            fail("no manifest.json next to the plugin: Herald discovers plugins by their manifest")
        }
        let plugin: LoadedPlugin
        do {
            plugin = try PluginLoader.load(libraryAt: path, manifest: manifest)
        } catch {
            fail(error.message)
            return
        }
        let d = plugin.descriptor
        pass("loads, negotiates ABI 1.\(d.abiMinor) and has a valid descriptor: \(d.id) \(d.version) (\(d.channelKind), \(d.textFormat))")
        if manifest != nil { pass("manifest agrees with the descriptor") }
        check(!d.egressHosts.isEmpty, d.egressHosts.isEmpty
            ? "declares no egress hosts: every integration would need the operator to allow hosts by hand"
            : "declares egress hosts: \(d.egressHosts.joined(separator: ", "))")

        let config = explicitConfig ?? Self.sampleConfig(for: d.configSchema.root)
        let violations = d.configSchema.validate(config)
        guard violations.isEmpty else {
            fail("the sample config \(config.jsonText) does not match the plugin's schema (\(violations.map(\.description).joined(separator: "; "))); pass one with --config, or add \"examples\" to the schema")
            return
        }
        let entry = HeraldConfig.Integration(name: "conformance", plugin: d.id, settings: config, environmentPaths: [], allowHosts: [],
                                             allowLoopback: false, proxy: nil, caFile: nil, locations: [:], index: 0)
        let policy = Integration.egressPolicy(for: entry, plugin: d)
        onPhase("instance_create")
        let instance: PluginInstance
        do {
            instance = try PluginInstance.create(plugin: plugin, name: "conformance", config: config, environment: PluginHostEnvironment())
        } catch {
            fail(error.message)
            return
        }
        defer { instance.destroy() }
        pass("instance_create accepts \(config.jsonText == "{}" ? "an empty config" : "a sample config")")

        // prepare on sample messages
        var firstRequest: (PreparedMessage, PluginRequest)?
        for (label, message) in Self.sampleMessages(sizeLimit: d.sizeLimit, unit: d.sizeUnit) {
            onPhase("prepare (\(label))")
            let prepared = PreparedMessage(message)
            switch instance.prepare(prepared) {
            case .request(let request):
                if let problem = Self.problem(with: request, policy: policy) {
                    fail("prepare (\(label)): \(problem)")
                } else {
                    pass("prepare (\(label)): \(request.kind == .http ? request.method : "SMTP") \(Deliverer.redacted(request.url)), \(request.body.count) bytes")
                    if firstRequest == nil { firstRequest = (prepared, request) }
                }
            case .failed(let reason): fail("prepare (\(label)) failed: \(reason)")
            case .delivered, .retry: fail("prepare (\(label)) must return REQUEST or FAILED")
            }
        }
        guard let (message, request) = firstRequest else { return }

        // on_response: classification
        let phase = onPhase  // not self: the checks below mutate self while calling this
        func respond(_ status: Int32, _ headers: [HeaderField] = [], _ body: String) -> DeliveryStep {
            phase("on_response (\(status))")
            return instance.onResponse(message, PluginResponse(status: status, headers: headers, body: Array(body.utf8), tag: request.tag))
        }
        if request.kind == .smtp {
            checkSMTPAnswers(respond)
        } else {
            checkHTTPAnswers(respond)
        }
        var garbage = [UInt8](repeating: 0, count: 300)
        for i in garbage.indices { garbage[i] = UInt8((i * 151 + 17) % 256) }
        for (label, status, body) in [("status 999", Int32(999), garbage), ("status 0", Int32(0), []), ("3xx", Int32(302), garbage)] {
            onPhase("on_response (\(label))")
            switch instance.onResponse(message, PluginResponse(status: status, body: body, tag: request.tag)) {
            case .delivered: fail("on_response (garbage, \(label)) reports delivered")
            default: pass("on_response (garbage, \(label)) is not reported as delivered")
            }
        }
        onPhase("on_response (200 with garbage)")
        _ = instance.onResponse(message, PluginResponse(status: 200, body: garbage, tag: request.tag, bodyTruncated: true))
        pass("on_response survives a 200 with a truncated binary body")

        if d.hasParseCallback {
            onPhase("parse_callback")
            let forged = instance.parseCallback(InboundRequest(method: "POST", path: "/", headers: [HeaderField("Content-Type", "application/json")],
                                                               body: Array(#"{"action":"acknowledge","incident_id":"forged"}"#.utf8)))
            check(!forged.authentic || forged.actions.isEmpty, forged.authentic && !forged.actions.isEmpty
                ? "parse_callback accepted an unsigned, forged callback and returned actions"
                : "parse_callback refuses an unsigned, forged callback")
        }
    }

    typealias Respond = (_ status: Int32, _ headers: [HeaderField], _ body: String) -> DeliveryStep

    private mutating func checkHTTPAnswers(_ respond: Respond) {
        let successes: [(Int32, String)] = [(200, ""), (200, "ok"), (200, #"{"ok":true}"#), (200, #"{"code":0,"msg":"success"}"#),
                                            (200, #"{"errcode":0,"errmsg":"ok"}"#), (200, #"{"StatusCode":0}"#), (202, ""), (204, ""),
                                            // Tencent Cloud API 3.0 (SMS SendSms, VMS SendTtsVoice); the number is the schema's example
                                            (200, #"{"Response":{"SendStatusSet":[{"SerialNo":"5000:0","PhoneNumber":"+8613800000000","Fee":1,"Code":"Ok","Message":"send success","IsoCode":"CN"}],"RequestId":"0"}}"#),
                                            (200, #"{"Response":{"SendStatus":{"CallId":"0","SessionContext":""},"RequestId":"0"}}"#),
                                            (200, #"{"Code":"OK","Message":"OK","RequestId":"0"}"#)]
        let accepted = successes.filter { status, body in
            switch respond(status, [], body) {
            case .delivered, .request: true
            default: false
            }
        }
        check(!accepted.isEmpty, accepted.isEmpty ? "on_response never reports success for a 2xx answer"
            : "on_response reports success for \(accepted.map { "\($0.0) \($0.1.isEmpty ? "(empty)" : $0.1)" }.first!)")
        switch respond(429, [HeaderField("Retry-After", "30")], #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 30","parameters":{"retry_after":30}}"#) {
        case .retry(let after, _): pass("on_response (429) asks to retry\(after.map { " after \($0) ms" } ?? ", without using the Retry-After hint")")
        case let other: fail("on_response (429) must retry, got \(other)")
        }
        for status: Int32 in [500, 502, 503] {
            switch respond(status, [], "<html>Service Unavailable</html>") {
            case .retry: pass("on_response (\(status)) asks to retry")
            case let other: fail("on_response (\(status)) must retry, got \(other)")
            }
        }
        for (status, body) in [(Int32(401), #"{"error":"invalid token"}"#), (403, "forbidden")] {
            switch respond(status, [], body) {
            case .delivered: fail("on_response (\(status)) reports an authentication failure as delivered")
            default: pass("on_response (\(status)) is not reported as delivered")
            }
        }
    }

    /// SMTP answers: the status is the verdict's reply code and the body its reply line; the
    /// headers pair each envelope recipient with its RCPT TO reply.
    private mutating func checkSMTPAnswers(_ respond: Respond) {
        switch respond(250, [HeaderField("<a@conformance.invalid>", "250 2.1.5 Ok")], "250 2.0.0 Ok: queued as 4F2A1") {
        case .delivered, .request: pass("on_response reports success for 250 (queued)")
        case let other: fail("on_response must report success for 250 (queued), got \(other)")
        }
        for (status, line) in [(Int32(421), "421 4.3.2 Service not available"), (451, "451 4.3.0 Try again later"), (452, "452 4.3.1 Insufficient system storage")] {
            switch respond(status, [], line) {
            case .retry: pass("on_response (\(status)) asks to retry")
            case let other: fail("on_response (\(status)) must retry, got \(other)")
            }
        }
        for (status, line) in [(Int32(535), "535 5.7.8 Authentication credentials invalid"), (550, "550 5.1.1 No such user"), (554, "554 5.7.1 Rejected")] {
            switch respond(status, [], line) {
            case .failed: pass("on_response (\(status)) fails permanently")
            case let other: fail("on_response (\(status)) must fail permanently, got \(other)")
            }
        }
    }

    /// Problems with a request, or nil when it is well-formed and allowed.
    static func problem(with request: PluginRequest, policy: EgressPolicy) -> String? {
        guard let components = URLComponents(string: request.url), let scheme = components.scheme?.lowercased(), components.host != nil else {
            return "the URL does not parse"
        }
        switch request.kind {
        case .http:
            guard ["http", "https"].contains(scheme) else { return "an HTTP request to a \(scheme):// URL" }
            if !request.body.isEmpty && !request.headers.contains(where: { $0.name.lowercased() == "content-type" }) {
                return "a body without a Content-Type header"
            }
        case .smtp:
            guard ["smtp", "smtps"].contains(scheme) else { return "an SMTP request to a \(scheme):// URL" }
        }
        do { try policy.check(url: request.url) } catch { return "\(error.message) (declare the host in egress_hosts)" }
        return nil
    }

    /// A config that satisfies the schema, built from examples, defaults, enums and bounds.
    public static func sampleConfig(for schema: JSONValue) -> JSONValue {
        func sample(_ s: JSONValue, _ name: String) -> JSONValue {
            if let example = s["examples"]?.arrayValue?.first { return example }
            if let value = s["default"] { return value }
            if let first = s["enum"]?.arrayValue?.first { return first }
            if let constant = s["const"] { return constant }
            switch s["type"]?.stringValue ?? "string" {
            case "integer", "number": return .number(s["minimum"]?.numberValue ?? 1)
            case "boolean": return .bool(false)
            case "array": return .array([])
            case "object":
                var members: [String: JSONValue] = [:]
                for required in s["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                    members[required] = sample(s["properties"]?[required] ?? .object([:]), required)
                }
                return .object(members)
            default:
                if s["format"]?.stringValue == "uri" || name.lowercased().contains("url") { return .string("https://conformance.invalid/hook") }
                let length = Int(s["minLength"]?.numberValue ?? 8)
                return .string(String(repeating: "x", count: max(length, 8)))
            }
        }
        return sample(schema, "")
    }

    /// Sample messages; the long one is exactly as long as the plugin's declared limit (the core
    /// truncates to it, so a plugin must accept a body of that size), or 26 KB without a limit.
    public static func sampleMessages(sizeLimit: Int?, unit: SizeUnit) -> [(String, OutgoingMessage)] {
        var plain = OutgoingMessage(idempotencyKey: "conformance-1", title: "Disk almost full on db-1", body: "92% used on /var")
        plain.incidentID = "inc-1"
        plain.incidentNumber = 1
        plain.labels = [("host", "db-1"), ("service", "postgres")]
        plain.links = [MessageLink(kind: .view, label: "View", url: "https://herald.invalid/i/inc-1"),
                       MessageLink(kind: .acknowledge, label: "Acknowledge", url: "https://herald.invalid/a/ack", callbackToken: "tok-ack")]
        plain.startedAtMs = 1_700_000_000_000
        var hostile = plain
        hostile.idempotencyKey = "conformance-2"
        hostile.title = #"<script>alert("x")</script> & *bold* _it_ `code` \ "q" 'a' 100% 🚨 日本語"#
        hostile.body = "line1\nline2\r\n\t\u{1}\u{7f} ]]> {{mustache}} %s %n"
        hostile.labels = [("a\"b", "c\\d"), ("emoji", "🔥")]
        hostile.mentions = [Mention(displayName: "Ann", id: "ann@example.com", idKind: "email")]
        var long = plain
        long.idempotencyKey = "conformance-3"
        let filler = String(repeating: "long body é ", count: 2400)
        if let limit = sizeLimit {
            long.body = unit == .characters ? String(filler.prefix(limit)) : Self.prefix(of: filler, bytes: limit)
        } else {
            long.body = filler
        }
        var resolved = plain
        resolved.idempotencyKey = "conformance-4"
        resolved.event = .resolved
        resolved.status = .resolved
        resolved.closedAtMs = 1_700_000_600_000
        var empty = OutgoingMessage(idempotencyKey: "conformance-5", title: "t", body: "")
        empty.event = .test
        return [("plain", plain), ("hostile characters", hostile), ("long body at the size limit", long), ("resolved", resolved), ("minimal", empty)]
    }

    /// The longest prefix of `text` within `bytes` UTF-8 bytes, never splitting a character.
    static func prefix(of text: String, bytes: Int) -> String {
        var used = 0
        return String(text.prefix { character in
            used += character.utf8.count
            return used <= bytes
        })
    }
}
