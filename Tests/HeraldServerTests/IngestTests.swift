import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldServer
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Ingest: the event API and the Alertmanager webhook")
struct IngestTests {
    @Test func eventsTriggerMergeAcknowledgeResolve() async throws {
        let h = try Harness()
        try await h.test { client in
            let first = try await client.send(.post, "/api/v1/events", json: """
                {"event_action": "trigger", "dedup_key": "cpu-web-1", "title": "CPU high on web-1", "description": "load 40",
                 "severity": "warning", "labels": {"env": "prod", "host": "web-1"}, "service": "web"}
                """, token: Harness.ingestToken)
            #expect(first.status == .accepted)
            #expect(first.json["created"] == .bool(true))
            #expect(first.json["incident_number"] == .number(1))
            let id = try #require(first.json["incident_id"]?.stringValue)

            let again = try await client.send(.post, "/api/v1/events", json: """
                {"event_action": "trigger", "dedup_key": "cpu-web-1", "title": "CPU high on web-1", "severity": "critical", "labels": {"dc": "sh"}}
                """)
            #expect(again.status == .accepted)
            #expect(again.json["created"] == .bool(false))
            #expect(again.json["incident_id"]?.stringValue == id)

            let incident = try #require(try await h.service.incident(id))
            #expect(incident.severity == .critical)
            #expect(incident.labels == ["env": "prod", "host": "web-1", "dc": "sh"])
            #expect(incident.service == "web")
            #expect(incident.alertCount == 2)

            let ack = try await client.send(.post, "/api/v1/events", json: #"{"event_action": "acknowledge", "dedup_key": "cpu-web-1"}"#)
            #expect(ack.status == .accepted)
            #expect(ack.json["status"] == .string("acknowledged"))
            let resolve = try await client.send(.post, "/api/v1/events", json: #"{"event_action": "resolve", "dedup_key": "cpu-web-1"}"#)
            #expect(resolve.status == .accepted)
            #expect(resolve.json["status"] == .string("resolved"))

            // Nothing open with that key any more.
            let gone = try await client.send(.post, "/api/v1/events", json: #"{"event_action": "resolve", "dedup_key": "cpu-web-1"}"#)
            #expect(gone.status == .notFound)
            #expect(gone.error == "no open incident has dedup_key 'cpu-web-1'")
        }
    }

    @Test func aTriggerWithoutDedupKeyOpensItsOwnIncident() async throws {
        let h = try Harness()
        try await h.test { client in
            for _ in 0..<2 {
                let r = try await client.send(.post, "/api/v1/events", json: #"{"event_action": "trigger", "title": "ping"}"#)
                #expect(r.status == .accepted)
                #expect(r.json["created"] == .bool(true))
            }
        }
        #expect(try await h.service.incidents(IncidentQuery()).count == 2)
    }

    static let webhook = """
        {"version": "4", "groupKey": "{}:{alertname=\\"DiskFull\\"}", "truncatedAlerts": 0, "status": "firing", "receiver": "herald",
         "groupLabels": {"alertname": "DiskFull"}, "commonLabels": {"alertname": "DiskFull"}, "commonAnnotations": {},
         "externalURL": "http://alertmanager:9093",
         "alerts": [
           {"status": "firing", "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "page", "service": "db"},
            "annotations": {"summary": "Disk 95% full on db-1", "description": "only 2 GiB left"},
            "startsAt": "2024-05-01T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "a1b2c3d4e5f60718"},
           {"status": "firing", "labels": {"alertname": "DiskFull", "instance": "db-2", "severity": "warning"},
            "annotations": {}, "startsAt": "2024-05-01T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": ""},
           {"status": "firing", "labels": {"alertname": "Odd", "severity": "whatever"}, "annotations": {}, "fingerprint": "ffff000011112222"}
         ]}
        """

    @Test func alertmanagerAlertsBecomeIncidents() async throws {
        let h = try Harness()
        try await h.test { client in
            let r = try await client.send(.post, "/api/v1/alertmanager?service=storage", json: Self.webhook, token: Harness.ingestToken)
            #expect(r.status == .accepted, "\(r.text)")
            let results = try #require(r.json["alerts"]?.arrayValue)
            #expect(results.map { $0["result"] } == [.string("created"), .string("created"), .string("created")])
            #expect(results[0]["dedup_key"] == .string("a1b2c3d4e5f60718"))
            let hashed = try #require(results[1]["dedup_key"]?.stringValue)
            #expect(hashed.hasPrefix("am_"))

            let incidents = try await h.service.incidents(IncidentQuery()).sorted { $0.number < $1.number }
            #expect(incidents.map(\.title) == ["Disk 95% full on db-1", "DiskFull", "Odd"])
            #expect(incidents.map(\.severity) == [.critical, .warning, .info])
            #expect(incidents.map(\.service) == ["db", "storage", "storage"])
            #expect(incidents[0].description == "only 2 GiB left")
            #expect(incidents[0].labels["instance"] == "db-1")

            // The same alerts again merge; the hash of the labels is stable.
            let again = try await client.send(.post, "/api/v1/alertmanager?service=storage", json: Self.webhook)
            #expect(again.json["alerts"]?.arrayValue?.map { $0["result"] } == [.string("updated"), .string("updated"), .string("updated")])
            #expect(again.json["alerts"]?.arrayValue?[1]["dedup_key"]?.stringValue == hashed)

            // Resolved: the first one resolves; an unknown one is ignored, not an error.
            let resolved = """
                {"version": "4", "status": "resolved", "receiver": "herald", "alerts": [
                  {"status": "resolved", "labels": {"alertname": "DiskFull", "instance": "db-1"}, "annotations": {}, "fingerprint": "a1b2c3d4e5f60718"},
                  {"status": "resolved", "labels": {"alertname": "Never"}, "annotations": {}, "fingerprint": "0000000000000000"}]}
                """
            let done = try await client.send(.post, "/api/v1/alertmanager", json: resolved)
            #expect(done.status == .accepted)
            #expect(done.json["alerts"]?.arrayValue?.map { $0["result"] } == [.string("resolved"), .string("ignored")])
            #expect(try await h.service.incident(incidents[0].id)?.status == .resolved)
            // And again: closed already, so ignored.
            let twice = try await client.send(.post, "/api/v1/alertmanager", json: resolved)
            #expect(twice.json["alerts"]?.arrayValue?.map { $0["result"] } == [.string("ignored"), .string("ignored")])
        }
    }

    @Test func alertmanagerCutsLongSummariesInsteadOfRefusingTheBatch() async throws {
        let h = try Harness()
        let summary = String(repeating: "é", count: 1000)  // 2000 bytes
        try await h.test { client in
            let r = try await client.send(.post, "/api/v1/alertmanager", json: """
                {"version": "4", "alerts": [{"status": "firing", "labels": {"alertname": "X"}, "annotations": {"summary": "\(summary)"}}]}
                """)
            #expect(r.status == .accepted)
        }
        let incident = try #require(try await h.service.incidents(IncidentQuery()).first)
        #expect(incident.title.utf8.count <= 1024)
        #expect(incident.title.hasSuffix("…"))
    }
}
