import Foundation
import TesseraCore
import TesseraOAuth
import XCTest

final class AuthFailureThrottleTests: XCTestCase {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func testRefusesAfterTheLimitUntilTheWindowPasses() throws {
        let throttle = AuthFailureThrottle(limits: .init(window: 60, perClient: 2, perAddress: 100))
        throttle.recordFailure(clientID: "c", address: "10.0.0.1", now: start)
        XCTAssertNoThrow(try throttle.check(clientID: "c", address: "10.0.0.1", now: start))
        throttle.recordFailure(clientID: "c", address: "10.0.0.1", now: start)
        XCTAssertThrowsError(try throttle.check(clientID: "c", address: "10.0.0.2", now: start.addingTimeInterval(10))) { error in
            let oauth = error as? OAuthError
            XCTAssertEqual(oauth?.code, .slowDown)
            XCTAssertEqual(oauth?.retryAfter, 50)
        }
        XCTAssertNoThrow(try throttle.check(clientID: "other", address: "10.0.0.1", now: start), "other clients are not punished")
        XCTAssertNoThrow(try throttle.check(clientID: "c", address: "10.0.0.1", now: start.addingTimeInterval(61)))
    }

    func testAddressLimitSpansClientIDs() {
        let throttle = AuthFailureThrottle(limits: .init(window: 60, perClient: 100, perAddress: 3))
        for index in 0..<3 { throttle.recordFailure(clientID: "guess\(index)", address: "10.0.0.9", now: start) }
        XCTAssertThrowsError(try throttle.check(clientID: "fresh", address: "10.0.0.9", now: start))
        XCTAssertNoThrow(try throttle.check(clientID: "fresh", address: "10.0.0.8", now: start))
    }

    func testMemoryStaysBoundedUnderAFloodOfDistinctKeys() {
        let throttle = AuthFailureThrottle(limits: .init(window: 60, perClient: 1, perAddress: 1))
        for index in 0..<120_000 { throttle.recordFailure(clientID: "c\(index)", address: nil, now: start) }
        // No crash and still functional.
        throttle.recordFailure(clientID: "last", address: nil, now: start)
        XCTAssertThrowsError(try throttle.check(clientID: "last", address: nil, now: start))
    }
}
