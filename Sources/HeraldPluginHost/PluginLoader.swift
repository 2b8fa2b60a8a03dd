import CHeraldPlugin
import CHostShims
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A plugin whose shared object is loaded, negotiated and checked. Plugins are never unloaded
/// (Swift and Go images cannot be, and nothing gains from it), so this lives for the process.
public final class LoadedPlugin: @unchecked Sendable {
    // @unchecked: `raw` points at the plugin's static, immutable descriptor.
    public let path: String
    public let manifest: PluginManifest?
    public let descriptor: PluginDescriptor
    let raw: UnsafePointer<herald_plugin>
    /// The descriptor copied into host memory, zero-filled past the plugin's `struct_size`.
    let table: herald_plugin

    init(path: String, manifest: PluginManifest?, descriptor: PluginDescriptor, raw: UnsafePointer<herald_plugin>, table: herald_plugin) {
        self.path = path
        self.manifest = manifest
        self.descriptor = descriptor
        self.raw = raw
        self.table = table
    }
}

/// Loads plugin shared objects: `dlopen` with `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE`, one entry
/// symbol, Vulkan-style minor negotiation, and a checked descriptor. Every refusal is a
/// `PluginLoadError` whose message names the file.
public enum PluginLoader {
    public static let abiMajor = UInt32(HERALD_ABI_MAJOR)
    public static let abiMinor = UInt32(HERALD_ABI_MINOR)
    static let entrySymbol = "herald_plugin_entry_v1"

    /// One load per file (by device and inode): an entry point runs once per process.
    private static let loaded = Mutex<[String: LoadedPlugin]>([:])

    /// Loads the plugin a manifest describes and checks that the two agree.
    public static func load(_ manifest: PluginManifest) throws(PluginLoadError) -> LoadedPlugin {
        try load(libraryAt: manifest.libraryPath, manifest: manifest)
    }

