import Foundation
import HeraldCore
import HeraldHTTP
import HeraldPluginHost
import HeraldServer
import HeraldTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Signed action links")
struct LinkTests {
    static let form = "application/x-www-form-urlencoded"

    @Test func thePageShowsTheIncidentEscapedAndChangesNothing() async throws {
        let h = try Harness()
        let incident = try await h.incident("<script>alert(1)</script> & \"quotes\"", labels: ["env": "prod", "owner": "<b>ops</b>"])
        let link = h.link(incident)
        let before = try await h.fingerprint()
        try await h.test { client in
            for _ in 0..<3 {  // IM clients prefetch; nothing may change
                let r = try await client.send(.get, link, token: nil)
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "text/html; charset=utf-8")
                #expect(r.headers[.cacheControl] == "no-store")
                #expect(r.headers[.init("Referrer-Policy")!] == "no-referrer")
                let html = r.text
                #expect(html.contains("#<span id=\"number\">1</span>"))
                #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"))
                #expect(!html.contains("<script>"))
                #expect(!html.contains("<b>ops</b>"))
                #expect(html.contains("&lt;b&gt;ops&lt;/b&gt;"))
                #expect(html.contains("id=\"severity\">critical<"))
                #expect(html.contains("id=\"status\">triggered<"))
                #expect(html.contains("Acting as <strong id=\"member\">ann</strong>"))
                #expect(html.contains("<form method=\"post\" id=\"actions\">"))
                #expect(html.contains("name=\"action\" value=\"acknowledge\" id=\"acknowledge\" class=\"primary\""))
                #expect(html.contains("value=\"snooze\""))
                #expect(html.contains("<select name=\"minutes\""))
                #expect(html.contains("value=\"close\""))
                #expect(html.contains("<ol id=\"timeline\">"))
            }
        }
        #expect(try await h.fingerprint() == before)
    }

    @Test func postingActsOnceAsTheLinksMember() async throws {
        let h = try Harness()
        let incident = try await h.incident()
        let link = h.link(incident)
        try await h.test { client in
            // The member comes from the link; a name in the form does not override it.
            let r = try await client.send(.post, link, json: "action=acknowledge&actor=mallory", contentType: Self.form, token: nil)
            #expect(r.status == .ok, "\(r.text)")
            #expect(r.text.contains("Acknowledged by ann."))
            #expect(!r.text.contains("<form"))
            let replay = try await client.send(.post, link, json: "action=close", contentType: Self.form, token: nil)
            #expect(replay.status == .conflict)
            #expect(replay.text.contains("This link was used already"))
        }
        let after = try #require(try await h.service.incident(incident.id))
        #expect(after.status == .acknowledged)
        #expect(after.acknowledgedBy == ["ann"])
        #expect(try await h.service.timeline(incident.id).contains { $0.kind == "acknowledged" && $0.detail == "acknowledged via browser link by ann" })
    }

    @Test func snoozeAcknowledgesFirstAndCloseCloses() async throws {
        let h = try Harness()
        let incident = try await h.incident()
        try await h.test { client in
            let r = try await client.send(.post, h.link(incident, .snooze), json: "action=snooze&minutes=120", contentType: Self.form, token: nil)
            #expect(r.status == .ok)
            #expect(r.text.contains("Snoozed for 120 minutes by ann."))
            let snoozed = try #require(try await h.service.incident(incident.id))
            #expect(snoozed.status == .acknowledged)
            #expect(snoozed.snoozedUntil == h.clock().addingTimeInterval(7200))

            let close = try await client.send(.post, h.link(incident, .close, member: "bob"), json: "action=close", contentType: Self.form, token: nil)
            #expect(close.status == .ok)
            #expect(try await h.service.incident(incident.id)?.status == .closed)
            // A closed incident's page has nothing to press.
            let page = try await client.send(.get, h.link(incident), token: nil)
            #expect(page.text.contains("there is nothing left to do"))
            // Acting on it is refused without using the link up.
            let link = h.link(incident)
            let refused = try await client.send(.post, link, json: "action=acknowledge", contentType: Self.form, token: nil)
            #expect(refused.status == .conflict)
            #expect(refused.text.contains("is closed already"))
        }
    }

    @Test func aGroupChatLinkAsksForAName() async throws {
        let h = try Harness()
        let incident = try await h.incident()
        let link = h.link(incident, .view, member: "")
        try await h.test { client in
            let page = try await client.send(.get, link, token: nil)
            #expect(page.text.contains("<input name=\"actor\""))
            let nameless = try await client.send(.post, link, json: "action=acknowledge&actor=+", contentType: Self.form, token: nil)
            #expect(nameless.status == .badRequest)
            #expect(nameless.text.contains("actor: enter your name"))
            let named = try await client.send(.post, link, json: "action=acknowledge&actor=B%C3%B6b+Smith", contentType: Self.form, token: nil)
            #expect(named.status == .ok)
            #expect(named.text.contains("Acknowledged by Böb Smith."))
        }
        #expect(try await h.service.incident(incident.id)?.acknowledgedBy == ["Böb Smith"])
    }

    @Test func tamperedExpiredAndMalformedLinksAreRefused() async throws {
        let h = try Harness()
        let incident = try await h.incident()
        let other = try await h.incident("other", key: "other")
        let link = h.link(incident)
        let token = String(link.dropFirst(3))
        let parts = token.split(separator: ".")
        // Another incident's payload under this link's signature.
        let forged = "/l/" + h.link(other).dropFirst(3).split(separator: ".")[0] + "." + parts[1]
        let before = try await h.fingerprint()
        try await h.test { client in
            for method in [HTTPRequest.Method.get, .post] {
                let tampered = try await client.send(method, forged, json: "action=acknowledge", contentType: Self.form, token: nil)
                #expect(tampered.status == .forbidden)
                #expect(tampered.text.contains("signature does not match"))
                let garbage = try await client.send(method, "/l/not-a-token", json: "action=acknowledge", contentType: Self.form, token: nil)
                #expect(garbage.status == .forbidden)
                #expect(garbage.text.contains("not a Herald action link"))
            }
            h.advance(3601)
            for method in [HTTPRequest.Method.get, .post] {
                let expired = try await client.send(method, link, json: "action=acknowledge", contentType: Self.form, token: nil)
                #expect(expired.status == .gone)
                #expect(expired.text.contains("This link has expired"))
            }
        }
        #expect(try await h.fingerprint() == before)
    }

    @Test(arguments: [
        ("action=explode", form, 400, "action: must be acknowledge, snooze or close."),
        ("action=snooze&minutes=0", form, 400, "minutes: must be a whole number from 1 to 1440."),
        ("action=snooze&minutes=abc", form, 400, "minutes: must be a whole number from 1 to 1440."),
        ("action=acknowledge&role=admin", form, 400, "role: is not a known field"),
        ("action=acknowledge&actor=%ZZ", form, 400, "not valid percent-encoded UTF-8"),
        ("action=acknowledge", "application/json", 415, "Content-Type: must be application/x-www-form-urlencoded"),
        ("action=acknowledge&actor=" + String(repeating: "a", count: 17000), form, 413, "than the limit of 16384 bytes"),
    ])
    func badFormsAreRefusedWithoutUsingTheLink(_ body: String, _ contentType: String, _ status: Int, _ message: String) async throws {
        let h = try Harness()
        let incident = try await h.incident()
        let link = h.link(incident)
        let before = try await h.fingerprint()
        try await h.test { client in
            let r = try await client.send(.post, link, json: body, contentType: contentType, token: nil)
            #expect(r.status.code == status)
            #expect(r.text.contains(HTMLEscape(message)), "\(r.text)")
            #expect(try await h.fingerprint() == before)
            // The link still works afterwards.
            let ok = try await client.send(.post, link, json: "action=acknowledge", contentType: Self.form, token: nil)
            #expect(ok.status == .ok)
        }
    }

    @Test func anInvalidUTF8FormIsRefused() async throws {
        let h = try Harness()
        let incident = try await h.incident()
        let before = try await h.fingerprint()
        try await h.test { client in
            let r = try await client.send(.post, h.link(incident), body: Array("action=acknowledge&actor=".utf8) + [0xC0, 0xAF], contentType: Self.form, token: nil)
            #expect(r.status == .badRequest)
            #expect(r.text.contains("not valid UTF-8"))
        }
        #expect(try await h.fingerprint() == before)
    }

    @Test func aLinkToAVanishedIncidentIs404() async throws {
        let h = try Harness()
        let token = h.signer.token(incidentID: "inc_gone", action: .acknowledge, member: "ann", now: h.clock())
        try await h.test { client in
            let r = try await client.send(.get, "/l/\(token)", token: nil)
            #expect(r.status == .notFound)
        }
    }
}

func HTMLEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
}

@Suite("Provider callbacks")
struct CallbackTests {
    /// Built once: parallel tests must not compile the same fixture over each other.
    static let library = Result { try Fixtures.library("good") }

    static func harness() throws -> Harness {
        var h = try Harness()
        let plugin = try PluginLoader.load(libraryAt: try library.get())
        let instance = try PluginInstance.create(
            plugin: plugin, name: "phone",
            config: .object(["url": .string("https://fixture.example.com/send"), "token": .string("s3cret")]), environment: environment())
        h.integrations["phone"] = Integration(name: "phone", instance: instance, options: TransferOptions(egress: EgressPolicy(allowedHosts: [])))
        return h
    }

    @Test func anAuthenticCallbackAcknowledgesAsTheMappedMember() async throws {
        let h = try Self.harness()
        let incident = try await h.incident()
        try await h.test { client in
            let r = try await client.send(.post, "/callbacks/phone/voice/receipt?x=1", body: Array("ack:\(incident.id)".utf8), contentType: "text/plain",
                                          token: nil, headers: [.init("X-Token")!: "s3cret"])
            #expect(r.status == .ok)
            #expect(r.headers[.contentType] == "application/json")
            #expect(r.text == #"{"result":0}"#)
        }
        let after = try #require(try await h.service.incident(incident.id))
        #expect(after.status == .acknowledged)
        #expect(after.acknowledgedBy == ["ann"])  // mobile:+8613800000000 is ann's phone
        #expect(try await h.service.timeline(incident.id).contains { $0.kind == "acknowledged" && $0.detail == "acknowledged via voice (key 1) by ann" })
    }

