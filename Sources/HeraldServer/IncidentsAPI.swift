import Foundation
import HeraldCore
import HeraldPluginHost
import Hummingbird

/// The JSON shape of an incident (snake_case, RFC 3339 times).
struct IncidentJSON: Encodable {
    let id: String
    let number: Int64
    let dedup_key: String
    let service: String
    let title: String
    let description: String
    let severity: String
    let status: String
    let labels: [String: String]
    let alert_count: Int
    let created_at: Date
    let updated_at: Date
    let acknowledged_at: Date?
    let resolved_at: Date?
    let closed_at: Date?
    let snoozed_until: Date?
    let acknowledged_by: [String]
    let rule: String?
    /// 0-based escalation level reached.
    let level: Int

    init(_ i: Incident) {
        id = i.id; number = i.number; dedup_key = i.dedupKey; service = i.service; title = i.title; description = i.description
        severity = i.severity.description; status = i.status.description; labels = i.labels; alert_count = i.alertCount
        created_at = i.createdAt; updated_at = i.updatedAt; acknowledged_at = i.acknowledgedAt; resolved_at = i.resolvedAt
        closed_at = i.closedAt; snoozed_until = i.snoozedUntil; acknowledged_by = i.acknowledgedBy; rule = i.rule; level = i.level
    }

    // Optional dates are written as null rather than left out, so clients see every field.
    func encode(to encoder: any Encoder) throws {
        enum Key: String, CodingKey {
            case id, number, dedup_key, service, title, description, severity, status, labels, alert_count, created_at, updated_at
            case acknowledged_at, resolved_at, closed_at, snoozed_until, acknowledged_by, rule, level
        }
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(id, forKey: .id); try c.encode(number, forKey: .number); try c.encode(dedup_key, forKey: .dedup_key)
        try c.encode(service, forKey: .service); try c.encode(title, forKey: .title); try c.encode(description, forKey: .description)
        try c.encode(severity, forKey: .severity); try c.encode(status, forKey: .status); try c.encode(labels, forKey: .labels)
        try c.encode(alert_count, forKey: .alert_count); try c.encode(created_at, forKey: .created_at); try c.encode(updated_at, forKey: .updated_at)
        try c.encode(acknowledged_at, forKey: .acknowledged_at); try c.encode(resolved_at, forKey: .resolved_at)
        try c.encode(closed_at, forKey: .closed_at); try c.encode(snoozed_until, forKey: .snoozed_until)
        try c.encode(acknowledged_by, forKey: .acknowledged_by); try c.encode(rule, forKey: .rule); try c.encode(level, forKey: .level)
    }
}

struct TimelineJSON: Encodable {
    let at: Date
    let kind: String
    let actor: String
    let detail: String
    init(_ e: TimelineEntry) { at = e.at; kind = e.kind; actor = e.actor; detail = e.detail }
}

struct DeliveryJSON: Encodable {
    let id: Int64?
    let integration: String
    let recipient: String
    let member: String
    let event: String
    let level: Int
    let state: String
    let attempts: Int
    let created_at: Date
    let next_attempt_at: Date
    let delivered_at: Date?
    let last_error: String?
    let provider_id: String?
    let merged_into: Int64?
    let notes: String?
    init(_ n: HeraldCore.OutboxEntry) {
        id = n.id; integration = n.integration; recipient = n.recipient; member = n.member; event = n.event.description; level = n.level
        state = n.state.rawValue; attempts = n.attempts; created_at = n.createdAt; next_attempt_at = n.nextAttemptAt
        delivered_at = n.deliveredAt; last_error = n.lastError; provider_id = n.providerID; merged_into = n.mergedInto; notes = n.notes
    }
}

/// `GET /api/v1/incidents`, `GET /api/v1/incidents/{id}`, `POST /api/v1/incidents/{id}/actions` (admin).
struct IncidentRoutes: Sendable {
    let context: ServerContext

