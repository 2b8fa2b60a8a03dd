/// Why a plugin was refused. The message is one sentence that names the file, and the field or
/// symbol when there is one; the host logs it and goes on with the other plugins.
public struct PluginLoadError: Error, Sendable, CustomStringConvertible, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case badManifest, notELF, wrongArchitecture, missingDependency, loadFailed, noEntry, wrongMajor,
                foreignEntry, refused, badDescriptor, manifestMismatch, duplicate, invalidConfig, createFailed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        public var description: String { base.rawValue }

        public static let badManifest = Code(.badManifest)
        public static let notELF = Code(.notELF)
        public static let wrongArchitecture = Code(.wrongArchitecture)
        public static let missingDependency = Code(.missingDependency)
        public static let loadFailed = Code(.loadFailed)
        public static let noEntry = Code(.noEntry)
        public static let wrongMajor = Code(.wrongMajor)
        /// The entry symbol resolved to another file (a dependency exports it).
        public static let foreignEntry = Code(.foreignEntry)
        /// The plugin's entry point declined this host.
        public static let refused = Code(.refused)
        public static let badDescriptor = Code(.badDescriptor)
        public static let manifestMismatch = Code(.manifestMismatch)
        public static let duplicate = Code(.duplicate)
        public static let invalidConfig = Code(.invalidConfig)
        public static let createFailed = Code(.createFailed)
    }

    public let code: Code
    /// The plugin file (or manifest) concerned.
    public let path: String
    public let message: String

    public init(_ code: Code, path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String { message }
}
