public import Foundation
import Synchronization
import TesseraClaims
public import TesseraCore
import TesseraJOSE
public import TesseraSAML
public import TesseraStore

/// The service provider's two key pairs (keys folder): one signs AuthnRequests, the other
/// receives encrypted assertions. Generated on first use.
public protocol SAMLServiceProviderKeys: Sendable {
    func signingCredentials() throws -> ServiceProviderCredentials
    func encryptionCredentials() throws -> ServiceProviderCredentials
}

/// Sign-in through a tenant's SAML IdP (docs/sso-saml.md): the signed AuthnRequest by
/// HTTP-Redirect with its ID sealed into a browser-bound cookie, and the ACS — the verifier's
/// ordered checks, then the one-time use of the request and of the assertion ID (shared store,
/// so a replay to another instance is caught), claims mapping, and the shared completion.
/// Every refusal is audited as `signin.failed` with the check that failed.
public final class SAMLSignIn: Sendable {
    public static let loginCookie = "tessera_saml_login"
    static let method = "saml"

    private let store: any TesseraStore
    private let keys: any SAMLServiceProviderKeys
    private let sealer: CookieSealer
    public let service: SignInService
    private let brokerIssuer: String
    let clockSkew: TimeInterval
    private let providers = Mutex<[String: ParsedProvider]>([:])
    private let material = Mutex<ServiceProviderMaterial?>(nil)

    struct ParsedProvider: Sendable {
        let record: SAMLProviderRecord
        let metadata: IdPMetadata
        let trust: IdPTrust
    }

    struct ServiceProviderMaterial: Sendable {
        let signing: ServiceProviderCredentials
        let encryption: ServiceProviderCredentials
        let decryptionKey: SAMLDecryptionKey
    }

    public init(
        store: any TesseraStore, keys: any SAMLServiceProviderKeys, sealer: CookieSealer, service: SignInService, brokerIssuer: String,
        clockSkew: TimeInterval = 60
    ) {
        self.store = store
        self.keys = keys
        self.sealer = sealer
        self.service = service
        self.brokerIssuer = brokerIssuer
        self.clockSkew = clockSkew
    }

    public func endpoints(_ tenant: TenantID) -> ServiceProviderEndpoints { ServiceProviderEndpoints(issuer: brokerIssuer, tenant: tenant) }
    public func cookiePath(_ tenant: TenantID) -> String { "/sso/\(tenant.rawValue)/saml" }

    /// The SP metadata of the tenant (only for a tenant with a SAML IdP).
    public func metadata(tenant: TenantID) async throws(OAuthError) -> String {
        let provider = try await provider(tenant, current: false)
        let material = try serviceProviderMaterial()
        return ServiceProviderMetadata.document(
            serviceProvider: endpoints(tenant), signing: material.signing, encryption: material.encryption,
            wantAssertionsSigned: provider.record.config.signedPart != .response)
    }

    public struct Redirect: Sendable {
        public let location: String
        public let loginCookie: String
    }

    public func start(tenant: TenantID, returnTo text: String?, now: Date, traceID: String) async throws(OAuthError) -> Redirect {
        do throws(OAuthError) {
            let provider = try await provider(tenant)
            let returnTo = try Self.returnTo(text, allowed: provider.record.config.returnToPrefixes)
            let material = try serviceProviderMaterial()
            let request = AuthnRequest(serviceProvider: endpoints(tenant), destination: provider.metadata.singleSignOnURL, now: now)
            let location: String
            do {
                location = try request.redirectURL(to: provider.metadata.singleSignOnURL, signingKey: material.signing.signingKey)
            } catch {
                throw OAuthError(.serverError, "the sign-in request cannot be signed", reason: "AuthnRequest: signing failed")
            }
            let pending = PendingSAMLSignIn(
                tenantID: tenant, requestID: request.id, returnTo: returnTo, expiresAt: now.addingTimeInterval(PendingSignIn.lifetime))
            return Redirect(location: location, loginCookie: sealer.seal(pending.json, cookie: Self.loginCookie))
        } catch {
            throw await service.failed(error, tenant: tenant, via: Self.method, now: now, traceID: traceID)
        }
    }

