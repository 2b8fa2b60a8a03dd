import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Testing

@Suite("herald.yaml")
struct ConfigTests {
    let env = ["HOOK_SECRET": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=", "HOOK_HOST": "hooks.example.com"]

    func parse(_ text: String) throws(ConfigErrors) -> HeraldConfig {
        try HeraldConfig.parse(text, file: "/etc/herald/herald.yaml", environment: env)
    }

    func errors(_ text: String) -> [String] {
        do {
            _ = try parse(text)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test func aCompleteConfigParses() throws {
        let config = try parse("""
        plugin_dirs: [plugins, /opt/herald/plugins]
        store: {path: state/herald.sqlite}
        integrations:
          - name: ops
            plugin: webhook
            settings:
              url: https://${HOOK_HOST}/herald
              secret: ${HOOK_SECRET}
              timeout_ms: 5000
              verify: true
              code: "0042"
              plain: 1:20
              ratio: 0.5
            egress: {allow: [backup.example.com], allow_loopback: false}
            proxy: http://proxy.internal:3128
        """)
        #expect(config.pluginDirectories == ["/etc/herald/plugins", "/opt/herald/plugins"])
        #expect(config.storePath == "/etc/herald/state/herald.sqlite")
        let ops = try #require(config.integration(named: "ops"))
        #expect(ops.plugin == "webhook")
        #expect(ops.settings["url"] == .string("https://hooks.example.com/herald"))
        #expect(ops.settings["secret"] == .string("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="))
        #expect(ops.settings["timeout_ms"] == .number(5000))
        #expect(ops.settings["verify"] == .bool(true))
        #expect(ops.settings["code"] == .string("0042"), "quoted scalars stay strings")
        #expect(ops.settings["plain"] == .string("1:20"), "YAML 1.1 sexagesimal numbers are strings under the core schema")
        #expect(ops.settings["ratio"] == .number(0.5))
        #expect(ops.environmentPaths == ["url", "secret"])
        #expect(ops.allowHosts == ["backup.example.com"])
        #expect(ops.proxy == "http://proxy.internal:3128")
    }

    @Test func everyErrorNamesFileLineAndKey() {
        let found = errors("""
        plugin_dirs: [plugins]
        integratons: []
        integrations:
          - name: ops
            plugin: webhook
            settings: {url: "${MISSING_URL}"}
            egress: {allow: ["https://x.example.com/"], allow_loopbak: true}
            proxy: ftp://proxy
          - name: ops
            plugin: webhook
        """)
        #expect(found == [
            "/etc/herald/herald.yaml:2:1: integratons: unknown key 'integratons' (known: plugin_dirs, store, server, templates, mapping_tables, integrations, members, teams, services)",
            "/etc/herald/herald.yaml:6:21: integrations[0].settings.url: environment variable MISSING_URL is not set",
            "/etc/herald/herald.yaml:7:49: integrations[0].egress.allow_loopbak: unknown key 'allow_loopbak' (known: allow, allow_loopback)",
            "/etc/herald/herald.yaml:7:21: integrations[0].egress.allow[0]: 'https://x.example.com/' must be a host name (no scheme, path or port)",
            "/etc/herald/herald.yaml:8:12: integrations[0].proxy: must be a proxy URL such as http://proxy.internal:3128 (http, https, socks5 or socks5h)",
            "/etc/herald/herald.yaml:9:5: integrations[1].name: 'ops' is already the name of integrations[0]",
        ])
    }

    @Test func syntaxErrorsHaveALine() {
        let found = errors("plugin_dirs: [plugins\nintegrations:\n  - name: x\n")
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("/etc/herald/herald.yaml:") == true)
        #expect(found.first?.contains("YAML syntax error") == true)
    }

    @Test func settingsAreCheckedAgainstThePluginSchemaWithLines() throws {
        let dir = try Fixtures.build("good")
        let registry = PluginRegistry.load(directories: [URL(fileURLWithPath: dir).deletingLastPathComponent().path])
        let config = try parse("""
        plugin_dirs: [plugins]
        integrations:
          - name: a
            plugin: fixture
            settings:
              token: abc
              count: 9
          - name: b
            plugin: nonesuch
        """)
        let found = config.validate(against: registry).map(\.description)
        #expect(found.contains("/etc/herald/herald.yaml:5:5: integrations[0].settings.url: is required"))
        #expect(found.contains("/etc/herald/herald.yaml:6:14: integrations[0].settings.token: must be at least 4 characters long"))
        #expect(found.contains("/etc/herald/herald.yaml:7:14: integrations[0].settings.count: must be at most 5"))
        #expect(found.contains { $0.hasPrefix("/etc/herald/herald.yaml:9:13: integrations[1].plugin: no plugin 'nonesuch' is loaded") })
        // No message repeats a setting's value: the token is a secret.
        #expect(!found.joined().contains("abc"))
    }

    @Test func secretsAreRedactedForDisplay() throws {
        let plugin = try PluginLoader.load(libraryAt: try Fixtures.library("good"))
        let config = try parse("""
        plugin_dirs: [plugins]
        integrations:
          - name: a
            plugin: fixture
            settings: {url: "https://${HOOK_HOST}/x", token: plain-in-file, mode: fast}
        """)
        let shown = config.integrations[0].redactedSettings(schema: plugin.descriptor.configSchema).jsonText
        #expect(shown == #"{"mode":"fast","token":"(secret)","url":"(secret)"}"#)
    }

    @Test func egressPolicyJoinsDeclaredHostsConfigURLsAndOperatorHosts() throws {
        let plugin = try PluginLoader.load(libraryAt: try Fixtures.library("good"))
        let config = try parse("""
        plugin_dirs: [plugins]
        integrations:
          - name: a
            plugin: fixture
            settings: {url: "https://Hooks.Example.com:8443/x"}
            egress: {allow: [extra.example.net]}
        """)
        let policy = Integration.egressPolicy(for: config.integrations[0], plugin: plugin.descriptor)
        #expect(policy.allowedHosts == ["extra.example.net", "fixture.example.com", "hooks.example.com"])
        #expect(!policy.allowLoopback)
    }
}
