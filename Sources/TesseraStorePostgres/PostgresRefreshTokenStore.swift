import Foundation
import TesseraCore
import TesseraStore

/// Refresh-token families (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).
///
/// A family is also a row of `issued_tokens` (jti = family id, parent = the token it was exchanged
/// from), and its access tokens are that row's children: revoking the parent, or the family after
/// a reuse, revokes everything through the one lineage query `PostgresTokenStore` uses.
struct PostgresRefreshTokenStore: RefreshTokenStore {
    let store: PostgresStore

    private static let familyColumns = [
        "family_id", "tenant_id", "client_id", "subject", "subject_type", "scopes", "audience", "act_claim", "jkt",
        "policy_facts", "parent_jti", "issued_at", "expires_at",
    ]
    private static let insertFamily = """
        INSERT INTO refresh_families (\(familyColumns.joined(separator: ", ")))
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        """
    private static let insertToken = "INSERT INTO refresh_tokens (hash, family_id, issued_at) VALUES ($1, $2, $3)"
    /// The live family of a token by its hash, whether the token was used, and whether the family
    /// is revoked. A family whose lineage row is gone counts as revoked: it can no longer be cut
    /// off through its parent, so it is not trusted either.
    private static let selectByHash = """
        SELECT \(familyColumns.map { "family.\($0)" }.joined(separator: ", ")),
            refresh.used_at IS NOT NULL, node.jti IS NULL OR node.revoked_at IS NOT NULL
        FROM refresh_tokens AS refresh
        JOIN refresh_families AS family ON family.family_id = refresh.family_id
        LEFT JOIN issued_tokens AS node ON node.jti = family.family_id
        WHERE refresh.hash = $1 AND family.expires_at > $2
        """

    /// Refuses (`.conflict`) a family whose parent is already revoked, and a token or refresh
    /// token that does not belong to the family.
    func recordIssued(_ token: IssuedToken, family: RefreshFamily, refresh: RefreshTokenRecord, audit: AuditEvent) async throws {
        try RefreshInvariants.requireBelongs(token, refresh, to: family.familyID, tenant: family.tenantID)
        let node = IssuedToken(
            jti: family.familyID, tenantID: family.tenantID, clientID: family.clientID, subject: family.subject,
            scopes: family.scopes.strings, issuedAt: family.issuedAt, expiresAt: family.expiresAt, parentJTI: family.parentJTI)
        let nodeValues = try PostgresTokenStore.insertValues(node)
        let tokenValues = try PostgresTokenStore.insertValues(token)
        let familyValues = try Self.values(family)
        let refreshValues = Self.values(refresh)
        let body = AuditChain.encode(audit)
        try await store.write("refresh.record") { transaction in
            try await PostgresTokenStore.refuseRevokedParent(family.parentJTI, transaction)
            try await transaction.rows(SQL(PostgresTokenStore.insert, nodeValues))
            try await transaction.rows(SQL(Self.insertFamily, familyValues))
            try await transaction.rows(SQL(Self.insertToken, refreshValues))
            try await transaction.rows(SQL(PostgresTokenStore.insert, tokenValues))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    func lookup(hash: [UInt8], now: Date) async throws -> RefreshLookup? {
        try await store.statement("refresh.lookup", SQL(Self.selectByHash, [.bytes(hash), .date(now)]), Self.lookup).first
    }

    /// Every rotation, reuse and revocation of a family locks the family's lineage row first, so
    /// they take turns across instances: of two rotations of the same token the first marks it
    /// used and the second, reading after the first committed, finds it used: one `.rotated`, one
    /// `.reused`, and the family revoked. That a legitimate client racing itself loses its family
    /// is by design (RFC 9700 §4.14.2): the store cannot tell it from an attacker racing the client.
    func rotate(
        presented hash: [UInt8], next: RefreshTokenRecord, token: IssuedToken, at date: Date, audit: AuditEvent,
        reuseAudit: AuditEvent
    ) async throws -> RefreshRotation {
        let tokenValues = try PostgresTokenStore.insertValues(token)
        let nextValues = Self.values(next)
        let body = AuditChain.encode(audit)
        let reuseBody = AuditChain.encode(reuseAudit)
        return try await store.write("refresh.rotate") { transaction -> RefreshRotation in
            let families = try await transaction.rows(
                SQL("SELECT family_id FROM refresh_tokens WHERE hash = $1", [.bytes(hash)])
            ) { try $0.text(0) }
            guard let familyID = families.first else { return .inactive }
            try await transaction.rows(SQL("SELECT 1 FROM issued_tokens WHERE jti = $1 FOR UPDATE", [.text(familyID)]))
            // A new statement, so a new snapshot: it sees what the previous holder of the lock committed.
            let lookups = try await transaction.rows(SQL(Self.selectByHash, [.bytes(hash), .date(date)]), Self.lookup)
            guard let found = lookups.first else { return .inactive }
            let family = found.family
            if found.used {
                let revoked = try await PostgresTokenStore.revokeLineage(
                    from: family.familyID, tenant: family.tenantID, at: date, transaction)
                _ = try await transaction.appendAudit(body: reuseBody)
                return .reused(revoked: revoked.map(\.jti))
            }
            if found.familyRevoked { return .inactive }
            try RefreshInvariants.requireBelongs(token, next, to: family.familyID, tenant: family.tenantID)
            let consumed = try await transaction.rows(
                SQL(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL RETURNING 1",
                    [.bytes(hash), .date(date)]))
            guard consumed.count == 1 else { throw StoreError.conflict("the refresh token was consumed concurrently") }
            try await transaction.rows(SQL(Self.insertToken, nextValues))
            try await transaction.rows(SQL(PostgresTokenStore.insert, tokenValues))
            _ = try await transaction.appendAudit(body: body)
            return .rotated
        }
    }

    /// Deletes the expired families and their refresh tokens in one statement. Their lineage rows
    /// in `issued_tokens` expire with them and go with `PostgresTokenStore.purgeExpired`.
    func purgeExpired(before date: Date) async throws -> Int {
        try await store.statement(
            "refresh.purge",
            SQL(
                """
                WITH families AS (DELETE FROM refresh_families WHERE expires_at < $1 RETURNING family_id),
                    tokens AS (DELETE FROM refresh_tokens WHERE family_id IN (SELECT family_id FROM families))
                SELECT count(*) FROM families
                """,
                [.date(date)])
        ) { Int(try $0.int64(0)) }.first ?? 0
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
        [.bytes(refresh.hash), .text(refresh.familyID), .date(refresh.issuedAt)]
    }

    private static func lookup(_ row: Row) throws -> RefreshLookup {
        guard let tenantID = TenantID(try row.text(1)),
            let scopes = ScopeSet(storedText: try row.text(5)),
            let audience = try? JSONDecoder().decode([String].self, from: Data(try row.text(6).utf8))
        else { throw StoreError.unavailable("a stored refresh family cannot be read") }
        let family = RefreshFamily(
            familyID: try row.text(0), tenantID: tenantID, clientID: try row.text(2), subject: try row.text(3),
            subjectType: try row.text(4), scopes: scopes, audience: audience, actClaim: try row.optionalText(7),
            jkt: try row.optionalText(8), policyFacts: try row.text(9), parentJTI: try row.optionalText(10),
            issuedAt: try row.date(11), expiresAt: try row.date(12))
        return RefreshLookup(family: family, used: try row.bool(13), familyRevoked: try row.bool(14))
    }
}
