import Foundation
import HeraldPluginHost
import HeraldTestSupport
import Testing

/// Every plugin under Plugins/ passes the conformance check a third-party author would run.
@Suite("Conformance of every shipped plugin")
struct ConformanceTests {
    @Test func everyPluginPassesHeraldPluginsCheck() throws {
        let dir = try BuiltPlugins.directory()
        let (manifests, problems) = PluginManifest.discover(in: [dir])
        #expect(problems.isEmpty, "\(problems.map(\.message))")
        #expect(manifests.contains { $0.id == "webhook" })
        for manifest in manifests {
            let run = try HeraldBinary.run(["plugins", "check", manifest.libraryPath])
            #expect(run.status == 0, "\(manifest.id): \(run.out)\(run.err)")
            #expect(run.out.hasSuffix(" 0 failed\n"), "\(manifest.id): \(run.out)")
        }
    }
}
