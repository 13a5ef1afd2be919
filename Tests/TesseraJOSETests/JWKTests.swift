import TesseraJOSE
import XCTest

final class JWKTests: XCTestCase {
    private let ecX = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
    private let ecY = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"

    private func rsaModulus(bits: Int) -> String {
        var bytes = [UInt8](repeating: 0xA5, count: (bits + 7) / 8)
        bytes[0] = 0x80 >> ((8 - bits % 8) % 8)
        return Base64URL.encode(bytes)
    }

    func testThumbprintMatchesRFC7638Section3_1Example() throws {
        XCTAssertEqual(try JWK(json: Fixtures.rfc7638JWK).thumbprint(), Fixtures.rfc7638Thumbprint)
    }

    func testThumbprintMatchesRFC8037AppendixA3Example() throws {
        XCTAssertEqual(try JWK(json: Fixtures.rfc8037PublicJWK).thumbprint(), Fixtures.rfc8037Thumbprint)
    }

    func testThumbprintIgnoresOptionalMembers() throws {
        let bare = try JWK(json: Fixtures.rfc7515A3PublicJWK)
        guard case .object(var members) = Fixtures.rfc7515A3PublicJWK else { return XCTFail() }
        members["kid"] = "k1"
        members["use"] = "sig"
        members["alg"] = "ES256"
        members["x5c"] = ["ignored"]
        XCTAssertEqual(try JWK(json: .object(members)).thumbprint(), bare.thumbprint())
    }

    func testRefusesEveryPrivateMember() {
        for name in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            guard case .object(var members) = Fixtures.rfc7638JWK else { return XCTFail() }
            members[name] = "AQAB"
            assertThrowsJOSEError(.privateKeyMaterial, try JWK(json: .object(members)), name)
        }
        assertThrowsJOSEError(.privateKeyMaterial, try JWK(json: Fixtures.okpPrivateJWK))
    }

    func testRefusesPrivateMembersEvenForUnknownKeyTypes() {
        assertThrowsJOSEError(.privateKeyMaterial, try JWK(json: ["kty": "future", "d": "AA"]))
    }

    func testRefusesSymmetricKeys() {
        assertThrowsJOSEError(.privateKeyMaterial, try JWK(json: ["kty": "oct", "k": "c2VjcmV0"]))
        assertThrowsJOSEError(.privateKeyMaterial, try JWK(json: ["kty": "oct"]))
    }

    func testReportsUnknownKeyTypesAndCurvesAsUnsupported() {
        let keys: [JSONValue] = [
            ["kty": "future"],
            ["kty": "EC", "crv": "P-521", "x": .string(ecX), "y": .string(ecY)],
            ["kty": "EC", "crv": "secp256k1", "x": .string(ecX), "y": .string(ecY)],
            ["kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"],
            ["kty": "OKP", "crv": "Ed448", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"],
            ["kty": "RSA", "n": .string(rsaModulus(bits: 1024)), "e": "AQAB"],
            ["kty": "RSA", "n": .string(rsaModulus(bits: 2047)), "e": "AQAB"],
        ]
        for key in keys {
            assertThrowsJOSEErrorCase(.unsupportedAlgorithm(""), try JWK(json: key), "\(key)")
        }
    }

    func testRefusesMissingOrMalformedMembers() {
        let keys: [JSONValue] = [
            "not an object",
            ["crv": "P-256", "x": .string(ecX), "y": .string(ecY)],
            ["kty": 1],
            ["kty": "EC", "x": .string(ecX), "y": .string(ecY)],
            ["kty": "EC", "crv": "P-256", "x": .string(ecX)],
            ["kty": "EC", "crv": "P-256", "x": .string(ecX), "y": 5],
            ["kty": "EC", "crv": "P-256", "x": .string(String(ecX.dropLast(2))), "y": .string(ecY)],
            ["kty": "EC", "crv": "P-384", "x": .string(ecX), "y": .string(ecY)],
            ["kty": "EC", "crv": "P-256", "x": .string(ecX + "="), "y": .string(ecY)],
            ["kty": "EC", "crv": "P-256", "x": .string(ecX), "y": .string(ecY), "kid": 7],
            ["kty": "OKP", "crv": "Ed25519"],
            ["kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"],
            ["kty": "RSA", "e": "AQAB"],
            ["kty": "RSA", "n": .string(Fixtures.rfc7638Modulus)],
            [
                "kty": "RSA", "n": .string(Base64URL.encode([0] + Base64URL.decode(Fixtures.rfc7638Modulus)!)),
                "e": "AQAB",
            ],
            ["kty": "RSA", "n": .string(Fixtures.rfc7638Modulus), "e": "AAEAAQ"],
            ["kty": "RSA", "n": .string(Fixtures.rfc7638Modulus), "e": "AQ"],
            ["kty": "RSA", "n": .string(Fixtures.rfc7638Modulus), "e": "AQAA"],
            ["kty": "RSA", "n": .string(Fixtures.rfc7638Modulus), "e": "AQEBAQE"],
        ]
        for key in keys {
            assertThrowsJOSEErrorCase(.malformed(""), try JWK(json: key), "\(key)")
        }
    }

    func testKeepsOnlyPublicKeyMembersInJSON() throws {
        guard case .object(var members) = Fixtures.rfc7638JWK else { return XCTFail() }
        members["x5c"] = ["MIIB"]
        members["use"] = "sig"
        let jwk = try JWK(json: .object(members))
        XCTAssertEqual(
            jwk.json,
            [
                "kty": "RSA", "n": .string(Fixtures.rfc7638Modulus), "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
                "use": "sig",
            ])
        XCTAssertEqual(try JWK(json: jwk.json), jwk)
    }

    func testCanVerifyBindsKeyTypeAndCurveToAlgorithm() throws {
        let p256 = try JWK(json: Fixtures.rfc7515A3PublicJWK)
        let ed25519 = try JWK(json: Fixtures.rfc8037PublicJWK)
        let rsa = try JWK(json: ["kty": "RSA", "n": .string(Fixtures.rfc7638Modulus), "e": "AQAB"])
        let p384 = try JWSSigningKey.generate(.ES384).publicJWK
        let expectations: [(JWK, Set<JWSAlgorithm>)] = [
            (p256, [.ES256]), (p384, [.ES384]), (ed25519, [.EdDSA]),
            (rsa, [.RS256, .RS384, .RS512, .PS256, .PS384, .PS512]),
        ]
        for (key, allowed) in expectations {
            for alg in JWSAlgorithm.allCases {
                XCTAssertEqual(key.canVerify(alg), allowed.contains(alg), "\(key.kty) \(key.crv ?? "") \(alg)")
            }
        }
    }

    func testCanVerifyRefusesAlgorithmsOtherThanTheKeysAlgMember() throws {
        let rs256Only = try JWK(json: Fixtures.rfc7638JWK)
        XCTAssertTrue(rs256Only.canVerify(.RS256))
        for alg in [JWSAlgorithm.RS384, .RS512, .PS256, .PS384, .PS512, .ES256] {
            XCTAssertFalse(rs256Only.canVerify(alg), "\(alg)")
        }
    }

    func testCanVerifyRefusesEncryptionKeys() throws {
        guard case .object(var members) = Fixtures.rfc7515A3PublicJWK else { return XCTFail() }
        members["use"] = "enc"
        XCTAssertFalse(try JWK(json: .object(members)).canVerify(.ES256))
    }
}
