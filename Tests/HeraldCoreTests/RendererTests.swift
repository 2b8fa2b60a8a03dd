import Foundation
import HeraldCore
import HeraldPluginHost
import Testing

/// What each platform does to the text it receives: the inverse of Herald's escaping.
enum Unescape {
    static func text(_ s: String, _ format: TextFormat) -> String {
        switch format {
        case .plain:
            return s
        case .markdown:
            // CommonMark: a backslash before ASCII punctuation is dropped.
            var out = ""
            var i = s.startIndex
            while i < s.endIndex {
                let c = s[i]
                let next = s.index(after: i)
                if c == "\\", next < s.endIndex, let a = s[next].asciiValue, (33...126).contains(a), !s[next].isLetter, !s[next].isNumber {
                    out.append(s[next])
                    i = s.index(after: next)
                } else {
                    out.append(c)
                    i = next
                }
            }
            return out
        case .slackMrkdwn:
            return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&amp;", with: "&")
        case .telegramHTML, .html:
            return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
                .replacingOccurrences(of: "&amp;", with: "&")
        case .json:
            let data = Data(("[\"" + s + "\"]").utf8)
            return ((try? JSONSerialization.jsonObject(with: data)) as? [String])?.first ?? "<<invalid JSON string: \(s)>>"
        }
    }
}

@Suite("Renderer")
struct RendererTests {
    static let hostile = "<b>x</b> & &amp; *bold* _it_ \"q\" 'a' \\ `c` [l](http://u) # ~s~ | 1. + - ! > é 🙂\nline2\t\u{01}"

    func renderer(_ template: String, _ format: TextFormat, limit: Int? = nil, unit: SizeUnit = .bytes, keyword: String? = nil,
                  defaultTemplate: String = "{{title}}") -> Renderer {
        Renderer(template: template, defaultTemplate: defaultTemplate, format: format, sizeLimit: limit, sizeUnit: unit, keyword: keyword)
    }

    // MARK: Escaping

