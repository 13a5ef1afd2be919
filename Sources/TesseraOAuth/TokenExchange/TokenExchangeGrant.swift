public import Foundation
public import TesseraCore
public import TesseraJOSE
public import TesseraPolicy
import TesseraStore

/// RFC 8693 token exchange: a client trades a subject token (and optionally an actor token) for a
/// narrower, shorter-lived token for one audience.
///
/// Order of checks, refusing on the first failure:
/// 1. parameters (§2.1): `subject_token` and its type; `actor_token` and its type together;
///    `requested_token_type` only `access_token`; `resource` absolute URIs without fragment
///    (RFC 8707 §2); bounded `audience` values; `scope` syntax;
/// 2. the subject token, then the actor token, by kind (`ExchangeTokenVerifier`), in the caller's
///    tenant;
/// 3. possession: a token bound to a DPoP key is exchanged only with a proof by that key;
/// 4. delegation integrity: a subject carrying `act` needs an actor (the chain is never dropped);
///    the subject's `may_act` (§4.4), when present, names the actor (the client itself when there
///    is no actor token);
/// 5. narrowing: every requested scope covered by the subject's scopes and the client's
///    registration;
/// 6. the tenant's exchange policy (deny by default), whose explanation goes to the audit record;
/// 7. lifetime: the minimum of the broker default, the rule's ceiling and what is left of the
///    subject and actor tokens.
public struct TokenExchangeGrant: GrantHandler {
    public let grantType = GrantType.tokenExchange
    static let maximumAudiences = 16
    static let maximumActDepth = 8

    private let tokens: ExchangeTokenVerifier
    private let policies: ExchangePolicySource

    public init(tokens: ExchangeTokenVerifier, policies: ExchangePolicySource) {
        self.tokens = tokens
        self.policies = policies
    }

    public func decide(_ context: GrantContext) async throws(OAuthError) -> GrantDecision {
        let form = context.request.form
        let client = context.client
        let now = context.now

        // 1. Parameters.
        guard let subjectToken = form["subject_token"] else { throw .invalidRequest("subject_token is missing") }
        guard let subjectType = form["subject_token_type"] else { throw .invalidRequest("subject_token_type is missing") }
        let actorToken = form["actor_token"]
        let actorType = form["actor_token_type"]
        guard (actorToken == nil) == (actorType == nil) else {
            throw .invalidRequest("actor_token and actor_token_type go together", reason: "RFC 8693 §2.1: one without the other")
        }
        if let requested = form["requested_token_type"], requested != TokenTypeIdentifier.accessToken.rawValue {
            throw .invalidRequest("requested_token_type is not supported", reason: "only access tokens are issued by exchange")
        }
        let resources = form.all("resource")
        let audiences = form.all("audience")
        guard resources.count + audiences.count <= Self.maximumAudiences else {
            throw OAuthError(.invalidTarget, "too many audiences or resources")
        }
        for resource in resources where !ResourceIndicator.isValid(resource) {
            throw OAuthError(.invalidTarget, "a resource is not an absolute URI without a fragment", reason: "RFC 8707 §2")
        }
        for audience in audiences where audience.utf8.count > 512 || audience.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw OAuthError(.invalidTarget, "an audience value is malformed")
        }
        var requestedScopes: ScopeSet?
        if let text = form["scope"] {
            do { requestedScopes = try ScopeSet(parsing: text) } catch { throw .invalidScope(reason: error.description) }
        }

        // 2. Subject, then actor.
        let subject = try await tokens.verify(subjectToken, typeText: subjectType, role: .subject, tenant: client.tenantID, now: now)
        var actor: VerifiedExchangeToken?
        if let actorToken, let actorType {
            actor = try await tokens.verify(actorToken, typeText: actorType, role: .actor, tenant: client.tenantID, now: now)
        }

        // 3. Possession of bound tokens.
        for (role, token) in [("subject_token", subject), ("actor_token", actor)] {
            guard let jkt = token?.jkt else { continue }
            guard context.proof?.jkt == jkt else {
                throw .invalidRequest(
                    "the \(role) is bound to a key the request does not prove",
                    reason: "\(role) is DPoP-bound; the request's proof is \(context.proof == nil ? "missing" : "by another key")")
            }
        }

