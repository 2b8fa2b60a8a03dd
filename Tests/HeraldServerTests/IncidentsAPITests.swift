import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldServer
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Incidents API, auth and operations")
struct IncidentsAPITests {
    @Test func listFiltersAndPages() async throws {
        let h = try Harness()
        var ids: [String] = []
        for i in 1...5 { ids.append(try await h.incident("incident \(i)", key: "k\(i)").id) }
        _ = try await h.service.act(.acknowledge, on: ids[1], by: "ann", via: "test")
        _ = try await h.service.act(.close, on: ids[2], by: "ann", via: "test")
        try await h.test { client in
            let all = try await client.send(.get, "/api/v1/incidents")
            #expect(all.status == .ok)
            #expect(all.json["incidents"]?.arrayValue?.compactMap { $0["number"]?.numberValue } == [5, 4, 3, 2, 1])
            #expect(all.json["next_before"] == .null)

            let open = try await client.send(.get, "/api/v1/incidents?status=triggered,acknowledged")
            #expect(open.json["incidents"]?.arrayValue?.compactMap { $0["number"]?.numberValue } == [5, 4, 2, 1])

            let page = try await client.send(.get, "/api/v1/incidents?limit=2")
            #expect(page.json["incidents"]?.arrayValue?.compactMap { $0["number"]?.numberValue } == [5, 4])
            #expect(page.json["next_before"] == .number(4))
            let next = try await client.send(.get, "/api/v1/incidents?limit=2&before=4")
            #expect(next.json["incidents"]?.arrayValue?.compactMap { $0["number"]?.numberValue } == [3, 2])

            let first = try #require(all.json["incidents"]?.arrayValue?.last)
            #expect(first["title"] == .string("incident 1"))
            #expect(first["severity"] == .string("critical"))
            #expect(first["status"] == .string("triggered"))
            #expect(first["labels"] == .object(["env": .string("prod")]))
            #expect(first["created_at"] == .string("2100-01-01T00:00:00.000Z"))
            #expect(first["acknowledged_at"] == .null)
        }
    }

    @Test func showHasTimelineAndDeliveries() async throws {
        let h = try Harness()
        let incident = try await h.incident()
        // A delivery row as the dispatcher would leave it.
        try await h.store.write { tx in
            var row = OutboxEntry(idempotencyKey: "\(incident.id):x", incidentID: incident.id, integration: "ops-feishu", event: .fire,
                                   level: 0, createdAt: Date(timeIntervalSince1970: 1_700_000_000))
            row.state = .dead
            row.attempts = 3
            row.lastError = "HTTP 500 from the provider"
            row.notes = "the text was cut to the plugin's limit of 4000 bytes"
            try tx.enqueue(row)
        }
        try await h.test { client in
            let r = try await client.send(.get, "/api/v1/incidents/\(incident.id)")
            #expect(r.status == .ok)
            #expect(r.json["incident"]?["id"] == .string(incident.id))
            let kinds = r.json["timeline"]?.arrayValue?.compactMap { $0["kind"]?.stringValue } ?? []
            #expect(kinds.first == "triggered")
            let delivery = try #require(r.json["deliveries"]?.arrayValue?.first)
            #expect(delivery["state"] == .string("dead"))
            #expect(delivery["attempts"] == .number(3))
            #expect(delivery["last_error"] == .string("HTTP 500 from the provider"))
            #expect(delivery["notes"] == .string("the text was cut to the plugin's limit of 4000 bytes"))
            #expect(delivery["integration"] == .string("ops-feishu"))
        }
    }

