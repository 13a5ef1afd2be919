public import Foundation

/// Who signed in, in the broker's terms, whatever the upstream IdP called things. Built by the
/// claims mappers from what the IdP asserted; raw upstream claims never leave the connector.
public struct NormalizedIdentity: Sendable, Hashable, Codable {
    public let tenantID: TenantID
    /// Stable and unique across IdPs: `oidc|IDP_ID|sub`, `saml|IDP_ID|NameID`.
    public let subject: String
    public let email: String?
    public let emailVerified: Bool
    public let name: String?
    public let groups: [String]
    public let roles: [String]
    /// The identity provider record it came from.
    public let idpID: String

    public init(
        tenantID: TenantID, subject: String, email: String?, emailVerified: Bool, name: String?, groups: [String], roles: [String],
        idpID: String
    ) {
        self.tenantID = tenantID
        self.subject = subject
        self.email = email
        self.emailVerified = emailVerified
        self.name = name
        self.groups = groups
        self.roles = roles
        self.idpID = idpID
    }
}

/// A person of a tenant, provisioned just in time at first sign-in and updated at each one.
public struct User: Sendable, Hashable {
    public let id: String
    public let identity: NormalizedIdentity
    public let disabledAt: Date?
    public let createdAt: Date
    public let lastSignInAt: Date

    public var isDisabled: Bool { disabledAt != nil }

    public init(id: String, identity: NormalizedIdentity, disabledAt: Date?, createdAt: Date, lastSignInAt: Date) {
        self.id = id
        self.identity = identity
        self.disabledAt = disabledAt
        self.createdAt = createdAt
        self.lastSignInAt = lastSignInAt
    }
}

/// A browser session of a signed-in person. The cookie value is never stored, only its SHA-256.
public struct HumanSession: Sendable, Hashable {
    public let hash: [UInt8]
    public let tenantID: TenantID
    public let userID: String
    /// The identity as it was at sign-in: what `GET /session` shows.
    public let identity: NormalizedIdentity
    public let createdAt: Date
    public let lastSeenAt: Date
    /// Absolute: activity never extends it.
    public let expiresAt: Date

    public init(
        hash: [UInt8], tenantID: TenantID, userID: String, identity: NormalizedIdentity, createdAt: Date, lastSeenAt: Date,
        expiresAt: Date
    ) {
        self.hash = hash
        self.tenantID = tenantID
        self.userID = userID
        self.identity = identity
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.expiresAt = expiresAt
    }
}

/// An upstream OpenID Provider of one tenant (the broker is its relying party). Secrets and keys
/// for client authentication live in the keys folder, never here.
public struct OIDCProviderConfig: Sendable, Hashable, Codable {
    public enum ClientAuth: String, Sendable, Codable, CaseIterable {
        case clientSecretBasic = "client_secret_basic"
        case clientSecretPost = "client_secret_post"
        case privateKeyJWT = "private_key_jwt"
    }

    public enum Preset: String, Sendable, Codable, CaseIterable { case generic, entra, okta, google, keycloak }

    public let id: String
    public let tenantID: TenantID
    /// Compared exactly with discovery's and the ID token's `iss`.
    public let issuer: String
    public let clientID: String
    public let clientAuth: ClientAuth
    public let preset: Preset
    public let scopes: [String]
    public let hostedDomain: String?
    public let useUserinfo: Bool
    /// Upstream group name to broker role.
    public let groupRoles: [String: String]
    public let createdAt: Date

    public init(
        id: String, tenantID: TenantID, issuer: String, clientID: String, clientAuth: ClientAuth, preset: Preset, scopes: [String],
        hostedDomain: String?, useUserinfo: Bool, groupRoles: [String: String], createdAt: Date
    ) {
        self.id = id
        self.tenantID = tenantID
        self.issuer = issuer
        self.clientID = clientID
        self.clientAuth = clientAuth
        self.preset = preset
        self.scopes = scopes
        self.hostedDomain = hostedDomain
        self.useUserinfo = useUserinfo
        self.groupRoles = groupRoles
        self.createdAt = createdAt
    }
}
