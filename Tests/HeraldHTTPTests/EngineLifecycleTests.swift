import Foundation
import HeraldHTTP
import Testing

@Suite("TransferEngine lifecycle and load")
struct EngineLifecycleTests {
    @Test("200 concurrent requests all complete with their own bodies, over a bounded pool of connections")
    func concurrentRequests() async throws {
        try await withSink { sink in
            let engine = TransferEngine(maxTotalConnections: 16, maxConnectionsPerHost: 8)
            defer { engine.shutdown() }
            let started = ContinuousClock.now
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let body = Array("request-\(index)".utf8)
                        let response = try await engine.perform(
                            .http(method: "POST", url: "\(sink.base)/echo", headers: [], body: body, timeoutMilliseconds: 20_000),
                            options: .loopback)
                        let echo = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
                        let echoed = (echo?["body_b64"] as? String).flatMap { Data(base64Encoded: $0) }
                        return response.status == 200 && echoed == Data(body) ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
            #expect(ContinuousClock.now - started < .seconds(60))
            let stats = try await sink.stats()
            #expect(stats.requests.count == 200)
            #expect((1...8).contains(stats.connections))  // maxConnectionsPerHost holds; the rest reused connections
        }
    }

    @Test("shutdown fails in-flight and queued transfers, and every later one, with .shutdown")
    func shutdownFailsPending() async throws {
        try await withSink { sink in
            let engine = TransferEngine(maxTotalConnections: 1, maxConnectionsPerHost: 1)
            let slow = (0..<3).map { _ in
                Task { () -> EngineError? in
                    do {
                        _ = try await engine.perform(.get("\(sink.base)/slow/30000", timeout: 40_000), options: .loopback)
                        return nil
                    } catch {
                        return error as? EngineError
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            engine.shutdown()
            for task in slow {
                let error = await task.value
                #expect(error?.code == .shutdown, "\(String(describing: error))")
                #expect(error?.isTransient == false)
            }
            #expect(ContinuousClock.now - started < .seconds(25))  // the slow answer would take 30 s
            await expectError(.shutdown) { try await engine.perform(.get("\(sink.base)/echo"), options: .loopback) }
            engine.shutdown()  // idempotent
        }
    }

    @Test("cancelling the calling task abandons the transfer with .cancelled")
    func cancellation() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let task = Task { () -> EngineError? in
                    do {
                        _ = try await engine.perform(.get("\(sink.base)/slow/30000", timeout: 40_000), options: .loopback)
                        return nil
                    } catch {
                        return error as? EngineError
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
                let started = ContinuousClock.now
                task.cancel()
                let error = await task.value
                #expect(error?.code == .cancelled, "\(String(describing: error))")
                #expect(ContinuousClock.now - started < .seconds(25))  // the slow answer would take 30 s
                // The engine keeps working after a cancellation.
                let response = try await engine.perform(.get("\(sink.base)/status/201"), options: .loopback)
                #expect(response.status == 201)
            }
        }
    }

    @Test("a task cancelled before it calls perform never starts the transfer")
    func cancelledBeforeStart() async throws {
        try await withSink { sink in
            try await withEngine { engine in
                let task = Task { () -> EngineError? in
                    while !Task.isCancelled { await Task.yield() }
                    do {
                        _ = try await engine.perform(.get("\(sink.base)/echo"), options: .loopback)
                        return nil
                    } catch {
                        return error as? EngineError
                    }
                }
                task.cancel()
                let error = await task.value
                #expect(error?.code == .cancelled)
                let stats = try await sink.stats()
                #expect(stats.requests.isEmpty)
            }
        }
    }
}
