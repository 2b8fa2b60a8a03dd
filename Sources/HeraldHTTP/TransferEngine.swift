internal import CCurlShim
import Foundation
import Synchronization

/// Performs HTTP(S) and SMTP(S) transfers on one libcurl multi handle driven by one dedicated thread.
///
/// Connections (and HTTP/2 multiplexed streams) are reused across transfers to the same host;
/// easy handles are pooled. Egress is checked by name before a transfer is queued and by address
/// when a socket is opened or a cached connection is reused.
///
/// `perform` may be called from any task. Cancelling the calling task abandons the transfer
/// (`.cancelled`). `shutdown()` fails pending and later transfers with `.shutdown`; it is also
/// called when the engine is deinitialized.
public final class TransferEngine: Sendable {
    private let shared: EngineShared

    /// Creates the engine and starts its thread.
    /// - Parameters:
    ///   - maxTotalConnections: open connections across all hosts (CURLMOPT_MAX_TOTAL_CONNECTIONS);
    ///     transfers beyond it wait in libcurl's queue (their timeout keeps running).
    ///   - maxConnectionsPerHost: open connections per host (CURLMOPT_MAX_HOST_CONNECTIONS).
    public init(maxTotalConnections: Int = 64, maxConnectionsPerHost: Int = 8) {
        ensureCurlInitialized()
        guard let multi = curl_multi_init() else {
            // Only fails when out of memory; there is no engine to run without it.
            fatalError("curl_multi_init failed")
        }
        _ = herald_curl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max(1, maxTotalConnections))
        _ = herald_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max(1, maxConnectionsPerHost))
        // Size the idle-connection cache so every allowed connection can stay open for reuse.
        _ = herald_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(1, maxTotalConnections))
        _ = herald_curl_multi_setopt_long(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX)
        let shared = EngineShared(multi: MultiHandle(raw: multi))
        self.shared = shared
        let thread = Thread {
            EngineLoop(shared: shared).run()
        }
        thread.name = "herald-http"
        thread.start()
    }

    deinit {
        shutdown()
    }

    /// Performs one request and returns the final response. Non-2xx HTTP statuses are responses.
    ///
    /// Throws `EngineError` (typed): `.invalidRequest`, `.protocolNotAllowed` and `.egressDenied`
    /// before anything is sent; transport failures (`isTransient` tells which to retry);
    /// `.cancelled` when the calling task is cancelled; `.shutdown` after `shutdown()`.
    public func perform(_ request: TransferRequest, options: TransferOptions) async throws(EngineError) -> TransferResponse {
        let context = try TransferContext(request: request, options: options)
        let shared = self.shared
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                shared.submit(context, continuation)
            }
        } onCancel: {
            shared.cancel(context)
        }
        return try result.get()
    }

    /// Stops the engine thread. Queued and in-flight transfers fail with `.shutdown`, and so
    /// does every later `perform`. Returns at once; idempotent.
    public func shutdown() {
        shared.shutdown()
    }
}

/// libcurl's multi handle. Only `curl_multi_wakeup` is called off the engine thread, which
/// libcurl documents as safe; everything else happens on the engine thread.
struct MultiHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
}

/// State shared between callers and the engine thread: the submission queue.
final class EngineShared: Sendable {
    struct Queue {
        var pending: [TransferContext] = []
        var cancelRequests: [TransferContext] = []
        var shuttingDown = false
    }

    let multi: MultiHandle
    /// Guards `Queue` and every context's `phase` and `continuation`. `curl_multi_wakeup` is only
    /// called while holding it with `shuttingDown` false, and the loop only cleans up the multi
    /// handle after seeing `shuttingDown` under it, so no wakeup can hit a freed handle.
    let queue = Mutex(Queue())

    init(multi: MultiHandle) {
        self.multi = multi
    }

    typealias Continuation = CheckedContinuation<Result<TransferResponse, EngineError>, Never>

