public import TesseraCore

/// Turns the subject and attributes of a verified SAML 2.0 assertion into a `NormalizedIdentity`,
/// per the provider's preset: which identifier is stable, where e-mail, name, groups and roles are.
/// Pure.
///
/// The subject is `saml|PROVIDER_ID|stable-id`, so two providers can never produce the same
/// subject, whatever their NameIDs. The stable id is, per preset:
/// - entra: the `objectidentifier` attribute (the user's id in the directory);
/// - shibboleth: `subject-id` (SAML V2.0 Subject Identifier Attributes Profile §3.3), else
///   `eduPersonUniqueId`, else a persistent NameID, else `eduPersonPrincipalName`;
/// - generic, adfs, okta, google: the NameID.
///
/// A transient NameID (SAML 2.0 Core §8.3.8) is a one-time pseudonym and never a stable id: it is
/// refused when nothing else is. A stable attribute that is present but multi-valued, empty, longer
/// than 255 bytes or holding control characters is refused, never skipped for the next candidate.
///
/// SAML carries no "verified" flag: the address counts as verified only when the tenant trusts its
/// IdP's mail attribute (`trustEmail`).
public struct SAMLClaimsMapper: Sendable {
    public let provider: SAMLProviderConfig

    public init(provider: SAMLProviderConfig) { self.provider = provider }

    public func identity(from claims: SAMLSubjectClaims) throws(ClaimsMappingError) -> NormalizedIdentity {
        let stable = try stableID(claims)
        let email = email(claims)
        let groups = Self.bounded(groupValues(claims))
        var roles = groups.compactMap { provider.groupRoles[$0] }
        if provider.preset == .entra {
            // Entra app roles arrive in the role claim, apart from the directory groups.
            roles += Self.bounded(claims.values([Attribute.msRole])).compactMap { provider.groupRoles[$0] }
        }
        return NormalizedIdentity(
            tenantID: provider.tenantID, subject: "saml|\(provider.id)|\(stable)", email: email,
            emailVerified: email != nil && provider.trustEmail, name: name(claims).map { String($0.prefix(256)) },
            groups: Array(Set(groups)).sorted(), roles: Array(Set(roles)).sorted(), idpID: provider.id)
    }

    // MARK: Subject

    private func stableID(_ claims: SAMLSubjectClaims) throws(ClaimsMappingError) -> String {
        switch provider.preset {
        case .entra:
            guard let objectID = try single(claims, Attribute.entraObjectID) else {
                throw failure("the attribute \(Attribute.entraObjectID) is missing")
            }
            return try checked(objectID, "the attribute \(Attribute.entraObjectID)")
        case .shibboleth:
            // The scoped identifiers compare case-insensitively (the profile says so for
            // subject-id; eduPerson gives both eduPerson ids caseIgnoreMatch): lower-cased so one
            // person is one subject.
            if let subjectID = try single(claims, Attribute.subjectID) {
                guard Self.isSubjectID(subjectID) else {
                    throw failure("the attribute \(Attribute.subjectID) is not uniqueID@scope (profile §3.3)")
                }
                return try checked(subjectID.lowercased(), "the attribute \(Attribute.subjectID)")
            }
            if let uniqueID = try single(claims, Attribute.eduPersonUniqueID) {
                guard Self.isEduPersonUniqueID(uniqueID) else {
                    throw failure("the attribute \(Attribute.eduPersonUniqueID) is not uniqueID@scope")
                }
                return try checked(uniqueID.lowercased(), "the attribute \(Attribute.eduPersonUniqueID)")
            }
            if claims.nameIDFormat == NameIDFormat.persistent {
                return try checked(claims.nameID, "the persistent NameID")
            }
            if let principalName = try single(claims, Attribute.eduPersonPrincipalName) {
                guard Self.isScoped(principalName) else {
                    throw failure("the attribute \(Attribute.eduPersonPrincipalName) is not user@scope")
                }
                return try checked(principalName.lowercased(), "the attribute \(Attribute.eduPersonPrincipalName)")
            }
            throw failure("no subject-id, eduPersonUniqueId, persistent NameID or eduPersonPrincipalName was sent")
        case .generic, .adfs, .okta, .google:
            guard claims.nameIDFormat != NameIDFormat.transient else {
                throw failure("the NameID is transient and no stable identifier was sent")
            }
            return try checked(claims.nameID, "the NameID")
        }
    }

