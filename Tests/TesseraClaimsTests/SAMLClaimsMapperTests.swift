import Foundation
import TesseraClaims
import TesseraCore
import XCTest

/// Golden subjects and attribute statements shaped like each IdP's real assertions, mapped by their preset.
final class SAMLClaimsMapperTests: XCTestCase {
    static let transient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
    static let persistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    static let emailAddress = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    static let unspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"

    func provider(_ preset: SAMLProviderConfig.Preset, id: String = "saml_x", trustEmail: Bool = false) -> SAMLProviderConfig {
        SAMLProviderConfig(
            id: id, tenantID: TenantID("acme")!, entityID: "https://idp.example.com/idp/shibboleth", metadataSource: "metadata/idp.xml",
            refreshInterval: nil, preset: preset, signedPart: .assertion, allowSHA1: false, allowIdPInitiated: false,
            trustEmail: trustEmail,
            groupRoles: [
                "5e7d2b0a-3c4f-4e61-9a8b-0c1d2e3f4a5b": "tenant_admin", "Tessera.Approver": "policy_approver", "Admins": "tenant_admin",
                "auditors": "audit_viewer", "urn:mace:example.edu:groups:it:admins": "tenant_admin",
                "urn:mace:dir:entitlement:common-lib-terms": "library_reader",
            ],
            returnToPrefixes: ["/"], createdAt: Date(timeIntervalSince1970: 0))
    }

    func map(_ preset: SAMLProviderConfig.Preset, _ claims: SAMLSubjectClaims, trustEmail: Bool = false) throws -> NormalizedIdentity {
        try SAMLClaimsMapper(provider: provider(preset, trustEmail: trustEmail)).identity(from: claims)
    }

    func reason(_ preset: SAMLProviderConfig.Preset, _ claims: SAMLSubjectClaims) -> String? {
        do {
            _ = try SAMLClaimsMapper(provider: provider(preset)).identity(from: claims)
            return nil
        } catch {
            return error.reason
        }
    }

    // MARK: Golden assertions

