import Foundation
import TesseraCore
import TesseraStore

struct PostgresTokenStore: TokenStore {
    let store: PostgresStore

    private static let columns = "jti, tenant_id, client_id, subject, scopes, issued_at, expires_at, parent_jti"
    static let insert = "INSERT INTO issued_tokens (\(columns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"

    /// Refuses (`.conflict`) a token exchanged from a parent that is already revoked. The parent's
    /// row is read `FOR SHARE`: a revocation under way holds it and this waits for its outcome; a
    /// revocation that starts later waits for this insert to commit, then reaches the new child.
    func recordIssued(_ token: IssuedToken, audit: AuditEvent) async throws {
        let values = try Self.insertValues(token)
        let body = AuditChain.encode(audit)
        try await store.write("token.record") { transaction in
            try await Self.refuseRevokedParent(token.parentJTI, transaction)
            try await transaction.rows(SQL(Self.insert, values))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    func recordIssued(_ token: IssuedToken, audit: AuditEvent, consuming oneTime: OneTimeValue, now: Date) async throws {
        let values = try Self.insertValues(token)
        let body = AuditChain.encode(audit)
        try await store.write("token.record") { transaction in
            let won = try await transaction.rows(PostgresReplayStore.consumeSQL(oneTime, now: now)) { _ in true }
            guard won.count == 1 else { throw StoreError.alreadyExists }
            try await Self.refuseRevokedParent(token.parentJTI, transaction)
            try await transaction.rows(SQL(Self.insert, values))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    func get(jti: String) async throws -> IssuedToken? {
        try await store.statement("token.get", SQL("SELECT \(Self.columns) FROM issued_tokens WHERE jti = $1", [.text(jti)])) {
            row in
            guard let tenantID = TenantID(try row.text(1)) else { throw StoreError.unavailable("a stored token cannot be read") }
            return IssuedToken(
                jti: try row.text(0), tenantID: tenantID, clientID: try row.text(2), subject: try row.text(3),
                scopes: try row.text(4).split(separator: " ").map(String.init), issuedAt: try row.date(5),
                expiresAt: try row.date(6), parentJTI: try row.optionalText(7))
        }.first
    }

    /// Revokes the token and, through `parent_jti`, every descendant of the same tenant that is
    /// not revoked yet. Writes the audit record only when something was revoked: `.unknown` and
    /// `.alreadyRevoked` change nothing, and the log holds no record of what did not happen.
    func revoke(jti: String, tenant: TenantID, at date: Date, audit: AuditEvent) async throws -> RevocationOutcome {
        let body = AuditChain.encode(audit)
        return try await store.write("token.revoke") { transaction -> RevocationOutcome in
            // Locked, so two revocations of one token take turns and the second sees the first's.
            let found = try await transaction.rows(
                SQL("SELECT tenant_id, revoked_at IS NOT NULL FROM issued_tokens WHERE jti = $1 FOR UPDATE", [.text(jti)])
            ) { row in (tenant: try row.text(0), revoked: try row.bool(1)) }
            guard let found = found.first, found.tenant == tenant.rawValue else { return .unknown }
            if found.revoked { return .alreadyRevoked }
            let revoked = try await Self.revokeLineage(from: jti, tenant: tenant, at: date, transaction)
            _ = try await transaction.appendAudit(body: body)
            return .revoked(descendants: revoked.map(\.jti).filter { $0 != jti })
        }
    }

    func isRevoked(jti: String) async throws -> Bool {
        try await store.statement(
            "token.is_revoked", SQL("SELECT revoked_at IS NOT NULL FROM issued_tokens WHERE jti = $1", [.text(jti)])
        ) { try $0.bool(0) }.first ?? false
    }

    func purgeExpired(before date: Date) async throws -> Int {
        try await store.statement(
            "token.purge",
            SQL(
                "WITH gone AS (DELETE FROM issued_tokens WHERE expires_at < $1 RETURNING 1) SELECT count(*) FROM gone",
                [.date(date)])
        ) { Int(try $0.int64(0)) }.first ?? 0
    }
}

// Shared with `PostgresRefreshTokenStore`: a refresh family is a node of the same lineage, and the
// tokens it mints are rows of the same table.
extension PostgresTokenStore {
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

    /// Throws `.conflict` when `parent` is a revoked token; holds a share lock on the parent until
    /// the transaction ends, so it cannot be revoked before the child is committed and visible.
    static func refuseRevokedParent(_ parent: String?, _ transaction: PostgresTransaction) async throws {
        guard let parent else { return }
        let revoked = try await transaction.rows(
            SQL("SELECT revoked_at IS NOT NULL FROM issued_tokens WHERE jti = $1 FOR SHARE", [.text(parent)])
        ) { try $0.bool(0) }
        if revoked.first == true { throw StoreError.conflict("the parent token is revoked") }
    }

    /// Revokes `jti` and, through `parent_jti`, every descendant of `tenant` not revoked yet, and
    /// appends each to the revocation log. Returns every jti this call revoked (`jti` itself
    /// included unless it was revoked already) with its expiry, ordered by jti. The caller checks
    /// that `jti` belongs to `tenant`, and appends its audit record after this (lock order: rows,
    /// then the revocation log, then the audit head).
    ///
    /// The recursive update runs until it finds nothing more to revoke. One pass is not enough
    /// under concurrency: its snapshot is taken when it starts, and a child inserted by a
    /// transaction that held its parent's share lock commits only while this pass waits to update
    /// that parent. The next pass, with a fresh snapshot, reaches it; once a node is revoked here,
    /// no new child can be committed under it (`refuseRevokedParent` waits, then refuses).
    static func revokeLineage(
        from jti: String, tenant: TenantID, at date: Date, _ transaction: PostgresTransaction
    ) async throws -> [(jti: String, expiresAt: Date)] {
        var revoked: [(jti: String, expiresAt: Date)] = []
        while true {
            let pass = try await transaction.rows(
                SQL(
                    """
                    WITH RECURSIVE lineage (jti) AS (
                        SELECT $1::text COLLATE "C"
                        UNION
                        SELECT child.jti FROM issued_tokens AS child JOIN lineage ON child.parent_jti = lineage.jti
                        WHERE child.tenant_id = $2
                    )
                    UPDATE issued_tokens SET revoked_at = $3
                    WHERE jti IN (SELECT jti FROM lineage) AND revoked_at IS NULL
                    RETURNING jti, expires_at
                    """,
                    [.text(jti), .text(tenant.rawValue), .date(date)])
            ) { (jti: try $0.text(0), expiresAt: try $0.date(1)) }
            if pass.isEmpty { break }
            revoked += pass
        }
        revoked.sort { $0.jti < $1.jti }
        try await transaction.appendRevocations(.tokens(revoked), tenant: tenant, at: date)
        return revoked
    }
}