    @Test func actionsDriveTheStateMachine() async throws {
        let h = try Harness()
        let incident = try await h.incident()
        let uri = "/api/v1/incidents/\(incident.id)/actions"
        try await h.test { client in
            var r = try await client.send(.post, uri, json: #"{"action": "acknowledge", "actor": "mobile:+8613800000000"}"#)
            #expect(r.status == .ok)
            #expect(r.json["incident"]?["status"] == .string("acknowledged"))
            #expect(r.json["incident"]?["acknowledged_by"] == .array([.string("ann")]))
            r = try await client.send(.post, uri, json: #"{"action": "snooze", "minutes": 30, "actor": "ann"}"#)
            #expect(r.status == .ok)
            #expect(r.json["incident"]?["snoozed_until"] == .string("2100-01-01T00:30:00.000Z"))
            r = try await client.send(.post, uri, json: #"{"action": "unacknowledge", "actor": "ann"}"#)
            #expect(r.json["incident"]?["status"] == .string("triggered"))
            r = try await client.send(.post, uri, json: #"{"action": "resolve", "actor": "bob"}"#)
            #expect(r.json["incident"]?["status"] == .string("resolved"))
            r = try await client.send(.post, uri, json: #"{"action": "close", "actor": "bob"}"#)
            #expect(r.json["incident"]?["status"] == .string("closed"))
            r = try await client.send(.post, uri, json: #"{"action": "close", "actor": "bob"}"#)
            #expect(r.status == .conflict)
            #expect(r.error == "incident #1 is closed already")
            r = try await client.send(.post, uri, json: #"{"action": "reopen", "actor": "bob"}"#)
            #expect(r.json["incident"]?["status"] == .string("triggered"))
        }
        let timeline = try await h.service.timeline(incident.id)
        #expect(timeline.contains { $0.kind == "acknowledged" && $0.actor == "ann" && $0.detail.contains("via api") })
    }

    // MARK: Auth

    struct AuthCase: Sendable, CustomTestStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var json: String?
        var token: String?
        var status: Int
        var testDescription: String { "\(method) \(path) with \(token == nil ? "no token" : token!.prefix(6) + "…") → \(status)" }
    }

    static let event = #"{"event_action": "trigger", "title": "t"}"#
    static let webhook = #"{"version": "4", "alerts": []}"#
    static let act = #"{"action": "acknowledge", "actor": "ann"}"#
    static let authCases: [AuthCase] = {
        var cases: [AuthCase] = []
        let routes: [(HTTPRequest.Method, String, String?, Int, Int)] = [
            // method, path, body, status for admin, status for ingest
            (.post, "/api/v1/events", event, 202, 202),
            (.post, "/api/v1/alertmanager", webhook, 202, 202),
            (.get, "/api/v1/incidents", nil, 200, 403),
            (.get, "/api/v1/incidents/{id}", nil, 200, 403),
            (.post, "/api/v1/incidents/{id}/actions", act, 200, 403),
        ]
        for (method, path, json, admin, ingest) in routes {
            cases.append(AuthCase(method: method, path: path, json: json, token: Harness.adminToken, status: admin))
            cases.append(AuthCase(method: method, path: path, json: json, token: Harness.ingestToken, status: ingest))
            cases.append(AuthCase(method: method, path: path, json: json, token: nil, status: 401))
            cases.append(AuthCase(method: method, path: path, json: json, token: "not-a-token-of-ours-at-all", status: 401))
        }
        return cases
    }()

    @Test(arguments: authCases)
    func authMatrix(_ c: AuthCase) async throws {
        let h = try Harness()
        let incident = try await h.incident()
        let before = try await h.fingerprint()
        try await h.test { client in
            let r = try await client.send(c.method, c.path.replacingOccurrences(of: "{id}", with: incident.id), json: c.json, token: c.token)
            #expect(r.status.code == c.status, "\(r.text)")
            if c.status == 401 {
                #expect(r.headers[.wwwAuthenticate] == #"Bearer realm="herald""#)
                #expect(r.error.hasPrefix("Authorization: "))
            }
            if c.status == 403 { #expect(r.error == "an ingest token may only post to /api/v1/events and /api/v1/alertmanager") }
        }
        if c.status >= 400 { #expect(try await h.fingerprint() == before) }
    }

    @Test func malformedAuthorizationHeaders() async throws {
        let h = try Harness()
        try await h.test { client in
            for value in ["Basic YWRtaW46YWRtaW4=", "Bearer", "\(Harness.adminToken)", "Bearer  "] {
                let r = try await client.execute(uri: "/api/v1/incidents", method: .get, headers: [.authorization: value])
                #expect(r.status == .unauthorized, "\(value)")
            }
            let lower = try await client.execute(uri: "/api/v1/incidents", method: .get, headers: [.authorization: "bearer \(Harness.adminToken)"])
            #expect(lower.status == .ok)
        }
    }

    @Test func withoutTokensTheAPIIsOpenOnlyOnLoopback() async throws {
        let loopback = try Harness(tokens: false, host: "127.0.0.1")
        try await loopback.test { client in
            let r = try await client.send(.get, "/api/v1/incidents", token: nil)
            #expect(r.status == .ok)
        }
        let everywhere = try Harness(tokens: false, host: "0.0.0.0")
        try await everywhere.test { client in
            let r = try await client.send(.post, "/api/v1/events", json: Self.event, token: nil)
            #expect(r.status == .unauthorized)
            #expect(r.error.contains("no API tokens are configured"))
        }
        #expect(try await everywhere.service.incidents(IncidentQuery()).isEmpty)
    }

    // MARK: Operations

    @Test func healthMetricsAndOpenAPI() async throws {
        let h = try Harness()
        h.prometheus?.makeCounter(descriptor: .init(namespace: "herald", metricName: "test", unitName: "total", helpText: "A test counter.")).increment()
        try await h.incident()
        try await h.test { client in
            let health = try await client.send(.get, "/healthz", token: nil)
            #expect(health.status == .ok)
            #expect(health.json["status"] == .string("ok"))
            #expect(health.json["open_incidents"] == .number(1))

            let metrics = try await client.send(.get, "/metrics", token: nil)
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(metrics.text.contains("herald_test_total 1"))

            let spec = try await client.send(.get, "/openapi.yaml", token: nil)
            #expect(spec.status == .ok)
            let file = try String(contentsOfFile: OpenAPITests.documentPath, encoding: .utf8)
            #expect(spec.text.trimmingCharacters(in: .whitespacesAndNewlines) == file.trimmingCharacters(in: .whitespacesAndNewlines),
                    "docs/openapi.yaml changed: run scripts/sync-openapi.sh")
        }
        var off = try Harness()
        off.prometheus = nil
        try await off.test { client in
            let r = try await client.send(.get, "/metrics", token: nil)
            #expect(r.status == .notFound)
        }
    }

    @Test func healthIs503WhenTheStoreFails() async throws {
        let store = FailingStore()
        let h = try Harness()
        let service = IncidentService(store: store, policy: h.config.policy, targets: [:])
        let context = ServerContext(service: service, signer: h.signer, settings: h.config.server)
        try await buildApplication(context).test(.router) { client in
            let r = try await client.send(.get, "/healthz", token: nil)
            #expect(r.status == .serviceUnavailable)
            #expect(r.json["status"] == .string("unavailable"))
            // A store failure behind the API is a 500 with a sentence, not a crash.
            let list = try await client.send(.get, "/api/v1/incidents")
            #expect(list.status == .internalServerError)
            #expect(list.error == "internal error; the server log has the details")
        }
    }
}

/// A store whose every call fails, as a locked or vanished database would.
struct FailingStore: IncidentStore {
    struct Down: Error {}
    func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) throws -> T) async throws -> T { throw Down() }
    func read<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T { throw Down() }
}
