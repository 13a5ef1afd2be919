public import Foundation

/// Token type identifiers (RFC 8693 §3) the broker knows.
public enum TokenTypeIdentifier: String, Sendable, Codable, CaseIterable {
    case accessToken = "urn:ietf:params:oauth:token-type:access_token"
    case refreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
    case idToken = "urn:ietf:params:oauth:token-type:id_token"
    case saml2 = "urn:ietf:params:oauth:token-type:saml2"
    case jwt = "urn:ietf:params:oauth:token-type:jwt"

    /// The last segment (`access_token`, `jwt`…), as policies name them.
    public var shortName: String { String(rawValue.split(separator: ":").last!) }

    /// Accepts the URN or its short name.
    public init?(naming text: String) {
        if let exact = TokenTypeIdentifier(rawValue: text) {
            self = exact
        } else if let short = Self.allCases.first(where: { $0.shortName == text }) {
            self = short
        } else {
            return nil
        }
    }
}

/// An external issuer whose JWTs a tenant accepts as subject or actor tokens: workload identity
/// federation (a Kubernetes service-account token or a CI system's OIDC token becomes a service
/// identity). Bound to exactly one tenant.
public struct WorkloadIssuer: Sendable, Hashable, Codable {
    public let id: String
    public let tenantID: TenantID
    /// Compared exactly with the token's `iss`.
    public let issuer: String
    /// The issuer's keys as stored: its public JWKS as JSON text, or `{"jwks_uri": URL}` for keys
    /// fetched (and refreshed) from the issuer (`keySource` reads it).
    public let jwks: String
    /// The token's `aud` must contain this value.
    public let audience: String
    /// Globs (`*` = any run of characters) of which the token's `sub` must match one; empty = any.
    public let subjectPatterns: [String]
    /// Claim name to glob; each named claim must be a string matching it.
    public let claimConditions: [String: String]
    /// What an identity from this issuer may hold: the ceiling for scopes exchanged from its tokens.
    public let scopes: ScopeSet
    public let createdAt: Date

    public init(
        id: String, tenantID: TenantID, issuer: String, jwks: String, audience: String, subjectPatterns: [String],
        claimConditions: [String: String], scopes: ScopeSet, createdAt: Date
    ) {
        self.id = id
        self.tenantID = tenantID
        self.issuer = issuer
        self.jwks = jwks
        self.audience = audience
        self.subjectPatterns = subjectPatterns
        self.claimConditions = claimConditions
        self.scopes = scopes
        self.createdAt = createdAt
    }

    /// Where the verification keys come from.
    public enum KeySource: Sendable, Equatable {
        /// A JWKS given when the issuer was trusted.
        case inline(String)
        /// The issuer's `jwks_uri` (given, or found by discovery), fetched and cached.
        case remote(URL)
    }

    public var keySource: KeySource {
        if let data = jwks.data(using: .utf8), jwks.hasPrefix("{\"jwks_uri\""),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object.count == 1,
            let text = object["jwks_uri"] as? String, let url = URL(string: text)
        {
            return .remote(url)
        }
        return .inline(jwks)
    }

    /// The stored form of a remote key source.
    public static func remoteJWKS(_ url: URL) -> String {
        let escaped = url.absoluteString.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "{\"jwks_uri\":\"\(escaped)\"}"
    }

    /// The same rule with `jwks` as its keys (a fetched remote JWKS, for the verifier).
    public func with(jwks text: String) -> WorkloadIssuer {
        WorkloadIssuer(
            id: id, tenantID: tenantID, issuer: issuer, jwks: text, audience: audience, subjectPatterns: subjectPatterns,
            claimConditions: claimConditions, scopes: scopes, createdAt: createdAt)
    }
}

/// One version of a tenant's policy document, as stored. Versions only grow; the audit record of
/// every decision names the version that decided.
public struct StoredPolicy: Sendable, Hashable {
    public let tenantID: TenantID
    public let version: Int64
    /// Canonical JSON text of the document.
    public let document: String
    public let createdAt: Date