    func submit(_ context: TransferContext, _ continuation: Continuation) {
        let refusal: EngineError? = queue.withLock { queue in
            if context.phase == .cancelledEarly {
                context.phase = .done
                return Self.cancelledError(context)
            }
            if queue.shuttingDown {
                context.phase = .done
                return Self.shutdownError(context)
            }
            context.continuation = continuation
            context.phase = .queued
            queue.pending.append(context)
            curl_multi_wakeup(multi.raw)
            return nil
        }
        if let refusal { continuation.resume(returning: .failure(refusal)) }
    }

    func cancel(_ context: TransferContext) {
        let continuation: Continuation? = queue.withLock { queue in
            switch context.phase {
            case .new:
                context.phase = .cancelledEarly  // submit() will see it
                return nil
            case .queued:
                queue.pending.removeAll { $0 === context }
                context.phase = .done
                defer { context.continuation = nil }
                return context.continuation
            case .running:
                if !queue.shuttingDown {
                    queue.cancelRequests.append(context)
                    curl_multi_wakeup(multi.raw)
                }
                return nil
            case .done, .cancelledEarly:
                return nil
            }
        }
        continuation?.resume(returning: .failure(Self.cancelledError(context)))
    }

    func shutdown() {
        queue.withLock { queue in
            guard !queue.shuttingDown else { return }
            queue.shuttingDown = true
            curl_multi_wakeup(multi.raw)
        }
    }

    /// Marks a running context done and hands back its continuation (engine thread).
    func finish(_ context: TransferContext) -> Continuation? {
        queue.withLock { _ in
            guard context.phase == .running else { return nil }
            context.phase = .done
            defer { context.continuation = nil }
            return context.continuation
        }
    }

    static func cancelledError(_ context: TransferContext) -> EngineError {
        EngineError(code: .cancelled, message: "the request to host '\(context.target.host)' was cancelled by its caller.")
    }

    static func shutdownError(_ context: TransferContext) -> EngineError {
        EngineError(code: .shutdown, message: "the request to host '\(context.target.host)' was not completed because the HTTP engine shut down.")
    }
}

/// The engine thread's state. Confined to that thread: never shared.
final class EngineLoop {
    private let shared: EngineShared
    private let multi: UnsafeMutableRawPointer
    /// Transfers in the multi handle, by easy handle. Holds the strong reference that keeps each
    /// context (and the C buffers curl points into) alive until the handle has been removed.
    private var active: [UnsafeMutableRawPointer: TransferContext] = [:]
    /// Reset easy handles kept for reuse; each keeps its TLS session cache and buffers.
    private var pool: [UnsafeMutableRawPointer] = []
    private let poolLimit = 16

    init(shared: EngineShared) {
        self.shared = shared
        self.multi = shared.multi.raw
    }

    func run() {
        while true {
            let (incoming, cancels, stopping) = shared.queue.withLock { queue in
                let incoming = queue.pending
                queue.pending.removeAll()
                for context in incoming { context.phase = .running }
                let cancels = queue.cancelRequests
                queue.cancelRequests.removeAll()
                return (incoming, cancels, queue.shuttingDown)
            }
            if stopping {
                stop(also: incoming)
                return
            }
            for context in cancels {
                guard let handle = context.handle, active[handle] === context else { continue }
                complete(handle, context, .failure(EngineShared.cancelledError(context)))
            }
            for context in incoming { start(context) }

            var running: Int32 = 0
            _ = curl_multi_perform(multi, &running)
            collectFinished()
            // Sleeps until socket activity, libcurl's next timer, or curl_multi_wakeup (new work,
            // cancellation, shutdown). The 10 s cap is only a backstop.
            _ = curl_multi_poll(multi, nil, 0, 10_000, nil)
        }
    }

