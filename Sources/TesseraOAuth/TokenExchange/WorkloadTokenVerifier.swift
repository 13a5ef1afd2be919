public import Foundation
import Synchronization
public import TesseraCore
public import TesseraJOSE

/// A JWT from an issuer the tenant trusts, whose signature and claims hold. Only
/// `WorkloadTokenVerifier` makes one.
public struct VerifiedWorkloadToken: Sendable {
    public let trust: WorkloadIssuer
    public let subject: String
    public let claims: [String: JSONValue]
    public let expiresAt: Date

    fileprivate init(trust: WorkloadIssuer, subject: String, claims: [String: JSONValue], expiresAt: Date) {
        self.trust = trust
        self.subject = subject
        self.claims = claims
        self.expiresAt = expiresAt
    }
}

/// Verifies a workload identity JWT (a Kubernetes service-account token, a CI system's OIDC
/// token) against the tenant's trust rule for its issuer (RFC 7523 §3 claims, RFC 8725 practice).
///
/// Order of checks, refusing on the first failure:
/// 1. compact JWS, strictly parsed, at most 16 KiB; algorithm on the allow-list (`none` and HMAC
///    are not algorithms here, so a public key can never be used as an HMAC secret); `typ`, when
///    present, says JWT;
/// 2. signature by the key of the trust rule's JWKS named by `kid` (or the only key able to verify
///    that algorithm), never a key carried in the token;
/// 3. the claim policies, in order: issuer, audience, expiry, not-before, issued-at, subject
///    patterns, claim conditions.
public final class WorkloadTokenVerifier: Sendable {
    public static let allowedAlgorithms: Set<JWSAlgorithm> = [.ES256, .ES384, .EdDSA, .RS256, .RS384, .RS512, .PS256, .PS384, .PS512]
    public static let maximumLength = 16 * 1024
    /// A JWT valid for longer than this is refused: a day covers every workload token format.
    public static let maximumLifetime: TimeInterval = 86_400

    private let policies: [any WorkloadTokenPolicy] = [
        WorkloadIssuerPolicy(), WorkloadAudiencePolicy(), WorkloadExpiryPolicy(), WorkloadNotBeforePolicy(),
        WorkloadIssuedAtPolicy(), WorkloadSubjectPolicy(), WorkloadClaimConditionsPolicy(),
    ]
    /// Parsed JWKS per trust rule, keyed by its id and the JWKS text, so an edited rule is re-read.
    private let keyCache = Mutex<[String: (jwks: String, keys: [JWSVerificationKey])]>([:])

    public init() {}

    public enum Failure: Error, Sendable, Equatable {
        case invalid(String)
    }

    /// The `iss` of a token before anything is verified: only to choose the trust rule.
    public static func unverifiedIssuer(of token: String) -> String? {
        guard let jws = try? CompactJWS(parsing: token, maxLength: maximumLength),
            let claims = try? StrictJSON.parse(jws.payload)
        else { return nil }
        return claims["iss"]?.stringValue
    }

    /// The `kid` of a token's header before anything is verified: only to choose keys.
    public static func unverifiedKeyID(of token: String) -> String? {
        (try? CompactJWS(parsing: token, maxLength: maximumLength))?.header.kid
    }

    public func verify(_ token: String, trust: WorkloadIssuer, now: Date) throws(Failure) -> VerifiedWorkloadToken {
        let jws: CompactJWS
        do {
            jws = try CompactJWS(parsing: token, maxLength: Self.maximumLength)
        } catch {
            throw .invalid("malformed JWS: \(error)")
        }
        guard Self.allowedAlgorithms.contains(jws.header.alg) else { throw .invalid("algorithm not allowed") }
        if let typ = jws.header.typ?.lowercased(), typ != "jwt", typ != "application/jwt" {
            throw .invalid("typ \(String(typ.prefix(40))) is not JWT")
        }
        let candidates = try keys(of: trust).filter { key in
            key.jwk.canVerify(jws.header.alg) && (jws.header.kid == nil || key.jwk.kid == jws.header.kid)
                && (key.jwk.use == nil || key.jwk.use == "sig")
        }
        guard candidates.count == 1, let key = candidates.first else {
            throw .invalid(candidates.isEmpty ? "no key of the issuer's JWKS matches kid and alg" : "kid is ambiguous")
        }
        let claims: [String: JSONValue]
        do {
            claims = try jws.verify(with: key, allowed: Self.allowedAlgorithms)
        } catch {
            throw .invalid("signature invalid")
        }
        for policy in policies {
            if case .fails(let why) = policy.check(claims, trust: trust, now: now) { throw .invalid(why) }
        }
        guard let sub = claims["sub"]?.stringValue, let exp = claims["exp"]?.doubleValue else { throw .invalid("sub or exp missing") }
        return VerifiedWorkloadToken(trust: trust, subject: sub, claims: claims, expiresAt: Date(timeIntervalSince1970: exp))
    }

