import HeraldHTTP
import Testing

@Suite("EgressPolicy")
struct EgressPolicyTests {
    private func denied(_ policy: EgressPolicy, _ url: String) -> EngineError? {
        do {
            try policy.check(url: url)
            return nil
        } catch {
            return error
        }
    }

    @Test("*.example.com matches subdomains only, never the apex or a longer look-alike")
    func wildcardRules() {
        let policy = EgressPolicy(allowedHosts: ["*.example.com"])
        for url in ["https://a.example.com/x", "https://b.a.example.com/", "https://A.EXAMPLE.COM/", "https://a.example.com./"] {
            #expect(denied(policy, url) == nil, "\(url) should be allowed")
        }
        for url in [
            "https://example.com/", "https://a.example.com.evil.net/", "https://aexample.com/",
            "https://evil-example.com/", "https://example.com.evil.net/", "https://a.example.co/",
        ] {
            #expect(denied(policy, url)?.code == .egressDenied, "\(url) should be denied")
        }
    }

    @Test("exact names are case-insensitive; IP literals compare in canonical form")
    func exactAndLiteralHosts() {
        let policy = EgressPolicy(allowedHosts: ["API.Telegram.org", "203.0.113.7", "2001:DB8::1", "[2001:db8::2]"])
        for url in [
            "https://api.telegram.org/bot/x", "https://api.telegram.org:8443/", "https://203.0.113.7/",
            "http://[2001:db8:0:0::1]/", "http://[2001:db8::2]:8080/",
        ] {
            #expect(denied(policy, url) == nil, "\(url) should be allowed")
        }
        for url in ["https://api.telegram.org.evil.net/", "https://telegram.org/", "https://203.0.113.8/", "http://[2001:db8::3]/"] {
            #expect(denied(policy, url)?.code == .egressDenied, "\(url) should be denied")
        }
        #expect(policy.allows(host: "API.TELEGRAM.ORG."))
        #expect(!policy.allows(host: "evil.example"))
    }

    @Test("international names match in unicode or punycode form; percent-encoded hosts cannot sneak past")
    func internationalAndEncodedHosts() {
        let unicode = EgressPolicy(allowedHosts: ["bücher.example"])
        #expect(denied(unicode, "https://xn--bcher-kva.example/") == nil)
        #expect(denied(unicode, "https://BÜCHER.example/") == nil)
        let vectors = EgressPolicy(allowedHosts: ["xn--mnchen-3ya.example", "xn--fiq228c.example", "xn--80aealotwbjpid2k.example", "xn--eckwd4c7cu47r2wf.example"])
        for host in ["münchen.example", "中文.example", "правительство.example", "ドメイン名例.example", "中文。example"] {
            #expect(vectors.allows(host: host), "\(host)")
        }
        let puny = EgressPolicy(allowedHosts: ["*.xn--bcher-kva.example"])
        #expect(denied(puny, "https://shop.bücher.example/") == nil)
        #expect(denied(puny, "https://bucher.example/")?.code == .egressDenied)
        // Whatever libcurl makes of a percent-encoded host, it must not reach loopback or an unlisted host.
        let policy = EgressPolicy(allowedHosts: ["api.example.com"])
        #expect(denied(policy, "http://127.0.0.%31/") != nil)
        #expect(denied(policy, "http://api.example.com%2eevil.net/") != nil)
        #expect(denied(EgressPolicy(allowedHosts: ["*"]), "http://127.0.0.%31/") != nil)
    }

    @Test("host(of:) reports the host the engine will check and connect to")
    func hostOf() {
        #expect(EgressPolicy.host(of: "https://Hooks.Slack.com./services/T0/B0/x?y=1") == "hooks.slack.com")
        #expect(EgressPolicy.host(of: "http://127.1:8080/") == "127.0.0.1")
        #expect(EgressPolicy.host(of: "http://[2001:DB8::1]/") == "2001:db8::1")
        #expect(EgressPolicy.host(of: "https://user:pw@bücher.example/") == "xn--bcher-kva.example")
        #expect(EgressPolicy.host(of: "http://api.example.com%2eevil.net/") == "api.example.com.evil.net")
        #expect(EgressPolicy.host(of: "not a url") == nil)
    }

    @Test("an empty list allows nothing; a lone * allows any non-loopback host")
    func emptyAndStar() {
        #expect(denied(EgressPolicy(allowedHosts: []), "https://api.telegram.org/")?.code == .egressDenied)
        let any = EgressPolicy(allowedHosts: ["*"])
        #expect(denied(any, "https://hooks.slack.com/services/x") == nil)
        #expect(denied(any, "https://127.0.0.1/")?.code == .egressDenied)
    }

    @Test(
        "loopback and link-local names and literals are refused unless allowLoopback",
        arguments: [
            "http://127.0.0.1:8080/", "http://localhost/", "http://LOCALHOST./", "http://api.localhost/",
            "http://127.1/", "http://2130706433/", "http://0x7f.0.0.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/", "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/",
        ])
    func loopbackRefused(url: String) throws {
        let everything = ["*", "127.0.0.1", "localhost"]
        let error = denied(EgressPolicy(allowedHosts: everything, allowLoopback: false), url)
        #expect(error?.code == .egressDenied, "\(url)")
        #expect(error?.message.contains("loopback not allowed") == true)
        #expect(denied(EgressPolicy(allowedHosts: everything, allowLoopback: true), url) == nil, "\(url)")
    }

    @Test("a loopback host must still be listed when loopback is allowed")
    func loopbackStillNeedsListing() {
        let policy = EgressPolicy(allowedHosts: ["api.telegram.org"], allowLoopback: true)
        #expect(denied(policy, "http://127.0.0.1/")?.code == .egressDenied)
    }

    @Test("schemes outside the allowed set are refused", arguments: ["ftp://example.com/f", "file:///etc/passwd", "gopher://example.com/", "dict://example.com/"])
    func disallowedSchemes(url: String) {
        let policy = EgressPolicy(allowedHosts: ["*", "example.com"])
        #expect(denied(policy, url)?.code == .protocolNotAllowed, "\(url)")
    }

    @Test("allowedSchemes narrows the default set")
    func narrowedSchemes() {
        let policy = EgressPolicy(allowedHosts: ["example.com"], allowedSchemes: ["https"])
        #expect(denied(policy, "https://example.com/") == nil)
        #expect(denied(policy, "http://example.com/")?.code == .protocolNotAllowed)
        #expect(denied(policy, "HTTPS://example.com/") == nil)
    }

    @Test("unparsable URLs are invalid requests", arguments: ["not a url", "https://", "https://exa mple.com/", "https://bad\nhost/", "://x"])
    func invalidURLs(url: String) {
        #expect(denied(EgressPolicy(allowedHosts: ["*"]), url)?.code == .invalidRequest, "\(url.debugDescription)")
    }

    @Test("the denial names the host and the allowed list, never the path, query or credentials")
    func denialMessage() throws {
        let policy = EgressPolicy(allowedHosts: ["a.example", "*.b.example"])
        let error = try #require(denied(policy, "https://user:hunter2@evil.example/bot123:SECRET/send?token=abc123"))
        #expect(error.code == .egressDenied)
        #expect(error.message == "egress to host 'evil.example' is not allowed for this integration (allowed: a.example, *.b.example; loopback not allowed).")
        for secret in ["hunter2", "SECRET", "abc123", "user"] {
            #expect(!error.message.contains(secret))
        }
        #expect(!error.isTransient)
    }
}
