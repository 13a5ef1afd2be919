import TesseraJOSE
import XCTest

final class JWSSigningKeyTests: XCTestCase {
    /// A signing key for `alg`; RSA ones restore the shared test key under that algorithm.
    private func signingKey(_ alg: JWSAlgorithm) throws -> JWSSigningKey {
        guard alg.rawValue.hasPrefix("RS") || alg.rawValue.hasPrefix("PS") else {
            return try JWSSigningKey.generate(alg)
        }
        guard case .object(var members) = Fixtures.rsaKey.privateJWK else { throw JOSEError.malformed("test") }
        members["alg"] = .string(alg.rawValue)
        return try JWSSigningKey(privateJWK: .object(members))
    }

    func testSignsAndVerifiesWithEveryAlgorithm() throws {
        for alg in JWSAlgorithm.allCases {
            let signer = try signingKey(alg)
            XCTAssertEqual(signer.algorithm, alg)
            let token = try signer.signCompact(claims: Fixtures.claims, typ: "JWT")
            let jws = try CompactJWS(parsing: token)
            XCTAssertEqual(jws.header.raw, ["alg": .string(alg.rawValue), "kid": .string(signer.kid), "typ": "JWT"])
            let key = try JWSVerificationKey(jwk: signer.publicJWK)
            XCTAssertEqual(try jws.verify(with: key, allowed: [alg]), Fixtures.claims, "\(alg)")
            // A flipped bit anywhere in the signature is refused.
            var signature = jws.signature
            signature[signature.count / 2] ^= 0x01
            XCTAssertFalse(key.isValidSignature(signature, for: jws.signingInput, alg: alg), "\(alg)")
        }
    }

    func testGeneratesTheDocumentedKeySizes() throws {
        let expectations: [(JWSAlgorithm, String, String?, Int)] = [
            (.ES256, "EC", "P-256", 32), (.ES384, "EC", "P-384", 48), (.EdDSA, "OKP", "Ed25519", 32),
        ]
        for (alg, kty, crv, coordinateBytes) in expectations {
            let jwk = try JWSSigningKey.generate(alg).publicJWK
            XCTAssertEqual(jwk.kty, kty)
            XCTAssertEqual(jwk.crv, crv)
            XCTAssertEqual(Base64URL.decode(jwk.x ?? "")?.count, coordinateBytes)
        }
        XCTAssertEqual(Base64URL.decode(Fixtures.rsaKey.publicJWK.n ?? "")?.count, 3072 / 8)
        XCTAssertEqual(Fixtures.rsaKey.publicJWK.e, "AQAB")
    }

    func testKidDefaultsToTheRFC7638ThumbprintOfThePublicKey() throws {
        let key = try JWSSigningKey.generate(.ES256)
        XCTAssertEqual(key.kid, key.publicJWK.thumbprint())
        XCTAssertEqual(try JWSSigningKey.generate(.EdDSA, kid: "chosen").kid, "chosen")
    }

    func testPublicJWKCarriesKidUseAndAlgAndNoPrivateMaterial() throws {
        let key = try JWSSigningKey.generate(.ES384, kid: "k1")
        XCTAssertEqual(key.publicJWK.kid, "k1")
        XCTAssertEqual(key.publicJWK.use, "sig")
        XCTAssertEqual(key.publicJWK.alg, "ES384")
        XCTAssertEqual(try JWK(json: key.publicJWK.json), key.publicJWK)
        XCTAssertNil(key.publicJWK.json["d"])
    }

    func testPrivateJWKRestoresAnEquivalentKey() throws {
        for alg in [JWSAlgorithm.ES256, .ES384, .EdDSA, .PS384] {
            let original = try signingKey(alg)
            let restored = try JWSSigningKey(privateJWK: original.privateJWK)
            XCTAssertEqual(restored.algorithm, original.algorithm)
            XCTAssertEqual(restored.kid, original.kid)
            XCTAssertEqual(restored.publicJWK, original.publicJWK)
            XCTAssertEqual(restored.privateJWK, original.privateJWK)
            let token = try restored.signCompact(claims: Fixtures.claims, typ: nil)
            XCTAssertNoThrow(
                try CompactJWS(parsing: token).verify(with: JWSVerificationKey(jwk: original.publicJWK), allowed: [alg])
            )
        }
    }

    func testEd25519SignaturesAreDeterministicAndVerifyTheRFC8037Example() throws {
        let key = try JWSSigningKey.generate(.EdDSA)
        let input = Array("Example of Ed25519 signing".utf8)
        // RFC 8032 §5.1.6: the same key and message give the same signature (BoringSSL on Linux).
        #if os(Linux)
            XCTAssertEqual(try key.sign(input), try key.sign(input))
        #endif
        let parts = Fixtures.rfc8037Token.split(separator: ".")
        XCTAssertTrue(
            try JWSVerificationKey(json: Fixtures.rfc8037PublicJWK)
                .isValidSignature(
                    Base64URL.decode(parts[2])!, for: Array((parts[0] + "." + parts[1]).utf8), alg: .EdDSA))
    }

