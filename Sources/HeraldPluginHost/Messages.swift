/// The Swift side of the ABI's value types: what the host hands to plugins and gets back.

public enum Severity: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case critical = 1, warning, info
    public var description: String { ["critical", "warning", "info"][Int(rawValue) - 1] }
    public init?(name: String) { self.init(rawValue: Int32((Self.allCases.firstIndex { $0.description == name } ?? -2) + 1)) }
}

public enum IncidentStatus: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case triggered = 1, acknowledged, resolved, closed
    public var description: String { ["triggered", "acknowledged", "resolved", "closed"][Int(rawValue) - 1] }
}

public enum MessageEvent: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case fire = 1, refire, acknowledged, snoozed, resolved, closed, test
    public var description: String { ["fire", "refire", "acknowledged", "snoozed", "resolved", "closed", "test"][Int(rawValue) - 1] }
}

public struct MessageLink: Sendable, Equatable {
    public enum Kind: Int32, Sendable { case view = 1, acknowledge, snooze, close, other }
    public var kind: Kind
    public var label: String
    public var url: String
    public var callbackToken: String
    public init(kind: Kind, label: String, url: String, callbackToken: String = "") {
        self.kind = kind
        self.label = label
        self.url = url
        self.callbackToken = callbackToken
    }
}

public struct Mention: Sendable, Equatable {
    public var displayName: String
    public var id: String
    public var idKind: String
    public init(displayName: String, id: String, idKind: String) {
        self.displayName = displayName
        self.id = id
        self.idKind = idKind
    }
}

/// One rendered message for one destination (`herald_message`).
public struct OutgoingMessage: Sendable, Equatable {
    public var event: MessageEvent = .fire
    public var idempotencyKey: String
    public var incidentID: String = ""
    public var incidentNumber: UInt64 = 0
    public var severity: Severity = .warning
    public var status: IncidentStatus = .triggered
    public var title: String
    public var body: String
    public var labels: [(String, String)] = []
    public var links: [MessageLink] = []
    public var mentions: [Mention] = []
    public var recipient: String = ""
    public var startedAtMs: Int64 = 0
    public var acknowledgedAtMs: Int64 = 0
    public var closedAtMs: Int64 = 0
    public var alertCount: UInt32 = 1
    public var extraJSON: String = ""

    public init(idempotencyKey: String, title: String, body: String) {
        self.idempotencyKey = idempotencyKey
        self.title = title
        self.body = body
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.idempotencyKey == b.idempotencyKey && a.title == b.title && a.body == b.body && a.event == b.event
            && a.labels.elementsEqual(b.labels, by: ==) && a.links == b.links && a.recipient == b.recipient
    }
}

public struct HeaderField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A request a plugin asked the host to perform (`herald_request`, copied).
public struct PluginRequest: Sendable, Equatable {
    public enum Kind: Int32, Sendable { case http = 1, smtp }
    public var kind: Kind
    public var method: String
    public var url: String
    public var headers: [HeaderField]
    public var body: [UInt8]
    /// 0 means the host default.
    public var timeoutMilliseconds: UInt32
    public var mailFrom: String
    public var recipients: [String]
    public var tag: UInt64
    /// SMTP AUTH credentials and libcurl login options ("AUTH=PLAIN"); nil when not given.
    public var smtpUsername: String? = nil
    public var smtpPassword: String? = nil
    public var smtpLoginOptions: String? = nil
    /// `HERALD_REQUEST_SMTP_ALLOW_PLAINTEXT`: STARTTLS is used when offered but not required.
    public var smtpAllowPlaintext: Bool = false
}

extension PluginRequest: CustomStringConvertible {
    /// HERALD_REQUEST_SMTP_ALLOW_PLAINTEXT (plugin.h).
    static let smtpAllowPlaintextFlag: UInt32 = 1

    /// Kind and host only: never the password, the URL's user info, path or query.
    public var description: String {
        var authority = Substring(url)
        if let range = url.range(of: "://") { authority = url[range.upperBound...] }
        authority = authority.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        switch kind {
        case .http: return "\(method) \(authority) (\(body.count) bytes)"
        case .smtp: return "SMTP \(authority) (\(recipients.count) recipients, \(body.count) bytes\(smtpUsername != nil ? ", AUTH" : ""))"
        }
    }
}

/// A response handed to `on_response` (`herald_response`).
public struct PluginResponse: Sendable {
    public var status: Int32
    public var headers: [HeaderField]
    public var body: [UInt8]
    public var tag: UInt64
    public var bodyTruncated: Bool
    public init(status: Int32, headers: [HeaderField] = [], body: [UInt8] = [], tag: UInt64 = 0, bodyTruncated: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.tag = tag
        self.bodyTruncated = bodyTruncated
    }
}

/// What one call into a delivery hook decided.
public enum DeliveryStep: Sendable, Equatable {
    case request(PluginRequest)
    case delivered(providerID: String?)
    /// `afterMilliseconds` is the provider's hint, nil when it gave none.
    case retry(afterMilliseconds: UInt64?, reason: String)
    case failed(reason: String)
}

/// What one call into `invoke_action` decided.
public enum ActionStep: Sendable, Equatable {
    case request(PluginRequest)
    case done(output: String)
    case failed(reason: String)
}

/// An inbound HTTP request for `parse_callback`.
public struct InboundRequest: Sendable {
    public var method: String
    public var path: String
    public var query: String
    public var headers: [HeaderField]
    public var body: [UInt8]
    public var remoteAddress: String
    public init(method: String, path: String, query: String = "", headers: [HeaderField] = [], body: [UInt8] = [], remoteAddress: String = "") {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }
}

public struct InboundAction: Sendable, Equatable {
    public enum Kind: Int32, Sendable { case acknowledge = 1, snooze, close, resolve, unacknowledge, note }
    public var kind: Kind
    public var incidentID: String
    public var callbackToken: String
    public var actor: String
    public var via: String
    public var snoozeMinutes: UInt32
    public var note: String
    public init(kind: Kind, incidentID: String, callbackToken: String = "", actor: String = "", via: String = "",
                snoozeMinutes: UInt32 = 0, note: String = "") {
        self.kind = kind
        self.incidentID = incidentID
        self.callbackToken = callbackToken
        self.actor = actor
        self.via = via
        self.snoozeMinutes = snoozeMinutes
        self.note = note
    }
}

public struct CallbackReply: Sendable, Equatable {
    public var status: Int32
    public var contentType: String
    public var body: [UInt8]
    public init(status: Int32, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// What `parse_callback` decided.
public struct CallbackResult: Sendable {
    /// False for a forged, stale or malformed request.
    public var authentic: Bool
    public var actions: [InboundAction]
    public var reply: CallbackReply?
    public var reason: String?
}
