import Foundation
import HeraldCore
import HeraldPluginHost
import Hummingbird
import NIOCore

/// `GET|POST /callbacks/<integration>/...`: the integration's plugin verifies the request and
/// turns it into actions; Herald performs them and answers what the plugin said to answer.
struct CallbackRoutes: Sendable {
    let context: ServerContext

    @Sendable func handle(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        let name = try ctx.parameters.require("integration")
        guard let integration = context.integrations[name] else {
            throw APIError(.notFound, "no integration '\(FieldReader.printable(name))' takes callbacks here")
        }
        let body = try await BodyReader.collect(request, limit: context.settings.maxBodyBytes)
        let inbound = InboundRequest(
            method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
            headers: request.headers.map { HeaderField($0.name.rawName, $0.value) }, body: body,
            remoteAddress: ctx.remoteAddress?.ipAddress ?? "")
        let result = integration.instance.parseCallback(inbound)
        guard result.authentic else {
            context.logger.warning("callback refused", metadata: ["integration": "\(name)", "reason": "\(result.reason ?? "")",
                                                                  "remote": "\(inbound.remoteAddress)"])
            if let reply = result.reply { return Self.response(reply) }
            throw APIError(.forbidden, "the \(name) integration refused the callback: \(result.reason ?? "not authentic")")
        }
        for action in result.actions {
            try await perform(action, integration: name)
        }
        if let reply = result.reply { return Self.response(reply) }
        return Response(status: .ok)
    }

    /// Acts on the incident; an unknown incident or a refused transition is logged, not an error
    /// for the provider (it would only retry). A store failure is thrown: the provider retries.
    func perform(_ inbound: InboundAction, integration: String) async throws {
        var incidentID = inbound.incidentID
        var actor = inbound.actor
        if incidentID.isEmpty {
            // A callback token is a signed link token the core put on the card's button.
            guard let claims = try? context.signer.verify(inbound.callbackToken, now: context.clock()) else {
                context.logger.warning("callback action with a callback token that does not verify", metadata: ["integration": "\(integration)"])
                return
            }
            incidentID = claims.incidentID
            if actor.isEmpty { actor = claims.member }
        }
        if actor.isEmpty { actor = "integration:\(integration)" }
        let action: IncidentAction = switch inbound.kind {
        case .acknowledge: .acknowledge
        case .unacknowledge: .unacknowledge
        case .snooze: .snooze(minutes: Int(inbound.snoozeMinutes))
        case .close: .close
        case .resolve: .resolve
        case .note: .note(inbound.note)
        }
        let via = inbound.via.isEmpty ? integration : inbound.via
        do {
            _ = try await context.service.act(action, on: incidentID, by: actor, via: via)
            context.logger.info("callback action", metadata: ["integration": "\(integration)", "incident": "\(incidentID)",
                                                             "action": "\(action.name)", "actor": "\(actor)"])
        } catch let error as IncidentError {
            context.logger.warning("callback action not performed", metadata: ["integration": "\(integration)", "incident": "\(incidentID)",
                                                                              "action": "\(action.name)", "reason": "\(error.message)"])
        }
    }

    static func response(_ reply: CallbackReply) -> Response {
        var headers: HTTPFields = [.cacheControl: "no-store"]
        if !reply.contentType.isEmpty { headers[.contentType] = reply.contentType }
        let status = (100...599).contains(Int(reply.status)) ? Int(reply.status) : 200
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
}
