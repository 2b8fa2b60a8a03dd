import CHeraldPlugin
import Foundation
import Synchronization

/// One configured instance of a plugin (an integration). Calls into it are serialised unless the
/// plugin declares `HERALD_CAP_CONCURRENT_CALLS`.
public final class PluginInstance: @unchecked Sendable {
    // @unchecked: `handle` is the plugin's opaque instance, only passed back to its own hooks under
    // `callLock` (or concurrently when the plugin says that is safe); `destroyed` is guarded too.
    public let plugin: LoadedPlugin
    public let name: String
    let context: InstanceContext
    private let api: HostAPITable
    private let handle: UnsafeMutableRawPointer?
    private let callLock = Mutex<Bool>(false)  // true once destroyed
    private let serialised: Bool

    /// Validates `config` against the plugin's schema, then calls `instance_create`.
    public static func create(
        plugin: LoadedPlugin, name: String, config: JSONValue, environment: PluginHostEnvironment
    ) throws(PluginLoadError) -> PluginInstance {
        let violations = plugin.descriptor.configSchema.validate(config)
        if !violations.isEmpty {
            let all = violations.map { "setting \($0.description)" }.joined(separator: "; ")
            throw PluginLoadError(.invalidConfig, path: plugin.path,
                "integration '\(name)' (plugin \(plugin.descriptor.id)): \(all)")
        }
        let context = InstanceContext(pluginID: plugin.descriptor.id, instanceName: name, config: config, environment: environment)
        guard let api = HostAPITable(context: context) else {
            throw PluginLoadError(.createFailed, path: plugin.path, "integration '\(name)': libffi could not build the host API table")
        }
        var handle: UnsafeMutableRawPointer?
        let text = config.jsonText
        let code = text.utf8CString.withUnsafeBufferPointer { buffer in
            plugin.table.instance_create(api.table, herald_str(ptr: buffer.baseAddress, len: buffer.count - 1), &handle)
        }
        guard code == 0 else {
            let reason = context.lastError.withLock { $0 } ?? "no reason given"
            api.release()
            throw PluginLoadError(.createFailed, path: plugin.path,
                "integration '\(name)' (plugin \(plugin.descriptor.id)): instance_create failed (\(code)): \(reason)")
        }
        return PluginInstance(plugin: plugin, name: name, context: context, api: api, handle: handle)
    }

    private init(plugin: LoadedPlugin, name: String, context: InstanceContext, api: HostAPITable, handle: UnsafeMutableRawPointer?) {
        self.plugin = plugin
        self.name = name
        self.context = context
        self.api = api
        self.handle = handle
        self.serialised = !plugin.descriptor.capabilities.contains(.concurrentCalls)
    }

    deinit { destroy() }

    /// Calls `instance_destroy` once and frees the host API table. Later calls fail permanently.
    public func destroy() {
        callLock.withLock { destroyed in
            guard !destroyed else { return }
            destroyed = true
            plugin.table.instance_destroy(handle)
            api.release()
        }
    }

    /// Runs one hook: under the instance lock unless the plugin allows concurrent calls.
    private func call(_ body: () -> Int32) -> Int32 {
        if serialised {
            return callLock.withLock { destroyed in destroyed ? shutdownOutcome : body() }
        }
        if callLock.withLock({ $0 }) { return shutdownOutcome }
        return body()
    }

    // MARK: - Deliveries

    /// Starts a delivery: the plugin's first request, or why it cannot send.
    public func prepare(_ message: PreparedMessage) -> DeliveryStep {
        let exchange = Exchange()
        let outcome = call({
            context.withExchange(exchange) { ex in
                message.withMessage { plugin.table.prepare(handle, $0, ex) }
            }
        })
        return Self.deliveryStep(outcome, exchange, hook: "prepare")
    }

    /// Hands the response to the plugin's last request back to it.
    public func onResponse(_ message: PreparedMessage, _ response: PluginResponse) -> DeliveryStep {
        let exchange = Exchange()
        let outcome = call({
            context.withExchange(exchange) { ex in
                message.withMessage { msg in
                    Self.withResponse(response) { plugin.table.on_response(handle, msg, $0, ex) }
                }
            }
        })
        return Self.deliveryStep(outcome, exchange, hook: "on_response")
    }

