import Crypto
public import Foundation
public import TesseraCore
public import TesseraJOSE

/// An ID token whose signature and claims hold. Only `IDTokenVerifier` makes one.
public struct VerifiedIDToken: Sendable {
    public let claims: [String: JSONValue]
    public let subject: String

    fileprivate init(claims: [String: JSONValue], subject: String) {
        self.claims = claims
        self.subject = subject
    }
}

/// What an ID token is checked against.
public struct IDTokenExpectations: Sendable {
    public let issuer: String
    public let clientID: String
    /// Nil when the token was not asked for by this broker (an RFC 8693 subject token): then a
    /// nonce is neither required nor compared.
    public let nonce: String?
    /// The access token of the same response, for `at_hash`.
    public let accessToken: String?
    public let now: Date

    public init(issuer: String, clientID: String, nonce: String?, accessToken: String?, now: Date) {
        self.issuer = issuer
        self.clientID = clientID
        self.nonce = nonce
        self.accessToken = accessToken
        self.now = now
    }
}

/// Verifies an ID token (OpenID Connect Core 1.0 §3.1.3.7).
///
/// Order of checks, refusing on the first failure:
/// 1. compact JWS, strictly parsed, at most 16 KiB; `alg` on the allow-list (asymmetric only:
///    `none` and HMAC are not algorithms here, so the provider's public key can never serve as
///    an HMAC secret);
/// 2. signature by the provider's key named by `kid`, from its JWKS (never a key in the token);
/// 3. the claim policies, in order: issuer, audience, authorized party, expiry, issued-at,
///    nonce, access-token hash, subject.
public struct IDTokenVerifier: Sendable {
    public static let allowedAlgorithms: Set<JWSAlgorithm> = [.RS256, .RS384, .RS512, .PS256, .PS384, .PS512, .ES256, .ES384, .EdDSA]
    public static let maximumLength = 16 * 1024

    private let policies: [any IDTokenPolicy] = [
        IDTokenIssuerPolicy(), IDTokenAudiencePolicy(), IDTokenAuthorizedPartyPolicy(), IDTokenExpiryPolicy(), IDTokenIssuedAtPolicy(),
        IDTokenNoncePolicy(), IDTokenAccessTokenHashPolicy(), IDTokenSubjectPolicy(),
    ]

    public init() {}

    public func verify(
        _ token: String, provider: UpstreamProvider, expecting: IDTokenExpectations
    ) async throws(OIDCProblem)
        -> VerifiedIDToken
    {
        let jws: CompactJWS
        do {
            jws = try CompactJWS(parsing: token, maxLength: Self.maximumLength)
        } catch {
            throw .untrusted("the ID token is malformed or uses a refused algorithm")
        }
        guard Self.allowedAlgorithms.contains(jws.header.alg) else { throw .untrusted("the ID token's algorithm is not allowed") }
        let key = try await provider.verificationKey(kid: jws.header.kid, alg: jws.header.alg, now: expecting.now)
        let claims: [String: JSONValue]
        do {
            claims = try jws.verify(with: key, allowed: Self.allowedAlgorithms)
        } catch {
            throw .untrusted("the ID token's signature is invalid")
        }
        for policy in policies {
            if case .fails(let why) = policy.check(claims, header: jws.header, expecting) { throw .untrusted(why) }
        }
        return VerifiedIDToken(claims: claims, subject: claims["sub"]!.stringValue!)
    }
}

public enum IDTokenPolicyResult: Sendable, Equatable {
    case meets
    /// The reason starts with the policy's name.
    case fails(String)
}

protocol IDTokenPolicy: Sendable {
    func check(_ claims: [String: JSONValue], header: JWSHeader, _ expecting: IDTokenExpectations) -> IDTokenPolicyResult
}

/// §3.1.3.7 item 2: `iss` exactly the provider's issuer.
struct IDTokenIssuerPolicy: IDTokenPolicy {
    func check(_ claims: [String: JSONValue], header: JWSHeader, _ expecting: IDTokenExpectations) -> IDTokenPolicyResult {
        claims["iss"]?.stringValue == expecting.issuer ? .meets : .fails("IDTokenIssuer: iss is not the provider")
    }
}

/// §3.1.3.7 item 3: `aud` contains the client id.
struct IDTokenAudiencePolicy: IDTokenPolicy {
    func check(_ claims: [String: JSONValue], header: JWSHeader, _ expecting: IDTokenExpectations) -> IDTokenPolicyResult {
        IDTokenAudiencePolicy.audiences(claims).contains(expecting.clientID) ? .meets : .fails("IDTokenAudience: aud lacks the client id")
    }

    static func audiences(_ claims: [String: JSONValue]) -> [String] {
        switch claims["aud"] {
        case .string(let one)?: [one]
        case .array(let many)?: many.compactMap(\.stringValue)
        default: []
        }
    }
}

