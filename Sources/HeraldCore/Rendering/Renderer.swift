import Foundation
import HeraldPluginHost
import Mustache

/// A template that does not parse, uses a construct Herald refuses, names an unknown variable or
/// cannot produce the integration's keyword. `message` is one sentence.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A message that cannot be made to fit the plugin's size limit.
public struct RenderError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A template checked and ready to render for one text format.
public struct CompiledTemplate: Sendable {
    public let source: String
    public let format: TextFormat
    let mustache: MustacheTemplate
}

/// What `Renderer.render` produced.
public struct RenderedMessage: Sendable, Equatable {
    /// The incident title, escaped for the format and within the size limit.
    public var title: String
    /// The rendered body, within the size limit, containing the keyword if there is one.
    public var body: String
    /// True when the description (or, failing that, the title) was cut to fit; the cut is marked "…".
    public var truncated: Bool
    /// True when the body lacked the keyword and it was appended.
    public var keywordAppended: Bool
    /// Set when the integration's template was refused and the plugin's default was used instead.
    public var templateError: TemplateError?
}

/// Turns an `IncidentSnapshot` into the title and body a plugin receives.
///
/// Templates are Mustache (swift-mustache). Every variable is escaped for the plugin's text format
/// when it is substituted (a swift-mustache content type selected by a `CONTENT_TYPE` pragma the
/// renderer puts in front of the template); the template's own text is not escaped. Because a
/// template must never insert incident data raw, templates may not use `{{{name}}}`, `{{&name}}`,
/// set delimiters (`{{= =}}`), pragmas (`{{% }}`), partials or inheritance (`{{> }}`, `{{< }}`,
/// `{{$ }}`): they are refused when the template is compiled.
///
/// Variables: `id`, `number`, `title`, `description`, `severity`, `status`, `event` ("fire",
/// "refire", ...), `is_refire`, `is_test`, `labels` (a list of `{name, value}`), `label` (a map:
/// `{{label.host}}`), `has_labels`, `started_at`, `acknowledged_at`, `closed_at` (RFC 3339, empty
/// when unknown), `assignees` (a list of names: `{{#assignees}}{{.}}{{/assignees}}`),
/// `assignee_list` ("Ann, Bob"), `alert_count`, `links` (a list of `{kind, label, url}`),
/// `view_url`, `ack_url`, `snooze_url`, `close_url`, `has_links`, `mentions` (a list of
/// `{name, id, id_kind}`). URLs are escaped as link destinations (see `TextEscaping.escapeURL`).
///
/// Truncation cuts only the description (then, if that is not enough, the title): the template's
/// own text (its link section, its keyword) always survives.
public struct Renderer: Sendable {
    public let format: TextFormat
    /// In `sizeUnit`; nil when unlimited.
    public let sizeLimit: Int?
    public let sizeUnit: SizeUnit
    public let keyword: String?
    public let template: CompiledTemplate
    /// The integration template's error, when the default template is used instead.
    public let templateError: TemplateError?

    /// The template used when the plugin's default template itself fails.
    public static let builtInTemplate = "{{title}}\n\n{{description}}"

    /// Uses `template` when it compiles (and can produce `keyword`), otherwise `defaultTemplate`
    /// (the plugin's), recording why in `templateError`.
    public init(template: String?, defaultTemplate: String, format: TextFormat, sizeLimit: Int?,
                sizeUnit: SizeUnit = .bytes, keyword: String? = nil) {
        self.format = format
        self.sizeLimit = sizeLimit
        self.sizeUnit = sizeUnit
        let keyword = keyword.flatMap { $0.isEmpty ? nil : $0 }
        self.keyword = keyword
        var error: TemplateError?
        if let template {
            do {
                let compiled = try Self.compile(template, format: format)
                if let keyword { try Self.checkKeyword(compiled, keyword: keyword) }
                self.template = compiled
                self.templateError = nil
                return
            } catch let e {
                error = e
            }
        }
        if let compiled = try? Self.compile(defaultTemplate, format: format) {
            self.template = compiled
        } else {
            // swiftlint:disable:next force_try
            self.template = try! Self.compile(Self.builtInTemplate, format: format)
            if error == nil, let e = Self.compileError(defaultTemplate, format: format) {
                error = TemplateError("the plugin's default template was refused (\(e.message)); Herald used '\(Self.builtInTemplate.replacingOccurrences(of: "\n", with: "\\n"))'")
            }
        }
        self.templateError = error
    }

