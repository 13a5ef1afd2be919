import Foundation
import TesseraCore
import TesseraJOSE
import TesseraOAuth
import TesseraTesting
import XCTest

final class KeyRingTests: XCTestCase {
    var folder: TemporaryFolder!
    let clock = FixedWallClock()

    override func setUpWithError() throws { folder = try TemporaryFolder() }
    override func tearDown() { folder.remove() }

    func directory(kek: KeyEncryptionKey? = nil) -> KeyDirectory {
        KeyDirectory(root: folder.url.appendingPathComponent("Keys"), kek: kek, retention: 960)
    }

    func testFirstRunCreatesAnActiveAndANextKeyWithPrivateFilesOnly() throws {
        let keys = directory()
        XCTAssertTrue(try keys.ensureInitialized(algorithm: .ES256, now: clock.now))
        XCTAssertFalse(try keys.ensureInitialized(algorithm: .ES256, now: clock.now), "second start keeps the keys")
        let stored = try keys.load()
        XCTAssertEqual(stored.map(\.state).sorted { $0.rawValue < $1.rawValue }, [.active, .next])
        let signing = folder.url.appendingPathComponent("Keys/signing")
        for name in try FileManager.default.contentsOfDirectory(atPath: signing.path) {
            let attributes = try FileManager.default.attributesOfItem(atPath: signing.appendingPathComponent(name).path)
            XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600, name)
        }
        let folderMode = try FileManager.default.attributesOfItem(atPath: signing.path)[.posixPermissions] as? NSNumber
        XCTAssertEqual(folderMode?.intValue, 0o700)
    }

    func testRotationActivatesThePublishedKeyAndRetiresTheOldOneUntilItsTokensExpire() throws {
        let keys = directory()
        try keys.ensureInitialized(algorithm: .ES256, now: clock.now)
        let ring = try KeyRing(directory: keys, clock: clock)
        let firstActive = ring.activeKey.kid
        let published = Set(ring.jwks.keys.compactMap(\.kid))

        let rotation = try keys.rotate(algorithm: .ES256, now: clock.now)
        XCTAssertTrue(try ring.reloadIfChanged())
        XCTAssertEqual(rotation.retired, firstActive)
        XCTAssertTrue(published.contains(rotation.activated), "the key that now signs was in JWKS before")
        XCTAssertEqual(ring.activeKey.kid, rotation.activated)
        XCTAssertEqual(Set(ring.jwks.keys.compactMap(\.kid)), published.union([rotation.published]))
        XCTAssertNotNil(ring.verificationKey(kid: firstActive))

        clock.advance(by: 961)
        XCTAssertNil(ring.verificationKey(kid: firstActive), "past its retention the retired key verifies nothing")
        XCTAssertFalse(ring.jwks.keys.contains { $0.kid == firstActive })
        let second = try keys.rotate(algorithm: .ES256, now: clock.now)
        XCTAssertEqual(second.deleted, [firstActive], "the next rotation deletes it")
        XCTAssertFalse(try ring.reloadIfChanged() == false)
    }

    func testUnchangedFolderIsNotReloaded() throws {
        let keys = directory()
        try keys.ensureInitialized(algorithm: .ES256, now: clock.now)
        let ring = try KeyRing(directory: keys, clock: clock)
        XCTAssertFalse(try ring.reloadIfChanged())
    }

    func testSealedKeysHoldNoClearPrivateKeyAndNeedTheRightKEK() throws {
        let kek = try XCTUnwrap(KeyEncryptionKey(secret: "correct horse battery staple 42"))
        let keys = directory(kek: kek)
        try keys.ensureInitialized(algorithm: .ES256, now: clock.now)
        let signing = folder.url.appendingPathComponent("Keys/signing")
        for name in try FileManager.default.contentsOfDirectory(atPath: signing.path) {
            let text = try String(contentsOf: signing.appendingPathComponent(name), encoding: .utf8)
            XCTAssertTrue(text.contains("sealed_private_jwk"))
            XCTAssertFalse(text.contains("\"private_jwk\""), "no clear private key")
            XCTAssertFalse(text.contains("\"d\""))
        }
        XCTAssertNoThrow(try KeyRing(directory: keys, clock: clock))
        let wrong = directory(kek: KeyEncryptionKey(secret: "another key-encryption key!!"))
        XCTAssertThrowsError(try KeyRing(directory: wrong, clock: clock)) { error in
            XCTAssertTrue("\(error)".contains("TESSERA_KEK"))
        }
        XCTAssertThrowsError(try KeyRing(directory: directory(kek: nil), clock: clock)) { error in
            XCTAssertTrue("\(error)".contains("TESSERA_KEK"))
        }
    }

    func testKeysWrittenBeforeAKEKWasSetAreSealedAtTheNextStart() throws {
        try directory().ensureInitialized(algorithm: .ES256, now: clock.now)
        let kek = try XCTUnwrap(KeyEncryptionKey(secret: "correct horse battery staple 42"))
        let sealed = directory(kek: kek)
        try sealed.ensureInitialized(algorithm: .ES256, now: clock.now)
        XCTAssertTrue(try sealed.load().allSatisfy(\.isSealed))
        XCTAssertNoThrow(try KeyRing(directory: sealed, clock: clock))
    }

    func testAShortKEKIsRefused() {
        XCTAssertNil(KeyEncryptionKey(secret: "short"))
    }

    func testADamagedKeyFileStopsTheLoadWithAClearError() throws {
        let keys = directory()
        try keys.ensureInitialized(algorithm: .ES256, now: clock.now)
        let signing = folder.url.appendingPathComponent("Keys/signing")
        let name = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: signing.path).first)
        try Data("{not json".utf8).write(to: signing.appendingPathComponent(name))
        XCTAssertThrowsError(try KeyRing(directory: keys, clock: clock)) { error in
            XCTAssertTrue("\(error)".contains("unreadable key file"))
        }
    }
}
