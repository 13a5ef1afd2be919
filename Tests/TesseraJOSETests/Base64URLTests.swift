import TesseraJOSE
import XCTest

final class Base64URLTests: XCTestCase {
    func testEncodesRFC4648TestVectorsWithoutPadding() {
        // RFC 4648 §10, translated to the URL alphabet and stripped of padding.
        let vectors = [
            ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64URL.encode(Array(plain.utf8)), encoded)
            XCTAssertEqual(Base64URL.decode(encoded), Array(plain.utf8))
        }
    }

    func testUsesTheURLAlphabet() {
        XCTAssertEqual(Base64URL.encode([0xFB, 0xFF, 0xBF]), "-_-_")
        XCTAssertEqual(Base64URL.decode("-_-_"), [0xFB, 0xFF, 0xBF])
    }

    func testRoundTripsEveryLengthAndByte() {
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 151 &+ 7) }
        for length in 0...bytes.count {
            let slice = Array(bytes.prefix(length))
            XCTAssertEqual(Base64URL.decode(Base64URL.encode(slice)), slice)
        }
    }

    func testRefusesPadding() {
        XCTAssertNil(Base64URL.decode("Zg=="))
        XCTAssertNil(Base64URL.decode("Zm8="))
        XCTAssertNil(Base64URL.decode("Zg="))
    }

    func testRefusesTheStandardAlphabetWhitespaceAndOtherCharacters() {
        for text in ["+/+/", "ab/c", "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v.", "Zm9vé"] {
            XCTAssertNil(Base64URL.decode(text), text)
        }
    }

    func testRefusesALengthThatCannotEncodeWholeBytes() {
        XCTAssertNil(Base64URL.decode("A"))
        XCTAssertNil(Base64URL.decode("Zm9vY"))
    }

    func testRefusesNonCanonicalTrailingBits() {
        // "Zg" is "f"; "Zh" decodes to the same byte with non-zero padding bits.
        XCTAssertNil(Base64URL.decode("Zh"))
        XCTAssertNil(Base64URL.decode("Zm9"))
        XCTAssertEqual(Base64URL.decode("Zm8"), Array("fo".utf8))
    }

    func testDecodesSubstrings() {
        let token = "xx.Zm9vYmFy.yy"
        let middle = token.split(separator: ".")[1]
        XCTAssertEqual(Base64URL.decode(middle), Array("foobar".utf8))
    }
}
