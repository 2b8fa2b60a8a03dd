internal import CCurlShim
import Glibc

/// Everything one transfer needs while libcurl works on it: the validated request, the C
/// buffers handed to libcurl, and the response being collected.
///
/// Ownership: the context owns every C allocation it hands to libcurl (header and recipient
/// lists, the body buffer, the error buffer) and frees them in `deinit`. While the transfer is
/// in the multi handle, the engine loop's `active` table holds a strong reference, so the
/// unretained `self` pointer given to curl callbacks stays valid; the handle is removed from
/// the multi and reset before that reference is dropped.
///
/// Concurrency: immutable after `init` except (a) `phase` and `continuation`, which are read and
/// written only while holding the engine's queue lock, and (b) the response fields and `handle`,
/// which only the engine thread touches, after it took the context out of the queue under that lock.
final class TransferContext: @unchecked Sendable {
    enum Kind { case http(method: String), smtp }
    /// How the HTTP method is told to libcurl (decided once, off the engine thread).
    enum MethodSetup { case post, get, nobody, custom(String) }
    enum Phase { case new, queued, running, done, cancelledEarly }

    let kind: Kind
    let url: String
    let target: ParsedURL
    let options: TransferOptions
    let timeoutMilliseconds: Int
    /// Whether the address-level loopback check applies (see `EgressPolicy.allowLoopback`).
    let checkAddresses: Bool

    private(set) var headerList: UnsafeMutablePointer<curl_slist>?
    private(set) var recipientList: UnsafeMutablePointer<curl_slist>?
    private(set) var resolveList: UnsafeMutablePointer<curl_slist>?
    /// The HTTP body or SMTP payload; at least one byte so libcurl never sees a NULL POSTFIELDS.
    let payload: UnsafeMutableRawBufferPointer
    let payloadCount: Int
    let errorBuffer: UnsafeMutablePointer<CChar>
    let mailFrom: String?
    /// HTTP: whether the payload is sent, and how the method is set.
    let sendsBody: Bool
    let httpMethodSetup: MethodSetup
    /// Secrets and URL parts scrubbed from any libcurl text before it reaches an error message.
    let secrets: [String]

    // Guarded by the engine queue lock.
    var phase: Phase = .new
    var continuation: EngineShared.Continuation?

    // Engine thread only while the transfer runs; after the engine resumes the continuation
    // (which orders these writes before the caller's reads) only the caller reads them.
    var handle: UnsafeMutableRawPointer?
    /// HTTP: the raw header lines of the latest response, each ending in LF, status line excluded.
    /// Kept as bytes on the engine thread and parsed by the caller (`parsedHeaders()`).
    var rawHeaders: [UInt8] = []
    var responseBody: [UInt8] = []
    /// What libcurl reported when the transfer ended (see `recordResult`).
    var resultCode = CURLE_OK
    var resultStatus = 0
    var resultHTTPVersion = 0
    var resultConnects = 1
    var resultMicroseconds: curl_off_t = 0
    var bodyTruncated = false
    var readOffset = 0
    /// SMTP: the last final reply line seen for each reply code. After a refusal libcurl still
    /// sends QUIT, so the very last line is often "221 bye", not the verdict.
    var replyLines: [Int: String] = [:]
    /// SMTP: the envelope recipients, and the reply each got to its RCPT TO (nil = not asked).
    let recipients: [String]
    var recipientReplies: [String?] = []
    /// Index of the recipient whose RCPT TO was sent and whose reply is still to come.
    var awaitingRecipient: Int?
    var recipientsAsked = 0
    var deniedAddress: String?

