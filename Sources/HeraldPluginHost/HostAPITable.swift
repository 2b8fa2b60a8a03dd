import CHostShims
import CHeraldPlugin
import Foundation
import Logging
import Synchronization

/// What the host API of one instance is bound to.
final class InstanceContext: Sendable {
    let pluginID: String
    let instanceName: String
    let logger: Logger
    let keyValueStore: any PluginKeyValueStore
    let clock: @Sendable () -> Int64
    let config: JSONValue
    let lastError = Mutex<String?>(nil)
    /// Exchanges currently inside a hook, by handle. A handle is a number that is never reused,
    /// so a pointer a plugin kept past its hook can never alias a later exchange.
    let liveExchanges = Mutex<(next: UInt, live: [UInt: Exchange])>((1, [:]))

    init(pluginID: String, instanceName: String, config: JSONValue, environment: PluginHostEnvironment) {
        self.pluginID = pluginID
        self.instanceName = instanceName
        self.config = config
        var logger = environment.logger
        logger[metadataKey: "plugin"] = .string(pluginID)
        logger[metadataKey: "integration"] = .string(instanceName)
        self.logger = logger
        self.keyValueStore = environment.keyValueStore
        self.clock = environment.clock
    }

    /// Runs `body` with a live exchange pointer the plugin may use during the call.
    func withExchange<T>(_ exchange: Exchange, _ body: (OpaquePointer) -> T) -> T {
        let handle = liveExchanges.withLock { table in
            let handle = table.next
            table.next += 1
            table.live[handle] = exchange
            return handle
        }
        defer { liveExchanges.withLock { _ = $0.live.removeValue(forKey: handle) } }
        return body(OpaquePointer(bitPattern: handle)!)
    }

    func exchange(_ pointer: UnsafeMutableRawPointer?) -> Exchange? {
        liveExchanges.withLock { $0.live[UInt(bitPattern: pointer)] }
    }
}

/// Services and settings every instance's host API is built from.
public struct PluginHostEnvironment: Sendable {
    public var logger: Logger
    public var keyValueStore: any PluginKeyValueStore
    public var clock: @Sendable () -> Int64

    public init(
        logger: Logger = Logger(label: "herald.plugin"),
        keyValueStore: any PluginKeyValueStore = InMemoryKeyValueStore(),
        clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.logger = logger
        self.keyValueStore = keyValueStore
        self.clock = clock
    }
}

/// One `herald_host_api` table whose functions are libffi closures bound to one instance, so a
/// plugin calls `host->log(level, msg)` with no context argument and can only reach its own data.
/// OWNERSHIP: the table and closures live until `release()`, called after `instance_destroy`.
final class HostAPITable: @unchecked Sendable {
    // @unchecked: the pointers are written once in init and only read afterwards.
    let table: UnsafeMutablePointer<herald_host_api>
    private var closures: [OpaquePointer] = []
    private var bindings: [Unmanaged<Binding>] = []

    /// One closure's user data: which function, for which instance.
    final class Binding {
        let function: HostFunction
        let context: InstanceContext
        init(function: HostFunction, context: InstanceContext) {
            self.function = function
            self.context = context
        }
    }

    init?(context: InstanceContext) {
        let size = MemoryLayout<herald_host_api>.size
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<herald_host_api>.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        raw.storeBytes(of: UInt32(size), toByteOffset: MemoryLayout<herald_host_api>.offset(of: \.struct_size)!, as: UInt32.self)
        raw.storeBytes(of: PluginLoader.abiMinor, toByteOffset: MemoryLayout<herald_host_api>.offset(of: \.abi_minor)!, as: UInt32.self)
        table = raw.bindMemory(to: herald_host_api.self, capacity: 1)

        for function in HostFunction.allCases {
            let binding = Unmanaged.passRetained(Binding(function: function, context: context))
            bindings.append(binding)
            let (ret, args) = function.signature
            var code: UnsafeMutableRawPointer?
            let closure = args.withUnsafeBufferPointer { buffer in
                herald_ffi_closure_create(ret, buffer.baseAddress, UInt32(buffer.count), hostTrampoline, binding.toOpaque(), &code)
            }
            guard let closure, let code else {
                release()
                return nil
            }
            closures.append(closure)
            raw.storeBytes(of: code, toByteOffset: function.offset, as: UnsafeMutableRawPointer.self)
        }
    }

