import Foundation
import HeraldHTTP
import HeraldPluginHost

/// A configured destination: a plugin instance plus how the host may reach the network for it.
public final class Integration: Sendable {
    public let name: String
    public let instance: PluginInstance
    public let options: TransferOptions
    /// The integration's template (or the plugin's default), keyword and size limit.
    public let renderer: Renderer
    /// The mapping tables its @mentions are resolved with.
    public let mentionTables: [MappingTable]
    public var plugin: LoadedPlugin { instance.plugin }
    /// The id kinds the plugin can @mention, from its manifest.
    public var mentionIDKinds: [String] { plugin.manifest?.mentionIDKinds ?? [] }

    public init(name: String, instance: PluginInstance, options: TransferOptions, renderer: Renderer? = nil, mentionTables: [MappingTable] = []) {
        self.name = name
        self.instance = instance
        self.options = options
        self.renderer = renderer ?? Renderer(descriptor: instance.plugin.descriptor, template: nil)
        self.mentionTables = mentionTables
    }

    /// The message for `snapshot` on this integration: rendered with its template and keyword,
    /// `members` resolved to @mentions. What did not go to plan (template refused, text cut,
    /// members not mentionable) is in `notes`, for the delivery record.
    public func compose(_ snapshot: IncidentSnapshot, mentioning members: [Member] = [], recipient: String = "",
                        idempotencyKey: String) throws(RenderError) -> ComposedMessage {
        var snapshot = snapshot
        var notes: [String] = []
        if !members.isEmpty {
            let (mentions, report) = MentionResolver.resolve(members, tables: mentionTables, acceptedIDKinds: mentionIDKinds)
            snapshot.mentions += mentions
            notes += report.unresolved.map(\.reason)
        }
        var (message, rendered) = try renderer.message(for: snapshot, idempotencyKey: idempotencyKey)
        message.recipient = recipient
        if let error = rendered.templateError { notes.insert("template error, the plugin's default template was used: \(error.message)", at: 0) }
        if rendered.truncated { notes.append("the text was cut to the plugin's limit of \(renderer.sizeLimit ?? 0) \(renderer.sizeUnit)") }
        if rendered.keywordAppended { notes.append("the keyword '\(renderer.keyword ?? "")' was appended") }
        return ComposedMessage(message: message, notes: notes)
    }

    /// The egress policy for `config` on `plugin`: the plugin's declared hosts (with
    /// `config:<field>` resolved to the host of that setting's URL) plus the operator's list.
    public static func egressPolicy(for config: HeraldConfig.Integration, plugin: PluginDescriptor) -> EgressPolicy {
        var hosts: [String] = []
        for entry in plugin.egressHosts {
            if entry.hasPrefix("config:") {
                let field = String(entry.dropFirst("config:".count))
                // The host as the engine will see it (libcurl's parser), not Foundation's reading.
                if let url = config.settings[field]?.stringValue, let host = EgressPolicy.host(of: url), !host.isEmpty {
                    hosts.append(host)
                }
            } else {
                hosts.append(entry)
            }
        }
        hosts += config.allowHosts
        return EgressPolicy(allowedHosts: Array(Set(hosts.map { $0.lowercased() })).sorted(), allowLoopback: config.allowLoopback)
    }
}

/// A message ready for `Deliverer.deliver`, and what rendering it had to note.
public struct ComposedMessage: Sendable {
    public var message: OutgoingMessage
    public var notes: [String]
}