    init(request: TransferRequest, options: TransferOptions) throws(EngineError) {
        // The engine speaks only these, whatever the policy allows.
        if let scheme = ParsedURL.scheme(of: request.url), !Self.engineSchemes.contains(scheme) {
            throw EngineError(code: .protocolNotAllowed, message: "scheme '\(scheme)' is not supported by the HTTP engine (supported: http, https, smtp, smtps).")
        }
        let target = try options.egress.target(of: request.url)
        self.target = target
        self.url = request.url
        self.options = options
        let host = target.host

        switch request {
        case .http(let method, _, _, _, _):
            guard target.scheme == "http" || target.scheme == "https" else {
                throw EngineError(code: .protocolNotAllowed, message: "scheme '\(target.scheme)' cannot carry an HTTP request to host '\(host)'.")
            }
            guard !method.isEmpty, method.utf8.allSatisfy(Self.isTokenByte) else {
                throw EngineError(code: .invalidRequest, message: "the HTTP method for host '\(host)' is not a valid token.")
            }
            kind = .http(method: method)
            mailFrom = nil
            recipients = []
            let upper = method.uppercased()
            let hasBody = request.bodyCount > 0
            sendsBody = hasBody || upper == "POST" || upper == "PUT" || upper == "PATCH"
            if upper == "HEAD" && !hasBody {
                httpMethodSetup = .nobody
            } else if upper == "GET" && !sendsBody {
                httpMethodSetup = .get
            } else if method != "POST" || !sendsBody {
                httpMethodSetup = .custom(method)
            } else {
                httpMethodSetup = .post
            }
        case .smtp(_, let from, let recipients, _, _):
            guard target.scheme == "smtp" || target.scheme == "smtps" else {
                throw EngineError(code: .protocolNotAllowed, message: "scheme '\(target.scheme)' cannot carry an SMTP submission to host '\(host)'.")
            }
            guard !recipients.isEmpty else {
                throw EngineError(code: .invalidRequest, message: "the SMTP submission to host '\(host)' has no recipients.")
            }
            for address in [from] + recipients where address.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
                throw EngineError(code: .invalidRequest, message: "an SMTP envelope address for host '\(host)' contains control characters.")
            }
            kind = .smtp
            mailFrom = from
            self.recipients = recipients
            recipientReplies = Array(repeating: nil, count: recipients.count)
            sendsBody = false
            httpMethodSetup = .post
        }

        timeoutMilliseconds = request.timeoutMilliseconds
        guard timeoutMilliseconds > 0 else {
            throw EngineError(code: .invalidRequest, message: "the timeout for host '\(host)' must be a positive number of milliseconds.")
        }
        guard options.maxResponseBytes >= 0 else {
            throw EngineError(code: .invalidRequest, message: "maxResponseBytes for host '\(host)' must not be negative.")
        }

        var proxyIsLoopback = false
        var secrets = target.userInfo + target.pathAndQuery
        if let proxy = options.proxy, !proxy.isEmpty {
            let proxyURL = proxy.contains("://") ? proxy : "http://" + proxy
            let scheme = ParsedURL.scheme(of: proxyURL) ?? ""
            guard Self.proxySchemes.contains(scheme), let parsed = ParsedURL(proxyURL) else {
                throw EngineError(code: .invalidRequest, message: "the proxy configured for host '\(host)' is not a valid http, https or socks proxy URL.")
            }
            proxyIsLoopback = HostName.isLocal(parsed.host)
            secrets += parsed.userInfo
        }
        if let password = options.password, !password.isEmpty { secrets.append(password) }
        secrets.append(request.url)
        self.secrets = secrets.sorted { $0.count > $1.count }
        // An operator-configured loopback proxy is trusted; otherwise the proxy's address is checked.
        checkAddresses = !options.egress.allowLoopback && !proxyIsLoopback

