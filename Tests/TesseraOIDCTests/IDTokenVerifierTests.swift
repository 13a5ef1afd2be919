import Crypto
import Foundation
import Synchronization
import TesseraCore
import TesseraJOSE
import TesseraOIDC
import TesseraTesting
import XCTest

/// A provider's discovery and JWKS from memory, counting fetches; for the verifier's unit tests
/// (the whole flow runs against a real provider in the interop tests).
final class InMemoryProviderTransport: OIDCTransport {
    let issuer: String
    let jwks: Mutex<JSONValue>
    let jwksFetches = Mutex(0)
    let jwksDown = Mutex(false)

    init(issuer: String, keys: [JWK]) {
        self.issuer = issuer
        jwks = Mutex(JWKS(keys: keys).json)
    }

    func get(_ url: URL, accept: String, headers: [(String, String)]) async throws(UpstreamUnavailable) -> UpstreamResponse {
        if url.absoluteString == issuer + "/.well-known/openid-configuration" {
            let document: JSONValue = [
                "issuer": .string(issuer), "authorization_endpoint": .string(issuer + "/authorize"),
                "token_endpoint": .string(issuer + "/token"), "jwks_uri": .string(issuer + "/jwks"),
            ]
            return UpstreamResponse(status: 200, body: StrictJSON.serialize(document))
        }
        if url.absoluteString == issuer + "/jwks" {
            jwksFetches.withLock { $0 += 1 }
            if jwksDown.withLock({ $0 }) { throw UpstreamUnavailable("connection refused") }
            return UpstreamResponse(status: 200, body: StrictJSON.serialize(jwks.withLock { $0 }))
        }
        return UpstreamResponse(status: 404, body: [])
    }

    func postForm(_ url: URL, form: [(String, String)], headers: [(String, String)]) async throws(UpstreamUnavailable) -> UpstreamResponse {
        UpstreamResponse(status: 404, body: [])
    }
}

final class IDTokenVerifierTests: XCTestCase {
    static let issuer = "http://127.0.0.1:9999"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    struct Provider {
        let key: JWSSigningKey
        let transport: InMemoryProviderTransport
        let upstream: UpstreamProvider

        init() throws {
            key = try JWSSigningKey.generate(.RS256, kid: "k1")
            transport = InMemoryProviderTransport(issuer: IDTokenVerifierTests.issuer, keys: [key.publicJWK])
            upstream = UpstreamProvider(
                config: OIDCProviderConfig(
                    id: "oidc_t", tenantID: TenantID("acme")!, issuer: IDTokenVerifierTests.issuer, clientID: "broker",
                    clientAuth: .clientSecretBasic, preset: .generic, scopes: ["openid"], hostedDomain: nil, useUserinfo: false,
                    groupRoles: [:], createdAt: IDTokenVerifierTests.now),
                transport: transport)
        }

        var claims: [String: JSONValue] {
            let now = IDTokenVerifierTests.now.timeIntervalSince1970
            return [
                "iss": .string(IDTokenVerifierTests.issuer), "aud": "broker", "sub": "user-1", "nonce": "n-123",
                "iat": .number(now - 5), "exp": .number(now + 300),
                "at_hash": .string(Base64URL.encode(Array(SHA256.hash(data: Array("the-access-token".utf8)).prefix(16)))),
            ]
        }

        func token(_ change: (inout [String: JSONValue]) -> Void = { _ in }, signer: JWSSigningKey? = nil) throws -> String {
            var claims = self.claims
            change(&claims)
            return try (signer ?? key).signCompact(claims: claims, typ: "JWT")
        }

        func verify(
            _ token: String, nonce: String = "n-123", accessToken: String? = "the-access-token", after seconds: TimeInterval = 0
        ) async throws -> VerifiedIDToken {
            try await IDTokenVerifier().verify(
                token, provider: upstream,
                expecting: IDTokenExpectations(
                    issuer: IDTokenVerifierTests.issuer, clientID: "broker", nonce: nonce, accessToken: accessToken,
                    now: IDTokenVerifierTests.now.addingTimeInterval(seconds)))
        }
    }

    func testAValidTokenGivesItsSubject() async throws {
        let provider = try Provider()
        let verified = try await provider.verify(try provider.token())
        XCTAssertEqual(verified.subject, "user-1")
    }

