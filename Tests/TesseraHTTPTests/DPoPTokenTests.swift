import Foundation
import HTTPTypes
import HummingbirdTesting
import TesseraCore
import TesseraJOSE
import TesseraOAuth
import TesseraTesting
import XCTest

/// DPoP at the token endpoint (RFC 9449 §5, §6, §8) and the resource-server check (§7).
final class DPoPTokenTests: XCTestCase {
    static let dpop = HTTPField.Name("DPoP")!
    static let dpopNonce = HTTPField.Name("DPoP-Nonce")!

    static func grant(
        _ http: any TestClientProtocol, _ registered: BrokerFixture.RegisteredClient, proofs: [String]
    ) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        for proof in proofs { headers.append(HTTPField(name: dpop, value: proof)) }
        return try await http.postForm(
            "/oauth2/token", [("grant_type", "client_credentials")], basic: (registered.client.clientID, registered.secret!),
            headers: headers)
    }

    func testAProofBindsTheTokenToTheClientKey() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let gateway = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", introspect: true)
            let holder = try DPoPProofBuilder()
            let response = try await Self.grant(
                http, registered, proofs: [try holder.proof(url: fixture.settings.tokenEndpoint, now: fixture.clock.now)])
            XCTAssertEqual(response.status, .ok)
            XCTAssertEqual(response.json["token_type"] as? String, "DPoP")
            let token = try XCTUnwrap(response.json["access_token"] as? String)
            XCTAssertEqual(try decodeClaims(token)["cnf"]?["jkt"]?.stringValue, holder.jkt)
            let introspected = try await http.postForm(
                "/oauth2/introspect", [("token", token)], basic: (gateway.client.clientID, gateway.secret!))
            XCTAssertEqual(introspected.json["token_type"] as? String, "DPoP")
            XCTAssertEqual((introspected.json["cnf"] as? [String: Any])?["jkt"] as? String, holder.jkt)
            // Without a proof the same client gets an unbound Bearer token.
            let bearer = try await Self.grant(http, registered, proofs: [])
            XCTAssertEqual(bearer.json["token_type"] as? String, "Bearer")
            XCTAssertNil(try decodeClaims(bearer.json["access_token"] as! String)["cnf"])
        }
    }

    func testEveryWrongProofIsInvalidDPoPProof() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let holder = try DPoPProofBuilder()
            let url = fixture.settings.tokenEndpoint
            let now = fixture.clock.now
            var privateJWK = holder.key.privateJWK.objectValue!
            privateJWK["kid"] = nil
            // Signed by hand: the library refuses to put a private key in a header.
            let header: [String: JSONValue] = ["alg": .string("ES256"), "typ": .string("dpop+jwt"), "jwk": .object(privateJWK)]
            let claims: [String: JSONValue] = [
                "jti": .string("x1"), "htm": .string("POST"), "htu": .string(url), "iat": .number(now.timeIntervalSince1970),
            ]
            let input =
                Base64URL.encode(StrictJSON.serialize(.object(header))) + "." + Base64URL.encode(StrictJSON.serialize(.object(claims)))
            let withPrivateKey = input + "." + Base64URL.encode(try holder.key.sign(Array(input.utf8)))
            let replayed = try holder.proof(url: url, now: now)
            let first = try await Self.grant(http, registered, proofs: [replayed])
            XCTAssertEqual(first.status, .ok)
            let cases: [(String, [String])] = [
                ("replayed proof", [replayed]),
                ("proof for another URL", [try holder.proof(url: "http://127.0.0.1:8080/oauth2/introspect", now: now)]),
                ("proof for another method", [try holder.proof(method: "GET", url: url, now: now)]),
                ("stale iat", [try holder.proof(url: url, now: now.addingTimeInterval(-600))]),
                ("future iat", [try holder.proof(url: url, now: now.addingTimeInterval(600))]),
                ("wrong typ", [try holder.proof(url: url, now: now, typ: "JWT")]),
                ("private key in jwk", [withPrivateKey]),
                ("ath without a token", [try holder.proof(url: url, now: now, accessToken: "some-token")]),
                ("two DPoP headers", [try holder.proof(url: url, now: now), try holder.proof(url: url, now: now)]),
                ("garbage", ["not-a-jwt"]),
                (
                    "alg none",
                    [
                        ClientAssertionBuilder.unsigned(
                            header: ["alg": .string("none"), "typ": .string("dpop+jwt"), "jwk": holder.key.publicJWK.json],
                            claims: [
                                "jti": .string("n"), "htm": .string("POST"), "htu": .string(url), "iat": .number(now.timeIntervalSince1970),
                            ])
                    ]
                ),
            ]
            for (name, proofs) in cases {
                let response = try await Self.grant(http, registered, proofs: proofs)
                XCTAssertEqual(response.status.code, 400, name)
                XCTAssertEqual(response.errorCode, "invalid_dpop_proof", name)
            }
            let events = try await auditEvents(fixture)
            XCTAssertEqual(events.filter { $0.action == "token.issued" }.count, 1)
            XCTAssertTrue(events.contains { ($0.reason ?? "").contains("Replay") })
        }
    }

    func testAClientThatRequiresDPoPGetsNoTokenWithoutAProof() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", dpop: .required)
            let refused = try await Self.grant(http, registered, proofs: [])
            assertOAuthError(refused, status: 400, code: "invalid_dpop_proof")
            let holder = try DPoPProofBuilder()
            let accepted = try await Self.grant(
                http, registered, proofs: [try holder.proof(url: fixture.settings.tokenEndpoint, now: fixture.clock.now)])
            XCTAssertEqual(accepted.status, .ok)
        }
    }

    func testServerNonceIsRequiredThenAccepted() async throws {
        try await withLiveBroker(dpopNonces: true) { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let holder = try DPoPProofBuilder()
            let url = fixture.settings.tokenEndpoint
            let first = try await Self.grant(http, registered, proofs: [try holder.proof(url: url, now: fixture.clock.now)])
            assertOAuthError(first, status: 400, code: "use_dpop_nonce")
            let nonce = try XCTUnwrap(first.headers[Self.dpopNonce])
            let forged = try await Self.grant(
                http, registered, proofs: [try holder.proof(url: url, now: fixture.clock.now, nonce: "forged-nonce")])
            assertOAuthError(forged, status: 400, code: "use_dpop_nonce")
            let second = try await Self.grant(http, registered, proofs: [try holder.proof(url: url, now: fixture.clock.now, nonce: nonce)])
            XCTAssertEqual(second.status, .ok)
            XCTAssertNotNil(second.headers[Self.dpopNonce], "a fresh nonce comes with the answer")
            fixture.clock.advance(by: 3600)
            let stale = try await Self.grant(http, registered, proofs: [try holder.proof(url: url, now: fixture.clock.now, nonce: nonce)])
            assertOAuthError(stale, status: 400, code: "use_dpop_nonce")
        }
    }

    func testResourceServerCheckAcceptsOnlyTheBoundKeyAndRefusesDowngrade() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let holder = try DPoPProofBuilder()
            let thief = try DPoPProofBuilder()
            let response = try await Self.grant(
                http, registered, proofs: [try holder.proof(url: fixture.settings.tokenEndpoint, now: fixture.clock.now)])
            let token = try XCTUnwrap(response.json["access_token"] as? String)
            let resource = ProtectedResourceVerifier(accessTokens: fixture.broker.accessTokens, replay: fixture.store.replay)
            let api = "https://crm.example/contacts"
            let now = fixture.clock.now
            let proof = try holder.proof(method: "GET", url: api, now: now, accessToken: token)
            let verified = try await resource.verify(authorization: "DPoP \(token)", dpopProofs: [proof], method: "GET", url: api, now: now)
            XCTAssertEqual(verified.clientID, registered.client.clientID)

            let refusals: [(String, String, [String])] = [
                ("replayed proof", "DPoP \(token)", [proof]),
                ("stolen token, thief's key", "DPoP \(token)", [try thief.proof(method: "GET", url: api, now: now, accessToken: token)]),
                ("proof without ath", "DPoP \(token)", [try holder.proof(method: "GET", url: api, now: now)]),
                (
                    "proof for another URL", "DPoP \(token)",
                    [try holder.proof(method: "GET", url: "https://crm.example/deals", now: now, accessToken: token)]
                ),
                ("downgrade to Bearer", "Bearer \(token)", []),
                ("no proof", "DPoP \(token)", []),
            ]
            for (name, authorization, proofs) in refusals {
                do {
                    _ = try await resource.verify(authorization: authorization, dpopProofs: proofs, method: "GET", url: api, now: now)
                    XCTFail("accepted: \(name)")
                } catch {}
            }
        }
    }

    func testMetadataAdvertisesDPoPAlgorithms() async throws {
        try await withLiveBroker { _, http in
            let metadata = try await http.execute(uri: "/.well-known/oauth-authorization-server", method: .get)
            XCTAssertEqual(
                Set(metadata.json["dpop_signing_alg_values_supported"] as? [String] ?? []), ["ES256", "EdDSA", "PS256", "RS256"])
        }
    }
}