    /// Entra ID's default claims plus displayname, groups (object ids) and app roles.
    static let entra = SAMLSubjectClaims(
        nameID: "Ada@Contoso.com", nameIDFormat: emailAddress,
        attributes: [
            "http://schemas.microsoft.com/identity/claims/tenantid": ["72f988bf-86f1-41af-91ab-2d7cd011db47"],
            "http://schemas.microsoft.com/identity/claims/objectidentifier": ["8f2c8c49-0000-4000-8000-1d0e5b2c7a11"],
            "http://schemas.microsoft.com/identity/claims/displayname": ["Ada Lovelace"],
            "http://schemas.microsoft.com/identity/claims/identityprovider": [
                "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"
            ],
            "http://schemas.microsoft.com/claims/authnmethodsreferences": [
                "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"
            ],
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": ["Ada"],
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": ["Lovelace"],
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": ["Ada.Lovelace@Contoso.com"],
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": ["Ada@Contoso.com"],
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": [
                "5e7d2b0a-3c4f-4e61-9a8b-0c1d2e3f4a5b", "0b9f3a77-1d2c-4e5f-8a9b-7c6d5e4f3a2b",
            ],
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": ["Tessera.Approver"],
        ],
        friendlyNames: [:])

    /// ADFS with a persistent NameID (ms-DS-ConsistencyGuid) and the usual issuance rules.
    static let adfs = SAMLSubjectClaims(
        nameID: "x1X2a3B4c5D6e7F8g9H0iA==", nameIDFormat: persistent,
        attributes: [
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": ["grace@corp.contoso.com"],
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": ["Grace.Hopper@Contoso.com"],
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": ["Grace"],
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": ["Hopper"],
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": ["CONTOSO\\grace"],
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": ["CONTOSO\\Domain Users", "Admins"],
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": ["auditors"],
        ],
        friendlyNames: [:])

    /// Okta's attribute statements (Name format basic) and group attribute statement.
    static let okta = SAMLSubjectClaims(
        nameID: "00u1a2b3c4D5e6F7g8h9", nameIDFormat: unspecified,
        attributes: [
            "email": ["Lin.Chen@Example.com"], "firstName": ["Lin"], "lastName": ["Chen"], "groups": ["Everyone", "auditors"],
        ],
        friendlyNames: [:])

    /// Google Workspace: the primary e-mail as NameID, basic information mapped to custom names.
    static let google = SAMLSubjectClaims(
        nameID: "Ann.Smith@Example.com", nameIDFormat: emailAddress,
        attributes: ["first_name": ["Ann"], "last_name": ["Smith"], "groups": ["auditors", "engineering"]],
        friendlyNames: [:])

    /// Shibboleth IdP 4/5 with the default transient NameID and the eduPerson attribute bundle.
    static let shibboleth = SAMLSubjectClaims(
        nameID: "AAdzZWNyZXQxxOh7/ShRn0EAAAAAAAAA", nameIDFormat: transient,
        attributes: [
            "urn:oasis:names:tc:SAML:attribute:subject-id": ["7ZQB4J2Q6K3V@Example.edu"],
            "urn:oid:1.3.6.1.4.1.5923.1.1.1.13": ["28c5353b8bb34984a8bd4169ba94c606@example.edu"],
            "urn:oid:1.3.6.1.4.1.5923.1.1.1.6": ["jdoe@example.edu"],
            "urn:oid:0.9.2342.19200300.100.1.3": ["John.Doe@Example.edu"],
            "urn:oid:2.16.840.1.113730.3.1.241": ["John Doe"],
            "urn:oid:2.5.4.42": ["John"],
            "urn:oid:2.5.4.4": ["Doe"],
            "urn:oid:1.3.6.1.4.1.5923.1.1.1.9": ["member@example.edu", "staff@example.edu"],
            "urn:oid:1.3.6.1.4.1.5923.1.5.1.1": ["urn:mace:example.edu:groups:it:admins", "urn:mace:example.edu:groups:staff"],
            "urn:oid:1.3.6.1.4.1.5923.1.1.1.7": ["urn:mace:dir:entitlement:common-lib-terms"],
        ],
        friendlyNames: [
            "subject-id": "urn:oasis:names:tc:SAML:attribute:subject-id", "eduPersonUniqueId": "urn:oid:1.3.6.1.4.1.5923.1.1.1.13",
            "eduPersonPrincipalName": "urn:oid:1.3.6.1.4.1.5923.1.1.1.6", "mail": "urn:oid:0.9.2342.19200300.100.1.3",
            "displayName": "urn:oid:2.16.840.1.113730.3.1.241", "givenName": "urn:oid:2.5.4.42", "sn": "urn:oid:2.5.4.4",
            "eduPersonScopedAffiliation": "urn:oid:1.3.6.1.4.1.5923.1.1.1.9", "isMemberOf": "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
            "eduPersonEntitlement": "urn:oid:1.3.6.1.4.1.5923.1.1.1.7",
        ])

    /// The same claims with some attributes replaced (an empty list removes one) or another NameID.
    func changing(
        _ claims: SAMLSubjectClaims, nameID: String? = nil, format: String?? = nil, _ changes: [String: [String]] = [:]
    ) -> SAMLSubjectClaims {
        var attributes = claims.attributes
        for (name, values) in changes { attributes[name] = values.isEmpty ? nil : values }
        return SAMLSubjectClaims(
            nameID: nameID ?? claims.nameID, nameIDFormat: format ?? claims.nameIDFormat, attributes: attributes,
            friendlyNames: claims.friendlyNames)
    }

    // MARK: Presets

    func testEntraUsesTheObjectIdentifierAndMapsGroupsAndAppRoles() throws {
        let identity = try map(.entra, Self.entra)
        XCTAssertEqual(
            identity.subject, "saml|saml_x|8f2c8c49-0000-4000-8000-1d0e5b2c7a11", "the UPN NameID can be renamed; the object id cannot")
        XCTAssertEqual(identity.email, "ada.lovelace@contoso.com")
        XCTAssertEqual(identity.name, "Ada Lovelace")
        XCTAssertEqual(identity.groups, ["0b9f3a77-1d2c-4e5f-8a9b-7c6d5e4f3a2b", "5e7d2b0a-3c4f-4e61-9a8b-0c1d2e3f4a5b"])
        XCTAssertEqual(identity.roles, ["policy_approver", "tenant_admin"])
        XCTAssertEqual(identity.tenantID, TenantID("acme")!)
        XCTAssertEqual(identity.idpID, "saml_x")
    }

    func testEntraWithoutTheObjectIdentifierIsRefused() {
        let claims = changing(Self.entra, ["http://schemas.microsoft.com/identity/claims/objectidentifier": []])
        XCTAssertEqual(
            reason(.entra, claims), "saml entra: the attribute http://schemas.microsoft.com/identity/claims/objectidentifier is missing")
    }

    func testEntraFallsBackToTheUPNForEmailAndGivenNameAndSurnameForName() throws {
        let claims = changing(
            Self.entra,
            [
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": [],
                "http://schemas.microsoft.com/identity/claims/displayname": [],
            ])
        let identity = try map(.entra, claims)
        XCTAssertEqual(identity.email, "ada@contoso.com")
        XCTAssertEqual(identity.name, "Ada Lovelace")
    }

    func testEntraGuestUPNIsNoAddress() throws {
        let claims = changing(
            Self.entra,
            [
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": [],
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": ["ada_fabrikam.com#EXT#@contoso.onmicrosoft.com"],
            ])
        XCTAssertNil(try map(.entra, claims, trustEmail: true).email)
    }

    func testADFSUsesThePersistentNameIDAndCountsRoleClaimsAsGroups() throws {
        let identity = try map(.adfs, Self.adfs)
        XCTAssertEqual(identity.subject, "saml|saml_x|x1X2a3B4c5D6e7F8g9H0iA==")
        XCTAssertEqual(identity.email, "grace.hopper@contoso.com")
        XCTAssertEqual(identity.name, "Grace Hopper")
        XCTAssertEqual(identity.groups, ["Admins", "CONTOSO\\Domain Users", "auditors"])
        XCTAssertEqual(identity.roles, ["audit_viewer", "tenant_admin"])
    }

    func testADFSFallsBackToTheNameClaimForName() throws {
        let claims = changing(
            Self.adfs,
            [
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": [],
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": [],
            ])
        XCTAssertEqual(try map(.adfs, claims).name, "CONTOSO\\grace")
    }

    func testOktaUsesTheNameIDAndItsAttributeStatements() throws {
        let identity = try map(.okta, Self.okta)
        XCTAssertEqual(identity.subject, "saml|saml_x|00u1a2b3c4D5e6F7g8h9")
        XCTAssertEqual(identity.email, "lin.chen@example.com")
        XCTAssertEqual(identity.name, "Lin Chen")
        XCTAssertEqual(identity.groups, ["Everyone", "auditors"])
        XCTAssertEqual(identity.roles, ["audit_viewer"])
        XCTAssertEqual(try map(.okta, changing(Self.okta, ["displayName": ["Dr. Lin Chen"]])).name, "Dr. Lin Chen")
    }

    func testGoogleTakesTheEmailFromAnEmailAddressNameID() throws {
        let identity = try map(.google, Self.google)
        XCTAssertEqual(identity.subject, "saml|saml_x|Ann.Smith@Example.com")
        XCTAssertEqual(identity.email, "ann.smith@example.com")
        XCTAssertEqual(identity.name, "Ann Smith")
        XCTAssertEqual(identity.roles, ["audit_viewer"])
        let persistent = changing(Self.google, nameID: "104857392017465", format: Self.persistent, ["email": ["ann.smith@example.com"]])
        XCTAssertEqual(try map(.google, persistent).email, "ann.smith@example.com", "without an e-mail NameID, the email attribute")
    }

    func testShibbolethPrefersSubjectIDOverATransientNameID() throws {
        let identity = try map(.shibboleth, Self.shibboleth)
        XCTAssertEqual(identity.subject, "saml|saml_x|7zqb4j2q6k3v@example.edu", "subject-id compares case-insensitively")
        XCTAssertEqual(identity.email, "john.doe@example.edu")
        XCTAssertEqual(identity.name, "John Doe")
        XCTAssertEqual(
            identity.groups,
            ["urn:mace:dir:entitlement:common-lib-terms", "urn:mace:example.edu:groups:it:admins", "urn:mace:example.edu:groups:staff"])
        XCTAssertEqual(identity.roles, ["library_reader", "tenant_admin"])
    }

    func testShibbolethFallsBackInProfileOrder() throws {
        let subjectID = "urn:oasis:names:tc:SAML:attribute:subject-id"
        let uniqueID = "urn:oid:1.3.6.1.4.1.5923.1.1.1.13"
        let cases: [(String, SAMLSubjectClaims, String)] = [
            (
                "eduPersonUniqueId without subject-id", changing(Self.shibboleth, [subjectID: []]),
                "28c5353b8bb34984a8bd4169ba94c606@example.edu"
            ),
            (
                "persistent NameID without subject-id or eduPersonUniqueId",
                changing(Self.shibboleth, nameID: "tgt-3f9a1c", format: Self.persistent, [subjectID: [], uniqueID: []]), "tgt-3f9a1c"
            ),
            (
                "eduPersonPrincipalName when the NameID is transient",
                changing(Self.shibboleth, [subjectID: [], uniqueID: []]), "jdoe@example.edu"
            ),
        ]
        for (label, claims, stable) in cases {
            XCTAssertEqual(try map(.shibboleth, claims).subject, "saml|saml_x|\(stable)", label)
        }
    }

    func testShibbolethNameFromGivenNameAndSurname() throws {
        let claims = changing(Self.shibboleth, ["urn:oid:2.16.840.1.113730.3.1.241": []])
        XCTAssertEqual(try map(.shibboleth, claims).name, "John Doe")
    }

    func testGenericFindsCommonAttributeNamesAndAnEmailNameID() throws {
        let claims = SAMLSubjectClaims(
            nameID: "Kim@Example.org", nameIDFormat: Self.emailAddress,
            attributes: ["cn": ["Kim Park"], "memberOf": ["auditors"]], friendlyNames: [:])
        let identity = try map(.generic, claims)
        XCTAssertEqual(identity.subject, "saml|saml_x|Kim@Example.org")
        XCTAssertEqual(identity.email, "kim@example.org")
        XCTAssertEqual(identity.name, "Kim Park")
        XCTAssertEqual(identity.roles, ["audit_viewer"])
        let unspecified = SAMLSubjectClaims(nameID: "kim", nameIDFormat: nil, attributes: [:], friendlyNames: [:])
        XCTAssertNil(try map(.generic, unspecified).email, "an unspecified NameID is not taken for an address")
    }

    // MARK: Subjects

    func testSubjectsOfTwoProvidersWithTheSameNameIDDiffer() throws {
        let claims = SAMLSubjectClaims(nameID: "same-user", nameIDFormat: Self.persistent, attributes: [:], friendlyNames: [:])
        let first = try SAMLClaimsMapper(provider: provider(.generic, id: "saml_a")).identity(from: claims)
        let second = try SAMLClaimsMapper(provider: provider(.generic, id: "saml_b")).identity(from: claims)
        XCTAssertNotEqual(first.subject, second.subject)
        XCTAssertEqual(first.idpID, "saml_a")
        XCTAssertEqual(second.idpID, "saml_b")
    }

    func testTransientNameIDIsRefusedWithoutAStableAttribute() {
        let claims = SAMLSubjectClaims(
            nameID: "_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6", nameIDFormat: Self.transient,
            attributes: ["email": ["a@example.com"], "urn:oid:1.3.6.1.4.1.5923.1.1.1.6": []], friendlyNames: [:])
        for preset in SAMLProviderConfig.Preset.allCases where preset != .entra {
            XCTAssertNotNil(reason(preset, claims), "\(preset) took a transient NameID")
        }
    }

    func testTransientNameIDIsAcceptedViaSubjectIDForShibboleth() throws {
        let claims = SAMLSubjectClaims(
            nameID: "_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6", nameIDFormat: Self.transient,
            attributes: ["urn:oasis:names:tc:SAML:attribute:subject-id": ["abc123@example.edu"]],
            friendlyNames: ["subject-id": "urn:oasis:names:tc:SAML:attribute:subject-id"])
        XCTAssertEqual(try map(.shibboleth, claims).subject, "saml|saml_x|abc123@example.edu")
    }

    func testStableIdentifierIsNeverTakenByFriendlyName() {
        let claims = SAMLSubjectClaims(
            nameID: "_8e8dc5f69a98", nameIDFormat: Self.transient, attributes: ["urn:example:nickname": ["jdoe@example.edu"]],
            friendlyNames: ["urn:oasis:names:tc:SAML:attribute:subject-id": "urn:example:nickname"])
        XCTAssertNotNil(reason(.shibboleth, claims))
    }

    func testBadStableIdentifiersAreRefused() {
        let subjectID = "urn:oasis:names:tc:SAML:attribute:subject-id"
        let objectID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
        let cases: [(String, SAMLProviderConfig.Preset, SAMLSubjectClaims)] = [
            ("empty NameID", .okta, changing(Self.okta, nameID: "")),
            ("NameID over 255 bytes", .okta, changing(Self.okta, nameID: String(repeating: "é", count: 128))),
            ("NameID with a newline", .adfs, changing(Self.adfs, nameID: "grace\nadmin")),
            ("NameID with NUL", .generic, changing(Self.okta, nameID: "grace\u{0}")),
            ("empty object id", .entra, changing(Self.entra, [objectID: [""]])),
            ("two object ids", .entra, changing(Self.entra, [objectID: ["8f2c8c49-0000-4000-8000-1d0e5b2c7a11", "other"]])),
            ("subject-id without scope", .shibboleth, changing(Self.shibboleth, [subjectID: ["7ZQB4J2Q6K3V"]])),
            ("subject-id with a space", .shibboleth, changing(Self.shibboleth, [subjectID: ["7ZQB 4J2Q@example.edu"]])),
            ("two subject-ids", .shibboleth, changing(Self.shibboleth, [subjectID: ["a@example.edu", "b@example.edu"]])),
        ]
        for (label, preset, claims) in cases {
            XCTAssertNotNil(reason(preset, claims), label)
        }
    }

    func testErrorReasonsNameTheAttributeButNeverItsValue() {
        let secret = "SECRET-alice"
        let objectID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
        let subjectID = "urn:oasis:names:tc:SAML:attribute:subject-id"
        let cases: [(SAMLProviderConfig.Preset, SAMLSubjectClaims, String)] = [
            (.generic, changing(Self.okta, nameID: secret, format: Self.transient), "NameID"),
            (.okta, changing(Self.okta, nameID: secret + String(repeating: "x", count: 300)), "NameID"),
            (.adfs, changing(Self.adfs, nameID: secret + "\u{7}"), "NameID"),
            (.entra, changing(Self.entra, [objectID: [secret, secret + "2"]]), objectID),
            (.entra, changing(Self.entra, [objectID: [secret + "\r"]]), objectID),
            (.shibboleth, changing(Self.shibboleth, [subjectID: [secret + "@"]]), subjectID),
        ]
        for (preset, claims, attribute) in cases {
            guard let reason = reason(preset, claims) else {
                XCTFail("\(preset) accepted \(attribute)")
                continue
            }
            XCTAssertFalse(reason.contains(secret), reason)
            XCTAssertTrue(reason.hasPrefix("saml \(preset.rawValue): "), reason)
            XCTAssertTrue(reason.contains(attribute), reason)
        }
    }

    // MARK: E-mail

    func testEmailIsLowerCasedAndVerifiedOnlyWithTrustEmail() throws {
        let untrusted = try map(.okta, Self.okta)
        XCTAssertEqual(untrusted.email, "lin.chen@example.com")
        XCTAssertFalse(untrusted.emailVerified, "SAML has no verified flag: the tenant must trust its IdP's mail attribute")
        let trusted = try map(.okta, Self.okta, trustEmail: true)
        XCTAssertEqual(trusted.email, "lin.chen@example.com")
        XCTAssertTrue(trusted.emailVerified)
        let none = try map(.okta, changing(Self.okta, ["email": []]), trustEmail: true)
        XCTAssertNil(none.email)
        XCTAssertFalse(none.emailVerified, "no address, nothing verified")
    }

    func testImplausibleEmailIsIgnored() throws {
        let cases: [String] = [
            "", "lin.chen", "@example.com", "lin.chen@", "lin@chen@example.com", "lin chen@example.com", "lin.chen@example.com\n",
            "lin\u{0}@example.com", "lin.chen@example.com\u{A0}", String(repeating: "a", count: 250) + "@e.co",
        ]
        for value in cases {
            let identity = try map(.okta, changing(Self.okta, ["email": [value]]), trustEmail: true)
            XCTAssertNil(identity.email, value.debugDescription)
            XCTAssertFalse(identity.emailVerified, value.debugDescription)
        }
    }

    // MARK: Groups and roles

    func testGroupsAreBoundedDedupedAndSorted() throws {
        let many = (0..<400).map { "g-\(1000 + $0)" }
        let values = ["auditors", "auditors", "", String(repeating: "x", count: 257), "bad\u{1B}[31m"] + many
        let identity = try map(.okta, changing(Self.okta, ["groups": values]))
        XCTAssertLessThanOrEqual(identity.groups.count, 256)
        XCTAssertEqual(identity.groups.first, "auditors")
        XCTAssertEqual(identity.groups, identity.groups.sorted())
        XCTAssertEqual(Set(identity.groups).count, identity.groups.count)
        XCTAssertFalse(identity.groups.contains(""))
        XCTAssertTrue(identity.groups.allSatisfy { $0.utf8.count <= 256 && !$0.contains("\u{1B}") })
        XCTAssertFalse(identity.groups.contains("g-1399"), "values past the 256th are not read")
    }

    func testGroupsMapToRolesThroughGroupRoles() throws {
        let claims = changing(Self.okta, ["groups": ["Admins", "auditors", "Everyone", "Admins"]])
        XCTAssertEqual(try map(.okta, claims).roles, ["audit_viewer", "tenant_admin"])
        XCTAssertEqual(try map(.okta, changing(Self.okta, ["groups": ["Everyone"]])).roles, [], "unmapped groups give no role")
        let entraRoleOnly = changing(
            Self.entra,
            [
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": [],
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": ["Tessera.Approver"],
            ])
        let identity = try map(.entra, entraRoleOnly)
        XCTAssertEqual(identity.groups, [], "an Entra app role is not a group")
        XCTAssertEqual(identity.roles, ["policy_approver"])
    }

    // MARK: FriendlyName

    func testAttributesAreFoundByFriendlyName() throws {
        // A Shibboleth IdP releasing the legacy SAML 1 names, with the usual FriendlyNames.
        let claims = SAMLSubjectClaims(
            nameID: "tgt-3f9a1c", nameIDFormat: Self.persistent,
            attributes: [
                "urn:mace:dir:attribute-def:mail": ["Mia.Wong@Example.edu"],
                "urn:mace:dir:attribute-def:displayName": ["Mia Wong"],
                "urn:mace:dir:attribute-def:isMemberOf": ["urn:mace:example.edu:groups:it:admins"],
            ],
            friendlyNames: [
                "mail": "urn:mace:dir:attribute-def:mail", "displayName": "urn:mace:dir:attribute-def:displayName",
                "isMemberOf": "urn:mace:dir:attribute-def:isMemberOf",
            ])
        let identity = try map(.shibboleth, claims)
        XCTAssertEqual(identity.subject, "saml|saml_x|tgt-3f9a1c")
        XCTAssertEqual(identity.email, "mia.wong@example.edu")
        XCTAssertEqual(identity.name, "Mia Wong")
        XCTAssertEqual(identity.roles, ["tenant_admin"])
        let generic = SAMLSubjectClaims(
            nameID: "u-77", nameIDFormat: Self.persistent, attributes: ["urn:example:attr:primary-mail": ["Mia@Example.org"]],
            friendlyNames: ["email": "urn:example:attr:primary-mail"])
        XCTAssertEqual(try map(.generic, generic).email, "mia@example.org")
    }

    // MARK: Name

    func testNameIsTrimmedAndTruncatedTo256Characters() throws {
        let long = String(repeating: "é", count: 300)
        XCTAssertEqual(try map(.okta, changing(Self.okta, ["displayName": [long]])).name?.count, 256)
        XCTAssertEqual(try map(.okta, changing(Self.okta, ["displayName": ["  Lin  "]])).name, "Lin")
    }
}
