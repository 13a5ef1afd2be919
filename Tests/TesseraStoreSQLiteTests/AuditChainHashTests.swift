import TesseraCore
import TesseraStore
import XCTest

/// The chain hash is part of the audit contract: an external verifier recomputes it from the export.
final class AuditChainHashTests: XCTestCase {
    func testChainHashIsSHA256OfPreviousHashNewlineAndBody() {
        // Known answer computed independently (Python hashlib).
        XCTAssertEqual(
            AuditChain.hash(prev: AuditChain.genesis, body: Array(#"{"action":"token.issued"}"#.utf8)),
            "77c31c558ecbe5d166945ee6c12a52d648c0acf760ce6a133675bce75b9d0bff")
    }

    func testHexIsLowerCaseTwoDigitsPerByte() {
        XCTAssertEqual(Secrets.hex([0x00, 0x0F, 0xA5, 0xFF]), "000fa5ff")
        XCTAssertEqual(Secrets.hex([]), "")
    }
}
