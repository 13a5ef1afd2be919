import Foundation
import TesseraCore
import TesseraStore

struct SQLiteTokenStore: TokenStore {
    let store: SQLiteStore

    private static let columns = "jti, tenant_id, client_id, subject, scopes, issued_at, expires_at, parent_jti"
    // Built once: the statement cache is keyed by the SQL text, and these run on every grant.
    static let insert = "INSERT INTO issued_tokens (\(columns)) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    private static let select = "SELECT \(columns) FROM issued_tokens WHERE jti = ?1"
    static let selectRevoked = "SELECT revoked_at IS NOT NULL FROM issued_tokens WHERE jti = ?1"

    /// Refuses (`.conflict`) a token exchanged from a parent that is already revoked: the check
    /// runs in the writer, after any revocation that committed before, so a grant racing a
    /// revocation cannot leave a live child of a revoked parent.
    func recordIssued(_ token: IssuedToken, audit: AuditEvent) async throws {
        let values = try Self.insertValues(token)
        let body = AuditChain.encode(audit)
        try await store.write("token.record") { transaction in
            try Self.refuseRevokedParent(token.parentJTI, transaction.connection)
            try transaction.connection.run(Self.insert, values)
            _ = try transaction.appendAudit(body: body)
        }
    }

    func recordIssued(_ token: IssuedToken, audit: AuditEvent, consuming oneTime: OneTimeValue, now: Date) async throws {
        let values = try Self.insertValues(token)
        let body = AuditChain.encode(audit)
        try await store.write("token.record") { transaction in
            guard try SQLiteReplayStore.consume(oneTime, now: now, transaction.connection) else { throw StoreError.alreadyExists }
            try Self.refuseRevokedParent(token.parentJTI, transaction.connection)
            try transaction.connection.run(Self.insert, values)
            _ = try transaction.appendAudit(body: body)
        }
    }

    func get(jti: String) async throws -> IssuedToken? {
        try store.read { connection in
            try connection.queryOne(Self.select, [.text(jti)]) { row in
                guard let tenantID = TenantID(row.text(1)) else { throw StoreError.unavailable("a stored token cannot be read") }
                return IssuedToken(
                    jti: row.text(0), tenantID: tenantID, clientID: row.text(2), subject: row.text(3),
                    scopes: row.text(4).split(separator: " ").map(String.init), issuedAt: row.date(5), expiresAt: row.date(6),
                    parentJTI: row.optionalText(7))
            }
        }
    }

    /// Revokes the token and, through `parent_jti`, every descendant of the same tenant that is
    /// not revoked yet. Writes the audit record only when something was revoked: `.unknown` and
    /// `.alreadyRevoked` change nothing, and the log holds no record of what did not happen.
    func revoke(jti: String, tenant: TenantID, at date: Date, audit: AuditEvent) async throws -> RevocationOutcome {
        let body = AuditChain.encode(audit)
        return try await store.write("token.revoke") { transaction -> RevocationOutcome in
            let found = try transaction.connection.queryOne(
                "SELECT tenant_id, revoked_at IS NOT NULL FROM issued_tokens WHERE jti = ?1", [.text(jti)]
            ) { row in (tenant: row.text(0), revoked: row.bool(1)) }
            guard let found, found.tenant == tenant.rawValue else { return .unknown }
            if found.revoked { return .alreadyRevoked }
            let revoked = try Self.revokeLineage(from: jti, tenant: tenant, at: date, transaction.connection)
            _ = try transaction.appendAudit(body: body)
            return .revoked(descendants: revoked.map(\.jti).filter { $0 != jti })
        }
    }

    func isRevoked(jti: String) async throws -> Bool {
        try store.read { connection in
            try connection.queryOne(Self.selectRevoked, [.text(jti)]) { $0.bool(0) }
        } ?? false
    }

    func purgeExpired(before date: Date) async throws -> Int {
        try await store.write("token.purge") { transaction in
            try transaction.connection.run("DELETE FROM issued_tokens WHERE expires_at < ?1", [.date(date)])
        }
    }
}

// Shared with `SQLiteRefreshTokenStore`: a refresh family is a node of the same lineage, and the
// tokens it mints are rows of the same table.
extension SQLiteTokenStore {
    /// The bindings of `insert` for `token`.
    static func insertValues(_ token: IssuedToken) throws(StoreError) -> [SQLValue] {
        // Scope tokens never contain a space (RFC 6749 §3.3), which makes a space a safe separator.
        guard !token.scopes.contains(where: { $0.isEmpty || $0.contains(" ") }) else {
            throw StoreError.conflict("a scope token is empty or contains a space")
        }
        return [
            .text(token.jti), .text(token.tenantID.rawValue), .text(token.clientID), .text(token.subject),
            .text(token.scopes.joined(separator: " ")), .date(token.issuedAt), .date(token.expiresAt), .text(token.parentJTI),
        ]
    }

    /// Throws `.conflict` when `parent` is a revoked token. Run in the writer, before the insert.
    static func refuseRevokedParent(_ parent: String?, _ connection: SQLiteConnection) throws {
        guard let parent else { return }
        let parentRevoked = try connection.queryOne(selectRevoked, [.text(parent)]) { $0.bool(0) }
        if parentRevoked == true { throw StoreError.conflict("the parent token is revoked") }
    }

    /// Revokes `jti` and, through `parent_jti`, every descendant of `tenant` not revoked yet, and
    /// appends each to the revocation log. Returns every jti this call revoked (`jti` itself
    /// included unless it was revoked already) with its expiry, ordered by jti. The caller checks
    /// that `jti` belongs to `tenant`.
    static func revokeLineage(
        from jti: String, tenant: TenantID, at date: Date, _ connection: SQLiteConnection
    ) throws -> [(jti: String, expiresAt: Date)] {
        let revoked = try connection.query(
            """
            WITH RECURSIVE lineage (jti) AS (
                SELECT ?1
                UNION
                SELECT child.jti FROM issued_tokens AS child JOIN lineage ON child.parent_jti = lineage.jti
                WHERE child.tenant_id = ?2
            )
            UPDATE issued_tokens SET revoked_at = ?3
            WHERE jti IN (SELECT jti FROM lineage) AND revoked_at IS NULL
            RETURNING jti, expires_at
            """,
            [.text(jti), .text(tenant.rawValue), .date(date)]
        ) { (jti: $0.text(0), expiresAt: $0.date(1)) }.sorted { $0.jti < $1.jti }
        try SQLiteRevocationLog.append(.token, revoked.map { ($0.jti, $0.expiresAt) }, tenant: tenant, at: date, connection)
        return revoked
    }
}
