import ArgumentParser
import Foundation
import HeraldCore
import HeraldHTTP
import HeraldPluginHost
import HeraldStore

extension Herald {
    /// The delivery half of scripts/bench.sh: pushes N messages through an integration and prints
    /// figures as JSON. The script measures the sink's own ceiling with wrk in the same run.
    struct BenchDeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-deliver", abstract: "Benchmark: deliver N messages through an integration (see scripts/bench.sh).",
            shouldDisplay: false)
        @OptionGroup var options: ConfigOptions
        @Option var integration: String
        @Option var count = 20_000
        @Option var concurrency = 64

        func run() async throws {
            let config = try options.load()
            let loadStart = ContinuousClock.now
            let runtime = HeraldRuntime(config: config)
            let loadSeconds = seconds(loadStart.duration(to: .now))
            defer { runtime.shutdown() }
            guard let target = runtime.integrations[integration] else {
                runtime.problems.forEach { warn($0) }
                throw CLIError("integration '\(integration)' is not available")
            }
            try await Task.sleep(for: .milliseconds(200))
            let idleRSS = memory("VmRSS")

            let total = count
            let lanes = max(1, min(concurrency, total))
            let started = ContinuousClock.now
            let results = await withTaskGroup(of: [Double].self) { group in
                for lane in 0..<lanes {
                    group.addTask {
                        var latencies: [Double] = []
                        var n = lane
                        while n < total {
                            var message = OutgoingMessage(idempotencyKey: "bench-\(n)", title: "Benchmark alert \(n)", body: "CPU above 90% on host-\(n % 50)")
                            message.incidentID = "inc-\(n)"
                            message.labels = [("host", "host-\(n % 50)"), ("service", "bench")]
                            let t0 = ContinuousClock.now
                            let result = await runtime.deliverer.deliver(message, through: target)
                            if case .delivered = result.outcome { latencies.append(seconds(t0.duration(to: .now))) } else { latencies.append(-1) }
                            n += lanes
                        }
                        return latencies
                    }
                }
                var all: [Double] = []
                for await part in group { all += part }
                return all
            }
            let elapsed = seconds(started.duration(to: .now))
            let ok = results.filter { $0 >= 0 }.sorted()
            func percentile(_ p: Double) -> Double { ok.isEmpty ? 0 : ok[min(ok.count - 1, Int(Double(ok.count) * p))] * 1000 }
            let figures: [String: Any] = [
                "messages": total, "delivered": ok.count, "seconds": elapsed, "per_second": Double(ok.count) / elapsed,
                "p50_ms": percentile(0.50), "p99_ms": percentile(0.99), "concurrency": lanes,
                "load_ms": loadSeconds * 1000, "plugins": runtime.registry.plugins.count, "integrations": runtime.integrations.count,
                "idle_rss_mb": idleRSS, "peak_rss_mb": memory("VmHWM"),
            ]
            let data = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }

        private func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

        /// A /proc/self/status figure in MiB.
        private func memory(_ field: String) -> Double {
            let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
            let kb = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
            return (kb / 1024 * 10).rounded() / 10
        }
    }
}

extension Herald {
    /// Per-message cost of each plugin's `prepare` (no network): the figure issue 3 asks for.
    struct BenchPrepare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-prepare", abstract: "Benchmark: µs per prepare call for every plugin in a directory.", shouldDisplay: false)
        @Option(name: .customLong("plugin-dir")) var directory: String
        @Option var iterations = 20_000

        func run() async throws {
            bootstrapLogging(verbose: false)
            let registry = PluginRegistry.load(directories: [directory])
            registry.problems.forEach { warn("refused: \($0.message)") }
            var message = ConformanceCheck.sampleMessages(sizeLimit: nil, unit: .bytes)[0].1
            message.body = "CPU above 90% on host-7 for 5 minutes"
            let prepared = PreparedMessage(message)
            let width = registry.plugins.keys.map(\.count).max() ?? 10
            for id in registry.plugins.keys.sorted() {
                let plugin = registry.plugins[id]!
                let config = ConformanceCheck.sampleConfig(for: plugin.descriptor.configSchema.root)
                let instance = try PluginInstance.create(plugin: plugin, name: "bench-\(id)", config: config, environment: PluginHostEnvironment())
                defer { instance.destroy() }
                for _ in 0..<200 { _ = instance.prepare(prepared) }  // warm up
                let started = ContinuousClock.now
                for _ in 0..<iterations { _ = instance.prepare(prepared) }
                let d = started.duration(to: .now).components
                let micros = (Double(d.seconds) * 1e6 + Double(d.attoseconds) / 1e12) / Double(iterations)
                print("\(id.padding(toLength: width, withPad: " ", startingAt: 0)) \(String(format: "%7.2f", micros)) µs per prepare")
            }
        }
    }
}