    @Test func unauthenticCallbacksAreRefusedAndChangeNothing() async throws {
        let h = try Self.harness()
        let incident = try await h.incident()
        let before = try await h.fingerprint()
        try await h.test { client in
            let wrong = try await client.send(.post, "/callbacks/phone", body: Array("ack:\(incident.id)".utf8), contentType: "text/plain",
                                              token: nil, headers: [.init("X-Token")!: "guess"])
            #expect(wrong.status == .forbidden)
            #expect(wrong.error == "the phone integration refused the callback: X-Token does not match")
            let none = try await client.send(.get, "/callbacks/phone/anything/at/all", token: nil)
            #expect(none.status == .forbidden)
            let unknown = try await client.send(.post, "/callbacks/fax/x", body: Array("ack:\(incident.id)".utf8), token: nil, headers: [.init("X-Token")!: "s3cret"])
            #expect(unknown.status == .notFound)
            #expect(unknown.error == "no integration 'fax' takes callbacks here")
            let huge = try await client.send(.post, "/callbacks/phone", body: Array(repeating: 0x61, count: 70_000), contentType: "text/plain",
                                             token: nil, headers: [.init("X-Token")!: "s3cret"])
            #expect(huge.status == .contentTooLarge)
        }
        #expect(try await h.fingerprint() == before)
    }

    @Test func anActionOnAnUnknownIncidentIsLoggedNotA500() async throws {
        let h = try Self.harness()
        try await h.incident()
        let before = try await h.fingerprint()
        try await h.test { client in
            let r = try await client.send(.post, "/callbacks/phone", body: Array("ack:inc_nobody".utf8), contentType: "text/plain",
                                          token: nil, headers: [.init("X-Token")!: "s3cret"])
            #expect(r.status == .ok)
            #expect(r.text == #"{"result":0}"#)
        }
        #expect(try await h.fingerprint() == before)
    }
}
