import Foundation
import TesseraCore
import TesseraJOSE
import TesseraOAuth
import TesseraTesting
import XCTest

/// Each way a workload JWT can be wrong, one fixture each, against one trust rule.
final class WorkloadTokenVerifierTests: XCTestCase {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    struct Issuer {
        let key: JWSSigningKey
        let trust: WorkloadIssuer

        init() throws {
            key = try JWSSigningKey.generate(.ES256, kid: "k1")
            let jwks = String(decoding: StrictJSON.serialize(JWKS(keys: [key.publicJWK]).json), as: UTF8.self)
            trust = WorkloadIssuer(
                id: "wl_test", tenantID: TenantID("acme")!, issuer: "https://ci.example.test", jwks: jwks, audience: "tessera",
                subjectPatterns: ["repo:acme/*"], claimConditions: ["ref": "refs/heads/main"],
                scopes: try ScopeSet(parsing: "crm:contacts.read"), createdAt: WorkloadTokenVerifierTests.now)
        }

        var claims: [String: JSONValue] {
            let now = WorkloadTokenVerifierTests.now.timeIntervalSince1970
            return [
                "iss": "https://ci.example.test", "aud": "tessera", "sub": "repo:acme/api", "ref": "refs/heads/main",
                "iat": .number(now - 10), "exp": .number(now + 300),
            ]
        }

        func token(
            _ change: (inout [String: JSONValue]) -> Void = { _ in }, typ: String? = "JWT", with signer: JWSSigningKey? = nil
        )
            throws -> String
        {
            var claims = self.claims
            change(&claims)
            return try (signer ?? key).signCompact(claims: claims, typ: typ)
        }
    }

    func testAValidTokenGivesItsSubject() throws {
        let issuer = try Issuer()
        let verified = try WorkloadTokenVerifier().verify(try issuer.token(), trust: issuer.trust, now: Self.now)
        XCTAssertEqual(verified.subject, "repo:acme/api")
        XCTAssertEqual(verified.expiresAt, Self.now.addingTimeInterval(300))
    }

    func testEachWrongTokenIsRefusedByItsPolicy() throws {
        let issuer = try Issuer()
        let other = try JWSSigningKey.generate(.ES256, kid: "k1")
        let now = Self.now.timeIntervalSince1970
        let cases: [(String, String, String)] = [
            ("other issuer", try issuer.token { $0["iss"] = "https://evil.example.test" }, "WorkloadIssuer"),
            ("wrong audience", try issuer.token { $0["aud"] = "someone-else" }, "WorkloadAudience"),
            ("audience list without ours", try issuer.token { $0["aud"] = ["a", "b"] }, "WorkloadAudience"),
            ("expired", try issuer.token { $0["exp"] = .number(now - 1) }, "WorkloadExpiry: expired"),
            ("no exp", try issuer.token { $0["exp"] = nil }, "WorkloadExpiry: exp missing"),
            ("valid for a week", try issuer.token { $0["exp"] = .number(now + 7 * 86_400) }, "too far"),
            ("not yet valid", try issuer.token { $0["nbf"] = .number(now + 600) }, "WorkloadNotBefore"),
            ("issued in the future", try issuer.token { $0["iat"] = .number(now + 600) }, "WorkloadIssuedAt"),
            ("subject outside the patterns", try issuer.token { $0["sub"] = "repo:other/api" }, "WorkloadSubject"),
            ("claim condition unmet", try issuer.token { $0["ref"] = "refs/heads/feature" }, "WorkloadClaimConditions"),
            ("claim condition missing", try issuer.token { $0["ref"] = nil }, "WorkloadClaimConditions"),
            ("signed by another key", try issuer.token(with: other), "signature"),
            ("typ of a DPoP proof", try issuer.token(typ: "dpop+jwt"), "typ"),
            (
                "alg none",
                ClientAssertionBuilder.unsigned(header: ["alg": "none", "kid": "k1"], claims: issuer.claims),
                "malformed"
            ),
            (
                "HS256 with the public key as secret",
                ClientAssertionBuilder.unsigned(
                    header: ["alg": "HS256", "kid": "k1"], claims: issuer.claims, signature: Array(repeating: 1, count: 32)),
                "malformed"
            ),
            (
                "unknown kid",
                try JWSSigningKey.generate(.ES256, kid: "k2").signCompact(claims: issuer.claims, typ: "JWT"),
                "no key"
            ),
            ("not a JWS", "a.b", "malformed"),
        ]
        for (name, token, expected) in cases {
            XCTAssertThrowsError(try WorkloadTokenVerifier().verify(token, trust: issuer.trust, now: Self.now), name) { error in
                guard case WorkloadTokenVerifier.Failure.invalid(let why) = error else { return XCTFail("\(name): \(error)") }
                XCTAssertTrue(why.contains(expected), "\(name): \(why)")
            }
        }
    }

    func testTheIssuerIsReadBeforeVerificationOnlyToChooseTheRule() throws {
        let issuer = try Issuer()
        XCTAssertEqual(WorkloadTokenVerifier.unverifiedIssuer(of: try issuer.token()), "https://ci.example.test")
        XCTAssertNil(WorkloadTokenVerifier.unverifiedIssuer(of: "garbage"))
    }
}
