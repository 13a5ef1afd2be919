public import Foundation
import Synchronization
public import TesseraClaims
public import TesseraCore
public import TesseraJOSE
public import TesseraOIDC
public import TesseraStore

/// Where the relying party's client credentials come from (the keys folder); a protocol so the
/// sign-in flow does not depend on how keys are stored.
public protocol RelyingPartySecrets: Sendable {
    func credentials(for provider: OIDCProviderConfig) throws -> RelyingPartyCredentials
}

/// Sign-in through a tenant's OpenID Provider (docs/sso-oidc.md): the login redirect with PKCE,
/// state and nonce sealed into a browser-bound cookie, and the callback's checks in order —
/// login cookie, state (once), provider error, code redemption, ID token, userinfo, claims — then
/// the shared completion (JIT user, session, audit). Every refusal is audited as `signin.failed`.
public final class OIDCSignIn: Sendable {
    public static let loginCookie = "tessera_oidc_login"
    static let method = "oidc"

    private let store: any TesseraStore
    private let transport: any OIDCTransport
    private let secrets: any RelyingPartySecrets
    private let sealer: CookieSealer
    public let service: SignInService
    private let brokerIssuer: String
    private let providers = Mutex<[String: UpstreamProvider]>([:])

    public init(
        store: any TesseraStore, transport: any OIDCTransport, secrets: any RelyingPartySecrets, sealer: CookieSealer,
        service: SignInService, brokerIssuer: String
    ) {
        self.store = store
        self.transport = transport
        self.secrets = secrets
        self.sealer = sealer
        self.service = service
        self.brokerIssuer = brokerIssuer
    }

    public func redirectURI(_ tenant: TenantID) -> String { "\(brokerIssuer)/sso/\(tenant.rawValue)/oidc/callback" }
    public func cookiePath(_ tenant: TenantID) -> String { "/sso/\(tenant.rawValue)/oidc" }

    public struct Redirect: Sendable {
        public let location: String
        /// The sealed login cookie's value.
        public let loginCookie: String
    }

    public func start(tenant: TenantID, returnTo text: String?, now: Date, traceID: String) async throws(OAuthError) -> Redirect {
        do throws(OAuthError) {
            let returnTo: ReturnTo
            if let text {
                guard let checked = ReturnTo(text) else {
                    throw OAuthError.invalidRequest("return_to must be a path on this site", reason: "ReturnTo: not a local path")
                }
                returnTo = checked
            } else {
                returnTo = .default
            }
            let (provider, party) = try await relyingParty(tenant)
            _ = provider
            let pending = PendingSignIn(
                tenantID: tenant, state: Secrets.randomToken(), nonce: Secrets.randomToken(), codeVerifier: PKCEPair().verifier,
                returnTo: returnTo, expiresAt: now.addingTimeInterval(PendingSignIn.lifetime))
            let url: URL
            do {
                url = try await party.authorizationURL(
                    state: pending.state, nonce: pending.nonce, pkce: PKCEPair(verifier: pending.codeVerifier), now: now)
            } catch {
                throw Self.refusal(error)
            }
            return Redirect(location: url.absoluteString, loginCookie: sealer.seal(pending.json, cookie: Self.loginCookie))
        } catch {
            throw await service.failed(error, tenant: tenant, via: Self.method, now: now, traceID: traceID)
        }
    }

    public func finish(
        tenant: TenantID, query: [String: String], loginCookie: String?, now: Date, traceID: String
    ) async throws(OAuthError)
        -> SignInService.Completed
    {
        let identity: NormalizedIdentity
        let pending: PendingSignIn
        do throws(OAuthError) {
            guard let loginCookie, let sealed = sealer.open(loginCookie, cookie: Self.loginCookie), let found = PendingSignIn(json: sealed)
            else {
                throw OAuthError.invalidRequest("the sign-in state is missing or expired", reason: "LoginCookie: missing or unreadable")
            }
            guard found.tenantID == tenant, found.expiresAt > now else {
                throw OAuthError.invalidRequest("the sign-in state is missing or expired", reason: "LoginCookie: other tenant or expired")
            }
            pending = found
            guard let state = query["state"], Secrets.constantTimeEquals(Array(state.utf8), Array(pending.state.utf8)) else {
                throw OAuthError.invalidRequest("the sign-in state does not match", reason: "State: missing or different")
            }
            let firstUse: Bool
            do {
                firstUse = try await store.replay.consume(
                    namespace: "oidc_state", id: pending.state, expiresAt: pending.expiresAt, now: now)
            } catch {
                throw OAuthError.unavailable(reason: "replay store: \(error)")
            }
            guard firstUse else { throw OAuthError.invalidRequest("this sign-in was already completed", reason: "State: replayed") }
            if let error = query["error"] {
                throw OAuthError(
                    .accessDenied, "the identity provider refused the sign-in",
                    reason: "ProviderError: \(String(error.filter { $0.isLetter || $0 == "_" }.prefix(40)))")
            }
            guard let code = query["code"], !code.isEmpty, code.utf8.count <= 2048 else {
                throw OAuthError.invalidRequest("the authorization code is missing", reason: "Code: missing")
            }
            let (provider, party) = try await relyingParty(tenant)
            let claims: [String: JSONValue]
            do {
                claims = try await party.redeem(code: code, pkce: PKCEPair(verifier: pending.codeVerifier), nonce: pending.nonce, now: now)
            } catch {
                throw Self.refusal(error)
            }
            do {
                identity = try OIDCClaimsMapper(provider: provider.config).identity(from: claims)
            } catch {
                throw OAuthError(.accessDenied, "the identity provider's claims are not acceptable", reason: "Claims: \(error.reason)")
            }
        } catch {
            throw await service.failed(error, tenant: tenant, via: Self.method, now: now, traceID: traceID)
        }
        let opened = try await service.complete(identity, via: Self.method, now: now, traceID: traceID)
        return SignInService.Completed(opened: opened, returnTo: pending.returnTo)
    }

