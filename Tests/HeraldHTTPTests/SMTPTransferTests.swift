import HeraldHTTP
import Testing

@Suite("SMTP transfers")
struct SMTPTransferTests {
    private let message = Array("""
        From: Herald <herald@example.com>\r
        To: oncall@example.com\r
        Subject: [P1] disk full\r
        \r
        The disk is full.\r
        .leading dot survives dot-stuffing\r

        """.utf8)

    private func plaintextOptions() -> TransferOptions {
        var options = TransferOptions.loopback
        options.requireTLSForSMTP = false  // the sink offers no STARTTLS
        options.username = "herald"
        options.password = "s3cret"
        return options
    }

    private func submission(_ sink: Sink, to recipients: [String]) -> TransferRequest {
        .smtp(url: "\(sink.smtpBase)/herald.example.com", mailFrom: "<herald@example.com>", recipients: recipients, payload: message, timeoutMilliseconds: 5_000)
    }

    @Test("a message is submitted with AUTH; status is the server's final reply code and body its reply line")
    func delivers() async throws {
        try await withSink(["--smtp"]) { sink in
            try await withEngine { engine in
                let response = try await engine.perform(submission(sink, to: ["<oncall@example.com>", "ops@example.com"]), options: plaintextOptions())
                #expect(response.status == 250)
                #expect(String(decoding: response.body, as: UTF8.self).hasPrefix("250 2.0.0 Ok: queued as Q"))
                #expect(response.httpVersion == 0)
                #expect(response.headers.map(\.name) == ["<oncall@example.com>", "ops@example.com"])
            }
        }
    }

    @Test("a rejected recipient comes back as a 550 response, not a transport error")
    func rejectedRecipient() async throws {
        try await withSink(["--smtp"]) { sink in
            try await withEngine { engine in
                let response = try await engine.perform(submission(sink, to: ["<reject@example.com>"]), options: plaintextOptions())
                #expect(response.status == 550)
                #expect(String(decoding: response.body, as: UTF8.self) == "550 5.1.1 mailbox unavailable")
            }
        }
    }

    @Test("refused recipients do not stop the others; each recipient's RCPT reply is reported")
    func partialRejection() async throws {
        try await withSink(["--smtp"]) { sink in
            try await withEngine { engine in
                let recipients = ["<oncall@example.com>", "<reject@example.com>", "ops@example.com"]
                let response = try await engine.perform(submission(sink, to: recipients), options: plaintextOptions())
                #expect(response.status == 250)
                #expect(response.headers.map(\.name) == recipients)
                #expect(response.headers.map { $0.value.prefix(3) } == ["250", "550", "250"])
                #expect(response.headers[1].value == "550 5.1.1 mailbox unavailable")
            }
        }
    }

    @Test("wrong credentials come back as a 535 response; the password is not echoed")
    func badCredentials() async throws {
        try await withSink(["--smtp"]) { sink in
            try await withEngine { engine in
                var options = plaintextOptions()
                options.password = "wrong-pass-123"
                let response = try await engine.perform(submission(sink, to: ["ops@example.com"]), options: options)
                #expect(response.status == 535)
                #expect(String(decoding: response.body, as: UTF8.self) == "535 5.7.8 bad credentials")
                #expect(!String(decoding: response.body, as: UTF8.self).contains("wrong-pass-123"))
            }
        }
    }

    @Test("by default smtp:// requires STARTTLS: a server without it fails with .tlsFailed")
    func requiresTLS() async throws {
        try await withSink(["--smtp"]) { sink in
            try await withEngine { engine in
                var options = plaintextOptions()
                options.requireTLSForSMTP = true
                await expectError(.tlsFailed) { try await engine.perform(submission(sink, to: ["ops@example.com"]), options: options) }
            }
        }
    }

    @Test("SMTP envelopes are validated before anything is sent")
    func invalidEnvelope() async throws {
        try await withEngine { engine in
            let url = "smtp://127.0.0.1:9"
            await expectError(.invalidRequest) {
                try await engine.perform(.smtp(url: url, mailFrom: "a@example.com", recipients: [], payload: message, timeoutMilliseconds: 1_000), options: .loopback)
            }
            await expectError(.invalidRequest) {
                try await engine.perform(
                    .smtp(url: url, mailFrom: "a@example.com", recipients: ["b@example.com>\r\nRCPT TO:<c@example.com"], payload: message, timeoutMilliseconds: 1_000),
                    options: .loopback)
            }
            await expectError(.protocolNotAllowed) {
                try await engine.perform(.smtp(url: "https://127.0.0.1/", mailFrom: "a@example.com", recipients: ["b@example.com"], payload: message, timeoutMilliseconds: 1_000), options: .loopback)
            }
        }
    }
}