    /// The one value of an identifier attribute, looked up by Name only: a FriendlyName is a label
    /// (SAML 2.0 Core §2.7.3.1), never enough to say which attribute identifies the user.
    private func single(_ claims: SAMLSubjectClaims, _ name: String) throws(ClaimsMappingError) -> String? {
        guard let values = claims.attributes[name], let first = values.first else { return nil }
        guard values.count == 1 else { throw failure("the attribute \(name) has more than one value") }
        return first
    }

    private func checked(_ value: String, _ what: String) throws(ClaimsMappingError) -> String {
        guard !value.isEmpty else { throw failure("\(what) is empty") }
        guard value.utf8.count <= 255 else { throw failure("\(what) is longer than 255 bytes") }
        guard !Self.hasControlCharacters(value) else { throw failure("\(what) contains control characters") }
        return value
    }

    private func failure(_ reason: String) -> ClaimsMappingError {
        ClaimsMappingError("saml \(provider.preset.rawValue): \(reason)")
    }

    // MARK: E-mail, name, groups

    /// The first value of the first attribute present, lower-cased; nil unless it looks like an address.
    private func email(_ claims: SAMLSubjectClaims) -> String? {
        let emailNameID = claims.nameIDFormat == NameIDFormat.emailAddress ? claims.nameID : nil
        let candidate: String?
        switch provider.preset {
        case .entra:
            // Without a mail attribute Entra's `name` claim is the UPN. A guest's UPN
            // (`alice_example.com#EXT#@tenant.onmicrosoft.com`) is no mailbox.
            candidate = claims.values([Attribute.xmlsoapEmail, Attribute.xmlsoapName]).first.flatMap {
                $0.contains("#EXT#@") ? nil : $0
            }
        case .adfs: candidate = claims.values([Attribute.xmlsoapEmail]).first
        case .okta: candidate = claims.values(["email", Attribute.xmlsoapEmail]).first
        case .google: candidate = emailNameID ?? claims.values(["email"]).first
        case .shibboleth: candidate = claims.values([Attribute.mail, "mail"]).first
        case .generic:
            candidate = claims.values(["email", "mail", Attribute.mail, Attribute.xmlsoapEmail]).first ?? emailNameID
        }
        return candidate.map { $0.lowercased() }.flatMap(Self.plausibleAddress)
    }

    private func name(_ claims: SAMLSubjectClaims) -> String? {
        switch provider.preset {
        case .entra:
            // displayname is not among Entra's default claims; given name and surname are.
            return Self.text(claims, [Attribute.msDisplayName])
                ?? Self.joined(claims, [Attribute.xmlsoapGivenName], [Attribute.xmlsoapSurname])
        case .adfs:
            return Self.text(claims, [Attribute.msDisplayName])
                ?? Self.joined(claims, [Attribute.xmlsoapGivenName], [Attribute.xmlsoapSurname])
                ?? Self.text(claims, [Attribute.xmlsoapName])
        case .okta: return Self.text(claims, ["displayName"]) ?? Self.joined(claims, ["firstName"], ["lastName"])
        case .google: return Self.text(claims, ["name"]) ?? Self.joined(claims, ["first_name"], ["last_name"])
        case .shibboleth:
            return Self.text(claims, [Attribute.displayName, "displayName"])
                ?? Self.joined(claims, [Attribute.givenName, "givenName"], [Attribute.surname, "sn"])
        case .generic: return Self.text(claims, ["displayName", "name", "cn", Attribute.displayName])
        }
    }

    /// Where both attributes are named, both count; where a list of alternatives is, the first present.
    private func groupValues(_ claims: SAMLSubjectClaims) -> [String] {
        switch provider.preset {
        case .entra: return claims.values([Attribute.msGroups])
        case .adfs: return claims.values([Attribute.msGroups]) + claims.values([Attribute.msRole])
        case .okta, .google: return claims.values(["groups"])
        case .shibboleth:
            return claims.values([Attribute.isMemberOf, "isMemberOf"])
                + claims.values([Attribute.eduPersonEntitlement, "eduPersonEntitlement"])
        case .generic: return claims.values(["groups", "memberOf", Attribute.isMemberOf])
        }
    }

