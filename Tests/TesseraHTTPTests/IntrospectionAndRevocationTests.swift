import Foundation
import HummingbirdTesting
import TesseraCore
import TesseraJOSE
import TesseraOAuth
import TesseraStore
import TesseraTesting
import XCTest

final class IntrospectionAndRevocationTests: XCTestCase {
    static func token(
        _ http: any TestClientProtocol, _ registered: BrokerFixture.RegisteredClient, scope: String? = nil
    ) async throws -> String {
        var form = [("grant_type", "client_credentials")]
        if let scope { form.append(("scope", scope)) }
        let response = try await http.postForm("/oauth2/token", form, basic: (registered.client.clientID, registered.secret!))
        XCTAssertEqual(response.status, .ok)
        return try XCTUnwrap(response.json["access_token"] as? String)
    }

    func testIntrospectionReportsActiveClaimsThenInactiveAfterRevocation() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let service = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let gateway = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", introspect: true)
            let accessToken = try await Self.token(http, service)
            let active = try await http.postForm(
                "/oauth2/introspect", [("token", accessToken)], basic: (gateway.client.clientID, gateway.secret!))
            XCTAssertEqual(active.status, .ok)
            XCTAssertEqual(active.headers[.cacheControl], "no-store")
            XCTAssertEqual(active.json["active"] as? Bool, true)
            XCTAssertEqual(active.json["client_id"] as? String, service.client.clientID)
            XCTAssertEqual(active.json["scope"] as? String, "crm:contacts.read")
            XCTAssertEqual(active.json["token_type"] as? String, "Bearer")
            XCTAssertEqual(active.json["tid"] as? String, "acme")

