import Foundation
import TesseraStore

struct SQLiteReplayStore: ReplayStore {
    let store: SQLiteStore

    /// One statement, so two consumers of the same id cannot both win: the insert succeeds, or the
    /// conflict branch replaces an entry only when it has expired; `changes()` tells which.
    func consume(namespace: String, id: String, expiresAt: Date, now: Date) async throws -> Bool {
        try await store.write("replay.consume") { transaction in
            try Self.consume(OneTimeValue(namespace: namespace, id: id, expiresAt: expiresAt), now: now, transaction.connection)
        }
    }

    static let consumeSQL = """
        INSERT INTO replay (namespace, id, expires_at) VALUES (?1, ?2, ?3)
        ON CONFLICT (namespace, id) DO UPDATE SET expires_at = excluded.expires_at
        WHERE replay.expires_at <= ?4
        """

    /// Inside a write: true on first use.
    static func consume(_ value: OneTimeValue, now: Date, _ connection: SQLiteConnection) throws -> Bool {
        try connection.run(consumeSQL, [.text(value.namespace), .text(value.id), .date(value.expiresAt), .date(now)]) == 1
    }

    func purgeExpired(before date: Date) async throws -> Int {
        try await store.write("replay.purge") { transaction in
            try transaction.connection.run("DELETE FROM replay WHERE expires_at < ?1", [.date(date)])
        }
    }
}
