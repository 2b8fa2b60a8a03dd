import HeraldPluginHost

/// A person to @mention, as Herald knows them.
public struct Member: Sendable, Equatable, Hashable {
    public var name: String
    public var email: String
    public var phone: String
    public init(name: String, email: String = "", phone: String = "") {
        self.name = name
        self.email = email
        self.phone = phone
    }
}

/// A named mapping table: member key (email by default) → platform id, e.g. email → zoom_jid.
public struct MappingTable: Sendable, Equatable {
    public enum Key: String, Sendable { case email, phone, name }
    public var name: String
    /// The `id_kind` the values are, as the plugin reads it ("jid", "open_id", "user_id"...).
    public var idKind: String
    public var key: Key
    public var entries: [String: String]
    public init(name: String, idKind: String, key: Key = .email, entries: [String: String]) {
        self.name = name
        self.idKind = idKind
        self.key = key
        self.entries = entries
    }
}

/// Who could not be @mentioned, and why: recorded on the delivery.
public struct MentionReport: Sendable, Equatable {
    public struct Unresolved: Sendable, Equatable {
        public var member: Member
        public var reason: String
    }
    public var unresolved: [Unresolved] = []
    public var isComplete: Bool { unresolved.isEmpty }
    public init(unresolved: [Unresolved] = []) { self.unresolved = unresolved }
}

public enum MentionResolver {
    /// The id kinds used for the phone and email fallbacks.
    public static let phoneKind = "mobile"
    public static let emailKind = "email"

    /// Resolves each member to one mention, trying in order: the mapping tables (in the order
    /// given) whose `idKind` the plugin accepts, then the member's phone number (if the plugin
    /// accepts "mobile"), then the email address (if it accepts "email"). Members that none of
    /// these resolve are in the report with a sentence saying what was tried.
    public static func resolve(_ members: [Member], tables: [MappingTable], acceptedIDKinds: [String]) -> (mentions: [Mention], report: MentionReport) {
        let accepted = Set(acceptedIDKinds)
        let usable = tables.filter { accepted.contains($0.idKind) }
        var mentions: [Mention] = []
        var report = MentionReport()
        for member in members {
            if let mention = lookUp(member, usable) {
                mentions.append(mention)
            } else if accepted.contains(phoneKind), !member.phone.isEmpty {
                mentions.append(Mention(displayName: member.name, id: member.phone, idKind: phoneKind))
            } else if accepted.contains(emailKind), !member.email.isEmpty {
                mentions.append(Mention(displayName: member.name, id: member.email, idKind: emailKind))
            } else {
                report.unresolved.append(.init(member: member, reason: reason(member, tables: tables, usable: usable, accepted: accepted, acceptedIDKinds: acceptedIDKinds)))
            }
        }
        return (mentions, report)
    }

    static func key(_ member: Member, _ key: MappingTable.Key) -> String {
        switch key {
        case .email: member.email.lowercased()
        case .phone: member.phone
        case .name: member.name
        }
    }

    static func lookUp(_ member: Member, _ tables: [MappingTable]) -> Mention? {
        for table in tables {
            let k = key(member, table.key)
            if !k.isEmpty, let id = table.entries[k], !id.isEmpty {
                return Mention(displayName: member.name, id: id, idKind: table.idKind)
            }
        }
        return nil
    }

    static func reason(_ member: Member, tables: [MappingTable], usable: [MappingTable], accepted: Set<String>, acceptedIDKinds: [String]) -> String {
        var tried: [String] = []
        if usable.isEmpty {
            tried.append(tables.isEmpty ? "there is no mapping table" : "no mapping table gives an id kind the plugin accepts")
        } else {
            tried.append("mapping " + usable.map { "'\($0.name)'" }.joined(separator: ", ") + " has no entry for them")
        }
        if accepted.contains(phoneKind) { tried.append("they have no phone number") }
        if accepted.contains(emailKind) { tried.append("they have no email address") }
        let kinds = acceptedIDKinds.isEmpty ? "none" : acceptedIDKinds.joined(separator: ", ")
        return "cannot @mention \(member.name.isEmpty ? member.email : member.name): "
            + tried.joined(separator: ", ") + " (the plugin accepts: \(kinds))"
    }
}
