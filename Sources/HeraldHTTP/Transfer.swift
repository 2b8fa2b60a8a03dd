/// One HTTP header field, in the order it was sent or received.
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A request the engine performs. Plugins describe these; the host executes them.
public enum TransferRequest: Sendable {
    /// An HTTP(S) request. `method` is sent as given (GET, POST, PUT, PATCH, DELETE, HEAD, ...).
    /// `headers` replace curl's defaults of the same name; a `Content-Type` is only sent when given.
    case http(method: String, url: String, headers: [HTTPHeader], body: [UInt8], timeoutMilliseconds: Int)
    /// An SMTP submission. `url` is `smtp://host[:port][/helo-domain]` or `smtps://...`;
    /// `payload` is the complete RFC 5322 message (headers, blank line, body).
    case smtp(url: String, mailFrom: String, recipients: [String], payload: [UInt8], timeoutMilliseconds: Int)

    /// The target URL.
    public var url: String {
        switch self {
        case .http(_, let url, _, _, _), .smtp(let url, _, _, _, _): url
        }
    }

    /// The size of the HTTP body or SMTP payload.
    var bodyCount: Int {
        switch self {
        case .http(_, _, _, let body, _): body.count
        case .smtp(_, _, _, let payload, _): payload.count
        }
    }

    /// The per-request timeout in milliseconds, covering queueing, connect and transfer.
    public var timeoutMilliseconds: Int {
        switch self {
        case .http(_, _, _, _, let ms), .smtp(_, _, _, _, let ms): ms
        }
    }
}

extension TransferRequest: CustomStringConvertible {
    /// Method (or SMTP) and scheme://host only: paths and query strings can hold tokens.
    public var description: String {
        let target = ParsedURL.redacted(url)
        switch self {
        case .http(let method, _, _, let body, _): return "\(method) \(target) (\(body.count) body bytes)"
        case .smtp(_, _, let recipients, let payload, _):
            return "SMTP \(target) (\(recipients.count) recipients, \(payload.count) bytes)"
        }
    }
}

/// Per-integration settings for a transfer.
public struct TransferOptions: Sendable {
    /// Which hosts and schemes this integration may reach.
    public var egress: EgressPolicy
    /// Proxy URL for this integration (`http://`, `https://`, `socks5://`, `socks5h://`, `socks4://`, `socks4a://`).
    /// `nil` means a direct connection; proxy environment variables are ignored either way, so egress
    /// is exactly what the configuration says.
    public var proxy: String?
    /// Extra CA bundle file (PEM) to trust, e.g. a private CA. libcurl uses it instead of the default
    /// bundle file; the system CA directory (Debian: /etc/ssl/certs) stays trusted. `nil` = system default.
    public var caFile: String?
    /// SMTP AUTH user name; for HTTP, enables basic authentication when set.
    public var username: String?
    /// Password for `username`. Never logged or included in errors.
    public var password: String?
    /// SMTP: libcurl login options choosing the AUTH mechanism ("AUTH=PLAIN", "AUTH=LOGIN");
    /// `nil` = the best mechanism the server offers.
    public var loginOptions: String?
    /// For `smtp://`: require STARTTLS (fail with `.tlsFailed` when the server does not offer it).
    /// When false, STARTTLS is still used if offered. `smtps://` is always TLS.
    public var requireTLSForSMTP: Bool
    /// Response bodies longer than this are cut here, the transfer is stopped, and
    /// `TransferResponse.bodyTruncated` is set.
    public var maxResponseBytes: Int
    /// Pins `host:port:address` like `curl --resolve`. Package-internal: used by tests to make a
    /// public-looking name resolve to loopback.
    package var resolveOverrides: [String] = []

    public init(
        egress: EgressPolicy,
        proxy: String? = nil,
        caFile: String? = nil,
        username: String? = nil,
        password: String? = nil,
        requireTLSForSMTP: Bool = true,
        maxResponseBytes: Int = 1 << 20
    ) {
        self.egress = egress
        self.proxy = proxy
        self.caFile = caFile
        self.username = username
        self.password = password
        self.requireTLSForSMTP = requireTLSForSMTP
        self.maxResponseBytes = maxResponseBytes
    }
}

extension TransferOptions: CustomStringConvertible {
    /// Redacts the password and the proxy URL's credentials.
    public var description: String {
        var parts = ["egress: \(egress)"]
        if let proxy { parts.append("proxy: \(ParsedURL.redacted(proxy))") }
        if let caFile { parts.append("caFile: \(caFile)") }
        if let username { parts.append("username: \(username)") }
        if password != nil { parts.append("password: <redacted>") }
        if let loginOptions { parts.append("loginOptions: \(loginOptions)") }
        parts.append("requireTLSForSMTP: \(requireTLSForSMTP)")
        parts.append("maxResponseBytes: \(maxResponseBytes)")
        return "TransferOptions(\(parts.joined(separator: ", ")))"
    }
}

/// The outcome of a completed exchange. Non-2xx HTTP statuses are responses, not errors.
public struct TransferResponse: Sendable {
    /// HTTP status, or the last SMTP reply code.
    public var status: Int
    /// Header fields of the final response (earlier 1xx / proxy CONNECT responses are dropped).
    /// SMTP: one field per envelope recipient that got an answer to its RCPT TO, in order:
    /// name = the recipient as the request gave it, value = the server's reply line. Refused
    /// recipients do not stop the submission, so a 250 may come with some of them refused.
    public var headers: [HTTPHeader]
    /// HTTP: the (decoded) body, at most `maxResponseBytes`. SMTP: the server's last reply line,
    /// e.g. `250 2.0.0 Ok: queued as 4F2A1` (or libcurl's detail when the server refused).
    public var body: [UInt8]
    /// True when the body was longer than `maxResponseBytes` and was cut.
    public var bodyTruncated: Bool
    /// 1 or 2 for HTTP (3 if libcurl ever negotiates it), 0 for SMTP.
    public var httpVersion: Int
    /// Wall time of the transfer as measured by libcurl, in seconds.
    public var totalSeconds: Double
    /// True when no new connection had to be opened (an idle or multiplexed one was reused).
    public var connectionReused: Bool

    public init(
        status: Int,
        headers: [HTTPHeader] = [],
        body: [UInt8] = [],
        bodyTruncated: Bool = false,
        httpVersion: Int = 1,
        totalSeconds: Double = 0,
        connectionReused: Bool = false
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyTruncated = bodyTruncated
        self.httpVersion = httpVersion
        self.totalSeconds = totalSeconds
        self.connectionReused = connectionReused
    }

    /// The value of the first header named `name` (case-insensitive), if any.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveEquals(name) }?.value
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        lowercased() == other.lowercased()
    }
}