            let revoke = try await http.postForm(
                "/oauth2/revoke", [("token", accessToken), ("token_type_hint", "access_token")],
                basic: (service.client.clientID, service.secret!))
            XCTAssertEqual(revoke.status, .ok)
            let inactive = try await http.postForm(
                "/oauth2/introspect", [("token", accessToken)], basic: (gateway.client.clientID, gateway.secret!))
            XCTAssertEqual(String(buffer: inactive.body), "{\"active\":false}")
            let actions = try await auditEvents(fixture).map(\.action)
            XCTAssertEqual(actions.filter { $0 == "token.introspected" }.count, 2)
            XCTAssertTrue(actions.contains("token.revoked"))
        }
    }

    func testUnknownExpiredMalformedAndForeignTokensAreJustInactive() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            try await fixture.addTenant("globex")
            let gateway = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", introspect: true)
            let globexService = try await fixture.addClient(tenant: "globex", scopes: "crm:contacts.read")
            let acmeService = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let foreign = try await Self.token(http, globexService)
            let acmeToken = try await Self.token(http, acmeService)
            let forged = try JWSSigningKey.generate(.ES256, kid: fixture.broker.keyRing.activeKey.kid)
                .signCompact(claims: try decodeClaims(acmeToken), typ: "at+jwt")
            var parts = acmeToken.split(separator: ".").map(String.init)
            parts[1] = Base64URL.encode(
                StrictJSON.serialize(.object(try decodeClaims(acmeToken).merging(["scope": .string("crm:contacts.write")]) { $1 })))
            let tampered = parts.joined(separator: ".")
            let noneToken = ClientAssertionBuilder.unsigned(
                header: ["alg": .string("none"), "typ": .string("at+jwt")], claims: try decodeClaims(acmeToken))
            let candidates = [
                "garbage", "a.b.c", "", String(repeating: "x", count: 9000), foreign, forged, tampered, noneToken,
                acmeToken + "x",
            ]
            for candidate in candidates where !candidate.isEmpty {
                let response = try await http.postForm(
                    "/oauth2/introspect", [("token", candidate)], basic: (gateway.client.clientID, gateway.secret!))
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(String(buffer: response.body), "{\"active\":false}", "token \(candidate.prefix(20))…")
            }
            fixture.clock.advance(by: 601)
            let expired = try await http.postForm(
                "/oauth2/introspect", [("token", acmeToken)], basic: (gateway.client.clientID, gateway.secret!))
            XCTAssertEqual(String(buffer: expired.body), "{\"active\":false}")
            let missing = try await http.postForm(
                "/oauth2/introspect", [("token_type_hint", "access_token")], basic: (gateway.client.clientID, gateway.secret!))
            assertOAuthError(missing, status: 400, code: "invalid_request")
        }
    }

    func testOnlyClientsWithTheIntrospectRightMayIntrospect() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let service = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let accessToken = try await Self.token(http, service)
            let refused = try await http.postForm(
                "/oauth2/introspect", [("token", accessToken)], basic: (service.client.clientID, service.secret!))
            assertOAuthError(refused, status: 401, code: "invalid_client")
            let anonymous = try await http.postForm("/oauth2/introspect", [("token", accessToken)])
            assertOAuthError(anonymous, status: 401, code: "invalid_client")
            let bearer = try await http.postForm(
                "/oauth2/introspect", [("token", accessToken)], headers: [.authorization: "Bearer \(accessToken)"])
            assertOAuthError(bearer, status: 401, code: "invalid_client")
        }
    }

    func testDisablingAClientMakesItsLiveTokensInactive() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let service = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let gateway = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", introspect: true)
            let accessToken = try await Self.token(http, service)
            try await fixture.store.clients.disable(
                clientID: service.client.clientID, at: fixture.clock.now,
                audit: AuditEvent(ts: fixture.clock.now, tenant: "acme", actor: .system, action: "client.disabled", outcome: .success))
            let response = try await http.postForm(
                "/oauth2/introspect", [("token", accessToken)], basic: (gateway.client.clientID, gateway.secret!))
            XCTAssertEqual(String(buffer: response.body), "{\"active\":false}")
        }
    }

    func testRevocationIsRefusedForAnotherClientsTokenAndSilentForGarbage() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            try await fixture.addTenant("globex")
            let owner = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let other = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", introspect: true)
            let outsider = try await fixture.addClient(tenant: "globex", scopes: "crm:contacts.read")
            let accessToken = try await Self.token(http, owner)
            let refused = try await http.postForm("/oauth2/revoke", [("token", accessToken)], basic: (other.client.clientID, other.secret!))
            assertOAuthError(refused, status: 400, code: "unauthorized_client")
            let crossTenant = try await http.postForm(
                "/oauth2/revoke", [("token", accessToken)], basic: (outsider.client.clientID, outsider.secret!))
            XCTAssertEqual(crossTenant.status, .ok, "RFC 7009 §2.2: nothing to say about tokens the caller cannot see")
            let garbage = try await http.postForm("/oauth2/revoke", [("token", "garbage")], basic: (owner.client.clientID, owner.secret!))
            XCTAssertEqual(garbage.status, .ok)
            let stillActive = try await http.postForm(
                "/oauth2/introspect", [("token", accessToken)], basic: (other.client.clientID, other.secret!))
            XCTAssertEqual(stillActive.json["active"] as? Bool, true, "neither refused attempt revoked anything")
            let unauthenticated = try await http.postForm("/oauth2/revoke", [("token", accessToken)])
            assertOAuthError(unauthenticated, status: 401, code: "invalid_client")
        }
    }

    func testRevokingAParentRevokesTokensExchangedFromIt() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let owner = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let gateway = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", introspect: true)
            let parent = try await Self.token(http, owner)
            let parentJTI = try XCTUnwrap(try decodeClaims(parent)["jti"]?.stringValue)
            // A child minted from the parent, as token exchange will do.
            let minter = AccessTokenMinter(keyRing: fixture.broker.keyRing, issuer: fixture.settings.issuer)
            let child = try minter.mint(
                GrantDecision(
                    subject: owner.client.clientID, subjectType: .service, scopes: try ScopeSet(parsing: "crm:contacts.read"),
                    audience: ["crm"], lifetime: 300, parentJTI: parentJTI),
                client: owner.client, now: fixture.clock.now)
            try await fixture.store.tokens.recordIssued(
                child.record,
                audit: AuditEvent(
                    ts: fixture.clock.now, tenant: "acme", actor: .system, action: "token.issued", outcome: .success, jti: child.record.jti)
            )
            let revoke = try await http.postForm("/oauth2/revoke", [("token", parent)], basic: (owner.client.clientID, owner.secret!))
            XCTAssertEqual(revoke.status, .ok)
            let response = try await http.postForm(
                "/oauth2/introspect", [("token", child.token)], basic: (gateway.client.clientID, gateway.secret!))
            XCTAssertEqual(String(buffer: response.body), "{\"active\":false}")
        }
    }
}
