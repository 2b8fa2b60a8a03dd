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

    /// The MAC or digest straight into `out` (20 or 32 bytes), without copying the inputs.
    static func hmacSHA1(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: key)).withUnsafeBytes {
            out.copyMemory(from: $0.baseAddress!, byteCount: $0.count)
        }
    }

    static func hmacSHA256(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)).withUnsafeBytes {
            out.copyMemory(from: $0.baseAddress!, byteCount: $0.count)
        }
    }

    static func sha256(_ message: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        SHA256.hash(data: message).withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
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
        text.withUnsafeBytes { input in
            let count = jsonEscape(input, into: nil, capacity: 0)
            return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                initialized = jsonEscape(input, into: UnsafeMutableRawPointer(buffer.baseAddress), capacity: count)
            }
        }
    }

    /// `jsonEscape` without intermediate arrays: returns the escaped length, and writes the
    /// escaped bytes to `out` only when that length fits in `capacity` (otherwise nothing).
    static func jsonEscape(_ text: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer?, capacity: Int) -> Int {
        // Invalid UTF-8 is replaced by U+FFFD first (rare); valid text is escaped as is.
        if !text.allSatisfy({ $0 < 0x80 }), String(validating: text.bindMemory(to: UInt8.self), as: UTF8.self) == nil {
            let repaired = Array(String(decoding: text, as: UTF8.self).utf8)
            return repaired.withUnsafeBytes { jsonEscape($0, into: out, capacity: capacity) }
        }
        // Pass 1: the escaped length.
        var length = 0
        var i = 0
        while i < text.count {
            switch text[i] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): length += 2
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), 0x7F, 0..<0x20: length += 6
            case 0xE2 where isSeparator(text, i):
                length += 6
                i += 2
            default: length += 1
            }
            i += 1
        }
        guard let out, length <= capacity else { return length }
        // Pass 2: the bytes.
        let hex: StaticString = "0123456789abcdef"
        var o = 0
        @inline(__always) func put(_ byte: UInt8) {
            out.storeBytes(of: byte, toByteOffset: o, as: UInt8.self)
            o += 1
        }
        @inline(__always) func unicodeEscape(_ value: UInt32) {
            put(UInt8(ascii: "\\"))
            put(UInt8(ascii: "u"))
            put(hex.utf8Start[Int((value >> 12) & 0xF)])
            put(hex.utf8Start[Int((value >> 8) & 0xF)])
            put(hex.utf8Start[Int((value >> 4) & 0xF)])
            put(hex.utf8Start[Int(value & 0xF)])
        }
        i = 0
        while i < text.count {
            let byte = text[i]
            switch byte {
            case UInt8(ascii: "\""): put(UInt8(ascii: "\\")); put(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): put(UInt8(ascii: "\\")); put(UInt8(ascii: "\\"))
            case UInt8(ascii: "\n"): put(UInt8(ascii: "\\")); put(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): put(UInt8(ascii: "\\")); put(UInt8(ascii: "r"))
            case UInt8(ascii: "\t"): put(UInt8(ascii: "\\")); put(UInt8(ascii: "t"))
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), 0x7F, 0..<0x20: unicodeEscape(UInt32(byte))
            case 0xE2 where isSeparator(text, i):
                unicodeEscape(text[i + 2] == 0xA8 ? 0x2028 : 0x2029)  // line/paragraph separators break JavaScript
                i += 2
            default: put(byte)
            }
            i += 1
        }
        return o
    }

    /// U+2028 or U+2029 (E2 80 A8 / E2 80 A9) at `i`.
    @inline(__always)
    private static func isSeparator(_ text: UnsafeRawBufferPointer, _ i: Int) -> Bool {
        i + 2 < text.count && text[i + 1] == 0x80 && (text[i + 2] == 0xA8 || text[i + 2] == 0xA9)
    }
}
