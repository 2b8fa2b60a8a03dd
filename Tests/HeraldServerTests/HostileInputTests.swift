import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldServer
import Hummingbird
import HummingbirdTesting
import Testing

/// Every endpoint that takes input, fed what it must refuse: the right 4xx, a sentence that
/// names the field, and the store exactly as it was.
@Suite("Hostile input")
struct HostileInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var path: String
        var body: [UInt8]
        var contentType: String? = "application/json"
        var status: Int
        var message: String

        init(_ name: String, _ path: String, _ json: String, _ status: Int, _ message: String, contentType: String? = "application/json") {
            self.init(name, path, bytes: Array(json.utf8), status, message, contentType: contentType)
        }
        init(_ name: String, _ path: String, bytes: [UInt8], _ status: Int, _ message: String, contentType: String? = "application/json") {
            self.name = name
            self.path = path
            self.body = bytes
            self.status = status
            self.message = message
            self.contentType = contentType
        }
        var testDescription: String { name }
    }

    static let events = "/api/v1/events"
    static let am = "/api/v1/alertmanager"
    static let actions = "/api/v1/incidents/{id}/actions"
    static let long = String(repeating: "x", count: 300)

    static let cases: [Case] = [
        // The event API.
        Case("event: title missing", events, #"{"event_action": "trigger", "dedup_key": "k"}"#, 400, "title: is required"),
        Case("event: title empty", events, #"{"event_action": "trigger", "title": ""}"#, 400, "title: must not be empty"),
        Case("event: title a number", events, #"{"event_action": "trigger", "title": 5}"#, 400, "title: must be a string (got a number)"),
        Case("event: title too long", events, #"{"event_action": "trigger", "title": "\#(String(repeating: "t", count: 1025))"}"#, 400,
             "title: is 1025 bytes; the limit is 1024 bytes"),
        Case("event: action missing", events, #"{"title": "t"}"#, 400, "event_action: is required"),
        Case("event: action unknown", events, #"{"event_action": "explode", "title": "t"}"#, 400, "event_action: must be trigger, acknowledge or resolve"),
        Case("event: severity unknown", events, #"{"event_action": "trigger", "title": "t", "severity": "extreme"}"#, 400,
             "severity: must be critical, warning or info"),
        Case("event: severity a bool", events, #"{"event_action": "trigger", "title": "t", "severity": true}"#, 400,
             "severity: must be a string (got a boolean)"),
        Case("event: label not a string", events, #"{"event_action": "trigger", "title": "t", "labels": {"env": 1}}"#, 400,
             "labels.env: must be a string (got a number)"),
        Case("event: labels an array", events, #"{"event_action": "trigger", "title": "t", "labels": ["a"]}"#, 400,
             "labels: must be an object of strings (got an array)"),
        Case("event: huge label value", events, #"{"event_action": "trigger", "title": "t", "labels": {"env": "\#(String(repeating: "v", count: 4097))"}}"#, 400,
             "labels.env: is 4097 bytes; the limit is 4096 bytes"),
        Case("event: huge label name", events, #"{"event_action": "trigger", "title": "t", "labels": {"\#(long)": "v"}}"#, 400,
             "is 300 bytes; the limit is 256 bytes"),
        Case("event: too many labels", events,
             #"{"event_action": "trigger", "title": "t", "labels": {\#((0..<129).map { "\"l\($0)\": \"v\"" }.joined(separator: ","))}}"#, 400,
             "labels: has 129 entries; the limit is 128"),
        Case("event: dedup_key too long", events, #"{"event_action": "trigger", "title": "t", "dedup_key": "\#(long)"}"#, 400,
             "dedup_key: is 300 bytes; the limit is 255 bytes"),
        Case("event: acknowledge without key", events, #"{"event_action": "acknowledge"}"#, 400, "dedup_key: is required"),
        Case("event: unknown field", events, #"{"event_action": "trigger", "title": "t", "priority": "P1"}"#, 400,
             "priority: is not a known field (known: event_action, dedup_key, title, description, severity, labels, service)"),
        Case("event: not an object", events, #"["trigger"]"#, 400, "body: must be a JSON object"),
        Case("event: not JSON", events, #"{"event_action": "#, 400, "body: is not valid JSON"),
        Case("event: invalid UTF-8", events, bytes: Array(#"{"event_action": "trigger", "title": ""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8), 400,
             "body: is not valid UTF-8"),
        Case("event: wrong content type", events, #"{"event_action": "trigger", "title": "t"}"#, 415, "Content-Type: must be application/json",
             contentType: "text/plain"),
        Case("event: no content type", events, #"{"event_action": "trigger", "title": "t"}"#, 415, "Content-Type: must be application/json",
             contentType: nil),
        Case("event: latin-1 charset", events, #"{"event_action": "trigger", "title": "t"}"#, 415, "Content-Type: the charset must be utf-8",
             contentType: "application/json; charset=iso-8859-1"),
        Case("event: oversize", events, #"{"event_action": "trigger", "title": "\#(String(repeating: "t", count: 70_000))"}"#, 413,
             "than the limit of 65536 bytes (server.max_body_bytes)"),

        // The Alertmanager webhook.
        Case("am: version missing", am, #"{"alerts": []}"#, 400, "version: is required"),
        Case("am: version 3", am, #"{"version": "3", "alerts": []}"#, 400, #"version: must be "4""#),
        Case("am: alerts missing", am, #"{"version": "4"}"#, 400, "alerts: is required"),
        Case("am: alerts an object", am, #"{"version": "4", "alerts": {}}"#, 400, "alerts: must be an array (got an object)"),
        Case("am: alert status unknown", am, #"{"version": "4", "alerts": [{"status": "pending"}]}"#, 400,
             "alerts[0].status: must be firing or resolved"),
        Case("am: second alert's label a number", am,
             #"{"version": "4", "alerts": [{"status": "firing", "labels": {"alertname": "A"}}, {"status": "firing", "labels": {"alertname": 7}}]}"#, 400,
             "alerts[1].labels.alertname: must be a string (got a number)"),
        Case("am: unknown top-level field", am, #"{"version": "4", "alerts": [], "extra": 1}"#, 400, "extra: is not a known field"),
        Case("am: unknown alert field", am, #"{"version": "4", "alerts": [{"status": "firing", "value": 3}]}"#, 400,
             "alerts[0].value: is not a known field"),
        Case("am: huge annotation", am,
             #"{"version": "4", "alerts": [{"status": "firing", "annotations": {"runbook": "\#(String(repeating: "r", count: 4097))"}}]}"#, 400,
             "alerts[0].annotations.runbook: is 4097 bytes; the limit is 4096 bytes"),
        Case("am: commonLabels not strings", am, #"{"version": "4", "alerts": [], "commonLabels": {"a": null}}"#, 400,
             "commonLabels.a: must be a string (got null)"),
        Case("am: invalid UTF-8", am, bytes: Array(#"{"version": "4", "receiver": ""#.utf8) + [0xFF] + Array(#"", "alerts": []}"#.utf8), 400,
             "body: is not valid UTF-8"),
        Case("am: wrong content type", am, #"{"version": "4", "alerts": []}"#, 415, "Content-Type: must be application/json",
             contentType: "application/x-www-form-urlencoded"),
        Case("am: oversize", am, String(repeating: " ", count: 70_000) + "{}", 413, "than the limit of 65536 bytes"),
        Case("am: unknown query parameter", am + "?team=x", #"{"version": "4", "alerts": []}"#, 400, "query parameter 'team': is not known"),

        // Acting through the API.
        Case("act: action unknown", actions, #"{"action": "delete", "actor": "ann"}"#, 400,
             "action: must be acknowledge, unacknowledge, snooze, resolve, close or reopen"),
        Case("act: actor missing", actions, #"{"action": "acknowledge"}"#, 400, "actor: is required"),
        Case("act: actor a list", actions, #"{"action": "acknowledge", "actor": ["ann"]}"#, 400, "actor: must be a string (got an array)"),
        Case("act: snooze without minutes", actions, #"{"action": "snooze", "actor": "ann"}"#, 400, "minutes: is required to snooze"),
        Case("act: minutes out of range", actions, #"{"action": "snooze", "actor": "ann", "minutes": 5000}"#, 400,
             "minutes: must be a whole number from 1 to 1440"),
        Case("act: minutes a fraction", actions, #"{"action": "snooze", "actor": "ann", "minutes": 1.5}"#, 400,
             "minutes: must be a whole number from 1 to 1440"),
        Case("act: minutes a string", actions, #"{"action": "snooze", "actor": "ann", "minutes": "10"}"#, 400,
             "minutes: must be a number (got a string)"),
        Case("act: minutes with close", actions, #"{"action": "close", "actor": "ann", "minutes": 10}"#, 400, "minutes: is only for snooze"),
        Case("act: unknown field", actions, #"{"action": "close", "actor": "ann", "why": "because"}"#, 400, "why: is not a known field"),
        Case("act: snooze before acknowledge", actions, #"{"action": "snooze", "actor": "ann", "minutes": 10}"#, 409, "acknowledge it before snoozing"),
        Case("act: unacknowledge by someone else", actions, #"{"action": "unacknowledge", "actor": "bob"}"#, 409, "is not acknowledged by bob"),
        Case("act: reopen an open one", actions, #"{"action": "reopen", "actor": "ann"}"#, 409, "is open already"),
        Case("act: invalid UTF-8", actions, bytes: [0x7B, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D], 400, "body: is not valid UTF-8"),
        Case("act: wrong content type", actions, #"{"action": "close", "actor": "ann"}"#, 415, "Content-Type: must be application/json",
             contentType: "text/json"),
        Case("act: oversize", actions, #"{"action": "close", "actor": "\#(String(repeating: "a", count: 66_000))"}"#, 413, "than the limit of 65536 bytes"),
    ]

    @Test(arguments: cases)
    func refusedWithTheFieldNamedAndNothingChanged(_ c: Case) async throws {
        let h = try Harness()
        let incident = try await h.incident()
        let before = try await h.fingerprint()
        try await h.test { client in
            let r = try await client.send(.post, c.path.replacingOccurrences(of: "{id}", with: incident.id), body: c.body, contentType: c.contentType)
            #expect(r.status.code == c.status, "\(c.name): \(r.text)")
            #expect(r.error.contains(c.message), "\(c.name)")
        }
        #expect(try await h.fingerprint() == before, "\(c.name) changed the store")
    }

    @Test func actingOnAnUnknownIncidentIs404() async throws {
        let h = try Harness()
        try await h.incident()
        let before = try await h.fingerprint()
        try await h.test { client in
            let r = try await client.send(.post, "/api/v1/incidents/inc_nope/actions", json: #"{"action": "acknowledge", "actor": "ann"}"#)
            #expect(r.status == .notFound)
            #expect(r.error == "no incident 'inc_nope'")
            let show = try await client.send(.get, "/api/v1/incidents/inc_nope")
            #expect(show.status == .notFound)
        }
        #expect(try await h.fingerprint() == before)
    }

    @Test(arguments: [
        ("/api/v1/incidents?status=open", "status: must be a comma-separated list of triggered, acknowledged, resolved, closed"),
        ("/api/v1/incidents?limit=0", "limit: must be a whole number from 1 to 500"),
        ("/api/v1/incidents?limit=ten", "limit: must be a whole number from 1 to 500"),
        ("/api/v1/incidents?before=-3", "before: must be an incident number (1 or more)"),
        ("/api/v1/incidents?sort=asc", "query parameter 'sort': is not known (known: status, limit, before)"),
    ])
    func listQueryIsChecked(_ uri: String, _ message: String) async throws {
        let h = try Harness()
        try await h.test { client in
            let r = try await client.send(.get, uri)
            #expect(r.status == .badRequest)
            #expect(r.error == message)
        }
    }
}
