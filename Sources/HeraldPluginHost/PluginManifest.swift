import Foundation

/// The sidecar `manifest.json` next to a plugin's `.so`. It lets Herald list plugins without
/// running their code; when a plugin loads, the manifest and the in-binary descriptor must agree.
///
/// ```json
/// {"id": "webhook", "name": "Generic webhook", "version": "1.0.0", "abi_major": 1,
///  "library": "webhook.so", "channel_kind": "webhook", "license": "Apache-2.0",
///  "description": "POSTs a JSON incident payload to any URL."}
/// ```
public struct PluginManifest: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var version: String
    public var abiMajor: Int
    /// The shared object, relative to the manifest's folder.
    public var library: String
    public var channelKind: String
    public var license: String?
    public var description: String?
    /// The `id_kind`s the plugin can @mention ("jid", "user_id", "mobile"...): which mapping
    /// tables and fallbacks the core uses to resolve mentions for it. Empty: no mentions.
    public var mentionIDKinds: [String]
    /// The platform's quota per destination (`{"count": 20, "per_seconds": 60}`), if it has one.
    public var rateLimit: ManifestRateLimit?

    public struct ManifestRateLimit: Sendable, Codable, Equatable {
        public var count: Int
        public var perSeconds: Double
        enum CodingKeys: String, CodingKey {
            case count
            case perSeconds = "per_seconds"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, name, version, library, license, description
        case mentionIDKinds = "mention_id_kinds"
        case rateLimit = "rate_limit"
        case abiMajor = "abi_major"
        case channelKind = "channel_kind"
    }

    /// Where the manifest was read from.
    public internal(set) var manifestPath: String = ""
    /// Absolute path of the shared object.
    public var libraryPath: String {
        library.hasPrefix("/") ? library : URL(fileURLWithPath: manifestPath).deletingLastPathComponent().appendingPathComponent(library).path
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
        version = try c.decode(String.self, forKey: .version)
        abiMajor = try c.decode(Int.self, forKey: .abiMajor)
        library = try c.decode(String.self, forKey: .library)
        channelKind = try c.decode(String.self, forKey: .channelKind)
        license = try c.decodeIfPresent(String.self, forKey: .license)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        mentionIDKinds = try c.decodeIfPresent([String].self, forKey: .mentionIDKinds) ?? []
        rateLimit = try c.decodeIfPresent(ManifestRateLimit.self, forKey: .rateLimit)
        if let limit = rateLimit, limit.count < 1 || !(limit.perSeconds > 0) {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.rateLimit], debugDescription: "rate_limit needs count >= 1 and per_seconds > 0"))
        }
    }

    /// Reads and checks one manifest file.
    public static func read(at path: String) throws(PluginLoadError) -> PluginManifest {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PluginLoadError(.badManifest, path: path, "\(path): cannot read the manifest")
        }
        var manifest: PluginManifest
        do {
            manifest = try JSONDecoder().decode(PluginManifest.self, from: data)
        } catch let error as DecodingError {
            throw PluginLoadError(.badManifest, path: path, "\(path): \(error.manifestDescription)")
        } catch {
            throw PluginLoadError(.badManifest, path: path, "\(path): \(error)")
        }
        manifest.manifestPath = path
        if !PluginDescriptor.isValidID(manifest.id) {
            throw PluginLoadError(.badManifest, path: path, "\(path): field 'id' must be lower-case letters, digits and '-' (got '\(manifest.id)')")
        }
        if !PluginDescriptor.isSemanticVersion(manifest.version) {
            throw PluginLoadError(.badManifest, path: path, "\(path): field 'version' must be a semantic version such as 1.2.0 (got '\(manifest.version)')")
        }
        return manifest
    }

    /// Finds manifests in `directories`: `<dir>/manifest.json` and `<dir>/<any>/manifest.json`.
    /// Unreadable manifests are returned as problems, not thrown: one bad plugin never hides the rest.
    public static func discover(in directories: [String]) -> (manifests: [PluginManifest], problems: [PluginLoadError]) {
        var manifests: [PluginManifest] = []
        var problems: [PluginLoadError] = []
        let fm = FileManager.default
        for directory in directories {
            var candidates = [directory + "/manifest.json"]
            let children = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
            candidates += children.sorted().map { "\(directory)/\($0)/manifest.json" }
            for path in candidates where fm.fileExists(atPath: path) {
                do { manifests.append(try read(at: path)) } catch { problems.append(error) }
            }
        }
        return (manifests, problems)
    }
}

extension DecodingError {
    fileprivate var manifestDescription: String {
        switch self {
        case .keyNotFound(let key, _): return "field '\(key.stringValue)' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "field '\(field)' has the wrong type"
        default: return "is not valid JSON (\(plainDescription))"
        }
    }
}
