import Foundation
import TesseraClaims
import TesseraCore
import TesseraJOSE
import XCTest

/// Golden claim sets shaped like each provider's real ID tokens, mapped by their preset.
final class OIDCClaimsMapperTests: XCTestCase {
    func provider(_ preset: OIDCProviderConfig.Preset, hostedDomain: String? = nil) -> OIDCProviderConfig {
        OIDCProviderConfig(
            id: "oidc_x", tenantID: TenantID("acme")!, issuer: "https://idp.example.com", clientID: "c", clientAuth: .clientSecretBasic,
            preset: preset, scopes: ["openid"], hostedDomain: hostedDomain, useUserinfo: false,
            groupRoles: ["Admins": "tenant_admin", "Tessera.Approver": "policy_approver", "auditors": "audit_viewer"],
            createdAt: Date(timeIntervalSince1970: 0))
    }

    func testEntraIDUsesTheObjectIdAndAppRoles() throws {
        let claims: [String: JSONValue] = [
            "sub": "pairwise-sub-per-app", "oid": "8f2c8c49-0000-4000-8000-1d0e5b2c7a11", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "preferred_username": "Ada@Contoso.com", "name": "Ada Lovelace", "groups": ["Admins", "g-2"], "roles": ["Tessera.Approver"],
            "xms_edov": true,
        ]
        let identity = try OIDCClaimsMapper(provider: provider(.entra)).identity(from: claims)
        XCTAssertEqual(identity.subject, "oidc|oidc_x|8f2c8c49-0000-4000-8000-1d0e5b2c7a11")
        XCTAssertEqual(identity.email, "ada@contoso.com")
        XCTAssertTrue(identity.emailVerified)
        XCTAssertEqual(identity.roles, ["policy_approver", "tenant_admin"])
        XCTAssertEqual(identity.groups, ["Admins", "g-2"])
        var unverified = claims
        unverified["xms_edov"] = nil
        XCTAssertFalse(
            try OIDCClaimsMapper(provider: provider(.entra)).identity(from: unverified).emailVerified,
            "an Entra address is not verified unless the token says so")
    }

    func testOktaKeepsSubEmailVerificationAndGroups() throws {
        let claims: [String: JSONValue] = [
            "sub": "00u1a2b3c4", "email": "grace@example.com", "email_verified": false, "name": "Grace Hopper", "groups": ["auditors"],
        ]
        let identity = try OIDCClaimsMapper(provider: provider(.okta)).identity(from: claims)
        XCTAssertEqual(identity.subject, "oidc|oidc_x|00u1a2b3c4")
        XCTAssertFalse(identity.emailVerified)
        XCTAssertEqual(identity.roles, ["audit_viewer"])
    }

    func testGoogleRequiresTheHostedDomainWhenConfigured() throws {
        let mapper = OIDCClaimsMapper(provider: provider(.google, hostedDomain: "example.com"))
        let good: [String: JSONValue] = ["sub": "1099", "email": "ann@example.com", "email_verified": true, "hd": "example.com"]
        XCTAssertEqual(try mapper.identity(from: good).email, "ann@example.com")
        var personal = good
        personal["hd"] = nil
        XCTAssertThrowsError(try mapper.identity(from: personal))
        var other = good
        other["hd"] = "evil.example"
        XCTAssertThrowsError(try mapper.identity(from: other))
        var mismatch = good
        mismatch["email"] = "ann@evil.example"
        XCTAssertThrowsError(try mapper.identity(from: mismatch), "hd alone is not enough: the address must be in the domain")
    }

    func testKeycloakRealmRolesCountAsGroups() throws {
        let claims: [String: JSONValue] = [
            "sub": "f:1234", "email": "lin@example.com", "email_verified": true, "realm_access": ["roles": ["Admins", "offline_access"]],
        ]
        let identity = try OIDCClaimsMapper(provider: provider(.keycloak)).identity(from: claims)
        XCTAssertEqual(identity.groups, ["Admins", "offline_access"])
        XCTAssertEqual(identity.roles, ["tenant_admin"])
    }

    func testSubjectsOfTwoProvidersNeverCollide() throws {
        let claims: [String: JSONValue] = ["sub": "same"]
        let first = try OIDCClaimsMapper(provider: provider(.generic)).identity(from: claims)
        let otherConfig = OIDCProviderConfig(
            id: "oidc_y", tenantID: TenantID("acme")!, issuer: "https://other.example.com", clientID: "c", clientAuth: .clientSecretBasic,
            preset: .generic, scopes: ["openid"], hostedDomain: nil, useUserinfo: false, groupRoles: [:],
            createdAt: Date(timeIntervalSince1970: 0))
        let second = try OIDCClaimsMapper(provider: otherConfig).identity(from: claims)
        XCTAssertNotEqual(first.subject, second.subject)
    }

    func testMissingOrOversizedSubjectIsRefused() {
        XCTAssertThrowsError(try OIDCClaimsMapper(provider: provider(.generic)).identity(from: ["email": "a@b.c"]))
        XCTAssertThrowsError(try OIDCClaimsMapper(provider: provider(.entra)).identity(from: ["sub": "x"]), "entra needs oid")
        XCTAssertThrowsError(
            try OIDCClaimsMapper(provider: provider(.generic)).identity(from: ["sub": .string(String(repeating: "a", count: 300))]))
    }
}
