import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Testing

/// `templates:`, `keyword:` and `mapping_tables:` in herald.yaml: checked when the config loads,
/// used on the delivery path.
@Suite("Templates, keywords and mapping tables in herald.yaml")
struct TemplateConfigTests {
    static let file = "/etc/herald/herald.yaml"

    func load(_ text: String, plugins: String) throws -> (HeraldConfig, [String]) {
        let config = try HeraldConfig.parse("plugin_dirs: [\(plugins)]\n" + text, file: Self.file, environment: [:])
        let registry = PluginRegistry.load(directories: config.pluginDirectories)
        return (config, config.validate(against: registry).map(\.description))
    }

    @Test func aTemplateThatCannotProduceTheKeywordIsRefusedAtItsLine() throws {
        let (_, errors) = try load("""
        templates:
          ops:
            default: "{{title}} #alert"
            dingtalk: |
              {{title}}
              {{#has_labels}}#alert{{/has_labels}}
        integrations:
          - name: ding
            plugin: dingtalk
            settings: {webhook_url: "https://oapi.dingtalk.com/robot/send?access_token=t"}
            template: ops
            keyword: "#alert"
          - name: feishu
            plugin: feishu
            settings: {webhook_url: "https://open.feishu.cn/open-apis/bot/v2/hook/t"}
            template: ops
            keyword: "#alert"
        """, plugins: try BuiltPlugins.directory())
        // The DingTalk body only says the keyword when there are labels; Feishu uses `default`, which always does.
        #expect(errors.count == 1, "\(errors)")
        let error = try #require(errors.first)
        #expect(error.hasPrefix("\(Self.file):5:15: templates.ops.dingtalk: cannot be used by integration 'ding', whose keyword is '#alert'"), "\(error)")
        #expect(error.contains("when the incident has no description, labels"), "\(error)")
    }

    @Test func templateMistakesAndUnknownNamesAreReportedWithLines() throws {
        let (config, errors) = try load("""
        templates:
          ops:
            slack: "{{titel}} {{{description}}}"
            telegram: "{{title}"
          only-sms:
            sms: "{{title}}"
        mapping_tables:
          jids: {id_kind: jid, entries: {Ann@Example.com: "ann@xmpp.zoom.us"}}
        integrations:
          - {name: s, plugin: slack, settings: {webhook_url: "https://hooks.slack.com/services/T/B/x"}, template: ops}
          - {name: t, plugin: telegram, settings: {bot_token: "1:x", chat_ids: ["1"]}, template: ops}
          - {name: z, plugin: zoom, settings: {webhook_url: "https://inbots.zoom.us/incomingwebhook/x", verification_token: "v"}, template: only-sms}
          - {name: w, plugin: wecom, settings: {webhook_url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}, template: opz, mention_tables: [jids, nope]}
        """, plugins: try BuiltPlugins.directory())
        #expect(errors.contains { $0.hasPrefix("\(Self.file):4:12: templates.ops.slack: the template uses '{{{' at line 1, column 11") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("\(Self.file):5:15: templates.ops.telegram: the template does not parse at line 1, column 8: a tag is not closed") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("\(Self.file):6:3: templates.only-sms: has no body for integration 'z' (plugin zoom); add 'zoom:', 'group_bot:' or 'default:'") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("\(Self.file):14:") && $0.contains("integrations[3].template: no template 'opz' (defined: only-sms, ops)") }, "\(errors)")
        #expect(errors.contains { $0.contains("integrations[3].mention_tables: no mapping table 'nope' (defined: jids)") }, "\(errors)")
        #expect(errors.count == 5, "\(errors)")
        // Emails are looked up without case.
        #expect(config.mappingTables.first?.entries["ann@example.com"] == "ann@xmpp.zoom.us")
    }

    @Test func aBodyIsChosenByPluginThenChannelKindThenDefault() throws {
        let config = try HeraldConfig.parse("""
        plugin_dirs: []
        templates:
          t: {default: D, group_bot: G, zoom: Z}
        """, file: Self.file, environment: [:])
        let template = try #require(config.templates["t"])
        #expect(template.body(pluginID: "zoom", channelKind: .groupBot)?.text == "Z")
        #expect(template.body(pluginID: "slack", channelKind: .groupBot)?.text == "G")
        #expect(template.body(pluginID: "email", channelKind: .email)?.text == "D")
    }