    @Test(arguments: TextFormat.allCases)
    func hostileTitleAndDescriptionArriveIntact(format: TextFormat) throws {
        let r = renderer("{{title}}\u{E9}{{description}}", format)
        #expect(r.templateError == nil)
        let out = try r.render(IncidentSnapshot(id: "i", title: Self.hostile, description: Self.hostile + "2"))
        #expect(Unescape.text(out.title, format) == Self.hostile)
        #expect(Unescape.text(out.body, format) == Self.hostile + "\u{E9}" + Self.hostile + "2")
        switch format {
        case .slackMrkdwn, .telegramHTML, .html:
            #expect(!out.body.contains("<") && !out.body.contains(">"))
        case .markdown:
            #expect(out.body.contains("\\*bold\\*") && !out.body.contains(" *bold"))
        case .json:
            #expect(!out.body.contains("\n") && !out.body.contains("\u{01}"))
        case .plain:
            #expect(out.body.contains(Self.hostile))
        }
        if format == .telegramHTML || format == .html { #expect(!out.body.contains("\"")) }
    }

    @Test func literalTemplateTextIsNotEscaped() throws {
        let out = try renderer("*{{title}}* <b>#{{number}}</b>", .markdown).render(IncidentSnapshot(id: "i", number: 7, title: "a*b"))
        #expect(out.body == "*a\\*b* <b>#7</b>")
        let html = try renderer("<b>{{title}}</b>", .telegramHTML).render(IncidentSnapshot(id: "i", title: "<i>&"))
        #expect(html.body == "<b>&lt;i&gt;&amp;</b>")
    }

    @Test func variablesInSectionsAreEscapedToo() throws {
        let snap = IncidentSnapshot(id: "i", title: "t", labels: [.init("a<b", "c&d"), .init("k", ">v")], assignees: ["<x>"],
                                    links: [MessageLink(kind: .view, label: "V<", url: "https://h/a?b=1&c=2")],
                                    mentions: [Mention(displayName: "<m>", id: "u", idKind: "user_id")])
        let r = renderer("{{#labels}}{{name}}={{value}};{{/labels}}{{label.k}}{{#assignees}}{{.}}{{/assignees}}{{#links}}<{{url}}|{{label}}>{{/links}}{{#mentions}}{{name}}{{/mentions}}", .slackMrkdwn)
        #expect(r.templateError == nil, "\(r.templateError?.message ?? "")")
        let out = try r.render(snap)
        #expect(out.body == "a&lt;b=c&amp;d;k=&gt;v;&gt;v&lt;x&gt;<https://h/a?b=1&amp;c=2|V&lt;>&lt;m&gt;")
    }

    @Test func urlsAreEscapedAsLinkDestinations() throws {
        let snap = IncidentSnapshot(id: "i", title: "t", links: [MessageLink(kind: .acknowledge, label: "Ack", url: "https://h/a-b.c?x=(1)|y&z")])
        #expect(try renderer("[Ack]({{ack_url}})", .markdown).render(snap).body == "[Ack](https://h/a-b.c?x=%281%29|y&z)")
        #expect(try renderer("<{{ack_url}}|Ack>", .slackMrkdwn).render(snap).body == "<https://h/a-b.c?x=(1)%7Cy&amp;z|Ack>")
        #expect(try renderer("<a href=\"{{ack_url}}\">", .telegramHTML).render(snap).body == "<a href=\"https://h/a-b.c?x=(1)|y&amp;z\">")
    }

    @Test func templatesThatInsertDataRawAreRefused() {
        for (template, opener) in [("x {{{title}}}", "{{{"), ("\n  {{&title}}", "{{&"), ("{{=<% %>=}}<%title%>", "{{="),
                                   ("{{% CONTENT_TYPE: TEXT}}{{title}}", "{{%"), ("{{>p}}", "{{>")] {
            #expect(throws: TemplateError.self) { try Renderer.compile(template, format: .html) }
            do {
                _ = try Renderer.compile(template, format: .html)
            } catch {
                #expect(error.message.contains("'\(opener)'"), "\(error.message)")
            }
        }
        do {
            _ = try Renderer.compile("a\n  {{&title}}", format: .html)
            Issue.record("accepted {{&")
        } catch { #expect(error.message.contains("line 2, column 3")) }
    }

    @Test func leadingNewlineAndPlainTextSurviveThePragma() throws {
        #expect(try renderer("\nA {{title}}\n", .plain).render(IncidentSnapshot(id: "i", title: "T")).body == "\nA T\n")
    }

    // MARK: Template errors

    @Test func aTemplateThatDoesNotParseIsReportedAndTheDefaultIsUsed() throws {
        let r = renderer("ok\n{{#labels}}{{name}}", .markdown, defaultTemplate: "D {{title}}")
        let error = try #require(r.templateError)
        #expect(error.message.contains("does not parse at line"), "\(error.message)")
        #expect(error.message.contains("not closed"), "\(error.message)")
        let out = try r.render(IncidentSnapshot(id: "i", title: "T_1"))
        #expect(out.body == "D T\\_1")
        #expect(out.templateError == error)
    }

    @Test func anUnknownVariableIsATemplateError() throws {
        let r = renderer("{{titel}}", .plain, defaultTemplate: "{{title}}!")
        #expect(r.templateError?.message.contains("'{{titel}}', which is not a variable") == true)
        #expect(try r.render(IncidentSnapshot(id: "i", title: "T")).body == "T!")
        // Names inside sections resolve against the list element, and missing labels are fine.
        #expect(renderer("{{#labels}}{{name}}{{value}}{{/labels}}{{label.nope}}{{#links}}{{kind}}{{/links}}", .plain).templateError == nil)
    }

    @Test func aBrokenDefaultTemplateFallsBackToTheBuiltIn() throws {
        let r = renderer("{{#x}}", .plain, defaultTemplate: "{{{title}}}")
        #expect(r.templateError != nil)
        #expect(try r.render(IncidentSnapshot(id: "i", title: "T", description: "D")).body == "T\n\nD")
    }

    // MARK: Keyword

    @Test func aTemplateWithoutTheKeywordIsRefusedWithASentence() {
        do {
            try Renderer.checkKeyword(template: "{{title}}", keyword: "#", format: .markdown)
            Issue.record("accepted a template without the keyword")
        } catch {
            #expect(error.message.contains("keyword '#'"))
            #expect(error.message.hasPrefix("the template"))
        }
        // Only in a section that depends on data: refused.
        #expect(throws: TemplateError.self) { try Renderer.checkKeyword(template: "{{#has_labels}}[alert]{{/has_labels}}{{title}}", keyword: "[alert]", format: .plain) }
        // The escaped title data must not count, even when the sample title would contain it.
        #expect(throws: TemplateError.self) { try Renderer.checkKeyword(template: "{{title}}{{description}}", keyword: "Disk", format: .plain) }
        #expect(throws: Never.self) { try Renderer.checkKeyword(template: "Alert #{{number}}: {{title}}", keyword: "#", format: .markdown) }
        #expect(throws: Never.self) { try Renderer.checkKeyword(template: "{{title}}{{^has_labels}}[alert]{{/has_labels}}{{#has_labels}}[alert]{{/has_labels}}", keyword: "[alert]", format: .plain) }
    }

    @Test func aRefusedKeywordTemplateFallsBackAndTheKeywordIsStillSent() throws {
        let r = renderer("{{title}}", .markdown, keyword: "#", defaultTemplate: "{{title}}")
        #expect(r.templateError?.message.contains("keyword") == true)
        let out = try r.render(IncidentSnapshot(id: "i", title: "T"))
        #expect(out.body == "T #")
        #expect(out.keywordAppended)
        let ok = try renderer("#{{title}}", .markdown, keyword: "#").render(IncidentSnapshot(id: "i", title: "T"))
        #expect(ok.body == "#T" && !ok.keywordAppended)
        #expect(Renderer.ensureKeyword("abc", keyword: "#") == "abc #")
        #expect(Renderer.ensureKeyword("a#c", keyword: "#") == "a#c")
        #expect(Renderer.ensureKeyword("", keyword: "kw") == "kw")
    }

    @Test func theKeywordSurvivesTruncationAtEveryLimit() throws {
        let snap = IncidentSnapshot(id: "i", title: "T", description: String(repeating: "é#", count: 20))
        for limit in 0...60 {
            let r = renderer("{{description}}", .markdown, limit: limit, keyword: "KW", defaultTemplate: "{{description}}")
            guard let out = try? r.render(snap) else { continue }
            #expect(out.body.contains("KW"), "limit \(limit): \(out.body)")
            #expect(out.body.utf8.count <= limit)
        }
    }

    // MARK: Truncation

    static let linksTemplate = "{{title}}\n{{description}}\n{{#links}}[{{label}}]({{url}}) {{/links}}"
    static let links = [MessageLink(kind: .view, label: "View", url: "https://h/v"), MessageLink(kind: .acknowledge, label: "Ack", url: "https://h/a")]
    static let linksText = "[View](https://h/v) [Ack](https://h/a) "

    /// Checks a truncated body: size, marker, links kept, and the description a clean prefix.
    func checkCut(_ body: String, format: TextFormat, limit: Int, unit: SizeUnit, original: String, title: String, links: String) {
        let size = unit == .bytes ? body.utf8.count : body.unicodeScalars.count
        #expect(size <= limit, "limit \(limit): \(size)")
        #expect(String(validating: Array(body.utf8), as: UTF8.self) == body)
        #expect(body.hasSuffix("\n" + links), "limit \(limit): links lost: \(body)")
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3, "limit \(limit): \(body)")
        guard lines.count == 3 else { return }
        #expect(lines[0] == title)
        var cut = String(lines[1])
        #expect(cut.hasSuffix("…") || cut.hasSuffix("… (truncated)"), "limit \(limit): unmarked: \(cut)")
        for marker in Renderer.truncationMarkers where cut.hasSuffix(marker) { cut.removeLast(marker.count); break }
        switch format {
        case .markdown:
            let trailing = cut.reversed().prefix { $0 == "\\" }.count
            #expect(trailing % 2 == 0, "limit \(limit): split escape pair: \(cut)")
        case .slackMrkdwn, .telegramHTML, .html:
            #expect(cut.range(of: "&(?!(amp|lt|gt|quot|#39);)", options: .regularExpression) == nil, "limit \(limit): split entity: \(cut)")
        default:
            break
        }
        let plain = Unescape.text(cut, format)
        #expect(original.hasPrefix(plain), "limit \(limit): \(plain) is not a prefix")
    }

    @Test(arguments: [TextFormat.markdown, .slackMrkdwn, .telegramHTML, .html, .json, .plain])
    func truncationAtEveryByteLimit(format: TextFormat) throws {
        let description = "é🙂中a*b&<c>\"d\\_ 👩‍👩‍👧 x"
        let title = "T"
        let snap = IncidentSnapshot(id: "i", title: title, description: description, links: Self.links)
        let full = try renderer(Self.linksTemplate, format).render(snap).body
        let fullSize = full.utf8.count
        let linksPart = try renderer("{{#links}}[{{label}}]({{url}}) {{/links}}", format).render(snap).body
        let fixed = "\(title)\n\n\(linksPart)".utf8.count
        var cutCount = 0
        for limit in 0...(fullSize + 3) {
            let r = renderer(Self.linksTemplate, format, limit: limit)
            if limit < fixed + "…".utf8.count {
                do {
                    _ = try r.render(snap)
                    // The title stage may still fit when the title can be cut: it is one byte here, so no.
                    Issue.record("limit \(limit): expected an error")
                } catch {
                    #expect(error.message.contains("cannot be cut to the plugin's limit of \(limit) bytes"), "\(error.message)")
                }
                continue
            }
            let out = try r.render(snap)
            if limit >= fullSize {
                #expect(out.body == full && !out.truncated, "limit \(limit)")
            } else {
                cutCount += 1
                #expect(out.truncated)
                checkCut(out.body, format: format, limit: limit, unit: .bytes, original: description, title: title, links: linksPart)
            }
        }
        #expect(cutCount > 10)
    }

    @Test func truncationCountsCharactersWhenThePluginDoes() throws {
        let description = String(repeating: "🙂&", count: 10)
        let snap = IncidentSnapshot(id: "i", title: "T", description: description, links: Self.links)
        let linksPart = try renderer("{{#links}}[{{label}}]({{url}}) {{/links}}", .telegramHTML).render(snap).body
        let full = try renderer(Self.linksTemplate, .telegramHTML).render(snap).body
        for limit in (4 + linksPart.unicodeScalars.count)...(full.unicodeScalars.count + 1) {
            let out = try renderer(Self.linksTemplate, .telegramHTML, limit: limit, unit: .characters).render(snap)
            if limit >= full.unicodeScalars.count { #expect(!out.truncated); continue }
            checkCut(out.body, format: .telegramHTML, limit: limit, unit: .characters, original: description, title: "T", links: linksPart)
            // Counting characters lets more through than counting bytes would.
            #expect(out.body.utf8.count > out.body.unicodeScalars.count)
        }
    }

    @Test func theLongMarkerIsUsedWhereSpaceAllows() throws {
        let snap = IncidentSnapshot(id: "i", title: "T", description: String(repeating: "a", count: 100))
        let out = try renderer("{{description}}", .plain, limit: 50).render(snap)
        #expect(out.body == String(repeating: "a", count: 50 - "… (truncated)".utf8.count) + "… (truncated)")
        let short = try renderer("{{description}}", .plain, limit: 5).render(snap)
        #expect(short.body == "aa…")
        // The long marker is used only when at least as much text as the marker remains.
        #expect(try renderer("{{description}}", .plain, limit: 29).render(snap).body == String(repeating: "a", count: 26) + "…")
        #expect(try renderer("{{description}}", .plain, limit: 30).render(snap).body == String(repeating: "a", count: 15) + "… (truncated)")
    }

    @Test func aLongTitleIsCutWhenTheDescriptionIsNotEnough() throws {
        let snap = IncidentSnapshot(id: "i", title: String(repeating: "ü", count: 40), description: "d", links: Self.links)
        let out = try renderer(Self.linksTemplate, .markdown, limit: 60).render(snap)
        #expect(out.truncated)
        #expect(out.body.utf8.count <= 60)
        #expect(out.body.hasSuffix(Self.linksText.replacingOccurrences(of: "https://h/v", with: "https://h/v")))
        #expect(out.body.hasPrefix("ü") && out.body.contains("…"))
        #expect(out.title.utf8.count <= 60 && out.title.hasSuffix("… (truncated)"))
    }

    @Test func aLimitBelowTheLinksIsAClearError() {
        let snap = IncidentSnapshot(id: "i", title: "T", description: "d", links: Self.links)
        do {
            _ = try renderer(Self.linksTemplate, .markdown, limit: 10).render(snap)
            Issue.record("fitted into 10 bytes")
        } catch {
            #expect(error.message.contains("the template's own text, its links and labels are never cut"))
            #expect(error.message.contains("still \(("\n\n" + Self.linksText).utf8.count) bytes"), "\(error.message)")
        }
    }

    @Test func aDescriptionUsedTwiceIsCutInBothPlacesWithinTheLimit() throws {
        let snap = IncidentSnapshot(id: "i", title: "T", description: String(repeating: "ab", count: 30))
        for limit in 8...70 {
            let out = try renderer("{{description}}|{{description}}", .plain, limit: limit).render(snap)
            #expect(out.body.utf8.count <= limit)
            let halves = out.body.split(separator: "|", omittingEmptySubsequences: false)
            #expect(halves.count == 2 && halves[0] == halves[1])
        }
    }

    // MARK: Mentions

    static let zoom = MappingTable(name: "zoom", idKind: "jid", entries: ["ann@x.com": "ann@xmpp.zoom.us", "both@x.com": "both@xmpp.zoom.us"])
    static let feishu = MappingTable(name: "feishu", idKind: "open_id", entries: ["bob@x.com": "ou_bob"])
    static let ann = Member(name: "Ann", email: "ann@x.com", phone: "+100")
    static let phoneOnly = Member(name: "Pat", email: "", phone: "+200")
    static let emailOnly = Member(name: "Eve", email: "eve@x.com")
    static let nobody = Member(name: "Nob")

    @Test func mentionFallbackOrderIsTableThenPhoneThenEmail() {
        let (mentions, report) = MentionResolver.resolve([Self.ann, Self.phoneOnly, Self.emailOnly, Self.nobody],
                                                         tables: [Self.zoom], acceptedIDKinds: ["jid", "mobile", "email"])
        #expect(mentions == [Mention(displayName: "Ann", id: "ann@xmpp.zoom.us", idKind: "jid"),
                             Mention(displayName: "Pat", id: "+200", idKind: "mobile"),
                             Mention(displayName: "Eve", id: "eve@x.com", idKind: "email")])
        #expect(report.unresolved.map(\.member) == [Self.nobody])
        #expect(report.unresolved.first?.reason.contains("cannot @mention Nob") == true)
        // Phone comes before email when both are there and no table has them.
        let both = Member(name: "Bo", email: "bo@x.com", phone: "+300")
        #expect(MentionResolver.resolve([both], tables: [Self.zoom], acceptedIDKinds: ["jid", "mobile", "email"]).mentions.first?.idKind == "mobile")
    }

