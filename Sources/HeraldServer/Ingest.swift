import Crypto
import Foundation
import HeraldCore
import HeraldPluginHost
import Hummingbird

/// Size limits on what alert sources send (each error message states the limit it hit).
struct IngestLimits: Sendable {
    var maxDedupKeyBytes = 255
    var maxTitleBytes = 1024
    var maxDescriptionBytes = 65_536
    var maxServiceBytes = 128
    var maxLabels = 128
    var maxLabelNameBytes = 256
    var maxLabelValueBytes = 4096
    var maxAlertsPerWebhook = 1000
    init() {}
}

/// `POST /api/v1/events` (Herald's own event API) and `POST /api/v1/alertmanager` (Alertmanager's
/// webhook, payload version 4). Everything is checked before anything is stored, so a 4xx
/// changes nothing; a 202 is sent only once the store has the alert.
struct IngestRoutes: Sendable {
    let context: ServerContext
    var limits: IngestLimits { IngestLimits() }

    struct EventResult: Encodable {
        let incident_id: String
        let incident_number: Int64
        let created: Bool
        let status: String
        let dedup_key: String
    }

    static let eventFields = ["event_action", "dedup_key", "title", "description", "severity", "labels", "service"]

    @Sendable func event(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        let body = try await BodyReader.jsonObject(request, limit: context.settings.maxBodyBytes)
        let event = try Self.parseEvent(body, limits: limits)
        do {
            let result = try await context.service.ingest(event)
            return JSONBody.response(EventResult(incident_id: result.incident.id, incident_number: result.incident.number, created: result.created,
                                                 status: result.incident.status.description, dedup_key: result.incident.dedupKey),
                                     status: .accepted)
        } catch let error as IncidentError {
            throw APIError(error.httpStatus, error.message)
        }
    }

    static func parseEvent(_ body: [String: JSONValue], limits: IngestLimits) throws -> AlertEvent {
        let fields = try FieldReader(body, known: eventFields)
        let actionName = try fields.string("event_action", maxBytes: 32, required: true)!
        guard let action = AlertAction(rawValue: actionName) else {
            throw APIError.badRequest("event_action: must be trigger, acknowledge or resolve")
        }
        let dedupKey = try fields.string("dedup_key", maxBytes: limits.maxDedupKeyBytes, required: action != .trigger, allowEmpty: false)
        let title = try fields.string("title", maxBytes: limits.maxTitleBytes, required: action == .trigger, allowEmpty: false) ?? ""
        let description = try fields.string("description", maxBytes: limits.maxDescriptionBytes) ?? ""
        var severity = Severity.warning
        if let name = try fields.string("severity", maxBytes: 32) {
            guard let value = Severity(name: name) else { throw APIError.badRequest("severity: must be critical, warning or info") }
            severity = value
        }
        let labels = try fields.stringMap("labels", limits: limits)
        let service = try fields.string("service", maxBytes: limits.maxServiceBytes) ?? ""
        return AlertEvent(action: action, dedupKey: dedupKey ?? Self.randomKey(), title: title, description: description,
                          severity: severity, labels: labels, service: service, source: "api")
    }

