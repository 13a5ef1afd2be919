import Foundation
import TesseraCore
import TesseraStore

/// Refresh-token families (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).
///
/// A family is also a row of `issued_tokens` (jti = family id, parent = the token it was exchanged
/// from), and its access tokens are that row's children: revoking the parent, or the family after
/// a reuse, revokes everything through the one lineage query `SQLiteTokenStore` uses.
struct SQLiteRefreshTokenStore: RefreshTokenStore {
    let store: SQLiteStore

    private static let familyColumns = [
        "family_id", "tenant_id", "client_id", "subject", "subject_type", "scopes", "audience", "act_claim", "jkt",
        "policy_facts", "parent_jti", "issued_at", "expires_at",
    ]
    private static let insertFamily = """
        INSERT INTO refresh_families (\(familyColumns.joined(separator: ", ")))
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
        """
    private static let insertToken = "INSERT INTO refresh_tokens (hash, family_id, issued_at) VALUES (?1, ?2, ?3)"
    /// The live family of a token by its hash, whether the token was used, and whether the family
    /// is revoked. A family whose lineage row is gone counts as revoked: it can no longer be cut
    /// off through its parent, so it is not trusted either.
    private static let selectByHash = """
        SELECT \(familyColumns.map { "family.\($0)" }.joined(separator: ", ")),
            refresh.used_at IS NOT NULL, node.jti IS NULL OR node.revoked_at IS NOT NULL
        FROM refresh_tokens AS refresh
        JOIN refresh_families AS family ON family.family_id = refresh.family_id
        LEFT JOIN issued_tokens AS node ON node.jti = family.family_id
        WHERE refresh.hash = ?1 AND family.expires_at > ?2
        """

    /// Refuses (`.conflict`) a family whose parent is already revoked, and a token or refresh
    /// token that does not belong to the family.
    func recordIssued(_ token: IssuedToken, family: RefreshFamily, refresh: RefreshTokenRecord, audit: AuditEvent) async throws {
        try RefreshInvariants.requireBelongs(token, refresh, to: family.familyID, tenant: family.tenantID)
        let node = IssuedToken(
            jti: family.familyID, tenantID: family.tenantID, clientID: family.clientID, subject: family.subject,
            scopes: family.scopes.strings, issuedAt: family.issuedAt, expiresAt: family.expiresAt, parentJTI: family.parentJTI)
        let nodeValues = try SQLiteTokenStore.insertValues(node)
        let tokenValues = try SQLiteTokenStore.insertValues(token)
        let familyValues = try Self.values(family)
        let refreshValues = Self.values(refresh)
        let body = AuditChain.encode(audit)
        try await store.write("refresh.record") { transaction in
            let connection = transaction.connection
            try SQLiteTokenStore.refuseRevokedParent(family.parentJTI, connection)
            try connection.run(SQLiteTokenStore.insert, nodeValues)
            try connection.run(Self.insertFamily, familyValues)
            try connection.run(Self.insertToken, refreshValues)
            try connection.run(SQLiteTokenStore.insert, tokenValues)
            _ = try transaction.appendAudit(body: body)
        }
    }

    func lookup(hash: [UInt8], now: Date) async throws -> RefreshLookup? {
        try store.read { connection in
            try connection.queryOne(Self.selectByHash, [.blob(hash), .date(now)], Self.lookup)
        }
    }

    /// One unit of the single writer, so of two rotations of the same token the first marks it
    /// used and the second finds it used: one `.rotated`, one `.reused`, and the family revoked.
    /// That a legitimate client racing itself loses its family is by design (RFC 9700 §4.14.2):
    /// the store cannot tell it from an attacker racing the client.
    func rotate(
        presented hash: [UInt8], next: RefreshTokenRecord, token: IssuedToken, at date: Date, audit: AuditEvent,
        reuseAudit: AuditEvent
    ) async throws -> RefreshRotation {
        let tokenValues = try SQLiteTokenStore.insertValues(token)
        let nextValues = Self.values(next)
        let body = AuditChain.encode(audit)
        let reuseBody = AuditChain.encode(reuseAudit)
        return try await store.write("refresh.rotate") { transaction -> RefreshRotation in
            let connection = transaction.connection
            guard let found = try connection.queryOne(Self.selectByHash, [.blob(hash), .date(date)], Self.lookup) else {
                return .inactive
            }
            let family = found.family
            if found.used {
                let revoked = try SQLiteTokenStore.revokeLineage(from: family.familyID, tenant: family.tenantID, at: date, connection)
                _ = try transaction.appendAudit(body: reuseBody)
                return .reused(revoked: revoked.map(\.jti))
            }
            if found.familyRevoked { return .inactive }
            try RefreshInvariants.requireBelongs(token, next, to: family.familyID, tenant: family.tenantID)
            let consumed = try connection.run(
                "UPDATE refresh_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL", [.blob(hash), .date(date)])
            guard consumed == 1 else { throw StoreError.conflict("the refresh token was consumed concurrently") }
            try connection.run(Self.insertToken, nextValues)
            try connection.run(SQLiteTokenStore.insert, tokenValues)
            _ = try transaction.appendAudit(body: body)
            return .rotated
        }
    }

    /// Deletes the expired families and their refresh tokens. Their lineage rows in
    /// `issued_tokens` expire with them and go with `SQLiteTokenStore.purgeExpired`.
    func purgeExpired(before date: Date) async throws -> Int {
        try await store.write("refresh.purge") { transaction in
            try transaction.connection.run(
                """
                DELETE FROM refresh_tokens
                WHERE family_id IN (SELECT family_id FROM refresh_families WHERE expires_at < ?1)
                """,
                [.date(date)])
            return try transaction.connection.run("DELETE FROM refresh_families WHERE expires_at < ?1", [.date(date)])
        }
    }

    private static func values(_ family: RefreshFamily) throws -> [SQLValue] {
        let audience = String(decoding: try JSONEncoder().encode(family.audience), as: UTF8.self)
        return [
            .text(family.familyID), .text(family.tenantID.rawValue), .text(family.clientID), .text(family.subject),
            .text(family.subjectType), .text(family.scopes.description), .text(audience), .text(family.actClaim),
            .text(family.jkt), .text(family.policyFacts), .text(family.parentJTI), .date(family.issuedAt), .date(family.expiresAt),
        ]
    }

    private static func values(_ refresh: RefreshTokenRecord) -> [SQLValue] {
        [.blob(refresh.hash), .text(refresh.familyID), .date(refresh.issuedAt)]
    }

    private static func lookup(_ row: SQLiteRow) throws -> RefreshLookup {
        guard let tenantID = TenantID(row.text(1)),
            let scopes = ScopeSet(storedText: row.text(5)),
            let audience = try? JSONDecoder().decode([String].self, from: Data(row.text(6).utf8))
        else { throw StoreError.unavailable("a stored refresh family cannot be read") }
        let family = RefreshFamily(
            familyID: row.text(0), tenantID: tenantID, clientID: row.text(2), subject: row.text(3), subjectType: row.text(4),
            scopes: scopes, audience: audience, actClaim: row.optionalText(7), jkt: row.optionalText(8),
            policyFacts: row.text(9), parentJTI: row.optionalText(10), issuedAt: row.date(11), expiresAt: row.date(12))
        return RefreshLookup(family: family, used: row.bool(13), familyRevoked: row.bool(14))
    }
}