    func release() {
        closures.forEach { herald_ffi_closure_free($0) }
        closures = []
        bindings.forEach { $0.release() }
        bindings = []
        table.deallocate()
    }
}

/// Every libffi closure lands here and is dispatched on its binding.
private let hostTrampoline: herald_ffi_handler = { userData, ret, args in
    let binding = Unmanaged<HostAPITable.Binding>.fromOpaque(userData!).takeUnretainedValue()
    binding.function.call(binding.context, Arguments(args), ret)
}

/// Typed access to libffi's argument array.
struct Arguments {
    let raw: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    init(_ raw: UnsafeMutablePointer<UnsafeMutableRawPointer?>) { self.raw = raw }
    func str(_ i: Int) -> herald_str { raw[i]!.load(as: herald_str.self) }
    func int32(_ i: Int) -> Int32 { raw[i]!.load(as: Int32.self) }
    func uint64(_ i: Int) -> UInt64 { raw[i]!.load(as: UInt64.self) }
    func pointer(_ i: Int) -> UnsafeMutableRawPointer? { raw[i]!.load(as: UnsafeMutableRawPointer?.self) }
}

/// The functions of `herald_host_api`, in table order.
enum HostFunction: CaseIterable {
    case log, setError, kvGet, kvSet, kvDelete, nowUnixMs, randomBytes, hmacSHA1, hmacSHA256, sha256, aesDecrypt
    case base64Encode, base64Decode, percentEncode, jsonEscape
    case setRequest, setProviderID, setRetryAfter, setReason, addAction, setReply, setOutput
    case configGet, configKeys

    var offset: Int {
        let path: PartialKeyPath<herald_host_api> =
            switch self {
            case .log: \.log
            case .setError: \.set_error
            case .kvGet: \.kv_get
            case .kvSet: \.kv_set
            case .kvDelete: \.kv_delete
            case .nowUnixMs: \.now_unix_ms
            case .randomBytes: \.random_bytes
            case .hmacSHA1: \.hmac_sha1
            case .hmacSHA256: \.hmac_sha256
            case .sha256: \.sha256
            case .aesDecrypt: \.aes256_cbc_decrypt
            case .base64Encode: \.base64_encode
            case .base64Decode: \.base64_decode
            case .percentEncode: \.percent_encode
            case .jsonEscape: \.json_escape
            case .setRequest: \.set_request
            case .setProviderID: \.set_provider_id
            case .setRetryAfter: \.set_retry_after
            case .setReason: \.set_reason
            case .addAction: \.add_action
            case .setReply: \.set_reply
            case .setOutput: \.set_output
            case .configGet: \.config_get
            case .configKeys: \.config_keys
            }
        return MemoryLayout<herald_host_api>.offset(of: path)!
    }

    var signature: (herald_ffi_kind, [herald_ffi_kind]) {
        let (s, i32, u64, i64, p, v) = (HERALD_FFI_STR, HERALD_FFI_INT32, HERALD_FFI_UINT64, HERALD_FFI_INT64, HERALD_FFI_POINTER, HERALD_FFI_VOID)
        return switch self {
        case .log: (v, [i32, s])
        case .setError: (v, [s])
        case .kvGet: (i32, [s, p, u64, p])
        case .kvSet: (i32, [s, s, u64])
        case .kvDelete: (i32, [s])
        case .nowUnixMs: (i64, [])
        case .randomBytes: (i32, [p, u64])
        case .hmacSHA1, .hmacSHA256: (i32, [s, s, p])
        case .sha256: (i32, [s, p])
        case .aesDecrypt: (i32, [s, s, s, i32, p, u64, p])
        case .base64Encode, .base64Decode, .percentEncode, .jsonEscape, .configGet, .configKeys: (i32, [s, p, u64, p])
        case .setRequest: (i32, [p, p])
        case .setProviderID, .setReason, .setOutput: (i32, [p, s])
        case .setRetryAfter: (i32, [p, u64])
        case .addAction: (i32, [p, p])
        case .setReply: (i32, [p, i32, s, s])
        }
    }

    static let maxKeyBytes = 256
    static let maxValueBytes = 64 * 1024

