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
        var proof: VerifiedDPoPProof?
        do throws(OAuthError) {
            proof = try await dpop.confirm(
                proofs: request.dpopProofs, client: client, method: "POST", url: settings.tokenEndpoint, now: now)
            guard client.grantTypes.contains(grantType) else {
                throw OAuthError.unauthorizedClient(reason: "client is not registered for \(grantType.rawValue)")
            }
            decision = try await handler.decide(
                GrantContext(client: client, request: request, now: now, settings: settings, proof: proof))
            // Refresh families consume the proof on its own; a plain token consumes it in its commit.
            if let verified = proof, decision.refresh != nil { try await dpop.consume(verified, now: now) }
        } catch {
            guard error.code != .temporarilyUnavailable else { throw error }
            var refusal = error
            // A refused request still uses up its proof (a proof seen once is never good again);
            // a replayed one is refused as such, whatever else was wrong.
            if let verified = proof, error.code != .invalidDPoPProof {
                do throws(OAuthError) {
                    try await dpop.consume(verified, now: now)
                } catch let replay where replay.code == .invalidDPoPProof {
                    refusal = replay
                } catch {
                    throw error
                }
            }
            throw await audit.refusal(
                refusal, action: "token.denied", tenant: client.tenantID.rawValue, clientID: client.clientID,
                requestedScopes: requestedScopes, traceID: request.traceID, now: now)
        }

        // Phase 6: mint. Phase 7: record the token (and a refresh token) with its audit record in one commit.
        let refreshFamilyID: String? =
            switch decision.refresh {
            case .startFamily: "rf_" + Secrets.timeOrderedID(now: now)
            case .rotate(_, let family): family.familyID
            case nil: nil
            }
        let minted = try minter.mint(decision, client: client, now: now, confirmation: proof?.jkt, parentJTI: refreshFamilyID)
        let event = AuditEvent(
            ts: now, tenant: client.tenantID.rawValue, actor: .client(client.clientID), clientID: client.clientID,
            action: decision.auditAction, outcome: .success, reason: grantType.rawValue, jti: minted.record.jti,
            scopes: .init(requested: requestedScopes, granted: decision.scopes.strings),
            resource: decision.audience.joined(separator: " "), traceID: request.traceID, decision: decision.decision)
        let refreshToken = try await record(
            minted, decision: decision, familyID: refreshFamilyID, proof: proof, event: event, request: request)

        // Phase 8: respond.
        return TokenResponse(
            accessToken: minted.token, tokenType: proof == nil ? "Bearer" : "DPoP", expiresIn: Int(decision.lifetime.rounded(.down)),
            scope: decision.scopes.isEmpty ? nil : decision.scopes.description, issuedTokenType: decision.issuedTokenType?.rawValue,
            refreshToken: refreshToken)
    }

    /// Phase 7. Returns the new refresh token, when one is issued.
    private func record(
        _ minted: AccessTokenMinter.Minted, decision: GrantDecision, familyID: String?, proof: VerifiedDPoPProof?, event: AuditEvent,
        request: TokenRequest
    ) async throws(OAuthError) -> String? {
        let client = minted.record.clientID
        let tenant = minted.record.tenantID.rawValue
        let now = event.ts
        do {
            switch decision.refresh {
            case nil:
                if let proof {
                    try await store.tokens.recordIssued(minted.record, audit: event, consuming: dpop.oneTimeUse(of: proof), now: now)
                } else {
                    try await store.tokens.recordIssued(minted.record, audit: event)
                }
                return nil
            case .startFamily(let lifetime, let facts):
                let refreshToken = Secrets.randomToken()
                let family = RefreshFamily(
                    familyID: familyID!, tenantID: minted.record.tenantID, clientID: client, subject: decision.subject,
                    subjectType: decision.subjectType.rawValue, scopes: decision.scopes, audience: decision.audience,
                    actClaim: decision.act.map { String(decoding: StrictJSON.serialize($0), as: UTF8.self) }, jkt: proof?.jkt,
                    policyFacts: facts, parentJTI: decision.parentJTI, issuedAt: minted.record.issuedAt,
                    expiresAt: minted.record.issuedAt.addingTimeInterval(lifetime))
                try await store.refreshTokens.recordIssued(
                    minted.record, family: family,
                    refresh: RefreshTokenRecord(hash: RefreshTokenGrant.hash(refreshToken), familyID: family.familyID, issuedAt: now),
                    audit: event)
                return refreshToken
            case .rotate(let presentedHash, let family):
                let refreshToken = Secrets.randomToken()
                let reuse = AuditEvent(
                    ts: now, tenant: tenant, actor: .client(client), clientID: client, action: "token.refresh_reused",
                    outcome: .denied, reason: "a rotated refresh token was presented again: family \(family.familyID) revoked",
                    jti: family.familyID, traceID: request.traceID)
                let outcome = try await store.refreshTokens.rotate(
                    presented: presentedHash,
                    next: RefreshTokenRecord(hash: RefreshTokenGrant.hash(refreshToken), familyID: family.familyID, issuedAt: now),
                    token: minted.record, at: now, audit: event, reuseAudit: reuse)
                switch outcome {
                case .rotated:
                    return refreshToken
                case .reused:
                    throw RefreshTokenGrant.invalid("reused refresh token; family revoked")
                case .inactive:
                    throw await audit.refusal(
                        RefreshTokenGrant.invalid("refresh token expired, revoked or unknown at rotation"), action: "token.denied",
                        tenant: tenant, clientID: client, traceID: request.traceID, now: now)
                }
            }
        } catch let error as OAuthError {
            throw error
        } catch StoreError.alreadyExists where proof != nil && decision.refresh == nil {
            throw await audit.refusal(
                DPoPBinding.replayed, action: "token.denied", tenant: tenant, clientID: client, traceID: request.traceID, now: now)
        } catch StoreError.conflict(let why) {
            throw await audit.refusal(
                .invalidRequest("the subject_token is no longer active", reason: "recording refused: \(why)"), action: "token.denied",
                tenant: tenant, clientID: client, traceID: request.traceID, now: now)
        } catch {
            throw .unavailable(reason: "recording the grant failed: \(error)")
        }
    }
}
