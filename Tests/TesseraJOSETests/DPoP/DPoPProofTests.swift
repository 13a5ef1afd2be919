import Foundation
import TesseraJOSE
import XCTest

final class DPoPProofTests: XCTestCase {
    private func parts(_ token: String) -> [String] {
        token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    func testParsesTheRFC9449ExampleProofs() {
        XCTAssertNoThrow(try DPoPProof(parsing: DPoPFixtures.rfcTokenRequestProof))
        XCTAssertNoThrow(try DPoPProof(parsing: DPoPFixtures.rfcResourceRequestProof))
    }

    func testRefusesATwoSegmentToken() throws {
        let parts = parts(try DPoPFixtures.Proof().token())
        for candidate in [parts[0] + "." + parts[1], parts[0] + "." + parts[1] + "."] {
            assertInvalidProof(try DPoPProof(parsing: candidate), check: "Syntax", candidate)
        }
    }

    func testRefusesAFiveSegmentJWE() throws {
        let token = try DPoPFixtures.Proof().token()
        let parts = parts(token)
        assertInvalidProof(try DPoPProof(parsing: token + "." + parts[1] + "." + parts[2]), check: "Syntax")
    }

    func testRefusesAnOversizedHeaderBeforeDecoding() throws {
        var proof = DPoPFixtures.Proof()
        proof.claims["padding"] = .string(String(repeating: "p", count: DPoPProof.maxLength))
        XCTAssertThrowsError(try DPoPProof(parsing: proof.token())) { error in
            XCTAssertEqual(error as? DPoPError, .invalidProof("Syntax: JWS too large"))
        }
        // Not even split into segments: the size is checked first.
        XCTAssertThrowsError(try DPoPProof(parsing: String(repeating: "a", count: DPoPProof.maxLength + 1))) { error in
            XCTAssertEqual(error as? DPoPError, .invalidProof("Syntax: JWS too large"))
        }
    }

    func testAcceptsAProofOfExactlyTheMaximumLength() throws {
        let signer = DPoPFixtures.es256
        func token(headerPadding: Int, claimPadding: Int) throws -> String {
            var claims = DPoPFixtures.Proof().claims
            claims["p"] = .string(String(repeating: "p", count: claimPadding))
            return try signer.signCompact(
                claims: claims, typ: "dpop+jwt",
                extraHeader: ["jwk": signer.publicJWK.json, "x": .string(String(repeating: "x", count: headerPadding))])
        }
        // Base64url skips some lengths, so vary both segments until one lands on the limit.
        let unpadded = try token(headerPadding: 0, claimPadding: 0).utf8.count
        let estimate = max(0, (DPoPProof.maxLength - unpadded) * 3 / 4 - 4)
        var atLimit: String?
        search: for headerPadding in 0..<4 {
            for claimPadding in estimate..<(estimate + 16) {
                let candidate = try token(headerPadding: headerPadding, claimPadding: claimPadding)
                if candidate.utf8.count == DPoPProof.maxLength {
                    atLimit = candidate
                    break search
                }
            }
        }
        let token = try XCTUnwrap(atLimit)
        XCTAssertNoThrow(try DPoPProofVerifier().verify(DPoPProof(parsing: token), DPoPFixtures.context()))
    }

    func testRefusesTwoProofsInOneValue() throws {
        let one = try DPoPFixtures.Proof().token()
        let two = try DPoPFixtures.Proof().with("jti", "second").token()
        for joined in [one + "," + two, one + ", " + two, one + " " + two] {
            assertInvalidProof(try DPoPProof(parsing: joined), check: "Syntax")
        }
    }

    func testRefusesWhitespaceAndEmptyValues() throws {
        let token = try DPoPFixtures.Proof().token()
        for candidate in ["", " ", " " + token, token + " ", token + "\r\n", "DPoP " + token] {
            assertInvalidProof(try DPoPProof(parsing: candidate), check: "Syntax", "\"\(candidate.prefix(8))…\"")
        }
    }

    func testRefusesDuplicateHeaderMembers() throws {
        let signer = DPoPFixtures.es256
        let jwk = String(decoding: StrictJSON.serialize(signer.publicJWK.json), as: UTF8.self)
        let header = #"{"typ":"dpop+jwt","alg":"ES256","typ":"JWT","jwk":"# + jwk + "}"
        let token = try Fixtures.forge(headerJSON: header, claims: DPoPFixtures.Proof().claims, signer: signer)
        assertInvalidProof(try DPoPProof(parsing: token), check: "Syntax")
    }

    func testRefusesAnUnknownCriticalHeader() throws {
        var proof = DPoPFixtures.Proof()
        proof.typ = nil
        let signer = DPoPFixtures.es256
        let token = try signer.signCompact(
            claims: proof.claims, typ: "dpop+jwt",
            extraHeader: ["jwk": signer.publicJWK.json, "crit": ["x-bind"], "x-bind": true])
        assertInvalidProof(try DPoPProof(parsing: token), check: "Syntax")
    }

    func testRefusesAnInvalidJWKHeader() throws {
        let signer = DPoPFixtures.es256
        let symmetric: JSONValue = ["kty": "oct", "k": "c2VjcmV0"]
        let offCurve: JSONValue = [
            "kty": "EC", "crv": "P-256", "x": .string(Base64URL.encode([UInt8](repeating: 1, count: 32))),
            "y": .string(Base64URL.encode([UInt8](repeating: 2, count: 32))),
        ]
        let header = { (jwk: JSONValue) in
            String(decoding: StrictJSON.serialize(["typ": "dpop+jwt", "alg": "ES256", "jwk": jwk]), as: UTF8.self)
        }
        let symmetricToken = try Fixtures.forge(
            headerJSON: header(symmetric), claims: DPoPFixtures.Proof().claims, signer: signer)
        assertInvalidProof(try DPoPProof(parsing: symmetricToken), check: "Syntax")
        // A point off the curve parses as a JWK; it fails where the key is built, at the signature.
        let offCurveToken = try Fixtures.forge(
            headerJSON: header(offCurve), claims: DPoPFixtures.Proof().claims, signer: signer)
        assertInvalidProof(
            try DPoPProofVerifier().verify(DPoPProof(parsing: offCurveToken), DPoPFixtures.context()),
            check: "Signature")
    }
}
