import Foundation
import HeraldPluginHost
import Yams

/// The `templates:` and `mapping_tables:` sections of `herald.yaml`, and what an integration
/// takes from them (`template:`, `keyword:`, `mention_tables:`).
///
/// ```yaml
/// templates:
///   ops:                        # one template: a body per channel
///     default: "{{title}} ({{severity}})"
///     dingtalk: |               # a plugin id, then a channel kind, then `default`
///       #### {{title}} #alert
///       {{description}}
/// mapping_tables:
///   zoom-jids:
///     id_kind: jid              # what the values are, as the plugin reads them
///     key: email                # which member field looks them up: email, phone or name
///     entries: {ann@example.com: "kdykjnimt4kk4mmgs4v5ag@xmpp.zoom.us"}
/// integrations:
///   - name: ops-dingtalk
///     plugin: dingtalk
///     template: ops
///     keyword: "#alert"         # every message through this integration contains it
/// ```
extension HeraldConfig {
    public struct Template: Sendable {
        public var name: String
        /// Body by key: a plugin id, a channel kind (`group_bot`, `sms`...) or `default`.
        public var bodies: [String: String]
        /// Where each body is in the file.
        public var locations: [String: Location]
        public var location: Location

        /// The body for a plugin: by its id, then by its channel kind, then `default`.
        public func body(pluginID: String, channelKind: ChannelKind) -> (key: String, text: String)? {
            for key in [pluginID, channelKind.description, "default"] {
                if let text = bodies[key] { return (key, text) }
            }
            return nil
        }
    }

    /// The template an integration renders with (nil: the plugin's default), after validation.
    public func templateBody(for integration: Integration, plugin: PluginDescriptor) -> String? {
        guard let name = integration.template else { return nil }
        return templates[name]?.body(pluginID: plugin.id, channelKind: plugin.channelKind)?.text
    }

    /// The mapping tables an integration resolves mentions with, in the order it names them
    /// (all tables, in file order, when it names none).
    public func mentionTables(for integration: Integration) -> [MappingTable] {
        guard let names = integration.mentionTables else { return mappingTables }
        return names.compactMap { name in mappingTables.first { $0.name == name } }
    }

    /// Template, keyword and mapping-table problems of one integration whose plugin is loaded:
    /// an unknown template or table, a template without a body for the plugin, a body that does
    /// not compile for the plugin's text format, or one that cannot produce the keyword.
    func renderingErrors(of integration: Integration, plugin: PluginDescriptor) -> [ConfigError] {
        let key = "integrations[\(integration.index)]"
        var errors: [ConfigError] = []
        func at(_ name: String) -> Location { integration.locations[name] ?? integration.locations["@plugin"] ?? Location(line: 0, column: 0) }
        func fail(_ location: Location, _ key: String, _ message: String) {
            errors.append(ConfigError(file: file, line: location.line, column: location.column, key: key, message: message))
        }
        for name in integration.mentionTables ?? [] where !mappingTables.contains(where: { $0.name == name }) {
            let known = mappingTables.map(\.name).joined(separator: ", ")
            fail(at("@mention_tables"), key + ".mention_tables", "no mapping table '\(name)' (defined: \(known.isEmpty ? "none" : known))")
        }
        guard let name = integration.template else { return errors }
        guard let template = templates[name] else {
            let known = templates.keys.sorted().joined(separator: ", ")
            fail(at("@template"), key + ".template", "no template '\(name)' (defined: \(known.isEmpty ? "none" : known))")
            return errors
        }
        guard let (bodyKey, body) = template.body(pluginID: plugin.id, channelKind: plugin.channelKind) else {
            fail(template.location, "templates.\(name)",
                 "has no body for integration '\(integration.name)' (plugin \(plugin.id)); add '\(plugin.id):', '\(plugin.channelKind):' or 'default:'")
            return errors
        }
        let bodyAt = template.locations[bodyKey] ?? template.location
        do {
            let compiled = try Renderer.compile(body, format: plugin.textFormat)
            if let keyword = integration.keyword {
                do {
                    try Renderer.checkKeyword(compiled, keyword: keyword)
                } catch {
                    fail(bodyAt, "templates.\(name).\(bodyKey)", "cannot be used by integration '\(integration.name)', whose keyword is '\(keyword)': \(error.message)")
                }
            }
        } catch {
            fail(bodyAt, "templates.\(name).\(bodyKey)", "\(error.message) (rendering for plugin \(plugin.id), format \(plugin.textFormat))")
        }
        return errors
    }
}

