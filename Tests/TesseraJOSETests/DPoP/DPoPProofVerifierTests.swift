import Crypto
import Foundation
import TesseraJOSE
import XCTest

final class DPoPProofVerifierTests: XCTestCase {
    private typealias Proof = DPoPFixtures.Proof

    private let verifier = DPoPProofVerifier()

    private func verify(
        _ token: String, _ context: DPoPRequestContext = DPoPFixtures.context()
    ) throws
        -> VerifiedDPoPProof
    {
        try verifier.verify(DPoPProof(parsing: token), context)
    }

    private func verify(
        _ proof: Proof, _ context: DPoPRequestContext = DPoPFixtures.context()
    ) throws
        -> VerifiedDPoPProof
    {
        try verify(proof.token(), context)
    }

    // MARK: RFC 9449 examples, verbatim

    func testRFC9449ExampleKeyHasTheThumbprintOfSection6_1() throws {
        XCTAssertEqual(try JWK(json: DPoPFixtures.rfcJWK).thumbprint(), DPoPFixtures.rfcJKT)
    }

    func testVerifiesTheRFC9449Section4_1ProofAtItsIssueTime() throws {
        let context = DPoPRequestContext(
            method: "POST", url: "https://server.example.com/token", now: DPoPFixtures.rfcTokenRequestIAT)
        let verified = try verify(DPoPFixtures.rfcTokenRequestProof, context)
        XCTAssertEqual(verified.jkt, DPoPFixtures.rfcJKT)
        XCTAssertEqual(verified.jti, "-BwC3ESc6acc2lTc")
        XCTAssertEqual(verified.issuedAt, DPoPFixtures.rfcTokenRequestIAT)
        XCTAssertNil(verified.nonce)
        XCTAssertEqual(verified.publicKey, try JWK(json: DPoPFixtures.rfcJWK))
    }

    func testVerifiesTheRFC9449Section7_1ProofWithItsAccessToken() throws {
        let context = DPoPRequestContext(
            method: "GET", url: "https://resource.example.org/protectedresource",
            now: DPoPFixtures.rfcResourceRequestIAT, accessToken: DPoPFixtures.rfcAccessToken)
        let verified = try verify(DPoPFixtures.rfcResourceRequestProof, context)
        XCTAssertEqual(verified.jkt, DPoPFixtures.rfcJKT)
        XCTAssertEqual(verified.jti, "e1j3V_bKic8-LAEB")
    }

    func testRefusesTheRFC9449ProofForAnotherRequestOrOutsideTheWindow() throws {
        let token = DPoPFixtures.rfcTokenRequestProof
        let iat = DPoPFixtures.rfcTokenRequestIAT
        let url = "https://server.example.com/token"
        assertInvalidProof(try verify(token, .init(method: "GET", url: url, now: iat)), check: "HTM")
        assertInvalidProof(
            try verify(token, .init(method: "POST", url: "https://server.example.com/par", now: iat)), check: "HTU")
        assertInvalidProof(
            try verify(token, .init(method: "POST", url: url, now: iat.addingTimeInterval(61))), check: "IAT")
        assertInvalidProof(
            try verify(token, .init(method: "POST", url: url, now: iat, accessToken: DPoPFixtures.rfcAccessToken)),
            check: "ATH")
    }

    // MARK: Accepted proofs

    func testAcceptsEveryAllowedAlgorithm() throws {
        guard case .object(var rsa) = Fixtures.rsaKey.privateJWK else { return XCTFail("RSA key has no JWK") }
        rsa["alg"] = "PS256"
        let signers = [
            DPoPFixtures.es256, DPoPFixtures.ed25519, Fixtures.rsaKey, try JWSSigningKey(privateJWK: .object(rsa)),
        ]
        XCTAssertEqual(Set(signers.map(\.algorithm)), DPoPProofVerifier.allowedAlgorithms)
        for signer in signers {
            let verified = try verify(Proof(signer: signer))
            XCTAssertEqual(verified.jkt, signer.publicJWK.thumbprint(), "\(signer.algorithm)")
        }
    }

    func testReturnsWhatTheProofEstablishes() throws {
        let verified = try verify(Proof().with("nonce", "n-1"))
        XCTAssertEqual(verified.jkt, DPoPFixtures.es256.publicJWK.thumbprint())
        XCTAssertEqual(verified.jti, "Xq3a9Zp1-LmN0bVc7RtY")
        XCTAssertEqual(verified.issuedAt, DPoPFixtures.now)
        XCTAssertEqual(verified.nonce, "n-1")
        XCTAssertEqual(verified.publicKey, DPoPFixtures.es256.publicJWK)
    }

