import Foundation
import Yams

/// The `server:` section of `herald.yaml`.
///
/// ```yaml
/// server:
///   listen: 127.0.0.1:8080
///   public_url: https://herald.example.com     # where action links in messages point
///   link_secret: ${HERALD_LINK_SECRET}         # signs those links; 32+ characters
///   link_ttl_hours: 168
///   max_body_bytes: 1048576
///   api_tokens:
///     - {token: "${HERALD_ADMIN_TOKEN}", role: admin}    # everything
///     - {token: "${ALERTMANAGER_TOKEN}", role: ingest}   # may only post alerts
///   dispatch:                                  # outbox retry policy (all optional)
///     max_attempts: 8                          # then the notification is dead
///     base_backoff_seconds: 2                  # before attempt n+1: base * 2^(n-1), ±25 %
///     max_backoff_seconds: 600
///     lease_seconds: 120                       # a crashed Herald's in-flight rows return after this;
///                                              # keep it above the longest delivery (plugin timeouts)
/// ```
public struct ServerSettings: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable { case admin, ingest }
    public struct APIToken: Sendable, Equatable {
        public var token: String
        public var role: Role
    }

    public var host = "127.0.0.1"
    public var port = 8080
    public var publicURL = "http://127.0.0.1:8080"
    public var linkSecret = ""
    public var linkTTLHours = 168
    public var maxBodyBytes = 1 << 20
    public var apiTokens: [APIToken] = []
    /// Seconds between scheduler passes over due timers when nothing wakes it sooner.
    public var tickSeconds: Double = 1
    /// The outbox dispatcher's retry policy (`server.dispatch`).
    public var dispatch = DispatchSettings()

    public init() {}

    public func role(ofBearer token: String) -> Role? {
        apiTokens.first { Self.constantTimeEqual($0.token, token) }?.role
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}

extension ConfigReader {
    mutating func server(_ node: Node) -> ServerSettings {
        var settings = ServerSettings()
        guard let members = mapping(node, "server", known: ["listen", "public_url", "link_secret", "link_ttl_hours", "max_body_bytes", "api_tokens", "tick_seconds", "dispatch"]) else {
            return settings
        }
        if let n = members["listen"], let text = string(n, "server.listen") {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (0...65535).contains(port) {
                settings.host = String(parts[0])
                settings.port = port
            } else {
                fail(n, "server.listen", "must be host:port, such as 127.0.0.1:8080 (got '\(text)')")
            }
        }
        if let n = members["public_url"], let text = string(n, "server.public_url") {
            if text.hasPrefix("http://") || text.hasPrefix("https://") {
                settings.publicURL = text
            } else {
                fail(n, "server.public_url", "must be an http:// or https:// URL, where people's browsers reach Herald")
            }
        }
        if let n = members["link_secret"], let text = string(n, "server.link_secret") {
            if text.utf8.count < 32 { fail(n, "server.link_secret", "must be at least 32 characters (it signs action links)") }
            settings.linkSecret = text
        }
        if let n = members["link_ttl_hours"] { settings.linkTTLHours = integer(n, "server.link_ttl_hours", 1...8760) ?? settings.linkTTLHours }
        if let n = members["max_body_bytes"] { settings.maxBodyBytes = integer(n, "server.max_body_bytes", 1024...(64 << 20)) ?? settings.maxBodyBytes }
        if let n = members["tick_seconds"] {
            if let text = n.scalar?.string, let value = Double(text), value >= 0.01, value <= 60 {
                settings.tickSeconds = value
            } else {
                fail(n, "server.tick_seconds", "must be a number of seconds from 0.01 to 60")
            }
        }
        if let n = members["dispatch"], let dispatch = mapping(n, "server.dispatch", known: ["max_attempts", "base_backoff_seconds", "max_backoff_seconds", "lease_seconds"]) {
            if let v = dispatch["max_attempts"] { settings.dispatch.maxAttempts = integer(v, "server.dispatch.max_attempts", 1...100) ?? settings.dispatch.maxAttempts }
            func seconds(_ key: String, _ range: ClosedRange<Double>, _ text: String) -> Double? {
                guard let v = dispatch[key] else { return nil }
                guard let scalar = v.scalar?.string, let value = Double(scalar), range.contains(value) else {
                    fail(v, "server.dispatch." + key, "must be a number of seconds from \(text)")
                    return nil
                }
                return value
            }
            if let v = seconds("base_backoff_seconds", 0.01...3600, "0.01 to 3600") { settings.dispatch.baseBackoff = v }
            if let v = seconds("max_backoff_seconds", 0.01...86400, "0.01 to 86400") { settings.dispatch.maxBackoff = v }
            if let v = seconds("lease_seconds", 1...3600, "1 to 3600") { settings.dispatch.leaseSeconds = v }
        }
        if let n = members["api_tokens"] {
            for (i, item) in sequence(n, "server.api_tokens").enumerated() {
                let key = "server.api_tokens[\(i)]"
                guard let token = mapping(item, key, known: ["token", "role"]) else { continue }
                guard let t = token["token"].flatMap({ string($0, key + ".token") }), t.utf8.count >= 16 else {
                    fail(item, key + ".token", "needs a token of at least 16 characters")
                    continue
                }
                guard let r = token["role"].flatMap({ string($0, key + ".role") }), let role = ServerSettings.Role(rawValue: r) else {
                    fail(item, key + ".role", "must be admin or ingest")
                    continue
                }
                settings.apiTokens.append(.init(token: t, role: role))
            }
        }
        return settings
    }

    mutating func integer(_ node: Node, _ key: String, _ range: ClosedRange<Int>) -> Int? {
        guard let text = node.scalar?.string, let value = Int(text), range.contains(value) else {
            fail(node, key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }
}
