import Crypto
import Foundation

/// Signed browser links: every message carries links that act on the incident as the member it
/// was sent to, with no login. A link is `<public_url>/l/<token>`; the token is
/// `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))` where the payload is
/// `v1|<incident>|<action>|<member>|<expiry unix s>|<nonce>`.
///
/// A tampered token fails the MAC; an expired one is refused by time; a used one is refused by
/// its nonce, which the store records when the action is performed (opening the page does not
/// use it: IM clients and mail scanners fetch links before anyone clicks).
public struct LinkSigner: Sendable {
    public enum Action: String, Sendable, CaseIterable {
        case view, acknowledge, snooze, close
    }

    public struct Claims: Sendable, Equatable {
        public var incidentID: String
        public var action: Action
        /// The member the link was sent to; empty for a group chat (the page asks who acts).
        public var member: String
        public var expiresAt: Date
        public var nonce: String
    }

    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed, badSignature, expired(Date)
        public var description: String {
            switch self {
            case .malformed: "the link is not a Herald action link"
            case .badSignature: "the link's signature does not match: it was altered or signed with another key"
            case .expired(let at): "the link expired at \(at.formatted(.iso8601))"
            }
        }
    }

    let key: SymmetricKey
    public let publicURL: String
    public let lifetime: TimeInterval

    public init(secret: String, publicURL: String, lifetime: TimeInterval = 7 * 24 * 3600) {
        self.key = SymmetricKey(data: Array(secret.utf8))
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.lifetime = lifetime
    }

    public func token(incidentID: String, action: Action, member: String, now: Date) -> String {
        // Two draws, not twelve: each draw of the system generator is a getrandom(2) call.
        var generator = SystemRandomNumberGenerator()
        let nonceBytes = withUnsafeBytes(of: (generator.next() as UInt64, generator.next() as UInt64)) { Array($0.prefix(12)) }
        let expiry = Int64(now.addingTimeInterval(lifetime).timeIntervalSince1970)
        let payload = ["v1", incidentID, action.rawValue, member, String(expiry), Self.base64url(nonceBytes)].joined(separator: "|")
        let mac = HMAC<SHA256>.authenticationCode(for: Array(payload.utf8), using: key)
        return Self.base64url(Array(payload.utf8)) + "." + Self.base64url(Array(mac))
    }

    public func url(incidentID: String, action: Action, member: String, now: Date) -> String {
        "\(publicURL)/l/\(token(incidentID: incidentID, action: action, member: member, now: now))"
    }

    /// The claims of an authentic, unexpired token.
    public func verify(_ token: String, now: Date) throws(Refusal) -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Self.decode(parts[0]), let mac = Self.decode(parts[1]) else { throw .malformed }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key) else { throw .badSignature }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 6, fields[0] == "v1", let action = Action(rawValue: fields[2]), let expiry = Int64(fields[4]) else { throw .malformed }
        let expiresAt = Date(timeIntervalSince1970: TimeInterval(expiry))
        guard expiresAt > now else { throw .expired(expiresAt) }
        return Claims(incidentID: fields[1], action: action, member: fields[3], expiresAt: expiresAt, nonce: fields[5])
    }

    /// Unpadded base64url, encoded directly: Foundation's base64 followed by three
    /// `replacingOccurrences` (NSString on Linux) was most of the CPU time of a delivery, which
    /// signs four links.
    static func base64url(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        func emit(_ n: UInt32, _ count: Int) {
            for shift in [18, 12, 6, 0].prefix(count) { out.append(base64urlAlphabet[Int((n >> UInt32(shift)) & 63)]) }
        }
        var i = 0
        while i + 3 <= bytes.count {
            emit(UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]), 4)
            i += 3
        }
        switch bytes.count - i {
        case 1: emit(UInt32(bytes[i]) << 16, 2)
        case 2: emit(UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8, 3)
        default: break
        }
        return String(decoding: out, as: UTF8.self)
    }

    static let base64urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func decode(_ text: Substring) -> [UInt8]? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        var b64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
        return Data(base64Encoded: b64).map(Array.init)
    }
}