    /// Loads a shared object. `manifest`, when given, must agree with the descriptor.
    public static func load(libraryAt path: String, manifest: PluginManifest? = nil) throws(PluginLoadError) -> LoadedPlugin {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw PluginLoadError(.loadFailed, path: path, "\(path): no such file")
        }
        let key = "\(st.st_dev):\(st.st_ino)"
        if let cached = loaded.withLock({ $0[key] }) {
            try checkManifest(manifest, against: cached.descriptor, path: path)
            return cached
        }
        let plugin = try loadOnce(path: path, manifest: manifest)
        return loaded.withLock { table in
            if let raced = table[key] { return raced }
            table[key] = plugin
            return plugin
        }
    }

    private static func loadOnce(path: String, manifest: PluginManifest?) throws(PluginLoadError) -> LoadedPlugin {
        func refuse(_ code: PluginLoadError.Code, _ message: String) -> PluginLoadError {
            PluginLoadError(code, path: path, "\(path): \(message)")
        }

        switch ELFHeader.check(path: path) {
        case .unreadable?: throw refuse(.loadFailed, "cannot be read")
        case .notELF?: throw refuse(.notELF, "is not an ELF shared object")
        case .wrongClass(let bits)?: throw refuse(.wrongArchitecture, "is a \(bits == 32 ? "32-bit" : "non-64-bit") ELF file; this host loads 64-bit plugins")
        case .wrongMachine(let machine)?:
            throw refuse(.wrongArchitecture, "was built for \(machine), but this host runs on \(ELFHeader.machineName(ELFHeader.hostMachine))")
        case .notSharedObject?: throw refuse(.notELF, "is an ELF executable or object file, not a shared object (link it with -shared)")
        case nil: break
        }

        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            throw describeDlopenFailure(path: path, error: dlerror().map { String(cString: $0) } ?? "unknown error")
        }
        // Never dlclose: see the ABI notes. RTLD_NODELETE keeps the image even if someone does.

        guard let symbol = dlsym(handle, entrySymbol) else {
            for major in [0, 2, 3, 4, 5, 6, 7, 8, 9] where dlsym(handle, "herald_plugin_entry_v\(major)") != nil {
                throw refuse(.wrongMajor, "was built for Herald plugin ABI \(major) (it exports herald_plugin_entry_v\(major)); this host speaks ABI \(abiMajor)")
            }
            throw refuse(.noEntry, "does not export \(entrySymbol); is it a Herald plugin? (check with: nm -D \(path))")
        }

        var ownerPath = [CChar](repeating: 0, count: 4096)
        if herald_symbol_owner(symbol, &ownerPath, ownerPath.count) == 0 {
            let owner = String(decoding: ownerPath.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if realPath(owner) != realPath(path) {
                throw refuse(.foreignEntry, "\(entrySymbol) comes from \(owner), not from the plugin itself")
            }
        }

        let entry = unsafeBitCast(symbol, to: herald_plugin_entry_v1_fn.self)
        var negotiate = herald_negotiate()
        negotiate.struct_size = UInt32(MemoryLayout<herald_negotiate>.size)
        negotiate.host_abi_major = abiMajor
        negotiate.host_abi_minor = abiMinor
        negotiate.product = productName
        guard let raw = entry(&negotiate) else {
            let reason = negotiate.refusal.validatedString.flatMap { $0.isEmpty ? nil : $0 } ?? "no reason given"
            throw refuse(.refused, "the plugin declined to load: \(reason)")
        }
        let (table, descriptor) = try readDescriptor(raw, negotiated: negotiate.plugin_abi_minor, refuse: refuse)
        try checkManifest(manifest, against: descriptor, path: path)
        return LoadedPlugin(path: path, manifest: manifest, descriptor: descriptor, raw: raw, table: table)
    }

    /// "herald", in static storage so the view stays valid.
    private static var productName: herald_str {
        let text: StaticString = "herald"
        return herald_str(ptr: UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self), len: text.utf8CodeUnitCount)
    }

    private static func readDescriptor(
        _ raw: UnsafePointer<herald_plugin>, negotiated: UInt32, refuse: (PluginLoadError.Code, String) -> PluginLoadError
    ) throws(PluginLoadError) -> (herald_plugin, PluginDescriptor) {
        func bad(_ message: String) -> PluginLoadError { refuse(.badDescriptor, "bad descriptor: \(message)") }

        // Size first, then copy: a smaller struct is an older header, a larger one a newer minor.
        let declared = Int(UnsafeRawPointer(raw).load(as: UInt32.self))
        let known = MemoryLayout<herald_plugin>.size
        let minimum = MemoryLayout<herald_plugin>.offset(of: \herald_plugin.invoke_action)! + MemoryLayout<UnsafeRawPointer?>.size
        guard declared >= minimum else {
            throw bad("struct_size is \(declared) bytes, smaller than ABI 1.0's \(minimum); was it built from this header?")
        }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: known, alignment: MemoryLayout<herald_plugin>.alignment)
        defer { storage.deallocate() }
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: known)
        storage.copyMemory(from: raw, byteCount: min(declared, known))

        for (field, name) in [(\herald_plugin.instance_create, "instance_create"), (\herald_plugin.instance_destroy, "instance_destroy"),
                              (\herald_plugin.prepare, "prepare"), (\herald_plugin.on_response, "on_response")] as [(PartialKeyPath<herald_plugin>, String)] {
            let offset = MemoryLayout<herald_plugin>.offset(of: field)!
            if storage.load(fromByteOffset: offset, as: UnsafeRawPointer?.self) == nil {
                throw bad("required hook '\(name)' is NULL")
            }
        }
        let d = storage.load(as: herald_plugin.self)

        guard d.abi_major == abiMajor else { throw bad("abi_major is \(d.abi_major), expected \(abiMajor)") }
        guard d.abi_minor <= abiMinor else {
            throw bad("abi_minor is \(d.abi_minor), but this host offered at most \(abiMinor); the plugin must answer the lower of the two")
        }
        guard d.abi_minor == negotiated else {
            throw bad("abi_minor \(d.abi_minor) differs from the minor negotiated by the entry point (\(negotiated))")
        }
        func text(_ s: herald_str, _ field: String) throws(PluginLoadError) -> String {
            guard let value = s.validatedString else { throw bad("field '\(field)' is not valid UTF-8 (or NULL with a length)") }
            return value
        }
        let id = try text(d.id, "id")
        guard PluginDescriptor.isValidID(id) else { throw bad("field 'id' must be lower-case letters, digits and '-' (got '\(id)')") }
        let name = try text(d.name, "name")
        guard !name.isEmpty else { throw bad("field 'name' is empty") }
        let version = try text(d.version, "version")
        guard PluginDescriptor.isSemanticVersion(version) else { throw bad("field 'version' must be a semantic version such as 1.2.0 (got '\(version)')") }
        let license = try text(d.license, "license")
        guard !license.isEmpty else { throw bad("field 'license' is empty; give an SPDX expression such as Apache-2.0") }
        guard let kind = ChannelKind(rawValue: d.channel_kind) else { throw bad("field 'channel_kind' has unknown value \(d.channel_kind)") }
        guard let format = TextFormat(rawValue: d.text_format) else { throw bad("field 'text_format' has unknown value \(d.text_format)") }
        guard let unit = SizeUnit(rawValue: d.size_unit) else { throw bad("field 'size_unit' has unknown value \(d.size_unit)") }
        let caps = PluginCapabilities(rawValue: d.capabilities)
        let hasCallback = d.parse_callback != nil
        let hasAction = d.invoke_action != nil
        if caps.contains(.inboundCallbacks) != hasCallback {
            throw bad(hasCallback ? "parse_callback is set but capability HERALD_CAP_INBOUND_CALLBACKS is not" : "capability HERALD_CAP_INBOUND_CALLBACKS is set but parse_callback is NULL")
        }
        if caps.contains(.adminActions) != hasAction {
            throw bad(hasAction ? "invoke_action is set but capability HERALD_CAP_ADMIN_ACTIONS is not" : "capability HERALD_CAP_ADMIN_ACTIONS is set but invoke_action is NULL")
        }
        let schemaText = try text(d.config_schema_json, "config_schema_json")
        let schema: JSONSchema
        do { schema = try JSONSchema(text: schemaText.isEmpty ? #"{"type":"object"}"# : schemaText) } catch {
            throw bad("field 'config_schema_json': \(error.message)")
        }
        guard schema.root["type"]?.stringValue == "object" else { throw bad("field 'config_schema_json' must describe an object (\"type\": \"object\")") }
        guard d.egress_host_count <= 256, d.egress_host_count == 0 || d.egress_hosts != nil else {
            throw bad("field 'egress_hosts' is NULL with a count of \(d.egress_host_count)")
        }
        var egress: [String] = []
        for i in 0..<d.egress_host_count {
            let host = try text(d.egress_hosts![i], "egress_hosts[\(i)]")
            guard !host.isEmpty, !host.contains("/"), !host.contains(" ") else { throw bad("field 'egress_hosts[\(i)]' is not a host name ('\(host)')") }
            egress.append(host)
        }
        let template = try text(d.default_template, "default_template")

        let descriptor = PluginDescriptor(
            id: id, name: name, version: version, license: license, abiMinor: d.abi_minor, channelKind: kind,
            textFormat: format, sizeLimit: d.size_limit == 0 ? nil : Int(d.size_limit), sizeUnit: unit, capabilities: caps,
            configSchemaText: schemaText, configSchema: schema, egressHosts: egress, defaultTemplate: template,
            hasParseCallback: hasCallback, hasInvokeAction: hasAction)
        return (d, descriptor)
    }

    private static func checkManifest(_ manifest: PluginManifest?, against d: PluginDescriptor, path: String) throws(PluginLoadError) {
        guard let m = manifest else { return }
        func mismatch(_ field: String, _ manifestValue: String, _ binaryValue: String) -> PluginLoadError {
            PluginLoadError(.manifestMismatch, path: path,
                "\(path): manifest \(m.manifestPath) says \(field) is '\(manifestValue)' but the plugin's descriptor says '\(binaryValue)'")
        }
        if m.id != d.id { throw mismatch("id", m.id, d.id) }
        if m.version != d.version { throw mismatch("version", m.version, d.version) }
        if m.abiMajor != Int(abiMajor) { throw mismatch("abi_major", String(m.abiMajor), String(abiMajor)) }
        if m.channelKind != d.channelKind.description { throw mismatch("channel_kind", m.channelKind, d.channelKind.description) }
    }

    private static func describeDlopenFailure(path: String, error: String) -> PluginLoadError {
        // glibc: "<needed>: cannot open shared object file: No such file or directory"
        if let range = error.range(of: ": cannot open shared object file") {
            let needed = String(error[..<range.lowerBound])
            if realPath(needed) != realPath(path) && !needed.hasSuffix(path) {
                return PluginLoadError(.missingDependency, path: path,
                    "\(path): needs \(needed), which the dynamic loader cannot find (check with: ldd \(path))")
            }
        }
        if error.contains("cannot dynamically load position-independent executable") {
            return PluginLoadError(.notELF, path: path, "\(path): is an executable, not a shared object (link it with -shared)")
        }
        if let range = error.range(of: "undefined symbol: ") {
            let symbol = error[range.upperBound...].split(separator: " ").first.map(String.init) ?? "?"
            return PluginLoadError(.missingDependency, path: path,
                "\(path): refers to undefined symbol '\(symbol)'; a plugin may use only libc and the host API table")
        }
        return PluginLoadError(.loadFailed, path: path, "\(path): dlopen failed: \(error)")
    }

    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
