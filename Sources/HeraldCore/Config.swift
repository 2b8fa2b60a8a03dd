import Foundation
import HeraldPluginHost
import Yams

/// `herald.yaml`: where plugins live, which integrations exist, where the store is.
///
/// ```yaml
/// plugin_dirs: [.build/plugins]
/// store: {path: data/herald.sqlite}
/// integrations:
///   - name: ops-webhook
///     plugin: webhook
///     settings: {url: "https://hooks.example.com/herald", secret: "${WEBHOOK_SECRET}"}
///     egress: {allow: [hooks.example.com], allow_loopback: false}
///     proxy: http://proxy.internal:3128
/// ```
/// Relative paths are relative to the file. `${NAME}` in any string takes the environment
/// variable NAME; such values are secrets and never printed.
public struct HeraldConfig: Sendable {
    public struct Location: Sendable, Equatable {
        public let line: Int
        public let column: Int
    }

    public struct Integration: Sendable {
        public var name: String
        public var plugin: String
        public var settings: JSONValue
        /// Settings paths whose values came from the environment: secrets whatever the schema says.
        public var environmentPaths: Set<String>
        public var allowHosts: [String]
        public var allowLoopback: Bool
        public var proxy: String?
        public var caFile: String?
        /// A name under `templates:`; nil: the plugin's default template.
        public var template: String?
        /// Text every message through this integration must contain (a bot's custom keyword).
        public var keyword: String?
        /// Names under `mapping_tables:` for @mentions, in order; nil: all of them.
        public var mentionTables: [String]?
        /// Which later changes a group chat told about an incident hears (empty: all).
        public var updateEvents: Set<MessageEvent> = []
        public var updateSeverities: Set<Severity> = []
        /// Messages per window to one destination; nil: the plugin's declared quota.
        public var rateLimit: RateLimit?
        /// Where each settings path is in the file, for error messages.
        public var locations: [String: Location]
        public var index: Int
    }

    public var file: String
    public var pluginDirectories: [String]
    public var storePath: String
    public var integrations: [Integration]
    public var templates: [String: Template] = [:]
    public var mappingTables: [MappingTable] = []
    public var server = ServerSettings()
    public var policy = EscalationPolicy()
    /// Where policy entries are, for messages (`teams.<name>`, `services.<name>.rules[i].levels[j]`...).
    public var policyLocations: [String: Location] = [:]

    public func integration(named name: String) -> Integration? { integrations.first { $0.name == name } }

    /// Reads and checks the structure of a config file (plugin settings are checked later,
    /// against each plugin's schema, by `validate(against:)`).
    public static func load(file: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigErrors) -> HeraldConfig {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigErrors(errors: [ConfigError(file: file, line: 0, column: 0, key: "", message: "cannot read the file")])
        }
        return try parse(String(decoding: data, as: UTF8.self), file: file, environment: environment)
    }

    public static func parse(_ text: String, file: String, environment: [String: String]) throws(ConfigErrors) -> HeraldConfig {
        var reader = ConfigReader(file: file, environment: environment)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigErrors(errors: [reader.syntaxError(error)])
        } catch {
            throw ConfigErrors(errors: [ConfigError(file: file, line: 0, column: 0, key: "", message: "\(error)")])
        }
        let base = URL(fileURLWithPath: file).deletingLastPathComponent().path
        var config = HeraldConfig(file: file, pluginDirectories: [], storePath: base + "/data/herald.sqlite", integrations: [])
        guard let root, let top = reader.mapping(root, "", known: ["plugin_dirs", "store", "server", "templates", "mapping_tables", "integrations", "members", "teams", "services"]) else {
            throw ConfigErrors(errors: reader.errors.isEmpty
                ? [ConfigError(file: file, line: 0, column: 0, key: "", message: "is empty; see herald.example.yaml")] : reader.errors)
        }
        if let dirs = top["plugin_dirs"] {
            config.pluginDirectories = reader.strings(dirs, "plugin_dirs").map { resolve($0, against: base) }
        } else {
            reader.fail(root, "", "needs 'plugin_dirs', the folders that hold plugins")
        }
        if let store = top["store"], let members = reader.mapping(store, "store", known: ["path"]) {
            if let path = members["path"], let text = reader.string(path, "store.path") { config.storePath = resolve(text, against: base) }
        }
        if let node = top["server"] { config.server = reader.server(node) }
        if let node = top["members"] { reader.members(node, into: &config.policy, locations: &config.policyLocations) }
        if let node = top["teams"] { reader.teams(node, into: &config.policy, locations: &config.policyLocations) }
        if let node = top["services"] { reader.services(node, into: &config.policy, locations: &config.policyLocations) }
        if let node = top["templates"] { config.templates = reader.templates(node) }
        if let node = top["mapping_tables"] { config.mappingTables = reader.mappingTables(node) }
        if let list = top["integrations"] {
            var seen: [String: Int] = [:]
            for (i, node) in reader.sequence(list, "integrations").enumerated() {
                guard let integration = reader.integration(node, index: i, base: base) else { continue }
                if let first = seen[integration.name] {
                    reader.fail(node, "integrations[\(i)].name", "'\(integration.name)' is already the name of integrations[\(first)]")
                }
                seen[integration.name] = i
                config.integrations.append(integration)
            }
        }
        if !reader.errors.isEmpty { throw ConfigErrors(errors: reader.errors) }
        let policyErrors = config.policyErrors()
        if !policyErrors.isEmpty { throw ConfigErrors(errors: policyErrors) }
        return config
    }

    private static func resolve(_ path: String, against base: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: base).appendingPathComponent(path).standardizedFileURL.path
    }

    /// Checks every integration against its plugin: the plugin exists, and the settings match
    /// its schema. Returns all problems found.
    public func validate(against registry: PluginRegistry) -> [ConfigError] {
        var errors: [ConfigError] = []
        for integration in integrations {
            let key = "integrations[\(integration.index)]"
            guard let plugin = registry[integration.plugin] else {
                let known = registry.plugins.keys.sorted().joined(separator: ", ")
                let at = integration.locations["@plugin"] ?? Location(line: 0, column: 0)
                errors.append(ConfigError(file: file, line: at.line, column: at.column, key: key + ".plugin",
                    message: "no plugin '\(integration.plugin)' is loaded (loaded: \(known.isEmpty ? "none" : known))"))
                continue
            }
            for violation in plugin.descriptor.configSchema.validate(integration.settings) {
                // A missing key is reported where its parent is; anything else where it is.
                let at = integration.locations[violation.path] ?? integration.locations[parent(of: violation.path)]
                    ?? integration.locations["@settings"] ?? Location(line: 0, column: 0)
                errors.append(ConfigError(file: file, line: at.line, column: at.column, key: "\(key).settings.\(violation.path)",
                                          message: violation.message))
            }
            errors += renderingErrors(of: integration, plugin: plugin.descriptor)
        }
        return errors
    }

    private func parent(of path: String) -> String {
        guard let dot = path.lastIndex(of: ".") else { return "@settings" }
        return String(path[..<dot])
    }
}

