public import TesseraCore
public import TesseraJOSE

/// Why upstream claims could not become an identity. The reason names the mapper and the claim,
/// never its value.
public struct ClaimsMappingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Turns verified ID-token (and userinfo) claims into a `NormalizedIdentity`, per the provider's
/// preset: which claim is the stable subject, where e-mail, name, groups and roles are. Pure.
///
/// The subject is `oidc|PROVIDER_ID|stable-id`, so two providers can never produce the same
/// subject, whatever their users' ids or e-mail domains.
public struct OIDCClaimsMapper: Sendable {
    public let provider: OIDCProviderConfig

    public init(provider: OIDCProviderConfig) { self.provider = provider }

    public func identity(from claims: [String: JSONValue]) throws(ClaimsMappingError) -> NormalizedIdentity {
        let stable: String?
        switch provider.preset {
        // Entra ID's `sub` is pairwise per application; `oid` is the user's id in the directory.
        case .entra: stable = claims["oid"]?.stringValue
        case .generic, .okta, .google, .keycloak: stable = claims["sub"]?.stringValue
        }
        guard let stable, !stable.isEmpty, stable.utf8.count <= 255 else {
            throw ClaimsMappingError("\(provider.preset.rawValue): the subject claim is missing or too long")
        }
        if provider.preset == .entra, let expected = claims["tid"], expected.stringValue == nil {
            throw ClaimsMappingError("entra: tid is not a string")
        }
        var email = claims["email"]?.stringValue
        var emailVerified = claims["email_verified"]?.boolValue ?? false
        if provider.preset == .entra {
            // Entra puts the sign-in name in preferred_username, and its `email` is a mutable
            // attribute that a guest or another tenant's admin can set ("nOAuth"): verified only
            // when the token says so, or says the domain owner verified it (`xms_edov`).
            email = email ?? claims["preferred_username"]?.stringValue
            emailVerified = claims["email_verified"]?.boolValue ?? claims["xms_edov"]?.boolValue ?? false
        }
        if let domain = provider.hostedDomain {
            guard claims["hd"]?.stringValue == domain else {
                throw ClaimsMappingError("\(provider.preset.rawValue): hd is not the hosted domain \(domain)")
            }
            guard let address = email, address.lowercased().hasSuffix("@" + domain.lowercased()) else {
                throw ClaimsMappingError("\(provider.preset.rawValue): the e-mail is not in the hosted domain")
            }
        }
        // Google ID tokens carry no groups; a `groups` claim there is not Google's to trust.
        var groups = provider.preset == .google ? [] : Self.strings(claims["groups"])
        if provider.preset == .keycloak { groups += Self.strings(claims["realm_access"]?["roles"]) }
        var roles = groups.compactMap { provider.groupRoles[$0] }
        if provider.preset == .entra {
            roles += Self.strings(claims["roles"]).compactMap { provider.groupRoles[$0] }
        }
        return NormalizedIdentity(
            tenantID: provider.tenantID, subject: "oidc|\(provider.id)|\(stable)", email: email?.lowercased(),
            emailVerified: emailVerified, name: claims["name"]?.stringValue.map { String($0.prefix(256)) },
            groups: Array(Set(groups)).sorted(), roles: Array(Set(roles)).sorted(), idpID: provider.id)
    }

    /// A string array claim, bounded; anything else counts as absent.
    static func strings(_ value: JSONValue?) -> [String] {
        guard let items = value?.arrayValue else { return [] }
        return items.prefix(256).compactMap { $0.stringValue }.filter { !$0.isEmpty && $0.utf8.count <= 256 }
    }
}
