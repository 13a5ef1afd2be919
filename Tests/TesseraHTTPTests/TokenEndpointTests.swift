import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import TesseraCore
import TesseraJOSE
import TesseraOAuth
import TesseraStore
import TesseraTesting
import XCTest

final class TokenEndpointTests: XCTestCase {
    func testClientCredentialsWithBasicIssuesAnRFC9068TokenAndAuditsIt() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read crm:contacts.write:ids=1,2")
            let response = try await http.postForm(
                "/oauth2/token", [("grant_type", "client_credentials"), ("scope", "crm:contacts.write:ids=1")],
                basic: (registered.client.clientID, registered.secret!))
            XCTAssertEqual(response.status, .ok)
            XCTAssertEqual(response.headers[.cacheControl], "no-store")
            XCTAssertEqual(response.json["token_type"] as? String, "Bearer")
            XCTAssertEqual(response.json["expires_in"] as? Int, 600)
            XCTAssertEqual(response.json["scope"] as? String, "crm:contacts.write:ids=1")
            let token = try XCTUnwrap(response.json["access_token"] as? String)
            let jws = try CompactJWS(parsing: token)
            XCTAssertEqual(jws.header.typ, "at+jwt")
            XCTAssertEqual(jws.header.alg, .ES256)
            XCTAssertEqual(jws.header.kid, fixture.broker.keyRing.activeKey.kid)
            let claims = try decodeClaims(token)
            XCTAssertEqual(claims["iss"]?.stringValue, BrokerFixture.issuer)
            XCTAssertEqual(claims["sub"]?.stringValue, registered.client.clientID)
            XCTAssertEqual(claims["client_id"]?.stringValue, registered.client.clientID)
            XCTAssertEqual(claims["tid"]?.stringValue, "acme")
            XCTAssertEqual(claims["sub_type"]?.stringValue, "service")
            XCTAssertEqual(claims["aud"]?.stringValue, "crm")
            XCTAssertEqual(claims["scope"]?.stringValue, "crm:contacts.write:ids=1")
            XCTAssertEqual((claims["exp"]?.doubleValue ?? 0) - (claims["iat"]?.doubleValue ?? 0), 600)
            let jti = try XCTUnwrap(claims["jti"]?.stringValue)
            let issued = try await fixture.store.tokens.get(jti: jti)
            XCTAssertEqual(issued?.clientID, registered.client.clientID)
            let events = try await auditEvents(fixture)
            let issuedEvent = try XCTUnwrap(events.first { $0.action == "token.issued" })
            XCTAssertEqual(issuedEvent.jti, jti)
            XCTAssertEqual(issuedEvent.scopes?.granted, ["crm:contacts.write:ids=1"])
            let chain = try await AuditChain.verify(fixture.store.audit)
            XCTAssertEqual(chain, .intact(count: Int64(events.count)))
        }
    }

    func testClientSecretPostAndDefaultScopes() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", method: .clientSecretPost)
            let response = try await http.postForm(
                "/oauth2/token",
                [("grant_type", "client_credentials"), ("client_id", registered.client.clientID), ("client_secret", registered.secret!)])
            XCTAssertEqual(response.status, .ok)
            XCTAssertEqual(response.json["scope"] as? String, "crm:contacts.read")
            // A client registered for client_secret_post cannot switch to Basic.
            let basic = try await http.postForm(
                "/oauth2/token", [("grant_type", "client_credentials")], basic: (registered.client.clientID, registered.secret!))
            assertOAuthError(basic, status: 401, code: "invalid_client")
        }
    }

    func testMalformedAndHostileRequestsGetTheRightRFCError() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read:ids=1,2")
            let id = registered.client.clientID, secret = registered.secret!
            let basic = "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString()
            struct Case { let name: String; let body: String; let headers: HTTPFields; let status: Int; let code: String }
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .authorization: basic]
            let cases: [Case] = [
                Case(
                    name: "json body", body: "{\"grant_type\":\"client_credentials\"}",
                    headers: [.contentType: "application/json", .authorization: basic], status: 400, code: "invalid_request"),
                Case(
                    name: "no content type", body: "grant_type=client_credentials", headers: [.authorization: basic], status: 400,
                    code: "invalid_request"),
                Case(name: "missing grant_type", body: "scope=crm:contacts.read", headers: form, status: 400, code: "invalid_request"),
                Case(
                    name: "duplicate grant_type", body: "grant_type=client_credentials&grant_type=client_credentials", headers: form,
                    status: 400, code: "invalid_request"),
                Case(
                    name: "duplicate scope", body: "grant_type=client_credentials&scope=a&scope=b", headers: form, status: 400,
                    code: "invalid_request"),
                Case(
                    name: "unknown grant", body: "grant_type=password&username=a&password=b", headers: form, status: 400,
                    code: "unsupported_grant_type"),
                Case(
                    name: "implicit-style grant", body: "grant_type=authorization_code&code=x", headers: form, status: 400,
                    code: "unsupported_grant_type"),
                Case(
                    name: "bad percent escape", body: "grant_type=client_credentials&scope=%zz", headers: form, status: 400,
                    code: "invalid_request"),
                Case(
                    name: "truncated percent escape", body: "grant_type=client_credentials&scope=%4", headers: form, status: 400,
                    code: "invalid_request"),
                Case(
                    name: "invalid UTF-8", body: "grant_type=client_credentials&scope=%ff%fe", headers: form, status: 400,
                    code: "invalid_request"),
                Case(
                    name: "parameter without =", body: "grant_type=client_credentials&scope", headers: form, status: 400,
                    code: "invalid_request"),
                Case(
                    name: "bad scope syntax", body: "grant_type=client_credentials&scope=crm", headers: form, status: 400,
                    code: "invalid_scope"),
                Case(
                    name: "broader scope", body: "grant_type=client_credentials&scope=crm:contacts.read", headers: form, status: 400,
                    code: "invalid_scope"),
                Case(
                    name: "other id", body: "grant_type=client_credentials&scope=crm:contacts.read:ids=3", headers: form, status: 400,
                    code: "invalid_scope"),
                Case(
                    name: "wildcard", body: "grant_type=client_credentials&scope=crm:contacts.read:ids=*", headers: form, status: 400,
                    code: "invalid_scope"),
                Case(
                    name: "resource", body: "grant_type=client_credentials&resource=https://api.example", headers: form, status: 400,
                    code: "invalid_target"),
                Case(
                    name: "no credentials", body: "grant_type=client_credentials",
                    headers: [.contentType: "application/x-www-form-urlencoded"], status: 401, code: "invalid_client"),
                Case(
                    name: "bearer scheme", body: "grant_type=client_credentials",
                    headers: [.contentType: "application/x-www-form-urlencoded", .authorization: "Bearer abc"], status: 401,
                    code: "invalid_client"),
                Case(
                    name: "basic not base64", body: "grant_type=client_credentials",
                    headers: [.contentType: "application/x-www-form-urlencoded", .authorization: "Basic !!!"], status: 401,
                    code: "invalid_client"),
                Case(
                    name: "basic without colon", body: "grant_type=client_credentials",
                    headers: [
                        .contentType: "application/x-www-form-urlencoded", .authorization: "Basic " + Data(id.utf8).base64EncodedString(),
                    ], status: 401, code: "invalid_client"),
                Case(
                    name: "two methods", body: "grant_type=client_credentials&client_id=\(id)&client_secret=\(secret)", headers: form,
                    status: 400, code: "invalid_request"),
                Case(
                    name: "client_id mismatch", body: "grant_type=client_credentials&client_id=someone-else", headers: form, status: 400,
                    code: "invalid_request"),
                Case(
                    name: "secret without id", body: "grant_type=client_credentials&client_secret=x",
                    headers: [.contentType: "application/x-www-form-urlencoded"], status: 400, code: "invalid_request"),
                Case(
                    name: "unknown assertion type",
                    body: "grant_type=client_credentials&client_assertion_type=urn:x&client_assertion=a.b.c",
                    headers: [.contentType: "application/x-www-form-urlencoded"], status: 401, code: "invalid_client"),
                Case(
                    name: "garbage assertion",
                    body:
                        "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=not-a-jwt&client_id=\(id)",
                    headers: [.contentType: "application/x-www-form-urlencoded"], status: 401, code: "invalid_client"),
            ]
            for testCase in cases {
                let response = try await http.execute(
                    uri: "/oauth2/token", method: .post, headers: testCase.headers, body: ByteBuffer(string: testCase.body))
                XCTAssertEqual(response.status.code, testCase.status, testCase.name)
                XCTAssertEqual(response.errorCode, testCase.code, testCase.name)
                XCTAssertEqual(response.headers[.cacheControl], "no-store", testCase.name)
                XCTAssertFalse(String(buffer: response.body).contains(secret), testCase.name)
            }
            // Nothing was issued by any of them.
            let events = try await auditEvents(fixture)
            XCTAssertFalse(events.contains { $0.action == "token.issued" })
            XCTAssertTrue(events.contains { $0.action == "token.denied" && ($0.reason ?? "").contains("invalid_scope") })
            XCTAssertTrue(events.contains { $0.action == "client.auth_failed" })
        }
    }

    func testOversizedBodyIsRefusedWithoutBeingProcessed() async throws {
        try await withLiveBroker { fixture, http in
            let huge = "grant_type=client_credentials&scope=" + String(repeating: "a", count: 70 * 1024)
            let response = try await http.execute(
                uri: "/oauth2/token", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: huge))
            XCTAssertTrue([400, 413].contains(response.status.code), "got \(response.status.code)")
            XCTAssertNotEqual(response.status.code, 500)
            let tooMany = (0..<100).map { "p\($0)=v" }.joined(separator: "&")
            let many = try await http.execute(
                uri: "/oauth2/token", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: tooMany))
            assertOAuthError(many, status: 400, code: "invalid_request")
        }
    }

    func testWrongSecretUnknownAndDisabledClientsAreInvalidClientAndAudited() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let wrong = try await http.postForm(
                "/oauth2/token", [("grant_type", "client_credentials")], basic: (registered.client.clientID, "tsec_wrong"))
            assertOAuthError(wrong, status: 401, code: "invalid_client")
            let unknown = try await http.postForm("/oauth2/token", [("grant_type", "client_credentials")], basic: ("tcl_nobody", "x"))
            assertOAuthError(unknown, status: 401, code: "invalid_client")
            XCTAssertEqual(String(buffer: wrong.body), String(buffer: unknown.body), "unknown and wrong secret look the same")
            try await fixture.store.clients.disable(
                clientID: registered.client.clientID, at: fixture.clock.now,
                audit: AuditEvent(ts: fixture.clock.now, tenant: "acme", actor: .system, action: "client.disabled", outcome: .success))
            let disabled = try await http.postForm(
                "/oauth2/token", [("grant_type", "client_credentials")], basic: (registered.client.clientID, registered.secret!))
            assertOAuthError(disabled, status: 401, code: "invalid_client", secrets: [registered.secret!])
            let failures = try await auditEvents(fixture).filter { $0.action == "client.auth_failed" }
            XCTAssertEqual(failures.count, 3)
            XCTAssertTrue(failures.contains { ($0.reason ?? "").contains("wrong client secret") })
            XCTAssertTrue(failures.contains { ($0.reason ?? "").contains("disabled") })
        }
    }

    func testClientNotRegisteredForTheGrantIsUnauthorizedClient() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", grants: [.tokenExchange])
            let response = try await http.postForm(
                "/oauth2/token", [("grant_type", "client_credentials")], basic: (registered.client.clientID, registered.secret!))
            assertOAuthError(response, status: 400, code: "unauthorized_client")
        }
    }

    func testRepeatedAuthenticationFailuresAreThrottledEvenWithTheRightSecret() async throws {
        let throttle = AuthFailureThrottle(limits: .init(window: 60, perClient: 3, perAddress: 100))
        try await withLiveBroker(throttle: throttle) { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            for _ in 0..<3 {
                let response = try await http.postForm(
                    "/oauth2/token", [("grant_type", "client_credentials")], basic: (registered.client.clientID, "tsec_guess"))
                assertOAuthError(response, status: 401, code: "invalid_client")
            }
            let throttled = try await http.postForm(
                "/oauth2/token", [("grant_type", "client_credentials")], basic: (registered.client.clientID, registered.secret!))
            assertOAuthError(throttled, status: 429, code: "slow_down")
            XCTAssertNotNil(throttled.headers[.retryAfter])
            let auditedThrottle = try await auditEvents(fixture).contains { ($0.reason ?? "").contains("throttled") }
            XCTAssertTrue(auditedThrottle)
        }
    }

    func testThrottleCountsFailuresPerSourceAddressAcrossClients() async throws {
        let throttle = AuthFailureThrottle(limits: .init(window: 60, perClient: 100, perAddress: 4))
        try await withLiveBroker(throttle: throttle) { fixture, http in
            for index in 0..<4 {
                let response = try await http.postForm(
                    "/oauth2/token", [("grant_type", "client_credentials")], basic: ("tcl_guess\(index)", "x"))
                assertOAuthError(response, status: 401, code: "invalid_client")
            }
            let throttled = try await http.postForm("/oauth2/token", [("grant_type", "client_credentials")], basic: ("tcl_another", "x"))
            assertOAuthError(throttled, status: 429, code: "slow_down")
        }
    }
}
