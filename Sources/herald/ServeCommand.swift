import ArgumentParser
import Foundation
import HeraldCore
import HeraldServer
import HeraldStore
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization

extension Herald {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run Herald: the HTTP API, escalation timers and the outbox dispatcher, until SIGTERM or SIGINT.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let config = try options.load()
            let logger = Logger(label: "herald")
            let prometheus = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: prometheus))

            let runtime = HeraldRuntime(config: config, logger: logger)
            // A config or plugin problem stops the start: better refused at deploy than a
            // channel that silently never fires.
            guard runtime.problems.isEmpty else {
                runtime.problems.forEach { warn($0) }
                runtime.shutdown()
                throw CLIError("\(config.file): \(runtime.problems.count) problem(s); Herald did not start")
            }
            let store: SQLiteStore
            do {
                store = try SQLiteStore(path: config.storePath)
            } catch {
                throw CLIError("cannot open the store at \(config.storePath): \(error)")
            }
            var secret = config.server.linkSecret
            if secret.isEmpty {
                secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
                logger.warning("server.link_secret is not set: action links are signed with a random key and stop working when Herald restarts")
            }
            let signer = LinkSigner(secret: secret, publicURL: config.server.publicURL, lifetime: Double(config.server.linkTTLHours) * 3600)

            let dispatcherBox = Mutex<Dispatcher?>(nil)
            let service = IncidentService(store: store, policy: config.policy, targets: Self.targets(config, runtime),
                                          logger: Logger(label: "herald.incidents"),
                                          onQueued: { dispatcherBox.withLock { $0 }?.wake() })
            let dispatcher = Dispatcher(service: service, integrations: runtime.integrations, deliverer: runtime.deliverer, signer: signer,
                                        rateLimits: Self.rateLimits(config, runtime), settings: config.server.dispatch, logger: Logger(label: "herald.dispatch"))
            dispatcherBox.withLock { $0 = dispatcher }

            let context = ServerContext(service: service, integrations: runtime.integrations, signer: signer, settings: config.server,
                                        prometheus: prometheus)
            let app = buildApplication(context)
            let worker = DispatcherService(dispatcher: dispatcher, tick: config.server.tickSeconds)
            let group = ServiceGroup(configuration: .init(services: [.init(service: app), .init(service: worker)],
                                                          gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            // Unbuffered, so a pipe or a log sees it now.
            FileHandle.standardOutput.write(Data("herald: serving on http://\(config.server.host):\(config.server.port) (store \(config.storePath), \(runtime.integrations.count) integration(s))\n".utf8))
            try await group.run()
            runtime.shutdown()
        }

        static func targets(_ config: HeraldConfig, _ runtime: HeraldRuntime) -> [String: RouteTarget] {
            var targets: [String: RouteTarget] = [:]
            for entry in config.integrations {
                guard let integration = runtime.integrations[entry.name] else { continue }
                targets[entry.name] = RouteTarget(kind: integration.plugin.descriptor.channelKind, updateEvents: entry.updateEvents,
                                                  updateSeverities: entry.updateSeverities)
            }
            return targets
        }

        /// The integration's own limit, else the plugin's declared quota.
        static func rateLimits(_ config: HeraldConfig, _ runtime: HeraldRuntime) -> [String: RateLimit] {
            var limits: [String: RateLimit] = [:]
            for entry in config.integrations {
                if let own = entry.rateLimit {
                    limits[entry.name] = own
                } else if let declared = runtime.integrations[entry.name]?.plugin.manifest?.rateLimit {
                    limits[entry.name] = RateLimit(count: declared.count, perSeconds: declared.perSeconds)
                }
            }
            return limits
        }
    }
}

/// The timer scheduler and outbox dispatcher as a lifecycle service: on shutdown it stops
/// leasing, and the pass in flight finishes (rows it could not finish return when their lease ends).
struct DispatcherService: Service {
    let dispatcher: Dispatcher
    let tick: TimeInterval

    func run() async throws {
        await withGracefulShutdownHandler {
            await dispatcher.run(tick: tick)
        } onGracefulShutdown: {
            dispatcher.stop()
        }
    }
}
