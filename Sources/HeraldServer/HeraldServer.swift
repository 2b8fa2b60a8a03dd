import Foundation
import HeraldCore
import Hummingbird
import Logging
import NIOCore
import Prometheus

/// What the HTTP face needs from a running Herald. The serve command builds one and calls
/// `buildApplication`; tests call `buildRouter` or `buildApplication` with their own store.
public struct ServerContext: Sendable {
    public var service: IncidentService
    /// Integrations by name, for `/callbacks/<name>/...`.
    public var integrations: [String: Integration]
    /// Verifies `/l/<token>` links (and plugins' callback tokens).
    public var signer: LinkSigner
    public var settings: ServerSettings
    /// Served at `/metrics`; nil: `/metrics` answers 404.
    public var prometheus: PrometheusCollectorRegistry?
    public var clock: @Sendable () -> Date
    public var logger: Logger

    public init(service: IncidentService, integrations: [String: Integration] = [:], signer: LinkSigner, settings: ServerSettings,
                prometheus: PrometheusCollectorRegistry? = nil, clock: @escaping @Sendable () -> Date = { Date() },
                logger: Logger = Logger(label: "herald.server")) {
        self.service = service
        self.integrations = integrations
        self.signer = signer
        self.settings = settings
        self.prometheus = prometheus
        self.clock = clock
        self.logger = logger
    }
}

/// The request context of every Herald route: Hummingbird's core storage plus the peer's
/// address (plugins see it in callbacks; the open-API rule checks it).
public struct HeraldRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}

/// Every route of the HTTP face. `docs/openapi.yaml` describes exactly these (a test checks).
public func buildRouter(_ context: ServerContext) -> Router<HeraldRequestContext> {
    let router = Router(context: HeraldRequestContext.self)
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorLoggingMiddleware(logger: context.logger))

    let ops = OperationsRoutes(context: context)
    router.get("healthz", use: ops.health)
    router.get("metrics", use: ops.metrics)
    router.get("openapi.yaml", use: ops.openAPI)

    let api = router.group("api/v1").add(middleware: BearerAuthMiddleware(settings: context.settings))
    let ingest = IngestRoutes(context: context)
    api.post("events", use: ingest.event)
    api.post("alertmanager", use: ingest.alertmanager)
    let incidents = IncidentRoutes(context: context)
    api.get("incidents", use: incidents.list)
    api.get("incidents/{id}", use: incidents.show)
    api.post("incidents/{id}/actions", use: incidents.act)

    let callbacks = CallbackRoutes(context: context)
    for path in ["callbacks/{integration}", "callbacks/{integration}/**"] {
        router.get(RouterPath(path), use: callbacks.handle)
        router.post(RouterPath(path), use: callbacks.handle)
    }

    let links = LinkRoutes(context: context)
    router.get("l/{token}", use: links.page)
    router.post("l/{token}", use: links.perform)
    return router
}

/// The HTTP server as a swift-service-lifecycle service: add it to the serve command's
/// `ServiceGroup` (or call `runService()`). Listens on `settings.host:settings.port` unless
/// `address` says otherwise (tests pass port 0).
public func buildApplication(_ context: ServerContext, address: BindAddress? = nil,
                             onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in })
    -> Application<RouterResponder<HeraldRequestContext>> {
    if context.settings.apiTokens.isEmpty {
        if BearerAuthMiddleware.isLoopback(host: context.settings.host) {
            context.logger.warning("server.api_tokens is empty: /api is open to loopback clients only (anyone on this host, including a local reverse proxy)")
        } else {
            context.logger.warning("server.api_tokens is empty and Herald listens on \(context.settings.host): /api refuses every request until tokens are configured")
        }
    }
    return Application(
        router: buildRouter(context),
        configuration: ApplicationConfiguration(address: address ?? .hostname(context.settings.host, port: context.settings.port),
                                                serverName: "herald"),
        onServerRunning: onServerRunning,
        logger: context.logger)
}

/// Logs unexpected errors (a store failure, a bug) before Hummingbird turns them into a 500.
struct ErrorLoggingMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            logger.error("request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(error)"])
            throw APIError(.internalServerError, "internal error; the server log has the details")
        }
    }
}