    @Test func onlyWhatThePluginAcceptsIsUsed() {
        // A table of a kind the plugin does not take is skipped; so are phone and email.
        let (mentions, report) = MentionResolver.resolve([Self.ann, Self.phoneOnly], tables: [Self.zoom, Self.feishu], acceptedIDKinds: ["open_id"])
        #expect(mentions.isEmpty)
        #expect(report.unresolved.count == 2)
        #expect(report.unresolved[0].reason.contains("mapping 'feishu' has no entry"), "\(report.unresolved[0].reason)")
        #expect(report.unresolved[0].reason.contains("accepts: open_id"))
        let emailOnly = MentionResolver.resolve([Self.ann], tables: [], acceptedIDKinds: ["email"])
        #expect(emailOnly.mentions == [Mention(displayName: "Ann", id: "ann@x.com", idKind: "email")])
        let noKinds = MentionResolver.resolve([Self.ann], tables: [Self.zoom], acceptedIDKinds: [])
        #expect(noKinds.mentions.isEmpty && !noKinds.report.isComplete)
        #expect(noKinds.report.unresolved[0].reason.contains("no mapping table gives an id kind the plugin accepts"))
        // Tables are tried in order.
        let second = MappingTable(name: "z2", idKind: "jid", entries: ["ann@x.com": "other"])
        #expect(MentionResolver.resolve([Self.ann], tables: [second, Self.zoom], acceptedIDKinds: ["jid"]).mentions.first?.id == "other")
    }

    @Test func resolvedMentionsReachTheTemplateAndTheMessage() throws {
        let (mentions, _) = MentionResolver.resolve([Self.ann], tables: [Self.zoom], acceptedIDKinds: ["jid"])
        let snap = IncidentSnapshot(id: "inc-1", number: 4, title: "T", event: .refire, mentions: mentions)
        let r = renderer("{{#is_refire}}again {{/is_refire}}{{#mentions}}@{{name}}({{id_kind}}){{/mentions}}", .plain)
        let (message, rendered) = try r.message(for: snap, idempotencyKey: "k")
        #expect(rendered.body == "again @Ann(jid)")
        #expect(message.mentions == mentions && message.incidentNumber == 4 && message.body == rendered.body && message.event == .refire)
    }

    @Test func timesAreRFC3339() throws {
        let snap = IncidentSnapshot(id: "i", title: "T", startedAt: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(try renderer("{{started_at}}|{{closed_at}}", .plain).render(snap).body == "2023-11-14T22:13:20Z|")
    }
}