    // MARK: Values

    /// At most 256 values, each non-empty, at most 256 bytes and free of control characters.
    static func bounded(_ values: [String]) -> [String] {
        values.prefix(256).filter { !$0.isEmpty && $0.utf8.count <= 256 && !hasControlCharacters($0) }
    }

    /// One `@`, both sides non-empty, at most 254 bytes (RFC 5321 §4.5.3.1.3), no whitespace or control.
    static func plausibleAddress(_ value: String) -> String? {
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, value.utf8.count <= 254,
            !value.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
        else { return nil }
        return value
    }

    static func hasControlCharacters(_ value: String) -> Bool {
        value.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// The first value of the first attribute present, trimmed; nil when blank or holding control characters.
    static func text(_ claims: SAMLSubjectClaims, _ names: [String]) -> String? {
        guard let value = claims.values(names).first,
            let start = value.firstIndex(where: { !$0.isWhitespace }), let end = value.lastIndex(where: { !$0.isWhitespace })
        else { return nil }
        let trimmed = String(value[start...end])
        return hasControlCharacters(trimmed) ? nil : trimmed
    }

    /// Given name and surname joined by a space; either alone when only one was sent.
    static func joined(_ claims: SAMLSubjectClaims, _ first: [String], _ last: [String]) -> String? {
        let parts = [text(claims, first), text(claims, last)].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: " ")
    }

    /// SAML V2.0 Subject Identifier Attributes Profile §3.3: `uniqueID@scope`, the unique ID 1–127 of
    /// `[A-Za-z0-9=-]`, the scope 1–127 of `[A-Za-z0-9.-]`, each starting alphanumeric.
    static func isSubjectID(_ value: String) -> Bool {
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        func valid(_ part: Substring, _ extra: Set<Character>) -> Bool {
            guard let first = part.first, part.count <= 127, first.isASCII, first.isLetter || first.isNumber else { return false }
            return part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || extra.contains($0)) }
        }
        return valid(parts[0], ["=", "-"]) && valid(parts[1], ["-", "."])
    }

    /// eduPerson: `uniqueID@scope`, the unique ID 1–64 ASCII alphanumerics, the scope non-empty.
    static func isEduPersonUniqueID(_ value: String) -> Bool {
        guard let at = value.firstIndex(of: "@") else { return false }
        let uniqueID = value[..<at]
        return !uniqueID.isEmpty && uniqueID.count <= 64 && uniqueID.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
            && value.index(after: at) != value.endIndex
    }

    /// eduPerson: `user@scope`, both parts non-empty, one `@`.
    static func isScoped(_ value: String) -> Bool {
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty
    }

    enum NameIDFormat {
        static let transient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
        static let persistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
        static let emailAddress = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    }

    enum Attribute {
        // Microsoft (Entra ID, ADFS)
        static let entraObjectID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
        static let msDisplayName = "http://schemas.microsoft.com/identity/claims/displayname"
        static let msGroups = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
        static let msRole = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
        static let xmlsoapEmail = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
        static let xmlsoapName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
        static let xmlsoapGivenName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
        static let xmlsoapSurname = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
        // SAML V2.0 Subject Identifier Attributes Profile, eduPerson, inetOrgPerson (Shibboleth)
        static let subjectID = "urn:oasis:names:tc:SAML:attribute:subject-id"
        static let eduPersonUniqueID = "urn:oid:1.3.6.1.4.1.5923.1.1.1.13"
        static let eduPersonPrincipalName = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
        static let eduPersonEntitlement = "urn:oid:1.3.6.1.4.1.5923.1.1.1.7"
        static let isMemberOf = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
        static let mail = "urn:oid:0.9.2342.19200300.100.1.3"
        static let displayName = "urn:oid:2.16.840.1.113730.3.1.241"
        static let givenName = "urn:oid:2.5.4.42"
        static let surname = "urn:oid:2.5.4.4"
    }
}
