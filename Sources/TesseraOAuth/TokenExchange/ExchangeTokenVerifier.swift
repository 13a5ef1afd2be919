public import Foundation
public import TesseraCore
public import TesseraJOSE
public import TesseraStore

/// A subject or actor token (RFC 8693 §2.1) that passed its kind's verifier. Only
/// `ExchangeTokenVerifier` makes one.
public struct VerifiedExchangeToken: Sendable {
    public let type: TokenTypeIdentifier
    public let issuer: String
    public let subject: String
    public let subjectType: GrantDecision.SubjectType
    /// What the token lets its holder have: its `scope` claim, or a workload issuer's scopes;
    /// nil for a person's IdP token (`id_token`, `saml2`), which carries no scopes: then the
    /// client's registration and the policy alone bound the result.
    public let heldScopes: ScopeSet?
    public let expiresAt: Date
    /// Set for tokens this broker issued: the parent in the lineage.
    public let jti: String?
    /// RFC 8693 §4.1 / §4.4 claims, as carried.
    public let act: JSONValue?
    public let mayAct: JSONValue?
    /// RFC 9449 §6.1: the key a bound token is confirmed to.
    public let jkt: String?

    fileprivate init(
        type: TokenTypeIdentifier, issuer: String, subject: String, subjectType: GrantDecision.SubjectType, heldScopes: ScopeSet?,
        expiresAt: Date, jti: String?, act: JSONValue?, mayAct: JSONValue?, jkt: String?
    ) {
        self.type = type
        self.issuer = issuer
        self.subject = subject
        self.subjectType = subjectType
        self.heldScopes = heldScopes
        self.expiresAt = expiresAt
        self.jti = jti
        self.act = act
        self.mayAct = mayAct
        self.jkt = jkt
    }
}

/// Verifies the tokens a token-exchange request presents, by kind:
/// - `access_token`: one of ours (`AccessTokenVerifier.verify`: signature, expiry, not revoked,
///   client enabled), of the caller's tenant;
/// - `jwt`: from an issuer the caller's tenant trusts (`WorkloadTokenVerifier`); the trust rule is
///   looked up in the caller's tenant only, so a token can never cross tenants.
/// - `id_token`, `saml2`: a person's token from the tenant's own OpenID Provider or SAML IdP,
///   verified by the sign-in module (`ExternalSubjectVerifier`); subjects only, never actors.
///
/// Every failure is `invalid_request` (RFC 8693 §2.2.2) with a generic public text.
public struct ExchangeTokenVerifier: Sendable {
    public enum Role: String, Sendable { case subject = "subject_token", actor = "actor_token" }

    private let accessTokens: AccessTokenVerifier
    private let workload: WorkloadTokenVerifier
    private let trustedIssuers: any WorkloadIssuerStore
    private let external: (any ExternalSubjectVerifier)?
    private let remoteKeys: RemoteJWKS?
    /// This broker's issuer: the `iss` of its own tokens.
    public let issuer: String

    public init(
        accessTokens: AccessTokenVerifier, workload: WorkloadTokenVerifier, trustedIssuers: any WorkloadIssuerStore, issuer: String,
        external: (any ExternalSubjectVerifier)? = nil, remoteKeys: RemoteJWKS? = nil
    ) {
        self.remoteKeys = remoteKeys
        self.accessTokens = accessTokens
        self.workload = workload
        self.trustedIssuers = trustedIssuers
        self.issuer = issuer
        self.external = external
    }

