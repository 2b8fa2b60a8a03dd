import ArgumentParser
import Foundation
import HeraldCore
import HeraldPluginHost

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
                print("\(id.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(format: "%7.2f", micros)) µs per prepare")
            }
        }
    }
}
