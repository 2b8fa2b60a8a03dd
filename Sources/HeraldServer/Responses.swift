import Foundation
import HeraldPluginHost
import Hummingbird
import NIOCore

/// A refusal with one sentence that says why (naming the field), sent as `{"error": "..."}`.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONBody.response(["error": message], status: status)
        for field in headers { response.headers.append(field) }
        return response
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
}

enum JSONBody {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(timestamp(date))
        }
        return encoder
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder().encode(value)) ?? Data(#"{"error":"the response could not be encoded"}"#.utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// RFC 3339 in UTC with milliseconds: `2024-05-01T08:00:00.000Z`.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!))
    }
}

/// Reading request bodies with the limits and checks every endpoint shares.
enum BodyReader {
    /// The body, at most `limit` bytes (413 beyond), refused early by Content-Length.
    static func collect(_ request: Request, limit: Int, setting: String? = "server.max_body_bytes") async throws -> [UInt8] {
        let source = setting.map { " (\($0))" } ?? ""
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError(.contentTooLarge, "the body (\(length) bytes) is larger than the limit of \(limit) bytes\(source)")
        }
        do {
            var body = request.body
            let buffer = try await body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "the body is larger than the limit of \(limit) bytes\(source)")
        }
    }

    /// The media type without parameters, lowercased; and refuses a charset other than UTF-8.
    static func requireContentType(_ request: Request, _ wanted: String) throws {
        guard let header = request.headers[.contentType] else {
            throw APIError(.unsupportedMediaType, "Content-Type: must be \(wanted)")
        }
        let parts = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.first?.lowercased() == wanted else {
            throw APIError(.unsupportedMediaType, "Content-Type: must be \(wanted) (got \(header.prefix(100)))")
        }
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "charset",
               !["utf-8", "utf8", "\"utf-8\""].contains(pair[1].lowercased()) {
                throw APIError(.unsupportedMediaType, "Content-Type: the charset must be utf-8 (got \(pair[1].prefix(40)))")
            }
        }
    }

    /// A JSON object body: content type, size, UTF-8 and syntax checked.
    static func jsonObject(_ request: Request, limit: Int) async throws -> [String: JSONValue] {
        try requireContentType(request, "application/json")
        let bytes = try await collect(request, limit: limit)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw APIError.badRequest("body: is not valid UTF-8")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(Data(bytes))
        } catch {
            throw APIError.badRequest("body: is not valid JSON (\(error))")
        }
        guard case .object(let members) = value else { throw APIError.badRequest("body: must be a JSON object") }
        return members
    }
}

/// Reads fields of a JSON object with errors that name them (`labels.env: must be a string`).
struct FieldReader {
    let members: [String: JSONValue]
    /// The path of this object, with a trailing dot ("" at the top, "alerts[0].").
    let prefix: String

    init(_ members: [String: JSONValue], prefix: String = "", known: [String]) throws {
        self.members = members
        self.prefix = prefix
        for key in members.keys.sorted() where !known.contains(key) {
            throw APIError.badRequest("\(prefix)\(Self.printable(key)): is not a known field (known: \(known.joined(separator: ", ")))")
        }
    }

    /// A string of at most `maxBytes` UTF-8 bytes; nil when absent or null.
    func string(_ key: String, maxBytes: Int, required: Bool = false, allowEmpty: Bool = true) throws -> String? {
        switch members[key] {
        case nil, .null?:
            if required { throw APIError.badRequest("\(prefix)\(key): is required") }
            return nil
        case .string(let text)?:
            if text.isEmpty && (!allowEmpty || required) { throw APIError.badRequest("\(prefix)\(key): must not be empty") }
            if text.utf8.count > maxBytes {
                throw APIError.badRequest("\(prefix)\(key): is \(text.utf8.count) bytes; the limit is \(maxBytes) bytes")
            }
            return text
        case let other?:
            throw APIError.badRequest("\(prefix)\(key): must be a string (got \(other.kindName))")
        }
    }

    /// A whole number in `range`; nil when absent or null.
    func integer(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        switch members[key] {
        case nil, .null?: return nil
        case .number(let n)?:
            guard n.rounded() == n, n >= Double(range.lowerBound), n <= Double(range.upperBound) else {
                throw APIError.badRequest("\(prefix)\(key): must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(n)
        case let other?:
            throw APIError.badRequest("\(prefix)\(key): must be a number (got \(other.kindName))")
        }
    }

    /// A flat `{string: string}` object (labels, annotations) within the limits.
    func stringMap(_ key: String, limits: IngestLimits) throws -> [String: String] {
        switch members[key] {
        case nil, .null?: return [:]
        case .object(let map)?:
            if map.count > limits.maxLabels {
                throw APIError.badRequest("\(prefix)\(key): has \(map.count) entries; the limit is \(limits.maxLabels)")
            }
            var result: [String: String] = [:]
            for name in map.keys.sorted() {
                let path = "\(prefix)\(key).\(Self.printable(name))"
                if name.isEmpty { throw APIError.badRequest("\(prefix)\(key): names must not be empty") }
                if name.utf8.count > limits.maxLabelNameBytes {
                    throw APIError.badRequest("\(prefix)\(key): the name '\(Self.printable(name))' is \(name.utf8.count) bytes; the limit is \(limits.maxLabelNameBytes) bytes")
                }
                guard case .string(let value)? = map[name] else {
                    throw APIError.badRequest("\(path): must be a string (got \(map[name]?.kindName ?? "nothing"))")
                }
                if value.utf8.count > limits.maxLabelValueBytes {
                    throw APIError.badRequest("\(path): is \(value.utf8.count) bytes; the limit is \(limits.maxLabelValueBytes) bytes")
                }
                result[name] = value
            }
            return result
        case let other?:
            throw APIError.badRequest("\(prefix)\(key): must be an object of strings (got \(other.kindName))")
        }
    }

    /// A field name fit to quote in a message: at most 64 characters, control characters escaped.
    static func printable(_ name: String) -> String {
        let short = name.count > 64 ? String(name.prefix(64)) + "…" : name
        return short.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
    }
}

extension JSONValue {
    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
