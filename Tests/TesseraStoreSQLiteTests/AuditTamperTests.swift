import Foundation
import TesseraCore
import TesseraStore
import XCTest

@testable import TesseraStoreSQLite

/// Someone with write access to the file changes the log behind the store's back (dropping the
/// append-only triggers first); `AuditChain.verify` must name the first record that no longer holds.
final class AuditTamperTests: XCTestCase {
    private var databases: TemporaryDatabases!
    private var path = ""
    private var store: SQLiteStore!

    override func setUp() async throws {
        databases = try TemporaryDatabases()
        path = databases.newPath()
        store = try await databases.open(path)
        for index in 1...5 {
            try await store.audit.append(
                AuditEvent(
                    ts: Date(timeIntervalSince1970: 1_767_225_600 + Double(index)), tenant: "acme", actor: .client("svc"),
                    clientID: "svc", action: "token.issued", outcome: .success, jti: "jti-\(index)"))
        }
        let finding = try await AuditChain.verify(store.audit)
        XCTAssertEqual(finding, .intact(count: 5))
    }

    override func tearDown() async throws {
        await store?.close()
        databases?.remove()
    }

    /// Raw SQL with the append-only triggers out of the way.
    private func tamper(_ body: (SQLiteConnection) throws -> Void) throws {
        try withRawConnection(path) { connection in
            try connection.execute(
                "DROP TRIGGER audit_is_append_only_on_update; DROP TRIGGER audit_is_append_only_on_delete;")
            try body(connection)
        }
    }

    private func body(_ connection: SQLiteConnection, _ seq: Int64) throws -> [UInt8] {
        try XCTUnwrap(try connection.queryOne("SELECT body FROM audit WHERE seq = ?1", [.integer(seq)]) { $0.blob(0) })
    }

    private func assertBroken(at expected: Int64, mentioning words: String, file: StaticString = #filePath, line: UInt = #line) async throws
    {
        let finding = try await AuditChain.verify(store.audit)
        guard case .broken(let seq, let reason) = finding else {
            return XCTFail("expected a broken chain, got \(finding)", file: file, line: line)
        }
        XCTAssertEqual(seq, expected, "\(reason)", file: file, line: line)
        XCTAssertTrue(reason.contains(words), "reason: \(reason)", file: file, line: line)
    }

    func testTheLogRefusesUpdateAndDeleteWhileTheTriggersStand() throws {
        try withRawConnection(path) { connection in
            XCTAssertThrowsError(try connection.run("UPDATE audit SET body = X'00' WHERE seq = 2"))
            XCTAssertThrowsError(try connection.run("DELETE FROM audit WHERE seq = 5"))
        }
    }

    func testChangedBodyByteIsDetectedAtThatRecord() async throws {
        try tamper { connection in
            var changed = try body(connection, 3)
            let index = try XCTUnwrap(changed.firstIndex(of: UInt8(ascii: "3")))
            changed[index] = UInt8(ascii: "4")
            try connection.run("UPDATE audit SET body = ?1 WHERE seq = 3", [.blob(changed)])
        }
        try await assertBroken(at: 3, mentioning: "changed")
    }

    func testDeletedMiddleRecordIsDetectedAtTheGap() async throws {
        try tamper { connection in try connection.run("DELETE FROM audit WHERE seq = 3") }
        try await assertBroken(at: 4, mentioning: "removed")
    }

    func testSwappedBodiesAreDetectedAtTheFirstOfThem() async throws {
        try tamper { connection in
            let second = try body(connection, 2)
            let fourth = try body(connection, 4)
            try connection.run("UPDATE audit SET body = ?1 WHERE seq = 2", [.blob(fourth)])
            try connection.run("UPDATE audit SET body = ?1 WHERE seq = 4", [.blob(second)])
        }
        try await assertBroken(at: 2, mentioning: "changed")
    }

    func testDeletedLastRecordIsDetectedByTheHead() async throws {
        try tamper { connection in try connection.run("DELETE FROM audit WHERE seq = 5") }
        try await assertBroken(at: 5, mentioning: "removed from the end")
    }

    /// A forger who recomputes one record's hash still breaks the link of the record after it.
    func testRehashedRecordBreaksTheNextLink() async throws {
        try tamper { connection in
            var changed = try body(connection, 2)
            let index = try XCTUnwrap(changed.firstIndex(of: UInt8(ascii: "2")))
            changed[index] = UInt8(ascii: "9")
            let previous = try XCTUnwrap(try connection.queryOne("SELECT prev_hash FROM audit WHERE seq = 2") { $0.text(0) })
            try connection.run(
                "UPDATE audit SET body = ?1, hash = ?2 WHERE seq = 2",
                [.blob(changed), .text(AuditChain.hash(prev: previous, body: changed))])
        }
        try await assertBroken(at: 3, mentioning: "prev_hash")
    }

    /// Appends after a truncation do not paper over it: they chain onto the remembered head.
    func testAppendAfterTruncationKeepsTheBreakVisible() async throws {
        try tamper { connection in try connection.run("DELETE FROM audit WHERE seq = 5") }
        let record = try await store.audit.append(
            AuditEvent(
                ts: Date(timeIntervalSince1970: 1_767_225_700), tenant: nil, actor: .system, action: "key.rotated", outcome: .success))
        XCTAssertEqual(record.seq, 6)
        try await assertBroken(at: 6, mentioning: "removed")
    }
}