    private func keys(of trust: WorkloadIssuer) throws(Failure) -> [JWSVerificationKey] {
        if let cached = keyCache.withLock({ $0[trust.id] }), cached.jwks == trust.jwks { return cached.keys }
        let keys: [JWSVerificationKey]
        do {
            keys = try JWKS(json: try StrictJSON.parse(Array(trust.jwks.utf8))).keys.map { jwk throws(JOSEError) in
                try JWSVerificationKey(jwk: jwk)
            }
        } catch {
            throw .invalid("the trusted issuer's JWKS is unusable")
        }
        keyCache.withLock { $0[trust.id] = (trust.jwks, keys) }
        return keys
    }
}

/// One rule about a workload token's claims; the failure reason starts with the policy's name.
protocol WorkloadTokenPolicy: Sendable {
    func check(_ claims: [String: JSONValue], trust: WorkloadIssuer, now: Date) -> PolicyResult
}

/// `iss` is exactly the trusted issuer (RFC 7519 §4.1.1; no normalisation, no trailing-slash games).
struct WorkloadIssuerPolicy: WorkloadTokenPolicy {
    func check(_ claims: [String: JSONValue], trust: WorkloadIssuer, now: Date) -> PolicyResult {
        claims["iss"]?.stringValue == trust.issuer ? .meets : .fails("WorkloadIssuer: iss is not the trusted issuer")
    }
}

/// `aud` contains the audience the trust rule names (RFC 7519 §4.1.3).
struct WorkloadAudiencePolicy: WorkloadTokenPolicy {
    func check(_ claims: [String: JSONValue], trust: WorkloadIssuer, now: Date) -> PolicyResult {
        let audiences: [String]
        switch claims["aud"] {
        case .string(let one)?: audiences = [one]
        case .array(let many)?: audiences = many.compactMap(\.stringValue)
        default: return .fails("WorkloadAudience: aud missing")
        }
        return audiences.contains(trust.audience) ? .meets : .fails("WorkloadAudience: aud does not contain \(trust.audience)")
    }
}

/// `exp` present, not passed (with the skew), and not absurdly far away.
struct WorkloadExpiryPolicy: WorkloadTokenPolicy {
    func check(_ claims: [String: JSONValue], trust: WorkloadIssuer, now: Date) -> PolicyResult {
        guard let exp = claims["exp"]?.doubleValue else { return .fails("WorkloadExpiry: exp missing") }
        let seconds = now.timeIntervalSince1970
        // No skew in our favour here: an exchanged token may never outlive its subject.
        guard exp > seconds else { return .fails("WorkloadExpiry: expired") }
        guard exp <= seconds + WorkloadTokenVerifier.maximumLifetime else { return .fails("WorkloadExpiry: exp too far in the future") }
        return .meets
    }
}

struct WorkloadNotBeforePolicy: WorkloadTokenPolicy {
    func check(_ claims: [String: JSONValue], trust: WorkloadIssuer, now: Date) -> PolicyResult {
        guard let nbf = claims["nbf"] else { return .meets }
        guard let value = nbf.doubleValue else { return .fails("WorkloadNotBefore: nbf is not a number") }
        return value <= now.timeIntervalSince1970 + ClockSkew.allowed ? .meets : .fails("WorkloadNotBefore: not yet valid")
    }
}

struct WorkloadIssuedAtPolicy: WorkloadTokenPolicy {
    func check(_ claims: [String: JSONValue], trust: WorkloadIssuer, now: Date) -> PolicyResult {
        guard let iat = claims["iat"] else { return .meets }
        guard let value = iat.doubleValue else { return .fails("WorkloadIssuedAt: iat is not a number") }
        return value <= now.timeIntervalSince1970 + ClockSkew.allowed ? .meets : .fails("WorkloadIssuedAt: issued in the future")
    }
}

/// `sub` present and matching one of the rule's patterns (any when the rule names none).
struct WorkloadSubjectPolicy: WorkloadTokenPolicy {
    func check(_ claims: [String: JSONValue], trust: WorkloadIssuer, now: Date) -> PolicyResult {
        guard let sub = claims["sub"]?.stringValue, !sub.isEmpty, sub.utf8.count <= 512 else {
            return .fails("WorkloadSubject: sub missing or too long")
        }
        guard !trust.subjectPatterns.isEmpty else { return .meets }
        let matches = trust.subjectPatterns.contains { Glob($0)?.matches(sub) ?? false }
        return matches ? .meets : .fails("WorkloadSubject: sub matches no pattern of the trust rule")
    }
}

/// Every claim the rule names is a string matching its pattern (`ref=refs/heads/main`).
struct WorkloadClaimConditionsPolicy: WorkloadTokenPolicy {
    func check(_ claims: [String: JSONValue], trust: WorkloadIssuer, now: Date) -> PolicyResult {
        for name in trust.claimConditions.keys.sorted() {
            guard let value = claims[name]?.stringValue else { return .fails("WorkloadClaimConditions: \(name) missing or not a string") }
            guard Glob(trust.claimConditions[name]!)?.matches(value) ?? false else {
                return .fails("WorkloadClaimConditions: \(name) does not match")
            }
        }
        return .meets
    }
}
