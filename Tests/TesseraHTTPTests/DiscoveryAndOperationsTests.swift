import Foundation
import HTTPTypes
import HummingbirdTesting
import TesseraCore
import TesseraJOSE
import TesseraOAuth
import TesseraTesting
import XCTest

final class DiscoveryAndOperationsTests: XCTestCase {
    func testMetadataIsServedAtBothWellKnownPaths() async throws {
        try await withLiveBroker { fixture, http in
            for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
                let response = try await http.execute(uri: path, method: .get)
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(response.json["issuer"] as? String, BrokerFixture.issuer)
                XCTAssertEqual(response.json["token_endpoint"] as? String, BrokerFixture.issuer + "/oauth2/token")
                XCTAssertEqual(response.json["jwks_uri"] as? String, BrokerFixture.issuer + "/oauth2/jwks")
                XCTAssertEqual(
                    response.json["grant_types_supported"] as? [String],
                    ["client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"])
                XCTAssertEqual(
                    Set(response.json["token_endpoint_auth_methods_supported"] as? [String] ?? []),
                    ["client_secret_basic", "client_secret_post", "private_key_jwt"])
                XCTAssertFalse(
                    (response.json["token_endpoint_auth_signing_alg_values_supported"] as? [String] ?? []).contains {
                        $0 == "none" || $0.hasPrefix("HS")
                    })
            }
        }
    }

    func testJWKSPublishesTheActiveAndTheNextKeyWithoutPrivateMembers() async throws {
        try await withLiveBroker { fixture, http in
            let response = try await http.execute(uri: "/oauth2/jwks", method: .get)
            XCTAssertEqual(response.status, .ok)
            let keys = try XCTUnwrap(response.json["keys"] as? [[String: Any]])
            XCTAssertEqual(keys.count, 2)
            XCTAssertTrue(keys.contains { $0["kid"] as? String == fixture.broker.keyRing.activeKey.kid })
            for key in keys {
                for member in ["d", "p", "q", "dp", "dq", "qi", "k"] { XCTAssertNil(key[member]) }
                XCTAssertEqual(key["use"] as? String, "sig")
            }
        }
    }

    func testRotationSignsWithThePrePublishedKeyAndOldTokensStayVerifiable() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let service = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let gateway = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", introspect: true)
            let before = try await http.execute(uri: "/oauth2/jwks", method: .get).json["keys"] as? [[String: Any]] ?? []
            let kidsBefore = Set(before.compactMap { $0["kid"] as? String })
            let oldToken =
                try await http.postForm(
                    "/oauth2/token", [("grant_type", "client_credentials")], basic: (service.client.clientID, service.secret!)
                ).json["access_token"] as! String

            let rotation = try fixture.keyDirectory.rotate(algorithm: .ES256, now: fixture.clock.now)
            XCTAssertTrue(try fixture.broker.keyRing.reloadIfChanged())
            XCTAssertTrue(kidsBefore.contains(rotation.activated), "the new signing key was published before it signed")

            let newToken =
                try await http.postForm(
                    "/oauth2/token", [("grant_type", "client_credentials")], basic: (service.client.clientID, service.secret!)
                ).json["access_token"] as! String
            XCTAssertEqual(try CompactJWS(parsing: newToken).header.kid, rotation.activated)
            let after = try await http.execute(uri: "/oauth2/jwks", method: .get).json["keys"] as? [[String: Any]] ?? []
            XCTAssertEqual(Set(after.compactMap { $0["kid"] as? String }), kidsBefore.union([rotation.published]))
            for token in [oldToken, newToken] {
                let response = try await http.postForm(
                    "/oauth2/introspect", [("token", token)], basic: (gateway.client.clientID, gateway.secret!))
                XCTAssertEqual(response.json["active"] as? Bool, true)
            }
            // Once every token the retired key signed has expired, it leaves JWKS.
            fixture.clock.advance(by: fixture.settings.keyRetention + 1)
            let later = try await http.execute(uri: "/oauth2/jwks", method: .get).json["keys"] as? [[String: Any]] ?? []
            XCTAssertFalse(later.contains { $0["kid"] as? String == rotation.retired })
        }
    }

    func testHealthReadinessAndMetrics() async throws {
        try await withLiveBroker { fixture, http in
            let health = try await http.execute(uri: "/healthz", method: .get).status
            XCTAssertEqual(health, .ok)
            let readiness = try await http.execute(uri: "/readyz", method: .get).status
            XCTAssertEqual(readiness, .ok)
            _ = try await http.postForm("/oauth2/token", [("grant_type", "client_credentials")], basic: ("nobody", "x"))
            let metrics = String(buffer: try await http.execute(uri: "/metrics", method: .get).body)
            XCTAssertTrue(metrics.contains("tessera_token_grants_total"))
            XCTAssertTrue(metrics.contains("tessera_http_request_duration_seconds"))
            XCTAssertTrue(metrics.contains("invalid_client"))
        }
    }

    func testReadinessFailsWhenTheStoreIsGoneAndGrantsAnswer503() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            await fixture.store.close()
            let readiness = try await http.execute(uri: "/readyz", method: .get)
            XCTAssertEqual(readiness.status, .serviceUnavailable)
            let liveness = try await http.execute(uri: "/healthz", method: .get)
            XCTAssertEqual(liveness.status, .ok, "alive, just not ready")
            let grant = try await http.postForm(
                "/oauth2/token", [("grant_type", "client_credentials")], basic: (registered.client.clientID, registered.secret!))
            assertOAuthError(grant, status: 503, code: "temporarily_unavailable", secrets: [registered.secret!])
            XCTAssertNotNil(grant.headers[.retryAfter])
        }
    }

    func testUnknownRoutesAndMethodsNeverAnswer500() async throws {
        try await withLiveBroker { _, http in
            for (path, method) in [
                ("/oauth2/token", HTTPRequest.Method.get), ("/nope", .get), ("/oauth2/jwks", .post), ("/oauth2/introspect", .put),
            ] {
                let response = try await http.execute(uri: path, method: method)
                XCTAssertTrue((400..<500).contains(response.status.code), "\(method) \(path) → \(response.status.code)")
            }
            let get = try await http.execute(uri: "/oauth2/token", method: .get)
            XCTAssertEqual(get.status, .methodNotAllowed)
            XCTAssertEqual(get.headers[HTTPField.Name("Allow")!], "POST")
        }
    }
}
