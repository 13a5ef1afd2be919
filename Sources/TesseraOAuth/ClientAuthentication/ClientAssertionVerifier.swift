public import Foundation
public import TesseraCore
public import TesseraJOSE
public import TesseraStore

/// Verifies a `private_key_jwt` client assertion (RFC 7523 §3, RFC 7521 §5.2).
///
/// Order of checks, refusing on the first failure:
/// 1. compact JWS, strictly parsed (no `crit` we do not understand), algorithm on the allow-list
///    (`none` and HMAC are not algorithms here at all);
/// 2. signature by a key of the client's registered JWKS, chosen by `kid` (or the only key that
///    fits the algorithm), never by a key carried in the assertion;
/// 3. the claim policies below, in order;
/// 4. `jti` consumed once in the shared replay store (kept until `exp` plus skew).
public struct ClientAssertionVerifier: Sendable {
    public static let allowedAlgorithms: Set<JWSAlgorithm> = [.ES256, .ES384, .EdDSA, .RS256, .PS256, .PS384, .PS512, .RS384, .RS512]
    /// An assertion may be valid for at most this long (RFC 7523 §3: "short").
    public static let maximumLifetime: TimeInterval = 300

    public struct Context: Sendable {
        public let clientID: String
        /// Accepted audiences: the token endpoint URL and the issuer identifier (RFC 7523 §3, item 3).
        public let audiences: Set<String>
        public let now: Date
    }

    private let replay: any ReplayStore
    private let policies: [any ClientAssertionPolicy]

    public init(replay: any ReplayStore) {
        self.replay = replay
        policies = [
            IssuerAndSubjectPolicy(), AudiencePolicy(), ExpiryPolicy(), NotBeforePolicy(), IssuedAtPolicy(), JTIPresentPolicy(),
        ]
    }

    public func verify(_ assertion: String, registeredJWKS: String?, context: Context) async throws(OAuthError) {
        guard let registeredJWKS else { throw .invalidClient(reason: "client has no registered JWKS") }
        let jws: CompactJWS
        do {
            jws = try CompactJWS(parsing: assertion, maxLength: 8192)
        } catch {
            throw .invalidClient(reason: "client assertion malformed: \(error)")
        }
        guard Self.allowedAlgorithms.contains(jws.header.alg) else {
            throw .invalidClient(reason: "client assertion algorithm not allowed")
        }
        let keys: JWKS
        do {
            keys = try JWKS(json: try StrictJSON.parse(Array(registeredJWKS.utf8)))
        } catch {
            throw .invalidClient(reason: "registered JWKS unusable")
        }
        let candidates = keys.keys.filter { key in
            key.canVerify(jws.header.alg) && (jws.header.kid == nil || key.kid == jws.header.kid) && (key.use == nil || key.use == "sig")
        }
        guard candidates.count == 1, let jwk = candidates.first else {
            throw .invalidClient(reason: candidates.isEmpty ? "no registered key matches the assertion" : "assertion kid is ambiguous")
        }
        let claims: [String: JSONValue]
        do {
            claims = try jws.verify(with: try JWSVerificationKey(jwk: jwk), allowed: Self.allowedAlgorithms)
        } catch {
            throw .invalidClient(reason: "client assertion signature invalid")
        }
        for policy in policies {
            if case .fails(let why) = policy.check(claims, context) {
                throw .invalidClient(reason: "client assertion \(why)")
            }
        }
        guard let jti = claims["jti"]?.stringValue, let exp = claims["exp"]?.doubleValue else {
            throw .invalidClient(reason: "client assertion lacks jti or exp")
        }
        let firstUse: Bool
        do {
            firstUse = try await replay.consume(
                namespace: "client_assertion", id: "\(context.clientID) \(jti)",
                expiresAt: Date(timeIntervalSince1970: exp).addingTimeInterval(ClockSkew.allowed), now: context.now)
        } catch {
            throw .unavailable(reason: "replay store: \(error)")
        }
        guard firstUse else { throw .invalidClient(reason: "client assertion replayed (jti already used)") }
    }
}

