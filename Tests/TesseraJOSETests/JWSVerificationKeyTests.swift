import Crypto
import TesseraJOSE
import XCTest

final class JWSVerificationKeyTests: XCTestCase {
    func testVerifiesRFC8037AppendixA4Ed25519Signature() throws {
        let parts = Fixtures.rfc8037Token.split(separator: ".")
        let input = Array((parts[0] + "." + parts[1]).utf8)
        let signature = try XCTUnwrap(Base64URL.decode(parts[2]))
        let key = try JWSVerificationKey(json: Fixtures.rfc8037PublicJWK)
        XCTAssertTrue(key.isValidSignature(signature, for: input, alg: .EdDSA))
        XCTAssertFalse(key.isValidSignature(signature, for: input + [0], alg: .EdDSA))
        // The payload is not JSON, so it verifies as a signature but not as a JWT.
        assertThrowsJOSEErrorCase(
            .malformed(""), try CompactJWS(parsing: Fixtures.rfc8037Token).verify(with: key, allowed: [.EdDSA]))
    }

    func testVerifiesRFC7515AppendixA3SignatureOnlyAsES256() throws {
        let jws = try CompactJWS(parsing: Fixtures.rfc7515A3Token)
        let key = try JWSVerificationKey(json: Fixtures.rfc7515A3PublicJWK)
        for alg in JWSAlgorithm.allCases {
            XCTAssertEqual(
                key.isValidSignature(jws.signature, for: jws.signingInput, alg: alg), alg == .ES256, "\(alg)")
        }
    }

    func testRefusesAnECPointNotOnTheCurve() throws {
        guard case .object(var members) = Fixtures.rfc7515A3PublicJWK else { return XCTFail() }
        var y = try XCTUnwrap(Base64URL.decode(members["y"]!.stringValue!))
        y[31] ^= 1
        members["y"] = .string(Base64URL.encode(y))
        let jwk = try JWK(json: .object(members))  // structurally fine
        assertThrowsJOSEErrorCase(.malformed(""), try JWSVerificationKey(jwk: jwk))
    }

    func testRechecksAJWKMutatedAfterParsing() throws {
        var jwk = try JWK(json: Fixtures.rfc7515A3PublicJWK)
        jwk.kty = "oct"
        assertThrowsJOSEError(.privateKeyMaterial, try JWSVerificationKey(jwk: jwk))
        jwk.kty = "EC"
        jwk.crv = "P-384"
        assertThrowsJOSEErrorCase(.malformed(""), try JWSVerificationKey(jwk: jwk))
    }

    func testIsValidSignatureRefusesAlgorithmsTheKeyCannotVerify() throws {
        let signer = try JWSSigningKey.generate(.ES256)
        let data = Array("payload".utf8)
        let signature = try signer.sign(data)
        var jwk = signer.publicJWK
        XCTAssertTrue(try JWSVerificationKey(jwk: jwk).isValidSignature(signature, for: data, alg: .ES256))
        jwk.alg = "ES384"
        XCTAssertFalse(try JWSVerificationKey(jwk: jwk).isValidSignature(signature, for: data, alg: .ES256))
        jwk.alg = nil
        jwk.use = "enc"
        XCTAssertFalse(try JWSVerificationKey(jwk: jwk).isValidSignature(signature, for: data, alg: .ES256))
    }

    func testRefusesRSASignaturesOfTheWrongLength() throws {
        let signer = Fixtures.rsaKey
        let data = Array("payload".utf8)
        let signature = try signer.sign(data)
        let key = try JWSVerificationKey(jwk: signer.publicJWK)
        XCTAssertTrue(key.isValidSignature(signature, for: data, alg: .RS256))
        XCTAssertFalse(key.isValidSignature([0] + signature, for: data, alg: .RS256))
        XCTAssertFalse(key.isValidSignature(Array(signature.dropFirst()), for: data, alg: .RS256))
        XCTAssertFalse(key.isValidSignature([], for: data, alg: .RS256))
    }
}