    func testAcceptsABareJWKWithoutKidUseOrAlg() throws {
        guard case .object(var members) = DPoPFixtures.es256.publicJWK.json else { return XCTFail("no JWK") }
        for name in ["kid", "use", "alg"] { members[name] = nil }
        XCTAssertNoThrow(try verify(Proof(jwk: .object(members))))
    }

    func testDoesNotCheckReplaySoTheSameProofVerifiesTwice() throws {
        let token = try Proof().token()
        XCTAssertEqual(try verify(token).jti, try verify(token).jti)
    }

    // MARK: Header

    func testRefusesAWrongOrMissingTyp() throws {
        for typ in ["JWT", "at+jwt", "DPoP+JWT", "application/dpop+jwt", "dpop+jwt ", nil] {
            var proof = Proof()
            proof.typ = typ
            assertInvalidProof(try verify(proof), check: "Typ", "typ \(typ ?? "absent")")
        }
    }

    func testRefusesAlgNone() throws {
        let header = Self.header(alg: "none", jwk: DPoPFixtures.es256.publicJWK.json)
        let input = Fixtures.segment(header) + "." + Fixtures.segment(.object(Proof().claims))
        for token in [input + ".", input + "." + Base64URL.encode([0])] {
            assertInvalidProof(try verify(token), check: "Syntax")
        }
    }