    struct ListJSON: Encodable {
        let incidents: [IncidentJSON]
        /// Pass as `before` for the next page; null on the last page.
        let next_before: Int64?

        func encode(to encoder: any Encoder) throws {
            enum Key: String, CodingKey { case incidents, next_before }
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(incidents, forKey: .incidents)
            try c.encode(next_before, forKey: .next_before)  // null, not left out
        }
    }

    struct ShowJSON: Encodable {
        let incident: IncidentJSON
        let timeline: [TimelineJSON]
        let deliveries: [DeliveryJSON]
    }

    struct ActedJSON: Encodable {
        let incident: IncidentJSON
    }

    static let maxLimit = 500

    @Sendable func list(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        var query = IncidentQuery()
        for (key, value) in request.uri.queryParameters {
            switch key {
            case "status":
                for name in value.split(separator: ",", omittingEmptySubsequences: true) {
                    guard let status = IncidentStatus(name: String(name)) else {
                        throw APIError.badRequest("status: must be a comma-separated list of triggered, acknowledged, resolved, closed")
                    }
                    if !query.statuses.contains(status) { query.statuses.append(status) }
                }
            case "limit":
                guard let n = Int(value), (1...Self.maxLimit).contains(n) else {
                    throw APIError.badRequest("limit: must be a whole number from 1 to \(Self.maxLimit)")
                }
                query.limit = n
            case "before":
                guard let n = Int64(value), n >= 1 else { throw APIError.badRequest("before: must be an incident number (1 or more)") }
                query.before = n
            default:
                throw APIError.badRequest("query parameter '\(FieldReader.printable(String(key)))': is not known (known: status, limit, before)")
            }
        }
        let incidents = try await context.service.incidents(query)
        let next = incidents.count == query.limit ? incidents.last?.number : nil
        return JSONBody.response(ListJSON(incidents: incidents.map(IncidentJSON.init), next_before: next))
    }

    @Sendable func show(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        let id = try ctx.parameters.require("id")
        let found = try await context.service.store.read { reader -> (Incident, [TimelineEntry], [HeraldCore.OutboxEntry])? in
            guard let incident = try reader.incident(id: id) else { return nil }
            return (incident, try reader.timeline(incidentID: id), try reader.notifications(incidentID: id))
        }
        guard let found else { throw APIError(.notFound, "no incident '\(FieldReader.printable(id))'") }
        let (incident, timeline, deliveries) = found
        return JSONBody.response(ShowJSON(incident: IncidentJSON(incident), timeline: timeline.map(TimelineJSON.init),
                                          deliveries: deliveries.map(DeliveryJSON.init)))
    }

    static let actionFields = ["action", "minutes", "actor"]

    @Sendable func act(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        let id = try ctx.parameters.require("id")
        let body = try await BodyReader.jsonObject(request, limit: context.settings.maxBodyBytes)
        let fields = try FieldReader(body, known: Self.actionFields)
        let name = try fields.string("action", maxBytes: 32, required: true)!
        let minutes = try fields.integer("minutes", 1...1440)
        let actor = try fields.string("actor", maxBytes: 128, required: true, allowEmpty: false)!
        let action: IncidentAction
        switch name {
        case "acknowledge": action = .acknowledge
        case "unacknowledge": action = .unacknowledge
        case "snooze":
            guard let minutes else { throw APIError.badRequest("minutes: is required to snooze (1 to 1440)") }
            action = .snooze(minutes: minutes)
        case "resolve": action = .resolve
        case "close": action = .close
        case "reopen": action = .reopen
        default: throw APIError.badRequest("action: must be acknowledge, unacknowledge, snooze, resolve, close or reopen")
        }
        if minutes != nil, name != "snooze" { throw APIError.badRequest("minutes: is only for snooze") }
        do {
            let incident = try await context.service.act(action, on: id, by: actor, via: "api")
            return JSONBody.response(ActedJSON(incident: IncidentJSON(incident)))
        } catch let error as IncidentError {
            throw APIError(error.httpStatus, error.message)
        }
    }
}
