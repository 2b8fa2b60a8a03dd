import Foundation
import HeraldHTTP
import HeraldPluginHost
import Logging
import Metrics

/// How one delivery ended.
public enum DeliveryOutcome: Sendable, Equatable, Error {
    case delivered(providerID: String?)
    /// Try again later; `afterMilliseconds` is the provider's hint when it gave one.
    case retry(afterMilliseconds: UInt64?, reason: String)
    case failed(reason: String)
}

/// One request made during a delivery, for the delivery record. URLs keep only scheme and host:
/// webhook paths and queries often carry the credential.
public struct ExchangeRecord: Sendable {
    public var target: String
    public var status: Int?
    public var seconds: Double
    public var error: String?
}

public struct DeliveryResult: Sendable {
    public var outcome: DeliveryOutcome
    public var exchanges: [ExchangeRecord]
    /// What rendering noted (template error, truncation, unresolved mentions).
    public var notes: [String] = []
}

/// Runs the sans-I/O loop: the plugin describes a request, the engine performs it, the plugin
/// reads the response and decides: delivered, another request, retry later, or failed.
public struct Deliverer: Sendable {
    public let engine: TransferEngine
    public var logger: Logger
    /// A plugin that keeps asking for requests is stopped here (token fetch + send needs 2).
    public static let maxRequestsPerDelivery = 8
    public static let defaultTimeoutMilliseconds = 15_000

    public init(engine: TransferEngine, logger: Logger = Logger(label: "herald.delivery")) {
        self.engine = engine
        self.logger = logger
    }

    /// Delivers a composed message; its notes go on the result, and a template error is logged.
    public func deliver(_ composed: ComposedMessage, through integration: Integration) async -> DeliveryResult {
        for note in composed.notes where note.hasPrefix("template error") {
            logger.warning("\(note)", metadata: ["integration": "\(integration.name)"])
            Counter(label: "herald_template_errors_total", dimensions: [("integration", integration.name)]).increment()
        }
        var result = await deliver(composed.message, through: integration)
        result.notes = composed.notes
        return result
    }

    public func deliver(_ message: OutgoingMessage, through integration: Integration) async -> DeliveryResult {
        let prepared = PreparedMessage(message)
        var exchanges: [ExchangeRecord] = []
        var lastResponse: PluginResponse?
        var step = integration.instance.prepare(prepared)
        var requests = 0
        while true {
            switch step {
            case .delivered(let id): return DeliveryResult(outcome: .delivered(providerID: id), exchanges: exchanges)
            case .retry(let after, let reason):
                // The plugin gave no hint: honour the response's own Retry-After.
                let hint = after ?? lastResponse.flatMap { Self.retryAfter($0.headers, now: Date()) }
                return DeliveryResult(outcome: .retry(afterMilliseconds: hint, reason: reason), exchanges: exchanges)
            case .failed(let reason): return DeliveryResult(outcome: .failed(reason: reason), exchanges: exchanges)
            case .request(let request):
                guard requests < Self.maxRequestsPerDelivery else {
                    return DeliveryResult(outcome: .failed(reason: "plugin bug: more than \(Self.maxRequestsPerDelivery) requests for one message"),
                                          exchanges: exchanges)
                }
                requests += 1
                switch await perform(request, integration, &exchanges) {
                case .success(let response):
                    lastResponse = response
                    step = integration.instance.onResponse(prepared, response)
                case .failure(let outcome): return DeliveryResult(outcome: outcome, exchanges: exchanges)
                }
            }
        }
    }