    func testRefusesHS256KeyedWithThePublicKey() throws {
        // The classic confusion: an HMAC made with the public key's bytes as the secret.
        let jwk = DPoPFixtures.es256.publicJWK.json
        let input =
            Fixtures.segment(Self.header(alg: "HS256", jwk: jwk)) + "." + Fixtures.segment(.object(Proof().claims))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array(input.utf8), using: SymmetricKey(data: StrictJSON.serialize(jwk)))
        assertInvalidProof(try verify(input + "." + Base64URL.encode(Array(mac))), check: "Syntax")
    }

    func testRefusesAnImplementedAlgorithmOutsideTheAllowList() throws {
        assertInvalidProof(try verify(Proof(signer: DPoPFixtures.es384)), check: "Algorithm")
    }

    func testRefusesAPrivateKeyInTheJWKHeader() throws {
        let signer = DPoPFixtures.es256
        let token = try Fixtures.forge(
            headerJSON: Self.header(alg: "ES256", jwk: signer.privateJWK), claims: Proof().claims, signer: signer)
        assertInvalidProof(try verify(token), check: "Syntax")
        XCTAssertThrowsError(try DPoPProof(parsing: token)) { error in
            XCTAssertEqual(error as? DPoPError, .invalidProof("Syntax: private or symmetric key material"))
        }
    }

    func testRefusesAProofWithoutAJWKHeader() throws {
        var proof = Proof()
        proof.omitsJWK = true
        assertInvalidProof(try verify(proof), check: "EmbeddedKey")
    }

    func testRefusesAJWKOfAnotherKeyTypeThanAlg() throws {
        let mismatches: [(JWSSigningKey, JWK)] = [
            (DPoPFixtures.es256, DPoPFixtures.ed25519.publicJWK),
            (DPoPFixtures.ed25519, DPoPFixtures.es256.publicJWK),
            (DPoPFixtures.es256, Fixtures.rsaKey.publicJWK),
            (Fixtures.rsaKey, DPoPFixtures.es256.publicJWK),
            (DPoPFixtures.es256, DPoPFixtures.es384.publicJWK),
        ]
        for (signer, jwk) in mismatches {
            assertInvalidProof(
                try verify(Proof(signer: signer, jwk: jwk.json)), check: "KeyType",
                "\(signer.algorithm) with \(jwk.kty)")
        }
    }

    func testRefusesAJWKWhoseOwnAlgOrUseForbidsTheProofAlg() throws {
        guard case .object(var members) = DPoPFixtures.es256.publicJWK.json else { return XCTFail("no JWK") }
        members["use"] = "enc"
        assertInvalidProof(try verify(Proof(jwk: .object(members))), check: "KeyType")
        guard case .object(var rsa) = Fixtures.rsaKey.publicJWK.json else { return XCTFail("no JWK") }
        rsa["alg"] = "PS256"  // the key is declared for PS256, the proof is RS256
        assertInvalidProof(try verify(Proof(signer: Fixtures.rsaKey, jwk: .object(rsa))), check: "KeyType")
    }

    func testRefusesABadSignature() throws {
        var parts = try Proof().token().split(separator: ".").map(String.init)
        var signature = try XCTUnwrap(Base64URL.decode(parts[2]))
        signature[10] ^= 0x01
        parts[2] = Base64URL.encode(signature)
        assertInvalidProof(try verify(parts.joined(separator: ".")), check: "Signature")
    }

    func testRefusesAProofSignedByAnotherKeyThanItsJWK() throws {
        let proof = Proof(signer: DPoPFixtures.otherES256, jwk: DPoPFixtures.es256.publicJWK.json)
        assertInvalidProof(try verify(proof), check: "Signature")
    }

    func testRefusesASignedPayloadThatIsNotAJSONObject() throws {
        let signer = DPoPFixtures.es256
        let input =
            Fixtures.segment(Self.header(alg: "ES256", jwk: signer.publicJWK.json)) + "." + Fixtures.segment("[1]")
        let token = input + "." + Base64URL.encode(try signer.sign(Array(input.utf8)))
        assertInvalidProof(try verify(token), check: "Claims")
    }

    // MARK: Claims

    func testRefusesAMissingEmptyLongOrNonStringJTI() throws {
        let bad: [JSONValue?] = [nil, "", .string(String(repeating: "j", count: 257)), 12_345, ["a"]]
        for jti in bad {
            assertInvalidProof(try verify(Proof().with("jti", jti)), check: "JTI", "jti \(String(describing: jti))")
        }
        XCTAssertNoThrow(try verify(Proof().with("jti", .string(String(repeating: "j", count: 256)))))
    }

    func testRefusesAWrongOrMissingHTM() throws {
        for htm in ["GET", "post", "POST ", nil] as [JSONValue?] {
            assertInvalidProof(try verify(Proof().with("htm", htm)), check: "HTM", "htm \(String(describing: htm))")
        }
    }

    func testRefusesAnHTUForAnotherURL() throws {
        let others = [
            "https://attacker.example/oauth2/token", "http://tessera.example/oauth2/token",
            "https://tessera.example:8443/oauth2/token", "https://tessera.example.evil/oauth2/token",
        ]
        for htu in others {
            assertInvalidProof(try verify(Proof().with("htu", .string(htu))), check: "HTU", htu)
        }
    }

    func testAcceptsAnHTUWithAnotherQueryOrFragment() throws {
        let proof = Proof().with("htu", .string(DPoPFixtures.url + "?a=1#top"))
        XCTAssertNoThrow(try verify(proof, DPoPFixtures.context(url: DPoPFixtures.url + "?b=2")))
        XCTAssertNoThrow(try verify(proof))
    }

    func testRefusesAnHTUWithAnotherPath() throws {
        for path in [
            "/oauth2/token/", "/oauth2/tokens", "/oauth2", "/OAUTH2/token", "/oauth2/token/..", "/oauth2%2Ftoken",
        ] {
            let htu = "https://tessera.example" + path
            assertInvalidProof(try verify(Proof().with("htu", .string(htu))), check: "HTU", htu)
        }
    }

    func testComparesHTUAndRequestURLAfterNormalisation() throws {
        let equivalent: [(htu: String, request: String)] = [
            ("HTTPS://Tessera.EXAMPLE/oauth2/token", "https://tessera.example/oauth2/token"),
            ("https://tessera.example:443/oauth2/token", "https://tessera.example/oauth2/token"),
            ("https://tessera.example/oauth2/token", "https://tessera.example:443/oauth2/token"),
            ("http://tessera.example:80/oauth2/token", "http://tessera.example/oauth2/token"),
            ("https://tessera.example/%6Fauth2/%74oken", "https://tessera.example/oauth2/token"),
            ("https://tessera.example/oauth2/./x/../token", "https://tessera.example/oauth2/token"),
            ("https://tessera.example", "https://tessera.example/"),
        ]
        for (htu, request) in equivalent {
            XCTAssertNoThrow(
                try verify(Proof().with("htu", .string(htu)), DPoPFixtures.context(url: request)),
                "\(htu) vs \(request)")
        }
    }

    func testRefusesAnHTUOrRequestURLThatIsNotAnAbsoluteHTTPURL() throws {
        for htu in [
            "/oauth2/token", "tessera.example/oauth2/token", "ftp://tessera.example/oauth2/token", "", "https://",
        ] {
            assertInvalidProof(try verify(Proof().with("htu", .string(htu))), check: "HTU", htu)
        }
        assertInvalidProof(try verify(Proof().with("htu", nil)), check: "HTU")
        assertInvalidProof(try verify(Proof(), DPoPFixtures.context(url: "/oauth2/token")), check: "HTU")
    }

    func testAcceptsIATAtTheEdgesOfTheWindow() throws {
        let now = DPoPFixtures.now.timeIntervalSince1970
        for iat in [now - 60, now + 60, now - 0.5] {
            XCTAssertNoThrow(try verify(Proof().with("iat", .number(iat))), "iat now\(iat - now)")
        }
    }

    func testRefusesAStaleIAT() throws {
        let stale = DPoPFixtures.now.timeIntervalSince1970 - 61
        assertInvalidProof(try verify(Proof().with("iat", .number(stale))), check: "IAT")
    }

    func testRefusesAFutureIAT() throws {
        let future = DPoPFixtures.now.timeIntervalSince1970 + 61
        assertInvalidProof(try verify(Proof().with("iat", .number(future))), check: "IAT")
    }

    func testRefusesAMissingOrNonNumericIAT() throws {
        let now = String(Int(DPoPFixtures.now.timeIntervalSince1970))
        for iat in [nil, .string(now)] as [JSONValue?] {
            assertInvalidProof(try verify(Proof().with("iat", iat)), check: "IAT")
        }
    }

    func testIATWindowIsConfigurable() throws {
        let proof = Proof().with("iat", .number(DPoPFixtures.now.timeIntervalSince1970 - 200))
        XCTAssertEqual(DPoPProofVerifier.defaultIATWindow, 60)
        var lenient = DPoPProofVerifier()
        lenient.iatWindow = 300
        XCTAssertNoThrow(try lenient.verify(DPoPProof(parsing: proof.token()), DPoPFixtures.context()))
        assertInvalidProof(try verify(proof), check: "IAT")
    }

    func testAcceptsTheATHOfThePresentedAccessToken() throws {
        let token = "access-token-1"
        let proof = Proof().with("ath", .string(DPoPAccessTokenHash.of(token)))
        XCTAssertNoThrow(try verify(proof, DPoPFixtures.context(accessToken: token)))
    }

    func testRefusesAWrongATH() throws {
        let context = DPoPFixtures.context(accessToken: "access-token-1")
        let wrong: [JSONValue] = [.string(DPoPAccessTokenHash.of("access-token-2")), "", 1, .string("access-token-1")]
        for ath in wrong {
            assertInvalidProof(try verify(Proof().with("ath", ath), context), check: "ATH", "\(ath)")
        }
    }

    func testRefusesAMissingATHWhenAnAccessTokenIsPresented() throws {
        assertInvalidProof(try verify(Proof(), DPoPFixtures.context(accessToken: "access-token-1")), check: "ATH")
    }

    func testRefusesAnATHWhenNoAccessTokenIsPresented() throws {
        let proof = Proof().with("ath", .string(DPoPAccessTokenHash.of("access-token-1")))
        assertInvalidProof(try verify(proof), check: "ATH")
    }

    // MARK: Nonce

    private static let nonces = DPoPNonceSource(key: Array(repeating: 7, count: 32))

    private func context(acceptingNoncesAt now: Date = DPoPFixtures.now) -> DPoPRequestContext {
        let nonces = Self.nonces
        return DPoPFixtures.context(now: now, expectedNonce: { nonces.isAcceptable($0, now: now) })
    }

    func testAcceptsACurrentNonceAndReturnsIt() throws {
        let nonce = Self.nonces.current(now: DPoPFixtures.now)
        XCTAssertEqual(
            try verify(Proof().with("nonce", .string(nonce)), context(acceptingNoncesAt: DPoPFixtures.now)).nonce, nonce
        )
    }

    func testAsksForANonceWhenTheProofHasNone() throws {
        assertUseNonce(try verify(Proof(), context()))
    }

    func testAsksForANewNonceWhenTheNonceExpired() throws {
        let old = Self.nonces.current(now: DPoPFixtures.now.addingTimeInterval(-3600))
        assertUseNonce(try verify(Proof().with("nonce", .string(old)), context()))
    }

    func testAsksForANewNonceWhenTheNonceCameFromAnotherKey() throws {
        let foreign = DPoPNonceSource(key: Array(repeating: 8, count: 32)).current(now: DPoPFixtures.now)
        assertUseNonce(try verify(Proof().with("nonce", .string(foreign)), context()))
    }

    func testRefusesANonceThatIsNotAString() throws {
        assertInvalidProof(try verify(Proof().with("nonce", 42), context()), check: "Nonce")
        assertInvalidProof(try verify(Proof().with("nonce", 42)), check: "Nonce")
    }

    func testAsksForANonceOnlyForAProofThatPassesEveryOtherCheck() throws {
        assertInvalidProof(try verify(Proof().with("htm", "GET"), context()), check: "HTM")
        assertInvalidProof(try verify(Proof().with("iat", 0), context()), check: "IAT")
        assertInvalidProof(try verify(Proof(signer: DPoPFixtures.es384), context()), check: "Algorithm")
    }

    // MARK: Helpers

    private static func header(alg: String, jwk: JSONValue) -> String {
        String(decoding: StrictJSON.serialize(["typ": "dpop+jwt", "alg": .string(alg), "jwk": jwk]), as: UTF8.self)
    }
}
