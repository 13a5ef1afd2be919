import Foundation
import TesseraJOSE
import XCTest

final class DPoPNonceSourceTests: XCTestCase {
    private let key = [UInt8](repeating: 0x42, count: 32)
    /// The start of a rotation period of 60 s.
    private let periodStart = Date(timeIntervalSince1970: 1_700_000_040)

    private var source: DPoPNonceSource { DPoPNonceSource(key: key, lifetime: 300, rotationPeriod: 60) }

    func testCurrentNonceIsAccepted() {
        let nonce = source.current(now: periodStart.addingTimeInterval(10))
        XCTAssertTrue(source.isAcceptable(nonce, now: periodStart.addingTimeInterval(10)))
    }

    func testNonceIsAcceptedForItsLifetimeAfterItWasLastHandedOut() {
        let nonce = source.current(now: periodStart)
        XCTAssertEqual(source.current(now: periodStart.addingTimeInterval(59.9)), nonce)
        // Last handed out at the end of its period, so valid until that plus the lifetime.
        XCTAssertTrue(source.isAcceptable(nonce, now: periodStart.addingTimeInterval(60 + 299)))
    }

    func testOldNonceIsRefusedAfterItsLifetime() {
        let nonce = source.current(now: periodStart)
        XCTAssertFalse(source.isAcceptable(nonce, now: periodStart.addingTimeInterval(60 + 300)))
        XCTAssertFalse(source.isAcceptable(nonce, now: periodStart.addingTimeInterval(86_400)))
    }

    func testRotatesAfterEachPeriod() {
        let first = source.current(now: periodStart)
        let second = source.current(now: periodStart.addingTimeInterval(60))
        let third = source.current(now: periodStart.addingTimeInterval(120))
        XCTAssertEqual(Set([first, second, third]).count, 3)
        // A client holding the previous nonce is not made to retry at the rotation.
        XCTAssertTrue(source.isAcceptable(first, now: periodStart.addingTimeInterval(61)))
    }

    func testInstancesSharingTheKeyAgree() {
        let other = DPoPNonceSource(key: key, lifetime: 300, rotationPeriod: 60)
        let now = periodStart.addingTimeInterval(30)
        XCTAssertEqual(source.current(now: now), other.current(now: now))
        XCTAssertTrue(other.isAcceptable(source.current(now: now), now: now))
    }

    func testNonceFromAnotherKeyIsRefused() {
        let foreign = DPoPNonceSource(key: [UInt8](repeating: 0x43, count: 32)).current(now: periodStart)
        XCTAssertFalse(source.isAcceptable(foreign, now: periodStart))
    }

    func testNonceFromAnInstanceSlightlyAheadIsAcceptedButNotFromFarAhead() {
        let ahead = source.current(now: periodStart.addingTimeInterval(DPoPNonceSource.allowedFutureSkew))
        XCTAssertTrue(source.isAcceptable(ahead, now: periodStart))
        let farAhead = source.current(now: periodStart.addingTimeInterval(DPoPNonceSource.allowedFutureSkew + 60))
        XCTAssertFalse(source.isAcceptable(farAhead, now: periodStart))
    }

    func testForgedNoncesAreRefused() throws {
        let nonce = source.current(now: periodStart)
        var bytes = try XCTUnwrap(Base64URL.decode(nonce))
        XCTAssertEqual(bytes.count, 41)

        var flippedMAC = bytes
        flippedMAC[40] ^= 0x01
        var movedForward = bytes  // a later period start with the old MAC
        movedForward[8] &+= 60
        var otherVersion = bytes
        otherVersion[0] = 2
        bytes.append(0)
        let longer = Base64URL.encode(bytes)

        let forged = [
            "", "x", nonce + "A", String(nonce.dropLast()), nonce + "=", nonce.uppercased(), longer,
            Base64URL.encode(flippedMAC), Base64URL.encode(movedForward), Base64URL.encode(otherVersion),
            String(repeating: "A", count: nonce.count),
        ]
        for candidate in forged {
            XCTAssertFalse(source.isAcceptable(candidate, now: periodStart), candidate)
        }
    }

    func testDefaultsAreFiveMinutesAndOneMinute() {
        let source = DPoPNonceSource(key: key)
        XCTAssertEqual(source.lifetime, 300)
        XCTAssertEqual(source.rotationPeriod, 60)
    }
}
