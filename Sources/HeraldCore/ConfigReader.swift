import Foundation
import HeraldPluginHost
import Yams

/// Walks the YAML tree, collecting errors with their marks instead of stopping at the first.
struct ConfigReader {
    let file: String
    let environment: [String: String]
    var errors: [ConfigError] = []

    init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
    }

    mutating func fail(_ node: Node, _ key: String, _ message: String) {
        let mark = node.mark
        errors.append(ConfigError(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, key: key, message: message))
    }

    func syntaxError(_ error: YamlError) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, key: "", message: "YAML syntax error: \(problem)")
        default:
            return ConfigError(file: file, line: 0, column: 0, key: "", message: "YAML error: \(error)")
        }
    }

    /// A mapping's values, and its key nodes (where a missing child is reported).
    struct Members {
        var values: [String: Node] = [:]
        var keys: [String: Node] = [:]
        subscript(name: String) -> Node? { values[name] }
    }

    /// A mapping's members by key; unknown and duplicate keys are errors.
    mutating func mapping(_ node: Node, _ key: String, known: [String]) -> Members? {
        guard let mapping = node.mapping else {
            fail(node, key, "must be a mapping (key: value)")
            return nil
        }
        var members = Members()
        for (k, v) in mapping {
            let name = k.string ?? ""
            let path = key.isEmpty ? name : "\(key).\(name)"
            if !known.contains(name) {
                fail(k, path, "unknown key '\(name)' (known: \(known.joined(separator: ", ")))")
            } else if members[name] != nil {
                fail(k, path, "appears twice")
            } else {
                members.values[name] = v
                members.keys[name] = k
            }
        }
        return members
    }

    mutating func sequence(_ node: Node, _ key: String) -> [Node] {
        guard let sequence = node.sequence else {
            fail(node, key, "must be a list")
            return []
        }
        return Array(sequence)
    }

    /// A scalar string with `${ENV}` substituted.
    mutating func string(_ node: Node, _ key: String) -> String? {
        guard let scalar = node.scalar else {
            fail(node, key, "must be a string")
            return nil
        }
        var fromEnvironment = false
        return substitute(scalar.string, node, key, &fromEnvironment)
    }

    mutating func strings(_ node: Node, _ key: String) -> [String] {
        sequence(node, key).enumerated().compactMap { string($1, "\(key)[\($0)]") }
    }

    mutating func bool(_ node: Node, _ key: String) -> Bool? {
        guard let value = node.bool else {
            fail(node, key, "must be true or false")
            return nil
        }
        return value
    }

    /// Replaces `${NAME}` with the environment's value; sets `fromEnvironment` when it did.
    mutating func substitute(_ text: String, _ node: Node, _ key: String, _ fromEnvironment: inout Bool) -> String? {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                fail(node, key, "has '${' without a closing '}'")
                return nil
            }
            let name = String(rest[start.upperBound..<end])
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                fail(node, key, "'${\(name)}' is not a valid environment variable reference")
                return nil
            }
            guard let value = environment[name] else {
                fail(node, key, "environment variable \(name) is not set")
                return nil
            }
            result += value
            fromEnvironment = true
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    /// YAML → JSON for plugin settings, remembering where each path was.
    mutating func json(_ node: Node, _ key: String, _ path: String, _ locations: inout [String: HeraldConfig.Location],
                               _ environmentPaths: inout Set<String>) -> JSONValue? {
        if !path.isEmpty { locations[path] = HeraldConfig.Location(line: node.mark?.line ?? 0, column: node.mark?.column ?? 0) }
        let fullKey = path.isEmpty ? key : "\(key).\(path)"
        switch node {
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (k, v) in mapping {
                guard let name = k.string else { fail(k, fullKey, "keys must be strings"); continue }
                if members[name] != nil { fail(k, "\(fullKey).\(name)", "appears twice"); continue }
                members[name] = json(v, key, path.isEmpty ? name : "\(path).\(name)", &locations, &environmentPaths)
            }
            return .object(members)
        case .sequence(let sequence):
            return .array(sequence.enumerated().compactMap { json($1, key, "\(path)[\($0)]", &locations, &environmentPaths) })
        case .scalar(let scalar):
            // Only plain scalars are typed, by the YAML 1.2 core schema; quoted ones are strings.
            if scalar.style == .plain, let typed = coreSchemaValue(scalar.string) { return typed }
            var fromEnvironment = false
            let text = substitute(scalar.string, node, fullKey, &fromEnvironment)
            if fromEnvironment { environmentPaths.insert(path) }
            return text.map(JSONValue.string)
        }
    }
}
