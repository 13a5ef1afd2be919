import Foundation
import TesseraCore
import XCTest

final class SecretsTests: XCTestCase {
    func testRandomTokensAre256BitsAndDistinct() {
        let tokens = (0..<1000).map { _ in Secrets.randomToken() }
        XCTAssertEqual(Set(tokens).count, 1000)
        XCTAssertTrue(tokens.allSatisfy { $0.count == 43 && !$0.contains("=") && !$0.contains("+") && !$0.contains("/") })
    }

    func testConstantTimeEqualsComparesWholeValues() {
        XCTAssertTrue(Secrets.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Secrets.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Secrets.constantTimeEquals([1, 2, 3], [1, 2]))
        XCTAssertFalse(Secrets.constantTimeEquals([], [0]))
    }

    func testTenantIDGrammar() {
        XCTAssertNotNil(TenantID("acme-2"))
        for bad in ["", "-acme", "Acme", "acme_corp", "acme/..", String(repeating: "a", count: 64)] {
            XCTAssertNil(TenantID(bad), bad)
        }
    }

    func testEveryErrorCodeHasAStatusAndInvalidClientIs401() {
        XCTAssertEqual(OAuthErrorCode.invalidClient.httpStatus, 401)
        XCTAssertEqual(OAuthErrorCode.slowDown.httpStatus, 429)
        for code in OAuthErrorCode.allCases { XCTAssertTrue((400...599).contains(code.httpStatus)) }
    }
}

final class EncodingTests: XCTestCase {
    func testBase64URLMatchesRFC4648TestVectorsWithoutPadding() {
        // RFC 4648 §10, in the URL alphabet, padding removed.
        let vectors = ["": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"]
        for (input, expected) in vectors { XCTAssertEqual(Secrets.base64URL(Array(input.utf8)), expected) }
        XCTAssertEqual(Secrets.base64URL([0xFB, 0xFF, 0xBF]), "-_-_")
    }

    func testRandomBytesHaveTheAskedLength() {
        for count in [0, 1, 7, 8, 9, 32, 33] { XCTAssertEqual(Secrets.randomBytes(count).count, count) }
    }

    func testRFC3339FormatsUTCWithMilliseconds() {
        XCTAssertEqual(RFC3339.format(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(RFC3339.format(Date(timeIntervalSince1970: 1_795_338_903.123_9)), "2026-11-22T09:15:03.123Z")
        let now = Date()
        let parsed = try? Date(RFC3339.format(now), strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        XCTAssertEqual(parsed?.timeIntervalSince1970 ?? 0, now.timeIntervalSince1970, accuracy: 0.001)
    }
}

final class TimeOrderedIDTests: XCTestCase {
    func testIDsSortByCreationTimeAndStayUnique() {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let ids = (0..<2000).map { Secrets.timeOrderedID(now: start.addingTimeInterval(Double($0) * 0.001)) }
        XCTAssertEqual(Set(ids).count, ids.count)
        XCTAssertTrue(ids.allSatisfy { $0.count == 22 })
        // Base64url's alphabet is not in ASCII order, so compare the decoded timestamp prefix.
        let sameMillisecond = (0..<1000).map { _ in Secrets.timeOrderedID(now: start) }
        XCTAssertEqual(Set(sameMillisecond).count, 1000, "80 random bits separate ids of the same millisecond")
        XCTAssertEqual(Set(sameMillisecond.map { $0.prefix(8) }).count, 1, "the timestamp prefix is shared")
    }
}
