import Foundation
import HeraldHTTP
import Synchronization

/// A mock provider written in Python (Tests/mocks/*.py), started on 127.0.0.1 with a free port.
/// Each script prints "PORT <n>" first and exits when its stdin closes, so a crashed test run
/// leaves no process behind.
public final class MockServer: @unchecked Sendable {
    // @unchecked: the process handle is only used to stop the server.
    public let port: Int
    private let process: Process
    private let stdin = Pipe()
    private let output: Pipe

    /// `HERALD_PYTHON` names the test virtualenv's interpreter (set by scripts/test.sh), so mocks
    /// can use vendor SDKs from PyPI as independent verifiers.
    public static var python: String { ProcessInfo.processInfo.environment["HERALD_PYTHON"] ?? "python3" }

    public init(script: String, arguments: [String] = []) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [Self.python, Fixtures.repositoryRoot + "/Tests/mocks/" + script] + arguments
        output = Pipe()
        let errors = Pipe()
        process.standardInput = stdin
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        var text = ""
        while !text.contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).prefix { $0.isNumber }) else {
            process.terminate()
            let why = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw Fixtures.BuildError(description: "\(script) did not start (run the tests with scripts/test.sh, which prepares "
                + "the Python test virtualenv): \(why.isEmpty ? text : why)")
        }
        self.port = port
    }

    public var base: String { "http://127.0.0.1:\(port)" }

    /// GETs one of the mock's inspection endpoints (e.g. the requests it recorded).
    public func get(_ path: String) async throws -> [UInt8] {
        let engine = TransferEngine()
        defer { engine.shutdown() }
        let options = TransferOptions(egress: EgressPolicy(allowedHosts: ["127.0.0.1"], allowLoopback: true))
        return try await engine.perform(.http(method: "GET", url: base + path, headers: [], body: [], timeoutMilliseconds: 5000), options: options).body
    }

    /// POSTs JSON to one of the mock's control endpoints (e.g. a failure mode).
    public func post(_ path: String, json: String) async throws {
        let engine = TransferEngine()
        defer { engine.shutdown() }
        let options = TransferOptions(egress: EgressPolicy(allowedHosts: ["127.0.0.1"], allowLoopback: true))
        _ = try await engine.perform(.http(method: "POST", url: base + path, headers: [HTTPHeader(name: "Content-Type", value: "application/json")],
                                           body: Array(json.utf8), timeoutMilliseconds: 5000), options: options)
    }

    /// Closing stdin is the mock's signal to exit (a child started from a Swift concurrency
    /// thread may have SIGTERM blocked); SIGKILL follows if it has not exited within 2 s.
    public func stop() {
        try? stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// Runs the `herald` executable built next to the tests.
public enum HeraldBinary {
    public static var path: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("herald").path
    }

    /// Runs herald with `arguments`; returns the exit status and what it printed on each stream.
    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting, so a chatty process cannot block on a full pipe.
        let errData = Mutex<Data>(Data())
        let reader = Thread { errData.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() } }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData.withLock { $0 }, as: UTF8.self))
    }
}
