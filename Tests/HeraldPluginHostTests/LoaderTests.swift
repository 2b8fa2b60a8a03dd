import Foundation
import HeraldPluginHost
import HeraldTestSupport
import Testing

@Suite("Loading plugins")
struct LoaderTests {
    @Test func goodPluginLoadsAndDescribesItself() throws {
        let plugin = try PluginLoader.load(libraryAt: try Fixtures.library("good"))
        let d = plugin.descriptor
        #expect(d.id == "fixture")
        #expect(d.version == "1.2.3")
        #expect(d.license == "Apache-2.0")
        #expect(d.abiMinor == PluginLoader.abiMinor)
        #expect(d.channelKind == .webhook)
        #expect(d.textFormat == .plain)
        #expect(d.sizeLimit == 4000)
        #expect(d.capabilities == [.inboundCallbacks, .adminActions])
        #expect(d.egressHosts == ["fixture.example.com", "config:url"])
        #expect(d.defaultTemplate == "{{title}}")
        #expect(d.hasParseCallback && d.hasInvokeAction)
        #expect(d.configSchema.secretPaths == ["token"])
    }

    @Test func loadingTwiceReusesTheLoadedImage() throws {
        let path = try Fixtures.library("good")
        let a = try PluginLoader.load(libraryAt: path)
        let b = try PluginLoader.load(libraryAt: path)
        #expect(a === b)
    }