    /// Runs an admin action (`invoke_action`) to completion, performing the requests it asks for.
    public func runAction(_ action: String, input: String, on integration: Integration) async -> Result<String, DeliveryOutcome> {
        var exchanges: [ExchangeRecord] = []
        var step = integration.instance.invokeAction(action, input: input, response: nil)
        var requests = 0
        while true {
            switch step {
            case .done(let output): return .success(output)
            case .failed(let reason): return .failure(.failed(reason: reason))
            case .request(let request):
                guard requests < Self.maxRequestsPerDelivery else {
                    return .failure(.failed(reason: "plugin bug: more than \(Self.maxRequestsPerDelivery) requests for one action"))
                }
                requests += 1
                switch await perform(request, integration, &exchanges) {
                case .success(let response): step = integration.instance.invokeAction(action, input: input, response: response)
                case .failure(let outcome): return .failure(outcome)
                }
            }
        }
    }

    private func perform(_ request: PluginRequest, _ integration: Integration, _ exchanges: inout [ExchangeRecord]) async -> Result<PluginResponse, DeliveryOutcome> {
        let timeout = request.timeoutMilliseconds == 0 ? Self.defaultTimeoutMilliseconds : Int(request.timeoutMilliseconds)
        let transfer: TransferRequest = switch request.kind {
        case .http:
            .http(method: request.method, url: request.url, headers: request.headers.map { HTTPHeader(name: $0.name, value: $0.value) },
                  body: request.body, timeoutMilliseconds: timeout)
        case .smtp:
            .smtp(url: request.url, mailFrom: request.mailFrom, recipients: request.recipients, payload: request.body, timeoutMilliseconds: timeout)
        }
        let target = Self.redacted(request.url)
        var options = integration.options
        if request.kind == .smtp {
            // The plugin holds the SMTP settings (its config): credentials, mechanism, and
            // whether the operator allowed plain text; the integration holds CA file and proxy.
            if let user = request.smtpUsername {
                options.username = user
                options.password = request.smtpPassword
            }
            if let loginOptions = request.smtpLoginOptions { options.loginOptions = loginOptions }
            if request.smtpAllowPlaintext { options.requireTLSForSMTP = false }
        }
        let started = ContinuousClock.now
        do {
            let response = try await engine.perform(transfer, options: options)
            exchanges.append(ExchangeRecord(target: target, status: response.status, seconds: response.totalSeconds, error: nil))
            logger.debug("response", metadata: ["integration": "\(integration.name)", "target": "\(target)", "status": "\(response.status)"])
            return .success(PluginResponse(status: Int32(clamping: response.status), headers: response.headers.map { HeaderField($0.name, $0.value) },
                                           body: response.body, tag: request.tag, bodyTruncated: response.bodyTruncated))
        } catch {
            let elapsed = started.duration(to: .now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            exchanges.append(ExchangeRecord(target: target, status: nil, seconds: seconds, error: error.message))
            logger.warning("transfer failed", metadata: ["integration": "\(integration.name)", "target": "\(target)", "error": "\(error.message)"])
            // Network trouble is worth retrying; a policy or request problem is not.
            if error.isTransient || error.code == .tlsFailed {
                return .failure(.retry(afterMilliseconds: nil, reason: error.message))
            }
            return .failure(.failed(reason: error.message))
        }
    }

    /// A `Retry-After` header (delta seconds or an HTTP date) in milliseconds, capped at an hour.
    static func retryAfter(_ headers: [HeaderField], now: Date) -> UInt64? {
        guard let value = headers.last(where: { $0.name.lowercased() == "retry-after" })?.value.trimmingCharacters(in: .whitespaces) else { return nil }
        let seconds: Double
        if let delta = UInt64(value) {
            seconds = Double(delta)
        } else {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            guard let date = formatter.date(from: value) else { return nil }
            seconds = date.timeIntervalSince(now)
        }
        guard seconds > 0 else { return nil }
        return UInt64(min(seconds, 3600) * 1000)
    }

    /// scheme://host[:port] — paths and queries of webhook URLs are credentials.
    /// Plain string work: this runs for every request.
    static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return "(unparsable URL)" }
        let rest = url[schemeEnd.upperBound...]
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }  // drop user:password
        guard !authority.isEmpty else { return "(unparsable URL)" }
        return url[..<schemeEnd.upperBound].lowercased() + authority
    }
}