    static func deliveryStep(_ outcome: Int32, _ exchange: Exchange, hook: String) -> DeliveryStep {
        let state = exchange.state.withLock { $0 }
        if outcome == shutdownOutcome { return .failed(reason: "the integration was shut down") }
        switch UInt32(bitPattern: outcome) {
        case HERALD_OUTCOME_REQUEST.rawValue:
            if let request = state.request { return .request(request) }
            return .failed(reason: "plugin bug: \(hook) returned REQUEST but " + (state.requestProblem.map { "its request was refused: \($0)" } ?? "set no request"))
        case HERALD_OUTCOME_DELIVERED.rawValue:
            return .delivered(providerID: state.providerID.flatMap { $0.isEmpty ? nil : $0 })
        case HERALD_OUTCOME_RETRY.rawValue:
            return .retry(afterMilliseconds: state.retryAfter.flatMap { $0 == 0 ? nil : $0 }, reason: state.reason ?? "the plugin asked to retry")
        case HERALD_OUTCOME_FAILED.rawValue:
            return .failed(reason: state.reason ?? "the plugin reported a permanent failure without a reason")
        default:
            return .failed(reason: "plugin bug: \(hook) returned unknown outcome \(outcome)")
        }
    }

    // MARK: - Callbacks and actions

    /// Verifies an inbound callback. Plugins without `parse_callback` refuse every request.
    public func parseCallback(_ request: InboundRequest) -> CallbackResult {
        guard let hook = plugin.table.parse_callback else {
            return CallbackResult(authentic: false, actions: [], reply: nil, reason: "the \(plugin.descriptor.id) plugin takes no callbacks")
        }
        let exchange = Exchange()
        let outcome = call({
            context.withExchange(exchange) { ex in
                Self.withInbound(request) { hook(handle, $0, ex) }
            }
        })
        let state = exchange.state.withLock { $0 }
        let authentic = UInt32(bitPattern: outcome) == HERALD_OUTCOME_DELIVERED.rawValue
        return CallbackResult(authentic: authentic, actions: authentic ? state.actions : [], reply: state.reply,
                              reason: authentic ? nil : (state.reason ?? "the plugin rejected the callback"))
    }

    /// Runs one step of an admin action (`response` is nil on the first call).
    public func invokeAction(_ action: String, input: String, response: PluginResponse?) -> ActionStep {
        guard let hook = plugin.table.invoke_action else { return .failed(reason: "the \(plugin.descriptor.id) plugin has no admin actions") }
        let exchange = Exchange()
        let outcome = call({
            context.withExchange(exchange) { ex in
                action.withHeraldStr { name in
                    input.withHeraldStr { json in
                        if let response {
                            return Self.withResponse(response) { hook(handle, name, json, $0, ex) }
                        }
                        return hook(handle, name, json, nil, ex)
                    }
                }
            }
        })
        switch Self.deliveryStep(outcome, exchange, hook: "invoke_action") {
        case .request(let request): return .request(request)
        case .delivered: return .done(output: exchange.state.withLock { $0.output } ?? "null")
        case .retry(_, let reason), .failed(let reason): return .failed(reason: reason)
        }
    }

    /// The message the last failing hook gave with `set_error`, if any.
    public var lastError: String? { context.lastError.withLock { $0 } }

    // MARK: - Marshalling

    static func withResponse<T>(_ response: PluginResponse, _ body: (UnsafePointer<herald_response>) -> T) -> T {
        let arena = CArena()
        var raw = herald_response()
        raw.struct_size = UInt32(MemoryLayout<herald_response>.size)
        raw.status = response.status
        raw.headers = arena.pairs(response.headers.map { ($0.name, $0.value) })
        raw.header_count = response.headers.count
        raw.body = arena.bytes(response.body)
        raw.tag = response.tag
        raw.body_truncated = response.bodyTruncated ? 1 : 0
        return withExtendedLifetime(arena) { withUnsafePointer(to: raw, body) }
    }

