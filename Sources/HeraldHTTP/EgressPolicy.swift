internal import CCurlShim
import Foundation
import Glibc

/// Which destinations an integration may reach.
///
/// Checked twice: by name before a transfer is queued (`check(url:)`), and by address when a
/// socket is opened or a cached connection is reused, so a listed public name that resolves to
/// loopback or link-local is refused too.
public struct EgressPolicy: Sendable {
    /// The schemes allowed when none are given.
    public static let defaultSchemes: Set<String> = ["https", "http", "smtp", "smtps"]

    /// Exact host names (`api.telegram.org`), suffix wildcards (`*.example.com`: any subdomain of
    /// `example.com`, not `example.com` itself), or IP literals (`203.0.113.7`, `2001:db8::1`).
    /// Case-insensitive; a trailing dot is ignored; international names match in either form;
    /// ports are not part of the match. A lone `*` allows every host (loopback still needs
    /// `allowLoopback`). An empty list allows nothing.
    public var allowedHosts: [String]
    /// Allows loopback (127.0.0.0/8, ::1, `localhost`, `*.localhost`, 0.0.0.0) and link-local
    /// (169.254.0.0/16, fe80::/10) destinations. Off by default: those reach the host itself or
    /// cloud metadata services. A loopback host must still be listed in `allowedHosts`.
    public var allowLoopback: Bool
    /// Lower-case URL schemes allowed. The engine itself only speaks http, https, smtp and smtps.
    public var allowedSchemes: Set<String>

    public init(
        allowedHosts: [String],
        allowLoopback: Bool = false,
        allowedSchemes: Set<String> = EgressPolicy.defaultSchemes
    ) {
        self.allowedHosts = allowedHosts
        self.allowLoopback = allowLoopback
        self.allowedSchemes = allowedSchemes
    }

    /// Checks the scheme and host of `url` against the policy, without any network access.
    ///
    /// Throws `.invalidRequest` for an unparsable URL, `.protocolNotAllowed` for a scheme outside
    /// `allowedSchemes`, and `.egressDenied` for a host that is not listed or is a loopback /
    /// link-local name or literal while `allowLoopback` is false. The URL is parsed by libcurl's
    /// own parser, so the host checked is the host libcurl would connect to.
    public func check(url: String) throws(EngineError) {
        _ = try target(of: url)
    }

    /// True when `host` (a bare host name or IP literal) is listed and, if it is a loopback or
    /// link-local name or literal, loopback is allowed.
    public func allows(host: String) -> Bool {
        guard let normalized = HostName.normalize(host) else { return false }
        if HostName.isLocal(normalized) && !allowLoopback { return false }
        return matches(normalized)
    }

    /// The host of `url` exactly as the engine sees it — parsed by libcurl, lower case,
    /// percent-decoding and IPv4 shorthand resolved, IPv6 without brackets, international names
    /// in punycode — or nil when the URL does not parse. Use it to derive allow-list entries
    /// from configured URLs, so the list and the check agree on what the host is.
    public static func host(of url: String) -> String? {
        ParsedURL(url)?.host
    }

    /// Parses `url` and applies the policy; returns the parsed target for the engine.
    func target(of url: String) throws(EngineError) -> ParsedURL {
        guard let scheme = ParsedURL.scheme(of: url) else {
            throw EngineError(code: .invalidRequest, message: "the URL has no scheme (expected e.g. https://host/...).")
        }
        guard allowedSchemes.contains(scheme) else {
            let allowed = allowedSchemes.sorted().joined(separator: ", ")
            throw EngineError(
                code: .protocolNotAllowed,
                message: "scheme '\(scheme)' is not allowed for this integration (allowed: \(allowed.isEmpty ? "none" : allowed)).")
        }
        guard let parsed = ParsedURL(url) else {
            throw EngineError(code: .invalidRequest, message: "the \(scheme) URL could not be parsed or has no valid host.")
        }
        if HostName.isLocal(parsed.host) && !allowLoopback {
            throw EngineError(
                code: .egressDenied,
                message: "egress to host '\(parsed.host)' is not allowed for this integration: it is a loopback or link-local destination (\(summary)).")
        }
        guard matches(parsed.host) else {
            throw EngineError(
                code: .egressDenied,
                message: "egress to host '\(parsed.host)' is not allowed for this integration (\(summary)).")
        }
        return parsed
    }

    /// "allowed: a, b; loopback not allowed" — used in every denial message.
    var summary: String {
        let hosts = allowedHosts.isEmpty ? "none" : allowedHosts.joined(separator: ", ")
        return "allowed: \(hosts); loopback \(allowLoopback ? "allowed" : "not allowed")"
    }

    private func matches(_ host: String) -> Bool {
        let hostIsIP = HostName.ipBytes(host) != nil
        for entry in allowedHosts {
            let trimmed = entry.trimmingWhitespace()
            if trimmed == "*" { return true }
            if trimmed.hasPrefix("*.") {
                // Wildcards match names only, never IP literals, and need at least one label in front.
                guard !hostIsIP, let suffix = HostName.normalize(String(trimmed.dropFirst(2))) else { continue }
                if host.hasSuffix("." + suffix) && host.count > suffix.count + 1 { return true }
            } else if let exact = HostName.normalize(trimmed), exact == host {
                return true
            }
        }
        return false
    }
}

extension EgressPolicy: CustomStringConvertible {
    public var description: String {
        "EgressPolicy(\(summary); schemes: \(allowedSchemes.sorted().joined(separator: ", ")))"
    }
}

