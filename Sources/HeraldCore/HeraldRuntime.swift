import Foundation
import HeraldHTTP
import HeraldPluginHost
import Logging

/// Everything a running Herald needs: the config, the loaded plugins, an instance per
/// integration, and the transfer engine. Building it never stops at the first problem: each
/// refused plugin or integration is reported and the rest start.
public final class HeraldRuntime: Sendable {
    public let config: HeraldConfig
    public let registry: PluginRegistry
    public let integrations: [String: Integration]
    /// Plugin refusals, config problems and failed integrations, one sentence each.
    public let problems: [String]
    public let deliverer: Deliverer

    public init(config: HeraldConfig, environment: PluginHostEnvironment = PluginHostEnvironment(),
                engine: TransferEngine = TransferEngine(), logger: Logger = Logger(label: "herald")) {
        self.config = config
        let registry = PluginRegistry.load(directories: config.pluginDirectories)
        var problems = registry.problems.map(\.message)
        let configErrors = config.validate(against: registry)
        problems += configErrors.map(\.description)
        let broken = Set(configErrors.compactMap { error in config.integrations.first { error.key.hasPrefix("integrations[\($0.index)]") }?.name })

        var integrations: [String: Integration] = [:]
        for entry in config.integrations where !broken.contains(entry.name) {
            guard let plugin = registry[entry.plugin] else { continue }
            do {
                let instance = try PluginInstance.create(plugin: plugin, name: entry.name, config: entry.settings, environment: environment)
                let options = TransferOptions(egress: Integration.egressPolicy(for: entry, plugin: plugin.descriptor),
                                              proxy: entry.proxy, caFile: entry.caFile)
                let renderer = Renderer(descriptor: plugin.descriptor, template: config.templateBody(for: entry, plugin: plugin.descriptor),
                                        keyword: entry.keyword)
                if let error = renderer.templateError {
                    logger.error("template refused; the plugin's default is used", metadata: ["integration": "\(entry.name)", "error": "\(error.message)"])
                }
                integrations[entry.name] = Integration(name: entry.name, instance: instance, options: options, renderer: renderer,
                                                       mentionTables: config.mentionTables(for: entry))
            } catch {
                problems.append(error.message)
            }
        }
        self.registry = registry
        self.integrations = integrations
        self.problems = problems
        self.deliverer = Deliverer(engine: engine, logger: logger)
    }

    public func shutdown() {
        integrations.values.forEach { $0.instance.destroy() }
        deliverer.engine.shutdown()
    }
}