extension HeraldConfig.Integration {
    /// Paths that must never be shown: the plugin's `writeOnly` settings and `${ENV}` values.
    public func secretPaths(schema: JSONSchema?) -> Set<String> {
        environmentPaths.union(schema?.secretPaths ?? [])
    }

    /// The settings with every secret replaced, for display.
    public func redactedSettings(schema: JSONSchema?) -> JSONValue {
        let secrets = secretPaths(schema: schema)
        func walk(_ value: JSONValue, _ path: String) -> JSONValue {
            if secrets.contains(path) || secrets.contains(wildcard(path)) { return .string("(secret)") }
            switch value {
            case .object(let members):
                return .object(members.reduce(into: [:]) { $0[$1.key] = walk($1.value, path.isEmpty ? $1.key : "\(path).\($1.key)") })
            case .array(let items):
                return .array(items.enumerated().map { walk($1, "\(path)[\($0)]") })
            default:
                return value
            }
        }
        return walk(settings, "")
    }

    private func wildcard(_ path: String) -> String {
        guard let dot = path.lastIndex(of: ".") else { return path }
        return path[..<dot] + ".*"
    }
}

/// The YAML 1.2 core schema's reading of a plain scalar; nil for a string. Written out because
/// YAML 1.1 rules (sexagesimal numbers, `yes`/`no`) would turn URLs and words into numbers.
func coreSchemaValue(_ text: String) -> JSONValue? {
    func matches(_ pattern: String) -> Bool { text.range(of: "^(?:\(pattern))$", options: .regularExpression) != nil }
    if matches("~|null|Null|NULL|") { return .null }
    if matches("true|True|TRUE") { return .bool(true) }
    if matches("false|False|FALSE") { return .bool(false) }
    if matches("[-+]?[0-9]+") { return Double(text).map(JSONValue.number) }
    if matches("0x[0-9a-fA-F]+") { return UInt64(text.dropFirst(2), radix: 16).map { .number(Double($0)) } }
    if matches("0o[0-7]+") { return UInt64(text.dropFirst(2), radix: 8).map { .number(Double($0)) } }
    if matches("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?") { return Double(text).map(JSONValue.number) }
    return nil
}

