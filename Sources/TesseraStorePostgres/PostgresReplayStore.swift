import Foundation
import TesseraStore

struct PostgresReplayStore: ReplayStore {
    let store: PostgresStore

    /// One statement, so two consumers of the same id cannot both win: the insert succeeds, or the
    /// conflict branch (which locks the row and re-reads it) replaces the entry only when it has
    /// expired; a returned row tells which.
    func consume(namespace: String, id: String, expiresAt: Date, now: Date) async throws -> Bool {
        let won = try await store.statement(
            "replay.consume", Self.consumeSQL(OneTimeValue(namespace: namespace, id: id, expiresAt: expiresAt), now: now)
        ) { _ in true }
        return won.count == 1
    }

    /// One row when `value` is used for the first time (or its earlier use expired), none otherwise.
    static func consumeSQL(_ value: OneTimeValue, now: Date) -> SQL {
        SQL(
            """
            INSERT INTO replay (namespace, id, expires_at) VALUES ($1, $2, $3)
            ON CONFLICT (namespace, id) DO UPDATE SET expires_at = excluded.expires_at
            WHERE replay.expires_at <= $4
            RETURNING 1
            """,
            [.text(value.namespace), .text(value.id), .date(value.expiresAt), .date(now)])
    }

    func purgeExpired(before date: Date) async throws -> Int {
        try await store.statement(
            "replay.purge",
            SQL(
                "WITH gone AS (DELETE FROM replay WHERE expires_at < $1 RETURNING 1) SELECT count(*) FROM gone",
                [.date(date)])
        ) { Int(try $0.int64(0)) }.first ?? 0
    }
}
