import HeraldCore
import Hummingbird
import NIOCore

/// `Authorization: Bearer <token>` on everything under `/api`:
///
/// - an `admin` token may do everything;
/// - an `ingest` token may only `POST /api/v1/events` and `POST /api/v1/alertmanager`;
/// - no token, or one Herald does not know: 401 with `WWW-Authenticate`; a known token whose
///   role does not allow the request: 403.
///
/// With no `server.api_tokens` at all, `/api` is open only when Herald listens on a loopback
/// address *and* the request comes from loopback; listening anywhere else, it refuses every
/// request (401) until tokens are configured. Behind a reverse proxy on the same host every
/// request comes from loopback, so such a deployment must configure tokens.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = HeraldRequestContext
    let settings: ServerSettings

    static let ingestPaths: Set<String> = ["/api/v1/events", "/api/v1/alertmanager"]
    static let challenge: HTTPFields = [.wwwAuthenticate: #"Bearer realm="herald""#]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if settings.apiTokens.isEmpty {
            guard Self.isLoopback(host: settings.host), context.remoteAddress.map(Self.isLoopback(address:)) ?? true else {
                throw APIError(.unauthorized, "no API tokens are configured (server.api_tokens), so the API accepts only loopback clients of a loopback listener",
                               headers: Self.challenge)
            }
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "Authorization: a bearer token is required", headers: Self.challenge)
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError(.unauthorized, "Authorization: must be 'Bearer <token>'", headers: Self.challenge)
        }
        guard let role = settings.role(ofBearer: parts[1].trimmingCharacters(in: .whitespaces)) else {
            throw APIError(.unauthorized, "Authorization: the token is not valid", headers: Self.challenge)
        }
        switch role {
        case .admin:
            break
        case .ingest:
            guard request.method == .post, Self.ingestPaths.contains(request.uri.path) else {
                throw APIError(.forbidden, "an ingest token may only post to /api/v1/events and /api/v1/alertmanager")
            }
        }
        return try await next(request, context)
    }

    static func isLoopback(host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    static func isLoopback(address: SocketAddress) -> Bool {
        switch address {
        case .unixDomainSocket: return true
        case .v4, .v6: return address.ipAddress.map { isLoopback(host: $0) || $0 == "::ffff:127.0.0.1" } ?? false
        }
    }
}
