import Foundation
import HeraldPluginHost
import HeraldTestSupport
import Testing

/// Tencent's published TC3-HMAC-SHA256 vectors (the CVM DescribeInstances example of "签名方法 v3",
/// all three revisions of the page; providers reference §3.4), run through the plugins' own
/// signing code: Plugins/tencent-common/tc3.h, compiled into a small test-only plugin
/// (tc3_vector_shim.c) so the host's crypto services do the hashing, as in the plugins.
@Suite("Tencent TC3 signature vectors")
struct TencentSignatureVectorTests {
    static let payload = #"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#

    /// Compiled once per run: `static let` initialisation is thread-safe, so tests running in
    /// parallel never load a half-written library.
    static let library: Result<String, Fixtures.BuildError> = {
        let dir = Fixtures.workDirectory + "/tc3-shim"
        let library = dir + "/tc3-shim.so"
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Fixtures.run("/usr/bin/env", ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared", "-fvisibility=hidden",
                                              "-I", Fixtures.repositoryRoot + "/include",
                                              Fixtures.repositoryRoot + "/Plugins/tencent-common/tc3_vector_shim.c", "-o", library])
            return .success(library)
        } catch {
            return .failure(Fixtures.BuildError(description: "\(error)"))
        }
    }()

    static func shim() throws -> LoadedPlugin {
        try PluginLoader.load(libraryAt: library.get())
    }

    func sign(secretKey: String, action: String?) throws -> (authorization: String, stringToSign: String) {
        var settings: [String: JSONValue] = [
            "secret_id": .string("AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******"), "secret_key": .string(secretKey), "service": .string("cvm"),
            "host": .string("cvm.tencentcloudapi.com"), "content_type": .string("application/json; charset=utf-8"),
            "timestamp": .string("1551113065"),
        ]
        if let action { settings["action"] = .string(action) }
        let instance = try PluginInstance.create(plugin: try Self.shim(), name: "tc3", config: .object(settings), environment: environment())
        defer { instance.destroy() }
        guard case .done(let output) = instance.invokeAction("sign", input: Self.payload, response: nil) else {
            throw Fixtures.BuildError(description: "the shim did not sign")
        }
        let json = try JSONValue.parse(output)
        return (json["authorization"]?.stringValue ?? "", json["string_to_sign"]?.stringValue ?? "")
    }

    @Test func payloadHash() {
        let hash = HostCrypto.sha256(Array(Self.payload.utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(hash == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    }

    @Test func olderRevisionContentTypeAndHost() throws {
        let (auth, sts) = try sign(secretKey: "Gu5t9xGARNpq86cd98joQYCN3*******", action: nil)
        #expect(sts == "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")
        #expect(auth == "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
            + "SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c")
    }

    @Test func middleRevisionWithXTCAction() throws {
        let (auth, sts) = try sign(secretKey: "Gu5t9xGARNpq86cd98joQYCN3*******", action: "DescribeInstances")
        #expect(sts.hasSuffix("\n7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"))
        #expect(auth.hasSuffix("SignedHeaders=content-type;host;x-tc-action, Signature=be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3"))
    }

    @Test func currentRevisionWithMaskedSecret() throws {
        let (auth, _) = try sign(secretKey: String(repeating: "*", count: 32), action: "DescribeInstances")
        #expect(auth.hasSuffix("Signature=10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"))
    }
}