    public func finish(
        tenant: TenantID, samlResponse: String?, relayState: String?, loginCookie: String?, now: Date, traceID: String
    ) async throws(OAuthError) -> SignInService.Completed {
        let identity: NormalizedIdentity
        let returnTo: ReturnTo
        let verified: VerifiedAssertion
        do throws(OAuthError) {
            guard let samlResponse, !samlResponse.isEmpty else {
                throw OAuthError.invalidRequest("SAMLResponse is missing", reason: "Form: SAMLResponse missing")
            }
            let provider = try await provider(tenant)
            let config = provider.record.config
            // A login cookie of another tenant, or an expired one, is no pending request at all.
            let pending = loginCookie.flatMap { sealer.open($0, cookie: Self.loginCookie) }.flatMap(PendingSAMLSignIn.init(json:))
                .flatMap { $0.tenantID == tenant && $0.expiresAt > now ? $0 : nil }
            let verifier = SAMLResponseVerifier(
                serviceProvider: endpoints(tenant), decryptionKey: try serviceProviderMaterial().decryptionKey, clockSkew: clockSkew)
            do {
                verified = try verifier.verify(
                    encodedResponse: samlResponse, idp: provider.trust, pendingRequestID: pending?.requestID,
                    allowUnsolicited: config.allowIdPInitiated, now: now)
            } catch {
                throw Self.refusal(error)
            }
            if let answered = verified.inResponseTo, let pending {
                // One response per request, across instances.
                guard try await consume("saml_request", "\(tenant.rawValue)|\(answered)", until: pending.expiresAt, now: now) else {
                    throw Self.refusal(SAMLRefusal(.replay, "this sign-in request was already answered"))
                }
                returnTo = pending.returnTo
            } else {
                returnTo = (relayState.flatMap { try? Self.returnTo($0, allowed: config.returnToPrefixes) }) ?? .default
            }
            guard try await consume("saml_assertion", "\(config.id)|\(verified.assertionID)", until: verified.replayUntil, now: now) else {
                throw Self.refusal(SAMLRefusal(.replay, "this assertion was already used"))
            }
            do {
                identity = try SAMLClaimsMapper(provider: config).identity(from: verified.claims)
            } catch {
                throw OAuthError(.accessDenied, "the identity provider's attributes are not acceptable", reason: "Claims: \(error.reason)")
            }
        } catch {
            throw await service.failed(error, tenant: tenant, via: Self.method, now: now, traceID: traceID)
        }
        let opened = try await service.complete(
            identity, via: Self.method, now: now, traceID: traceID, notAfter: verified.sessionNotOnOrAfter)
        return SignInService.Completed(opened: opened, returnTo: returnTo)
    }

    // MARK: -

    func consume(_ namespace: String, _ id: String, until: Date, now: Date) async throws(OAuthError) -> Bool {
        do {
            return try await store.replay.consume(namespace: namespace, id: id, expiresAt: until, now: now)
        } catch {
            throw .unavailable(reason: "replay store: \(error)")
        }
    }

    /// The tenant's IdP with its metadata parsed once per stored version.
    /// `current`: refuse metadata past its validUntil (everything but serving the SP's own metadata).
    func provider(_ tenant: TenantID, current: Bool = true) async throws(OAuthError) -> ParsedProvider {
        let record: SAMLProviderRecord?
        do {
            record = try await store.samlProviders.get(tenant: tenant)
        } catch {
            throw .unavailable(reason: "SAML IdP read failed: \(error)")
        }
        guard let record else {
            throw OAuthError.invalidRequest("no SAML identity provider is configured for this tenant", reason: "Provider: none for the tenant")
        }
        let parsed: ParsedProvider
        if let cached = providers.withLock({ $0[record.config.id] }), cached.record == record {
            parsed = cached
        } else {
            do {
                // validUntil is checked below, at every use, not only when first parsed.
                let metadata = try IdPMetadata(xml: Array(record.metadata.utf8), now: Date.distantPast)
                let trust = try IdPTrust(metadata: metadata, signedPart: record.config.signedPart, allowSHA1: record.config.allowSHA1)
                parsed = ParsedProvider(record: record, metadata: metadata, trust: trust)
            } catch {
                throw OAuthError(.serverError, "the identity provider's stored metadata cannot be used", reason: "Metadata: \(error.reason)")
            }
            providers.withLock { $0[record.config.id] = parsed }
        }
        // Expired metadata is not trusted (SAML metadata §2.3.1): its keys may have been withdrawn.
        if current, let validUntil = parsed.metadata.validUntil, validUntil <= Date() {
            throw OAuthError(
                .accessDenied, "the identity provider's metadata has expired; refresh or re-import it",
                reason: "Metadata: validUntil has passed")
        }
        return parsed
    }