    @Test func configCheckFailsOnAKeywordTheTemplateCannotProduce() throws {
        let dir = NSTemporaryDirectory() + "herald-keyword-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let file = dir + "/herald.yaml"
        try """
        plugin_dirs: [\(try BuiltPlugins.directory())]
        templates:
          plain: {default: "{{title}}"}
        integrations:
          - name: ding
            plugin: dingtalk
            settings: {webhook_url: "https://oapi.dingtalk.com/robot/send?access_token=t"}
            template: plain
            keyword: "[alert]"
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let run = try HeraldBinary.run(["config", "check", file])
        #expect(run.status != 0)
        #expect(run.err.contains("\(file):3:20: templates.plain.default: cannot be used by integration 'ding', whose keyword is '[alert]'"), "\(run.err)")
    }

    /// A DingTalk bot with a custom keyword: a template that says it is delivered as written;
    /// with the plugin's default template the keyword is appended, so the bot still accepts it.
    @Test(arguments: [true, false])
    func everyMessageThroughAKeywordIntegrationCarriesIt(withTemplate: Bool) async throws {
        let mock = try MockServer(script: "dingtalk_mock.py", arguments: ["--keyword", "[herald]"])
        defer { mock.stop() }
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        templates:
          ops:
            dingtalk: |
              ### [herald] {{title}}
              {{description}}
        integrations:
          - name: ding
            plugin: dingtalk
            settings: {webhook_url: "\(mock.base)/robot/send?access_token=test-token"}
            egress: {allow: [127.0.0.1], allow_loopback: true}
            keyword: "[herald]"
        \(withTemplate ? "    template: ops" : "")
        """, file: Self.file, environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        #expect(runtime.problems.isEmpty, "\(runtime.problems)")
        let ding = try #require(runtime.integrations["ding"])
        let snapshot = IncidentSnapshot(id: "inc-7", title: GroupBotPluginTests.title, description: "92% used", severity: .critical)
        let composed = try ding.compose(snapshot, idempotencyKey: "k-\(UUID().uuidString.prefix(8))")
        let result = await runtime.deliverer.deliver(composed, through: ding)
        guard case .delivered = result.outcome else { Issue.record("\(result.outcome)"); return }
        #expect(result.notes.contains { $0.contains("keyword '[herald]' was appended") } == !withTemplate, "\(result.notes)")
        let received = try JSONValue.parse(Data(try await mock.get("/_received"))).arrayValue ?? []
        let texts = GroupBotPluginTests.strings(in: received.first ?? .null)
        #expect(texts.contains { $0.contains("[herald]") })
        #expect(texts.contains { $0.contains(withTemplate ? "### [herald]" : "[herald]") })
    }

    /// Zoom mentions by JID from a mapping table; a member the table lacks is reported on the
    /// delivery, not silently dropped.
    @Test func mentionsResolveThroughTheMappingTableAndTheRestAreReported() async throws {
        let mock = try MockServer(script: "zoom_mock.py", arguments: ["--webhook-id", "AbCdEf123", "--token", "tok"])
        defer { mock.stop() }
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        mapping_tables:
          zoom-jids:
            id_kind: jid
            entries: {ann@example.com: "kdykjnimt4kk4mmgs4v5ag@xmpp.zoom.us"}
        integrations:
          - name: zoom
            plugin: zoom
            settings: {webhook_url: "\(mock.base)/chat/webhooks/incomingwebhook/AbCdEf123", verification_token: tok}
            egress: {allow: [127.0.0.1], allow_loopback: true}
        """, file: Self.file, environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        let zoom = try #require(runtime.integrations["zoom"], "\(runtime.problems)")
        let members = [Member(name: "Ann", email: "Ann@Example.com"), Member(name: "Bob", email: "bob@example.com", phone: "+8613800000000")]
        let composed = try zoom.compose(IncidentSnapshot(id: "inc-8", title: "Disk full"), mentioning: members, idempotencyKey: "k-\(UUID().uuidString.prefix(8))")
        #expect(composed.message.mentions.map(\.id) == ["kdykjnimt4kk4mmgs4v5ag@xmpp.zoom.us"])
        let result = await runtime.deliverer.deliver(composed, through: zoom)
        guard case .delivered = result.outcome else { Issue.record("\(result.outcome)"); return }
        #expect(result.notes.contains { $0.hasPrefix("cannot @mention Bob: mapping 'zoom-jids' has no entry for them") }, "\(result.notes)")
        let received = try JSONValue.parse(Data(try await mock.get("/_received"))).arrayValue ?? []
        let texts = GroupBotPluginTests.strings(in: received.first ?? .null)
        #expect(texts.contains { $0.contains("<!kdykjnimt4kk4mmgs4v5ag@xmpp.zoom.us|Ann>") }, "\(texts)")
    }
}
