import Foundation
import TesseraCore
import TesseraStore

/// Users provisioned just in time, one per (tenant, subject).
struct PostgresUserStore: UserStore {
    let store: PostgresStore

    private static let columns = "id, tenant_id, subject, identity, disabled_at, created_at, last_sign_in_at"
    private static let lockBySubject = "SELECT \(columns) FROM users WHERE tenant_id = $1 AND subject = $2 FOR UPDATE"
    private static let insert = """
        INSERT INTO users (id, tenant_id, subject, identity, created_at, last_sign_in_at)
        VALUES ($1, $2, $3, $4, $5, $5)
        ON CONFLICT (tenant_id, subject) DO NOTHING
        RETURNING 1
        """

    /// A returning user is read locked, so two sign-ins of one person (through any instance) take
    /// turns. Two first sign-ins cannot both insert: the second insert waits for the first and,
    /// once that committed, does nothing (`ON CONFLICT DO NOTHING` rather than failing the unique
    /// (tenant, subject)); the second sign-in then reads the new user locked and updates it.
    func upsert(_ identity: NormalizedIdentity, at date: Date, audit: AuditEvent) async throws -> User {
        let text = try CanonicalJSON.encode(identity, "the identity")
        let body = AuditChain.encode(audit)
        let key: [SQLValue] = [.text(identity.tenantID.rawValue), .text(identity.subject)]
        return try await store.write("user.upsert") { transaction -> User in
            func signIn(_ existing: User) async throws -> User {
                // The caller refuses the sign-in; nothing of it is recorded here.
                if existing.isDisabled { return existing }
                try await transaction.rows(
                    SQL(
                        "UPDATE users SET identity = $2, last_sign_in_at = $3 WHERE id = $1",
                        [.text(existing.id), .text(text), .date(date)]))
                _ = try await transaction.appendAudit(body: body)
                return User(id: existing.id, identity: identity, disabledAt: nil, createdAt: existing.createdAt, lastSignInAt: date)
            }
            if let existing = try await transaction.rows(SQL(Self.lockBySubject, key), Self.user).first {
                return try await signIn(existing)
            }
            let id = "usr_" + Secrets.base64URL(Secrets.randomBytes(12))
            // A missing tenant fails the foreign key: `.notFound`.
            let inserted = try await transaction.rows(
                SQL(Self.insert, [.text(id), .text(identity.tenantID.rawValue), .text(identity.subject), .text(text), .date(date)]))
            if !inserted.isEmpty {
                _ = try await transaction.appendAudit(body: body)
                return User(id: id, identity: identity, disabledAt: nil, createdAt: date, lastSignInAt: date)
            }
            // Another first sign-in of this person inserted the user after the read above and has
            // committed; this statement's snapshot sees it.
            guard let existing = try await transaction.rows(SQL(Self.lockBySubject, key), Self.user).first else {
                throw StoreError.conflict("the user was neither found nor inserted")
            }
            return try await signIn(existing)
        }
    }

    func get(tenant: TenantID, subject: String) async throws -> User? {
        try await store.statement(
            "user.get",
            SQL("SELECT \(Self.columns) FROM users WHERE tenant_id = $1 AND subject = $2", [.text(tenant.rawValue), .text(subject)]),
            Self.user
        ).first
    }

    /// Also deletes the user's sessions in the same commit. The conditional update locks the row,
    /// so of two concurrent disables one changes it and audits; the other finds it disabled and
    /// writes nothing. `PostgresSessionStore.touch` refuses the sessions of a disabled user anyway,
    /// which covers one created while (or after) the user was disabled.
    func disable(tenant: TenantID, subject: String, at date: Date, audit: AuditEvent) async throws {
        let body = AuditChain.encode(audit)
        try await store.write("user.disable") { transaction in
            let disabled = try await transaction.rows(
                SQL(
                    "UPDATE users SET disabled_at = $3 WHERE tenant_id = $1 AND subject = $2 AND disabled_at IS NULL RETURNING id",
                    [.text(tenant.rawValue), .text(subject), .date(date)])
            ) { try $0.text(0) }
            if let id = disabled.first {
                try await transaction.rows(SQL("DELETE FROM sessions WHERE user_id = $1", [.text(id)]))
                _ = try await transaction.appendAudit(body: body)
                return
            }
            let exists = try await transaction.rows(
                SQL("SELECT 1 FROM users WHERE tenant_id = $1 AND subject = $2", [.text(tenant.rawValue), .text(subject)]))
            // Already disabled: the first date stands and, since nothing changed, nothing is audited.
            guard !exists.isEmpty else { throw StoreError.notFound }
        }
    }

    /// The identity must name the row's own tenant and subject: a row that says otherwise is not
    /// trusted.
    private static func user(_ row: Row) throws -> User {
        guard let identity = CanonicalJSON.decode(NormalizedIdentity.self, from: try row.text(3)),
            identity.tenantID.rawValue == (try row.text(1)), identity.subject == (try row.text(2))
        else { throw StoreError.unavailable("a stored user cannot be read") }
        return User(
            id: try row.text(0), identity: identity, disabledAt: try row.optionalDate(4), createdAt: try row.date(5),
            lastSignInAt: try row.date(6))
    }
}
