import Foundation
import HeraldCore
import HeraldHTTP
import HeraldPluginHost
import HeraldServer
import HeraldStore
import HeraldTestSupport
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import Synchronization
import Testing

/// A server over an in-memory store with two members (ann and bob), one rule that notifies ann,
/// an admin and an ingest token, and a hand-moved clock.
struct Harness {
    static let adminToken = "admin-token-0123456789"
    static let ingestToken = "ingest-token-0123456789"
    static let secret = "a-link-secret-of-at-least-32-characters!"

    let store: SQLiteStore
    let time = TestClock()
    let config: HeraldConfig
    let service: IncidentService
    let signer: LinkSigner
    var integrations: [String: Integration] = [:]
    var prometheus: PrometheusCollectorRegistry? = PrometheusCollectorRegistry()

    init(tokens: Bool = true, host: String = "127.0.0.1") throws {
        let tokenYAML = tokens ? """
              api_tokens:
                - {token: \(Self.adminToken), role: admin}
                - {token: \(Self.ingestToken), role: ingest}
            """ : ""
        config = try HeraldConfig.parse("""
            plugin_dirs: []
            server:
              listen: \(host):8080
              link_secret: \(Self.secret)
              max_body_bytes: 65536
            \(tokenYAML)
            members:
              - {name: ann, phone: "+8613800000000", email: ann@example.com}
              - {name: bob, phone: "+8613900000000"}
            services:
              - name: default
                rules:
                  - name: everything
                    levels:
                      - members: [ann]
            """, file: "/tmp/herald-server-test.yaml", environment: [:])
        store = try SQLiteStore.inMemory()
        service = IncidentService(store: store, policy: config.policy, targets: [:], clock: time.read)
        signer = LinkSigner(secret: Self.secret, publicURL: "http://127.0.0.1:8080", lifetime: 3600)
    }

    /// Everything a test compares to prove that a request changed nothing: every incident, its
    /// timeline and deliveries, and every timer.
    struct Fingerprint: Equatable, Sendable {
        var incidents: [Incident] = []
        var timelines: [[TimelineEntry]] = []
        var deliveries: [[OutboxEntry]] = []
        var timers: [EscalationTimer] = []
    }

    func fingerprint() async throws -> Fingerprint {
        try await store.read { r in
            var print = Fingerprint()
            print.incidents = try r.incidents(IncidentQuery(limit: 10_000))
            for incident in print.incidents {
                print.timelines.append(try r.timeline(incidentID: incident.id))
                print.deliveries.append(try r.notifications(incidentID: incident.id))
            }
            print.timers = try r.dueTimers(now: .distantFuture, limit: 10_000)
            return print
        }
    }

    var clock: @Sendable () -> Date { time.read }
    func advance(_ seconds: TimeInterval) { time.advance(seconds) }

    var context: ServerContext {
        ServerContext(service: service, integrations: integrations, signer: signer, settings: config.server, prometheus: prometheus, clock: clock)
    }

    func app() -> some ApplicationProtocol {
        buildApplication(context, address: .hostname("127.0.0.1", port: 0))
    }

    /// Runs `body` against the router (no sockets).
    func test<T>(_ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        try await app().test(.router, body)
    }

    /// Opens an incident through the service (not the API) and returns it.
    @discardableResult
    func incident(_ title: String = "disk full on db-1", key: String = "disk-db-1", severity: Severity = .critical,
                  labels: [String: String] = ["env": "prod"]) async throws -> Incident {
        try await service.ingest(AlertEvent(dedupKey: key, title: title, description: "95% used", severity: severity, labels: labels)).incident
    }

    func link(_ incident: Incident, _ action: LinkSigner.Action = .acknowledge, member: String = "ann") -> String {
        "/l/" + signer.token(incidentID: incident.id, action: action, member: member, now: clock())
    }
}

/// Time as the tests move it.
final class TestClock: Sendable {
    // 2100-01-01T00:00:00Z: in the future, as SQLiteStore forgets link nonces by the wall clock.
    private let now = Mutex(Date(timeIntervalSince1970: 4_102_444_800))
    var read: @Sendable () -> Date { { [self] in now.withLock { $0 } } }
    func advance(_ seconds: TimeInterval) { now.withLock { $0 += seconds } }
}

extension TestClientProtocol {
    /// A request with a JSON (or any) body and the admin token unless told otherwise.
    @discardableResult
    func send(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil, body: [UInt8]? = nil,
              contentType: String? = "application/json", token: String? = Harness.adminToken,
              headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        let bytes = body ?? json.map { Array($0.utf8) }
        if bytes != nil, let contentType { headers[.contentType] = contentType }
        return try await execute(uri: uri, method: method, headers: headers, body: bytes.map { ByteBuffer(bytes: $0) })
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var json: JSONValue { (try? JSONValue.parse(text)) ?? .null }
    var error: String { json["error"]?.stringValue ?? "<no error: \(text.prefix(200))>" }
}
