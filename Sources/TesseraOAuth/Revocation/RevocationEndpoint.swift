public import Foundation
public import TesseraCore
public import TesseraStore

/// `POST /oauth2/revoke` (RFC 7009).
///
/// A client revokes tokens issued to it; the token and every token exchanged from it become
/// inactive at once. An invalid, expired, unknown or other-tenant token is answered 200 with
/// nothing done (§2.2), so the endpoint cannot be used to probe for tokens. A token of the same
/// tenant but another client is refused (§2.1) with `unauthorized_client`.
public struct RevocationEndpoint: Sendable {
    private let authenticator: ClientAuthenticator
    private let verifier: AccessTokenVerifier
    private let store: any TesseraStore
    private let audit: AuditTrail
    private let clock: any WallClock

    public init(authenticator: ClientAuthenticator, verifier: AccessTokenVerifier, store: any TesseraStore, clock: any WallClock) {
        self.authenticator = authenticator
        self.verifier = verifier
        self.store = store
        self.audit = AuditTrail(store: store.audit)
        self.clock = clock
    }

    public func handle(_ request: TokenRequest) async throws(OAuthError) {
        let now = clock.now
        let caller = try await authenticator.authenticatedCaller(of: request, audit: audit, now: now)
        guard let token = request.form["token"] else {
            throw await audit.refusal(
                .invalidRequest("token is missing"), action: "token.revoked", tenant: caller.tenantID.rawValue,
                clientID: caller.clientID, traceID: request.traceID, now: now)
        }
        // RFC 7009 §2.1: the hint is optional; an opaque token (no JWS dots) can only be a refresh token.
        let target = token.contains(".") ? accessTokenTarget(token, now: now) : try await refreshFamilyTarget(token, now: now)
        guard let target else {
            // RFC 7009 §2.2: an invalid token is not an error for the caller.
            try await audit.record(
                event(
                    caller, outcome: .success, reason: "nothing to revoke: token invalid or expired", jti: nil, request: request, now: now))
            return
        }
        guard target.tenantID == caller.tenantID else {
            try await audit.record(
                event(caller, outcome: .success, reason: "nothing to revoke: token unknown here", jti: nil, request: request, now: now))
            return
        }
        guard target.clientID == caller.clientID else {
            throw await audit.refusal(
                .unauthorizedClient(reason: "\(target.kind) was issued to another client"), action: "token.revoked",
                tenant: caller.tenantID.rawValue, clientID: caller.clientID, traceID: request.traceID, now: now)
        }
        do {
            let outcome = try await store.tokens.revoke(
                jti: target.jti, tenant: caller.tenantID, at: now,
                audit: event(
                    caller, outcome: .success, reason: "\(target.kind) revoked by its client", jti: target.jti, request: request, now: now))
            // The store writes the audit record only when it revoked something.
            let unchanged: String? =
                switch outcome {
                case .revoked: nil
                case .alreadyRevoked: "already revoked"
                case .unknown: "nothing to revoke: not recorded"
                }
            if let unchanged {
                try await audit.record(event(caller, outcome: .success, reason: unchanged, jti: target.jti, request: request, now: now))
            }
        } catch let error as OAuthError {
            throw error
        } catch {
            throw .unavailable(reason: "revocation failed: \(error)")
        }
    }

    /// What a presented token would revoke: its lineage root and whose it is.
    private struct Target {
        let jti: String
        let tenantID: TenantID
        let clientID: String
        let kind: String
    }

    private func accessTokenTarget(_ token: String, now: Date) -> Target? {
        guard let verified = try? verifier.verifySignature(token, now: now) else { return nil }
        return Target(jti: verified.jti, tenantID: verified.tenantID, clientID: verified.clientID, kind: "access token")
    }

    /// A refresh token stands for its family: revoking it revokes every access token refreshed from it.
    private func refreshFamilyTarget(_ token: String, now: Date) async throws(OAuthError) -> Target? {
        guard token.utf8.count <= 256 else { return nil }
        let found: RefreshLookup?
        do {
            found = try await store.refreshTokens.lookup(hash: RefreshTokenGrant.hash(token), now: now)
        } catch {
            throw .unavailable(reason: "refresh token read failed: \(error)")
        }
        guard let family = found?.family else { return nil }
        return Target(jti: family.familyID, tenantID: family.tenantID, clientID: family.clientID, kind: "refresh family")
    }

    private func event(
        _ caller: OAuthClient, outcome: AuditEvent.Outcome, reason: String, jti: String?, request: TokenRequest, now: Date
    ) -> AuditEvent {
        AuditEvent(
            ts: now, tenant: caller.tenantID.rawValue, actor: .client(caller.clientID), clientID: caller.clientID,
            action: "token.revoked", outcome: outcome, reason: reason, jti: jti, traceID: request.traceID)
    }
}
