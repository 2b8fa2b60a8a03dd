import ArgumentParser
import HeraldCore
import HeraldPluginHost

extension Herald {
    struct Config: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Work with herald.yaml.", subcommands: [Check.self])
    }
}

extension Herald.Config {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a config file: its structure, its plugins, and every integration's settings against its plugin's schema.")
        @Argument(help: "The config file.") var file: String = "herald.yaml"

        func run() async throws {
            bootstrapLogging(verbose: false)
            let config: HeraldConfig
            do { config = try HeraldConfig.load(file: file) } catch { throw CLIError(error.description) }
            let registry = PluginRegistry.load(directories: config.pluginDirectories)
            var failed = false
            for problem in registry.problems {
                warn("plugin refused: \(problem.message)")
            }
            let errors = config.validate(against: registry)
            errors.forEach { warn($0.description) }
            failed = !errors.isEmpty
            print("plugins: \(registry.plugins.keys.sorted().joined(separator: ", "))")
            for integration in config.integrations {
                let schema = registry[integration.plugin]?.descriptor.configSchema
                let policy = registry[integration.plugin].map { Integration.egressPolicy(for: integration, plugin: $0.descriptor) }
                print("integration \(integration.name) (plugin \(integration.plugin))")
                print("  settings: \(integration.redactedSettings(schema: schema).jsonText)")
                if let policy { print("  egress:   \(policy.allowedHosts.joined(separator: ", "))\(policy.allowLoopback ? " (loopback allowed)" : "")") }
            }
            if failed { throw ExitCode.failure }
            print("\(file): OK")
        }
    }
}
