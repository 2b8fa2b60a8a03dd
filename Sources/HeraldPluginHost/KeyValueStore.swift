import Synchronization

/// Where plugin instances keep small state (access tokens, call-id → incident maps). Keys are
/// scoped by instance, so one instance never sees another's data.
public protocol PluginKeyValueStore: Sendable {
    func get(scope: String, key: String, now: Int64) -> [UInt8]?
    /// `expiresAt` is Unix milliseconds; nil means never.
    func set(scope: String, key: String, value: [UInt8], expiresAt: Int64?)
    /// Returns false when the key was absent.
    func delete(scope: String, key: String) -> Bool
}

/// A process-local store: the default until a database-backed one is configured.
public final class InMemoryKeyValueStore: PluginKeyValueStore {
    private struct Entry { var value: [UInt8]; var expiresAt: Int64? }
    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    private func composite(_ scope: String, _ key: String) -> String { "\(scope)\u{0}\(key)" }

    public func get(scope: String, key: String, now: Int64) -> [UInt8]? {
        entries.withLock { table in
            let k = composite(scope, key)
            guard let entry = table[k] else { return nil }
            if let expiry = entry.expiresAt, expiry <= now {
                table[k] = nil
                return nil
            }
            return entry.value
        }
    }

    public func set(scope: String, key: String, value: [UInt8], expiresAt: Int64?) {
        entries.withLock { $0[composite(scope, key)] = Entry(value: value, expiresAt: expiresAt) }
    }

    public func delete(scope: String, key: String) -> Bool {
        entries.withLock { $0.removeValue(forKey: composite(scope, key)) != nil }
    }
}
