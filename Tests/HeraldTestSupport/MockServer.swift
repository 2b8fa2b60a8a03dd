import Foundation

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
        process.standardInput = stdin
        process.standardOutput = output
        try process.run()
        var text = ""
        while !text.contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).prefix { $0.isNumber }) else {
            process.terminate()
            throw Fixtures.BuildError(description: "\(script) did not report its port (got \(text.debugDescription))")
        }
        self.port = port
    }

    public var base: String { "http://127.0.0.1:\(port)" }

    public func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit { stop() }
}