/// §3.1.3.7 items 4–5: with several audiences `azp` is required; when present it is the client.
struct IDTokenAuthorizedPartyPolicy: IDTokenPolicy {
    func check(_ claims: [String: JSONValue], header: JWSHeader, _ expecting: IDTokenExpectations) -> IDTokenPolicyResult {
        if let azp = claims["azp"] {
            return azp.stringValue == expecting.clientID ? .meets : .fails("IDTokenAuthorizedParty: azp is not the client")
        }
        return IDTokenAudiencePolicy.audiences(claims).count > 1
            ? .fails("IDTokenAuthorizedParty: several audiences and no azp") : .meets
    }
}

/// §3.1.3.7 item 9: `exp` present and not passed. No leeway: an ID token is redeemed seconds after
/// the provider made it, so only a token replayed late, or a provider clock far behind, gets here.
struct IDTokenExpiryPolicy: IDTokenPolicy {
    func check(_ claims: [String: JSONValue], header: JWSHeader, _ expecting: IDTokenExpectations) -> IDTokenPolicyResult {
        guard let exp = claims["exp"]?.doubleValue else { return .fails("IDTokenExpiry: exp missing") }
        return exp > expecting.now.timeIntervalSince1970 ? .meets : .fails("IDTokenExpiry: expired")
    }
}

/// §3.1.3.7 item 10: `iat` present, not in the future beyond the skew, and recent.
struct IDTokenIssuedAtPolicy: IDTokenPolicy {
    static let maximumAge: TimeInterval = 600

    func check(_ claims: [String: JSONValue], header: JWSHeader, _ expecting: IDTokenExpectations) -> IDTokenPolicyResult {
        guard let iat = claims["iat"]?.doubleValue else { return .fails("IDTokenIssuedAt: iat missing") }
        let now = expecting.now.timeIntervalSince1970
        guard iat <= now + ClockSkew.allowed else { return .fails("IDTokenIssuedAt: issued in the future") }
        guard iat >= now - Self.maximumAge - ClockSkew.allowed else { return .fails("IDTokenIssuedAt: issued too long ago") }
        return .meets
    }
}

/// §3.1.3.7 item 11: `nonce` equals the one this browser's login sent; compared in constant time.
struct IDTokenNoncePolicy: IDTokenPolicy {
    func check(_ claims: [String: JSONValue], header: JWSHeader, _ expecting: IDTokenExpectations) -> IDTokenPolicyResult {
        guard let expected = expecting.nonce else { return .meets }
        guard let nonce = claims["nonce"]?.stringValue else { return .fails("IDTokenNonce: nonce missing") }
        return Secrets.constantTimeEquals(Array(nonce.utf8), Array(expected.utf8)) ? .meets : .fails("IDTokenNonce: nonce differs")
    }
}

/// §3.2.2.9 / §3.1.3.8: `at_hash`, when present, is the left half of the hash of the access token,
/// with the hash of the token's algorithm.
struct IDTokenAccessTokenHashPolicy: IDTokenPolicy {
    func check(_ claims: [String: JSONValue], header: JWSHeader, _ expecting: IDTokenExpectations) -> IDTokenPolicyResult {
        guard let atHash = claims["at_hash"] else { return .meets }
        guard let expected = atHash.stringValue, let accessToken = expecting.accessToken else {
            return .fails("IDTokenAccessTokenHash: at_hash without an access token")
        }
        let bytes = Array(accessToken.utf8)
        let digest: [UInt8]
        switch header.alg {
        case .RS256, .PS256, .ES256: digest = Array(SHA256.hash(data: bytes))
        case .RS384, .PS384, .ES384: digest = Array(SHA384.hash(data: bytes))
        case .RS512, .PS512: digest = Array(SHA512.hash(data: bytes))
        // OpenID Connect leaves EdDSA's hash to the curve: SHA-512 for Ed25519.
        case .EdDSA: digest = Array(SHA512.hash(data: bytes))
        }
        let half = Base64URL.encode(Array(digest.prefix(digest.count / 2)))
        return Secrets.constantTimeEquals(Array(half.utf8), Array(expected.utf8))
            ? .meets : .fails("IDTokenAccessTokenHash: at_hash differs")
    }
}

/// `sub` present and bounded (§2: at most 255 ASCII characters).
struct IDTokenSubjectPolicy: IDTokenPolicy {
    func check(_ claims: [String: JSONValue], header: JWSHeader, _ expecting: IDTokenExpectations) -> IDTokenPolicyResult {
        guard let sub = claims["sub"]?.stringValue, !sub.isEmpty, sub.utf8.count <= 255 else {
            return .fails("IDTokenSubject: sub missing or too long")
        }
        return .meets
    }
}
