import Foundation
import TesseraJOSE
import XCTest

/// RFC 9449 examples, verbatim, and a builder for proofs that differ from a good one in one way.
enum DPoPFixtures {
    // MARK: RFC 9449

    /// RFC 9449 §4.1 (Figure 3): the example proof key, also the key of every later example.
    static let rfcJWK: JSONValue = [
        "kty": "EC", "crv": "P-256",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
    ]
    /// RFC 9449 §6.1 (Figure 7): `cnf.jkt` of a token bound to ``rfcJWK``.
    static let rfcJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

    /// RFC 9449 §4.1 (Figure 3): the proof for `POST https://server.example.com/token`.
    static let rfcTokenRequestProof =
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19"
        + ".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ"
        + ".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
    static let rfcTokenRequestIAT = Date(timeIntervalSince1970: 1_562_262_616)

    /// RFC 9449 §7.1 (Figures 12–13): the access token and the proof for
    /// `GET https://resource.example.org/protectedresource` that presents it.
    static let rfcAccessToken = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    static let rfcAccessTokenHash = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    static let rfcResourceRequestProof =
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19"
        + ".eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9"
        + ".2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
    static let rfcResourceRequestIAT = Date(timeIntervalSince1970: 1_562_262_618)

    // MARK: Our own proofs

    static let es256 = try! JWSSigningKey.generate(.ES256)
    static let otherES256 = try! JWSSigningKey.generate(.ES256)
    static let ed25519 = try! JWSSigningKey.generate(.EdDSA)
    static let es384 = try! JWSSigningKey.generate(.ES384)

    static let now = Date(timeIntervalSince1970: 1_700_000_000)
    static let method = "POST"
    static let url = "https://tessera.example/oauth2/token"

    static func context(
        method: String = method, url: String = url, now: Date = now, accessToken: String? = nil,
        expectedNonce: (@Sendable (String) -> Bool)? = nil
    ) -> DPoPRequestContext {
        DPoPRequestContext(method: method, url: url, now: now, accessToken: accessToken, expectedNonce: expectedNonce)
    }

    /// A proof, good for ``context(method:url:now:accessToken:expectedNonce:)`` as it stands.
    struct Proof {
        var signer: JWSSigningKey = DPoPFixtures.es256
        /// The `jwk` header; `nil` for the signer's public key.
        var jwk: JSONValue?
        var omitsJWK = false
        var typ: String? = "dpop+jwt"
        var claims: [String: JSONValue] = [
            "jti": "Xq3a9Zp1-LmN0bVc7RtY", "htm": .string(DPoPFixtures.method), "htu": .string(DPoPFixtures.url),
            "iat": .number(DPoPFixtures.now.timeIntervalSince1970),
        ]

        /// The same proof with claim `name` set to `value`, or removed when `value` is `nil`.
        func with(_ name: String, _ value: JSONValue?) -> Proof {
            var copy = self
            copy.claims[name] = value
            return copy
        }

        func token() throws -> String {
            let header: [String: JSONValue] = omitsJWK ? [:] : ["jwk": jwk ?? signer.publicJWK.json]
            return try signer.signCompact(claims: claims, typ: typ, extraHeader: header)
        }
    }
}

/// Asserts that `body` throws `DPoPError.invalidProof` whose reason names the check `check`.
func assertInvalidProof<T>(
    _ body: @autoclosure () throws -> T, check: String, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try body()
        XCTFail("expected a \(check) failure, the proof was accepted. \(message())", file: file, line: line)
    } catch DPoPError.invalidProof(let reason) {
        XCTAssertTrue(
            reason.hasPrefix(check + ": "), "expected a \(check) failure, got \"\(reason)\". \(message())", file: file,
            line: line)
    } catch {
        XCTFail("expected a \(check) failure, got \(error). \(message())", file: file, line: line)
    }
}

/// Asserts that `body` throws `DPoPError.useNonce`.
func assertUseNonce<T>(
    _ body: @autoclosure () throws -> T, _ message: @autoclosure () -> String = "", file: StaticString = #filePath,
    line: UInt = #line
) {
    do {
        _ = try body()
        XCTFail("expected useNonce, the proof was accepted. \(message())", file: file, line: line)
    } catch let error as DPoPError {
        XCTAssertEqual(error, .useNonce, message(), file: file, line: line)
    } catch {
        XCTFail("expected useNonce, got \(error). \(message())", file: file, line: line)
    }
}