public enum PolicyResult: Sendable, Equatable {
    case meets
    /// The reason starts with the policy's name.
    case fails(String)
}

/// One rule about an assertion's claims.
public protocol ClientAssertionPolicy: Sendable {
    func check(_ claims: [String: JSONValue], _ context: ClientAssertionVerifier.Context) -> PolicyResult
}

/// RFC 7523 §3 items 1–2: `iss` and `sub` are both the client id.
struct IssuerAndSubjectPolicy: ClientAssertionPolicy {
    func check(_ claims: [String: JSONValue], _ context: ClientAssertionVerifier.Context) -> PolicyResult {
        guard claims["iss"]?.stringValue == context.clientID else { return .fails("IssuerAndSubject: iss is not the client id") }
        guard claims["sub"]?.stringValue == context.clientID else { return .fails("IssuerAndSubject: sub is not the client id") }
        return .meets
    }
}

/// RFC 7523 §3 item 3: `aud` names this server's token endpoint or issuer.
struct AudiencePolicy: ClientAssertionPolicy {
    func check(_ claims: [String: JSONValue], _ context: ClientAssertionVerifier.Context) -> PolicyResult {
        let audiences: [String]
        switch claims["aud"] {
        case .string(let one)?: audiences = [one]
        case .array(let many)?: audiences = many.compactMap(\.stringValue)
        default: return .fails("Audience: aud missing")
        }
        return audiences.contains(where: context.audiences.contains) ? .meets : .fails("Audience: aud is not this server")
    }
}

/// RFC 7523 §3 item 4: `exp` present and not passed; and short-lived, so a leaked assertion is
/// useful for minutes, not days.
struct ExpiryPolicy: ClientAssertionPolicy {
    func check(_ claims: [String: JSONValue], _ context: ClientAssertionVerifier.Context) -> PolicyResult {
        guard let exp = claims["exp"]?.doubleValue else { return .fails("Expiry: exp missing") }
        let now = context.now.timeIntervalSince1970
        guard exp > now - ClockSkew.allowed else { return .fails("Expiry: expired") }
        guard exp <= now + ClientAssertionVerifier.maximumLifetime + ClockSkew.allowed else {
            return .fails("Expiry: exp too far in the future")
        }
        return .meets
    }
}

/// RFC 7523 §3 item 5: not used before `nbf`.
struct NotBeforePolicy: ClientAssertionPolicy {
    func check(_ claims: [String: JSONValue], _ context: ClientAssertionVerifier.Context) -> PolicyResult {
        guard let nbf = claims["nbf"] else { return .meets }
        guard let value = nbf.doubleValue else { return .fails("NotBefore: nbf is not a number") }
        return value <= context.now.timeIntervalSince1970 + ClockSkew.allowed ? .meets : .fails("NotBefore: not yet valid")
    }
}

/// RFC 7523 §3 item 6: `iat`, when present, is not in the future.
struct IssuedAtPolicy: ClientAssertionPolicy {
    func check(_ claims: [String: JSONValue], _ context: ClientAssertionVerifier.Context) -> PolicyResult {
        guard let iat = claims["iat"] else { return .meets }
        guard let value = iat.doubleValue else { return .fails("IssuedAt: iat is not a number") }
        let now = context.now.timeIntervalSince1970
        guard value <= now + ClockSkew.allowed else { return .fails("IssuedAt: issued in the future") }
        guard value >= now - ClientAssertionVerifier.maximumLifetime - ClockSkew.allowed else {
            return .fails("IssuedAt: issued too long ago")
        }
        return .meets
    }
}

/// RFC 7523 §3 item 7: a `jti` so the assertion can be used only once.
struct JTIPresentPolicy: ClientAssertionPolicy {
    func check(_ claims: [String: JSONValue], _ context: ClientAssertionVerifier.Context) -> PolicyResult {
        guard let jti = claims["jti"]?.stringValue, !jti.isEmpty, jti.utf8.count <= 256 else {
            return .fails("JTIPresent: jti missing or too long")
        }
        return .meets
    }
}
