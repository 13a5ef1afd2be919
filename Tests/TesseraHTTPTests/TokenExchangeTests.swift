import Foundation
import HTTPTypes
import HummingbirdTesting
import TesseraCore
import TesseraJOSE
import TesseraOAuth
import TesseraStore
import TesseraTesting
import XCTest

/// RFC 8693 token exchange and RFC 6749 §6 refresh through the live token endpoint: narrowing,
/// binding, delegation, lineage, policy decisions in the audit trail, refresh rotation and reuse.
final class TokenExchangeTests: XCTestCase {
    static let exchange = GrantType.tokenExchange.rawValue
    static let accessTokenType = TokenTypeIdentifier.accessToken.rawValue
    static let dpop = HTTPField.Name("DPoP")!

    struct Setup {
        let fixture: BrokerFixture
        let http: any TestClientProtocol
        let connector: BrokerFixture.RegisteredClient
        let gateway: BrokerFixture.RegisteredClient

        var basic: (String, String) { (connector.client.clientID, connector.secret!) }

        func token(scope: String = "crm:contacts.read crm:contacts.write", proof: DPoPProofBuilder? = nil) async throws -> String {
            let response = try await post([("grant_type", "client_credentials"), ("scope", scope)], proof: proof)
            XCTAssertEqual(response.status, .ok, String(buffer: response.body))
            return try XCTUnwrap(response.json["access_token"] as? String)
        }

        func post(_ form: [(String, String)], proof: DPoPProofBuilder? = nil) async throws -> TestResponse {
            var headers: HTTPFields = [:]
            if let proof {
                headers[TokenExchangeTests.dpop] = try proof.proof(url: fixture.settings.tokenEndpoint, now: fixture.clock.now)
            }
            return try await http.postForm("/oauth2/token", form, basic: basic, headers: headers)
        }

        func exchange(
            subject: String, actor: String? = nil, scope: String? = nil, extra: [(String, String)] = [], proof: DPoPProofBuilder? = nil
        ) async throws -> TestResponse {
            var form = [
                ("grant_type", TokenExchangeTests.exchange), ("subject_token", subject),
                ("subject_token_type", TokenExchangeTests.accessTokenType),
            ]
            if let actor { form += [("actor_token", actor), ("actor_token_type", TokenExchangeTests.accessTokenType)] }
            if let scope { form.append(("scope", scope)) }
            return try await post(form + extra, proof: proof)
        }

        func refresh(_ token: String, scope: String? = nil, proof: DPoPProofBuilder? = nil) async throws -> TestResponse {
            var form = [("grant_type", "refresh_token"), ("refresh_token", token)]
            if let scope { form.append(("scope", scope)) }
            return try await post(form, proof: proof)
        }

        func isActive(_ token: String) async throws -> Bool {
            let response = try await http.postForm(
                "/oauth2/introspect", [("token", token)], basic: (gateway.client.clientID, gateway.secret!))
            XCTAssertEqual(response.status, .ok)
            return response.json["active"] as? Bool == true
        }

        @discardableResult
        func putPolicy(_ rules: String) async throws -> StoredPolicy {
            let document = #"{"exchange": ["# + rules.replacingOccurrences(of: "$CLIENT", with: connector.client.clientID) + "]}"
            return try await fixture.store.policies.put(
                tenant: TenantID("acme")!, document: document, at: fixture.clock.now,
                audit: AuditEvent(ts: fixture.clock.now, tenant: "acme", actor: .system, action: "policy.changed", outcome: .success))
        }
    }

    static let permissive = """
        {"id": "sync", "effect": "allow", "clients": ["$CLIENT"], "subject_token_types": ["access_token"],
         "scopes": "crm:contacts.read crm:contacts.write", "actor": "optional", "dpop": "optional", "max_lifetime": 300,
         "refresh_tokens": true, "refresh_lifetime": 3600}
        """