    private func serviceProviderMaterial() throws(OAuthError) -> ServiceProviderMaterial {
        if let ready = material.withLock({ $0 }) { return ready }
        do {
            let signing = try keys.signingCredentials()
            let encryption = try keys.encryptionCredentials()
            let made = ServiceProviderMaterial(
                signing: signing, encryption: encryption, decryptionKey: try SAMLDecryptionKey(privateKeyPEM: encryption.privateKeyPEM))
            material.withLock { $0 = made }
            return made
        } catch {
            throw OAuthError(.serverError, "the service provider keys are unavailable", reason: "SPKeys: \(error)")
        }
    }

    /// A local path under one of the tenant's allowed prefixes (whole path segments).
    static func returnTo(_ text: String?, allowed prefixes: [String]) throws(OAuthError) -> ReturnTo {
        guard let text else { return .default }
        guard let checked = ReturnTo(text) else {
            throw OAuthError.invalidRequest("return_to must be a path on this site", reason: "ReturnTo: not a local path")
        }
        let path = checked.path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? checked.path
        let allowed = prefixes.isEmpty || prefixes.contains { prefix in
            prefix == "/" || path == prefix || path.hasPrefix(prefix.hasSuffix("/") ? prefix : prefix + "/")
        }
        guard allowed else {
            throw OAuthError.invalidRequest("return_to is not on this tenant's allow-list", reason: "ReturnTo: not under an allowed prefix")
        }
        return checked
    }

    static func refusal(_ refusal: SAMLRefusal) -> OAuthError {
        refusal.isMalformed
            ? OAuthError.invalidRequest(refusal.reason, reason: refusal.description)
            : OAuthError(.accessDenied, refusal.reason, reason: refusal.description)
    }
}

/// A SAML sign-in in progress, bound to one browser by the sealed login cookie.
struct PendingSAMLSignIn: Sendable, Equatable {
    let tenantID: TenantID
    let requestID: String
    let returnTo: ReturnTo
    let expiresAt: Date

    var json: JSONValue {
        [
            "t": .string(tenantID.rawValue), "i": .string(requestID), "r": .string(returnTo.path),
            "e": .number(expiresAt.timeIntervalSince1970.rounded(.down)),
        ]
    }

    init(tenantID: TenantID, requestID: String, returnTo: ReturnTo, expiresAt: Date) {
        self.tenantID = tenantID
        self.requestID = requestID
        self.returnTo = returnTo
        self.expiresAt = expiresAt
    }

    init?(json: JSONValue) {
        guard let tenant = json["t"]?.stringValue.flatMap(TenantID.init), let id = json["i"]?.stringValue,
            let returnTo = json["r"]?.stringValue.flatMap(ReturnTo.init), let expiry = json["e"]?.doubleValue
        else { return nil }
        self.init(tenantID: tenant, requestID: id, returnTo: returnTo, expiresAt: Date(timeIntervalSince1970: expiry))
    }
}

extension SAMLSignIn {
    /// A `saml2` subject token (RFC 8693): an assertion of the tenant's IdP, checked as at the
    /// ACS but for the browser binding; its bearer confirmation may name the ACS or the token
    /// endpoint. Single use, shared with the ACS: an assertion that opened a session cannot also
    /// be exchanged, nor the other way round.
    public func subjectIdentity(
        assertion token: String, tenant: TenantID, tokenEndpoint: String, now: Date
    ) async throws(ExternalSubjectRefusal) -> (NormalizedIdentity, ExternalSubject) {
        let provider: ParsedProvider
        do {
            provider = try await self.provider(tenant)
        } catch {
            throw error.code == .temporarilyUnavailable ? .unavailable(error.reason) : .invalid("no usable SAML IdP for the tenant")
        }
        let config = provider.record.config
        let verifier = SAMLResponseVerifier(serviceProvider: endpoints(tenant), decryptionKey: nil, clockSkew: clockSkew)
        let verified: VerifiedAssertion
        do {
            verified = try verifier.verifyAssertion(
                encodedAssertion: token, idp: provider.trust, recipients: [endpoints(tenant).acsURL, tokenEndpoint], now: now)
        } catch {
            throw .invalid(error.description)
        }
        let firstUse: Bool
        do {
            firstUse = try await consume("saml_assertion", "\(config.id)|\(verified.assertionID)", until: verified.replayUntil, now: now)
        } catch {
            throw .unavailable(error.reason)
        }
        guard firstUse else { throw .invalid("Replay: this assertion was already used") }
        let identity: NormalizedIdentity
        do {
            identity = try SAMLClaimsMapper(provider: config).identity(from: verified.claims)
        } catch {
            throw .invalid("Claims: \(error.reason)")
        }
        return (identity, ExternalSubject(issuer: config.entityID, subject: identity.subject, expiresAt: verified.validUntil))
    }
}