    /// The public JWKS of the broker's client key for the tenant's provider (private_key_jwt).
    public func clientJWKS(tenant: TenantID) async throws(OAuthError) -> JSONValue {
        let (provider, _) = try await relyingParty(tenant)
        guard case .privateKeyJWT(let key)? = try? secrets.credentials(for: provider.config) else {
            throw OAuthError.invalidRequest("this tenant's provider does not use private_key_jwt")
        }
        return JWKS(keys: [key.publicJWK]).json
    }

    func relyingParty(_ tenant: TenantID) async throws(OAuthError) -> (UpstreamProvider, OIDCRelyingParty) {
        let config: OIDCProviderConfig?
        do {
            config = try await store.oidcProviders.get(tenant: tenant)
        } catch {
            throw .unavailable(reason: "provider read failed: \(error)")
        }
        guard let config else {
            throw OAuthError.invalidRequest("no OpenID provider is configured for this tenant", reason: "Provider: none for the tenant")
        }
        let provider = providers.withLock { cache in
            if let existing = cache[config.id], existing.config == config { return existing }
            let fresh = UpstreamProvider(config: config, transport: transport)
            cache[config.id] = fresh
            return fresh
        }
        let credentials: RelyingPartyCredentials
        do {
            credentials = try secrets.credentials(for: config)
        } catch {
            throw OAuthError(.serverError, "the provider's client credentials are unavailable", reason: "Credentials: \(error)")
        }
        return (provider, OIDCRelyingParty(provider: provider, credentials: credentials, redirectURI: redirectURI(tenant)))
    }

    /// The answer for each kind of upstream problem (docs/sso-oidc.md).
    static func refusal(_ problem: OIDCProblem) -> OAuthError {
        switch problem {
        case .codeRefused(let why): OAuthError(.invalidGrant, "the authorization code could not be redeemed", reason: why)
        case .untrusted(let why): OAuthError(.accessDenied, "the identity provider's answer is not acceptable", reason: why)
        case .unavailable(let why): .unavailable(reason: why, retryAfter: 5)
        case .discovery(let why): .unavailable(reason: "provider configuration: \(why)", retryAfter: 30)
        }
    }
}

extension OIDCSignIn {
    /// An `id_token` subject token (RFC 8693): issued by the tenant's OpenID Provider to the
    /// broker's client there (`aud`), verified as at the callback but without a nonce (no browser
    /// asked for it).
    public func subjectIdentity(idToken token: String, tenant: TenantID, now: Date) async throws(ExternalSubjectRefusal)
        -> (NormalizedIdentity, ExternalSubject)
    {
        let provider: UpstreamProvider
        do {
            (provider, _) = try await relyingParty(tenant)
        } catch {
            throw error.code == .temporarilyUnavailable ? .unavailable(error.reason) : .invalid("no usable OpenID Provider for the tenant")
        }
        let config = provider.config
        let verified: VerifiedIDToken
        do {
            verified = try await IDTokenVerifier().verify(
                token, provider: provider,
                expecting: IDTokenExpectations(issuer: config.issuer, clientID: config.clientID, nonce: nil, accessToken: nil, now: now))
        } catch {
            switch error {
            case .unavailable(let why), .discovery(let why): throw .unavailable(why)
            case .untrusted(let why), .codeRefused(let why): throw .invalid(why)
            }
        }
        guard let expiry = verified.claims["exp"]?.doubleValue else { throw .invalid("IDTokenExpiry: exp missing") }
        let identity: NormalizedIdentity
        do {
            identity = try OIDCClaimsMapper(provider: config).identity(from: verified.claims)
        } catch {
            throw .invalid("Claims: \(error.reason)")
        }
        return (identity, ExternalSubject(issuer: config.issuer, subject: identity.subject, expiresAt: Date(timeIntervalSince1970: expiry)))
    }
}

/// The tenant's own IdPs as the source of `id_token` and `saml2` subject tokens for token
/// exchange. A user disabled in the tenant is refused, as at sign-in.
public struct SignInSubjectTokens: ExternalSubjectVerifier {
    let oidc: OIDCSignIn
    let saml: SAMLSignIn
    let users: any UserStore
    let tokenEndpoint: String

    public init(oidc: OIDCSignIn, saml: SAMLSignIn, users: any UserStore, tokenEndpoint: String) {
        self.oidc = oidc
        self.saml = saml
        self.users = users
        self.tokenEndpoint = tokenEndpoint
    }

    public func verify(_ token: String, type: TokenTypeIdentifier, tenant: TenantID, now: Date) async throws(ExternalSubjectRefusal)
        -> ExternalSubject
    {
        let identity: NormalizedIdentity
        let subject: ExternalSubject
        switch type {
        case .idToken: (identity, subject) = try await oidc.subjectIdentity(idToken: token, tenant: tenant, now: now)
        case .saml2: (identity, subject) = try await saml.subjectIdentity(assertion: token, tenant: tenant, tokenEndpoint: tokenEndpoint, now: now)
        default: throw .invalid("not a sign-in token type")
        }
        let user: User?
        do {
            user = try await users.get(tenant: tenant, subject: identity.subject)
        } catch {
            throw .unavailable("user read failed: \(error)")
        }
        guard user?.isDisabled != true else { throw .invalid("UserEnabled: the user is disabled in the tenant") }
        return subject
    }
}