    func withSetup(_ body: @Sendable (Setup) async throws -> Void) async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let connector = try await fixture.addClient(
                tenant: "acme", scopes: "crm:contacts.read crm:contacts.write",
                grants: [.clientCredentials, .tokenExchange, .refreshToken])
            let gateway = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", introspect: true)
            let setup = Setup(fixture: fixture, http: http, connector: connector, gateway: gateway)
            try await setup.putPolicy(Self.permissive)
            try await body(setup)
        }
    }

    func testExchangeNarrowsBindsDelegatesAndRecordsItsParent() async throws {
        try await withSetup { setup in
            let subject = try await setup.token()
            let actor = try await setup.token(scope: "crm:contacts.read")
            let holder = try DPoPProofBuilder()
            let response = try await setup.exchange(subject: subject, actor: actor, scope: "crm:contacts.read", proof: holder)
            XCTAssertEqual(response.status, .ok, String(buffer: response.body))
            XCTAssertEqual(response.json["issued_token_type"] as? String, Self.accessTokenType)
            XCTAssertEqual(response.json["token_type"] as? String, "DPoP")
            XCTAssertEqual(response.json["expires_in"] as? Int, 300)
            let claims = try decodeClaims(try XCTUnwrap(response.json["access_token"] as? String))
            XCTAssertEqual(claims["scope"], "crm:contacts.read")
            XCTAssertEqual(claims["cnf"]?["jkt"]?.stringValue, holder.jkt)
            XCTAssertEqual(claims["act"], .object(["sub": .string(setup.connector.client.clientID)]))
            XCTAssertEqual(claims["aud"], "crm")
            let parent = try decodeClaims(subject)["jti"]?.stringValue
            // The rule issues refresh tokens: the token's parent is its refresh family, whose parent is the subject.
            let recorded = try await setup.fixture.store.tokens.get(jti: try XCTUnwrap(claims["jti"]?.stringValue))
            let family = try await setup.fixture.store.tokens.get(jti: try XCTUnwrap(recorded?.parentJTI))
            XCTAssertTrue(family?.jti.hasPrefix("rf_") == true)
            XCTAssertEqual(family?.parentJTI, parent)
            let event = try await auditEvents(setup.fixture).last
            XCTAssertEqual(event?.action, "token.exchanged")
            let decision = try StrictJSON.parse(Array(try XCTUnwrap(event?.decision).utf8))
            XCTAssertEqual(decision["outcome"], "allow")
            XCTAssertEqual(decision["rule"], "sync")
            XCTAssertEqual(decision["policy_version"], 1)
        }
    }

    func testARefusalWritesOneDenialWithItsDecisionAndNoToken() async throws {
        try await withSetup { setup in
            let subject = try await setup.token(scope: "crm:contacts.read")
            let before = try await auditEvents(setup.fixture).count
            let response = try await setup.exchange(subject: subject, scope: "crm:contacts.write")
            assertOAuthError(response, status: 400, code: "invalid_scope", secrets: [subject])
            let events = try await auditEvents(setup.fixture)
            XCTAssertEqual(events.count, before + 1)
            XCTAssertEqual(events.last?.action, "token.denied")
            XCTAssertNil(events.last?.jti)
            let audience = try await setup.exchange(subject: subject, extra: [("audience", "mail")])
            assertOAuthError(audience, status: 400, code: "invalid_target")
            let lastEvent = try await auditEvents(setup.fixture).last
            let decision = try StrictJSON.parse(Array(try XCTUnwrap(lastEvent?.decision).utf8))
            XCTAssertEqual(decision["outcome"], "deny")
            XCTAssertEqual(decision["rules"]?.arrayValue?.first?["failed"], "audiences: mail is not listed")
        }
    }

    func testARevokedSubjectCannotBeExchanged() async throws {
        try await withSetup { setup in
            let subject = try await setup.token()
            let revoked = try await setup.http.postForm("/oauth2/revoke", [("token", subject)], basic: setup.basic)
            XCTAssertEqual(revoked.status, .ok)
            assertOAuthError(try await setup.exchange(subject: subject), status: 400, code: "invalid_request", secrets: [subject])
        }
    }

    func testTheLifetimeNeverOutlivesTheSubject() async throws {
        try await withSetup { setup in
            let subject = try await setup.token()
            setup.fixture.clock.advance(by: 600 - 42)
            let response = try await setup.exchange(subject: subject)
            XCTAssertEqual(response.json["expires_in"] as? Int, 42)
            setup.fixture.clock.advance(by: 42)
            assertOAuthError(try await setup.exchange(subject: subject), status: 400, code: "invalid_request")
        }
    }

    func testAReusedRefreshTokenRevokesTheWholeFamily() async throws {
        try await withSetup { setup in
            let first = try await setup.exchange(subject: try await setup.token())
            let original = try XCTUnwrap(first.json["refresh_token"] as? String)
            let firstAccess = try XCTUnwrap(first.json["access_token"] as? String)
            let rotated = try await setup.refresh(original)
            XCTAssertEqual(rotated.status, .ok, String(buffer: rotated.body))
            let next = try XCTUnwrap(rotated.json["refresh_token"] as? String)
            XCTAssertNotEqual(next, original)
            XCTAssertNil(rotated.json["issued_token_type"], "RFC 6749 refresh response")
            let refreshedAccess = try XCTUnwrap(rotated.json["access_token"] as? String)
            let refreshedActive = try await setup.isActive(refreshedAccess)
            XCTAssertTrue(refreshedActive)

            assertOAuthError(try await setup.refresh(original), status: 400, code: "invalid_grant", secrets: [original])
            assertOAuthError(try await setup.refresh(next), status: 400, code: "invalid_grant", secrets: [next])
            for token in [firstAccess, refreshedAccess] {
                let active = try await setup.isActive(token)
                XCTAssertFalse(active, "every access token of the family is cut off")
            }
            let actions = try await auditEvents(setup.fixture).map(\.action)
            XCTAssertEqual(actions.filter { $0 == "token.refresh_reused" }.count, 1)
        }
    }

    func testRevokingTheSubjectCutsOffTheRefreshFamily() async throws {
        try await withSetup { setup in
            let subject = try await setup.token()
            let exchanged = try await setup.exchange(subject: subject)
            let refreshToken = try XCTUnwrap(exchanged.json["refresh_token"] as? String)
            _ = try await setup.http.postForm("/oauth2/revoke", [("token", subject)], basic: setup.basic)
            let active = try await setup.isActive(try XCTUnwrap(exchanged.json["access_token"] as? String))
            XCTAssertFalse(active)
            assertOAuthError(try await setup.refresh(refreshToken), status: 400, code: "invalid_grant")
        }
    }

    func testRevokingARefreshTokenRevokesItsFamily() async throws {
        try await withSetup { setup in
            let exchanged = try await setup.exchange(subject: try await setup.token())
            let refreshToken = try XCTUnwrap(exchanged.json["refresh_token"] as? String)
            let revoked = try await setup.http.postForm("/oauth2/revoke", [("token", refreshToken)], basic: setup.basic)
            XCTAssertEqual(revoked.status, .ok)
            let active = try await setup.isActive(try XCTUnwrap(exchanged.json["access_token"] as? String))
            XCTAssertFalse(active)
            assertOAuthError(try await setup.refresh(refreshToken), status: 400, code: "invalid_grant")
        }
    }

    func testABoundFamilyRefreshesOnlyWithItsKey() async throws {
        try await withSetup { setup in
            let holder = try DPoPProofBuilder()
            let exchanged = try await setup.exchange(subject: try await setup.token(), proof: holder)
            let refreshToken = try XCTUnwrap(exchanged.json["refresh_token"] as? String)
            assertOAuthError(try await setup.refresh(refreshToken), status: 400, code: "invalid_dpop_proof")
            assertOAuthError(try await setup.refresh(refreshToken, proof: try DPoPProofBuilder()), status: 400, code: "invalid_dpop_proof")
            let good = try await setup.refresh(refreshToken, scope: "crm:contacts.read", proof: holder)
            XCTAssertEqual(good.status, .ok, String(buffer: good.body))
            XCTAssertEqual(good.json["scope"] as? String, "crm:contacts.read")
            let claims = try decodeClaims(try XCTUnwrap(good.json["access_token"] as? String))
            XCTAssertEqual(claims["cnf"]?["jkt"]?.stringValue, holder.jkt)
            let next = try XCTUnwrap(good.json["refresh_token"] as? String)
            assertOAuthError(
                try await setup.refresh(next, scope: "crm:contacts.delete", proof: holder), status: 400, code: "invalid_scope")
        }
    }

    func testEveryRefreshIsDecidedByTheCurrentPolicy() async throws {
        try await withSetup { setup in
            let exchanged = try await setup.exchange(subject: try await setup.token())
            let refreshToken = try XCTUnwrap(exchanged.json["refresh_token"] as? String)
            try await setup.putPolicy(#"{"id": "none", "effect": "deny", "clients": ["*"], "subject_token_types": ["access_token"]}"#)
            assertOAuthError(try await setup.refresh(refreshToken), status: 400, code: "invalid_grant")
            let event = try await auditEvents(setup.fixture).last
            let decision = try StrictJSON.parse(Array(try XCTUnwrap(event?.decision).utf8))
            XCTAssertEqual(decision["policy_version"], 2)
            XCTAssertEqual(decision["outcome"], "deny")
        }
    }

    func testWithoutAPolicyNothingIsExchanged() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let connector = try await fixture.addClient(
                tenant: "acme", scopes: "crm:contacts.read", grants: [.clientCredentials, .tokenExchange])
            let gateway = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let setup = Setup(fixture: fixture, http: http, connector: connector, gateway: gateway)
            assertOAuthError(
                try await setup.exchange(subject: try await setup.token(scope: "crm:contacts.read")), status: 400, code: "invalid_request")
        }
    }

    func testMalformedExchangeParametersAreRefusedBeforeAnyTokenIsRead() async throws {
        try await withSetup { setup in
            let subject = try await setup.token()
            let cases: [([(String, String)], String)] = [
                ([("grant_type", Self.exchange), ("subject_token_type", Self.accessTokenType)], "invalid_request"),
                ([("grant_type", Self.exchange), ("subject_token", subject)], "invalid_request"),
                (
                    [
                        ("grant_type", Self.exchange), ("subject_token", subject), ("subject_token_type", Self.accessTokenType),
                        ("actor_token", subject),
                    ],
                    "invalid_request"
                ),
                (
                    [
                        ("grant_type", Self.exchange), ("subject_token", subject), ("subject_token_type", Self.accessTokenType),
                        ("requested_token_type", TokenTypeIdentifier.refreshToken.rawValue),
                    ], "invalid_request"
                ),
                (
                    [("grant_type", Self.exchange), ("subject_token", subject), ("subject_token_type", "urn:example:cookie")],
                    "invalid_request"
                ),
                (
                    [
                        ("grant_type", Self.exchange), ("subject_token", subject), ("subject_token_type", Self.accessTokenType),
                        ("resource", "https://crm.example.com/#x"),
                    ], "invalid_target"
                ),
                (
                    [
                        ("grant_type", Self.exchange), ("subject_token", subject), ("subject_token_type", Self.accessTokenType),
                        ("resource", "/relative"),
                    ], "invalid_target"
                ),
                (
                    [
                        ("grant_type", Self.exchange), ("subject_token", String(repeating: "a", count: 20_000)),
                        ("subject_token_type", Self.accessTokenType),
                    ], "invalid_request"
                ),
                (
                    [
                        ("grant_type", Self.exchange), ("subject_token", "not.a.token"),
                        ("subject_token_type", TokenTypeIdentifier.jwt.rawValue),
                    ], "invalid_request"
                ),
                (
                    [
                        ("grant_type", Self.exchange), ("subject_token", subject), ("subject_token_type", Self.accessTokenType),
                        ("scope", "crm:contacts.read  crm:contacts.write"),
                    ], "invalid_scope"
                ),
            ]
            for (form, code) in cases {
                let response = try await setup.post(form)
                assertOAuthError(response, status: 400, code: code, secrets: [subject])
            }
        }
    }

    func testAnotherTenantsTokenIsNeverASubject() async throws {
        try await withSetup { setup in
            try await setup.fixture.addTenant("globex")
            let stranger = try await setup.fixture.addClient(tenant: "globex", scopes: "crm:contacts.read")
            let foreign = try await setup.http.postForm(
                "/oauth2/token", [("grant_type", "client_credentials")], basic: (stranger.client.clientID, stranger.secret!))
            let token = try XCTUnwrap(foreign.json["access_token"] as? String)
            assertOAuthError(try await setup.exchange(subject: token), status: 400, code: "invalid_request", secrets: [token])
        }
    }

    /// The narrowing invariant on many generated requests: whatever is asked, every issued token's
    /// scopes are covered by the subject's, its audience is what the rule allows, and its lifetime
    /// is within the subject's and the rule's.
    func testGeneratedExchangesOnlyEverNarrow() async throws {
        try await withSetup { setup in
            try await setup.putPolicy(
                """
                {"id": "narrow", "effect": "allow", "clients": ["$CLIENT"], "subject_token_types": ["access_token"],
                 "scopes": "crm:contacts.read crm:contacts.write:ids=1,2,3", "audiences": ["crm", "crm-eu"], "actor": "optional",
                 "dpop": "optional", "max_lifetime": 240}
                """)
            let held = try ScopeSet(parsing: "crm:contacts.read:fields=name,email crm:contacts.write:ids=1,2")
            let subject = try await setup.token(scope: held.description)
            var generator = SeededGenerator(seed: 0x7E55E8A)
            let bases = ["crm:contacts.read", "crm:contacts.write", "crm:contacts.delete", "mail:messages.read"]
            let parameters = [("fields", ["name", "email", "phone"]), ("ids", ["1", "2", "3", "4"])]
            var issued = 0
            for _ in 0..<150 {
                var scopes: [String] = []
                for base in bases where generator.next() % 3 == 0 {
                    var text = base
                    for (name, values) in parameters where generator.next() % 2 == 0 {
                        let chosen = values.filter { _ in generator.next() % 2 == 0 }
                        if !chosen.isEmpty { text += ":\(name)=" + chosen.joined(separator: ",") }
                    }
                    scopes.append(text)
                }
                var extra: [(String, String)] = []
                for audience in ["crm", "crm-eu", "mail"] where generator.next() % 4 == 0 { extra.append(("audience", audience)) }
                let response = try await setup.exchange(
                    subject: subject, scope: scopes.isEmpty ? nil : scopes.joined(separator: " "), extra: extra)
                guard response.status == .ok else {
                    XCTAssertEqual(response.status.code, 400)
                    XCTAssertTrue(
                        ["invalid_scope", "invalid_target", "invalid_request"].contains(response.errorCode ?? ""),
                        "\(response.errorCode ?? "")")
                    continue
                }
                issued += 1
                let claims = try decodeClaims(try XCTUnwrap(response.json["access_token"] as? String))
                let granted = try ScopeSet(parsing: try XCTUnwrap(claims["scope"]?.stringValue))
                XCTAssertTrue(held.covers(granted), "granted \(granted) beyond held \(held)")
                XCTAssertTrue(setup.connector.client.scopes.covers(granted))
                let audience = claims["aud"]?.stringValue.map { [$0] } ?? claims["aud"]?.arrayValue?.compactMap(\.stringValue) ?? []
                XCTAssertTrue(Set(audience).isSubset(of: ["crm", "crm-eu"]), "\(audience)")
                let lifetime = try XCTUnwrap(claims["exp"]?.doubleValue) - (try XCTUnwrap(claims["iat"]?.doubleValue))
                XCTAssertLessThanOrEqual(lifetime, 240)
            }
            XCTAssertGreaterThan(issued, 10, "the generator must also produce allowed requests")
        }
    }
}
