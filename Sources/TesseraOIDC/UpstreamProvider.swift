public import Foundation
import Synchronization
public import TesseraCore
public import TesseraJOSE

/// One tenant's OpenID Provider as the broker sees it at run time: the configuration, the last
/// good discovery document and the provider's keys, each fetched when needed and cached.
///
/// - Discovery is fetched again after ``discoveryRefresh``; a refresh that fails keeps the last
///   good document (and is reported once), so a provider blip does not stop sign-ins.
/// - The JWKS is fetched again when a token names an unknown `kid`, at most once per
///   ``jwksRefetchInterval`` whatever the number of such tokens: a flood of forged `kid`s cannot
///   make the broker hammer the provider.
public final class UpstreamProvider: Sendable {
    public static let discoveryRefresh: TimeInterval = 900
    public static let jwksRefetchInterval: TimeInterval = 10

    public let config: OIDCProviderConfig
    private let transport: any OIDCTransport

    private struct State {
        var discovery: DiscoveryDocument?
        var discoveryFetchedAt: Date?
        var keys: [JWSVerificationKey] = []
        var jwksFetchedAt: Date?
        /// Why the last JWKS fetch failed, until one succeeds: repeated within the interval.
        var jwksFailure: OIDCProblem?
    }
    private let state = Mutex(State())

    public init(config: OIDCProviderConfig, transport: any OIDCTransport) {
        self.config = config
        self.transport = transport
    }

    /// The discovery document, fetched when missing or stale.
    public func discovery(now: Date) async throws(OIDCProblem) -> DiscoveryDocument {
        let cached = state.withLock { ($0.discovery, $0.discoveryFetchedAt) }
        if let document = cached.0, let at = cached.1, now.timeIntervalSince(at) < Self.discoveryRefresh { return document }
        do {
            let fresh = try await Self.fetchDiscovery(issuer: config.issuer, transport: transport)
            state.withLock {
                $0.discovery = fresh
                $0.discoveryFetchedAt = now
            }
            return fresh
        } catch {
            // Keep the last good document; try again at the next refresh period.
            if let document = cached.0 {
                state.withLock { $0.discoveryFetchedAt = now }
                return document
            }
            throw error
        }
    }

    public static func fetchDiscovery(issuer: String, transport: any OIDCTransport) async throws(OIDCProblem) -> DiscoveryDocument {
        guard let url = DiscoveryDocument.url(of: issuer), DiscoveryDocument.isAcceptable(url) else {
            throw .discovery("the issuer is not an https URL")
        }
        let response: UpstreamResponse
        do {
            response = try await transport.get(url, accept: "application/json", headers: [])
        } catch {
            throw .unavailable("discovery unreachable")
        }
        guard response.status == 200 else {
            throw response.status >= 500
                ? .unavailable("discovery answered \(response.status)") : .discovery("discovery answered \(response.status)")
        }
        return try DiscoveryDocument(parsing: response.body, expectedIssuer: issuer)
    }

    /// The provider key able to verify `alg`, chosen by `kid` (or the only one when the token names
    /// none); refetches the JWKS once when the `kid` is unknown and the interval allows it.
    public func verificationKey(kid: String?, alg: JWSAlgorithm, now: Date) async throws(OIDCProblem) -> JWSVerificationKey {
        func pick(_ keys: [JWSVerificationKey]) -> [JWSVerificationKey] {
            keys.filter { key in
                key.jwk.canVerify(alg) && (kid == nil || key.jwk.kid == kid) && (key.jwk.use == nil || key.jwk.use == "sig")
            }
        }
        let (keys, fetchedAt, failure) = state.withLock { ($0.keys, $0.jwksFetchedAt, $0.jwksFailure) }
        var candidates = pick(keys)
        if candidates.isEmpty {
            let mayFetch = fetchedAt.map { now.timeIntervalSince($0) >= Self.jwksRefetchInterval } ?? true
            guard mayFetch else { throw failure ?? .untrusted("no key of the provider matches the ID token's kid") }
            // Claim the slot before fetching, so concurrent misses make one request.
            let claimed = state.withLock { current -> Bool in
                if let at = current.jwksFetchedAt, at != fetchedAt, now.timeIntervalSince(at) < Self.jwksRefetchInterval { return false }
                current.jwksFetchedAt = now
                return true
            }
            if claimed {
                let fresh: [JWSVerificationKey]
                do {
                    fresh = try await fetchJWKS(now: now)
                } catch {
                    state.withLock { $0.jwksFailure = error }
                    throw error
                }
                state.withLock {
                    $0.keys = fresh
                    $0.jwksFailure = nil
                }
                candidates = pick(fresh)
            } else {
                candidates = pick(state.withLock { $0.keys })
            }
        }
        guard candidates.count == 1, let key = candidates.first else {
            throw .untrusted(candidates.isEmpty ? "no key of the provider matches the ID token's kid" : "the ID token's kid is ambiguous")
        }
        return key
    }

    private func fetchJWKS(now: Date) async throws(OIDCProblem) -> [JWSVerificationKey] {
        let url = try await discovery(now: now).jwksURI
        let response: UpstreamResponse
        do {
            response = try await transport.get(url, accept: "application/json", headers: [])
        } catch {
            throw .unavailable("the provider's JWKS is unreachable")
        }
        guard response.status == 200 else { throw .unavailable("the provider's JWKS answered \(response.status)") }
        do {
            return try JWKS(json: try StrictJSON.parse(response.body)).keys.map { jwk throws(JOSEError) in try JWSVerificationKey(jwk: jwk)
            }
        } catch {
            throw .discovery("the provider's JWKS is unusable")
        }
    }

    /// For the relying party's own calls (token, userinfo) to the same provider.
    var transportForCalls: any OIDCTransport { transport }
}
