import Foundation
import TesseraCore

/// Values for the checks. Dates are whole seconds so any backend storing milliseconds or
/// microseconds returns them unchanged.
enum Fixtures {
    /// 2026-01-01T00:00:00Z.
    static let epoch = Date(timeIntervalSince1970: 1_767_225_600)

    static func at(_ seconds: Int) -> Date { epoch.addingTimeInterval(TimeInterval(seconds)) }

    static func tenantID(_ name: String) -> TenantID {
        guard let id = TenantID(name) else { preconditionFailure("fixture tenant id \(name) is invalid") }
        return id
    }

    static func scopes(_ text: String) -> ScopeSet {
        do { return try ScopeSet(parsing: text) } catch { preconditionFailure("fixture scope \(text) is invalid") }
    }

    static func event(
        _ action: String, tenant: TenantID?, jti: String? = nil, clientID: String? = nil, at date: Date = epoch
    ) -> AuditEvent {
        AuditEvent(
            ts: date, tenant: tenant?.rawValue, actor: .operator("conformance"), clientID: clientID, action: action,
            outcome: .success, reason: nil, jti: jti)
    }

    static func client(
        _ clientID: String, tenant: TenantID, createdAt date: Date = epoch, authMethod: ClientAuthMethod = .clientSecretBasic
    ) -> OAuthClient {
        OAuthClient(
            clientID: clientID, tenantID: tenant, name: "Client \(clientID)", authMethod: authMethod,
            secretHash: authMethod == .privateKeyJWT ? nil : Secrets.sha256("secret of \(clientID)"),
            jwks: authMethod == .privateKeyJWT ? #"{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}"# : nil,
            scopes: scopes("crm:contacts.read:fields=email,name:ids=123,456 crm:contacts.write"),
            grantTypes: [.clientCredentials, .tokenExchange], dpop: .required, mayIntrospect: true, createdAt: date)
    }

    static func token(
        _ jti: String, tenant: TenantID, parent: String? = nil, issuedAt: Date = epoch, lifetime: Int = 600
    ) -> IssuedToken {
        IssuedToken(
            jti: jti, tenantID: tenant, clientID: "client-1", subject: "user@\(tenant).example",
            scopes: ["crm:contacts.read:ids=123", "crm:contacts.write"], issuedAt: issuedAt,
            expiresAt: issuedAt.addingTimeInterval(TimeInterval(lifetime)), parentJTI: parent)
    }

    static let acme = tenantID("acme")
    static let globex = tenantID("globex")
}
