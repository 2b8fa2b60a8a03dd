import Foundation
import HeraldPluginHost
import Yams

/// Reads `members:`, `teams:` and `services:` (see `EscalationPolicy` for the shape). Names are
/// checked against each other after everything is read, by `HeraldConfig.policyErrors`.
extension ConfigReader {
    mutating func members(_ node: Node, into policy: inout EscalationPolicy, locations: inout [String: HeraldConfig.Location]) {
        for (i, item) in sequence(node, "members").enumerated() {
            let key = "members[\(i)]"
            guard let m = mapping(item, key, known: ["name", "email", "phone", "preferences"]) else { continue }
            guard let name = m["name"].flatMap({ string($0, key + ".name") }), isPlainName(name, item, key) else {
                if m["name"] == nil { fail(item, key, "needs a 'name'") }
                continue
            }
            if policy.people[name] != nil { fail(item, key + ".name", "'\(name)' is defined twice") }
            var person = EscalationPolicy.Person(member: Member(name: name), preferences: [:])
            if let n = m["email"], let email = string(n, key + ".email") {
                if !email.contains("@") || email.contains(where: \.isWhitespace) { fail(n, key + ".email", "'\(email)' is not an email address") }
                person.member.email = email
            }
            if let n = m["phone"], let phone = string(n, key + ".phone") {
                if !phone.hasPrefix("+") || phone.dropFirst().contains(where: { !$0.isNumber }) || phone.count < 8 {
                    fail(n, key + ".phone", "must be an E.164 number such as +8613800000000")
                }
                person.member.phone = phone
            }
            if let n = m["preferences"] {
                person.preferences = severityLists(n, key + ".preferences")
                locations["members.\(name).preferences"] = location(n)
            }
            policy.people[name] = person
        }
    }

    mutating func teams(_ node: Node, into policy: inout EscalationPolicy, locations: inout [String: HeraldConfig.Location]) {
        for (i, item) in sequence(node, "teams").enumerated() {
            let key = "teams[\(i)]"
            guard let t = mapping(item, key, known: ["name", "members"]),
                  let name = t["name"].flatMap({ string($0, key + ".name") }), isPlainName(name, item, key) else { continue }
            if policy.teams[name] != nil { fail(item, key + ".name", "'\(name)' is defined twice") }
            locations["teams.\(name)"] = location(item)
            policy.teams[name] = .init(name: name, members: t["members"].map { strings($0, key + ".members") } ?? [])
        }
    }

    mutating func services(_ node: Node, into policy: inout EscalationPolicy, locations: inout [String: HeraldConfig.Location]) {
        for (i, item) in sequence(node, "services").enumerated() {
            let key = "services[\(i)]"
            guard let s = mapping(item, key, known: ["name", "rules"]),
                  let name = s["name"].flatMap({ string($0, key + ".name") }), isPlainName(name, item, key) else { continue }
            if policy.services[name] != nil { fail(item, key + ".name", "'\(name)' is defined twice") }
            var service = EscalationPolicy.Service(name: name, rules: [])
            let ruleNodes = s["rules"].map { sequence($0, key + ".rules") } ?? []
            for (r, ruleNode) in ruleNodes.enumerated() {
                if let rule = rule(ruleNode, "\(key).rules[\(r)]", locationKey: "services.\(name).rules[\(r)]", locations: &locations) {
                    if service.rules.contains(where: { $0.name == rule.name }) { fail(ruleNode, "\(key).rules[\(r)].name", "'\(rule.name)' is used twice in this service") }
                    service.rules.append(rule)
                }
            }
            policy.services[name] = service
        }
    }

