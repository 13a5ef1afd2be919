import Foundation
import TesseraCore

extension Fixtures {
    /// A person as an Entra ID connector would normalize them: every optional field set.
    static func identity(_ name: String, tenant: TenantID, groups: [String] = ["crm-admins", "Everyone"]) -> NormalizedIdentity {
        NormalizedIdentity(
            tenantID: tenant, subject: "oidc|idp-entra|\(name)-0b3f9c", email: "\(name)@\(tenant).example", emailVerified: true,
            name: "\(name.capitalized) Müller-Ødegård", groups: groups, roles: ["crm.admin", "erp.viewer"], idpID: "idp-entra")
    }

    /// A person whose IdP asserted nothing beyond the subject.
    static func bareIdentity(_ name: String, tenant: TenantID) -> NormalizedIdentity {
        NormalizedIdentity(
            tenantID: tenant, subject: "saml|idp-adfs|\(name)", email: nil, emailVerified: false, name: nil, groups: [], roles: [],
            idpID: "idp-adfs")
    }

    /// The SHA-256 of a session cookie named `label`: stores only ever see hashes.
    static func sessionHash(_ label: String) -> [UInt8] { Secrets.sha256("session cookie \(label)") }

    static func session(
        _ label: String, of user: User, createdAt: Date = epoch, lastSeenAt: Date? = nil, lifetime: Int = 8 * 3600
    ) -> HumanSession {
        HumanSession(
            hash: sessionHash(label), tenantID: user.identity.tenantID, userID: user.id, identity: user.identity, createdAt: createdAt,
            lastSeenAt: lastSeenAt ?? createdAt, expiresAt: createdAt.addingTimeInterval(TimeInterval(lifetime)))
    }

    /// A provider with every optional field set.
    static func oidcProvider(_ id: String, tenant: TenantID, createdAt: Date = epoch) -> OIDCProviderConfig {
        OIDCProviderConfig(
            id: id, tenantID: tenant, issuer: "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            clientID: "6731de76-14a6-49ae-97bc-6eba6914391e", clientAuth: .privateKeyJWT, preset: .entra,
            scopes: ["openid", "email", "profile", "offline_access"], hostedDomain: "\(tenant).example", useUserinfo: true,
            groupRoles: ["crm-admins": "crm.admin", "erp-readers": "erp.viewer", "Everyone": "member"], createdAt: createdAt)
    }
}
