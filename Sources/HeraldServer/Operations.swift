import Foundation
import HeraldCore
import Hummingbird
import NIOCore

/// `GET /healthz`, `GET /metrics`, `GET /openapi.yaml`: unauthenticated, for load balancers,
/// Prometheus and people reading the API.
struct OperationsRoutes: Sendable {
    let context: ServerContext

    struct HealthJSON: Encodable {
        let status: String
        let queue_depth: Int?
        let open_incidents: Int?
        let error: String?
    }

    /// 200 when the store answers; 503 with the reason when it does not.
    @Sendable func health(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        do {
            let (depth, open) = try await context.service.store.read { (try $0.queueDepth(), try $0.openIncidentCount()) }
            return JSONBody.response(HealthJSON(status: "ok", queue_depth: depth, open_incidents: open, error: nil))
        } catch {
            context.logger.error("health check: the store does not answer", metadata: ["error": "\(error)"])
            return JSONBody.response(HealthJSON(status: "unavailable", queue_depth: nil, open_incidents: nil, error: "the store does not answer"),
                                     status: .serviceUnavailable)
        }
    }

    @Sendable func metrics(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        guard let registry = context.prometheus else { throw APIError(.notFound, "metrics are not enabled") }
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }

    @Sendable func openAPI(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
    }
}