    mutating func rule(_ node: Node, _ key: String, locationKey: String, locations: inout [String: HeraldConfig.Location]) -> EscalationPolicy.Rule? {
        guard let r = mapping(node, key, known: ["name", "when", "time_window", "delay_seconds", "levels"]) else { return nil }
        guard let name = r["name"].flatMap({ string($0, key + ".name") }) else { fail(node, key, "needs a 'name'"); return nil }
        var rule = EscalationPolicy.Rule(name: name, levels: [])
        if let n = r["when"] { rule.when = sequence(n, key + ".when").enumerated().compactMap { condition($1, "\(key).when[\($0)]") } }
        if let n = r["time_window"] { rule.timeWindow = timeWindow(n, key + ".time_window") }
        if let n = r["delay_seconds"] { rule.delaySeconds = integer(n, key + ".delay_seconds", 0...3600) ?? 0 }
        guard let levels = r["levels"] else { fail(node, key, "needs 'levels', at least one"); return nil }
        for (l, levelNode) in sequence(levels, key + ".levels").enumerated() {
            let levelKey = "\(key).levels[\(l)]"
            locations["\(locationKey).levels[\(l)]"] = location(levelNode)
            if let level = level(levelNode, levelKey) { rule.levels.append(level) }
        }
        if rule.levels.isEmpty { fail(levels, key + ".levels", "needs at least one level") }
        return rule
    }

    mutating func condition(_ node: Node, _ key: String) -> EscalationPolicy.Condition? {
        guard let c = mapping(node, key, known: ["severity", "title", "labels"]) else { return nil }
        var condition = EscalationPolicy.Condition()
        if let n = c["severity"] {
            for (i, text) in strings(n, key + ".severity").enumerated() {
                if let s = Severity(name: text) { condition.severities.append(s) } else { fail(n, "\(key).severity[\(i)]", "must be critical, warning or info (got '\(text)')") }
            }
        }
        if let n = c["title"], let t = mapping(n, key + ".title", known: ["contains"]), let contains = t["contains"] {
            condition.titleContains = contains.scalar != nil ? [string(contains, key + ".title.contains") ?? ""] : strings(contains, key + ".title.contains")
        }
        if let n = c["labels"], let labels = n.mapping {
            for (nameNode, testNode) in labels {
                guard let label = string(nameNode, key + ".labels") else { continue }
                let testKey = "\(key).labels.\(label)"
                guard let test = mapping(testNode, testKey, known: ["in", "not_in"]) else { continue }
                if let values = test["in"] { condition.labels[label] = .isIn(strings(values, testKey + ".in")) }
                else if let values = test["not_in"] { condition.labels[label] = .notIn(strings(values, testKey + ".not_in")) }
                else { fail(testNode, testKey, "needs 'in' or 'not_in', a list of values") }
            }
        } else if let n = c["labels"] {
            fail(n, key + ".labels", "must map label names to {in: [...]} or {not_in: [...]}")
        }
        return condition
    }