    /// A renderer for a plugin and an integration's template and keyword.
    public init(descriptor: PluginDescriptor, template: String?, keyword: String? = nil) {
        self.init(template: template, defaultTemplate: descriptor.defaultTemplate, format: descriptor.textFormat,
                  sizeLimit: descriptor.sizeLimit, sizeUnit: descriptor.sizeUnit, keyword: keyword)
    }

    static func compileError(_ template: String, format: TextFormat) -> TemplateError? {
        do { _ = try compile(template, format: format); return nil } catch { return error }
    }

    // MARK: Compiling

    static let registered: Void = {
        for format in TextFormat.allCases {
            MustacheContentTypes.register(HeraldContentType(format: format), named: contentTypeName(format))
        }
    }()

    static func contentTypeName(_ format: TextFormat) -> String { "HERALD_" + format.description.uppercased() }

    /// Tag openers that would insert data unescaped or change how the template is read.
    static let refusedTags: [(String, String)] = [
        ("{{{", "inserts a value unescaped; use '{{name}}'"),
        ("{{&", "inserts a value unescaped; use '{{name}}'"),
        ("{{=", "changes the delimiters, which Herald does not allow"),
        ("{{%", "is a pragma, which Herald does not allow"),
        ("{{>", "is a partial, which Herald does not support"),
        ("{{<", "is a parent template, which Herald does not support"),
        ("{{$", "is a block, which Herald does not support"),
    ]

    /// Checks and compiles a template for `format`.
    public static func compile(_ source: String, format: TextFormat) throws(TemplateError) -> CompiledTemplate {
        _ = registered
        for (opener, why) in refusedTags {
            if let range = source.range(of: opener) {
                let (line, column) = position(of: range.lowerBound, in: source)
                throw TemplateError("the template uses '\(opener)' at line \(line), column \(column), which \(why)")
            }
        }
        // The pragma sits alone on the first line, which Mustache removes as a standalone tag.
        let mustache: MustacheTemplate
        do {
            mustache = try MustacheTemplate(string: "{{% CONTENT_TYPE: \(contentTypeName(format))}}\n" + source)
        } catch let error as MustacheTemplate.ParserError {
            let line = max(1, error.context.lineNumber - 1)
            throw TemplateError("the template does not parse at line \(line), column \(error.context.columnNumber): \(parserReason(error.error))")
        } catch {
            throw TemplateError("the template does not parse: \(error)")
        }
        let compiled = CompiledTemplate(source: source, format: format, mustache: mustache)
        // Unknown names are found by rendering: a lookup that reaches the top level and misses.
        for sample in [IncidentSnapshot.sample, .minimal] {
            let root = Root(values: Self.variables(sample, format: format))
            _ = mustache.render(root)
            if let name = root.unknown.first {
                throw TemplateError("the template uses '{{\(name)}}', which is not a variable; the variables are \(variableNames.joined(separator: ", "))")
            }
        }
        return compiled
    }

    static func parserReason(_ error: Error) -> String {
        switch error as? MustacheTemplate.Error {
        case .sectionCloseNameIncorrect: "a section is closed with a name other than the one it was opened with"
        case .unfinishedName: "a tag is not closed with '}}'"
        case .expectedSectionEnd: "a section is not closed (add '{{/name}}')"
        case .invalidSetDelimiter: "a set-delimiter tag is malformed"
        case .transformAppliedToInheritanceSection, .illegalTokenInsideInheritSection, .textInsideInheritSection:
            "template inheritance is used incorrectly"
        case .invalidConfigVariableSyntax, .unrecognisedConfigVariable: "a pragma is malformed"
        default:
            // swift-mustache says "overflow" when the text ends inside a tag.
            "\(error)" == "overflow" ? "a tag is not closed with '}}'" : "\(error)"
        }
    }

