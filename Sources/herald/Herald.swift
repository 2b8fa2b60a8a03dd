import ArgumentParser
import Foundation
import HeraldCore
import HeraldPluginHost
import Logging

@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Herald: incident notifications through channel plugins.",
        version: "0.1.0",
        subcommands: [Serve.self, Plugins.self, Config.self, Send.self, Action.self, BenchDeliver.self, BenchPrepare.self, BenchTimers.self]
    )
}

/// Options every command that reads `herald.yaml` shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("config")], help: "The config file (default: $HERALD_CONFIG or ./herald.yaml).")
    var path: String?

    @Flag(name: .shortAndLong, help: "Log debug details to stderr.")
    var verbose = false

    var resolvedPath: String { path ?? ProcessInfo.processInfo.environment["HERALD_CONFIG"] ?? "herald.yaml" }

    func load() throws -> HeraldConfig {
        bootstrapLogging(verbose: verbose)
        do {
            return try HeraldConfig.load(file: resolvedPath)
        } catch {
            throw CLIError(error.description)
        }
    }
}

/// A failure the user caused or can fix: printed as is, exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func bootstrapLogging(verbose: Bool) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = verbose ? .debug : .warning
        return handler
    }
}

/// Prints to stderr.
func warn(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