    func testRefusesAPrivateJWKWhosePublicMembersBelongToAnotherKey() throws {
        let other = try JWSSigningKey.generate(.ES256)
        guard case .object(var members) = Fixtures.rfc7515A3PublicJWK else { return XCTFail() }
        members["d"] = other.privateJWK["d"]
        assertThrowsJOSEErrorCase(.keyMismatch(""), try JWSSigningKey(privateJWK: .object(members)))

        guard case .object(var okp) = Fixtures.okpPrivateJWK else { return XCTFail() }
        okp["x"] = try JWSSigningKey.generate(.EdDSA).publicJWK.x.map(JSONValue.string)
        assertThrowsJOSEErrorCase(.keyMismatch(""), try JWSSigningKey(privateJWK: .object(okp)))
    }

    func testRefusesAnRSAPrivateJWKWithInconsistentOrMissingMembers() throws {
        guard case .object(let members) = Fixtures.rsaKey.privateJWK else { return XCTFail() }
        var wrongCRT = members
        var dp = try XCTUnwrap(Base64URL.decode(members["dp"]!.stringValue!))
        dp[dp.count - 1] ^= 0x02
        wrongCRT["dp"] = .string(Base64URL.encode(dp))
        assertThrowsJOSEErrorCase(.malformed(""), try JWSSigningKey(privateJWK: .object(wrongCRT)))
        for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
            var missing = members
            missing[name] = nil
            assertThrowsJOSEErrorCase(.malformed(""), try JWSSigningKey(privateJWK: .object(missing)), name)
        }
        var noAlg = members
        noAlg["alg"] = nil
        assertThrowsJOSEErrorCase(.unsupportedAlgorithm(""), try JWSSigningKey(privateJWK: .object(noAlg)))
        var multiPrime = members
        multiPrime["oth"] = []
        assertThrowsJOSEErrorCase(.unsupportedAlgorithm(""), try JWSSigningKey(privateJWK: .object(multiPrime)))
    }

    func testRefusesAPrivateJWKWhoseAlgOrUseDoesNotFitTheKey() throws {
        guard case .object(let members) = try JWSSigningKey.generate(.ES256).privateJWK else { return XCTFail() }
        var wrongAlg = members
        wrongAlg["alg"] = "ES384"
        assertThrowsJOSEErrorCase(.keyMismatch(""), try JWSSigningKey(privateJWK: .object(wrongAlg)))
        var encryption = members
        encryption["use"] = "enc"
        assertThrowsJOSEErrorCase(.keyMismatch(""), try JWSSigningKey(privateJWK: .object(encryption)))
        assertThrowsJOSEErrorCase(.malformed(""), try JWSSigningKey(privateJWK: Fixtures.rfc7515A3PublicJWK))
        assertThrowsJOSEErrorCase(
            .unsupportedAlgorithm(""), try JWSSigningKey(privateJWK: ["kty": "oct", "k": "c2VjcmV0"]))
    }

    func testSignCompactRefusesExtraHeadersThatOverrideOrLeak() throws {
        let key = try JWSSigningKey.generate(.ES256)
        for name in ["alg", "kid", "typ", "b64"] {
            assertThrowsJOSEErrorCase(
                .malformed(""), try key.signCompact(claims: [:], typ: nil, extraHeader: [name: "none"]), name)
        }
        assertThrowsJOSEError(
            .privateKeyMaterial, try key.signCompact(claims: [:], typ: nil, extraHeader: ["jwk": key.privateJWK]))
    }

    func testSignCompactProducesTheDocumentedHeaderAndPayloadBytes() throws {
        let key = try JWSSigningKey.generate(.ES256, kid: "k")
        let token = try key.signCompact(claims: ["b": 1, "a": "x"], typ: nil, extraHeader: ["nonce": "n"])
        let parts = token.split(separator: ".")
        XCTAssertEqual(parts.count, 3)
        XCTAssertEqual(
            Base64URL.decode(parts[0]).map { String(decoding: $0, as: UTF8.self) },
            #"{"alg":"ES256","kid":"k","nonce":"n"}"#)
        XCTAssertEqual(Base64URL.decode(parts[1]).map { String(decoding: $0, as: UTF8.self) }, #"{"a":"x","b":1}"#)
        XCTAssertEqual(Base64URL.decode(parts[2])?.count, 64, "ECDSA signatures are raw r||s")
    }
}
