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
