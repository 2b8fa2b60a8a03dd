import Foundation

/// Validates JSON values against the subset of JSON Schema (draft 2020-12) that plugin configs use:
/// `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`, `pattern`,
/// `minLength`/`maxLength`, `minimum`/`maximum`, `minItems`/`maxItems`, `format: uri`.
/// Schemas are checked when a plugin loads, so a bad schema is the plugin's fault, reported once.
public struct JSONSchema: Sendable {
    public let root: JSONValue

    /// Keywords the validator understands; anything else in a schema is refused, so a plugin
    /// author never believes a constraint is enforced when it is not. Annotations are allowed.
    static let keywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "enum", "const", "pattern",
        "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "format",
        // annotations
        "$schema", "$id", "title", "description", "default", "examples", "writeOnly", "readOnly", "deprecated",
    ]
    static let types: Set<String> = ["null", "boolean", "integer", "number", "string", "array", "object"]

    /// A problem with a value, located by a path such as `headers.Authorization`.
    public struct Violation: Sendable, Equatable, CustomStringConvertible {
        public let path: String
        public let message: String
        public var description: String { path.isEmpty ? message : "'\(path)' \(message)" }
    }

    /// Parses and checks a schema. Throws a sentence naming the bad keyword's location.
    public init(text: String) throws(SchemaError) {
        let value: JSONValue
        do { value = try JSONValue.parse(text) } catch { throw SchemaError(message: "is not valid JSON (\(error))") }
        try self.init(value)
    }

    public init(_ root: JSONValue) throws(SchemaError) {
        try Self.check(schema: root, at: "")
        self.root = root
    }

    public struct SchemaError: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Every violation of `value`, in document order; empty when valid.
    public func validate(_ value: JSONValue) -> [Violation] {
        var out: [Violation] = []
        Self.validate(value, root, "", &out)
        return out
    }

    /// Paths (dotted) of properties marked `"writeOnly": true`: secrets that must never be shown.
    public var secretPaths: Set<String> {
        var paths: Set<String> = []
        func walk(_ schema: JSONValue, _ path: String) {
            if schema["writeOnly"]?.boolValue == true { paths.insert(path) }
            for (name, sub) in schema["properties"]?.objectValue ?? [:] { walk(sub, join(path, name)) }
            if let items = schema["items"] { walk(items, path + "[]") }
            if case .object = schema["additionalProperties"] ?? .null {
                walk(schema["additionalProperties"]!, join(path, "*"))
            }
        }
        walk(root, "")
        return paths
    }

    // MARK: - Checking the schema itself

    private static func check(schema: JSONValue, at path: String) throws(SchemaError) {
        guard case .object(let members) = schema else {
            throw SchemaError(message: "schema at '\(path.isEmpty ? "/" : path)' must be an object")
        }
        func fail(_ what: String) -> SchemaError {
            SchemaError(message: "schema at '\(path.isEmpty ? "/" : path)': \(what)")
        }
        for key in members.keys where !keywords.contains(key) {
            throw fail("keyword '\(key)' is not supported by Herald's validator")
        }
        if let type = members["type"] {
            let names = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            if names.isEmpty || names.contains(where: { !types.contains($0) }) { throw fail("'type' names an unknown type") }
        }
        if let properties = members["properties"] {
            guard let props = properties.objectValue else { throw fail("'properties' must be an object") }
            for (name, sub) in props { try check(schema: sub, at: join(path, name)) }
        }
        if let required = members["required"], required.arrayValue?.allSatisfy({ $0.stringValue != nil }) != true {
            throw fail("'required' must be an array of strings")
        }
        if let extra = members["additionalProperties"] {
            if case .object = extra { try check(schema: extra, at: join(path, "*")) } else if extra.boolValue == nil {
                throw fail("'additionalProperties' must be a boolean or a schema")
            }
        }
        if let items = members["items"] { try check(schema: items, at: path + "[]") }
        if let e = members["enum"], e.arrayValue == nil { throw fail("'enum' must be an array") }
        if let pattern = members["pattern"] {
            guard let p = pattern.stringValue, (try? NSRegularExpression(pattern: p)) != nil else {
                throw fail("'pattern' is not a valid regular expression")
            }
        }
        for key in ["minLength", "maxLength", "minItems", "maxItems"] {
            if let n = members[key], n.typeName != "integer" || n.numberValue! < 0 { throw fail("'\(key)' must be a non-negative integer") }
        }
        for key in ["minimum", "maximum"] where members[key] != nil && members[key]?.numberValue == nil {
            throw fail("'\(key)' must be a number")
        }
    }

    // MARK: - Validating values

    private static func validate(_ value: JSONValue, _ schema: JSONValue, _ path: String, _ out: inout [Violation]) {
        func add(_ message: String) { out.append(Violation(path: path, message: message)) }

        if let type = schema["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue!]
            let actual = value.typeName
            let ok = allowed.contains(actual) || (actual == "integer" && allowed.contains("number"))
            if !ok {
                add("must be \(allowed.map(article).joined(separator: " or ")), not \(article(actual))")
                return
            }
        }
        if let options = schema["enum"]?.arrayValue, !options.contains(value) {
            add("must be one of \(options.map(\.jsonText).joined(separator: ", "))")
        }
        if let constant = schema["const"], constant != value { add("must be \(constant.jsonText)") }

        switch value {
        case .string(let s):
            let length = s.unicodeScalars.count
            if let min = schema["minLength"]?.numberValue, Double(length) < min { add("must be at least \(Int(min)) characters long") }
            if let max = schema["maxLength"]?.numberValue, Double(length) > max { add("must be at most \(Int(max)) characters long") }
            if let pattern = schema["pattern"]?.stringValue, let regex = try? NSRegularExpression(pattern: pattern),
                regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) == nil
            {
                add("does not match the pattern \(pattern)")
            }
            if schema["format"]?.stringValue == "uri", !isAbsoluteURI(s) { add("must be an absolute URI such as https://host/path") }
        case .number(let n):
            if let min = schema["minimum"]?.numberValue, n < min { add("must be at least \(format(min))") }
            if let max = schema["maximum"]?.numberValue, n > max { add("must be at most \(format(max))") }
        case .array(let items):
            if let min = schema["minItems"]?.numberValue, Double(items.count) < min { add("must have at least \(Int(min)) items") }
            if let max = schema["maxItems"]?.numberValue, Double(items.count) > max { add("must have at most \(Int(max)) items") }
            if let itemSchema = schema["items"] {
                for (i, item) in items.enumerated() { validate(item, itemSchema, "\(path)[\(i)]", &out) }
            }
        case .object(let members):
            let properties = schema["properties"]?.objectValue ?? [:]
            for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
                out.append(Violation(path: join(path, name), message: "is required"))
            }
            for name in members.keys.sorted() {
                let sub = join(path, name)
                if let propertySchema = properties[name] {
                    validate(members[name]!, propertySchema, sub, &out)
                } else if let extra = schema["additionalProperties"] {
                    if extra == .bool(false) {
                        let known = properties.keys.sorted().joined(separator: ", ")
                        out.append(Violation(path: sub, message: "is not a known setting (known: \(known))"))
                    } else if case .object = extra {
                        validate(members[name]!, extra, sub, &out)
                    }
                }
            }
        default:
            break
        }
    }

    private static func article(_ type: String) -> String {
        ["integer", "object", "array"].contains(type) ? "an \(type)" : "a \(type)"
    }

    private static func format(_ n: Double) -> String {
        n.rounded() == n ? String(Int64(n)) : String(n)
    }

    private static func isAbsoluteURI(_ s: String) -> Bool {
        guard let components = URLComponents(string: s), let scheme = components.scheme, !scheme.isEmpty else { return false }
        return components.host?.isEmpty == false || scheme == "mailto"
    }
}

private func join(_ path: String, _ name: String) -> String {
    path.isEmpty ? name : "\(path).\(name)"
}
