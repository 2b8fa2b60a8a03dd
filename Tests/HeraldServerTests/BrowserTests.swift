import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldServer
import HeraldTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// The incident page in a real browser: headless Chromium against the server on 127.0.0.1.
/// scripts/setup.sh installs Chromium, so CI always runs this; a developer without it is told.
@Suite("Incident page in headless Chromium", .enabled(if: Chromium.path != nil || Chromium.required,
                                                       "chromium is not installed: run scripts/setup.sh (CI installs it and runs these tests)"))
struct BrowserTests {
    @Test func thePageRendersAndItsAcknowledgeButtonWorks() async throws {
        let chromium = try #require(Chromium.path, "chromium is required in CI: scripts/setup.sh installs it")
        let h = try Harness()
        let incident = try await h.incident("Disk <full> on db-1", labels: ["env": "prod", "team": "dba"])
        let token = h.signer.token(incidentID: incident.id, action: .acknowledge, member: "ann", now: h.clock())
        try await h.app().test(.live) { client in
            let url = "http://127.0.0.1:\(try #require(client.port))/l/\(token)"

            // What a browser renders from GET (and GET alone must not act).
            let dump = try await Chromium.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                               "--user-data-dir=\(NSTemporaryDirectory())herald-chromium-dump-\(getpid())", "--dump-dom", url])
            #expect(dump.status == 0, "chromium --dump-dom failed: \(dump.errors.suffix(2000))")
            let dom = dump.output
            #expect(dom.contains("<span id=\"title\">Disk &lt;full&gt; on db-1</span>"), "\(dom.prefix(3000))")
            #expect(dom.contains("#<span id=\"number\">1</span>"))
            #expect(dom.contains("id=\"severity\">critical<"))
            #expect(dom.contains("id=\"status\">triggered<"))
            #expect(dom.contains("<th>team</th><td>dba</td>"))
            #expect(dom.contains("<form method=\"post\" id=\"actions\">"))
            for button in ["acknowledge", "snooze", "close"] { #expect(dom.contains("id=\"\(button)\""), "no \(button) button") }
            #expect(dom.contains("<select name=\"minutes\" id=\"minutes\">"))
            #expect(dom.contains("<ol id=\"timeline\">"))
            #expect(try await h.service.incident(incident.id)?.status == .triggered)

            // A click on Acknowledge: the browser submits the form itself.
            let click = try await Chromium.run([MockServer.python, Fixtures.repositoryRoot + "/Tests/mocks/chromium_click.py", chromium, url, "acknowledge"])
            #expect(click.status == 0, "chromium_click.py failed: \(click.errors.suffix(2000))")
            let result = try JSONValue.parse(click.output)
            let after = result["after"]?.stringValue ?? ""
            #expect(after.contains("Acknowledged by ann."), "\(after.prefix(3000))")
            #expect(after.contains("id=\"status\">acknowledged<"))
            #expect(!after.contains("<form"))
        }
        let acknowledged = try #require(try await h.service.incident(incident.id))
        #expect(acknowledged.status == .acknowledged)
        #expect(acknowledged.acknowledgedBy == ["ann"])
        #expect(try await h.service.timeline(incident.id).contains { $0.kind == "acknowledged" && $0.actor == "ann" })
    }
}

enum Chromium {
    static let path: String? = {
        if let explicit = ProcessInfo.processInfo.environment["CHROMIUM"], FileManager.default.isExecutableFile(atPath: explicit) { return explicit }
        return ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// In CI the test must run (and fail clearly if Chromium is missing).
    static var required: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

    struct Outcome: Sendable {
        var status: Int32
        var output: String
        var errors: String
    }

    /// Runs a program to completion (niced, killed after `timeout` seconds by coreutils' `timeout`) on a
    /// thread of its own, so the blocking reads never hold a cooperative thread the server needs.
    static func run(_ arguments: [String], timeout: Int = 90) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                let process = Process()
                // Niced: Chromium's start-up burst would otherwise starve the timing-bound tests
                // running beside it on a 2-core machine.
                process.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
                process.arguments = ["-n", "19", "/usr/bin/timeout", "-k", "5", String(timeout)] + arguments
                let out = Pipe(), err = Pipe()
                process.standardOutput = out
                process.standardError = err
                process.standardInput = FileHandle.nullDevice
                do {
                    try process.run()
                } catch {
                    continuation.resume(throwing: error)
                    return
                }
                let errors = ErrorSink(err.fileHandleForReading)
                let output = out.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: Outcome(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                                                       errors: errors.wait()))
            }.start()
        }
    }

    /// Drains a pipe on its own thread (so a chatty stderr cannot block the child).
    final class ErrorSink: @unchecked Sendable {
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)
        init(_ handle: FileHandle) {
            Thread { [self] in
                data = handle.readDataToEndOfFile()
                done.signal()
            }.start()
        }
        func wait() -> String {
            done.wait()
            return String(decoding: data, as: UTF8.self)
        }
    }
}
