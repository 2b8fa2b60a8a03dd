import Foundation
import HeraldPluginHost
import Synchronization

/// Builds the fixture plugins of Tests/Fixtures/fixture_plugin.c with -D variants, once per
/// variant per test run, each into its own folder with a manifest.
public enum Fixtures {
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    public static let source = repositoryRoot + "/Tests/Fixtures/fixture_plugin.c"
    public static let workDirectory: String = {
        let dir = NSTemporaryDirectory() + "herald-fixtures-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()
    private static let built = Mutex<[String: String]>([:])

    public struct BuildError: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Compiles a variant; returns the folder holding `<name>.so` and `manifest.json`.
    public static func build(_ name: String, defines: [String] = [], id: String = "fixture", version: String = "1.2.3",
                      extraFlags: [String] = [], writeManifest: Bool = true) throws -> String {
        if let dir = built.withLock({ $0[name] }) { return dir }
        let dir = "\(workDirectory)/\(name)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let library = "\(dir)/\(name).so"
        // Tests running in parallel may build the same variant at once: each compiles to its own
        // file and renames it into place, so nobody ever loads a half-written library.
        let partial = "\(library).\(UUID().uuidString)"
        let args = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared", "-fvisibility=hidden",
                    "-I", repositoryRoot + "/include"] + defines.map { "-D\($0)" } + [source, "-o", partial] + extraFlags
        try run("/usr/bin/env", ["cc"] + args)
        guard rename(partial, library) == 0 else { throw BuildError(description: "cannot rename \(partial) to \(library): errno \(errno)") }
        if writeManifest {
            try manifest(id: id, version: version, library: "\(name).so").write(toFile: "\(dir)/manifest.json", atomically: true, encoding: .utf8)
        }
        built.withLock { $0[name] = dir }
        return dir
    }

    public static func manifest(id: String, version: String, library: String, channelKind: String = "webhook") -> String {
        #"{"id":"\#(id)","name":"Fixture","version":"\#(version)","abi_major":1,"library":"\#(library)","channel_kind":"\#(channelKind)"}"#
    }

    public static func library(_ name: String, defines: [String] = []) throws -> String {
        "\(try build(name, defines: defines))/\(name).so"
    }

    public static func run(_ tool: String, _ arguments: [String]) throws {
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
    public static var swiftFixture: String? {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        for dir in [bundleDir, Bundle.main.bundleURL.deletingLastPathComponent().path] {
            let path = "\(dir)/libHeraldSwiftFixture.so"
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }
}

/// A clock the tests move by hand.
public final class ManualClock: Sendable {
    let now = Mutex<Int64>(1_700_000_000_000)
    public init() {}
    public func advance(_ ms: Int64) { now.withLock { $0 += ms } }
    public var read: @Sendable () -> Int64 { { [self] in now.withLock { $0 } } }
}

public func environment(clock: ManualClock = ManualClock(), store: any PluginKeyValueStore = InMemoryKeyValueStore()) -> PluginHostEnvironment {
    PluginHostEnvironment(keyValueStore: store, clock: clock.read)
}

/// The plugins under Plugins/, built once per test run with scripts/build-plugins.sh: the same
/// build operators and CI use.
public enum BuiltPlugins {
    private static let result = Mutex<Result<String, Fixtures.BuildError>?>(nil)

    /// The directory holding `<id>/manifest.json` and `<id>/<id>.so` for every plugin.
    ///
    /// scripts/test.sh builds them before `swift test` and names the folder in
    /// `HERALD_TEST_PLUGIN_DIR`: building here blocks the calling thread for seconds, and with it
    /// every test waiting on the lock, which starves Swift's cooperative pool on a small machine.
    public static func directory() throws -> String {
        if let prebuilt = ProcessInfo.processInfo.environment["HERALD_TEST_PLUGIN_DIR"], !prebuilt.isEmpty { return prebuilt }
        return try result.withLock { cached in
            if let cached { return try cached.get() }
            let dir = Fixtures.workDirectory + "/plugins"
            do {
                try Fixtures.run("/bin/bash", [Fixtures.repositoryRoot + "/scripts/build-plugins.sh", dir])
                cached = .success(dir)
            } catch let error as Fixtures.BuildError {
                cached = .failure(error)
            } catch {
                cached = .failure(Fixtures.BuildError(description: "\(error)"))
            }
            return try cached!.get()
        }
    }
}