    func call(_ ctx: InstanceContext, _ a: Arguments, _ ret: UnsafeMutableRawPointer?) {
        func status(_ s: herald_status) { ret!.storeBytes(of: Int64(s.rawValue), as: Int64.self) }
        func output(_ bytes: [UInt8]?, out: Int, cap: Int, len: Int) {
            guard let bytes else { return status(HERALD_ERR_INVALID_ARGUMENT) }
            status(HostFunction.write(bytes, to: a.pointer(out), capacity: Int(a.uint64(cap)), length: a.pointer(len)))
        }
        switch self {
        case .log:
            let message = a.str(1).string
            switch a.int32(0) {
            case 0: ctx.logger.trace("\(message)")
            case 1: ctx.logger.debug("\(message)")
            case 2: ctx.logger.info("\(message)")
            case 3: ctx.logger.warning("\(message)")
            default: ctx.logger.error("\(message)")
            }
        case .setError:
            let message = a.str(0).string
            ctx.lastError.withLock { $0 = message }
        case .kvGet:
            let key = a.str(0).string
            guard let value = ctx.keyValueStore.get(scope: ctx.instanceName, key: key, now: ctx.clock()) else {
                return status(HERALD_ERR_NOT_FOUND)
            }
            output(value, out: 1, cap: 2, len: 3)
        case .kvSet:
            let key = a.str(0), value = a.str(1), ttl = a.uint64(2)
            guard key.len > 0, key.len <= Self.maxKeyBytes, value.len <= Self.maxValueBytes else { return status(HERALD_ERR_LIMIT) }
            let expiry: Int64? = ttl == 0 ? nil : ctx.clock() &+ Int64(clamping: ttl)
            ctx.keyValueStore.set(scope: ctx.instanceName, key: key.string, value: value.bytes, expiresAt: expiry)
            status(HERALD_OK)
        case .kvDelete:
            status(ctx.keyValueStore.delete(scope: ctx.instanceName, key: a.str(0).string) ? HERALD_OK : HERALD_ERR_NOT_FOUND)
        case .nowUnixMs:
            ret!.storeBytes(of: ctx.clock(), as: Int64.self)
        case .randomBytes:
            let count = Int(a.uint64(1))
            guard let out = a.pointer(0), count <= 1 << 20 else { return status(HERALD_ERR_INVALID_ARGUMENT) }
            var generator = SystemRandomNumberGenerator()
            for i in 0..<count { out.storeBytes(of: UInt8.random(in: 0...255, using: &generator), toByteOffset: i, as: UInt8.self) }
            status(HERALD_OK)
        case .hmacSHA1, .hmacSHA256:
            guard let out = a.pointer(2) else { return status(HERALD_ERR_INVALID_ARGUMENT) }
            a.str(0).withBuffer { key in
                a.str(1).withBuffer { message in
                    if self == .hmacSHA1 {
                        HostCrypto.hmacSHA1(key: key, message: message, into: out)
                    } else {
                        HostCrypto.hmacSHA256(key: key, message: message, into: out)
                    }
                }
            }
            status(HERALD_OK)
        case .sha256:
            guard let out = a.pointer(1) else { return status(HERALD_ERR_INVALID_ARGUMENT) }
            a.str(0).withBuffer { HostCrypto.sha256($0, into: out) }
            status(HERALD_OK)
        case .aesDecrypt:
            let plain = try? HostCrypto.aes256CBCDecrypt(key: a.str(0).bytes, iv: a.str(1).bytes, ciphertext: a.str(2).bytes, stripPKCS7: a.int32(3) != 0)
            output(plain, out: 4, cap: 5, len: 6)
        case .base64Encode: output(HostCrypto.base64Encode(a.str(0).bytes), out: 1, cap: 2, len: 3)
        case .base64Decode: output(HostCrypto.base64Decode(a.str(0).bytes), out: 1, cap: 2, len: 3)
        case .percentEncode: output(HostCrypto.percentEncode(a.str(0).bytes), out: 1, cap: 2, len: 3)
        case .jsonEscape:
            // Escaped straight into the plugin's buffer: this runs for every field of every message.
            guard let length = a.pointer(3) else { return status(HERALD_ERR_INVALID_ARGUMENT) }
            let out = a.pointer(1), capacity = Int(clamping: a.uint64(2))
            let needed = a.str(0).withBuffer { HostCrypto.jsonEscape($0, into: out, capacity: capacity) }
            length.storeBytes(of: needed, as: Int.self)
            if needed > capacity { return status(HERALD_ERR_BUFFER_TOO_SMALL) }
            if needed > 0 && out == nil { return status(HERALD_ERR_INVALID_ARGUMENT) }
            status(HERALD_OK)
        case .configGet:
            guard let value = ctx.config.value(at: a.str(0).string) else { return status(HERALD_ERR_NOT_FOUND) }
            output(Array((value.stringValue ?? value.jsonText).utf8), out: 1, cap: 2, len: 3)
        case .configKeys:
            guard let value = ctx.config.value(at: a.str(0).string) else { return status(HERALD_ERR_NOT_FOUND) }
            guard let members = value.objectValue else { return status(HERALD_ERR_INVALID_ARGUMENT) }
            let names = members.keys.filter { !$0.utf8.contains(0) }.sorted()
            output(names.flatMap { Array($0.utf8) + [0] }, out: 1, cap: 2, len: 3)

        case .setRequest, .setProviderID, .setRetryAfter, .setReason, .addAction, .setReply, .setOutput:
            guard let exchange = ctx.exchange(a.pointer(0)) else { return status(HERALD_ERR_STATE) }
            status(record(into: exchange, a))
        }
    }

