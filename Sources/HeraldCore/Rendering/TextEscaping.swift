import HeraldPluginHost

/// Escaping of template variables for a plugin's text format, and the atomic units of escaped text
/// (so truncation never cuts an entity or an escape pair in two).
public enum TextEscaping {
    /// ASCII punctuation that CommonMark reads as markup; each gets a backslash. (`&` is included
    /// so that data such as `&amp;` is not read as an entity reference.)
    static let markdownSpecials: Set<Character> = ["\\", "`", "*", "_", "[", "]", "(", ")", "#", "+", "-", ".", "!", "|", "<", ">", "~", "&"]

    /// `text` escaped for `format`, for use as text content.
    public static func escape(_ text: String, for format: TextFormat) -> String {
        switch format {
        case .plain:
            return text
        case .markdown:
            var out = ""
            out.reserveCapacity(text.utf8.count)
            for c in text {
                if markdownSpecials.contains(c) { out.append("\\") }
                out.append(c)
            }
            return out
        case .slackMrkdwn:
            return replacing(text) { s in
                switch s { case "&": "&amp;"; case "<": "&lt;"; case ">": "&gt;"; default: nil }
            }
        case .telegramHTML:
            return replacing(text) { s in
                switch s { case "&": "&amp;"; case "<": "&lt;"; case ">": "&gt;"; case "\"": "&quot;"; default: nil }
            }
        case .html:
            return replacing(text) { s in
                switch s { case "&": "&amp;"; case "<": "&lt;"; case ">": "&gt;"; case "\"": "&quot;"; case "'": "&#39;"; default: nil }
            }
        case .json:
            return jsonEscape(text)
        }
    }

    /// A URL escaped for `format`, for use as a link destination (`[x](url)`, `<url|x>`,
    /// `href="url"`, a JSON string). Markdown gets no backslashes (not every platform reads them
    /// in a URL): the characters that could end the destination are percent-encoded instead.
    public static func escapeURL(_ url: String, for format: TextFormat) -> String {
        switch format {
        case .plain:
            return url
        case .markdown:
            return replacing(url) { s in
                if s.value < 0x21 || s.value == 0x7F || " ()<>[]\\`\"".unicodeScalars.contains(s) {
                    return "%" + hex2(UInt8(truncatingIfNeeded: s.value))
                }
                return nil
            }
        case .slackMrkdwn:
            return replacing(url) { s in
                switch s { case "&": "&amp;"; case "<": "&lt;"; case ">": "&gt;"; case "|": "%7C"; default: nil }
            }
        case .telegramHTML, .html, .json:
            return escape(url, for: format)
        }
    }

    static func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    static func replacing(_ text: String, _ map: (Unicode.Scalar) -> String?) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            if let r = map(s) { out += r } else { out.unicodeScalars.append(s) }
        }
        return out
    }

    static func jsonEscape(_ text: String) -> String {
        replacing(text) { s in
            switch s {
            case "\"": return "\\\""
            case "\\": return "\\\\"
            case "\n": return "\\n"
            case "\r": return "\\r"
            case "\t": return "\\t"
            case "\u{08}": return "\\b"
            case "\u{0C}": return "\\f"
            case "\u{2028}": return "\\u2028"
            case "\u{2029}": return "\\u2029"
            default:
                return s.value < 0x20 ? "\\u00" + hex2(UInt8(s.value)).lowercased() : nil
            }
        }
    }

    /// `text` (escaped for `format` by this type) split into pieces that must stay whole: one
    /// grapheme cluster, or one entity (`&amp;`), backslash pair (`\*`) or JSON escape (`\u00e9`).
    public static func atomicUnits(_ text: String, format: TextFormat) -> [Substring] {
        var units: [Substring] = []
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            var end = text.index(after: i)
            switch format {
            case .markdown where c == "\\":
                if end < text.endIndex { end = text.index(after: end) }
            case .json where c == "\\":
                if end < text.endIndex {
                    let isUnicode = text[end] == "u"
                    end = text.index(after: end)
                    if isUnicode { end = text.index(end, offsetBy: 4, limitedBy: text.endIndex) ?? text.endIndex }
                }
            case .slackMrkdwn where c == "&", .telegramHTML where c == "&", .html where c == "&":
                if let semi = text[i...].prefix(12).firstIndex(of: ";") { end = text.index(after: semi) }
            default:
                break
            }
            units.append(text[i..<end])
            i = end
        }
        return units
    }
}
