public import Foundation
public import TesseraCore

/// What a grant handler decided: whom the token is for and what it carries. The token endpoint
/// mints, records and audits it; a handler never does.
public struct GrantDecision: Sendable {
    public enum SubjectType: String, Sendable { case user, service }

    public let subject: String
    public let subjectType: SubjectType
    public let scopes: ScopeSet
    public let audience: [String]
    public let lifetime: TimeInterval
    public let parentJTI: String?

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
}

/// One handler per grant type (STYLE.md rule 2). Throws an `OAuthError` to refuse.
public protocol GrantHandler: Sendable {
    var grantType: GrantType { get }
    func decide(_ context: GrantContext) async throws(OAuthError) -> GrantDecision
}
