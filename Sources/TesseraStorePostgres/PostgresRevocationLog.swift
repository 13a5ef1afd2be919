import Foundation
import Logging
import PostgresNIO
import Synchronization
import TesseraCore
import TesseraStore

/// The revocation log in the `revocation_log` table, shared by every instance on the database.
struct PostgresRevocationLog: RevocationLog {
    let store: PostgresStore

    func entries(after seq: Int64, limit: Int) async throws -> [RevocationEntry] {
        guard limit > 0 else { return [] }
        return try await store.statement(
            "revocation.entries",
            SQL(
                "SELECT seq, kind, id, tenant_id, at, expires_at FROM revocation_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                [.integer(seq), .integer(Int64(limit))])
        ) { row in
            guard let kind = RevocationEntry.Kind(rawValue: try row.text(1)), let tenantID = TenantID(try row.text(3)) else {
                throw StoreError.unavailable("a stored revocation cannot be read")
            }
            return RevocationEntry(
                seq: try row.int64(0), kind: kind, id: try row.text(2), tenantID: tenantID, at: try row.date(4),
                expiresAt: try row.optionalDate(5))
        }
    }

    func purgeExpired(before date: Date) async throws -> Int {
        try await store.statement(
            "revocation.purge",
            SQL(
                """
                WITH gone AS (DELETE FROM revocation_log WHERE expires_at IS NOT NULL AND expires_at < $1 RETURNING 1)
                SELECT count(*) FROM gone
                """,
                [.date(date)])
        ) { Int(try $0.int64(0)) }.first ?? 0
    }
}

extension PostgresTransaction {
    /// What one revocation appends to the log.
    enum Revoked {
        /// Tokens (and refresh families) with their expiry, in the order to log them.
        case tokens([(jti: String, expiresAt: Date)])
        case client(String)
    }

    static let notificationChannel = "tessera_revocations"

    /// Appends `revoked` to the revocation log and announces it (`pg_notify`, delivered when the
    /// transaction commits, dropped if it rolls back), in this transaction.
    ///
    /// A sequence hands out numbers when rows are inserted, not when they commit: two
    /// transactions could commit in the opposite order of their `seq`s, and a reader that had
    /// already moved past the higher one would never see the lower. So appends first take a lock
    /// on the table that conflicts with itself (not with readers) and is held until commit: `seq`
    /// order is then commit order. Callers lock their rows before and the audit head after this,
    /// always in that order, so the lock adds no deadlock.
    func appendRevocations(_ revoked: Revoked, tenant: TenantID, at date: Date) async throws {
        let rowsSQL: String
        var values: [SQLValue] = [.text(tenant.rawValue), .date(date)]
        switch revoked {
        case .tokens(let tokens):
            guard !tokens.isEmpty else { return }
            rowsSQL = """
                SELECT 'token', entry.id, $1, $2, entry.expires_at
                FROM unnest($3::text[], $4::bigint[]) WITH ORDINALITY AS entry (id, expires_at, position)
                ORDER BY entry.position
                """
            values += [.texts(tokens.map(\.jti)), .integers(tokens.map(\.expiresAt.unixMilliseconds))]
        case .client(let clientID):
            rowsSQL = "SELECT 'client', $3, $1, $2, NULL::bigint"
            values.append(.text(clientID))
        }
        try await rows(SQL("LOCK TABLE revocation_log IN SHARE ROW EXCLUSIVE MODE"))
        try await rows(
            SQL(
                """
                WITH appended AS (
                    INSERT INTO revocation_log (kind, id, tenant_id, at, expires_at) \(rowsSQL) RETURNING seq
                )
                SELECT pg_notify('\(Self.notificationChannel)', max(seq)::text) FROM appended
                """,
                values))
    }
}

/// `LISTEN tessera_revocations` on a connection of its own (a listening connection cannot go
/// back to the pool), closed when the listener returns or the store closes.
struct PostgresRevocationListener: RevocationNotifications {
    let store: PostgresStore

    func listen(_ onSignal: @escaping @Sendable (RevocationSignal) async -> Void) async throws {
        let connection = try await store.openListenerConnection()
        do {
            try await connection.listen(on: PostgresTransaction.notificationChannel) { notifications in
                await onSignal(.listening)
                for try await notification in notifications {
                    await onSignal(.committed(seq: Int64(notification.payload)))
                }
            }
        } catch {
            await store.closeListenerConnection(connection)
            if PostgresErrors.isCancellation(error) || Task.isCancelled { return }
            throw PostgresErrors.storeError(error)
        }
        await store.closeListenerConnection(connection)
    }
}