    @Test func manifestMustAgreeWithTheDescriptor() throws {
        let dir = try Fixtures.build("mismatch", id: "fixture", version: "9.9.9")
        let manifest = try PluginManifest.read(at: dir + "/manifest.json")
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(manifest) }
        #expect(error?.code == .manifestMismatch)
        #expect(error?.message.contains("mismatch.so") == true)
        #expect(error?.message.contains("version is '9.9.9'") == true)
        #expect(error?.message.contains("'1.2.3'") == true)
    }

    /// Each refusal: the code, the file named, and the detail that tells the author what to fix.
    @Test(arguments: [
        ("no-entry", ["FIXTURE_NO_ENTRY"], PluginLoadError.Code.noEntry, "does not export herald_plugin_entry_v1"),
        ("wrong-major", ["FIXTURE_WRONG_MAJOR"], .wrongMajor, "ABI 2 (it exports herald_plugin_entry_v2)"),
        ("refuse", ["FIXTURE_REFUSE"], .refused, "needs host ABI minor 99"),
        ("null-hook", ["FIXTURE_NULL_HOOK"], .badDescriptor, "required hook 'prepare' is NULL"),
        ("small-struct", ["FIXTURE_SMALL_STRUCT"], .badDescriptor, "struct_size is"),
        ("bad-version", ["FIXTURE_BAD_VERSION"], .badDescriptor, "field 'version' must be a semantic version"),
        ("bad-schema", ["FIXTURE_BAD_SCHEMA"], .badDescriptor, "keyword 'oneOf' is not supported"),
        ("bad-caps", ["FIXTURE_BAD_CAPS"], .badDescriptor, "HERALD_CAP_INBOUND_CALLBACKS is set but parse_callback is NULL"),
    ])
    func refusals(name: String, defines: [String], code: PluginLoadError.Code, detail: String) throws {
        let path = try Fixtures.library(name, defines: defines)
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(libraryAt: path) }
        #expect(error?.code == code)
        #expect(error?.message.hasPrefix(path + ": ") == true, "message must start with the file: \(error?.message ?? "")")
        #expect(error?.message.contains(detail) == true, "\(error?.message ?? "")")
    }

    @Test func notAnELFFile() throws {
        let path = Fixtures.workDirectory + "/text.so"
        try "#!/bin/sh\necho not a plugin\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(libraryAt: path) }
        #expect(error?.code == .notELF)
        #expect(error?.message == "\(path): is not an ELF shared object")
    }

    @Test func wrongArchitecture() throws {
        // A real plugin whose ELF header says aarch64 (or x86_64 on an arm host).
        var bytes = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.library("good")))
        #if arch(x86_64)
        bytes[18] = 183; bytes[19] = 0
        let expected = "was built for aarch64, but this host runs on x86_64"
        #else
        bytes[18] = 62; bytes[19] = 0
        let expected = "was built for x86_64, but this host runs on aarch64"
        #endif
        let path = Fixtures.workDirectory + "/foreign-arch.so"
        try bytes.write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(libraryAt: path) }
        #expect(error?.code == .wrongArchitecture)
        #expect(error?.message == "\(path): \(expected)")
    }

    @Test func executableIsNotASharedObject() throws {
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(libraryAt: "/bin/true") }
        #expect(error?.code == .notELF)
        #expect(error?.message.contains("not a shared object") == true)
    }

    @Test func missingDependencyIsNamed() throws {
        let dir = Fixtures.workDirectory + "/needs-lib"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let dep = dir + "/libfixturedep.c"
        try "int fixture_dependency(void) { return 1; }\n".write(toFile: dep, atomically: true, encoding: .utf8)
        try Fixtures.run("/usr/bin/env", ["cc", "-shared", "-fPIC", dep, "-o", dir + "/libfixturedep.so"])
        let path = try Fixtures.library("needs-lib-plugin", defines: ["FIXTURE_NEEDS_LIB"])
        // Link against the helper library, then take it away.
        let linked = dir + "/needs-lib.so"
        try Fixtures.run("/usr/bin/env", ["cc", "-std=c11", "-fPIC", "-shared", "-I", Fixtures.repositoryRoot + "/include",
                                          "-DFIXTURE_NEEDS_LIB", Fixtures.source, "-L", dir, "-lfixturedep", "-o", linked])
        try FileManager.default.removeItem(atPath: dir + "/libfixturedep.so")
        _ = path
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(libraryAt: linked) }
        #expect(error?.code == .missingDependency)
        #expect(error?.message.contains("needs libfixturedep.so, which the dynamic loader cannot find (check with: ldd \(linked))") == true,
                "\(error?.message ?? "")")
    }

    @Test func pluginBuiltForANewerMinorLoadsAtTheNegotiatedMinor() throws {
        let plugin = try PluginLoader.load(libraryAt: try Fixtures.library("newer-minor", defines: ["FIXTURE_NEWER_MINOR"]))
        #expect(plugin.descriptor.abiMinor == PluginLoader.abiMinor)
        #expect(plugin.descriptor.id == "fixture")
    }

    @Test func registryCarriesOnPastBadPlugins() throws {
        let root = Fixtures.workDirectory + "/registry"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (name, defines, id) in [("good", [String](), "fixture"), ("no-entry", ["FIXTURE_NO_ENTRY"], "fixture-b"), ("dup", [], "fixture")] {
            let dir = "\(root)/\(name)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let library = try Fixtures.library(name == "dup" ? "good" : name, defines: defines)
            try FileManager.default.copyItem(atPath: library, toPath: "\(dir)/plugin.so")
            try Fixtures.manifest(id: id, version: "1.2.3", library: "plugin.so").write(toFile: "\(dir)/manifest.json", atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(atPath: "\(root)/broken", withIntermediateDirectories: true)
        try #"{"id":"broken","name":"x"}"#.write(toFile: "\(root)/broken/manifest.json", atomically: true, encoding: .utf8)

        let registry = PluginRegistry.load(directories: [root])
        #expect(registry.plugins.keys.sorted() == ["fixture"])
        let messages = registry.problems.map(\.message)
        #expect(messages.count == 3, "\(messages)")
        #expect(messages.contains { $0.contains("broken/manifest.json: field 'version' is missing") })
        #expect(messages.contains { $0.contains("no-entry/plugin.so: does not export herald_plugin_entry_v1") })
        #expect(messages.contains { $0.contains("plugin id 'fixture' is already provided by") })
    }

    @Test func swiftPluginLoadsSendsAndStaysResident() throws {
        let path = try #require(Fixtures.swiftFixture, "libHeraldSwiftFixture.so is built by `swift build`")
        let plugin = try PluginLoader.load(libraryAt: path)
        #expect(plugin.descriptor.id == "swift-fixture")
        let instance = try PluginInstance.create(plugin: plugin, name: "swift", config: .object(["url": .string("https://example.com/hook")]),
                                                 environment: environment())
        let step = instance.prepare(PreparedMessage(OutgoingMessage(idempotencyKey: "k", title: "T", body: "B")))
        guard case .request(let request) = step else { Issue.record("expected a request, got \(step)"); return }
        #expect(request.url == "https://example.com/hook")
        #expect(request.headers == [HeaderField("X-Greeting", "hello from the Swift fixture")])
        #expect(request.body == Array("T".utf8))
        instance.destroy()
        // The image must stay mapped: dynamic casts walk every loaded image's conformance tables.
        let anything: [Any] = [1, "two", 3.0, [4]]
        #expect(anything.compactMap { $0 as? CustomStringConvertible }.count == 4)
    }
}
