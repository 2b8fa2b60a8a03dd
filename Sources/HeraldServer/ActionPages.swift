import Foundation
import HeraldCore
import HeraldPluginHost
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /l/<token>` shows the incident with buttons; `POST /l/<token>` performs one action, once.
///
/// Opening the page changes nothing: IM clients and mail scanners fetch links before anyone
/// clicks. The page works without JavaScript (plain forms), escapes everything it shows, and
/// tells browsers not to cache it, frame it or leak the link in a Referer.
struct LinkRoutes: Sendable {
    let context: ServerContext

    static let snoozeChoices = [15, 30, 60, 120, 240, 480, 1440]
    static let maxFormBytes = 16 * 1024
    static let maxActorBytes = 64

    @Sendable func page(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        let claims: LinkSigner.Claims
        switch verify(try ctx.parameters.require("token")) {
        case .success(let c): claims = c
        case .failure(let refusal): return refusal.response
        }
        guard let found = try await load(claims.incidentID) else { return Self.missing }
        let (incident, timeline) = found
        return HTMLPage.response(.ok, title: "#\(incident.number) \(incident.title)",
                                 body: HTMLPage.incident(incident, timeline: timeline, claims: claims, notice: nil, actions: true))
    }

    @Sendable func perform(_ request: Request, _ ctx: HeraldRequestContext) async throws -> Response {
        let claims: LinkSigner.Claims
        switch verify(try ctx.parameters.require("token")) {
        case .success(let c): claims = c
        case .failure(let refusal): return refusal.response
        }
        let form: [String: String]
        do {
            try BodyReader.requireContentType(request, "application/x-www-form-urlencoded")
            let bytes = try await BodyReader.collect(request, limit: Self.maxFormBytes, setting: nil)
            guard let text = String(validating: bytes, as: UTF8.self) else { throw APIError.badRequest("the form is not valid UTF-8") }
            form = try Self.parseForm(text)
        } catch let error as APIError {
            return HTMLPage.message(error.status, "The form was refused", error.message)
        }
        guard let incident = try await load(claims.incidentID)?.0 else { return Self.missing }

        // What to do, checked before the link's one use is spent.
        let actor: String
        let via: String
        if claims.member.isEmpty {
            let given = (form["actor"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !given.isEmpty else { return HTMLPage.message(.badRequest, "Who are you?", "actor: enter your name to act on the incident.") }
            guard given.utf8.count <= Self.maxActorBytes, !given.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                return HTMLPage.message(.badRequest, "Who are you?", "actor: must be a name of at most \(Self.maxActorBytes) bytes.")
            }
            actor = given
            via = "browser link (name given on the page)"
        } else {
            actor = claims.member
            via = "browser link"
        }
        var steps: [IncidentAction]
        switch form["action"] ?? "" {
        case "acknowledge":
            steps = [.acknowledge]
        case "snooze":
            guard let minutes = form["minutes"].flatMap({ Int($0) }), (1...1440).contains(minutes) else {
                return HTMLPage.message(.badRequest, "Snooze for how long?", "minutes: must be a whole number from 1 to 1440.")
            }
            // Snooze needs an acknowledgement first; the button does both.
            steps = incident.status == .triggered ? [.acknowledge, .snooze(minutes: minutes)] : [.snooze(minutes: minutes)]
        case "close":
            steps = [.close]
        default:
            return HTMLPage.message(.badRequest, "Unknown action", "action: must be acknowledge, snooze or close.")
        }
        let allowed = incident.isOpen || (incident.status == .resolved && steps == [.close])
        guard allowed else {
            return HTMLPage.message(.conflict, "Nothing to do", "Incident #\(incident.number) is \(incident.status) already.")
        }

        let fresh = try await context.service.store.write { [nonce = claims.nonce, expiry = claims.expiresAt, now = context.clock()] in
            try $0.useLinkNonce(nonce, expiresAt: expiry, now: now)
        }
        guard fresh else {
            return HTMLPage.message(.conflict, "This link was used already",
                                    "Each link performs one action. Open a newer message from Herald, or the incident's latest link.")
        }
        var current = incident
        do {
            for step in steps { current = try await context.service.act(step, on: incident.id, by: actor, via: via) }
        } catch let error as IncidentError {
            return HTMLPage.message(error.httpStatus, "The action was refused", error.message)
        }
        let timeline = try await context.service.timeline(incident.id)
        let done = switch steps.last! {
        case .snooze(let minutes): "Snoozed for \(minutes) minutes by \(actor)."
        case .close: "Closed by \(actor)."
        default: "Acknowledged by \(actor)."
        }
        return HTMLPage.response(.ok, title: "#\(current.number) \(current.title)",
                                 body: HTMLPage.incident(current, timeline: timeline, claims: claims, notice: done, actions: false))
    }

    func verify(_ token: String) -> Result<LinkSigner.Claims, Refusal> {
        do {
            return .success(try context.signer.verify(token, now: context.clock()))
        } catch .expired {
            return .failure(Refusal(HTMLPage.message(.gone, "This link has expired", "Links in Herald's messages work for a limited time. Open a newer message about the incident.")))
        } catch {
            return .failure(Refusal(HTMLPage.message(.forbidden, "This link is not valid", "\(error.description.prefix(1).uppercased())\(error.description.dropFirst()).")))
        }
    }

    struct Refusal: Error { let response: Response; init(_ r: Response) { response = r } }

    func load(_ id: String) async throws -> (Incident, [TimelineEntry])? {
        try await context.service.store.read { reader in
            guard let incident = try reader.incident(id: id) else { return nil }
            return (incident, try reader.timeline(incidentID: id))
        }
    }

    static var missing: Response { HTMLPage.message(.notFound, "No such incident", "The incident this link points to does not exist (any more).") }

    /// `application/x-www-form-urlencoded`: `+` is a space, then percent-decoding; the last value wins.
    static func parseForm(_ text: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) throws -> String {
                guard let value = s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
                    throw APIError.badRequest("the form has a field that is not valid percent-encoded UTF-8")
                }
                return value
            }
            let name = try decode(parts[0])
            guard ["action", "minutes", "actor"].contains(name) else {
                throw APIError.badRequest("\(FieldReader.printable(name)): is not a known field (known: action, minutes, actor)")
            }
            result[name] = parts.count == 2 ? try decode(parts[1]) : ""
        }
        return result
    }
}

/// Server-side HTML: every dynamic value goes through `escape`.
enum HTMLPage {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static let style = """
        body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2129}
        main{max-width:46rem;margin:0 auto;padding:1.5rem}
        h1{font-size:1.4rem;margin:.2rem 0 1rem;overflow-wrap:anywhere}
        h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
        .badge{display:inline-block;padding:.05rem .5rem;border-radius:.3rem;font-size:.85rem;font-weight:600;background:#e5e6eb}
        .critical{background:#fde2e2;color:#a3161b}.warning{background:#fff1d6;color:#8a5200}.info{background:#e3efff;color:#17509e}
        dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}dt{color:#6b7280}dd{margin:0;overflow-wrap:anywhere}
        table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.2rem .5rem;border-bottom:1px solid #e5e6eb;overflow-wrap:anywhere}
        form{background:#fff;border:1px solid #e5e6eb;border-radius:.5rem;padding:1rem;display:flex;flex-wrap:wrap;gap:.6rem;align-items:center}
        select,input{font:inherit;padding:.25rem .4rem}
        button{font:inherit;padding:.4rem .9rem;border-radius:.4rem;border:1px solid #c9cdd4;background:#fff;cursor:pointer}
        button.primary{background:#1d4ed8;border-color:#1d4ed8;color:#fff}
        .notice{background:#e7f6ec;border:1px solid #9bd3ae;padding:.6rem 1rem;border-radius:.5rem}
        ol{padding-left:1.2rem}li{margin:.2rem 0}time{color:#6b7280;font-size:.9rem}pre{white-space:pre-wrap;overflow-wrap:anywhere}
        """

    static func document(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="robots" content="noindex">
        <title>\(escape(title)) · Herald</title>
        <style>\(style)</style>
        </head>
        <body><main>
        \(body)
        </main></body>
        </html>
        """
    }

    static func response(_ status: HTTPResponse.Status, title: String, body: String) -> Response {
        let html = document(title: title, body: body)
        return Response(status: status, headers: [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func message(_ status: HTTPResponse.Status, _ heading: String, _ sentence: String) -> Response {
        response(status, title: heading, body: "<h1 id=\"message\">\(escape(heading))</h1>\n<p id=\"detail\">\(escape(sentence))</p>")
    }

    static func time(_ date: Date) -> String {
        // "2024-05-01 08:00:00 UTC"
        date.formatted(.iso8601).replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: " UTC")
    }

    static func incident(_ incident: Incident, timeline: [TimelineEntry], claims: LinkSigner.Claims, notice: String?, actions: Bool) -> String {
        var html = ""
        if let notice { html += "<p class=\"notice\" id=\"notice\">\(escape(notice))</p>\n" }
        html += "<h1>#<span id=\"number\">\(incident.number)</span> <span id=\"title\">\(escape(incident.title))</span></h1>\n"
        html += "<dl>\n"
        html += "<dt>Severity</dt><dd><span class=\"badge \(incident.severity)\" id=\"severity\">\(incident.severity)</span></dd>\n"
        html += "<dt>Status</dt><dd><span class=\"badge\" id=\"status\">\(incident.status)</span>"
        if let until = incident.snoozedUntil { html += " snoozed until \(escape(time(until)))" }
        html += "</dd>\n"
        if !incident.acknowledgedBy.isEmpty {
            html += "<dt>Acknowledged by</dt><dd id=\"acknowledged-by\">\(escape(incident.acknowledgedBy.joined(separator: ", ")))</dd>\n"
        }
        html += "<dt>Service</dt><dd>\(escape(incident.service))</dd>\n"
        html += "<dt>Opened</dt><dd>\(escape(time(incident.createdAt)))</dd>\n"
        html += "<dt>Alerts</dt><dd>\(incident.alertCount)</dd>\n"
        html += "</dl>\n"
        if !incident.description.isEmpty { html += "<h2>Description</h2>\n<pre id=\"description\">\(escape(incident.description))</pre>\n" }
        if !incident.labels.isEmpty {
            html += "<h2>Labels</h2>\n<table id=\"labels\">\n"
            for key in incident.labels.keys.sorted() {
                html += "<tr><th>\(escape(key))</th><td>\(escape(incident.labels[key]!))</td></tr>\n"
            }
            html += "</table>\n"
        }
        if actions { html += form(incident, claims: claims) }
        html += "<h2>Timeline</h2>\n<ol id=\"timeline\">\n"
        for entry in timeline {
            html += "<li><time>\(escape(time(entry.at)))</time> <strong>\(escape(entry.kind))</strong> · \(escape(entry.actor)): \(escape(entry.detail))</li>\n"
        }
        html += "</ol>\n"
        return html
    }

    /// One form, one button per action (the link's own action first and highlighted). A link
    /// sent to one member acts as them; a group chat's link asks for a name.
    static func form(_ incident: Incident, claims: LinkSigner.Claims) -> String {
        var buttons: [(String, String)] = []
        if incident.isOpen {
            buttons.append(("acknowledge", "Acknowledge"))
            buttons.append(("snooze", "Snooze"))
        }
        if incident.isOpen || incident.status == .resolved { buttons.append(("close", "Close")) }
        guard !buttons.isEmpty else { return "<h2>Act</h2>\n<p id=\"no-actions\">This incident is \(incident.status); there is nothing left to do.</p>\n" }
        let wanted = claims.action.rawValue
        var html = "<h2>Act</h2>\n<form method=\"post\" id=\"actions\">\n"
        if claims.member.isEmpty {
            html += "<label>Your name <input name=\"actor\" id=\"actor\" required maxlength=\"\(LinkRoutes.maxActorBytes)\" autocomplete=\"name\"></label>\n"
        } else {
            html += "<p style=\"width:100%;margin:0\">Acting as <strong id=\"member\">\(escape(claims.member))</strong></p>\n"
        }
        for (value, label) in buttons {
            if value == "snooze" {
                html += "<label>for <select name=\"minutes\" id=\"minutes\">"
                for minutes in LinkRoutes.snoozeChoices {
                    let text = minutes < 60 ? "\(minutes) min" : minutes == 60 ? "1 hour" : "\(minutes / 60) hours"
                    html += "<option value=\"\(minutes)\"\(minutes == 60 ? " selected" : "")>\(text)</option>"
                }
                html += "</select></label>\n"
            }
            let primary = value == wanted ? " class=\"primary\"" : ""
            html += "<button type=\"submit\" name=\"action\" value=\"\(value)\" id=\"\(value)\"\(primary)>\(label)</button>\n"
        }
        html += "</form>\n"
        return html
    }
}
