import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Testing

/// What a third-party author has: the header and the README. Both must work as written.
@Suite("Plugin authoring")
struct AuthoringTests {
    /// The fenced block between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in README.md.
    static func readmeBlock(_ name: String) throws -> String {
        let readme = try String(contentsOfFile: Fixtures.repositoryRoot + "/README.md", encoding: .utf8)
        guard let begin = readme.range(of: "<!-- \(name):begin -->"), let end = readme.range(of: "<!-- \(name):end -->") else {
            throw Fixtures.BuildError(description: "README.md has no \(name) block")
        }
        let block = readme[begin.upperBound..<end.lowerBound]
        let lines = block.split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasPrefix("```") }.dropFirst()
        return lines.prefix { !$0.hasPrefix("```") }.joined(separator: "\n") + "\n"
    }

    @Test func theReadmeExamplePluginBuildsLoadsAndSends() async throws {
        let dir = Fixtures.workDirectory + "/readme/plain-post"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.readmeBlock("example-plugin").write(toFile: dir + "/plain-post.c", atomically: true, encoding: .utf8)
        try Self.readmeBlock("example-manifest").write(toFile: dir + "/manifest.json", atomically: true, encoding: .utf8)
        // The README's command, plus warnings as errors: the example must be clean.
        try Fixtures.run("/usr/bin/env", ["cc", "-std=c11", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror",
                                          "-pedantic", "-I", Fixtures.repositoryRoot + "/include", "-o", dir + "/plain-post.so", dir + "/plain-post.c"])

        let sink = try MockServer(script: "http_sink.py")
        defer { sink.stop() }
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(Fixtures.workDirectory)/readme]
        integrations:
          - {name: plain, plugin: plain-post, settings: {url: "\(sink.base)/echo"}, egress: {allow_loopback: true}}
        """, file: "/tmp/readme.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        let plain = try #require(runtime.integrations["plain"], "\(runtime.problems)")
        let result = await runtime.deliverer.deliver(OutgoingMessage(idempotencyKey: "k1", title: "Hello from the README", body: ""), through: plain)
        #expect(result.outcome == .delivered(providerID: nil))
        let requests = try JSONValue.parse(Data(try await sink.get("/_requests"))).arrayValue ?? []
        #expect(requests.count == 1)

        let check = try HeraldBinary.run(["plugins", "check", dir + "/plain-post.so"])
        #expect(check.status == 0, "\(check.out)")
    }

    @Test(arguments: ["gcc", "clang", "g++", "clang++"])
    func theHeaderCompilesCleanlyAsCAndCPlusPlus(compiler: String) throws {
        let cxx = compiler.hasSuffix("++")
        let source = Fixtures.workDirectory + "/header-check.\(cxx ? "cpp" : "c")"
        try "#include \"herald/plugin.h\"\nint main(void) { return (int)sizeof(herald_plugin) == 0; }\n"
            .write(toFile: source, atomically: true, encoding: .utf8)
        try Fixtures.run("/usr/bin/env", [compiler, cxx ? "-std=c++11" : "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                                          "-I", Fixtures.repositoryRoot + "/include", "-c", source, "-o", source + ".\(compiler).o"])
    }
}
