import Foundation
import HeraldHTTP
import Testing

/// nginx from Debian serves HTTP/2 over TLS (ALPN) on a free loopback port.
@Suite("HTTP/2")
struct HTTP2Tests {
    static let toolsPresent = Tools.nginx != nil && Tools.openssl != nil

    @Test(
        "HTTP/2 is negotiated over TLS and concurrent requests share one multiplexed connection",
        .enabled(if: toolsPresent, "nginx or openssl is not installed (apt-get install nginx openssl)"))
    func negotiatesHTTP2() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let (cert, key) = try makeSelfSignedCertificate(in: directory)
        let (nginx, port) = try await startNginx(in: directory, cert: cert, key: key)
        defer {
            // One process (master_process off), so SIGKILL leaves no worker holding the pipes that
            // Process waits on; SIGTERM may be inherited blocked, SIGKILL cannot be.
            kill(nginx.processIdentifier, SIGKILL)
            nginx.waitUntilExit()
        }

        let engine = TransferEngine()
        defer { engine.shutdown() }
        var options = TransferOptions.loopback
        options.caFile = cert
        let url = "https://127.0.0.1:\(port)/"
        let first = try await engine.perform(.get(url), options: options)
        #expect(first.status == 200)
        #expect(first.httpVersion == 2)
        #expect(String(decoding: first.body, as: UTF8.self) == "ok")
        #expect(first.header("x-served-by") == "nginx")
        #expect(!first.connectionReused)

        let trusted = options
        let responses = try await withThrowingTaskGroup(of: TransferResponse.self) { group in
            for _ in 0..<20 { group.addTask { try await engine.perform(.get(url), options: trusted) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(responses.allSatisfy { $0.status == 200 && $0.httpVersion == 2 })
        #expect(responses.allSatisfy { $0.connectionReused })  // all streams on the first connection
    }

    /// Starts nginx on a free port; tries another port if nginx exits (e.g. the port was taken).
    private func startNginx(in directory: TemporaryDirectory, cert: String, key: String) async throws -> (Process, Int) {
        let dir = directory.path
        var lastLog = ""
        for _ in 0..<3 {
            let port = try unusedPort()
            let config = """
                master_process off;
                pid \(dir)/nginx.pid;
                error_log \(dir)/error.log warn;
                events { worker_connections 256; }
                http {
                    access_log off;
                    client_body_temp_path \(dir)/body;
                    proxy_temp_path \(dir)/proxy;
                    fastcgi_temp_path \(dir)/fastcgi;
                    uwsgi_temp_path \(dir)/uwsgi;
                    scgi_temp_path \(dir)/scgi;
                    server {
                        listen 127.0.0.1:\(port) ssl http2;
                        ssl_certificate \(cert);
                        ssl_certificate_key \(key);
                        location / { add_header X-Served-By nginx; return 200 "ok"; }
                    }
                }
                """
            try config.write(toFile: "\(dir)/nginx.conf", atomically: true, encoding: .utf8)
            let nginx = Process()
            nginx.executableURL = URL(fileURLWithPath: Tools.nginx!)
            nginx.arguments = ["-p", dir, "-c", "\(dir)/nginx.conf", "-e", "\(dir)/error.log", "-g", "daemon off;"]
            nginx.standardOutput = FileHandle.nullDevice
            nginx.standardError = FileHandle.nullDevice
            try nginx.run()
            // Someone else may own the port: nginx then exits right after failing to bind.
            if await waitForListener(port: port, timeout: 20) {
                try? await Task.sleep(for: .milliseconds(100))
                if nginx.isRunning { return (nginx, port) }
            }
            kill(nginx.processIdentifier, SIGKILL)
            nginx.waitUntilExit()
            lastLog = (try? String(contentsOfFile: "\(dir)/error.log", encoding: .utf8)) ?? ""
        }
        throw TestFailure("nginx did not start: \(lastLog)")
    }
}
