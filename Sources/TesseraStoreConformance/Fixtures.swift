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

    /// A policy document; its text is opaque to the store.
    static func policyDocument(_ label: String) -> String {
        #"{"exchange":[{"effect":"allow","id":"\#(label)","scopes":"crm:contacts.read"}]}"#
    }

    static func workloadIssuer(
        _ id: String, tenant: TenantID, issuer: String, createdAt date: Date = epoch
    ) -> WorkloadIssuer {
        WorkloadIssuer(
            id: id, tenantID: tenant, issuer: issuer,
            jwks: #"{"keys":[{"kty":"EC","crv":"P-256","kid":"\#(id)","x":"AQ","y":"AQ"}]}"#, audience: "https://broker.\(tenant).example",
            subjectPatterns: ["repo:acme/*:ref:refs/heads/main", "system:serviceaccount:crm:*"],
            claimConditions: ["environment": "prod*", "repository_owner": "acme", "job_workflow_ref": "acme/ci/*"],
            scopes: scopes("crm:contacts.read:fields=email,name crm:contacts.write:ids=1,2"), createdAt: date)
    }

    /// A family bound to a DPoP key, with delegation, exchanged from `parent`.
    static func family(
        _ familyID: String, tenant: TenantID, parent: String? = nil, issuedAt: Date = epoch, lifetime: Int = 3600
    ) -> RefreshFamily {
        RefreshFamily(
            familyID: familyID, tenantID: tenant, clientID: "client-1", subject: "repo:acme/app:ref:refs/heads/main",
            subjectType: "service", scopes: scopes("crm:contacts.read:ids=123,456 crm:contacts.write"), audience: ["crm", "erp"],
            actClaim: #"{"sub":"client-1"}"#, jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
            policyFacts: #"{"rule":"crm-sync","version":3}"#, parentJTI: parent, issuedAt: issuedAt,
            expiresAt: issuedAt.addingTimeInterval(TimeInterval(lifetime)))
    }

    /// The SHA-256 of a refresh token named `label`: stores only ever see hashes.
    static func refreshHash(_ label: String) -> [UInt8] { Secrets.sha256("refresh token \(label)") }

    static func refresh(_ label: String, family: String, issuedAt: Date = epoch) -> RefreshTokenRecord {
        RefreshTokenRecord(hash: refreshHash(label), familyID: family, issuedAt: issuedAt)
    }

    /// An access token minted from `family`.
    static func familyToken(_ jti: String, of family: RefreshFamily, issuedAt: Date? = nil) -> IssuedToken {
        IssuedToken(
            jti: jti, tenantID: family.tenantID, clientID: family.clientID, subject: family.subject,
            scopes: ["crm:contacts.read:ids=123"], issuedAt: issuedAt ?? family.issuedAt,
            expiresAt: (issuedAt ?? family.issuedAt).addingTimeInterval(300), parentJTI: family.familyID)
    }

    static let acme = tenantID("acme")
    static let globex = tenantID("globex")
}
