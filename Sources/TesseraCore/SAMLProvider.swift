public import Foundation

/// A SAML 2.0 identity provider of one tenant (the broker is its service provider). What the
/// IdP publishes (entityID, endpoints, certificates) lives in its metadata document, stored with
/// the record (`SAMLProviderRecord`); this is how the tenant chose to trust it.
public struct SAMLProviderConfig: Sendable, Hashable, Codable {
    /// Where attribute names come from: each preset knows its IdP's URIs, OIDs and friendly names.
    public enum Preset: String, Sendable, Codable, CaseIterable { case generic, entra, adfs, okta, google, shibboleth }

    /// Which signature a response must carry. Either way the assertion the broker reads is the very
    /// node a verified signature covers (directly, or as the one assertion of a signed response).
    public enum SignedPart: String, Sendable, Codable, CaseIterable {
        case assertion
        case response
        case both
    }

    public let id: String
    public let tenantID: TenantID
    /// The IdP's entityID, read from its metadata; Issuer is compared with it exactly.
    public let entityID: String
    /// `https://…` (refreshed every `refreshInterval` seconds) or a path under `metadata/`.
    public let metadataSource: String
    public let refreshInterval: Int?
    public let preset: Preset
    public let signedPart: SignedPart
    /// RSA-SHA1 and SHA-1 digests are refused unless the tenant opts in.
    public let allowSHA1: Bool
    /// Unsolicited responses are refused unless the tenant opts in.
    public let allowIdPInitiated: Bool
    /// The IdP's e-mail attribute counts as verified only when the tenant says its IdP verifies it.
    public let trustEmail: Bool
    /// Upstream group name to broker role.
    public let groupRoles: [String: String]
    /// `return_to` must start with one of these paths (the tenant's allow-list); `["/"]` allows any local path.
    public let returnToPrefixes: [String]
    public let createdAt: Date

    public init(
        id: String, tenantID: TenantID, entityID: String, metadataSource: String, refreshInterval: Int?, preset: Preset,
        signedPart: SignedPart, allowSHA1: Bool, allowIdPInitiated: Bool, trustEmail: Bool, groupRoles: [String: String],
        returnToPrefixes: [String], createdAt: Date
    ) {
        self.id = id
        self.tenantID = tenantID
        self.entityID = entityID
        self.metadataSource = metadataSource
        self.refreshInterval = refreshInterval
        self.preset = preset
        self.signedPart = signedPart
        self.allowSHA1 = allowSHA1
        self.allowIdPInitiated = allowIdPInitiated
        self.trustEmail = trustEmail
        self.groupRoles = groupRoles
        self.returnToPrefixes = returnToPrefixes
        self.createdAt = createdAt
    }

    /// The same trust with another entityID (a refreshed metadata document may rename the IdP).
    public func with(entityID: String) -> SAMLProviderConfig {
        SAMLProviderConfig(
            id: id, tenantID: tenantID, entityID: entityID, metadataSource: metadataSource, refreshInterval: refreshInterval,
            preset: preset, signedPart: signedPart, allowSHA1: allowSHA1, allowIdPInitiated: allowIdPInitiated,
            trustEmail: trustEmail, groupRoles: groupRoles, returnToPrefixes: returnToPrefixes, createdAt: createdAt)
    }
}

/// A SAML IdP as stored: the tenant's trust settings and the last good metadata document.
public struct SAMLProviderRecord: Sendable, Hashable {
    public let config: SAMLProviderConfig
    /// The whole metadata XML as last fetched and parsed successfully.
    public let metadata: String
    public let metadataFetchedAt: Date

    public init(config: SAMLProviderConfig, metadata: String, metadataFetchedAt: Date) {
        self.config = config
        self.metadata = metadata
        self.metadataFetchedAt = metadataFetchedAt
    }
}

/// What a verified assertion says about its subject, before claims mapping: the NameID and the
/// attributes, each read as the whole text content of its element.
public struct SAMLSubjectClaims: Sendable, Hashable {
    public let nameID: String
    /// The NameID's Format URI; nil when the IdP sent none (unspecified).
    public let nameIDFormat: String?
    /// Attribute Name (URI, OID or plain) to its values, in document order.
    public let attributes: [String: [String]]
    /// FriendlyName to Name, where the IdP sent one.
    public let friendlyNames: [String: String]

    public init(nameID: String, nameIDFormat: String?, attributes: [String: [String]], friendlyNames: [String: String]) {
        self.nameID = nameID
        self.nameIDFormat = nameIDFormat
        self.attributes = attributes
        self.friendlyNames = friendlyNames
    }

    /// The values of the first of `names` present, by Name or by FriendlyName.
    public func values(_ names: [String]) -> [String] {
        for name in names {
            if let found = attributes[name], !found.isEmpty { return found }
            if let real = friendlyNames[name], let found = attributes[real], !found.isEmpty { return found }
        }
        return []
    }
}
