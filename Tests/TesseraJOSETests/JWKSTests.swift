import TesseraJOSE
import XCTest

final class JWKSTests: XCTestCase {
    func testParsesKeysAndRoundTripsThroughJSON() throws {
        let set = try JWKS(json: [
            "keys": [Fixtures.rfc7638JWK, Fixtures.rfc7515A3PublicJWK, Fixtures.rfc8037PublicJWK]
        ])
        XCTAssertEqual(set.keys.map(\.kty), ["RSA", "EC", "OKP"])
        XCTAssertEqual(try JWKS(json: set.json), set)
    }

    func testSkipsKeysOfUnknownTypeOrCurve() throws {
        let set = try JWKS(json: [
            "keys": [
                ["kty": "future", "x": "AA"],
                ["kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"],
                Fixtures.rfc7515A3PublicJWK,
            ]
        ])
        XCTAssertEqual(set.keys, [try JWK(json: Fixtures.rfc7515A3PublicJWK)])
    }

    func testRefusesASetCarryingPrivateMaterial() {
        assertThrowsJOSEError(
            .privateKeyMaterial,
            try JWKS(json: ["keys": [Fixtures.rfc7515A3PublicJWK, Fixtures.okpPrivateJWK]]))
        assertThrowsJOSEError(
            .privateKeyMaterial,
            try JWKS(json: ["keys": [Fixtures.rfc7515A3PublicJWK, ["kty": "oct", "k": "c2VjcmV0"]]]))
        assertThrowsJOSEError(.privateKeyMaterial, try JWKS(json: ["keys": [["kty": "future", "d": "AA"]]]))
    }

    func testRefusesASetWithAMalformedKeyOfAKnownType() {
        assertThrowsJOSEErrorCase(
            .malformed(""), try JWKS(json: ["keys": [Fixtures.rfc7638JWK, ["kty": "EC", "crv": "P-256"]]]))
        assertThrowsJOSEErrorCase(.malformed(""), try JWKS(json: ["keys": [Fixtures.rfc7638JWK, "not a key"]]))
    }

    func testRefusesADocumentWithoutAKeysArray() {
        assertThrowsJOSEErrorCase(.malformed(""), try JWKS(json: [:]))
        assertThrowsJOSEErrorCase(.malformed(""), try JWKS(json: ["keys": Fixtures.rfc7638JWK]))
        assertThrowsJOSEErrorCase(.malformed(""), try JWKS(json: [Fixtures.rfc7638JWK]))
    }
}
