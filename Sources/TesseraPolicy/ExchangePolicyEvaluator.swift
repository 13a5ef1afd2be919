public import Foundation
public import TesseraCore
public import TesseraJOSE

/// What a token-exchange decision is made on: the facts of one (real or hypothetical) request,
/// after the subject and actor tokens were verified.
public struct ExchangeFacts: Sendable, Hashable {
    public let clientID: String
    public let subjectTokenType: TokenTypeIdentifier
    public let subjectIssuer: String
    public let subject: String
    /// The actor's `sub`, nil without an actor token.
    public let actor: String?
    /// Explicit `audience` and `resource` parameters.
    public let audiences: [String]
    public let resources: [String]
    /// The `scope` parameter; nil asks for the default.
    public let requestedScopes: ScopeSet?
    /// What may be granted when nothing is asked: the subject's scopes that the client's
    /// registration covers. The rule narrows it further.
    public let defaultScopes: ScopeSet
    public let dpop: Bool

    public init(
        clientID: String, subjectTokenType: TokenTypeIdentifier, subjectIssuer: String, subject: String, actor: String?,
        audiences: [String], resources: [String], requestedScopes: ScopeSet?, defaultScopes: ScopeSet, dpop: Bool
    ) {
        self.clientID = clientID
        self.subjectTokenType = subjectTokenType
        self.subjectIssuer = subjectIssuer
        self.subject = subject
        self.actor = actor
        self.audiences = audiences
        self.resources = resources
        self.requestedScopes = requestedScopes
        self.defaultScopes = defaultScopes
        self.dpop = dpop
    }

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "client_id": .string(clientID), "subject_token_type": .string(subjectTokenType.shortName),
            "subject_issuer": .string(subjectIssuer), "subject": .string(subject), "audience": .array(audiences.map(JSONValue.string)),
            "resource": .array(resources.map(JSONValue.string)), "dpop": .bool(dpop),
            "actor": actor.map(JSONValue.string) ?? .null,
        ]
        if let requestedScopes { object["scope"] = .string(requestedScopes.description) }
        return .object(object)
    }
}

/// Which RFC error a refusal maps to: the category of the condition that failed.
public enum PolicyRefusal: String, Sendable {
    /// Policy says no, or nothing allows it: `invalid_request` (RFC 8693 §2.2.2).
    case request
    /// An audience or resource not allowed: `invalid_target`.
    case target
    /// A scope beyond what the rule allows: `invalid_scope`.
    case scope
    /// The rule requires DPoP and the request has no proof: `invalid_dpop_proof`.
    case dpop
}

/// What an allow rule grants when it decides.
public struct ExchangeGrant: Sendable, Hashable {
    public let ruleID: String
    public let scopes: ScopeSet
    /// `aud` of the token: explicit audiences and resources, or the systems of the granted scopes.
    public let audience: [String]
    public let maxLifetime: TimeInterval?
    /// The family lifetime when the rule issues refresh tokens.
    public let refreshLifetime: TimeInterval?
}

/// A decision with its explanation: the inputs, every rule with whether it matched and the first
/// condition that failed, and the outcome. The same JSON goes to the audit record and to a dry run.
public struct PolicyDecision: Sendable {
    public let grant: ExchangeGrant?
    public let refusal: PolicyRefusal?
    /// One line for the audit `reason` when refused.
    public let reason: String
    public let explanation: JSONValue

    public var isAllowed: Bool { grant != nil }
    public var explanationText: String { String(decoding: StrictJSON.serialize(explanation), as: UTF8.self) }
}

/// Evaluates token-exchange rules: deny by default, deny rules first (any match refuses), then
/// allow rules in document order; the first allow rule whose every condition holds decides.
/// Pure and deterministic: the same facts and document give the same decision.
public struct ExchangePolicyEvaluator: Sendable {
    public let document: PolicyDocument
    /// Nil when the tenant has no stored policy (everything is denied).
    public let version: Int64?

    public init(document: PolicyDocument, version: Int64?) {
        self.document = document
        self.version = version
    }

