public import Foundation
import Synchronization
import TesseraCore
import TesseraJOSE

/// Fetches a document over the network (a JWKS); the HTTP client lives outside the token service.
public protocol JWKSFetcher: Sendable {
    /// The body of a 200 answer; throws on anything else (status, network, size).
    func fetch(_ url: URL) async throws -> [UInt8]
}

/// JWKS of trusted workload issuers that publish their keys (`jwks_uri`): fetched on first use,
/// kept for `freshFor`, fetched again early when a token names a `kid` the cached set lacks — at
/// most once per `refetchInterval` per URL, so tokens with made-up kids cannot make the broker
/// hammer the issuer. A failed fetch keeps serving the last good set while it is younger than
/// `staleFor`.
public final class RemoteJWKS: Sendable {
    public let freshFor: TimeInterval
    public let refetchInterval: TimeInterval
    public let staleFor: TimeInterval
    private let fetcher: any JWKSFetcher
    private let cache = Mutex<[URL: Entry]>([:])

    struct Entry: Sendable {
        var text: String?
        var kids: Set<String>
        var fetchedAt: Date
        var attemptedAt: Date
    }

    public enum Failure: Error, Sendable, Equatable {
        case unavailable(String)
        case unusable(String)
    }

    public init(fetcher: any JWKSFetcher, freshFor: TimeInterval = 300, refetchInterval: TimeInterval = 10, staleFor: TimeInterval = 86_400) {
        self.fetcher = fetcher
        self.freshFor = freshFor
        self.refetchInterval = refetchInterval
        self.staleFor = staleFor
    }

    /// The JWKS text to verify a token with `kid` (nil: the token names none).
    public func jwks(at url: URL, kid: String?, now: Date) async throws(Failure) -> String {
        let cached = cache.withLock { $0[url] }
        if let cached, let text = cached.text {
            let fresh = now.timeIntervalSince(cached.fetchedAt) < freshFor
            let knowsKid = kid.map(cached.kids.contains) ?? true
            let mayRefetch = now.timeIntervalSince(cached.attemptedAt) >= refetchInterval
            if (fresh && knowsKid) || !mayRefetch { return text }
        } else if let cached, now.timeIntervalSince(cached.attemptedAt) < refetchInterval {
            throw .unavailable("the issuer's JWKS could not be fetched recently")
        }
        cache.withLock { $0[url, default: Entry(text: nil, kids: [], fetchedAt: .distantPast, attemptedAt: now)].attemptedAt = now }
        func fallback(_ failure: Failure) throws(Failure) -> String {
            if let text = cached?.text, let fetchedAt = cached?.fetchedAt, now.timeIntervalSince(fetchedAt) < staleFor { return text }
            throw failure
        }
        let body: [UInt8]
        do {
            body = try await fetcher.fetch(url)
        } catch {
            return try fallback(.unavailable("the issuer's JWKS could not be fetched"))
        }
        guard let json = try? StrictJSON.parse(body), let parsed = try? JWKS(json: json), !parsed.keys.isEmpty else {
            return try fallback(.unusable("the issuer's JWKS is not a JWKS with a usable key"))
        }
        let text = String(decoding: StrictJSON.serialize(parsed.json), as: UTF8.self)
        let kids = Set(parsed.keys.compactMap(\.kid))
        cache.withLock { $0[url] = Entry(text: text, kids: kids, fetchedAt: now, attemptedAt: now) }
        return text
    }
}
