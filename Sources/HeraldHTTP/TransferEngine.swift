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
    ///   - maxConnectionsPerHost: open connections per host (CURLMOPT_MAX_HOST_CONNECTIONS). HTTP/1.1
    ///     sends one request per connection at a time, so this caps the requests in flight to one
    ///     host; by default it equals the total, so a busy HTTP/1.1 receiver can use every allowed
    ///     connection instead of queueing in libcurl (HTTP/2 hosts multiplex on few connections).
    public init(maxTotalConnections: Int = 64, maxConnectionsPerHost: Int = 64) {
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
        let completion = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                shared.submit(context, continuation)
            }
        } onCancel: {
            shared.cancel(context)
        }
        switch completion {
        case .failed(let error): throw error
        // The engine is done with the context: the response is built here, on the caller's task,
        // not on the engine thread.
        case .transferred: return try context.outcome().get()
        }
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
        /// True while the engine thread is (about to be) asleep in curl_multi_poll. Only then does
        /// new work need a curl_multi_wakeup; an awake loop looks at the queue before it sleeps.
        var sleeping = false

        /// Wakes the engine thread if it sleeps (lock held, not shutting down).
        mutating func wake(_ multi: MultiHandle) {
            guard sleeping else { return }
            sleeping = false
            curl_multi_wakeup(multi.raw)
        }
    }

    let multi: MultiHandle
    /// Guards `Queue` and every context's `phase` and `continuation`. `curl_multi_wakeup` is only
    /// called while holding it with `shuttingDown` false, and the loop only cleans up the multi
    /// handle after seeing `shuttingDown` under it, so no wakeup can hit a freed handle.
    /// The loop sets `sleeping` under it only after finding the queue empty, so work queued after
    /// that check always wakes the loop, and work queued before it is seen by the check.
    let queue = Mutex(Queue())

    init(multi: MultiHandle) {
        self.multi = multi
    }

    /// How a transfer left the engine: libcurl finished it (its result is in the context, for the
    /// caller to turn into a response or error), or the engine failed it without a result.
    enum Completion: Sendable {
        case transferred
        case failed(EngineError)
    }

    typealias Continuation = CheckedContinuation<Completion, Never>

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
            queue.wake(multi)
            return nil
        }
        if let refusal { continuation.resume(returning: .failed(refusal)) }
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
                    queue.wake(multi)
                }
                return nil
            case .done, .cancelledEarly:
                return nil
            }
        }
        continuation?.resume(returning: .failed(Self.cancelledError(context)))
    }

    func shutdown() {
        queue.withLock { queue in
            guard !queue.shuttingDown else { return }
            queue.shuttingDown = true
            curl_multi_wakeup(multi.raw)
        }
    }

    /// Marks running contexts done and hands back their continuations, under one lock (engine thread).
    func finish(_ finished: inout [(TransferContext, Completion)], into resumes: inout [(Continuation, Completion)]) {
        queue.withLock { _ in
            for (context, completion) in finished where context.phase == .running {
                context.phase = .done
                if let continuation = context.continuation { resumes.append((continuation, completion)) }
                context.continuation = nil
            }
        }
        finished.removeAll(keepingCapacity: true)
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
    private let poolLimit = 64
    /// Contexts that left the engine during this loop turn; their continuations are resumed
    /// together, with one lock round trip, at the end of the turn.
    private var finished: [(TransferContext, EngineShared.Completion)] = []
    private var resumes: [(EngineShared.Continuation, EngineShared.Completion)] = []

    init(shared: EngineShared) {
        self.shared = shared
        self.multi = shared.multi.raw
    }

    func run() {
        var incoming: [TransferContext] = []
        var cancels: [TransferContext] = []
        while true {
            let stopping = shared.queue.withLock { queue in
                queue.sleeping = false
                swap(&incoming, &queue.pending)
                for context in incoming { context.phase = .running }
                swap(&cancels, &queue.cancelRequests)
                return queue.shuttingDown
            }
            if stopping {
                stop(also: incoming)
                return
            }
            for context in cancels {
                guard let handle = context.handle, active[handle] === context else { continue }
                complete(handle, context, .failed(EngineShared.cancelledError(context)))
            }
            cancels.removeAll(keepingCapacity: true)
            for context in incoming { start(context) }
            incoming.removeAll(keepingCapacity: true)

            var running: Int32 = 0
            _ = curl_multi_perform(multi, &running)
            collectFinished()
            resumeFinished()
            // Sleep only when nothing was queued meanwhile: from here on, submissions wake the loop.
            let idle = shared.queue.withLock { queue in
                guard queue.pending.isEmpty, queue.cancelRequests.isEmpty, !queue.shuttingDown else { return false }
                queue.sleeping = true
                return true
            }
            // Sleeps until socket activity, libcurl's next timer, or curl_multi_wakeup (new work,
            // cancellation, shutdown). The 10 s cap is only a backstop.
            if idle { _ = curl_multi_poll(multi, nil, 0, 10_000, nil) }
        }
    }

    private func start(_ context: TransferContext) {
        guard let handle = pool.popLast() ?? curl_easy_init() else {
            finished.append((context, .failed(EngineError(code: .other, message: "could not allocate a transfer for host '\(context.target.host)'."))))
            return
        }
        context.handle = handle
        let code = configure(handle, for: context)
        guard code == CURLE_OK else {
            let error = EngineError(code: .other, message: "could not configure the transfer for host '\(context.target.host)': libcurl option error \(code.rawValue).")
            context.handle = nil
            recycle(handle)
            finished.append((context, .failed(error)))
            return
        }
        active[handle] = context
        if curl_multi_add_handle(multi, handle) != CURLM_OK {
            active[handle] = nil
            context.handle = nil
            recycle(handle)
            finished.append((context, .failed(EngineError(code: .other, message: "could not start the transfer for host '\(context.target.host)'."))))
        }
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            // Read everything from the message first: it is invalid once the handle is removed.
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                  let context = active[handle]
            else { continue }
            context.recordResult(message.pointee.data.result, handle: handle)
            complete(handle, context, .transferred)
        }
    }

    private func complete(_ handle: UnsafeMutableRawPointer, _ context: TransferContext, _ completion: EngineShared.Completion) {
        _ = curl_multi_remove_handle(multi, handle)
        recycle(handle)
        context.handle = nil
        active[handle] = nil  // curl no longer points into the context; `finished` keeps it alive
        finished.append((context, completion))
    }

    /// Resumes the continuations of every context that finished this turn. After this the loop
    /// holds no reference to them and never touches them again.
    private func resumeFinished() {
        guard !finished.isEmpty else { return }
        shared.finish(&finished, into: &resumes)
        for (continuation, completion) in resumes { continuation.resume(returning: completion) }
        resumes.removeAll(keepingCapacity: true)
    }

    private func recycle(_ handle: UnsafeMutableRawPointer) {
        // Reset clears every option, so no pointer into a finished context survives in the handle.
        curl_easy_reset(handle)
        if pool.count < poolLimit { pool.append(handle) } else { curl_easy_cleanup(handle) }
    }

    private func stop(also incoming: [TransferContext]) {
        for context in incoming { finished.append((context, .failed(EngineShared.shutdownError(context)))) }
        for (handle, context) in active {
            _ = curl_multi_remove_handle(multi, handle)
            curl_easy_cleanup(handle)
            context.handle = nil
            finished.append((context, .failed(EngineShared.shutdownError(context))))
        }
        active.removeAll()
        resumeFinished()
        for handle in pool { curl_easy_cleanup(handle) }
        pool.removeAll()
        // No caller touches the multi handle any more: they all saw `shuttingDown` under the lock.
        _ = curl_multi_cleanup(multi)
    }

    // MARK: easy handle setup

    /// Sets every option of one transfer, stopping at the first failure. Plain calls, no
    /// allocations: this runs on the engine thread for every request.
    private func configure(_ handle: UnsafeMutableRawPointer, for context: TransferContext) -> CURLcode {
        let options = context.options
        let me = Unmanaged.passUnretained(context).toOpaque()
        let scheme = context.target.scheme
        var code = CURLE_OK
        @inline(__always) func set(_ result: @autoclosure () -> CURLcode) {
            if code == CURLE_OK { code = result() }
        }
        set(herald_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        set(herald_curl_setopt_str(handle, CURLOPT_URL, context.url))
        // Only the request's own scheme: no protocol switch through the URL or a redirect.
        set(herald_curl_setopt_str(handle, CURLOPT_PROTOCOLS_STR, scheme))
        set(herald_curl_setopt_str(handle, CURLOPT_REDIR_PROTOCOLS_STR, scheme))
        set(herald_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        set(herald_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, context.timeoutMilliseconds))
        set(herald_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(context.timeoutMilliseconds, 10_000)))
        set(herald_curl_setopt_ptr(handle, CURLOPT_ERRORBUFFER, context.errorBuffer))
        set(herald_curl_setopt_long(handle, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2))
        set(herald_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1))
        // An empty proxy disables proxy environment variables: egress is what the config says.
        set(herald_curl_setopt_str(handle, CURLOPT_PROXY, options.proxy ?? ""))
        set(herald_curl_set_opensocket_function(handle, { clientp, _, address in
            let context = Unmanaged<TransferContext>.fromOpaque(clientp!).takeUnretainedValue()
            guard let address else { return CURL_SOCKET_BAD }
            var raw = [UInt8](repeating: 0, count: 16)
            let length = herald_curl_sockaddr_ip(address, &raw)
            if length > 0, !context.addressAllowed(Array(raw.prefix(Int(length)))) { return CURL_SOCKET_BAD }
            return herald_curl_open_socket(address)
        }, me))
        // The opensocket check does not run for a reused connection; this does, just before
        // the request is sent, with the address of the connection (or proxy) actually used.
        set(herald_curl_set_prereq_function(handle, { clientp, primaryIP, _, _, _ in
            let context = Unmanaged<TransferContext>.fromOpaque(clientp!).takeUnretainedValue()
            guard context.checkAddresses else { return CURL_PREREQFUNC_OK }  // addressAllowed would allow any
            guard let primaryIP, let bytes = HostName.ipBytes(String(cString: primaryIP)) else {
                return CURL_PREREQFUNC_OK
            }
            return context.addressAllowed(bytes) ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT
        }, me))
        set(herald_curl_set_header_function(handle, { data, size, count, userdata in
            let context = Unmanaged<TransferContext>.fromOpaque(userdata!).takeUnretainedValue()
            context.receiveHeaderLine(UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }, me))
        if let caFile = options.caFile { set(herald_curl_setopt_str(handle, CURLOPT_CAINFO, caFile)) }
        if let username = options.username { set(herald_curl_setopt_str(handle, CURLOPT_USERNAME, username)) }
        if let password = options.password { set(herald_curl_setopt_str(handle, CURLOPT_PASSWORD, password)) }
        if let list = context.resolveList { set(herald_curl_setopt_slist(handle, CURLOPT_RESOLVE, list)) }

        switch context.kind {
        case .http:
            set(herald_curl_setopt_long(handle, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS))
            // Prefer a new stream on an HTTP/2 connection being set up over opening another one.
            // Only for https: cleartext http is HTTP/1.1 here (no multiplexing), and waiting would
            // queue every request to a host behind one that hangs, until their timeouts run out.
            if scheme == "https" { set(herald_curl_setopt_long(handle, CURLOPT_PIPEWAIT, 1)) }
            set(herald_curl_setopt_str(handle, CURLOPT_ACCEPT_ENCODING, ""))
            set(herald_curl_setopt_str(handle, CURLOPT_USERAGENT, "Herald (libcurl)"))
            set(herald_curl_setopt_long(handle, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1))
            set(herald_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, context.headerList))
            set(herald_curl_set_write_function(handle, { data, size, count, userdata in
                let context = Unmanaged<TransferContext>.fromOpaque(userdata!).takeUnretainedValue()
                return context.receiveBody(UnsafeRawBufferPointer(start: data, count: size * count))
            }, me))
            switch context.httpMethodSetup {
            case .nobody: set(herald_curl_setopt_long(handle, CURLOPT_NOBODY, 1))
            case .get: set(herald_curl_setopt_long(handle, CURLOPT_HTTPGET, 1))
            case .custom(let method): set(herald_curl_setopt_str(handle, CURLOPT_CUSTOMREQUEST, method))
            case .post: break
            }
            if context.sendsBody {
                // POSTFIELDS is not copied: the context's payload buffer outlives the transfer.
                set(herald_curl_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(context.payloadCount)))
                set(herald_curl_setopt_ptr(handle, CURLOPT_POSTFIELDS, context.payload.baseAddress))
            }
        case .smtp:
            let tls: curl_usessl = scheme == "smtps" || options.requireTLSForSMTP ? CURLUSESSL_ALL : CURLUSESSL_TRY
            set(herald_curl_setopt_str(handle, CURLOPT_MAIL_FROM, context.mailFrom ?? ""))
            set(herald_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, context.recipientList))
            set(herald_curl_setopt_long(handle, CURLOPT_USE_SSL, Int(tls.rawValue)))
            if let loginOptions = options.loginOptions { set(herald_curl_setopt_str(handle, CURLOPT_LOGIN_OPTIONS, loginOptions)) }
            // Refused recipients do not stop the others; each one's reply is reported.
            set(herald_curl_smtp_allow_rcpt_fails(handle))
            set(herald_curl_set_debug_function(handle, { _, type, data, size, userdata in
                guard type == CURLINFO_HEADER_OUT, let data else { return 0 }
                let context = Unmanaged<TransferContext>.fromOpaque(userdata!).takeUnretainedValue()
                context.sentCommand(UnsafeRawBufferPointer(start: data, count: size))
                return 0
            }, me))
            set(herald_curl_setopt_long(handle, CURLOPT_UPLOAD, 1))
            set(herald_curl_setopt_off_t(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(context.payloadCount)))
            set(herald_curl_set_read_function(handle, { buffer, size, count, userdata in
                let context = Unmanaged<TransferContext>.fromOpaque(userdata!).takeUnretainedValue()
                return context.readPayload(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
            }, me))
        }
        return code
    }
}

/// Runs `curl_global_init` exactly once, before the first handle is created.
private let curlGlobalInit: Bool = herald_curl_global_init() == CURLE_OK

func ensureCurlInitialized() {
    _ = curlGlobalInit
}