extension Herald {
    /// The scheduler-cost half of `scripts/bench.sh serve`: fills a fresh store with N open
    /// incidents whose timers are all in the future (one transaction), then times the passes the
    /// dispatcher's loop makes when nothing is due. Run it at 1k and 100k: O(due) means the same time.
    struct BenchTimers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-timers", abstract: "Benchmark: one idle scheduler pass with N open incidents with future timers.",
            shouldDisplay: false)
        @Option(help: "Where to create the store (must not exist).") var store: String
        @Option var incidents = 100_000
        @Option var passes = 500

        func run() async throws {
            bootstrapLogging(verbose: false)
            guard !FileManager.default.fileExists(atPath: store) else { throw CLIError("\(store) exists already") }
            let db = try SQLiteStore(path: store)
            let count = incidents
            let now = Date()
            let fillStart = ContinuousClock.now
            try await db.write { tx in
                for n in 0..<count {
                    let id = "inc_bench\(n)"
                    let incident = Incident(id: id, number: Int64(n + 1), dedupKey: "bench-\(n)", service: "default", title: "Benchmark alert \(n)",
                                            description: "", severity: .critical, status: .triggered, labels: ["host": "host-\(n % 50)"],
                                            alertCount: 1, createdAt: now, updatedAt: now, acknowledgedBy: [], rule: "bench", level: 0,
                                            escalationGeneration: 1)
                    try tx.insert(incident)
                    // What an escalating incident holds: a delivered page, a repeat and an escalation due later.
                    var page = OutboxEntry(idempotencyKey: "\(id):bench", incidentID: id, integration: "sink", event: .fire, level: 0, createdAt: now)
                    page.state = .delivered
                    page.attempts = 1
                    page.deliveredAt = now
                    try tx.enqueue(page)
                    let later = now.addingTimeInterval(600 + Double(n % 3600))
                    try tx.insert(EscalationTimer(incidentID: id, kind: .repeatLevel, dueAt: later, level: 0, remaining: 1, generation: 1))
                    try tx.insert(EscalationTimer(incidentID: id, kind: .escalate, dueAt: later.addingTimeInterval(900), level: 0, generation: 1))
                }
            }
            let fillSeconds = seconds(fillStart.duration(to: .now))
            let service = IncidentService(store: db, policy: EscalationPolicy(), targets: [:])
            let deliverer = Deliverer(engine: TransferEngine())
            let dispatcher = Dispatcher(service: service, integrations: [:], deliverer: deliverer, signer: nil)

            func time(_ body: () async throws -> Void) async rethrows -> (p50: Double, p99: Double) {
                for _ in 0..<min(50, passes) { try await body() }  // warm up caches and statements
                var samples: [Double] = []
                for _ in 0..<passes {
                    let t0 = ContinuousClock.now
                    try await body()
                    samples.append(seconds(t0.duration(to: .now)) * 1e6)
                }
                samples.sort()
                return (samples[samples.count / 2], samples[min(samples.count - 1, samples.count * 99 / 100)])
            }
            // The timer pass alone, and everything the run loop does when nothing is due.
            let timers = try await time { _ = try await service.fireDueTimers() }
            let pass = try await time {
                _ = try await service.fireDueTimers()
                _ = try await dispatcher.dispatchDue()
                _ = try await db.read { try $0.queueDepth() }
                _ = try await db.read { try $0.nextWakeUp() }
            }
            let open = try await db.read { try $0.openIncidentCount() }
            let figures: [String: Any] = [
                "incidents": open, "fill_seconds": fillSeconds, "passes": passes,
                "timer_pass_p50_us": timers.p50, "timer_pass_p99_us": timers.p99,
                "idle_pass_p50_us": pass.p50, "idle_pass_p99_us": pass.p99,
            ]
            let data = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }

        private func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
    }
}