extension ConfigReader {
    mutating func templates(_ node: Node) -> [String: HeraldConfig.Template] {
        guard let members = node.mapping else {
            fail(node, "templates", "must be a mapping of template names to their bodies")
            return [:]
        }
        var templates: [String: HeraldConfig.Template] = [:]
        for (nameNode, bodiesNode) in members {
            guard let name = string(nameNode, "templates"), isPlainName(name, nameNode, "templates") else { continue }
            let key = "templates.\(name)"
            if templates[name] != nil { fail(nameNode, key, "appears twice"); continue }
            guard let bodies = bodiesNode.mapping else {
                fail(bodiesNode, key, "must map channels (a plugin id, a channel kind or 'default') to template bodies")
                continue
            }
            var template = HeraldConfig.Template(name: name, bodies: [:], locations: [:], location: location(nameNode))
            for (channelNode, bodyNode) in bodies {
                guard let channel = string(channelNode, key) else { continue }
                if template.bodies[channel] != nil { fail(channelNode, "\(key).\(channel)", "appears twice"); continue }
                // Template text is taken as written: `${...}` is not an environment reference here.
                guard let body = bodyNode.scalar?.string else { fail(bodyNode, "\(key).\(channel)", "must be a string"); continue }
                template.bodies[channel] = body
                template.locations[channel] = location(bodyNode)
            }
            templates[name] = template
        }
        return templates
    }

    mutating func mappingTables(_ node: Node) -> [MappingTable] {
        guard let members = node.mapping else {
            fail(node, "mapping_tables", "must be a mapping of table names to tables")
            return []
        }
        var tables: [MappingTable] = []
        for (nameNode, tableNode) in members {
            guard let name = string(nameNode, "mapping_tables"), isPlainName(name, nameNode, "mapping_tables") else { continue }
            let key = "mapping_tables.\(name)"
            if tables.contains(where: { $0.name == name }) { fail(nameNode, key, "appears twice"); continue }
            guard let table = mapping(tableNode, key, known: ["id_kind", "key", "entries"]) else { continue }
            guard let kindNode = table["id_kind"], let idKind = string(kindNode, key + ".id_kind") else {
                if table["id_kind"] == nil { fail(tableNode, key, "needs an 'id_kind', the kind of id its values are (e.g. jid, user_id, open_id)") }
                continue
            }
            var lookup = MappingTable.Key.email
            if let keyNode = table["key"], let text = string(keyNode, key + ".key") {
                guard let k = MappingTable.Key(rawValue: text) else {
                    fail(keyNode, key + ".key", "must be email, phone or name (got '\(text)')")
                    continue
                }
                lookup = k
            }
            var entries: [String: String] = [:]
            if let entriesNode = table["entries"] {
                guard let pairs = entriesNode.mapping else { fail(entriesNode, key + ".entries", "must map member \(lookup.rawValue)s to ids"); continue }
                for (k, v) in pairs {
                    guard let member = string(k, key + ".entries"), let id = string(v, "\(key).entries.\(member)") else { continue }
                    // Emails compare without case, as mail systems do.
                    entries[lookup == .email ? member.lowercased() : member] = id
                }
            }
            tables.append(MappingTable(name: name, idKind: idKind, key: lookup, entries: entries))
        }
        return tables
    }

    func location(_ node: Node) -> HeraldConfig.Location {
        HeraldConfig.Location(line: node.mark?.line ?? 0, column: node.mark?.column ?? 0)
    }

    mutating func isPlainName(_ name: String, _ node: Node, _ key: String) -> Bool {
        if !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) { return true }
        fail(node, "\(key).\(name)", "names must be letters, digits, '-' or '_'")
        return false
    }
}