    static func position(of index: String.Index, in text: String) -> (Int, Int) {
        var line = 1, column = 1
        for c in text[..<index] {
            if c == "\n" || c == "\r\n" { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    // MARK: Keyword

    /// Refuses a template that does not produce `keyword` from its own text in every case (with
    /// every field and list filled, and with every optional one empty); incident data cannot be
    /// relied on to contain it.
    public static func checkKeyword(template: String, keyword: String, format: TextFormat) throws(TemplateError) {
        try checkKeyword(compile(template, format: format), keyword: keyword)
    }

    static func checkKeyword(_ template: CompiledTemplate, keyword: String) throws(TemplateError) {
        guard !keyword.isEmpty else { return }
        for (sample, when) in [(IncidentSnapshot.sample, "when the incident has every field"), (.minimal, "when the incident has no description, labels, links or mentions")] {
            let values = blanked(variables(sample, format: template.format))
            let output = template.mustache.render(values)
            let literal = output.unicodeScalars.split(separator: dataMark, omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)) }
            if !literal.contains(where: { $0.contains(keyword) }) {
                throw TemplateError("the template does not contain the keyword '\(keyword)' in its own text \(when); the platform drops messages without it, so write it into the template (e.g. at the end of the first line)")
            }
        }
    }

    /// `body` with `keyword` appended (after a space) if it does not contain it.
    public static func ensureKeyword(_ body: String, keyword: String?) -> String {
        guard let keyword, !keyword.isEmpty, !body.contains(keyword) else { return body }
        return body.isEmpty ? keyword : body + " " + keyword
    }

    // MARK: Rendering

    /// The title and body for `snapshot`, within the size limit.
    public func render(_ snapshot: IncidentSnapshot) throws(RenderError) -> RenderedMessage {
        let clean = Self.sanitized(snapshot)
        var result = RenderedMessage(title: TextEscaping.escape(clean.title, for: format), body: "", truncated: false,
                                     keywordAppended: false, templateError: templateError)
        let full = renderBody(clean)
        result.body = Self.ensureKeyword(full, keyword: keyword)
        result.keywordAppended = result.body != full
        if let limit = sizeLimit {
            if size(result.title) > limit {
                result.title = cutEscaped(result.title, budget: limit) ?? ""
            }
            if size(result.body) > limit {
                if let (body, appended) = fit(.description, clean, limit: limit) {
                    result.body = body
                    result.keywordAppended = appended
                } else {
                    // Then the description is only the marker, and the title is cut.
                    var bare = clean
                    bare.description = clean.description.isEmpty ? "" : "…"
                    guard let (body, appended) = fit(.title, bare, limit: limit) else {
                        var empty = bare
                        empty.title = ""
                        empty.description = ""
                        let minimum = size(Self.ensureKeyword(renderBody(empty), keyword: keyword))
                        throw RenderError("the message is \(size(result.body)) \(sizeUnit) and cannot be cut to the plugin's limit of \(limit) \(sizeUnit): without its description and title it is still \(minimum) \(sizeUnit) (the template's own text, its links and labels are never cut)")
                    }
                    result.body = body
                    result.keywordAppended = appended
                }
                result.truncated = true
            }
        }
        return result
    }

    /// A complete `OutgoingMessage` for `snapshot`.
    public func message(for snapshot: IncidentSnapshot, idempotencyKey: String) throws(RenderError) -> (OutgoingMessage, RenderedMessage) {
        let rendered = try render(snapshot)
        var message = OutgoingMessage(idempotencyKey: idempotencyKey, title: rendered.title, body: rendered.body)
        message.event = snapshot.event
        message.incidentID = snapshot.id
        message.incidentNumber = snapshot.number
        message.severity = snapshot.severity
        message.status = snapshot.status
        message.labels = snapshot.labels.map { ($0.name, $0.value) }
        message.links = snapshot.links
        message.mentions = snapshot.mentions
        func ms(_ d: Date?) -> Int64 { d.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? 0 }
        message.startedAtMs = ms(snapshot.startedAt)
        message.acknowledgedAtMs = ms(snapshot.acknowledgedAt)
        message.closedAtMs = ms(snapshot.closedAt)
        message.alertCount = UInt32(clamping: snapshot.alertCount)
        return (message, rendered)
    }

    func size(_ s: some StringProtocol) -> Int { sizeUnit == .bytes ? s.utf8.count : s.unicodeScalars.count }

    func renderBody(_ snapshot: IncidentSnapshot) -> String {
        template.mustache.render(Self.variables(snapshot, format: format))
    }

    enum Field { case description, title }

    /// The body with `field` cut so that the whole fits `limit` (and whether the keyword had to
    /// be appended), or nil when it cannot.
    func fit(_ field: Field, _ snapshot: IncidentSnapshot, limit: Int) -> (String, Bool)? {
        var probe = snapshot
        let value: String
        switch field {
        case .description: value = snapshot.description; probe.description = String(Self.cutMark)
        case .title: value = snapshot.title; probe.title = String(Self.cutMark)
        }
        let parts = renderBody(probe).unicodeScalars.split(separator: Self.cutMark, omittingEmptySubsequences: false)
            .map { String(String.UnicodeScalarView($0)) }
        let occurrences = parts.count - 1
        guard occurrences > 0 else { return nil }
        let fixed = size(Self.ensureKeyword(parts.joined(), keyword: keyword))
        guard fixed < limit, let cut = cutEscaped(TextEscaping.escape(value, for: format), budget: (limit - fixed) / occurrences) else { return nil }
        let joined = parts.joined(separator: cut)
        let body = Self.ensureKeyword(joined, keyword: keyword)
        return size(body) <= limit ? (body, body != joined) : nil
    }

    public static let truncationMarkers = ["… (truncated)", "…"]

    /// `escaped` cut to `budget` at a unit boundary and marked, or nil when not even "…" fits.
    /// The long marker is used when at least as much text as the marker itself remains.
    func cutEscaped(_ escaped: String, budget: Int) -> String? {
        if size(escaped) <= budget { return escaped }
        for (n, marker) in Self.truncationMarkers.enumerated() where n == Self.truncationMarkers.count - 1 ? size(marker) <= budget : 2 * size(marker) <= budget {
            let room = budget - size(marker)
            var used = 0
            var out = ""
            for unit in TextEscaping.atomicUnits(escaped, format: format) {
                let s = size(unit)
                if used + s > room { break }
                out += unit
                used += s
            }
            return out + marker
        }
        return nil
    }

    // MARK: Variables

    /// Private-use scalars the renderer uses internally; removed from incident data.
    static let urlMark: Unicode.Scalar = "\u{E000}"
    static let cutMark: Unicode.Scalar = "\u{E001}"
    static let dataMark: Unicode.Scalar = "\u{E002}"

    static func sanitize(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0 == urlMark || $0 == cutMark || $0 == dataMark }) else { return s }
        return String(String.UnicodeScalarView(s.unicodeScalars.filter { $0 != urlMark && $0 != cutMark && $0 != dataMark }))
    }

    static func sanitized(_ s: IncidentSnapshot) -> IncidentSnapshot {
        var s = s
        s.id = sanitize(s.id)
        s.title = sanitize(s.title)
        s.description = sanitize(s.description)
        s.labels = s.labels.map { .init(sanitize($0.name), sanitize($0.value)) }
        s.assignees = s.assignees.map(sanitize)
        s.links = s.links.map { MessageLink(kind: $0.kind, label: sanitize($0.label), url: sanitize($0.url), callbackToken: $0.callbackToken) }
        s.mentions = s.mentions.map { Mention(displayName: sanitize($0.displayName), id: sanitize($0.id), idKind: sanitize($0.idKind)) }
        return s
    }

    static let variableNames = ["id", "number", "title", "description", "severity", "status", "event", "is_refire", "is_test",
                                "labels", "label", "has_labels", "started_at", "acknowledged_at", "closed_at", "assignees",
                                "assignee_list", "alert_count", "links", "view_url", "ack_url", "snooze_url", "close_url",
                                "has_links", "mentions"]

    static func rfc3339(_ date: Date?) -> String {
        guard let date else { return "" }
        return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false, timeZone: TimeZone(identifier: "UTC")!))
    }

    static func linkKind(_ kind: MessageLink.Kind) -> String {
        switch kind {
        case .view: "view"
        case .acknowledge: "acknowledge"
        case .snooze: "snooze"
        case .close: "close"
        case .other: "other"
        }
    }

    /// The template's variables. URLs carry `urlMark` so the content type escapes them as URLs.
    static func variables(_ s: IncidentSnapshot, format: TextFormat) -> [String: Any] {
        func url(_ kind: MessageLink.Kind) -> String {
            s.links.first { $0.kind == kind }.map { String(urlMark) + $0.url } ?? ""
        }
        var labelMap: [String: Any] = [:]
        for label in s.labels where labelMap[label.name] == nil { labelMap[label.name] = label.value }
        return [
            "id": s.id,
            "number": s.number,
            "title": s.title,
            "description": s.description,
            "severity": s.severity.description,
            "status": s.status.description,
            "event": s.event.description,
            "is_refire": s.event == .refire,
            "is_test": s.event == .test,
            "labels": s.labels.map { ["name": $0.name, "value": $0.value] as [String: Any] },
            "label": labelMap,
            "has_labels": !s.labels.isEmpty,
            "started_at": rfc3339(s.startedAt),
            "acknowledged_at": rfc3339(s.acknowledgedAt),
            "closed_at": rfc3339(s.closedAt),
            "assignees": s.assignees,
            "assignee_list": s.assignees.joined(separator: ", "),
            "alert_count": s.alertCount,
            "links": s.links.map { ["kind": linkKind($0.kind), "label": $0.label, "url": String(urlMark) + $0.url] as [String: Any] },
            "view_url": url(.view),
            "ack_url": url(.acknowledge),
            "snooze_url": url(.snooze),
            "close_url": url(.close),
            "has_links": !s.links.isEmpty,
            "mentions": s.mentions.map { ["name": $0.displayName, "id": $0.id, "id_kind": $0.idKind] as [String: Any] },
        ]
    }

    /// `values` with every string and number replaced by `dataMark` (booleans and list lengths kept).
    static func blanked(_ value: Any) -> Any {
        switch value {
        case let d as [String: Any]: return d.mapValues(blanked)
        case let a as [[String: Any]]: return a.map { $0.mapValues(blanked) }
        case let a as [String]: return a.map { _ in String(dataMark) }
        case is Bool: return value
        default: return String(dataMark)
        }
    }
}

/// The top of the render context: records names a template looks up that do not exist.
final class Root: MustacheParent {
    let values: [String: Any]
    var unknown: [String] = []
    init(values: [String: Any]) { self.values = values }
    func child(named name: String) -> Any? {
        if let v = values[name] { return v }
        unknown.append(name)
        return nil
    }
}

/// The swift-mustache content type that escapes every substituted variable for one format.
struct HeraldContentType: MustacheContentType {
    let format: TextFormat
    func escapeText(_ text: String) -> String {
        if text.unicodeScalars.first == Renderer.urlMark {
            return TextEscaping.escapeURL(String(String.UnicodeScalarView(text.unicodeScalars.dropFirst())), for: format)
        }
        return TextEscaping.escape(text, for: format)
    }
}
