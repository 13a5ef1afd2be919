public import Foundation

/// One security-relevant event, as appended to the hash-chained audit log (DESIGN.md, "Audit").
/// Never holds a token, a secret, a key or assertion content: only identifiers and reasons.
public struct AuditEvent: Sendable, Hashable, Codable {
    public struct Actor: Sendable, Hashable, Codable {
        public enum Kind: String, Sendable, Codable { case client, user, operator_ = "operator", system, anonymous }
        public let type: Kind
        public let id: String?
        public init(type: Kind, id: String?) {
            self.type = type
            self.id = id
        }
        public static let system = Actor(type: .system, id: nil)
        public static func client(_ id: String?) -> Actor { Actor(type: id == nil ? .anonymous : .client, id: id) }
        public static func `operator`(_ id: String?) -> Actor { Actor(type: .operator_, id: id) }
    }

    public enum Outcome: String, Sendable, Codable { case success, failure, denied }

    public struct Scopes: Sendable, Hashable, Codable {
        public let requested: [String]
        public let granted: [String]
        public init(requested: [String], granted: [String]) {
            self.requested = requested
            self.granted = granted
        }
    }

    public let id: String
    public let ts: Date
    public let tenant: String?
    public let actor: Actor
    public let clientID: String?
    /// A dotted verb: `token.issued`, `token.denied`, `client.auth_failed`, `token.introspected`,
    /// `token.revoked`, `client.created`, `client.disabled`, `tenant.created`, `key.rotated`.
    public let action: String
    public let outcome: Outcome
    public let reason: String?
    public let jti: String?
    public let scopes: Scopes?
    public let resource: String?
    public let traceID: String?
    /// The policy decision (rules and outcome) as JSON text, when a policy decided.
    public let decision: String?

    public init(
        id: String = Secrets.randomToken(), ts: Date, tenant: String?, actor: Actor, clientID: String? = nil,
        action: String, outcome: Outcome, reason: String? = nil, jti: String? = nil, scopes: Scopes? = nil,
        resource: String? = nil, traceID: String? = nil, decision: String? = nil
    ) {
        self.id = id
        self.ts = ts
        self.tenant = tenant
        self.actor = actor
        self.clientID = clientID
        self.action = action
        self.outcome = outcome
        self.reason = reason
        self.jti = jti
        self.scopes = scopes
        self.resource = resource
        self.traceID = traceID
        self.decision = decision
    }

    enum CodingKeys: String, CodingKey {
        case id, ts, tenant, actor, clientID = "client_id", action, outcome, reason, jti, scopes, resource
        case traceID = "trace_id", decision
    }
}