    public init(tenantID: TenantID, version: Int64, document: String, createdAt: Date) {
        self.tenantID = tenantID
        self.version = version
        self.document = document
        self.createdAt = createdAt
    }
}

/// A refresh-token family (RFC 6749 §6, rotated on every use): what every token refreshed from it
/// may carry at most. The family is also a node of the lineage, a child of the token it was
/// exchanged from, so revoking that token, or the family, cuts off every access token it minted.
public struct RefreshFamily: Sendable, Hashable {
    public let familyID: String
    public let tenantID: TenantID
    public let clientID: String
    public let subject: String
    public let subjectType: String
    public let scopes: ScopeSet
    public let audience: [String]
    /// The `act` claim as canonical JSON text, nil without delegation.
    public let actClaim: String?
    /// RFC 7638 thumbprint of the DPoP key the family is bound to (RFC 9449 §5), nil if unbound.
    public let jkt: String?
    /// What the policy decided on, as canonical JSON, so every refresh is decided again.
    public let policyFacts: String
    /// The token exchanged from, nil when it is not one of ours.
    public let parentJTI: String?
    public let issuedAt: Date
    /// Absolute: rotation never extends a family.
    public let expiresAt: Date

    public init(
        familyID: String, tenantID: TenantID, clientID: String, subject: String, subjectType: String, scopes: ScopeSet,
        audience: [String], actClaim: String?, jkt: String?, policyFacts: String, parentJTI: String?, issuedAt: Date, expiresAt: Date
    ) {
        self.familyID = familyID
        self.tenantID = tenantID
        self.clientID = clientID
        self.subject = subject
        self.subjectType = subjectType
        self.scopes = scopes
        self.audience = audience
        self.actClaim = actClaim
        self.jkt = jkt
        self.policyFacts = policyFacts
        self.parentJTI = parentJTI
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }
}

/// One refresh token of a family: only its SHA-256 is ever stored.
public struct RefreshTokenRecord: Sendable, Hashable {
    public let hash: [UInt8]
    public let familyID: String
    public let issuedAt: Date

    public init(hash: [UInt8], familyID: String, issuedAt: Date) {
        self.hash = hash
        self.familyID = familyID
        self.issuedAt = issuedAt
    }
}

/// What the store found for a presented refresh token.
public struct RefreshLookup: Sendable, Hashable {
    public let family: RefreshFamily
    /// Already exchanged for a newer one: presenting it again is reuse.
    public let used: Bool
    /// The family was revoked (directly, through its parent, or after a reuse).
    public let familyRevoked: Bool

    public init(family: RefreshFamily, used: Bool, familyRevoked: Bool) {
        self.family = family
        self.used = used
        self.familyRevoked = familyRevoked
    }
}

public enum RefreshRotation: Sendable, Equatable {
    /// The presented token is now used; the next one and the new access token are recorded.
    case rotated
    /// The presented token had been used before: the family and every token from it are revoked.
    case reused(revoked: [String])
    /// Unknown, expired, or of a revoked family: nothing was written.
    case inactive
}

/// A person's sign-in token from the tenant's own IdP, used as an RFC 8693 subject token: an
/// `id_token` from its OpenID Provider or a `saml2` assertion from its SAML IdP. Implemented by
/// the sign-in module, which holds those IdPs; the token service only asks.
public protocol ExternalSubjectVerifier: Sendable {
    func verify(_ token: String, type: TokenTypeIdentifier, tenant: TenantID, now: Date) async throws(ExternalSubjectRefusal) -> ExternalSubject
}

/// Who an IdP token names, normalized (`oidc|…`, `saml|…`), and until when it may be relied on.
public struct ExternalSubject: Sendable, Equatable {
    public let issuer: String
    public let subject: String
    public let expiresAt: Date

    public init(issuer: String, subject: String, expiresAt: Date) {
        self.issuer = issuer
        self.subject = subject
        self.expiresAt = expiresAt
    }
}

public enum ExternalSubjectRefusal: Error, Sendable, Equatable {
    /// Not acceptable; the reason names the check, never the token's content.
    case invalid(String)
    /// The IdP or the store could not be reached: 503, not a refusal.
    case unavailable(String)
}
