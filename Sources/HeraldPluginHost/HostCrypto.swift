import Crypto
import Foundation
import _CryptoExtras

/// The crypto and encoding services of the host API, as plain Swift functions (the libffi table
/// calls these; tests call them directly).
public enum HostCrypto {
    public static func hmacSHA1(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    public static func sha256(_ message: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: message))
    }

    public enum CryptoError: Error { case badKey, badIV, badCiphertext, badPadding }

    /// AES-256-CBC decryption; `stripPKCS7` checks and removes standard padding.
    public static func aes256CBCDecrypt(key: [UInt8], iv: [UInt8], ciphertext: [UInt8], stripPKCS7: Bool) throws(CryptoError) -> [UInt8] {
        guard key.count == 32 else { throw .badKey }
        guard iv.count == 16 else { throw .badIV }
        guard !ciphertext.isEmpty, ciphertext.count % 16 == 0 else { throw .badCiphertext }
        do {
            let vector = try AES._CBC.IV(ivBytes: iv)
            let plain = try AES._CBC.decrypt(ciphertext, using: SymmetricKey(data: key), iv: vector, noPadding: !stripPKCS7)
            return Array(plain)
        } catch {
            throw stripPKCS7 ? .badPadding : .badCiphertext
        }
    }

    public static func base64Encode(_ data: [UInt8]) -> [UInt8] {
        Array(Data(data).base64EncodedString().utf8)
    }

    /// Standard alphabet; padding optional; anything else (whitespace, URL-safe letters) is refused.
    public static func base64Decode(_ text: [UInt8]) -> [UInt8]? {
        var padded = text
        if padded.count % 4 == 1 { return nil }
        while padded.count % 4 != 0 { padded.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(padded)).map(Array.init)
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    public static func percentEncode(_ text: [UInt8]) -> [UInt8] {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        for byte in text {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return out
    }

    /// Escapes text for the inside of a JSON string; also safe inside HTML and JavaScript.
    /// Works on bytes: plugins call it for every field of every message.
    public static func jsonEscape(_ text: [UInt8]) -> [UInt8] {
        // Invalid UTF-8 is replaced by U+FFFD first (rare); valid text is escaped as is.
        let input = String(validating: text, as: UTF8.self) != nil ? text : Array(String(decoding: text, as: UTF8.self).utf8)
        let hex: StaticString = "0123456789abcdef"
        var out: [UInt8] = []
        out.reserveCapacity(input.count + input.count / 8 + 8)
        func unicodeEscape(_ value: UInt32) {
            out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u")])
            for shift: UInt32 in [12, 8, 4, 0] { out.append(hex.utf8Start[Int((value >> shift) & 0xF)]) }
        }
        var i = 0
        while i < input.count {
            let byte = input[i]
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), 0x7F, 0..<0x20: unicodeEscape(UInt32(byte))
            case 0xE2 where i + 2 < input.count && input[i + 1] == 0x80 && (input[i + 2] == 0xA8 || input[i + 2] == 0xA9):
                unicodeEscape(input[i + 2] == 0xA8 ? 0x2028 : 0x2029)  // line/paragraph separators break JavaScript
                i += 2
            default: out.append(byte)
            }
            i += 1
        }
        return out
    }
}
