import TesseraJOSE
import XCTest

final class DPoPAccessTokenHashTests: XCTestCase {
    func testHashesTheRFC9449Section7_1ExampleToken() {
        XCTAssertEqual(DPoPAccessTokenHash.of(DPoPFixtures.rfcAccessToken), DPoPFixtures.rfcAccessTokenHash)
    }

    func testIsUnpaddedBase64URLOfSHA256() {
        // SHA-256("") from FIPS 180-4 test vectors, in base64url without padding.
        XCTAssertEqual(DPoPAccessTokenHash.of(""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")
    }
}