    /// A trigger without a dedup key opens its own incident.
    static func randomKey() -> String {
        "evt_" + (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    // MARK: Alertmanager

    struct AlertResult: Encodable {
        let fingerprint: String
        let dedup_key: String
        let action: String
        /// created, updated, acknowledged, resolved, or ignored (a resolve for no open incident).
        let result: String
        let incident_id: String?
        let incident_number: Int64?
    }

    struct WebhookResult: Encodable {
        let alerts: [AlertResult]
    }

    static let webhookFields = ["version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels",
                                "commonAnnotations", "externalURL", "alerts"]
    static let alertFields = ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"]

    @Sendable func alertmanager(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        let body = try await BodyReader.jsonObject(request, limit: context.settings.maxBodyBytes)
        var queryService: String?
        for (key, value) in request.uri.queryParameters {
            guard key == "service" else { throw APIError.badRequest("query parameter '\(FieldReader.printable(String(key)))': is not known (known: service)") }
            guard value.utf8.count <= limits.maxServiceBytes else {
                throw APIError.badRequest("service: is \(value.utf8.count) bytes; the limit is \(limits.maxServiceBytes) bytes")
            }
            queryService = String(value)
        }
        let events = try Self.parseWebhook(body, service: queryService ?? "", limits: limits)
        var results: [AlertResult] = []
        for (fingerprint, event) in events {
            do {
                let outcome = try await context.service.ingest(event)
                let what = switch event.action {
                case .trigger: outcome.created ? "created" : "updated"
                case .acknowledge: "acknowledged"
                case .resolve: "resolved"
                }
                results.append(AlertResult(fingerprint: fingerprint, dedup_key: event.dedupKey, action: event.action.rawValue, result: what,
                                           incident_id: outcome.incident.id, incident_number: outcome.incident.number))
            } catch let error as IncidentError where event.action == .resolve {
                // Resolving what is closed already, or was never seen, is normal for Alertmanager.
                context.logger.debug("alertmanager resolve ignored", metadata: ["dedup_key": "\(event.dedupKey)", "reason": "\(error.message)"])
                results.append(AlertResult(fingerprint: fingerprint, dedup_key: event.dedupKey, action: event.action.rawValue, result: "ignored",
                                           incident_id: nil, incident_number: nil))
            }
        }
        return JSONBody.response(WebhookResult(alerts: results), status: .accepted)
    }

    /// The alerts of a webhook payload as events, with each one's fingerprint (or "").
    static func parseWebhook(_ body: [String: JSONValue], service: String, limits: IngestLimits) throws -> [(String, AlertEvent)] {
        let fields = try FieldReader(body, known: webhookFields)
        let version = try fields.string("version", maxBytes: 16, required: true)!
        guard version == "4" else { throw APIError.badRequest("version: must be \"4\" (Alertmanager's webhook payload version; got \"\(FieldReader.printable(version))\")") }
        let receiver = try fields.string("receiver", maxBytes: 1024) ?? ""
        _ = try fields.string("groupKey", maxBytes: 65_536)
        _ = try fields.string("status", maxBytes: 32)
        _ = try fields.string("externalURL", maxBytes: 8192)
        _ = try fields.integer("truncatedAlerts", 0...Int(Int32.max))
        _ = try fields.stringMap("groupLabels", limits: limits)
        _ = try fields.stringMap("commonLabels", limits: limits)
        _ = try fields.stringMap("commonAnnotations", limits: limits)
        guard let value = body["alerts"] else { throw APIError.badRequest("alerts: is required") }
        guard case .array(let alerts) = value else { throw APIError.badRequest("alerts: must be an array (got \(value.kindName))") }
        if alerts.count > limits.maxAlertsPerWebhook {
            throw APIError.badRequest("alerts: has \(alerts.count) alerts; the limit is \(limits.maxAlertsPerWebhook)")
        }
        var events: [(String, AlertEvent)] = []
        for (i, item) in alerts.enumerated() {
            let prefix = "alerts[\(i)]."
            guard case .object(let members) = item else { throw APIError.badRequest("alerts[\(i)]: must be an object (got \(item.kindName))") }
            let alert = try FieldReader(members, prefix: prefix, known: alertFields)
            let status = try alert.string("status", maxBytes: 32, required: true)!
            let action: AlertAction
            switch status {
            case "firing": action = .trigger
            case "resolved": action = .resolve
            default: throw APIError.badRequest("\(prefix)status: must be firing or resolved")
            }
            let labels = try alert.stringMap("labels", limits: limits)
            let annotations = try alert.stringMap("annotations", limits: limits)
            for key in ["startsAt", "endsAt", "generatorURL"] { _ = try alert.string(key, maxBytes: 8192) }
            let fingerprint = try alert.string("fingerprint", maxBytes: limits.maxDedupKeyBytes) ?? ""
            let dedupKey = fingerprint.isEmpty ? labelHash(labels) : fingerprint
            let title = firstNonEmpty(annotations["summary"], labels["alertname"]) ?? "alert \(dedupKey)"
            let description = annotations["description"] ?? ""
            let severity: Severity = switch labels["severity"]?.lowercased() {
            case "critical", "error", "page": .critical
            case "warning": .warning
            default: .info
            }
            let event = AlertEvent(action: action, dedupKey: dedupKey, title: truncate(title, limits.maxTitleBytes),
                                   description: truncate(description, limits.maxDescriptionBytes), severity: severity, labels: labels,
                                   service: firstNonEmpty(labels["service"], service) ?? "", source: receiver.isEmpty ? "alertmanager" : "alertmanager:\(receiver)")
            events.append((fingerprint, event))
        }
        return events
    }

    /// "am_" and a SHA-256 of the sorted labels: the same alert gets the same key every time.
    static func labelHash(_ labels: [String: String]) -> String {
        let text = labels.keys.sorted().map { "\($0)=\(labels[$0]!)" }.joined(separator: "\n")
        return "am_" + SHA256.hash(data: Array(text.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    static func firstNonEmpty(_ values: String?...) -> String? {
        values.first { !($0?.isEmpty ?? true) } ?? nil
    }

    /// At most `maxBytes` of UTF-8, cut on a character boundary, with "…" when cut.
    static func truncate(_ text: String, _ maxBytes: Int) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var result = ""
        var used = 0
        for character in text {
            let size = character.utf8.count
            if used + size > maxBytes - 3 { break }
            result.append(character)
            used += size
        }
        return result + "…"
    }
}

extension IncidentError {
    var httpStatus: HTTPResponse.Status {
        switch kind {
        case .notFound: .notFound
        case .conflict: .conflict
        case .invalid: .badRequest
        }
    }
}
