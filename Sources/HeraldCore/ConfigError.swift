/// A problem in a config file, located by file, line and key: `herald.yaml:12:7: integrations[0].settings.url: …`.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int
    public let column: Int
    /// The key path, e.g. `integrations[0].settings.url`; empty for file-level problems.
    public let key: String
    public let message: String

    public init(file: String, line: Int, column: Int, key: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    public var description: String {
        let location = line > 0 ? "\(file):\(line):\(column)" : file
        return key.isEmpty ? "\(location): \(message)" : "\(location): \(key): \(message)"
    }
}

/// All the problems found in one pass, so an operator fixes them together.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public let errors: [ConfigError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
