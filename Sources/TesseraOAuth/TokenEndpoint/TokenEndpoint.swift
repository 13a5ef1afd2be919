public import Foundation
public import TesseraCore
public import TesseraJOSE
public import TesseraStore

/// `POST /oauth2/token` (RFC 6749 §3.2) as a fixed sequence of phases that no grant can skip:
/// parse → authenticate the client → verify DPoP → check the client may use the grant → the
/// grant handler decides → mint (bound to the DPoP key when there is one) → record and audit in
/// one commit → respond.
///
/// Every refusal after parsing is audited with its precise reason; the caller only sees the
/// generic public description.
public struct TokenEndpoint: Sendable {
    private let settings: BrokerSettings
    private let store: any TesseraStore
    private let authenticator: ClientAuthenticator
    private let handlers: [GrantType: any GrantHandler]
    private let minter: AccessTokenMinter
    private let dpop: DPoPBinding
    private let audit: AuditTrail
    private let clock: any WallClock

    public init(
        settings: BrokerSettings, store: any TesseraStore, authenticator: ClientAuthenticator, handlers: [any GrantHandler],
        minter: AccessTokenMinter, dpop: DPoPBinding, clock: any WallClock
    ) {
        self.settings = settings
        self.store = store
        self.authenticator = authenticator
        self.handlers = Dictionary(uniqueKeysWithValues: handlers.map { ($0.grantType, $0) })
        self.minter = minter
        self.dpop = dpop
        self.audit = AuditTrail(store: store.audit)
        self.clock = clock
    }

    /// The grant types this endpoint serves, for metadata.
    public var grantTypes: [GrantType] { handlers.keys.sorted { $0.rawValue < $1.rawValue } }

    public func handle(_ request: TokenRequest) async throws(OAuthError) -> TokenResponse {
        let now = clock.now
        // As asked, for the audit record: bounded, since it is read before the scope is validated.
        let requestedScopes =
            request.form["scope"].map { text in
                text.split(separator: " ").prefix(ScopeSet.maximumCount).map { String($0.prefix(Scope.maximumLength)) }
            } ?? []

        // Phase 1: parse.
        guard let grantText = request.form["grant_type"] else {
            throw .invalidRequest("grant_type is missing")
        }
        guard let grantType = GrantType(rawValue: grantText), let handler = handlers[grantType] else {
            throw OAuthError(.unsupportedGrantType, "the grant type is not supported")
        }

        // Phase 2: authenticate the client.
        let client = try await authenticator.authenticatedCaller(of: request, audit: audit, now: now)

        // Phases 3–5: DPoP; the client may use this grant; the handler decides.
        let decision: GrantDecision
        let proof: VerifiedDPoPProof?
        do throws(OAuthError) {
            proof = try await dpop.confirm(
                proofs: request.dpopProofs, client: client, method: "POST", url: settings.tokenEndpoint, now: now)
            guard client.grantTypes.contains(grantType) else {
                throw OAuthError.unauthorizedClient(reason: "client is not registered for \(grantType.rawValue)")
            }
            decision = try await handler.decide(GrantContext(client: client, request: request, now: now, settings: settings))
        } catch {
            guard error.code != .temporarilyUnavailable else { throw error }
            throw await audit.refusal(
                error, action: "token.denied", tenant: client.tenantID.rawValue, clientID: client.clientID,
                requestedScopes: requestedScopes, traceID: request.traceID, now: now)
        }

        // Phase 6: mint. Phase 7: record the token and its audit record in one commit.
        let minted = try minter.mint(decision, client: client, now: now, confirmation: proof?.jkt)
        let event = AuditEvent(
            ts: now, tenant: client.tenantID.rawValue, actor: .client(client.clientID), clientID: client.clientID,
            action: "token.issued", outcome: .success, reason: grantType.rawValue, jti: minted.record.jti,
            scopes: .init(requested: requestedScopes, granted: decision.scopes.strings),
            resource: decision.audience.joined(separator: " "), traceID: request.traceID)
        do {
            try await store.tokens.recordIssued(minted.record, audit: event)
        } catch {
            throw .unavailable(reason: "recording the grant failed: \(error)")
        }

        // Phase 8: respond.
        return TokenResponse(
            accessToken: minted.token, tokenType: proof == nil ? "Bearer" : "DPoP", expiresIn: Int(decision.lifetime.rounded(.down)),
            scope: decision.scopes.isEmpty ? nil : decision.scopes.description, issuedTokenType: nil)
    }
}
