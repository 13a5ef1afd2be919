import Crypto
public import Foundation
public import TesseraCore
public import TesseraJOSE
public import TesseraPolicy
public import TesseraStore

/// RFC 6749 §6 refresh, for families started by a token exchange whose policy rule allows them.
///
/// Order of checks, refusing on the first failure with `invalid_grant`:
/// 1. the token is known, unexpired, of this client (§6: bound to the client it was issued to);
/// 2. a token already used goes straight to rotation, where the store revokes its whole family
///    (RFC 9700 §4.14.2) — whoever presents it, since either the holder or a thief is replaying;
/// 3. the family is not revoked;
/// 4. a family bound to a DPoP key refreshes only with a proof by that key (RFC 9449 §5);
/// 5. `scope` only narrows what the family holds;
/// 6. the tenant's current policy allows it again, on the facts recorded when the family began.
/// The rotation itself (used-once, next token, new access token, audit) is one commit in the
/// token endpoint's record phase.
public struct RefreshTokenGrant: GrantHandler {
    public let grantType = GrantType.refreshToken

    private let store: any RefreshTokenStore
    private let policies: ExchangePolicySource

    public init(store: any RefreshTokenStore, policies: ExchangePolicySource) {
        self.store = store
        self.policies = policies
    }

    public static func hash(_ token: String) -> [UInt8] { Array(SHA256.hash(data: Array(token.utf8))) }

    public func decide(_ context: GrantContext) async throws(OAuthError) -> GrantDecision {
        guard let presented = context.request.form["refresh_token"] else { throw .invalidRequest("refresh_token is missing") }
        guard presented.utf8.count <= 256 else { throw Self.invalid("refresh token too long") }
        let hash = Self.hash(presented)
        let found: RefreshLookup?
        do {
            found = try await store.lookup(hash: hash, now: context.now)
        } catch {
            throw .unavailable(reason: "refresh token read failed: \(error)")
        }
        guard let found else { throw Self.invalid("unknown or expired refresh token") }
        let family = found.family
        guard family.clientID == context.client.clientID, family.tenantID == context.client.tenantID else {
            throw Self.invalid("refresh token of another client")
        }
        var decision = GrantDecision(
            subject: family.subject, subjectType: GrantDecision.SubjectType(rawValue: family.subjectType) ?? .service,
            scopes: family.scopes, audience: family.audience, lifetime: 1, parentJTI: family.familyID)
        decision.refresh = .rotate(presentedHash: hash, family: family)
        decision.auditAction = "token.refreshed"
        if found.used { return decision }
        guard !found.familyRevoked else { throw Self.invalid("the refresh token's family is revoked") }

        if let jkt = family.jkt, context.proof?.jkt != jkt {
            throw OAuthError(
                .invalidDPoPProof, "the refresh token is bound to a DPoP key the request does not prove",
                reason: "refresh family is DPoP-bound; proof \(context.proof == nil ? "missing" : "by another key")")
        }
        var scopes = family.scopes
        if let text = context.request.form["scope"] {
            let requested: ScopeSet
            do { requested = try ScopeSet(parsing: text) } catch { throw .invalidScope(reason: error.description) }
            let beyond = family.scopes.uncovered(requested)
            guard beyond.isEmpty else { throw .invalidScope(reason: "refresh may only narrow; not held: \(ScopeSet(beyond))") }
            scopes = requested
        }
        let facts: ExchangeFacts
        do {
            guard let stored = ExchangeFacts(json: try StrictJSON.parse(Array(family.policyFacts.utf8)), defaultScopes: family.scopes)
            else { throw Self.invalid("stored facts unreadable") }
            facts = stored.asking(scopes, dpop: context.proof != nil)
        } catch {
            throw Self.invalid("stored facts unreadable")
        }
        let policyDecision = try await policies.evaluator(for: context.client.tenantID).decide(facts)
        guard let grant = policyDecision.grant else {
            var refusal = Self.invalid("the exchange policy no longer allows this family: \(policyDecision.reason)")
            refusal.decision = policyDecision.explanationText
            throw refusal
        }
        let lifetime = min(
            context.settings.accessTokenLifetime, grant.maxLifetime ?? .infinity, family.expiresAt.timeIntervalSince(context.now)
        ).rounded(.down)
        guard lifetime >= 1 else { throw Self.invalid("the family expires too soon") }

        var result = GrantDecision(
            subject: family.subject, subjectType: decision.subjectType, scopes: scopes, audience: family.audience, lifetime: lifetime,
            parentJTI: family.familyID)
        result.act = try family.actClaim.map { text throws(OAuthError) in
            do { return try StrictJSON.parse(Array(text.utf8)) } catch { throw Self.invalid("stored act unreadable") }
        }
        result.refresh = decision.refresh
        result.auditAction = decision.auditAction
        result.decision = policyDecision.explanationText
        return result
    }

    static func invalid(_ reason: String) -> OAuthError {
        OAuthError(.invalidGrant, "the refresh token is invalid, expired or revoked", reason: reason)
    }
}