    private func start(_ context: TransferContext) {
        guard let handle = pool.popLast() ?? curl_easy_init() else {
            resume(context, .failure(EngineError(code: .other, message: "could not allocate a transfer for host '\(context.target.host)'.")))
            return
        }
        context.handle = handle
        let code = configure(handle, for: context)
        guard code == CURLE_OK else {
            let error = EngineError(code: .other, message: "could not configure the transfer for host '\(context.target.host)': libcurl option error \(code.rawValue).")
            recycle(handle)
            resume(context, .failure(error))
            return
        }
        active[handle] = context
        if curl_multi_add_handle(multi, handle) != CURLM_OK {
            active[handle] = nil
            recycle(handle)
            resume(context, .failure(EngineError(code: .other, message: "could not start the transfer for host '\(context.target.host)'.")))
        }
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            // Read everything from the message first: it is invalid once the handle is removed.
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                  let context = active[handle]
            else { continue }
            let result = context.outcome(message.pointee.data.result, handle: handle)
            complete(handle, context, result)
        }
    }

    private func complete(_ handle: UnsafeMutableRawPointer, _ context: TransferContext, _ result: Result<TransferResponse, EngineError>) {
        _ = curl_multi_remove_handle(multi, handle)
        recycle(handle)
        context.handle = nil
        active[handle] = nil  // drops the loop's reference; curl no longer points into the context
        resume(context, result)
    }

    private func resume(_ context: TransferContext, _ result: Result<TransferResponse, EngineError>) {
        shared.finish(context)?.resume(returning: result)
    }

    private func recycle(_ handle: UnsafeMutableRawPointer) {
        // Reset clears every option, so no pointer into a finished context survives in the handle.
        curl_easy_reset(handle)
        if pool.count < poolLimit { pool.append(handle) } else { curl_easy_cleanup(handle) }
    }

    private func stop(also incoming: [TransferContext]) {
        for context in incoming { resume(context, .failure(EngineShared.shutdownError(context))) }
        for (handle, context) in active {
            _ = curl_multi_remove_handle(multi, handle)
            curl_easy_cleanup(handle)
            context.handle = nil
            resume(context, .failure(EngineShared.shutdownError(context)))
        }
        active.removeAll()
        for handle in pool { curl_easy_cleanup(handle) }
        pool.removeAll()
        // No caller touches the multi handle any more: they all saw `shuttingDown` under the lock.
        _ = curl_multi_cleanup(multi)
    }

    // MARK: easy handle setup

    private func configure(_ handle: UnsafeMutableRawPointer, for context: TransferContext) -> CURLcode {
        let options = context.options
        let me = Unmanaged.passUnretained(context).toOpaque()
        let scheme = context.target.scheme
        var steps: [() -> CURLcode] = [
            { herald_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1) },
            { herald_curl_setopt_str(handle, CURLOPT_URL, context.url) },
            // Only the request's own scheme: no protocol switch through the URL or a redirect.
            { herald_curl_setopt_str(handle, CURLOPT_PROTOCOLS_STR, scheme) },
            { herald_curl_setopt_str(handle, CURLOPT_REDIR_PROTOCOLS_STR, scheme) },
            { herald_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0) },
            { herald_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, context.timeoutMilliseconds) },
            { herald_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(context.timeoutMilliseconds, 10_000)) },
            { herald_curl_setopt_ptr(handle, CURLOPT_ERRORBUFFER, context.errorBuffer) },
            { herald_curl_setopt_long(handle, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2) },
            { herald_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1) },
            // An empty proxy disables proxy environment variables: egress is what the config says.
            { herald_curl_setopt_str(handle, CURLOPT_PROXY, options.proxy ?? "") },
            {
                herald_curl_set_opensocket_function(handle, { clientp, _, address in
                    let context = Unmanaged<TransferContext>.fromOpaque(clientp!).takeUnretainedValue()
                    guard let address else { return CURL_SOCKET_BAD }
                    var raw = [UInt8](repeating: 0, count: 16)
                    let length = herald_curl_sockaddr_ip(address, &raw)
                    if length > 0, !context.addressAllowed(Array(raw.prefix(Int(length)))) { return CURL_SOCKET_BAD }
                    return herald_curl_open_socket(address)
                }, me)
            },
            {
                // The opensocket check does not run for a reused connection; this does, just before
                // the request is sent, with the address of the connection (or proxy) actually used.
                herald_curl_set_prereq_function(handle, { clientp, primaryIP, _, _, _ in
                    let context = Unmanaged<TransferContext>.fromOpaque(clientp!).takeUnretainedValue()
                    guard let primaryIP, let bytes = HostName.ipBytes(String(cString: primaryIP)) else {
                        return CURL_PREREQFUNC_OK
                    }
                    return context.addressAllowed(bytes) ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT
                }, me)
            },
            {
                herald_curl_set_header_function(handle, { data, size, count, userdata in
                    let context = Unmanaged<TransferContext>.fromOpaque(userdata!).takeUnretainedValue()
                    context.receiveHeaderLine(UnsafeRawBufferPointer(start: data, count: size * count))
                    return size * count
                }, me)
            },
        ]
        if let caFile = options.caFile {
            steps.append { herald_curl_setopt_str(handle, CURLOPT_CAINFO, caFile) }
        }
        if let username = options.username {
            steps.append { herald_curl_setopt_str(handle, CURLOPT_USERNAME, username) }
        }
        if let password = options.password {
            steps.append { herald_curl_setopt_str(handle, CURLOPT_PASSWORD, password) }
        }
        if let list = context.resolveList {
            steps.append { herald_curl_setopt_slist(handle, CURLOPT_RESOLVE, list) }
        }

        switch context.kind {
        case .http(let method):
            steps += [
                { herald_curl_setopt_long(handle, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS) },
                // Prefer a new stream on an HTTP/2 connection being set up over opening another one.
                { herald_curl_setopt_long(handle, CURLOPT_PIPEWAIT, 1) },
                { herald_curl_setopt_str(handle, CURLOPT_ACCEPT_ENCODING, "") },
                { herald_curl_setopt_str(handle, CURLOPT_USERAGENT, "Herald (libcurl)") },
                { herald_curl_setopt_long(handle, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1) },
                { herald_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, context.headerList) },
                {
                    herald_curl_set_write_function(handle, { data, size, count, userdata in
                        let context = Unmanaged<TransferContext>.fromOpaque(userdata!).takeUnretainedValue()
                        return context.receiveBody(UnsafeRawBufferPointer(start: data, count: size * count))
                    }, me)
                },
            ]
            let upper = method.uppercased()
            let sendsBody = context.payloadCount > 0 || ["POST", "PUT", "PATCH"].contains(upper)
            if upper == "HEAD" && context.payloadCount == 0 {
                steps.append { herald_curl_setopt_long(handle, CURLOPT_NOBODY, 1) }
            } else if upper == "GET" && !sendsBody {
                steps.append { herald_curl_setopt_long(handle, CURLOPT_HTTPGET, 1) }
            } else if method != "POST" || !sendsBody {
                steps.append { herald_curl_setopt_str(handle, CURLOPT_CUSTOMREQUEST, method) }
            }
            if sendsBody {
                // POSTFIELDS is not copied: the context's payload buffer outlives the transfer.
                steps += [
                    { herald_curl_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(context.payloadCount)) },
                    { herald_curl_setopt_ptr(handle, CURLOPT_POSTFIELDS, context.payload.baseAddress) },
                ]
            }
        case .smtp:
            let tls: curl_usessl = scheme == "smtps" || options.requireTLSForSMTP ? CURLUSESSL_ALL : CURLUSESSL_TRY
            steps += [
                { herald_curl_setopt_str(handle, CURLOPT_MAIL_FROM, context.mailFrom ?? "") },
                { herald_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, context.recipientList) },
                { herald_curl_setopt_long(handle, CURLOPT_USE_SSL, Int(tls.rawValue)) },
                { herald_curl_setopt_long(handle, CURLOPT_UPLOAD, 1) },
                { herald_curl_setopt_off_t(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(context.payloadCount)) },
                {
                    herald_curl_set_read_function(handle, { buffer, size, count, userdata in
                        let context = Unmanaged<TransferContext>.fromOpaque(userdata!).takeUnretainedValue()
                        return context.readPayload(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
                    }, me)
                },
            ]
        }
        for step in steps {
            let code = step()
            if code != CURLE_OK { return code }
        }
        return CURLE_OK
    }
}

/// Runs `curl_global_init` exactly once, before the first handle is created.
private let curlGlobalInit: Bool = herald_curl_global_init() == CURLE_OK

func ensureCurlInitialized() {
    _ = curlGlobalInit
}
