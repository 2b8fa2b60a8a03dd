import Foundation
import HeraldHTTP
import HeraldPluginHost

/// A configured destination: a plugin instance plus how the host may reach the network for it.
public final class Integration: Sendable {
    public let name: String
    public let instance: PluginInstance
    public let options: TransferOptions
    public var plugin: LoadedPlugin { instance.plugin }

    public init(name: String, instance: PluginInstance, options: TransferOptions) {
        self.name = name
        self.instance = instance
        self.options = options
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
