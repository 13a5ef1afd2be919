import Crypto
import Foundation
import TesseraJOSE
import XCTest
import _CryptoExtras

final class CompactJWSTests: XCTestCase {
    private static let es256 = try! JWSSigningKey.generate(.ES256, kid: "es")

    private var es256: JWSSigningKey { Self.es256 }

    private func verificationKey(_ key: JWSSigningKey) throws -> JWSVerificationKey {
        try JWSVerificationKey(jwk: key.publicJWK)
    }

    private func segments(_ token: String) -> [String] {
        token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    // MARK: RFC examples

    func testVerifiesRFC7515AppendixA3ExampleVerbatim() throws {
        let jws = try CompactJWS(parsing: Fixtures.rfc7515A3Token)
        XCTAssertEqual(jws.header.alg, .ES256)
        XCTAssertEqual(jws.header.raw, ["alg": "ES256"])
        let key = try JWSVerificationKey(json: Fixtures.rfc7515A3PublicJWK)
        let claims = try jws.verify(with: key, allowed: [.ES256])
        XCTAssertEqual(claims, ["iss": "joe", "exp": 1_300_819_380, "http://example.com/is_root": true])
        // The payload is the RFC's bytes, CRLFs included, not a re-serialisation.
        XCTAssertEqual(
            jws.payload,
            Array("{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}".utf8))
    }

    // MARK: Parsing

    func testExposesHeaderMembers() throws {
        let holder = try JWSSigningKey.generate(.ES256)
        let token = try es256.signCompact(
            claims: Fixtures.claims, typ: "dpop+jwt", extraHeader: ["jwk": holder.publicJWK.json, "x-ext": 1])
        let jws = try CompactJWS(parsing: token)
        XCTAssertEqual(jws.header.alg, .ES256)
        XCTAssertEqual(jws.header.kid, "es")
        XCTAssertEqual(jws.header.typ, "dpop+jwt")
        XCTAssertEqual(jws.header.jwk, holder.publicJWK)
        XCTAssertEqual(jws.header.raw["x-ext"], 1)
        XCTAssertEqual(String(decoding: jws.signingInput, as: UTF8.self), segments(token)[0] + "." + segments(token)[1])
    }

    func testRefusesAnythingButThreeSegments() throws {
        let token = try es256.signCompact(claims: Fixtures.claims, typ: "JWT")
        let parts = segments(token)
        let candidates = [
            "", ".", "..", "...", parts[0], parts[0] + "." + parts[1],
            token + "." + parts[2], token + ".", "." + token,
            parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[1] + "." + parts[2],  // JWE-shaped
        ]
        for candidate in candidates {
            assertThrowsJOSEErrorCase(.malformed(""), try CompactJWS(parsing: candidate), candidate)
        }
    }

    func testRefusesOversizedTokensBeforeDecoding() throws {
        let token = try es256.signCompact(claims: Fixtures.claims, typ: "JWT")
        XCTAssertNoThrow(try CompactJWS(parsing: token, maxLength: token.utf8.count))
        assertThrowsJOSEError(.malformed("JWS too large"), try CompactJWS(parsing: token, maxLength: token.utf8.count - 1))
        let huge = try es256.signCompact(claims: ["blob": .string(String(repeating: "a", count: 20_000))], typ: nil)
        assertThrowsJOSEError(.malformed("JWS too large"), try CompactJWS(parsing: huge))
    }

    func testRefusesPaddingAndNonURLAlphabetInEverySegment() throws {
        let token = try es256.signCompact(claims: Fixtures.claims, typ: "JWT")
        let parts = segments(token)
        for index in 0..<3 {
            for mutation in ["=", "==", "+", "/", " "] {
                var mutated = parts
                mutated[index] += mutation
                assertThrowsJOSEErrorCase(
                    .malformed(""), try CompactJWS(parsing: mutated.joined(separator: ".")),
                    "segment \(index) + \(mutation)")
            }
        }
    }

    func testRefusesAHeaderThatIsNotAJSONObject() throws {
        let tail = "." + Fixtures.segment(.object(Fixtures.claims)) + ".AAAA"
        for header in ["[]", "\"ES256\"", "{", "{\"alg\":\"ES256\"} x", ""] {
            assertThrowsJOSEErrorCase(.malformed(""), try CompactJWS(parsing: Fixtures.segment(header) + tail), header)
        }
    }

    func testRefusesDuplicateHeaderMembers() throws {
        let token = try Fixtures.forge(headerJSON: #"{"alg":"ES256","kid":"es","alg":"ES256"}"#, signer: es256)
        assertThrowsJOSEErrorCase(.duplicateMember(""), try CompactJWS(parsing: token))
        let shadowed = try Fixtures.forge(headerJSON: #"{"alg":"ES256","kid":"es","\u0061lg":"none"}"#, signer: es256)
        assertThrowsJOSEErrorCase(.duplicateMember(""), try CompactJWS(parsing: shadowed))
    }

    func testRefusesNoneHMACAndUnknownAlgorithms() throws {
        for alg in ["none", "None", "NONE", "HS256", "HS384", "HS512", "es256", "ES512", "RS1", "RSA-OAEP", ""] {
            let token = try Fixtures.forge(headerJSON: #"{"alg":"\#(alg)"}"#, signer: es256)
            assertThrowsJOSEErrorCase(.unsupportedAlgorithm(""), try CompactJWS(parsing: token), alg)
        }
        // The classic unsigned token, empty signature included.
        let unsigned = Fixtures.segment(#"{"alg":"none"}"#) + "." + Fixtures.segment(.object(Fixtures.claims)) + "."
        assertThrowsJOSEErrorCase(.unsupportedAlgorithm(""), try CompactJWS(parsing: unsigned))
    }

    func testRefusesAMissingOrNonStringAlg() throws {
        for header in [#"{}"#, #"{"alg":null}"#, #"{"alg":["ES256"]}"#, #"{"alg":256}"#] {
            let token = try Fixtures.forge(headerJSON: header, signer: es256)
            assertThrowsJOSEErrorCase(.malformed(""), try CompactJWS(parsing: token), header)
        }
    }

    func testRefusesNonStringKidAndTyp() throws {
        for header in [#"{"alg":"ES256","kid":1}"#, #"{"alg":"ES256","typ":{}}"#] {
            let token = try Fixtures.forge(headerJSON: header, signer: es256)
            assertThrowsJOSEErrorCase(.malformed(""), try CompactJWS(parsing: token), header)
        }
    }

    func testRefusesCriticalHeadersThatAreNotUnderstood() throws {
        let token = try Fixtures.forge(headerJSON: #"{"alg":"ES256","crit":["exp"],"exp":5}"#, signer: es256)
        assertThrowsJOSEErrorCase(.unknownCriticalHeader(""), try CompactJWS(parsing: token))
        assertThrowsJOSEErrorCase(
            .unknownCriticalHeader(""), try CompactJWS(parsing: token, understoodCritical: ["other"]))
        XCTAssertNoThrow(try CompactJWS(parsing: token, understoodCritical: ["exp"]))
    }

    func testRefusesMalformedCrit() throws {
        let headers = [
            #"{"alg":"ES256","crit":[]}"#,  // must be non-empty
            #"{"alg":"ES256","crit":"exp","exp":5}"#,  // must be an array
            #"{"alg":"ES256","crit":[5]}"#,  // of strings
            #"{"alg":"ES256","crit":["exp","exp"],"exp":5}"#,  // without repeats
            #"{"alg":"ES256","crit":["exp"]}"#,  // naming present members
            #"{"alg":"ES256","crit":["alg"]}"#,  // and no registered ones (RFC 7515 §4.1.11)
            #"{"alg":"ES256","crit":["kid"],"kid":"k"}"#,
        ]
        for header in headers {
            let token = try Fixtures.forge(headerJSON: header, signer: es256)
            assertThrowsJOSEErrorCase(
                .malformed(""), try CompactJWS(parsing: token, understoodCritical: ["exp", "alg", "kid"]),
                header)
        }
    }

    func testRefusesUnencodedPayloadOptionEvenWhenUnderstood() throws {
        let token = try Fixtures.forge(headerJSON: #"{"alg":"ES256","b64":false,"crit":["b64"]}"#, signer: es256)
        assertThrowsJOSEErrorCase(.malformed(""), try CompactJWS(parsing: token, understoodCritical: ["b64"]))
        let notBool = try Fixtures.forge(headerJSON: #"{"alg":"ES256","b64":"false"}"#, signer: es256)
        assertThrowsJOSEErrorCase(.malformed(""), try CompactJWS(parsing: notBool))
    }

    func testRefusesAHeaderJWKCarryingPrivateMaterial() throws {
        let header = String(decoding: StrictJSON.serialize(["alg": "ES256", "jwk": es256.privateJWK]), as: UTF8.self)
        let token = try Fixtures.forge(headerJSON: header, signer: es256)
        assertThrowsJOSEError(.privateKeyMaterial, try CompactJWS(parsing: token))
    }

    func testRefusesAnEmptySignature() throws {
        let token = try es256.signCompact(claims: Fixtures.claims, typ: nil)
        let parts = segments(token)
        assertThrowsJOSEErrorCase(.malformed(""), try CompactJWS(parsing: parts[0] + "." + parts[1] + "."))
    }

    // MARK: Verification

    func testVerifiesAndReturnsTheClaims() throws {
        let token = try es256.signCompact(claims: Fixtures.claims, typ: "JWT")
        let claims = try CompactJWS(parsing: token).verify(with: verificationKey(es256), allowed: [.ES256])
        XCTAssertEqual(claims, Fixtures.claims)
    }

    func testRefusesAnAlgorithmTheCallerDidNotAllow() throws {
        let token = try es256.signCompact(claims: Fixtures.claims, typ: "JWT")
        let jws = try CompactJWS(parsing: token)
        assertThrowsJOSEErrorCase(
            .algorithmNotAllowed(""), try jws.verify(with: verificationKey(es256), allowed: [.ES384, .RS256]))
        assertThrowsJOSEErrorCase(.algorithmNotAllowed(""), try jws.verify(with: verificationKey(es256), allowed: []))
    }

    func testRefusesTamperedPayload() throws {
        let parts = segments(try es256.signCompact(claims: Fixtures.claims, typ: "JWT"))
        var claims = Fixtures.claims
        claims["sub"] = "mallory"
        let tampered = [parts[0], Fixtures.segment(.object(claims)), parts[2]].joined(separator: ".")
        assertThrowsJOSEError(
            .badSignature, try CompactJWS(parsing: tampered).verify(with: verificationKey(es256), allowed: [.ES256]))
    }

    func testRefusesTamperedHeader() throws {
        let parts = segments(try es256.signCompact(claims: Fixtures.claims, typ: "JWT"))
        let header = Fixtures.segment(["alg": "ES256", "kid": "es", "typ": "at+jwt"])
        let tampered = [header, parts[1], parts[2]].joined(separator: ".")
        assertThrowsJOSEError(
            .badSignature, try CompactJWS(parsing: tampered).verify(with: verificationKey(es256), allowed: [.ES256]))
    }

    func testRefusesASignatureByAnotherKey() throws {
        let other = try JWSSigningKey.generate(.ES256, kid: "es")
        let token = try other.signCompact(claims: Fixtures.claims, typ: "JWT")
        assertThrowsJOSEError(
            .badSignature, try CompactJWS(parsing: token).verify(with: verificationKey(es256), allowed: [.ES256]))
    }

    func testRefusesSignaturesOfTheWrongLength() throws {
        let parts = segments(try es256.signCompact(claims: Fixtures.claims, typ: "JWT"))
        let signature = Base64URL.decode(parts[2])!
        for wrong in [Array(signature.dropLast()), signature + [0], [0] + signature, signature + signature] {
            let token = [parts[0], parts[1], Base64URL.encode(wrong)].joined(separator: ".")
            assertThrowsJOSEError(
                .badSignature, try CompactJWS(parsing: token).verify(with: verificationKey(es256), allowed: [.ES256]))
        }
    }

    func testRefusesDEREncodedECDSASignatures() throws {
        guard let d = es256.privateJWK["d"]?.stringValue, let scalar = Base64URL.decode(d) else { return XCTFail() }
        let key = try P256.Signing.PrivateKey(rawRepresentation: scalar)
        let input = Fixtures.segment(["alg": "ES256", "kid": "es"]) + "." + Fixtures.segment(.object(Fixtures.claims))
        let signature = try key.signature(for: Data(input.utf8))
        // Sanity: the same signature in r||s form is accepted.
        let raw = input + "." + Base64URL.encode(signature.rawRepresentation)
        XCTAssertNoThrow(try CompactJWS(parsing: raw).verify(with: verificationKey(es256), allowed: [.ES256]))
        let der = input + "." + Base64URL.encode(signature.derRepresentation)
        assertThrowsJOSEError(
            .badSignature, try CompactJWS(parsing: der).verify(with: verificationKey(es256), allowed: [.ES256]))
    }

    func testRefusesAnES256SignaturePresentedAsES384OrRS256() throws {
        for alg in ["ES384", "RS256", "PS256", "EdDSA"] {
            let token = try Fixtures.forge(headerJSON: #"{"alg":"\#(alg)","kid":"es"}"#, signer: es256)
            let jws = try CompactJWS(parsing: token)
            assertThrowsJOSEErrorCase(
                .keyMismatch(""), try jws.verify(with: verificationKey(es256), allowed: Set(JWSAlgorithm.allCases)),
                alg)
        }
    }

    func testRefusesHS256MACKeyedWithTheRSAPublicKey() throws {
        let rsa = Fixtures.rsaKey.publicJWK
        let publicKey = try _RSA.Signing.PublicKey(n: Base64URL.decode(rsa.n!)!, e: Base64URL.decode(rsa.e!)!)
        let secrets: [[UInt8]] = [
            Array(publicKey.pemRepresentation.utf8), Array(publicKey.derRepresentation),
            Array(publicKey.pkcs1DERRepresentation), StrictJSON.serialize(rsa.json),
        ]
        for secret in secrets {
            let input =
                Fixtures.segment(#"{"alg":"HS256","kid":"\#(Fixtures.rsaKey.kid)"}"#) + "."
                + Fixtures.segment(.object(Fixtures.claims))
            let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: secret))
            let token = input + "." + Base64URL.encode(Array(mac))
            assertThrowsJOSEErrorCase(.unsupportedAlgorithm(""), try CompactJWS(parsing: token))
        }
    }

    func testRefusesAHeaderAlgOtherThanTheKeysAlgMember() throws {
        // The RSA key is published with alg RS256; a PS256 token from the same private key must
        // not verify with it, even when the caller allows PS256.
        guard case .object(var members) = Fixtures.rsaKey.privateJWK else { return XCTFail() }
        members["alg"] = "PS256"
        let ps256 = try JWSSigningKey(privateJWK: .object(members))
        let token = try ps256.signCompact(claims: Fixtures.claims, typ: "JWT")
        let key = try JWSVerificationKey(jwk: Fixtures.rsaKey.publicJWK)
        assertThrowsJOSEErrorCase(
            .keyMismatch(""), try CompactJWS(parsing: token).verify(with: key, allowed: [.RS256, .PS256]))
        XCTAssertNoThrow(
            try CompactJWS(parsing: token).verify(with: JWSVerificationKey(jwk: ps256.publicJWK), allowed: [.PS256]))
    }

    func testRefusesAPayloadThatIsNotAJSONObject() throws {
        for payload in ["[1,2]", "\"text\"", "{\"a\":1,\"a\":2}", "not json", ""] {
            let input = Fixtures.segment(["alg": "ES256", "kid": "es"]) + "." + Fixtures.segment(payload)
            let token = input + "." + Base64URL.encode(try es256.sign(Array(input.utf8)))
            let jws = try CompactJWS(parsing: token)
            XCTAssertThrowsError(try jws.verify(with: verificationKey(es256), allowed: [.ES256]), payload) { error in
                XCTAssertNotEqual(error as? JOSEError, .badSignature)
            }
        }
    }
}