extension ConfigReader {
    mutating func integration(_ node: Node, index: Int, base: String) -> HeraldConfig.Integration? {
        let key = "integrations[\(index)]"
        guard let members = mapping(node, key, known: ["name", "plugin", "settings", "egress", "proxy", "ca_file", "template", "keyword", "mention_tables", "updates", "rate_limit"]) else { return nil }
        var locations: [String: HeraldConfig.Location] = [:]

        guard let nameNode = members["name"] else { fail(node, key, "needs a 'name'"); return nil }
        guard let name = string(nameNode, key + ".name") else { return nil }
        if name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) {
            fail(nameNode, key + ".name", "must be letters, digits, '-' or '_' (got '\(name)')")
        }
        guard let pluginNode = members["plugin"] else { fail(node, key, "needs a 'plugin' (a plugin id such as webhook)"); return nil }
        guard let plugin = string(pluginNode, key + ".plugin") else { return nil }
        locations["@plugin"] = location(pluginNode)

        var settings = JSONValue.object([:])
        var environmentPaths: Set<String> = []
        if let settingsNode = members["settings"] {
            locations["@settings"] = location(members.keys["settings"]!)
            settings = json(settingsNode, key + ".settings", "", &locations, &environmentPaths) ?? .object([:])
            if case .object = settings {} else { fail(settingsNode, key + ".settings", "must be a mapping") }
        } else {
            locations["@settings"] = location(node)
        }

        var allowHosts: [String] = []
        var allowLoopback = false
        if let egressNode = members["egress"], let egress = mapping(egressNode, key + ".egress", known: ["allow", "allow_loopback"]) {
            if let allow = egress["allow"] {
                allowHosts = strings(allow, key + ".egress.allow")
                for (i, host) in allowHosts.enumerated() where host.isEmpty || host.contains("/") || host.contains(":") && !host.hasPrefix("[") && host.split(separator: ":").count == 2 {
                    fail(allow, "\(key).egress.allow[\(i)]", "'\(host)' must be a host name (no scheme, path or port)")
                }
            }
            if let loopback = egress["allow_loopback"] { allowLoopback = bool(loopback, key + ".egress.allow_loopback") ?? false }
        }
        var proxy: String?
        if let proxyNode = members["proxy"], let text = string(proxyNode, key + ".proxy") {
            let scheme = text.split(separator: ":").first.map { $0.lowercased() } ?? ""
            if !["http", "https", "socks5", "socks5h"].contains(scheme) || !text.contains("://") {
                fail(proxyNode, key + ".proxy", "must be a proxy URL such as http://proxy.internal:3128 (http, https, socks5 or socks5h)")
            }
            proxy = text
        }
        var caFile: String?
        if let caNode = members["ca_file"], let text = string(caNode, key + ".ca_file") {
            let path = text.hasPrefix("/") ? text : URL(fileURLWithPath: base).appendingPathComponent(text).standardizedFileURL.path
            if !FileManager.default.fileExists(atPath: path) { fail(caNode, key + ".ca_file", "\(path) does not exist") }
            caFile = path
        }
        var template: String?
        if let node = members["template"] {
            template = string(node, key + ".template")
            locations["@template"] = location(node)
        }
        var keyword: String?
        if let node = members["keyword"], let text = string(node, key + ".keyword") {
            if text.isEmpty || text.contains(where: \.isNewline) { fail(node, key + ".keyword", "must be non-empty text on one line") }
            keyword = text
        }
        var mentionTables: [String]?
        if let node = members["mention_tables"] {
            mentionTables = strings(node, key + ".mention_tables")
            locations["@mention_tables"] = location(node)
        }
        var result = HeraldConfig.Integration(name: name, plugin: plugin, settings: settings, environmentPaths: environmentPaths,
                                              allowHosts: allowHosts, allowLoopback: allowLoopback, proxy: proxy, caFile: caFile,
                                              template: template, keyword: keyword, mentionTables: mentionTables,
                                              locations: locations, index: index)
        if let node = members["updates"], let updates = mapping(node, key + ".updates", known: ["events", "severities"]) {
            let events: [MessageEvent] = [.acknowledged, .snoozed, .resolved, .closed]
            let eventNames = updates["events"].map { strings($0, key + ".updates.events") } ?? []
            for (i, text) in eventNames.enumerated() {
                if let e = events.first(where: { $0.description == text }) { result.updateEvents.insert(e) }
                else { fail(updates["events"]!, "\(key).updates.events[\(i)]", "must be one of \(events.map(\.description).joined(separator: ", ")) (got '\(text)')") }
            }
            let severityNames = updates["severities"].map { strings($0, key + ".updates.severities") } ?? []
            for (i, text) in severityNames.enumerated() {
                if let s = Severity(name: text) { result.updateSeverities.insert(s) }
                else { fail(updates["severities"]!, "\(key).updates.severities[\(i)]", "must be critical, warning or info (got '\(text)')") }
            }
        }
        if let node = members["rate_limit"] { result.rateLimit = rateLimit(node, key + ".rate_limit") }
        return result
    }
}
