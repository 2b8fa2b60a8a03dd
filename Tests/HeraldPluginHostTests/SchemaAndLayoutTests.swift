import CHeraldPlugin
import HeraldPluginHost
import Testing

@Suite("Config schemas")
struct SchemaTests {
    @Test func unsupportedKeywordsAreRefusedSoNoConstraintIsSilentlyIgnored() {
        #expect(throws: JSONSchema.SchemaError.self) { try JSONSchema(text: #"{"type":"object","anyOf":[]}"#) }
        #expect(throws: JSONSchema.SchemaError.self) { try JSONSchema(text: #"{"type":"object","properties":{"a":{"pattern":"("}}}"#) }
        #expect(throws: JSONSchema.SchemaError.self) { try JSONSchema(text: #"{"type":"thing"}"#) }
        #expect(throws: JSONSchema.SchemaError.self) { try JSONSchema(text: "{not json") }
    }

    @Test func violationsNameThePath() throws {
        let schema = try JSONSchema(text: #"""
        {"type":"object","required":["url"],"properties":{
          "url":{"type":"string","pattern":"^https?://","format":"uri"},
          "headers":{"type":"object","additionalProperties":{"type":"string"}},
          "ids":{"type":"array","minItems":1,"items":{"type":"integer","minimum":1}},
          "ratio":{"type":"number","maximum":1}}}
        """#)
        let value = try JSONValue.parse(#"{"url":"ftp://x","headers":{"A":1},"ids":[0,2.5],"ratio":1.5}"#)
        let found = schema.validate(value).map(\.description)
        #expect(found == [
            "'headers.A' must be a string, not an integer",
            "'ids[0]' must be at least 1",
            "'ids[1]' must be an integer, not a number",
            "'ratio' must be at most 1",
            "'url' does not match the pattern ^https?://",
        ])
        #expect(schema.validate(try JSONValue.parse(#"{"url":"https://a.example/x","ids":[3]}"#)).isEmpty)
        #expect(schema.validate(try JSONValue.parse(#"{"url":"not a uri"}"#)).map(\.description).contains("'url' does not match the pattern ^https?://"))
    }
}

@Suite("ABI layout")
struct LayoutTests {
    /// The C side pins every offset at compile time (Sources/CHeraldPlugin/abi_layout.c); here we
    /// check that Swift's import of the header agrees with C on every struct's size and alignment.
    @Test func swiftSeesTheSameLayoutAsC() throws {
        let table = String(cString: herald_abi_layout_table())
        let sizes: [String: (Int, Int)] = [
            "herald_str": (MemoryLayout<herald_str>.size, MemoryLayout<herald_str>.alignment),
            "herald_pair": (MemoryLayout<herald_pair>.size, MemoryLayout<herald_pair>.alignment),
            "herald_link": (MemoryLayout<herald_link>.size, MemoryLayout<herald_link>.alignment),
            "herald_mention": (MemoryLayout<herald_mention>.size, MemoryLayout<herald_mention>.alignment),
            "herald_message": (MemoryLayout<herald_message>.size, MemoryLayout<herald_message>.alignment),
            "herald_request": (MemoryLayout<herald_request>.size, MemoryLayout<herald_request>.alignment),
            "herald_response": (MemoryLayout<herald_response>.size, MemoryLayout<herald_response>.alignment),
            "herald_inbound": (MemoryLayout<herald_inbound>.size, MemoryLayout<herald_inbound>.alignment),
            "herald_action": (MemoryLayout<herald_action>.size, MemoryLayout<herald_action>.alignment),
            "herald_host_api": (MemoryLayout<herald_host_api>.size, MemoryLayout<herald_host_api>.alignment),
            "herald_plugin": (MemoryLayout<herald_plugin>.size, MemoryLayout<herald_plugin>.alignment),
            "herald_negotiate": (MemoryLayout<herald_negotiate>.size, MemoryLayout<herald_negotiate>.alignment),
        ]
        var seen = 0
        for line in table.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard !parts[0].contains("."), parts.count == 3 else { continue }
            let name = String(parts[0])
            let expected = try #require(sizes[name], "struct \(name) has no Swift check; add it")
            #expect(expected.0 == Int(parts[1])!, "\(name) size")
            #expect(expected.1 == Int(parts[2])!, "\(name) alignment")
            seen += 1
        }
        #expect(seen == sizes.count)
        // Spot-check field offsets Swift code relies on by key path.
        #expect(MemoryLayout<herald_plugin>.offset(of: \.invoke_action) == offset(table, "herald_plugin.invoke_action"))
        #expect(MemoryLayout<herald_host_api>.offset(of: \.set_output) == offset(table, "herald_host_api.set_output"))
        #expect(MemoryLayout<herald_request>.offset(of: \.tag) == offset(table, "herald_request.tag"))
    }

    private func offset(_ table: String, _ field: String) -> Int? {
        table.split(separator: "\n").first { $0.hasPrefix(field + " ") }.flatMap { Int($0.split(separator: " ")[1]) }
    }
}
