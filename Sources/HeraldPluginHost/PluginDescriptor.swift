import CHeraldPlugin
import Foundation

public enum ChannelKind: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case webhook = 1, groupBot, app, sms, voice, email
    /// The name used in manifests and CLI output.
    public var description: String {
        switch self {
        case .webhook: "webhook"
        case .groupBot: "group_bot"
        case .app: "app"
        case .sms: "sms"
        case .voice: "voice"
        case .email: "email"
        }
    }
}

public enum TextFormat: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case plain = 1, markdown, slackMrkdwn, telegramHTML, html, json
    public var description: String {
        switch self {
        case .plain: "plain"
        case .markdown: "markdown"
        case .slackMrkdwn: "slack_mrkdwn"
        case .telegramHTML: "telegram_html"
        case .html: "html"
        case .json: "json"
        }
    }
}

public enum SizeUnit: Int32, Sendable, CustomStringConvertible {
    case bytes = 1, characters
    public var description: String { self == .bytes ? "bytes" : "characters" }
}

public struct PluginCapabilities: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let cardActions = Self(rawValue: 1 << 0)
    public static let mentions = Self(rawValue: 1 << 1)
    public static let inboundCallbacks = Self(rawValue: 1 << 2)
    public static let messageUpdates = Self(rawValue: 1 << 3)
    public static let requiresKeyword = Self(rawValue: 1 << 4)
    public static let concurrentCalls = Self(rawValue: 1 << 5)
    public static let adminActions = Self(rawValue: 1 << 6)

    static let names: [(Self, String)] = [
        (.cardActions, "card_actions"), (.mentions, "mentions"), (.inboundCallbacks, "inbound_callbacks"),
        (.messageUpdates, "message_updates"), (.requiresKeyword, "requires_keyword"),
        (.concurrentCalls, "concurrent_calls"), (.adminActions, "admin_actions"),
    ]
    public var description: String {
        let known = Self.names.filter { contains($0.0) }.map(\.1)
        return known.isEmpty ? "none" : known.joined(separator: ", ")
    }
}

/// What a plugin says about itself, copied out of its static descriptor and checked.
public struct PluginDescriptor: Sendable {
    public let id: String
    public let name: String
    public let version: String
    public let license: String
    /// The negotiated ABI minor.
    public let abiMinor: UInt32
    public let channelKind: ChannelKind
    public let textFormat: TextFormat
    /// Largest body the platform accepts in `sizeUnit`; nil when unlimited.
    public let sizeLimit: Int?
    public let sizeUnit: SizeUnit
    public let capabilities: PluginCapabilities
    public let configSchemaText: String
    public let configSchema: JSONSchema
    /// Hosts the plugin may reach by default ("*.suffix" wildcards, "config:<field>" entries).
    public let egressHosts: [String]
    public let defaultTemplate: String
    public let hasParseCallback: Bool
    public let hasInvokeAction: Bool

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && id.first != "-"
            && id.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    static func isSemanticVersion(_ v: String) -> Bool {
        v.range(of: #"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"#, options: .regularExpression) != nil
    }
}

extension herald_str {
    /// The bytes as a String, or nil when the view is malformed (NULL with a length, bad UTF-8).
    var validatedString: String? {
        if len == 0 { return "" }
        guard let ptr, len < 1 << 26 else { return nil }
        let buffer = UnsafeRawBufferPointer(start: ptr, count: len)
        return String(validating: buffer.bindMemory(to: UInt8.self), as: UTF8.self)
    }

    /// The bytes, decoded leniently (invalid UTF-8 becomes U+FFFD).
    var string: String {
        guard let ptr, len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: ptr, count: len), as: UTF8.self)
    }

    var bytes: [UInt8] {
        guard let ptr, len > 0 else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: ptr, count: len))
    }
}