    static func withInbound<T>(_ request: InboundRequest, _ body: (UnsafePointer<herald_inbound>) -> T) -> T {
        let arena = CArena()
        var raw = herald_inbound()
        raw.struct_size = UInt32(MemoryLayout<herald_inbound>.size)
        raw.method = arena.str(request.method)
        raw.path = arena.str(request.path)
        raw.query = arena.str(request.query)
        raw.headers = arena.pairs(request.headers.map { ($0.name, $0.value) })
        raw.header_count = request.headers.count
        raw.body = arena.bytes(request.body)
        raw.remote_address = arena.str(request.remoteAddress)
        return withExtendedLifetime(arena) { withUnsafePointer(to: raw, body) }
    }
}

/// What a hook "returns" when the instance is already destroyed.
private let shutdownOutcome = Int32.min

/// A message marshalled once into C memory, reused by `prepare` and every `on_response`.
public final class PreparedMessage: @unchecked Sendable {
    // @unchecked: immutable after init; the arena owns every pointer in `raw`.
    public let message: OutgoingMessage
    private let arena = CArena()
    private var raw = herald_message()

    public init(_ message: OutgoingMessage) {
        self.message = message
        raw.struct_size = UInt32(MemoryLayout<herald_message>.size)
        raw.event = message.event.rawValue
        raw.idempotency_key = arena.str(message.idempotencyKey)
        raw.incident_id = arena.str(message.incidentID)
        raw.incident_number = message.incidentNumber
        raw.severity = message.severity.rawValue
        raw.status = message.status.rawValue
        raw.title = arena.str(message.title)
        raw.body = arena.str(message.body)
        raw.labels = arena.pairs(message.labels)
        raw.label_count = message.labels.count
        raw.links = arena.array(message.links.map { link in
            var l = herald_link()
            l.struct_size = UInt32(MemoryLayout<herald_link>.size)
            l.kind = link.kind.rawValue
            l.label = arena.str(link.label)
            l.url = arena.str(link.url)
            l.callback_token = arena.str(link.callbackToken)
            return l
        })
        raw.link_count = message.links.count
        raw.mentions = arena.array(message.mentions.map { m in
            var raw = herald_mention()
            raw.struct_size = UInt32(MemoryLayout<herald_mention>.size)
            raw.display_name = arena.str(m.displayName)
            raw.id = arena.str(m.id)
            raw.id_kind = arena.str(m.idKind)
            return raw
        })
        raw.mention_count = message.mentions.count
        raw.recipient = arena.str(message.recipient)
        raw.started_at_ms = message.startedAtMs
        raw.acknowledged_at_ms = message.acknowledgedAtMs
        raw.closed_at_ms = message.closedAtMs
        raw.alert_count = message.alertCount
        raw.extra_json = arena.str(message.extraJSON)
    }

    func withMessage<T>(_ body: (UnsafePointer<herald_message>) -> T) -> T {
        withUnsafePointer(to: raw, body)
    }
}

/// Owns C copies of strings and arrays for as long as a hook may look at them.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { blocks.forEach { $0.deallocate() } }

    func bytes(_ bytes: some Collection<UInt8>) -> herald_str {
        guard !bytes.isEmpty else { return herald_str(ptr: nil, len: 0) }
        let block = UnsafeMutableRawPointer.allocate(byteCount: bytes.count + 1, alignment: 1)
        let buffer = UnsafeMutableRawBufferPointer(start: block, count: bytes.count + 1)
        _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
        buffer[bytes.count] = 0  // NUL after the view, for C convenience (not part of the view)
        blocks.append(block)
        return herald_str(ptr: block.assumingMemoryBound(to: CChar.self), len: bytes.count)
    }

    func str(_ s: String) -> herald_str { bytes(s.utf8) }

    func array<T>(_ items: [T]) -> UnsafePointer<T>? {
        guard !items.isEmpty else { return nil }
        let block = UnsafeMutablePointer<T>.allocate(capacity: items.count)
        block.initialize(from: items, count: items.count)
        blocks.append(UnsafeMutableRawPointer(block))
        return UnsafePointer(block)
    }

    func pairs(_ items: [(String, String)]) -> UnsafePointer<herald_pair>? {
        array(items.map { herald_pair(name: str($0.0), value: str($0.1)) })
    }
}

extension String {
    func withHeraldStr<T>(_ body: (herald_str) -> T) -> T {
        var copy = self
        return copy.withUTF8 { buffer in
            body(herald_str(ptr: UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self), len: buffer.count))
        }
    }
}
