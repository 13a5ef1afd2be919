public import Foundation
public import TesseraCore
public import TesseraJOSE

/// What a grant handler decided: whom the token is for and what it carries. The token endpoint
/// mints, records and audits it; a handler never does.
public struct GrantDecision: Sendable {
    public enum SubjectType: String, Sendable { case user, service }

    /// Whether the endpoint issues a refresh token with the access token, and how.
    public enum RefreshPlan: Sendable {
        /// Start a family with this absolute lifetime; `policyFacts` is what the policy decided on.
        case startFamily(lifetime: TimeInterval, policyFacts: String)
        /// Rotate the presented refresh token (by its SHA-256) within its family.
        case rotate(presentedHash: [UInt8], family: RefreshFamily)
    }

    public let subject: String
    public let subjectType: SubjectType
    public let scopes: ScopeSet
    public let audience: [String]
    public let lifetime: TimeInterval
    public let parentJTI: String?
    /// RFC 8693 §4.1 `act`, nested for chains.
    public var act: JSONValue?
    /// RFC 8693 §2.2.1 `issued_token_type`, for token-exchange responses.
    public var issuedTokenType: TokenTypeIdentifier?
    /// The audit action of the success record.
    public var auditAction: String = "token.issued"
    /// The policy decision (explanation JSON) that allowed it.
    public var decision: String?
    public var refresh: RefreshPlan?

    public init(
        subject: String, subjectType: SubjectType, scopes: ScopeSet, audience: [String], lifetime: TimeInterval, parentJTI: String? = nil
    ) {
        self.subject = subject
        self.subjectType = subjectType
        self.scopes = scopes
        self.audience = audience
        self.lifetime = lifetime
        self.parentJTI = parentJTI
    }
}

/// The inputs every handler gets, already authenticated.
public struct GrantContext: Sendable {
    public let client: OAuthClient
    public let request: TokenRequest
    public let now: Date
    public let settings: BrokerSettings
    /// The request's verified DPoP proof, nil when it carried none.
    public let proof: VerifiedDPoPProof?
}

/// One handler per grant type (STYLE.md rule 2). Throws an `OAuthError` to refuse.
public protocol GrantHandler: Sendable {
    var grantType: GrantType { get }
    func decide(_ context: GrantContext) async throws(OAuthError) -> GrantDecision
}