        let bytes: [UInt8]
        switch request {
        case .http(_, _, let headers, let body, _): bytes = body
            for header in headers {
                guard !header.name.isEmpty, header.name.utf8.allSatisfy(Self.isTokenByte),
                      !header.value.utf8.contains(where: { $0 == 0x0d || $0 == 0x0a || $0 == 0 })
                else {
                    throw EngineError(code: .invalidRequest, message: "a request header for host '\(host)' has an invalid name or a line break in its value.")
                }
            }
        case .smtp(_, _, _, let data, _): bytes = data
        }
        payloadCount = bytes.count
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        payload = buffer
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))

        // Lists are built after every throwing check, so deinit always sees a fully built context.
        switch request {
        case .http(_, _, let headers, let body, _):
            var lines = headers.map { $0.value.isEmpty ? "\($0.name);" : "\($0.name): \($0.value)" }
            let names = Set(headers.map { $0.name.lowercased() })
            // libcurl would add "Expect: 100-continue" for larger bodies: one more round trip.
            if !names.contains("expect") { lines.append("Expect:") }
            // libcurl would label any body as a form; send no Content-Type unless the caller chose one.
            if !body.isEmpty && !names.contains("content-type") { lines.append("Content-Type:") }
            headerList = Self.makeList(lines)
        case .smtp(_, _, let recipients, _, _):
            recipientList = Self.makeList(recipients)
        }
        if !options.resolveOverrides.isEmpty { resolveList = Self.makeList(options.resolveOverrides) }
    }

    deinit {
        curl_slist_free_all(headerList)
        curl_slist_free_all(recipientList)
        curl_slist_free_all(resolveList)
        payload.deallocate()
        errorBuffer.deallocate()
    }

    static let engineSchemes: Set<String> = ["http", "https", "smtp", "smtps"]
    static let proxySchemes: Set<String> = ["http", "https", "socks4", "socks4a", "socks5", "socks5h"]

    /// RFC 9110 token characters (method and header names).
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    private static func makeList(_ lines: [String]) -> UnsafeMutablePointer<curl_slist>? {
        var list: UnsafeMutablePointer<curl_slist>?
        for line in lines {
            guard let appended = curl_slist_append(list, line) else { continue }
            list = appended
        }
        return list
    }

    var isSMTP: Bool { if case .smtp = kind { true } else { false } }

    // MARK: callbacks (engine thread, inside curl_multi_perform)

    /// Appends body bytes up to the cap; past it, keeps what fits and stops the transfer.
    func receiveBody(_ data: UnsafeRawBufferPointer) -> Int {
        let room = max(0, options.maxResponseBytes - responseBody.count)
        if data.count <= room {
            responseBody.append(contentsOf: data)
            return data.count
        }
        responseBody.append(contentsOf: data.prefix(room))
        bodyTruncated = true
        return 0  // a short count makes libcurl abort with CURLE_WRITE_ERROR; no point reading the rest
    }

    /// Collects header lines; a new status line starts over, so only the final response's
    /// headers remain (1xx interim responses, proxy CONNECT replies). SMTP gets server reply lines.
    /// HTTP lines are only copied here (engine thread); `parsedHeaders()` parses them later.
    func receiveHeaderLine(_ data: UnsafeRawBufferPointer) {
        if isSMTP {
            receiveReplyLine(data)
            return
        }
        if data.count >= 5, data[0] == 0x48, data[1] == 0x54, data[2] == 0x54, data[3] == 0x50, data[4] == 0x2f {  // "HTTP/"
            rawHeaders.removeAll(keepingCapacity: true)
            return
        }
        rawHeaders.append(contentsOf: data)
        // libcurl hands one line per call, ending in LF; keep that invariant for the parser.
        if data.last != 0x0a { rawHeaders.append(0x0a) }
    }

    private func receiveReplyLine(_ data: UnsafeRawBufferPointer) {
        var end = data.count
        while end > 0, data[end - 1] == 0x0a || data[end - 1] == 0x0d { end -= 1 }
        let line = String(decoding: data[..<end], as: UTF8.self)
        // The last line of a (possibly multi-line) reply is "NNN text".
        let bytes = Array(line.utf8)
        if bytes.count >= 3, bytes[0..<3].allSatisfy({ (0x30...0x39).contains($0) }), bytes.count == 3 || bytes[3] == 0x20,
           let code = Int(String(decoding: bytes[0..<3], as: UTF8.self)) {
            replyLines[code] = line
            if let index = awaitingRecipient {
                recipientReplies[index] = line
                awaitingRecipient = nil
            }
        }
    }

    /// Sees each command libcurl sends (debug callback, SMTP only): the reply that follows the
    /// n-th RCPT TO belongs to the n-th recipient (libcurl sends them in order, one at a time).
    func sentCommand(_ data: UnsafeRawBufferPointer) {
        let prefix = "RCPT TO:".utf8
        guard data.count >= prefix.count, zip(data, prefix).allSatisfy({ ($0 & 0xDF) == ($1 & 0xDF) || $0 == $1 }),
              recipientsAsked < recipients.count else { return }
        awaitingRecipient = recipientsAsked
        recipientsAsked += 1
    }

    /// SMTP: the per-recipient replies as response header fields.
    func recipientFields() -> [HTTPHeader] {
        zip(recipients, recipientReplies).compactMap { recipient, reply in reply.map { HTTPHeader(name: recipient, value: $0) } }
    }

    /// The header fields of the final response, in order (caller side, after the transfer).
    func parsedHeaders() -> [HTTPHeader] {
        var headers: [HTTPHeader] = []
        rawHeaders.withUnsafeBufferPointer { raw in
            func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
            func text(_ start: Int, _ end: Int) -> String {
                // Whitespace-trimmed, as the value of a field.
                var start = start, end = end
                while start < end, isSpace(raw[start]) { start += 1 }
                while end > start, isSpace(raw[end - 1]) { end -= 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: raw[start..<end]), as: UTF8.self)
            }
            var lineStart = 0
            while lineStart < raw.count {
                var next = lineStart
                while raw[next] != 0x0a { next += 1 }  // every line ends in LF (receiveHeaderLine)
                var end = next
                while end > lineStart, raw[end - 1] == 0x0a || raw[end - 1] == 0x0d { end -= 1 }
                defer { lineStart = next + 1 }
                if end == lineStart { continue }
                if raw[lineStart] == 0x20 || raw[lineStart] == 0x09 {
                    // Obsolete line folding: continues the previous field.
                    if !headers.isEmpty { headers[headers.count - 1].value += " " + text(lineStart, end) }
                    continue
                }
                guard let colon = (lineStart..<end).first(where: { raw[$0] == 0x3a }) else { continue }
                headers.append(HTTPHeader(
                    name: String(decoding: UnsafeBufferPointer(rebasing: raw[lineStart..<colon]), as: UTF8.self),
                    value: text(colon + 1, end)))
            }
        }
        return headers
    }

    /// Copies the next slice of the SMTP payload.
    func readPayload(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(buffer.count, payloadCount - readOffset)
        guard count > 0, let base = buffer.baseAddress else { return 0 }
        base.copyMemory(from: payload.baseAddress! + readOffset, byteCount: count)
        readOffset += count
        return count
    }

    /// Refuses loopback and link-local addresses unless the policy allows them.
    /// Returns false (and remembers the address) when the address must not be used.
    func addressAllowed(_ bytes: [UInt8]) -> Bool {
        guard checkAddresses, HostName.isLocalAddress(bytes) else { return true }
        deniedAddress = HostName.format(bytes)
        return false
    }

    // MARK: outcome

    /// Reads what `outcome()` needs from the handle (engine thread). CURLINFO is gone once the
    /// handle is reset, so this runs before that.
    func recordResult(_ code: CURLcode, handle: UnsafeMutableRawPointer) {
        resultCode = code
        var value = 0
        if herald_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &value) == CURLE_OK { resultStatus = value }
        if herald_curl_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &value) == CURLE_OK { resultConnects = value }
        if !isSMTP, herald_curl_getinfo_long(handle, CURLINFO_HTTP_VERSION, &value) == CURLE_OK {
            switch value {
            case CURL_HTTP_VERSION_2_0: resultHTTPVersion = 2
            case CURL_HTTP_VERSION_3: resultHTTPVersion = 3
            default: resultHTTPVersion = 1
            }
        }
        _ = herald_curl_getinfo_off_t(handle, CURLINFO_TOTAL_TIME_T, &resultMicroseconds)
    }

    /// Turns libcurl's result (see `recordResult`) into a response or an error. Runs on the
    /// caller's task after the engine is done with the context.
    func outcome() -> Result<TransferResponse, EngineError> {
        let code = resultCode
        let status = resultStatus
        let version = resultHTTPVersion
        let totalMicroseconds = resultMicroseconds
        let connects = resultConnects

        func response(body: [UInt8]) -> TransferResponse {
            TransferResponse(
                status: status, headers: isSMTP ? recipientFields() : parsedHeaders(), body: body,
                bodyTruncated: bodyTruncated, httpVersion: version,
                totalSeconds: Double(totalMicroseconds) / 1_000_000, connectionReused: connects == 0)
        }

        if code == CURLE_OK || (code == CURLE_WRITE_ERROR && bodyTruncated) {
            return .success(response(body: isSMTP ? Array((replyLines[status] ?? "").utf8) : responseBody))
        }
        let error = engineError(for: code)
        // An SMTP server that answered with a 4xx/5xx reply gave a verdict the plugin should see
        // (retry on 4xx, give up on 5xx), so it becomes a response, not a transport error.
        if isSMTP, status >= 400, error.code != .egressDenied, error.code != .timeout {
            return .success(response(body: Array((replyLines[status] ?? error.message).utf8)))
        }
        return .failure(error)
    }

    func engineError(for code: CURLcode) -> EngineError {
        let host = target.host
        let detail = self.detail(for: code)
        if deniedAddress != nil && (code == CURLE_COULDNT_CONNECT || code == CURLE_ABORTED_BY_CALLBACK) {
            let address = deniedAddress ?? "?"
            return EngineError(
                code: .egressDenied,
                message: "egress to host '\(host)' is not allowed for this integration: it resolved to loopback or link-local address \(address) (\(options.egress.summary)).")
        }
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return EngineError(code: .timeout, message: "request to host '\(host)' timed out after \(timeoutMilliseconds) ms: \(detail).")
        case CURLE_COULDNT_CONNECT, CURLE_PROXY:
            return EngineError(code: .connectFailed, message: "could not connect to host '\(host)': \(detail).")
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return EngineError(code: .dnsFailed, message: "could not resolve host '\(host)' or its proxy: \(detail).")
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED,
             CURLE_USE_SSL_FAILED, CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT:
            return EngineError(code: .tlsFailed, message: "TLS with host '\(host)' failed: \(detail).")
        case CURLE_SEND_ERROR:
            return EngineError(code: .sendFailed, message: "sending to host '\(host)' failed: \(detail).")
        case CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return EngineError(code: .receiveFailed, message: "receiving from host '\(host)' failed: \(detail).")
        case CURLE_UNSUPPORTED_PROTOCOL:
            return EngineError(code: .protocolNotAllowed, message: "the protocol for host '\(host)' is not allowed: \(detail).")
        case CURLE_URL_MALFORMAT:
            return EngineError(code: .invalidRequest, message: "the URL for host '\(host)' was rejected: \(detail).")
        default:
            return EngineError(code: .other, message: "transfer to host '\(host)' failed: \(detail).")
        }
    }

    /// libcurl's error-buffer text (or its generic text), scrubbed of the URL, query string and
    /// credentials, without a trailing period.
    private func detail(for code: CURLcode) -> String {
        var text = String(cString: errorBuffer)
        if text.isEmpty, let generic = curl_easy_strerror(code) { text = String(cString: generic) }
        for secret in secrets where !secret.isEmpty {
            text = text.replacing(secret, with: "<redacted>")
        }
        text = text.trimmingWhitespace()
        while text.hasSuffix(".") { text.removeLast() }
        return text.isEmpty ? "libcurl error \(code.rawValue)" : text
    }
}
