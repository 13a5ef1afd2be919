import Crypto
import Foundation
import TesseraJOSE
import XCTest

/// Published test vectors, verbatim, and helpers to forge tokens that a signer of ours would
/// never produce.
enum Fixtures {
    /// RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
    static let rfc7638Modulus =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    static let rfc7638JWK: JSONValue = [
        "kty": "RSA", "n": .string(rfc7638Modulus), "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
    ]
    static let rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

    /// RFC 7515 Appendix A.3: the ES256 example key and JWS.
    static let rfc7515A3PublicJWK: JSONValue = [
        "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    ]
    static let rfc7515A3Token =
        "eyJhbGciOiJFUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"

    /// RFC 8037 Appendix A.1–A.4: the Ed25519 example key, its thumbprint and a JWS over a
    /// non-JSON payload ("Example of Ed25519 signing").
    /// A generated Ed25519 private JWK, for tests that need private members: no private key is
    /// committed, not even a published one.
    static let okpPrivateJWK: JSONValue = try! JWSSigningKey.generate(.EdDSA).privateJWK
    static let rfc8037PublicJWK: JSONValue = [
        "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    ]
    static let rfc8037Thumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    static let rfc8037Token =
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
        + ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"

    static let claims: [String: JSONValue] = ["iss": "https://issuer.example", "sub": "alice", "exp": 1_900_000_000]

    /// One RSA key for the whole test run: generating 3072-bit keys is slow, and the RS*/PS*
    /// round trips restore it under each algorithm instead.
    static let rsaKey: JWSSigningKey = {
        do { return try JWSSigningKey.generate(.RS256) } catch { fatalError("RSA key generation failed: \(error)") }
    }()

    static func segment(_ text: String) -> String { Base64URL.encode(Array(text.utf8)) }

    static func segment(_ json: JSONValue) -> String { Base64URL.encode(StrictJSON.serialize(json)) }

    /// A compact JWS with `headerJSON` taken verbatim (so it may be invalid) and signed by
    /// `key`'s raw signing primitive, whatever the header claims.
    static func forge(
        headerJSON: String, claims: [String: JSONValue] = Fixtures.claims, signer key: JWSSigningKey
    )
        throws -> String
    {
        let input = segment(headerJSON) + "." + segment(.object(claims))
        return input + "." + Base64URL.encode(try key.sign(Array(input.utf8)))
    }
}

/// Asserts that `body` throws exactly `expected`.
func assertThrowsJOSEError<T>(
    _ expected: JOSEError, _ body: @autoclosure () throws -> T, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try body()
        XCTFail("expected \(expected), nothing was thrown. \(message())", file: file, line: line)
    } catch let error as JOSEError {
        XCTAssertEqual(error, expected, message(), file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error). \(message())", file: file, line: line)
    }
}

/// Asserts that `body` throws a JOSEError of the same case as `expected`, whatever its reason.
func assertThrowsJOSEErrorCase<T>(
    _ expected: JOSEError, _ body: @autoclosure () throws -> T, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try body()
        XCTFail("expected \(expected), nothing was thrown. \(message())", file: file, line: line)
    } catch let error as JOSEError {
        XCTAssertEqual(error.caseName, expected.caseName, "got \(error). \(message())", file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error). \(message())", file: file, line: line)
    }
}

extension JOSEError {
    var caseName: String {
        switch self {
        case .malformed: "malformed"
        case .unsupportedAlgorithm: "unsupportedAlgorithm"
        case .algorithmNotAllowed: "algorithmNotAllowed"
        case .keyMismatch: "keyMismatch"
        case .badSignature: "badSignature"
        case .unknownCriticalHeader: "unknownCriticalHeader"
        case .duplicateMember: "duplicateMember"
        case .privateKeyMaterial: "privateKeyMaterial"
        case .unknownKey: "unknownKey"
        }
    }
}