    public func verify(
        _ token: String, typeText: String, role: Role, tenant: TenantID, now: Date
    ) async throws(OAuthError)
        -> VerifiedExchangeToken
    {
        func refuse(_ why: String) -> OAuthError {
            .invalidRequest("the \(role.rawValue) is invalid or not acceptable", reason: "\(role.rawValue): \(why)")
        }
        guard let type = TokenTypeIdentifier(rawValue: typeText) else {
            throw .invalidRequest("\(role.rawValue)_type is not a supported token type", reason: "\(role.rawValue)_type unknown")
        }
        guard token.utf8.count <= WorkloadTokenVerifier.maximumLength else { throw refuse("longer than 16 KiB") }
        switch type {
        case .accessToken:
            let verified: VerifiedAccessToken
            do {
                verified = try await accessTokens.verify(token, now: now)
            } catch let failure as AccessTokenVerifier.Failure {
                switch failure {
                case .invalid(let why), .inactive(let why): throw refuse("access token \(why)")
                }
            } catch {
                throw .unavailable(reason: "token store read failed: \(error)")
            }
            guard verified.tenantID == tenant else { throw refuse("access token of another tenant") }
            let claims = verified.claims
            let held: ScopeSet
            if let text = claims["scope"]?.stringValue {
                do { held = try ScopeSet(parsing: text) } catch { throw refuse("scope claim unreadable") }
            } else {
                held = ScopeSet([])
            }
            guard let sub = claims["sub"]?.stringValue else { throw refuse("access token without sub") }
            return VerifiedExchangeToken(
                type: type, issuer: issuer, subject: sub,
                subjectType: claims["sub_type"]?.stringValue.flatMap(GrantDecision.SubjectType.init) ?? .service, heldScopes: held,
                expiresAt: verified.expiresAt, jti: verified.jti, act: claims["act"], mayAct: claims["may_act"],
                jkt: claims["cnf"]?["jkt"]?.stringValue)
        case .jwt:
            guard let claimedIssuer = WorkloadTokenVerifier.unverifiedIssuer(of: token) else { throw refuse("not a JWT with an iss") }
            let trust: WorkloadIssuer?
            do {
                trust = try await trustedIssuers.find(tenant: tenant, issuer: claimedIssuer)
            } catch {
                throw .unavailable(reason: "trusted issuer read failed: \(error)")
            }
            guard var trust else { throw refuse("issuer not trusted by this tenant") }
            if case .remote(let url) = trust.keySource {
                guard let remoteKeys else { throw refuse("remote JWKS are not enabled on this server") }
                do throws(RemoteJWKS.Failure) {
                    trust = trust.with(jwks: try await remoteKeys.jwks(at: url, kid: WorkloadTokenVerifier.unverifiedKeyID(of: token), now: now))
                } catch {
                    switch error {
                    case .unavailable(let why): throw .unavailable(reason: why, retryAfter: 5)
                    case .unusable(let why): throw refuse(why)
                    }
                }
            }
            let verified: VerifiedWorkloadToken
            do throws(WorkloadTokenVerifier.Failure) {
                verified = try workload.verify(token, trust: trust, now: now)
            } catch {
                switch error {
                case .invalid(let why): throw refuse("JWT \(why)")
                }
            }
            return VerifiedExchangeToken(
                type: type, issuer: trust.issuer, subject: verified.subject, subjectType: .service, heldScopes: trust.scopes,
                expiresAt: verified.expiresAt, jti: nil, act: verified.claims["act"], mayAct: verified.claims["may_act"],
                jkt: verified.claims["cnf"]?["jkt"]?.stringValue)
        case .idToken, .saml2:
            guard role == .subject else { throw refuse("a person's \(type.shortName) cannot be an actor token") }
            guard let external else { throw refuse("\(type.shortName) subject tokens are not enabled on this server") }
            let verified: ExternalSubject
            do throws(ExternalSubjectRefusal) {
                verified = try await external.verify(token, type: type, tenant: tenant, now: now)
            } catch {
                switch error {
                case .invalid(let why): throw refuse("\(type.shortName) \(why)")
                case .unavailable(let why): throw .unavailable(reason: "\(type.shortName) verification: \(why)")
                }
            }
            return VerifiedExchangeToken(
                type: type, issuer: verified.issuer, subject: verified.subject, subjectType: .user, heldScopes: nil,
                expiresAt: verified.expiresAt, jti: nil, act: nil, mayAct: nil, jkt: nil)
        case .refreshToken:
            throw refuse("a refresh token is not exchanged; use grant_type=refresh_token")
        }
    }
}
