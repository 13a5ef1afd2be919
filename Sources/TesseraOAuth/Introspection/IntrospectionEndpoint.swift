public import Foundation
public import TesseraCore
public import TesseraJOSE
public import TesseraStore

/// `POST /oauth2/introspect` (RFC 7662).
///
/// The caller authenticates as a client registered with the introspect right (§2.1); a client
/// without it gets 401 `invalid_client` as §2.3 asks. An unknown, expired, revoked, malformed or
/// other-tenant token is `{"active": false}` and nothing more (§2.2), so the answer never tells
/// why. Every introspection is audited.
public struct IntrospectionEndpoint: Sendable {
    private let authenticator: ClientAuthenticator
    private let verifier: AccessTokenVerifier
    private let audit: AuditTrail
    private let clock: any WallClock

    public init(authenticator: ClientAuthenticator, verifier: AccessTokenVerifier, auditStore: any AuditStore, clock: any WallClock) {
        self.authenticator = authenticator
        self.verifier = verifier
        self.audit = AuditTrail(store: auditStore)
        self.clock = clock
    }

    /// The JSON object to send: `{"active": false}` or the active token's claims.
    public func handle(_ request: TokenRequest) async throws(OAuthError) -> [String: JSONValue] {
        let now = clock.now
        let caller = try await authenticator.authenticatedCaller(of: request, audit: audit, now: now)
        guard caller.mayIntrospect else {
            throw await audit.refusal(
                OAuthError(.invalidClient, "this client may not introspect tokens", reason: "client lacks the introspect right"),
                action: "token.introspected", tenant: caller.tenantID.rawValue, clientID: caller.clientID, traceID: request.traceID,
                now: now)
        }
        guard let token = request.form["token"] else {
            throw await audit.refusal(
                .invalidRequest("token is missing"), action: "token.introspected", tenant: caller.tenantID.rawValue,
                clientID: caller.clientID, traceID: request.traceID, now: now)
        }

        var answer: [String: JSONValue] = ["active": .bool(false)]
        var reason = "inactive"
        var jti: String?
        do {
            let verified = try await verifier.verify(token, now: now)
            jti = verified.jti
            if verified.tenantID == caller.tenantID {
                answer = verified.claims.filter { Self.reportedClaims.contains($0.key) }
                answer["active"] = .bool(true)
                answer["token_type"] = .string(verified.claims["cnf"] == nil ? "Bearer" : "DPoP")
                reason = "active"
            } else {
                reason = "inactive: token of another tenant"
            }
        } catch let failure as AccessTokenVerifier.Failure {
            switch failure {
            case .invalid(let why), .inactive(let why): reason = "inactive: \(why)"
            }
        } catch {
            throw .unavailable(reason: "introspection store read failed: \(error)")
        }
        try await audit.record(
            AuditEvent(
                ts: now, tenant: caller.tenantID.rawValue, actor: .client(caller.clientID), clientID: caller.clientID,
                action: "token.introspected", outcome: .success, reason: reason, jti: jti, traceID: request.traceID))
        return answer
    }

    /// RFC 7662 §2.2 members, plus `tid`, `sub_type`, `cnf`, `act` and `gid` from DESIGN.md.
    static let reportedClaims: Set<String> = [
        "scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "tid", "sub_type", "cnf", "act", "gid",
    ]
}