    public func decide(_ facts: ExchangeFacts) -> PolicyDecision {
        var trace: [JSONValue] = []
        var noted: Set<String> = []
        func finish(_ grant: ExchangeGrant?, _ refusal: PolicyRefusal?, _ reason: String, decidedBy: String? = nil) -> PolicyDecision {
            // Every rule appears, in document order of evaluation: those after the deciding one
            // as not evaluated, so the explanation shows the whole policy it was decided against.
            for rule in document.exchange.filter({ $0.effect == .deny }) + document.exchange.filter({ $0.effect == .allow })
            where !noted.contains(rule.id) {
                trace.append(
                    .object([
                        "id": .string(rule.id), "effect": .string(rule.effect.rawValue), "evaluated": .bool(false),
                        "matched": .bool(false), "failed": .null,
                    ]))
            }
            let explanation: JSONValue = .object([
                "outcome": .string(grant == nil ? "deny" : "allow"),
                "policy_version": version.map { .number(Double($0)) } ?? .null,
                "rule": (grant?.ruleID ?? decidedBy).map(JSONValue.string) ?? .null,
                "reason": .string(reason),
                "inputs": facts.json,
                "rules": .array(trace),
            ])
            return PolicyDecision(grant: grant, refusal: refusal, reason: reason, explanation: explanation)
        }
        func note(_ rule: ExchangeRule, matched: Bool, failed: String?) {
            noted.insert(rule.id)
            trace.append(
                .object([
                    "id": .string(rule.id), "effect": .string(rule.effect.rawValue), "evaluated": .bool(true),
                    "matched": .bool(matched), "failed": failed.map(JSONValue.string) ?? .null,
                ]))
        }

        for rule in document.exchange where rule.effect == .deny {
            if let failed = denyCondition(rule, facts) {
                note(rule, matched: false, failed: failed)
            } else {
                note(rule, matched: true, failed: nil)
                return finish(nil, .request, "denied by rule '\(rule.id)'", decidedBy: rule.id)
            }
        }
        var firstRelevantFailure: (rule: String, refusal: PolicyRefusal, why: String)?
        for rule in document.exchange where rule.effect == .allow {
            switch evaluate(rule, facts) {
            case .success(let grant):
                note(rule, matched: true, failed: nil)
                return finish(grant, nil, "allowed by rule '\(rule.id)'")
            case .failure(let failure):
                note(rule, matched: false, failed: failure.why)
                if failure.relevant, firstRelevantFailure == nil {
                    firstRelevantFailure = (rule.id, failure.refusal, failure.why)
                }
            }
        }
        if let failure = firstRelevantFailure {
            return finish(nil, failure.refusal, "rule '\(failure.rule)' does not allow it: \(failure.why)")
        }
        if version == nil { return finish(nil, .request, "the tenant has no exchange policy") }
        return finish(nil, .request, "no exchange rule applies to this client and subject")
    }

    struct RuleFailure: Error {
        /// The rule addressed this client and kind of subject: its failure is the one to report.
        let relevant: Bool
        let refusal: PolicyRefusal
        let why: String
    }

    /// The first condition of the rule's scope (client, subject kind, issuer, subject) that does
    /// not hold, nil when the rule addresses this request.
    private func addressingFailure(_ rule: ExchangeRule, _ facts: ExchangeFacts) -> String? {
        if !rule.clients.contains(ExchangeRule.anyClient), !rule.clients.contains(facts.clientID) {
            return "clients: \(facts.clientID) is not listed"
        }
        if !rule.subjectTokenTypes.contains(facts.subjectTokenType) {
            return "subject_token_types: \(facts.subjectTokenType.shortName) is not listed"
        }
        if let issuers = rule.subjectIssuers, !issuers.contains(facts.subjectIssuer) {
            return "subject_issuers: \(facts.subjectIssuer) is not listed"
        }
        if let subjects = rule.subjects, !subjects.contains(where: { $0.matches(facts.subject) }) {
            return "subjects: \(facts.subject) matches no pattern"
        }
        return nil
    }

    private func actorFailure(_ rule: ExchangeRule, _ facts: ExchangeFacts) -> String? {
        switch (rule.actor, facts.actor) {
        case (.required, nil): return "actor: an actor token is required (delegation only)"
        case (.forbidden, .some): return "actor: actor tokens are not allowed"
        case (_, .some(let actor)):
            if let actors = rule.actors {
                if !actors.contains(where: { $0.matches(actor) }) { return "actors: \(actor) matches no pattern" }
            } else if actor != facts.clientID {
                return "actors: the actor \(actor) is not the requesting client"
            }
            return nil
        case (_, nil): return nil
        }
    }

    private func denyCondition(_ rule: ExchangeRule, _ facts: ExchangeFacts) -> String? {
        if let failed = addressingFailure(rule, facts) { return failed }
        switch (rule.actor, facts.actor) {
        case (.required, nil): return "actor: no actor token"
        case (.forbidden, .some): return "actor: an actor token is present"
        default: break
        }
        if let actors = rule.actors, !(facts.actor.map { actor in actors.contains { $0.matches(actor) } } ?? false) {
            return "actors: no listed actor"
        }
        // Without explicit targets the token's audience is the systems of the scopes asked for:
        // a deny rule on an audience holds for that default too, or leaving `audience` out would
        // slip past it.
        let asked = facts.requestedScopes ?? facts.defaultScopes
        let audiences = facts.audiences.isEmpty && facts.resources.isEmpty ? Self.systems(of: asked) : facts.audiences
        if let listed = rule.audiences, Set(listed).isDisjoint(with: audiences) {
            return "audiences: none requested"
        }
        if let resources = rule.resources, Set(resources).isDisjoint(with: facts.resources) {
            return "resources: none requested"
        }
        if let scopes = rule.scopes {
            let bases = Set(scopes.scopes.map(\.base))
            if !asked.scopes.contains(where: { bases.contains($0.base) }) { return "scopes: none requested" }
        }
        return nil
    }