    private func record(into exchange: Exchange, _ a: Arguments) -> herald_status {
        switch self {
        case .setRequest:
            guard let raw = a.pointer(1) else { return HERALD_ERR_INVALID_ARGUMENT }
            let request = raw.load(as: herald_request.self)
            switch request.copied() {
            case .success(let copy):
                exchange.state.withLock { $0.request = copy; $0.requestProblem = nil }
                return HERALD_OK
            case .failure(let problem):
                exchange.state.withLock { $0.requestProblem = problem.message }
                return HERALD_ERR_INVALID_ARGUMENT
            }
        case .setProviderID:
            let id = a.str(1).string
            exchange.state.withLock { $0.providerID = id }
        case .setRetryAfter:
            let ms = a.uint64(1)
            exchange.state.withLock { $0.retryAfter = ms }
        case .setReason:
            let reason = a.str(1).string
            exchange.state.withLock { $0.reason = reason }
        case .addAction:
            guard let raw = a.pointer(1) else { return HERALD_ERR_INVALID_ARGUMENT }
            let action = raw.load(as: herald_action.self)
            let minimum = MemoryLayout<herald_action>.offset(of: \herald_action.note)! + MemoryLayout<herald_str>.size
            guard Int(action.struct_size) >= minimum, let kind = InboundAction.Kind(rawValue: action.kind) else { return HERALD_ERR_INVALID_ARGUMENT }
            let copy = InboundAction(kind: kind, incidentID: action.incident_id.string, callbackToken: action.callback_token.string,
                                     actor: action.actor.string, via: action.via.string, snoozeMinutes: action.snooze_minutes, note: action.note.string)
            guard !copy.incidentID.isEmpty || !copy.callbackToken.isEmpty else { return HERALD_ERR_INVALID_ARGUMENT }
            return exchange.state.withLock { state in
                guard state.actions.count < Exchange.maxActions else { return HERALD_ERR_LIMIT }
                state.actions.append(copy)
                return HERALD_OK
            }
        case .setReply:
            let status = a.int32(1)
            guard (100...599).contains(status) else { return HERALD_ERR_INVALID_ARGUMENT }
            let reply = CallbackReply(status: status, contentType: a.str(2).string, body: a.str(3).bytes)
            exchange.state.withLock { $0.reply = reply }
        case .setOutput:
            let json = a.str(1).string
            exchange.state.withLock { $0.output = json }
        default:
            return HERALD_ERR_STATE
        }
        return HERALD_OK
    }

    /// The `(out, cap, out_len)` convention of the header.
    static func write(_ bytes: [UInt8], to out: UnsafeMutableRawPointer?, capacity: Int, length: UnsafeMutableRawPointer?) -> herald_status {
        guard let length else { return HERALD_ERR_INVALID_ARGUMENT }
        length.storeBytes(of: bytes.count, as: Int.self)
        guard bytes.count <= capacity else { return HERALD_ERR_BUFFER_TOO_SMALL }
        if !bytes.isEmpty {
            guard let out else { return HERALD_ERR_INVALID_ARGUMENT }
            out.copyMemory(from: bytes, byteCount: bytes.count)
        }
        return HERALD_OK
    }
}

extension herald_str {
    /// The bytes in place, without a copy (empty when the view is NULL or empty, like `bytes`).
    /// Valid only inside `body`, during the host call that received the view.
    func withBuffer<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        guard let ptr, len > 0 else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return body(UnsafeRawBufferPointer(start: ptr, count: len))
    }
}
