/// Why a transfer did not produce a response.
///
/// `message` is one sentence meant for operators (logs, delivery records). It names the
/// target host but never the path, query string or credentials, which can hold tokens.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    /// The class of failure. An extensible set: switch with a `default` branch.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case egressDenied, protocolNotAllowed, timeout, connectFailed, dnsFailed, tlsFailed
            case sendFailed, receiveFailed, shutdown, cancelled, invalidRequest, other
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The egress policy refused the host, or the address it resolved to.
        public static let egressDenied = Code(.egressDenied)
        /// The URL scheme is not allowed by the policy or not supported by the engine.
        public static let protocolNotAllowed = Code(.protocolNotAllowed)
        /// The request did not complete within its timeout.
        public static let timeout = Code(.timeout)
        /// No connection could be made (refused, unreachable, proxy failure).
        public static let connectFailed = Code(.connectFailed)
        /// The host (or proxy) name could not be resolved.
        public static let dnsFailed = Code(.dnsFailed)
        /// TLS handshake or certificate verification failed, or STARTTLS was required but unavailable.
        public static let tlsFailed = Code(.tlsFailed)
        /// Sending the request failed mid-way.
        public static let sendFailed = Code(.sendFailed)
        /// Receiving the response failed, or the server closed without a reply.
        public static let receiveFailed = Code(.receiveFailed)
        /// The engine was shut down before the transfer completed.
        public static let shutdown = Code(.shutdown)
        /// The calling task was cancelled; the transfer was abandoned.
        public static let cancelled = Code(.cancelled)
        /// The request itself is malformed (bad URL, header injection, missing recipients, ...).
        public static let invalidRequest = Code(.invalidRequest)
        /// Any other libcurl failure; the message carries libcurl's detail.
        public static let other = Code(.other)

        public var description: String { base.rawValue }
    }

    /// The class of failure.
    public let code: Code
    /// One sentence naming the host; never contains the query string or credentials.
    public let message: String

    /// Creates an error. Callers outside the engine use this for tests and mocks.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// True when the failure is likely to go away on its own, so the caller should retry later
    /// (timeouts, connect, DNS, send and receive failures).
    public var isTransient: Bool {
        switch code {
        case .timeout, .connectFailed, .dnsFailed, .sendFailed, .receiveFailed: true
        default: false
        }
    }

    public var description: String { "\(code): \(message)" }
}