    private func evaluate(_ rule: ExchangeRule, _ facts: ExchangeFacts) -> Result<ExchangeGrant, RuleFailure> {
        if let failed = addressingFailure(rule, facts) { return .failure(RuleFailure(relevant: false, refusal: .request, why: failed)) }
        func fail(_ refusal: PolicyRefusal, _ why: String) -> Result<ExchangeGrant, RuleFailure> {
            .failure(RuleFailure(relevant: true, refusal: refusal, why: why))
        }
        if let failed = actorFailure(rule, facts) { return fail(.request, failed) }
        if rule.dpopRequired, !facts.dpop { return fail(.dpop, "dpop: the rule requires a DPoP proof") }

        let ceiling = rule.scopes ?? ScopeSet([])
        let granted: ScopeSet
        if let requested = facts.requestedScopes {
            if !rule.wildcards, let wildcard = requested.scopes.first(where: \.hasWildcard) {
                return fail(.scope, "wildcards: \(wildcard) asks for a wildcard the rule does not allow")
            }
            let uncovered = ceiling.uncovered(requested)
            if !uncovered.isEmpty { return fail(.scope, "scopes: \(ScopeSet(uncovered)) exceeds the rule") }
            granted = requested
        } else {
            granted = ScopeSet(facts.defaultScopes.scopes.filter { held in ceiling.scopes.contains { $0.covers(held) } })
            if granted.isEmpty { return fail(.scope, "scopes: nothing the subject holds is within the rule") }
            if !rule.wildcards, let wildcard = granted.scopes.first(where: \.hasWildcard) {
                return fail(.scope, "wildcards: \(wildcard) has a wildcard the rule does not allow")
            }
        }

        let audience: [String]
        if facts.audiences.isEmpty && facts.resources.isEmpty {
            audience = Self.systems(of: granted)
            if let allowed = rule.audiences, let outside = audience.first(where: { !allowed.contains($0) }) {
                return fail(.target, "audiences: the default audience \(outside) is not listed")
            }
        } else {
            if let outside = facts.audiences.first(where: { !(rule.audiences ?? []).contains($0) }) {
                return fail(.target, "audiences: \(String(outside.prefix(200))) is not listed")
            }
            if let outside = facts.resources.first(where: { !(rule.resources ?? []).contains($0) }) {
                return fail(.target, "resources: \(String(outside.prefix(200))) is not listed")
            }
            audience = Array(Set(facts.audiences + facts.resources)).sorted()
        }
        return .success(
            ExchangeGrant(
                ruleID: rule.id, scopes: granted, audience: audience, maxLifetime: rule.maxLifetime,
                refreshLifetime: rule.refreshTokens ? rule.refreshLifetime : nil))
    }

    /// The systems a set of scopes addresses (`crm` for `crm:contacts.read`), sorted.
    public static func systems(of scopes: ScopeSet) -> [String] {
        Array(Set(scopes.scopes.map { String($0.base.prefix { $0 != ":" }) })).sorted()
    }
}

extension ExchangeFacts {
    /// Reads back what `json` wrote (stored with a refresh family, to decide every refresh again).
    public init?(json: JSONValue, defaultScopes: ScopeSet) {
        guard let clientID = json["client_id"]?.stringValue,
            let type = json["subject_token_type"]?.stringValue.flatMap(TokenTypeIdentifier.init(naming:)),
            let issuer = json["subject_issuer"]?.stringValue, let subject = json["subject"]?.stringValue,
            let audiences = json["audience"]?.arrayValue?.compactMap(\.stringValue),
            let resources = json["resource"]?.arrayValue?.compactMap(\.stringValue), let dpop = json["dpop"]?.boolValue
        else { return nil }
        let requested = json["scope"]?.stringValue.flatMap { try? ScopeSet(parsing: $0) }
        self.init(
            clientID: clientID, subjectTokenType: type, subjectIssuer: issuer, subject: subject, actor: json["actor"]?.stringValue,
            audiences: audiences, resources: resources, requestedScopes: requested, defaultScopes: defaultScopes, dpop: dpop)
    }

    /// The same facts for a later request that asks for `scopes` with or without a proof.
    public func asking(_ scopes: ScopeSet, dpop: Bool) -> ExchangeFacts {
        ExchangeFacts(
            clientID: clientID, subjectTokenType: subjectTokenType, subjectIssuer: subjectIssuer, subject: subject, actor: actor,
            audiences: audiences, resources: resources, requestedScopes: scopes, defaultScopes: defaultScopes, dpop: dpop)
    }
}
