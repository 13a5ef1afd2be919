public import Foundation

/// What the broker remembers of an access token it issued: never the token, only its identity,
/// owner and lifetime, so it can be revoked, listed by client and traced through lineage.
public struct IssuedToken: Sendable, Hashable, Codable {
    public let jti: String
    public let tenantID: TenantID
    public let clientID: String
    public let subject: String
    public let scopes: [String]
    public let issuedAt: Date
    public let expiresAt: Date
    /// The token this one was exchanged from (RFC 8693 lineage); nil for a direct grant.
    public let parentJTI: String?

    public init(
        jti: String, tenantID: TenantID, clientID: String, subject: String, scopes: [String], issuedAt: Date,
        expiresAt: Date, parentJTI: String? = nil
    ) {
        self.jti = jti
        self.tenantID = tenantID
        self.clientID = clientID
        self.subject = subject
        self.scopes = scopes
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.parentJTI = parentJTI
    }
}

public enum RevocationOutcome: Sendable, Equatable {
    /// The token was live and is now revoked (together with `descendants` derived from it).
    case revoked(descendants: [String])
    case alreadyRevoked
    /// No token with that id was issued here.
    case unknown
}