    func testEachWrongTokenIsRefusedByItsPolicy() async throws {
        let provider = try Provider()
        let now = Self.now.timeIntervalSince1970
        let impostor = try JWSSigningKey.generate(.RS256, kid: "k1")
        let publicKeyBytes = Array(StrictJSON.serialize(provider.key.publicJWK.json))
        let hmac = HMAC<SHA256>.authenticationCode(
            for: Array("e30.e30".utf8), using: SymmetricKey(data: publicKeyBytes))
        let cases: [(String, String, String)] = [
            ("other issuer", try provider.token { $0["iss"] = "https://evil.example" }, "IDTokenIssuer"),
            ("other audience", try provider.token { $0["aud"] = "someone-else" }, "IDTokenAudience"),
            ("several audiences, no azp", try provider.token { $0["aud"] = ["broker", "other"] }, "IDTokenAuthorizedParty"),
            ("azp of another client", try provider.token { $0["azp"] = "other" }, "IDTokenAuthorizedParty"),
            ("expired", try provider.token { $0["exp"] = .number(now - 120) }, "IDTokenExpiry"),
            ("issued in the future", try provider.token { $0["iat"] = .number(now + 600) }, "IDTokenIssuedAt"),
            ("no nonce", try provider.token { $0["nonce"] = nil }, "IDTokenNonce"),
            ("other nonce", try provider.token { $0["nonce"] = "n-999" }, "IDTokenNonce"),
            ("wrong at_hash", try provider.token { $0["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }, "IDTokenAccessTokenHash"),
            ("no sub", try provider.token { $0["sub"] = nil }, "IDTokenSubject"),
            ("signed by another key with the same kid", try provider.token(signer: impostor), "signature"),
            ("alg none", ClientAssertionBuilder.unsigned(header: ["alg": "none", "kid": "k1"], claims: provider.claims), "malformed"),
            (
                "HS256 with the public key as secret",
                ClientAssertionBuilder.unsigned(header: ["alg": "HS256", "kid": "k1"], claims: provider.claims, signature: Array(hmac)),
                "malformed"
            ),
        ]
        for (name, token, expected) in cases {
            do {
                _ = try await provider.verify(token)
                XCTFail("\(name): accepted")
            } catch let problem as OIDCProblem {
                guard case .untrusted(let why) = problem else { return XCTFail("\(name): \(problem)") }
                XCTAssertTrue(why.contains(expected), "\(name): \(why)")
            }
        }
    }

    func testUnknownKidsRefetchTheJWKSAtMostOncePerInterval() async throws {
        let provider = try Provider()
        _ = try await provider.verify(try provider.token())
        XCTAssertEqual(provider.transport.jwksFetches.withLock { $0 }, 1)
        let stranger = try JWSSigningKey.generate(.RS256, kid: "forged")
        for _ in 0..<50 {
            do {
                _ = try await provider.verify(try provider.token(signer: stranger), after: UpstreamProvider.jwksRefetchInterval + 1)
                XCTFail("a forged kid was accepted")
            } catch {}
        }
        XCTAssertEqual(provider.transport.jwksFetches.withLock { $0 }, 2, "one refetch for fifty forged kids")
    }

    func testARotatedKeyIsPickedUpByRefetching() async throws {
        let provider = try Provider()
        _ = try await provider.verify(try provider.token())
        let rotated = try JWSSigningKey.generate(.ES256, kid: "k2")
        provider.transport.jwks.withLock { $0 = JWKS(keys: [provider.key.publicJWK, rotated.publicJWK]).json }
        do {
            _ = try await provider.verify(try provider.token(signer: rotated), after: 1)
            XCTFail("refetched within the interval")
        } catch {}
        let verified = try await provider.verify(try provider.token(signer: rotated), after: UpstreamProvider.jwksRefetchInterval + 1)
        XCTAssertEqual(verified.subject, "user-1")
    }

    func testJWKSDownIsUnavailableNotUntrusted() async throws {
        let provider = try Provider()
        provider.transport.jwksDown.withLock { $0 = true }
        do {
            _ = try await provider.verify(try provider.token())
            XCTFail("accepted without keys")
        } catch let problem as OIDCProblem {
            guard case .unavailable = problem else { return XCTFail("\(problem)") }
        }
        do {
            _ = try await provider.verify(try provider.token())
            XCTFail("accepted without keys")
        } catch let problem as OIDCProblem {
            guard case .unavailable = problem else { return XCTFail("repeated within the interval: \(problem)") }
        }
    }

    func testDiscoveryMustNameExactlyTheConfiguredIssuer() throws {
        let document: JSONValue = [
            "issuer": "https://idp.example.com/", "authorization_endpoint": "https://idp.example.com/a",
            "token_endpoint": "https://idp.example.com/t", "jwks_uri": "https://idp.example.com/k",
        ]
        XCTAssertThrowsError(try DiscoveryDocument(parsing: StrictJSON.serialize(document), expectedIssuer: "https://idp.example.com"))
        XCTAssertNoThrow(try DiscoveryDocument(parsing: StrictJSON.serialize(document), expectedIssuer: "https://idp.example.com/"))
        var plainHTTP = document.objectValue!
        plainHTTP["token_endpoint"] = "http://idp.example.com/t"
        XCTAssertThrowsError(
            try DiscoveryDocument(parsing: StrictJSON.serialize(.object(plainHTTP)), expectedIssuer: "https://idp.example.com/"),
            "http only on loopback")
    }
}
