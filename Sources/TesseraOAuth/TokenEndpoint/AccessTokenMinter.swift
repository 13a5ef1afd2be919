public import Foundation
public import TesseraCore
public import TesseraJOSE

/// Mints RFC 9068 JWT access tokens (`typ: at+jwt`) with the active key of the key ring.
public struct AccessTokenMinter: Sendable {
    public static let tokenType = "at+jwt"

    private let keyRing: KeyRing
    private let issuer: String

    public init(keyRing: KeyRing, issuer: String) {
        self.keyRing = keyRing
        self.issuer = issuer
    }

    public struct Minted: Sendable {
        public let token: String
        public let record: IssuedToken
    }

    /// RFC 9068 §2.2 claims plus DESIGN.md's `tid`, `sub_type`.
    /// `confirmation` is the RFC 7638 thumbprint of the DPoP key the token is bound to (RFC 9449 §6.1).
    /// `parentJTI` overrides the decision's parent in the lineage (a refresh family's id).
    public func mint(
        _ decision: GrantDecision, client: OAuthClient, now: Date, confirmation: String? = nil, parentJTI: String? = nil
    ) throws(OAuthError) -> Minted {
        let issuedAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let expiresAt = issuedAt.addingTimeInterval(decision.lifetime.rounded(.down))
        let jti = Secrets.timeOrderedID(now: now)
        var claims: [String: JSONValue] = [
            "iss": .string(issuer),
            "sub": .string(decision.subject),
            "aud": decision.audience.count == 1 ? .string(decision.audience[0]) : .array(decision.audience.map(JSONValue.string)),
            "iat": .number(issuedAt.timeIntervalSince1970),
            "exp": .number(expiresAt.timeIntervalSince1970),
            "jti": .string(jti),
            "client_id": .string(client.clientID),
            "tid": .string(client.tenantID.rawValue),
            "sub_type": .string(decision.subjectType.rawValue),
        ]
        if !decision.scopes.isEmpty { claims["scope"] = .string(decision.scopes.description) }
        if let confirmation { claims["cnf"] = .object(["jkt": .string(confirmation)]) }
        if let act = decision.act { claims["act"] = act }
        let token: String
        do {
            token = try keyRing.activeKey.signCompact(claims: claims, typ: Self.tokenType)
        } catch {
            throw OAuthError(.serverError, "the token could not be issued", reason: "signing failed: \(error)")
        }
        let record = IssuedToken(
            jti: jti, tenantID: client.tenantID, clientID: client.clientID, subject: decision.subject,
            scopes: decision.scopes.strings, issuedAt: issuedAt, expiresAt: expiresAt, parentJTI: parentJTI ?? decision.parentJTI)
        return Minted(token: token, record: record)
    }
}
