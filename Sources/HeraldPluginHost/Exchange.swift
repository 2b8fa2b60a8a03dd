import CHeraldPlugin
import Synchronization

/// The host side of a `herald_exchange *`: collects what a plugin reports during one hook.
/// The plugin sees only an opaque pointer, which the host checks against the instance's live
/// exchanges before use, so a pointer kept past its hook gets HERALD_ERR_STATE, not a crash.
final class Exchange: Sendable {
    struct State {
        var request: PluginRequest?
        var requestProblem: String?
        var providerID: String?
        var retryAfter: UInt64?
        var reason: String?
        var actions: [InboundAction] = []
        var reply: CallbackReply?
        var output: String?
    }
    let state = Mutex(State())
    static let maxActions = 16
}

extension herald_request {
    /// Copies and checks a plugin's request. Returns a sentence when it is malformed.
    func copied() -> Result<PluginRequest, RequestProblem> {
        let minimum = MemoryLayout<herald_request>.offset(of: \herald_request.tag)! + 8
        guard Int(struct_size) >= minimum else { return .failure(.init("request struct_size \(struct_size) is smaller than ABI 1.0's \(minimum)")) }
        guard let kind = PluginRequest.Kind(rawValue: self.kind) else { return .failure(.init("request kind \(self.kind) is unknown")) }
        guard let url = url.validatedString, !url.isEmpty else { return .failure(.init("request url is empty or not UTF-8")) }
        guard !Self.hasWhitespaceOrControl(url) else {
            return .failure(.init("request url contains whitespace or control characters"))
        }
        guard header_count <= 128, header_count == 0 || headers != nil else { return .failure(.init("request has \(header_count) headers but no array")) }
        var fields: [HeaderField] = []
        for i in 0..<header_count {
            let pair = headers![i]
            guard let name = pair.name.validatedString, !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                return .failure(.init("request header \(i) has an invalid name"))
            }
            guard let value = pair.value.validatedString, !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                return .failure(.init("request header '\(name)' has a value with CR, LF or NUL"))
            }
            fields.append(HeaderField(name, value))
        }
        guard body.len <= 32 << 20, body.len == 0 || body.ptr != nil else { return .failure(.init("request body is larger than 32 MiB or NULL")) }
        var method = ""
        var mailFrom = ""
        var recipients: [String] = []
        switch kind {
        case .http:
            guard let m = self.method.validatedString, !m.isEmpty, m.utf8.allSatisfy(isTokenByte) else {
                return .failure(.init("HTTP request method is missing or invalid"))
            }
            method = m
        case .smtp:
            guard let from = mail_from.validatedString, !from.isEmpty else { return .failure(.init("SMTP request has no mail_from")) }
            guard recipient_count > 0, recipient_count <= 100, recipients_ptr != nil else {
                return .failure(.init("SMTP request needs 1 to 100 recipients"))
            }
            for i in 0..<recipient_count {
                guard let r = recipients_ptr![i].validatedString, !r.isEmpty, !r.contains("\r"), !r.contains("\n") else {
                    return .failure(.init("SMTP recipient \(i) is empty or invalid"))
                }
                recipients.append(r)
            }
            mailFrom = from
        }
        var request = PluginRequest(kind: kind, method: method, url: url, headers: fields, body: body.bytes,
                                    timeoutMilliseconds: timeout_ms, mailFrom: mailFrom, recipients: recipients, tag: tag)
        // Fields appended after ABI 1.0: read only when the plugin's struct has them.
        let extended = MemoryLayout<herald_request>.offset(of: \herald_request.reserved1)! + 4
        if kind == .smtp, Int(struct_size) >= extended {
            func text(_ view: herald_str, _ what: String) -> Result<String?, RequestProblem> {
                guard view.len > 0 else { return .success(nil) }
                guard let s = view.validatedString, !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
                    return .failure(.init("SMTP \(what) is not UTF-8 or contains control characters"))
                }
                return .success(s)
            }
            switch (text(smtp_username, "user name"), text(smtp_password, "password"), text(smtp_login_options, "login options")) {
            case (.success(let user), .success(let password), .success(let options)):
                guard user != nil || password == nil else { return .failure(.init("SMTP request has a password but no user name")) }
                request.smtpUsername = user
                request.smtpPassword = user == nil ? nil : (password ?? "")
                request.smtpLoginOptions = options
            case (.failure(let problem), _, _), (_, .failure(let problem), _), (_, _, .failure(let problem)):
                return .failure(problem)
            }
            guard smtp_flags & ~PluginRequest.smtpAllowPlaintextFlag == 0 else {
                return .failure(.init("SMTP request has unknown smtp_flags bits 0x\(String(smtp_flags, radix: 16))"))
            }
            request.smtpAllowPlaintext = smtp_flags & PluginRequest.smtpAllowPlaintextFlag != 0
        }
        return .success(request)
    }

    private var recipients_ptr: UnsafePointer<herald_str>? { recipients }

    /// Whitespace (any Unicode White_Space) or an ASCII control character. ASCII URLs, the usual
    /// case, are checked byte by byte; others character by character.
    static func hasWhitespaceOrControl(_ url: String) -> Bool {
        var ascii = true
        for byte in url.utf8 {
            if byte <= 0x20 { return true }  // space or control (Unicode whitespace in ASCII is all here)
            if byte >= 0x80 { ascii = false }
        }
        if ascii { return false }
        return url.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true })
    }
}

struct RequestProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// RFC 9110 token characters.
private func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
    default: "!#$%&'*+-.^_`|~".utf8.contains(b)
    }
}