/// A URL as libcurl parses it: lower-case scheme and a normalized host.
struct ParsedURL: Sendable {
    let scheme: String
    /// Lower case, no trailing dot, IDN in punycode, IPv6 without brackets, IP literals canonical.
    let host: String
    /// User name and password embedded in the URL, kept only to scrub them from error text.
    let userInfo: [String]
    /// Path and query string, kept only to scrub them from error text (both can carry tokens,
    /// e.g. Telegram's `/bot<token>/sendMessage`).
    let pathAndQuery: [String]

    /// The scheme before "://", lower-cased; nil when there is none.
    static func scheme(of url: String) -> String? {
        guard let range = url.firstRange(of: "://") else { return nil }
        let scheme = url[..<range.lowerBound].lowercased()
        let valid = !scheme.isEmpty && scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
        return valid ? scheme : nil
    }

    /// `scheme://host` for logs, or a placeholder when the URL does not parse.
    static func redacted(_ url: String) -> String {
        if let parsed = ParsedURL(url) { return "\(parsed.scheme)://\(parsed.host)" }
        return "<unparsable URL>"
    }

    init?(_ url: String) {
        ensureCurlInitialized()
        guard let handle = curl_url() else { return nil }
        defer { curl_url_cleanup(handle) }
        // NON_SUPPORT_SCHEME: parse any scheme here; which ones may be used is decided by the policy.
        guard curl_url_set(handle, CURLUPART_URL, url, UInt32(CURLU_NON_SUPPORT_SCHEME)) == CURLUE_OK,
              let scheme = Self.part(handle, CURLUPART_SCHEME, 0)
        else { return nil }
        // libcurl returns the host percent-decoded and IPv4 forms normalized (127.1 -> 127.0.0.1).
        // Its CURLU_PUNYCODE fails in 7.88, so international names are converted by `Punycode`.
        guard let rawHost = Self.part(handle, CURLUPART_HOST, 0), let host = HostName.normalize(rawHost) else { return nil }
        self.scheme = scheme.lowercased()
        self.host = host
        self.userInfo = [Self.part(handle, CURLUPART_USER, 0), Self.part(handle, CURLUPART_PASSWORD, 0)]
            .compactMap { $0 }.filter { !$0.isEmpty }
        self.pathAndQuery = [Self.part(handle, CURLUPART_PATH, 0), Self.part(handle, CURLUPART_QUERY, 0)]
            .compactMap { $0 }.filter { $0.count > 1 }
    }

    private static func part(_ handle: OpaquePointer, _ part: CURLUPart, _ flags: UInt32) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        guard curl_url_get(handle, part, &value, flags) == CURLUE_OK, let value else { return nil }
        defer { curl_free(value) }
        return String(cString: value)
    }
}

/// Host name normalization and loopback / link-local classification.
enum HostName {
    /// Lower-cases, strips IPv6 brackets and one trailing dot, canonicalizes IP literals and
    /// converts international names to punycode. Nil for an empty or malformed host.
    /// Must not call `ParsedURL` (which calls this).
    static func normalize(_ raw: String) -> String? {
        var host = raw.trimmingWhitespace().lowercased()
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host.removeLast() }
        guard !host.isEmpty else { return nil }
        if let bytes = ipBytes(host) { return format(bytes) }
        // Characters that cannot appear in a DNS name would make matching ambiguous.
        guard !host.contains(where: { "%/\\@:?#[] ".contains($0) || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7f } == true })
        else { return nil }
        if !host.allSatisfy(\.isASCII) { return Punycode.hostToASCII(host) }
        return host
    }

    /// The 4 or 16 address bytes of an IP literal (no brackets), or nil for a name.
    static func ipBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// Canonical text form of 4 or 16 address bytes.
    static func format(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        return ok ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }

    /// True for `localhost`, `*.localhost` (libcurl resolves those to loopback without DNS) and
    /// loopback / link-local / unspecified IP literals. `host` must be normalized.
    static func isLocal(_ host: String) -> Bool {
        if host == "localhost" || host.hasSuffix(".localhost") { return true }
        if let bytes = ipBytes(host) { return isLocalAddress(bytes) }
        return false
    }

    /// True for 127.0.0.0/8, 0.0.0.0/8 (Linux routes 0.0.0.0 to the host itself), 169.254.0.0/16,
    /// ::1, ::, fe80::/10, and IPv4-mapped IPv6 forms of the IPv4 ranges.
    static func isLocalAddress(_ bytes: [UInt8]) -> Bool {
        if bytes.count == 4 {
            return bytes[0] == 127 || bytes[0] == 0 || (bytes[0] == 169 && bytes[1] == 254)
        }
        guard bytes.count == 16 else { return false }
        let head = bytes[0..<10]
        if head.allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            return isLocalAddress(Array(bytes[12..<16]))  // ::ffff:a.b.c.d
        }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && (bytes[15] == 1 || bytes[15] == 0) { return true }  // ::1, ::
        return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80  // fe80::/10
    }
}

extension String {
    /// Without leading and trailing ASCII whitespace (on the hot path: bytes, no Unicode tables).
    func trimmingWhitespace() -> String {
        let bytes = utf8
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else { return "" }
        if first == bytes.startIndex && last == bytes.index(before: bytes.endIndex) { return self }
        return String(self[first...last])
    }
}
