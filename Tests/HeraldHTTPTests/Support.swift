import Foundation
import HeraldHTTP
import HeraldTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Tools some tests need from Debian packages.
enum Tools {
    static func executable(_ candidates: [String]) -> String? {
        candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static let openssl = executable(["/usr/bin/openssl", "/usr/local/bin/openssl"])
    static let nginx = executable(["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"])
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `Tests/mocks/http_sink.py`, started through the shared launcher.
typealias Sink = MockServer

extension MockServer {
    convenience init(_ arguments: [String]) throws {
        try self.init(script: "http_sink.py", arguments: arguments)
    }

    var tlsBase: String { "https://127.0.0.1:\(port)" }
    var smtpBase: String { "smtp://127.0.0.1:\(port)" }

    /// Connections that carried a request, TCP connections accepted, and the requests recorded.
    func stats() async throws -> (connections: Int, accepted: Int, requests: [[String]]) {
        let statsDoc = try JSONSerialization.jsonObject(with: Data(try await get("/_stats"))) as? [String: Any]
        let list = try JSONSerialization.jsonObject(with: Data(try await get("/_requests"))) as? [[String]]
        return ((statsDoc?["connections"] as? Int) ?? -1, (statsDoc?["accepted"] as? Int) ?? -1, list ?? [])
    }
}

/// Starts a sink, runs `body`, stops the sink.
func withSink(_ arguments: [String] = [], _ body: (Sink) async throws -> Void) async throws {
    let sink = try Sink(arguments)
    defer { sink.stop() }
    return try await body(sink)
}

/// Runs `body` with a fresh engine, shut down afterwards.
func withEngine(_ body: (TransferEngine) async throws -> Void) async throws {
    let engine = TransferEngine()
    defer { engine.shutdown() }
    return try await body(engine)
}

extension TransferOptions {
    /// Allows 127.0.0.1 / localhost: the test servers all listen on loopback.
    static var loopback: TransferOptions {
        TransferOptions(egress: EgressPolicy(allowedHosts: ["127.0.0.1", "localhost"], allowLoopback: true))
    }
}

extension TransferRequest {
    static func get(_ url: String, timeout: Int = 5_000) -> TransferRequest {
        .http(method: "GET", url: url, headers: [], body: [], timeoutMilliseconds: timeout)
    }
}

/// Expects `body` to throw an `EngineError` with `code`; returns it for further checks.
@discardableResult
func expectError(
    _ code: EngineError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> TransferResponse
) async -> EngineError? {
    do {
        let response = try await body()
        Issue.record("expected \(code), got a response with status \(response.status)", sourceLocation: sourceLocation)
        return nil
    } catch let error as EngineError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected EngineError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A port nothing listens on (bound, then released). Taken below Linux's ephemeral range
/// (32768-60999), so a concurrently started sink (which binds port 0) cannot be handed the same one.
func unusedPort() throws -> Int {
    for _ in 0..<50 {
        let candidate = Int.random(in: 20_000..<32_000)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(candidate).bigEndian
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        if bound { return candidate }
    }
    throw TestFailure("no free port found in 20000-31999")
}

/// True once something accepts TCP connections on 127.0.0.1:`port`.
func waitForListener(port: Int, timeout: Double = 5) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        close(fd)
        if connected { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return false
}

/// A temporary directory removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("herald-http-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Makes a self-signed certificate for 127.0.0.1 / localhost; returns (cert, key) paths.
func makeSelfSignedCertificate(in directory: TemporaryDirectory) throws -> (cert: String, key: String) {
    guard let openssl = Tools.openssl else { throw TestFailure("openssl is not installed") }
    let cert = directory.path + "/cert.pem"
    let key = directory.path + "/key.pem"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: openssl)
    process.arguments = [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout", key, "-out", cert,
    ]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw TestFailure("openssl req failed") }
    return (cert, key)
}
