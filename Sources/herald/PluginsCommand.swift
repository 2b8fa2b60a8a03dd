import ArgumentParser
import Foundation
import HeraldCore
import HeraldPluginHost

#if canImport(Glibc)
import Glibc
#endif

extension Herald {
    struct Plugins: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, inspect and check channel plugins.",
            subcommands: [List.self, Inspect.self, Check.self]
        )
    }
}

extension Herald.Plugins {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the plugins in the configured directories (reads manifests only; runs no plugin code).")
        @OptionGroup var options: ConfigOptions
        @Option(name: .customLong("plugin-dir"), help: "A plugin directory to list instead of the config's.")
        var directories: [String] = []

        func run() async throws {
            let dirs = directories.isEmpty ? try options.load().pluginDirectories : directories
            let (manifests, problems) = PluginManifest.discover(in: dirs)
            if manifests.isEmpty && problems.isEmpty { print("no plugins in \(dirs.joined(separator: ", "))") }
            for m in manifests.sorted(by: { $0.id < $1.id }) {
                print("\(m.id.padding(toLength: 14, withPad: " ", startingAt: 0)) \(m.version.padding(toLength: 9, withPad: " ", startingAt: 0)) \(m.channelKind.padding(toLength: 10, withPad: " ", startingAt: 0)) \(m.name)  (\(m.libraryPath))")
            }
            problems.forEach { warn("refused: \($0.message)") }
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load one plugin and show its descriptor, config schema, egress hosts and template.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The plugin id.") var id: String

        func run() async throws {
            let config = try options.load()
            let registry = PluginRegistry.load(directories: config.pluginDirectories)
            guard let plugin = registry[id] else {
                registry.problems.forEach { warn("refused: \($0.message)") }
                throw CLIError("no plugin '\(id)' in \(config.pluginDirectories.joined(separator: ", ")) (loaded: \(registry.plugins.keys.sorted().joined(separator: ", ")))")
            }
            let d = plugin.descriptor
            print("""
            id:            \(d.id)
            name:          \(d.name)
            version:       \(d.version)
            license:       \(d.license)
            file:          \(plugin.path)
            abi:           1.\(d.abiMinor)
            channel kind:  \(d.channelKind)
            text format:   \(d.textFormat)
            size limit:    \(d.sizeLimit.map { "\($0) \(d.sizeUnit)" } ?? "none")
            capabilities:  \(d.capabilities)
            egress hosts:  \(d.egressHosts.isEmpty ? "none" : d.egressHosts.joined(separator: ", "))
            config schema:
            \(prettyJSON(d.configSchemaText))
            default template:
            \(d.defaultTemplate.isEmpty ? "(none)" : d.defaultTemplate)
            """)
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Conformance check for a plugin .so: loading, descriptor, requests, response classification.",
            discussion: "Runs the plugin in this process against sample messages and canned responses. No network traffic is sent.")
        @Argument(help: "Path to the plugin's shared object.") var path: String
        @Option(help: "Instance config as JSON (default: built from the schema's examples, defaults and bounds).")
        var config: String?

        func run() async throws {
            bootstrapLogging(verbose: false)
            var check = ConformanceCheck()
            check.onPhase = { CrashReporter.phase($0) }
            CrashReporter.install(plugin: path)
            let explicit = try config.map { text -> JSONValue in
                do { return try JSONValue.parse(text) } catch { throw CLIError("--config is not valid JSON: \(error)") }
            }
            check.run(library: path, config: explicit)
            for finding in check.findings { print("\(finding.passed ? "✔" : "✘") \(finding.text)") }
            let passed = check.findings.count - check.failures
            print("\(passed) passed, \(check.failures) failed")
            if check.failures > 0 { throw ExitCode.failure }
        }
    }
}

func prettyJSON(_ text: String) -> String {
    guard let data = text.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data),
          let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) else { return text }
    return String(decoding: pretty, as: UTF8.self)
}

/// A plugin that crashes takes the process with it; this at least says which step it was in.
enum CrashReporter {
    nonisolated(unsafe) private static var message = [UInt8](repeating: 0, count: 1024)
    nonisolated(unsafe) private static var length = 0
    nonisolated(unsafe) private static var plugin = ""

    static func install(plugin path: String) {
        plugin = path
        for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT] {
            signal(sig) { number in
                CrashReporter.message.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, CrashReporter.length) }
                signal(number, SIG_DFL)
                raise(number)
            }
        }
    }

    static func phase(_ phase: String) {
        let text = Array("✘ the plugin \(plugin) crashed during \(phase)\n".utf8.prefix(1023))
        message.replaceSubrange(0..<text.count, with: text)
        length = text.count
    }
}
