import TesseraCore
import TesseraStore
@testable import TesseraStoreSQLite
import XCTest

/// The writer's chain hash must equal `AuditChain.hash`, or every chain it writes is broken.
final class AuditHashingTests: XCTestCase {
    func testEqualsAuditChainHash() {
        var previous = AuditChain.genesis
        let bodies: [[UInt8]] = [
            [],
            Array(#"{"action":"token.issued"}"#.utf8),
            Array(#"{"reason":"naïve café — 日本語 🔑"}"#.utf8),
            (0..<200).map { _ in UInt8.random(in: 0x20...0x7E) },
            [0xFF, 0xFE, 0x00, 0x80],  // not UTF-8: takes the reference path
        ]
        for body in bodies {
            let fast = AuditHashing.hash(prev: previous, body: body)
            XCTAssertEqual(fast, AuditChain.hash(prev: previous, body: body), "body \(body.prefix(16))")
            previous = fast
        }
    }

    func testHexIsLowerCaseTwoDigitsPerByte() {
        XCTAssertEqual(AuditHashing.hex([0x00, 0x0F, 0xA5, 0xFF]), "000fa5ff")
        XCTAssertEqual(AuditHashing.hex([]), "")
    }
}
