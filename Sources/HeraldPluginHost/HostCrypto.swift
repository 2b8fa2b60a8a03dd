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
    public static func jsonEscape(_ text: [UInt8]) -> [UInt8] {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 8)
        func unicodeEscape(_ value: UInt32) {
            out += Array("\\u".utf8)
            for shift in [12, 8, 4, 0] { out.append(hex[Int((value >> UInt32(shift)) & 0xF)]) }
        }
        for scalar in String(decoding: text, as: UTF8.self).unicodeScalars {
            switch scalar {
            case "\"": out += Array("\\\"".utf8)
            case "\\": out += Array("\\\\".utf8)
            case "\n": out += Array("\\n".utf8)
            case "\r": out += Array("\\r".utf8)
            case "\t": out += Array("\\t".utf8)
            case "<", ">", "&", "\u{2028}", "\u{2029}": unicodeEscape(scalar.value)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F { unicodeEscape(scalar.value) } else { out += Array(String(scalar).utf8) }
            }
        }
        return out
    }
}
