import Foundation
import TesseraCore
import TesseraStore

/// The revocation log in the `revocation_log` table. Entries are appended by the writer, inside
/// the unit that makes the change, so they commit (or roll back) with it; `seq` is assigned under
/// the database's write lock, which every process holds in turn, so seq order is commit order.
struct SQLiteRevocationLog: RevocationLog {
    let store: SQLiteStore

    private static let insert = "INSERT INTO revocation_log (kind, id, tenant_id, at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)"
    private static let select = """
        SELECT seq, kind, id, tenant_id, at, expires_at FROM revocation_log WHERE seq > ?1 ORDER BY seq LIMIT ?2
        """

    func entries(after seq: Int64, limit: Int) async throws -> [RevocationEntry] {
        guard limit > 0 else { return [] }
        return try store.read { connection in
            try connection.query(Self.select, [.integer(seq), .integer(Int64(limit))]) { row in
                guard let kind = RevocationEntry.Kind(rawValue: row.text(1)), let tenantID = TenantID(row.text(3)) else {
                    throw StoreError.unavailable("a stored revocation cannot be read")
                }
                return RevocationEntry(
                    seq: row.int64(0), kind: kind, id: row.text(2), tenantID: tenantID, at: row.date(4), expiresAt: row.optionalDate(5))
            }
        }
    }

    func purgeExpired(before date: Date) async throws -> Int {
        try await store.write("revocation.purge") { transaction in
            try transaction.connection.run(
                "DELETE FROM revocation_log WHERE expires_at IS NOT NULL AND expires_at < ?1", [.date(date)])
        }
    }

    /// Appends one entry per id, in the order given, in the caller's write unit.
    static func append(
        _ kind: RevocationEntry.Kind, _ ids: [(id: String, expiresAt: Date?)], tenant: TenantID, at date: Date,
        _ connection: SQLiteConnection
    ) throws {
        for entry in ids {
            try connection.run(
                insert, [.text(kind.rawValue), .text(entry.id), .text(tenant.rawValue), .date(date), .date(entry.expiresAt)])
        }
    }
}
