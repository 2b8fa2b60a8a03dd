import Foundation
import HeraldPluginHost
import Synchronization

/// Builds the fixture plugins of Tests/Fixtures/fixture_plugin.c with -D variants, once per
/// variant per test run, each into its own folder with a manifest.
enum Fixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let source = repositoryRoot + "/Tests/Fixtures/fixture_plugin.c"
    static let workDirectory: String = {
        let dir = NSTemporaryDirectory() + "herald-fixtures-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()
    private static let built = Mutex<[String: String]>([:])

    struct BuildError: Error, CustomStringConvertible { let description: String }

    /// Compiles a variant; returns the folder holding `<name>.so` and `manifest.json`.
    static func build(_ name: String, defines: [String] = [], id: String = "fixture", version: String = "1.2.3",
                      extraFlags: [String] = [], writeManifest: Bool = true) throws -> String {
        if let dir = built.withLock({ $0[name] }) { return dir }
        let dir = "\(workDirectory)/\(name)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let library = "\(dir)/\(name).so"
        let args = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared", "-fvisibility=hidden",
                    "-I", repositoryRoot + "/include"] + defines.map { "-D\($0)" } + [source, "-o", library] + extraFlags
        try run("/usr/bin/env", ["cc"] + args)
        if writeManifest {
            try manifest(id: id, version: version, library: "\(name).so").write(toFile: "\(dir)/manifest.json", atomically: true, encoding: .utf8)
        }
        built.withLock { $0[name] = dir }
        return dir
    }

    static func manifest(id: String, version: String, library: String, channelKind: String = "webhook") -> String {
        #"{"id":"\#(id)","name":"Fixture","version":"\#(version)","abi_major":1,"library":"\#(library)","channel_kind":"\#(channelKind)"}"#
    }

    static func library(_ name: String, defines: [String] = []) throws -> String {
        "\(try build(name, defines: defines))/\(name).so"
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BuildError(description: "\(arguments.joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
        }
    }

    /// The Swift fixture, built by SwiftPM next to the test bundle.
    static var swiftFixture: String? {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        for dir in [bundleDir, Bundle.main.bundleURL.deletingLastPathComponent().path] {
            let path = "\(dir)/libHeraldSwiftFixture.so"
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }
}

/// A clock the tests move by hand.
final class ManualClock: Sendable {
    let now = Mutex<Int64>(1_700_000_000_000)
    func advance(_ ms: Int64) { now.withLock { $0 += ms } }
    var read: @Sendable () -> Int64 { { [self] in now.withLock { $0 } } }
}

func environment(clock: ManualClock = ManualClock(), store: any PluginKeyValueStore = InMemoryKeyValueStore()) -> PluginHostEnvironment {
    PluginHostEnvironment(keyValueStore: store, clock: clock.read)
}
