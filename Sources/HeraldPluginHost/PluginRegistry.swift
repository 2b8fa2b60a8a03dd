/// The plugins found in the configured directories: loaded, checked, keyed by id. Building it
/// never fails as a whole: each refused plugin becomes one entry in `problems`.
public struct PluginRegistry: Sendable {
    public private(set) var plugins: [String: LoadedPlugin] = [:]
    public private(set) var problems: [PluginLoadError] = []

    public init() {}

    /// Discovers manifests in `directories` and loads every plugin they describe.
    public static func load(directories: [String]) -> PluginRegistry {
        var registry = PluginRegistry()
        let (manifests, problems) = PluginManifest.discover(in: directories)
        registry.problems = problems
        for manifest in manifests {
            registry.add(manifest)
        }
        return registry
    }

    /// Loads one plugin; a refusal is recorded, not thrown.
    public mutating func add(_ manifest: PluginManifest) {
        if let existing = plugins[manifest.id] {
            problems.append(PluginLoadError(.duplicate, path: manifest.manifestPath,
                "\(manifest.manifestPath): plugin id '\(manifest.id)' is already provided by \(existing.path); remove one of them"))
            return
        }
        do {
            let plugin = try PluginLoader.load(manifest)
            plugins[plugin.descriptor.id] = plugin
        } catch {
            problems.append(error)
        }
    }

    public subscript(id: String) -> LoadedPlugin? { plugins[id] }
}
