// A Herald channel plugin written in Swift: the loader's Swift fixture. It exports
// `herald_plugin_entry_v1` with `@c` and fills the descriptor with `@convention(c)` closures.
// Swift plugins must be built with the host's toolchain (Swift has no stable ABI on Linux).
import CHeraldPlugin

/// Something with a protocol conformance, so the host's dynamic casts touch this image's metadata.
struct FixtureGreeting: CustomStringConvertible {
    var description: String { "hello from the Swift fixture" }
}

private func view(_ text: StaticString) -> herald_str {
    herald_str(ptr: UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self), len: text.utf8CodeUnitCount)
}

private final class Instance {
    let host: UnsafePointer<herald_host_api>
    let url: [UInt8]
    init(host: UnsafePointer<herald_host_api>, url: [UInt8]) {
        self.host = host
        self.url = url
    }
}

private func bytes(_ s: herald_str) -> [UInt8] {
    guard let ptr = s.ptr, s.len > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: ptr, count: s.len))
}

/// Reads "url":"…" from the (host-validated) config.
private func urlSetting(_ config: [UInt8]) -> [UInt8]? {
    let key = Array(#""url":""#.utf8)
    guard config.count > key.count,
        let start = (0...(config.count - key.count)).first(where: { config[$0..<$0 + key.count].elementsEqual(key) })
    else { return nil }
    let rest = config[(start + key.count)...]
    guard let end = rest.firstIndex(of: UInt8(ascii: "\"")) else { return nil }
    return Array(rest[..<end])
}

// Written once by the entry point (called once per process), read-only afterwards.
nonisolated(unsafe) private let descriptor: UnsafeMutablePointer<herald_plugin> = {
    let d = UnsafeMutablePointer<herald_plugin>.allocate(capacity: 1)
    d.initialize(to: herald_plugin(
        struct_size: UInt32(MemoryLayout<herald_plugin>.size),
        abi_major: UInt32(HERALD_ABI_MAJOR),
        abi_minor: 0,
        channel_kind: Int32(HERALD_CHANNEL_WEBHOOK.rawValue),
        id: view("swift-fixture"),
        name: view("Swift fixture"),
        version: view("0.1.0"),
        license: view("Apache-2.0"),
        text_format: Int32(HERALD_FORMAT_PLAIN.rawValue),
        size_unit: Int32(HERALD_SIZE_BYTES.rawValue),
        size_limit: 0,
        reserved0: 0,
        capabilities: 0,
        config_schema_json: view(#"{"type":"object","required":["url"],"properties":{"url":{"type":"string","format":"uri"}}}"#),
        egress_hosts: nil,
        egress_host_count: 0,
        default_template: view("{{title}}"),
        instance_create: { host, config, out in
            guard let url = urlSetting(bytes(config)) else {
                let message: StaticString = "setting 'url' is missing"
                host.pointee.set_error(view(message))
                return 1
            }
            out?.pointee = Unmanaged.passRetained(Instance(host: host, url: url)).toOpaque()
            return 0
        },
        instance_destroy: { instance in
            if let instance { Unmanaged<Instance>.fromOpaque(instance).release() }
        },
        prepare: { instance, message, exchange in
            let me = Unmanaged<Instance>.fromOpaque(instance!).takeUnretainedValue()
            let greeting = "\(FixtureGreeting())"
            var request = herald_request()
            request.struct_size = UInt32(MemoryLayout<herald_request>.size)
            request.kind = Int32(HERALD_REQUEST_HTTP.rawValue)
            request.method = view("POST")
            request.tag = 1
            request.body = message.pointee.title
            return me.url.withUnsafeBufferPointer { url in
                greeting.utf8CString.withUnsafeBufferPointer { g in
                    var header = herald_pair(name: view("X-Greeting"), value: herald_str(ptr: g.baseAddress, len: g.count - 1))
                    request.url = herald_str(ptr: UnsafeRawPointer(url.baseAddress)?.assumingMemoryBound(to: CChar.self), len: url.count)
                    return withUnsafePointer(to: &header) { h in
                        request.headers = h
                        request.header_count = 1
                        _ = me.host.pointee.set_request(exchange, &request)
                        return Int32(HERALD_OUTCOME_REQUEST.rawValue)
                    }
                }
            }
        },
        on_response: { instance, _, response, exchange in
            let me = Unmanaged<Instance>.fromOpaque(instance!).takeUnretainedValue()
            if (200..<300).contains(response.pointee.status) { return Int32(HERALD_OUTCOME_DELIVERED.rawValue) }
            _ = me.host.pointee.set_reason(exchange, view("the receiver refused the message"))
            return Int32(HERALD_OUTCOME_FAILED.rawValue)
        },
        parse_callback: nil,
        invoke_action: nil))
    return d
}()

private func negotiate(_ n: UnsafeMutablePointer<herald_negotiate>) -> UnsafePointer<herald_plugin>? {
    guard n.pointee.host_abi_major == UInt32(HERALD_ABI_MAJOR) else {
        n.pointee.refusal = view("the Swift fixture speaks ABI 1 only")
        return nil
    }
    let minor = min(UInt32(HERALD_ABI_MINOR), n.pointee.host_abi_minor)
    n.pointee.plugin_abi_minor = minor
    descriptor.pointee.abi_minor = minor
    return UnsafePointer(descriptor)
}

#if compiler(>=6.3)
@c(herald_plugin_entry_v1)
public func heraldPluginEntry(_ n: UnsafeMutablePointer<herald_negotiate>) -> UnsafePointer<herald_plugin>? { negotiate(n) }
#else
@_cdecl("herald_plugin_entry_v1")
public func heraldPluginEntry(_ n: UnsafeMutablePointer<herald_negotiate>) -> UnsafePointer<herald_plugin>? { negotiate(n) }
#endif
