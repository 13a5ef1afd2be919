import Crypto
import Foundation
import HummingbirdTesting
import TesseraCore
import TesseraJOSE
import TesseraOAuth
import TesseraTesting
import XCTest

/// RFC 7523 client authentication, one test per way an assertion can be wrong.
final class PrivateKeyJWTTests: XCTestCase {
    static let assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    static func form(_ assertion: String, clientID: String? = nil) -> [(String, String)] {
        var form = [("grant_type", "client_credentials"), ("client_assertion_type", Self.assertionType), ("client_assertion", assertion)]
        if let clientID { form.append(("client_id", clientID)) }
        return form
    }

    func testValidAssertionsForEverySupportedAlgorithmAreAccepted() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            for algorithm in [JWSAlgorithm.ES256, .ES384, .EdDSA, .RS256, .PS256] {
                let registered = try await fixture.addClient(
                    tenant: "acme", scopes: "crm:contacts.read", method: .privateKeyJWT, keyAlgorithm: algorithm)
                let assertion = try ClientAssertionBuilder(
                    clientID: registered.client.clientID, audience: fixture.settings.tokenEndpoint, key: registered.signingKey!,
                    now: fixture.clock.now
                ).build()
                let response = try await http.postForm("/oauth2/token", Self.form(assertion))
                XCTAssertEqual(response.status, .ok, "\(algorithm)")
            }
            // The issuer identifier is an accepted audience too (RFC 7523 §3).
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", method: .privateKeyJWT)
            let assertion = try ClientAssertionBuilder(
                clientID: registered.client.clientID, audience: fixture.settings.issuer, key: registered.signingKey!, now: fixture.clock.now
            ).build()
            let response = try await http.postForm("/oauth2/token", Self.form(assertion, clientID: registered.client.clientID))
            XCTAssertEqual(response.status, .ok)
        }
    }

    func testReplayedAssertionIsRefused() async throws {
        try await withLiveBroker { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", method: .privateKeyJWT)
            let assertion = try ClientAssertionBuilder(
                clientID: registered.client.clientID, audience: fixture.settings.tokenEndpoint, key: registered.signingKey!,
                now: fixture.clock.now
            ).build()
            let first = try await http.postForm("/oauth2/token", Self.form(assertion))
            XCTAssertEqual(first.status, .ok)
            let replay = try await http.postForm("/oauth2/token", Self.form(assertion))
            assertOAuthError(replay, status: 401, code: "invalid_client")
            let auditedReplay = try await auditEvents(fixture).contains { ($0.reason ?? "").contains("replayed") }
            XCTAssertTrue(auditedReplay)
        }
    }

    func testEveryWrongAssertionIsInvalidClient() async throws {
        // Generous limits: this test is about each assertion's verdict, not about throttling.
        let lenient = AuthFailureThrottle(limits: .init(window: 60, perClient: 1000, perAddress: 1000))
        try await withLiveBroker(throttle: lenient) { fixture, http in
            try await fixture.addTenant("acme")
            let registered = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read", method: .privateKeyJWT)
            let rsaClient = try await fixture.addClient(
                tenant: "acme", scopes: "crm:contacts.read", method: .privateKeyJWT, keyAlgorithm: .RS256)
            let secretClient = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
            let id = registered.client.clientID
            let now = fixture.clock.now.timeIntervalSince1970.rounded(.down)
            let valid = ClientAssertionBuilder(
                clientID: id, audience: fixture.settings.tokenEndpoint, key: registered.signingKey!, now: fixture.clock.now)
            func variant(_ change: (inout ClientAssertionBuilder) -> Void) throws -> String {
                var builder = valid
                builder.claims["jti"] = .string(Secrets.randomToken())
                change(&builder)
                return try builder.build()
            }
            let strangerKey = try JWSSigningKey.generate(.ES256, kid: registered.signingKey!.kid)
            // HMAC "signed" with the RSA client's public key bytes: the classic alg-confusion attack.
            let rsaPublic = StrictJSON.serialize(rsaClient.signingKey!.publicJWK.json)
            let hsHeader: [String: JSONValue] = ["alg": .string("HS256"), "typ": .string("JWT"), "kid": .string(rsaClient.signingKey!.kid)]
            let hsClaims: [String: JSONValue] = [
                "iss": .string(rsaClient.client.clientID), "sub": .string(rsaClient.client.clientID),
                "aud": .string(fixture.settings.tokenEndpoint),
                "exp": .number(now + 60), "jti": .string(Secrets.randomToken()),
            ]
            let hsInput =
                Base64URL.encode(StrictJSON.serialize(.object(hsHeader))) + "." + Base64URL.encode(StrictJSON.serialize(.object(hsClaims)))
            let mac = HMAC<SHA256>.authenticationCode(for: Array(hsInput.utf8), using: SymmetricKey(data: rsaPublic))
            let hsToken = hsInput + "." + Base64URL.encode(Array(mac))

            let cases: [(String, String)] = [
                ("wrong audience", try variant { $0.claims["aud"] = .string("https://other.example/token") }),
                ("audience list without us", try variant { $0.claims["aud"] = .array([.string("https://other.example")]) }),
                ("no audience", try variant { $0.claims["aud"] = nil }),
                ("expired", try variant { $0.claims["exp"] = .number(now - 120) }),
                ("exp too far ahead", try variant { $0.claims["exp"] = .number(now + 3600) }),
                ("no exp", try variant { $0.claims["exp"] = nil }),
                ("iat in the future", try variant { $0.claims["iat"] = .number(now + 600) }),
                ("nbf in the future", try variant { $0.claims["nbf"] = .number(now + 600) }),
                ("no jti", try variant { $0.claims["jti"] = nil }),
                ("sub is not the client", try variant { $0.claims["sub"] = .string("someone") }),
                ("iss is not the client", try variant { $0.claims["iss"] = .string("someone") }),
                (
                    "signed by an unregistered key",
                    try {
                        var b = valid;
                        b = ClientAssertionBuilder(
                            clientID: id, audience: fixture.settings.tokenEndpoint, key: strangerKey, now: fixture.clock.now);
                        return try b.build()
                    }()
                ),
                ("alg none", ClientAssertionBuilder.unsigned(header: ["alg": .string("none")], claims: valid.claims)),
                ("HS256 with the public key", hsToken),
                (
                    "tampered payload",
                    try {
                        let t = try variant { _ in }; var parts = t.split(separator: ".");
                        parts[1] = Substring(
                            Base64URL.encode(StrictJSON.serialize(.object(valid.claims.merging(["sub": .string("x")]) { $1 }))));
                        return parts.joined(separator: ".")
                    }()
                ),
                (
                    "unknown crit header",
                    try {
                        var b = valid; b.claims["jti"] = .string(Secrets.randomToken());
                        return try b.key.signCompact(
                            claims: b.claims, typ: "JWT", extraHeader: ["crit": .array([.string("exp")]), "exp": .number(1)])
                    }()
                ),
            ]
            for (name, assertion) in cases {
                let response = try await http.postForm(
                    "/oauth2/token", Self.form(assertion, clientID: name == "HS256 with the public key" ? rsaClient.client.clientID : id))
                assertOAuthError(response, status: 401, code: "invalid_client")
                if response.status.code != 401 { XCTFail("not refused as invalid_client: \(name)") }
            }
            // A client registered for a secret cannot authenticate with an assertion.
            let key = try JWSSigningKey.generate(.ES256)
            let foreign = try ClientAssertionBuilder(
                clientID: secretClient.client.clientID, audience: fixture.settings.tokenEndpoint, key: key, now: fixture.clock.now
            ).build()
            let foreignAssertion = try await http.postForm("/oauth2/token", Self.form(foreign))
            assertOAuthError(foreignAssertion, status: 401, code: "invalid_client")
            let anyIssued = try await auditEvents(fixture).contains { $0.action == "token.issued" }
            XCTAssertFalse(anyIssued)
        }
    }
}
