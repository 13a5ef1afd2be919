import Foundation
import TesseraCore
import TesseraStore

/// Human sessions by the SHA-256 of their cookie.
struct PostgresSessionStore: SessionStore {
    let store: PostgresStore

    private static let columns = "hash, tenant_id, user_id, identity, created_at, last_seen_at, expires_at"
    /// A session is live while it is neither past its absolute expiry ($2 is now) nor idle since
    /// the cutoff ($3), and its user exists in its tenant and is not disabled.
    private static let isLive = """
        hash = $1 AND expires_at > $2 AND last_seen_at > $3
            AND EXISTS (
                SELECT 1 FROM users
                WHERE users.id = sessions.user_id AND users.tenant_id = sessions.tenant_id AND users.disabled_at IS NULL
            )
        """
    private static let select = "SELECT 1 FROM sessions WHERE \(isLive)"
    private static let touch = "UPDATE sessions SET last_seen_at = $2 WHERE \(isLive) RETURNING \(columns)"
    /// A hundred years: longer than any idle timeout, short enough to keep the arithmetic in range.
    private static let longestIdleMilliseconds: Double = 100 * 365.25 * 86_400 * 1000

    func create(_ session: HumanSession, audit: AuditEvent) async throws {
        let identity = try CanonicalJSON.encode(session.identity, "the session's identity")
        let body = AuditChain.encode(audit)
        let values: [SQLValue] = [
            .bytes(session.hash), .text(session.tenantID.rawValue), .text(session.userID), .text(identity), .date(session.createdAt),
            .date(session.lastSeenAt), .date(session.expiresAt),
        ]
        try await store.write("session.create") { transaction in
            // A taken hash fails the primary key: `.alreadyExists`.
            try await transaction.rows(SQL("INSERT INTO sessions (\(Self.columns)) VALUES ($1, $2, $3, $4, $5, $6, $7)", values))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    /// Every request of a signed-in browser touches its session, and a made-up cookie is unknown:
    /// a read answers for an unknown hash, and for a dead session, so neither ever runs a write
    /// statement (not even an UPDATE that would change no row). A live one is checked again and
    /// updated by one statement, so a session deleted, expired or whose user was disabled in
    /// between is not revived.
    func touch(hash: [UInt8], now: Date, idleTimeout: TimeInterval) async throws -> HumanSession? {
        let values: [SQLValue] = [.bytes(hash), .date(now), .integer(now.unixMilliseconds - Self.milliseconds(idleTimeout))]
        let live = try await store.statement("session.touch", SQL(Self.select, values)) { _ in true }
        guard !live.isEmpty else { return nil }
        return try await store.statement("session.touch", SQL(Self.touch, values), Self.session).first
    }

    func delete(hash: [UInt8], audit: AuditEvent) async throws -> Bool {
        let body = AuditChain.encode(audit)
        return try await store.write("session.delete") { transaction in
            let deleted = try await transaction.rows(SQL("DELETE FROM sessions WHERE hash = $1 RETURNING 1", [.bytes(hash)]))
            // No session ended, so there is nothing to record.
            guard !deleted.isEmpty else { return false }
            _ = try await transaction.appendAudit(body: body)
            return true
        }
    }

    func purgeExpired(before date: Date) async throws -> Int {
        try await store.statement(
            "session.purge",
            SQL(
                "WITH gone AS (DELETE FROM sessions WHERE expires_at < $1 RETURNING 1) SELECT count(*) FROM gone",
                [.date(date)])
        ) { Int(try $0.int64(0)) }.first ?? 0
    }

    /// The idle timeout in milliseconds, clamped so that no value traps: NaN and anything not
    /// positive count as zero, which makes every session idle.
    private static func milliseconds(_ interval: TimeInterval) -> Int64 {
        guard interval > 0 else { return 0 }
        return Int64(min(interval * 1000, longestIdleMilliseconds).rounded())
    }

    private static func session(_ row: Row) throws -> HumanSession {
        guard let tenantID = TenantID(try row.text(1)),
            let identity = CanonicalJSON.decode(NormalizedIdentity.self, from: try row.text(3))
        else { throw StoreError.unavailable("a stored session cannot be read") }
        return HumanSession(
            hash: try row.bytes(0), tenantID: tenantID, userID: try row.text(2), identity: identity, createdAt: try row.date(4),
            lastSeenAt: try row.date(5), expiresAt: try row.date(6))
    }
}