        // 4. Delegation integrity.
        if subject.act != nil, actor == nil {
            throw .invalidRequest(
                "the subject_token carries a delegation chain; an actor_token is required",
                reason: "exchanging without an actor would drop the subject's act chain")
        }
        if let mayAct = subject.mayAct {
            // RFC 8693 §4.4. Without an actor token the requesting client itself acts for the
            // subject (impersonation), so it is the one `may_act` must name.
            let acting = actor.map { (sub: $0.subject, iss: $0.issuer) } ?? (sub: client.clientID, iss: tokens.issuer)
            guard let allowed = mayAct["sub"]?.stringValue, allowed == acting.sub,
                mayAct["iss"].map({ $0.stringValue == acting.iss }) ?? true
            else {
                throw .invalidRequest(
                    "the actor is not allowed to act for the subject",
                    reason: "may_act does not name \(actor == nil ? "the client" : "the actor")")
            }
        }
        var act: JSONValue?
        if let actor {
            if let prior = subject.act, Self.depth(of: prior) >= Self.maximumActDepth {
                throw .invalidRequest("the delegation chain is too long")
            }
            var claim: [String: JSONValue] = ["sub": .string(actor.subject)]
            if actor.type != .accessToken { claim["iss"] = .string(actor.issuer) }
            if let prior = subject.act { claim["act"] = prior }
            act = .object(claim)
        }

        // 5. Narrowing against the subject and the client's registration.
        if let requested = requestedScopes {
            let beyondSubject = subject.heldScopes?.uncovered(requested) ?? []
            guard beyondSubject.isEmpty else {
                throw .invalidScope(reason: "not covered by the subject token's scopes: \(ScopeSet(beyondSubject))")
            }
            let beyondClient = client.scopes.uncovered(requested)
            guard beyondClient.isEmpty else {
                throw .invalidScope(reason: "not covered by the client's registration: \(ScopeSet(beyondClient))")
            }
        }
        let defaultScopes =
            subject.heldScopes.map { held in ScopeSet(held.scopes.filter { scope in client.scopes.scopes.contains { $0.covers(scope) } }) }
            ?? client.scopes

        // 6. Policy.
        let facts = ExchangeFacts(
            clientID: client.clientID, subjectTokenType: subject.type, subjectIssuer: subject.issuer, subject: subject.subject,
            actor: actor?.subject, audiences: audiences, resources: resources, requestedScopes: requestedScopes,
            defaultScopes: defaultScopes, dpop: context.proof != nil)
        let decision = try await policies.evaluator(for: client.tenantID).decide(facts)
        guard let grant = decision.grant else { throw Self.refusal(decision) }

        // 7. Lifetime: never beyond the subject or the actor.
        var lifetime = min(context.settings.accessTokenLifetime, grant.maxLifetime ?? .infinity)
        lifetime = min(lifetime, subject.expiresAt.timeIntervalSince(now), actor?.expiresAt.timeIntervalSince(now) ?? .infinity)
        lifetime = lifetime.rounded(.down)
        guard lifetime >= 1 else { throw .invalidRequest("the subject_token expires too soon", reason: "less than 1 s left") }

        var result = GrantDecision(
            subject: subject.subject, subjectType: subject.subjectType, scopes: grant.scopes, audience: grant.audience,
            lifetime: lifetime, parentJTI: subject.jti)
        result.act = act
        result.issuedTokenType = .accessToken
        result.auditAction = "token.exchanged"
        result.decision = decision.explanationText
        if let refreshLifetime = grant.refreshLifetime {
            let granted = facts.asking(grant.scopes, dpop: context.proof != nil)
            result.refresh = .startFamily(
                lifetime: refreshLifetime, policyFacts: String(decoding: StrictJSON.serialize(granted.json), as: UTF8.self))
        }
        return result
    }

    /// The RFC error for a policy refusal, carrying the explanation for the audit record.
    static func refusal(_ decision: PolicyDecision) -> OAuthError {
        var error: OAuthError
        switch decision.refusal ?? .request {
        case .request: error = .invalidRequest("the exchange is not allowed by policy", reason: decision.reason)
        case .target: error = OAuthError(.invalidTarget, "the requested audience or resource is not allowed", reason: decision.reason)
        case .scope: error = .invalidScope(reason: decision.reason)
        case .dpop: error = OAuthError(.invalidDPoPProof, "a DPoP proof is required", reason: decision.reason)
        }
        error.decision = decision.explanationText
        return error
    }

    static func depth(of act: JSONValue) -> Int {
        var depth = 0
        var current: JSONValue? = act
        while let node = current, depth <= maximumActDepth {
            depth += 1
            current = node["act"]
        }
        return depth
    }
}