    mutating func timeWindow(_ node: Node, _ key: String) -> EscalationPolicy.TimeWindow? {
        guard let w = mapping(node, key, known: ["days", "from", "to", "timezone"]) else { return nil }
        let names = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        var days: Set<Int> = []
        let dayNames = w["days"].map { strings($0, key + ".days") } ?? names
        for (i, day) in dayNames.enumerated() {
            if let index = names.firstIndex(of: String(day.lowercased().prefix(3))) { days.insert(index + 1) } else { fail(node, "\(key).days[\(i)]", "'\(day)' is not a weekday (mon, tue, ... sun)") }
        }
        func minutes(_ name: String, _ fallback: Int) -> Int {
            guard let n = w[name], let text = string(n, "\(key).\(name)") else { return fallback }
            let parts = text.split(separator: ":")
            guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...24).contains(h), (0...59).contains(m), h * 60 + m <= 1440 else {
                fail(n, "\(key).\(name)", "must be a time of day as HH:MM (got '\(text)')")
                return fallback
            }
            return h * 60 + m
        }
        var zone = TimeZone(identifier: "UTC")!
        if let n = w["timezone"], let name = string(n, key + ".timezone") {
            if let z = TimeZone(identifier: name) { zone = z } else { fail(n, key + ".timezone", "'\(name)' is not a time zone such as Asia/Shanghai or UTC") }
        }
        return .init(weekdays: days, from: minutes("from", 0), to: minutes("to", 1440), timeZone: zone)
    }

    mutating func level(_ node: Node, _ key: String) -> EscalationPolicy.Level? {
        guard let l = mapping(node, key, known: ["members", "teams", "emails", "direct", "group_chats", "timeout_minutes", "force", "repeat"]) else { return nil }
        var level = EscalationPolicy.Level()
        level.members = l["members"].map { strings($0, key + ".members") } ?? []
        level.teams = l["teams"].map { strings($0, key + ".teams") } ?? []
        level.emails = l["emails"].map { strings($0, key + ".emails") } ?? []
        level.groupChats = l["group_chats"].map { strings($0, key + ".group_chats") } ?? []
        if let n = l["direct"] {
            if n.scalar?.string == "follow_preference" {
                level.direct = .followPreference
            } else if n.mapping != nil {
                level.direct = .unified(severityLists(n, key + ".direct"))
            } else {
                fail(n, key + ".direct", "must be follow_preference or a mapping of severities to integration names")
            }
        }
        if let n = l["timeout_minutes"] { level.timeoutMinutes = integer(n, key + ".timeout_minutes", 0...720) ?? 30 }
        if let n = l["force"] { level.force = bool(n, key + ".force") ?? false }
        if let n = l["repeat"], let r = mapping(n, key + ".repeat", known: ["times", "interval_minutes"]) {
            if let t = r["times"] { level.repeatTimes = integer(t, key + ".repeat.times", 0...6) ?? 0 }
            if let m = r["interval_minutes"] {
                if let text = m.scalar?.string, let value = Double(text), value >= 0.5, value <= 120 {
                    level.repeatIntervalMinutes = value
                } else {
                    fail(m, key + ".repeat.interval_minutes", "must be a number of minutes from 0.5 to 120")
                }
            }
        }
        if level.members.isEmpty && level.teams.isEmpty && level.emails.isEmpty && level.groupChats.isEmpty {
            fail(node, key, "names nobody: give members, teams, emails or group_chats")
        }
        return level
    }

    /// `{critical: [a, b], warning: [c]}` → integration names by severity.
    mutating func severityLists(_ node: Node, _ key: String) -> [Severity: [String]] {
        guard let pairs = node.mapping else { fail(node, key, "must map severities (critical, warning, info) to lists of integration names"); return [:] }
        var result: [Severity: [String]] = [:]
        for (k, v) in pairs {
            guard let name = string(k, key) else { continue }
            guard let severity = Severity(name: name) else { fail(k, "\(key).\(name)", "must be critical, warning or info"); continue }
            result[severity] = strings(v, "\(key).\(name)")
        }
        return result
    }
}

extension HeraldConfig {
    /// Names the policy uses that nothing defines: members of teams and levels, teams of levels,
    /// integrations of preferences, direct channels and group chats.
    func policyErrors() -> [ConfigError] {
        var errors: [ConfigError] = []
        let integrationNames = Set(integrations.map(\.name))
        func fail(_ key: String, _ message: String) {
            let at = policyLocations[key] ?? Location(line: 0, column: 0)
            errors.append(ConfigError(file: file, line: at.line, column: at.column, key: key, message: message))
        }
        for team in policy.teams.values.sorted(by: { $0.name < $1.name }) {
            for member in team.members where policy.people[member] == nil { fail("teams.\(team.name)", "member '\(member)' is not under members:") }
        }
        for person in policy.people.values.sorted(by: { $0.member.name < $1.member.name }) {
            for name in person.preferences.values.flatMap({ $0 }) where !integrationNames.contains(name) {
                fail("members.\(person.member.name).preferences", "no integration '\(name)'")
            }
        }
        for service in policy.services.values.sorted(by: { $0.name < $1.name }) {
            for (r, rule) in service.rules.enumerated() {
                for (l, level) in rule.levels.enumerated() {
                    let key = "services.\(service.name).rules[\(r)].levels[\(l)]"
                    func levelFail(_ message: String) { fail(key, message) }
                    for m in level.members where policy.people[m] == nil { levelFail("member '\(m)' is not under members:") }
                    for t in level.teams where policy.teams[t] == nil { levelFail("team '\(t)' is not under teams:") }
                    for g in level.groupChats where !integrationNames.contains(g) { levelFail("group chat '\(g)' is not an integration") }
                    if case .unified(let lists) = level.direct {
                        for name in lists.values.flatMap({ $0 }) where !integrationNames.contains(name) { levelFail("direct channel '\(name)' is not an integration") }
                    }
                }
            }
        }
        return errors
    }
}
