import Crypto
public import Foundation
import Synchronization
public import TesseraCore
public import TesseraJOSE
public import TesseraStore

/// An access token this broker issued, whose signature, type, issuer and expiry hold.
/// Only `AccessTokenVerifier` makes one.
public struct VerifiedAccessToken: Sendable {
    public let claims: [String: JSONValue]
    public let jti: String
    public let tenantID: TenantID
    public let clientID: String
    public let expiresAt: Date

    fileprivate init(claims: [String: JSONValue], jti: String, tenantID: TenantID, clientID: String, expiresAt: Date) {
        self.claims = claims
        self.jti = jti
        self.tenantID = tenantID
        self.clientID = clientID
        self.expiresAt = expiresAt
    }
}

/// Verifies the broker's own RFC 9068 access tokens: a library call for introspection, revocation
/// and resource servers embedded with the broker.
///
/// Checks, in order: compact JWS with `typ` `at+jwt` (RFC 9068 §4); `kid` of a key the ring still
/// publishes; signature with the algorithm of that key; `iss` is this broker; `exp` not passed
/// (no skew: the broker's own clock decides); `jti`, `tid`, `client_id` present. Then, on every
/// call: not revoked, and its client still enabled, as this instance's `RevocationFeed` knows it
/// (no store read: the feed follows the revocation log and answers from memory).
///
/// Signature checks are memoised by the token's SHA-256 until the token expires, which is what
/// makes repeated introspection of the same token cheap. Revocation is never memoised here.
public final class AccessTokenVerifier: Sendable {
    private let keyRing: KeyRing
    private let issuer: String
    private let revocations: RevocationFeed
    private let cache = Mutex<[SHA256Digest: VerifiedAccessToken]>([:])
    private static let cacheLimit = 50_000

    public init(keyRing: KeyRing, issuer: String, revocations: RevocationFeed) {
        self.keyRing = keyRing
        self.issuer = issuer
        self.revocations = revocations
    }

    public enum Failure: Error, Sendable, Equatable {
        /// Not a token of ours, or not valid: malformed, bad signature, expired, unknown key.
        case invalid(String)
        /// A valid token that was revoked, or whose client was disabled.
        case inactive(String)
    }

    /// Signature, type, issuer and expiry only; does not consult the store.
    public func verifySignature(_ token: String, now: Date) throws(Failure) -> VerifiedAccessToken {
        guard token.utf8.count <= 8192 else { throw .invalid("token too long") }
        let digest = SHA256.hash(data: Array(token.utf8))
        if let cached = cache.withLock({ $0[digest] }) {
            guard cached.expiresAt > now else { throw .invalid("expired") }
            return cached
        }
        let jws: CompactJWS
        do {
            jws = try CompactJWS(parsing: token, maxLength: 8192)
        } catch {
            throw .invalid("malformed")
        }
        guard let typ = jws.header.typ?.lowercased(), typ == "at+jwt" || typ == "application/at+jwt" else {
            throw .invalid("typ is not at+jwt")
        }
        guard let kid = jws.header.kid, let key = keyRing.verificationKey(kid: kid) else { throw .invalid("unknown kid") }
        let claims: [String: JSONValue]
        do {
            claims = try jws.verify(with: key, allowed: Set(JWSAlgorithm.allCases))
        } catch {
            throw .invalid("signature")
        }
        guard claims["iss"]?.stringValue == issuer else { throw .invalid("issuer") }
        guard let exp = claims["exp"]?.doubleValue else { throw .invalid("no exp") }
        let expiresAt = Date(timeIntervalSince1970: exp)
        guard expiresAt > now else { throw .invalid("expired") }
        guard let jti = claims["jti"]?.stringValue, let tid = claims["tid"]?.stringValue.flatMap(TenantID.init),
            let clientID = claims["client_id"]?.stringValue
        else { throw .invalid("missing jti, tid or client_id") }
        let verified = VerifiedAccessToken(claims: claims, jti: jti, tenantID: tid, clientID: clientID, expiresAt: expiresAt)
        cache.withLock { cache in
            if cache.count >= Self.cacheLimit {
                cache = cache.filter { $0.value.expiresAt > now }
                if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            }
            cache[digest] = verified
        }
        return verified
    }

    /// Everything: signature and claims, then revocation and the client's state. Throws
    /// `StoreError.unavailable` (the caller answers 503) when the feed has not read the
    /// revocation log recently enough: a store we cannot read never makes a revoked token look
    /// active.
    public func verify(_ token: String, now: Date) async throws -> VerifiedAccessToken {
        let verified = try verifySignature(token, now: now)
        switch revocations.status(jti: verified.jti, clientID: verified.clientID) {
        case .active: return verified
        case .revoked: throw Failure.inactive("revoked")
        case .clientDisabled: throw Failure.inactive("client disabled")
        case .stale: throw StoreError.unavailable("the revocation log has not been read for too long")
        }
    }
}
