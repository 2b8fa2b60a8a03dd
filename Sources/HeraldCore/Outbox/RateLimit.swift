import Foundation
import Yams

/// A platform's sending quota for one destination: `count` messages per `perSeconds`.
/// Plugins declare theirs in `manifest.json` (`"rate_limit": {"count": 20, "per_seconds": 60}`);
/// an integration may override it with `rate_limit: {count: 10, per_seconds: 60}`.
public struct RateLimit: Sendable, Equatable {
    public var count: Int
    public var perSeconds: Double
    public init(count: Int, perSeconds: Double) {
        self.count = count
        self.perSeconds = perSeconds
    }
}

/// Token buckets per destination. Not thread-safe: the dispatcher owns it.
struct RateLimiter {
    private struct Bucket {
        var tokens: Double
        var updated: Date
    }
    private var buckets: [String: Bucket] = [:]

    /// Tokens available to `destination` now (whole messages it may send).
    mutating func available(_ destination: String, limit: RateLimit?, now: Date) -> Int {
        guard let limit else { return Int.max }
        return Int(refill(destination, limit, now).tokens)
    }

    mutating func take(_ destination: String, limit: RateLimit?, now: Date) {
        guard let limit else { return }
        var bucket = refill(destination, limit, now)
        bucket.tokens = max(0, bucket.tokens - 1)
        buckets[destination] = bucket
    }

    /// When the next token arrives for a saturated destination.
    mutating func nextToken(_ destination: String, limit: RateLimit?, now: Date) -> Date {
        guard let limit else { return now }
        let bucket = refill(destination, limit, now)
        let rate = Double(limit.count) / limit.perSeconds
        return now.addingTimeInterval(max(0, 1 - bucket.tokens) / rate)
    }

    private mutating func refill(_ destination: String, _ limit: RateLimit, _ now: Date) -> Bucket {
        let rate = Double(limit.count) / limit.perSeconds
        var bucket = buckets[destination] ?? Bucket(tokens: Double(limit.count), updated: now)
        bucket.tokens = min(Double(limit.count), bucket.tokens + max(0, now.timeIntervalSince(bucket.updated)) * rate)
        bucket.updated = now
        buckets[destination] = bucket
        return bucket
    }
}

extension ConfigReader {
    mutating func rateLimit(_ node: Node, _ key: String) -> RateLimit? {
        guard let r = mapping(node, key, known: ["count", "per_seconds"]) else { return nil }
        guard let countNode = r["count"], let count = integer(countNode, key + ".count", 1...100_000) else {
            if r["count"] == nil { fail(node, key, "needs 'count', messages per window") }
            return nil
        }
        var seconds = 60.0
        if let n = r["per_seconds"] {
            guard let text = n.scalar?.string, let value = Double(text), value > 0, value <= 86400 else {
                fail(n, key + ".per_seconds", "must be a number of seconds from 0 to 86400")
                return nil
            }
            seconds = value
        }
        return RateLimit(count: count, perSeconds: seconds)
    }
}
