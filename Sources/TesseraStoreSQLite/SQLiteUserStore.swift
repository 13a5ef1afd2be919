import Foundation
import TesseraCore
import TesseraStore

/// Users provisioned just in time, one per (tenant, subject).
struct SQLiteUserStore: UserStore {
    let store: SQLiteStore

    private static let columns = "id, tenant_id, subject, identity, disabled_at, created_at, last_sign_in_at"
    private static let selectBySubject = "SELECT \(columns) FROM users WHERE tenant_id = ?1 AND subject = ?2"

    /// The user is looked up and written in one unit of the single writer, so two first sign-ins
    /// of one person cannot both insert (and the unique (tenant, subject) would refuse the second).
    func upsert(_ identity: NormalizedIdentity, at date: Date, audit: AuditEvent) async throws -> User {
        let text = try CanonicalJSON.encode(identity, "the identity")
        let body = AuditChain.encode(audit)
        let key: [SQLValue] = [.text(identity.tenantID.rawValue), .text(identity.subject)]
        return try await store.write("user.upsert") { transaction -> User in
            let connection = transaction.connection
            if let existing = try connection.queryOne(Self.selectBySubject, key, Self.user) {
                // The caller refuses the sign-in; nothing of it is recorded here.
                if existing.isDisabled { return existing }
                try connection.run(
                    "UPDATE users SET identity = ?2, last_sign_in_at = ?3 WHERE id = ?1",
                    [.text(existing.id), .text(text), .date(date)])
                _ = try transaction.appendAudit(body: body)
                return User(id: existing.id, identity: identity, disabledAt: nil, createdAt: existing.createdAt, lastSignInAt: date)
            }
            let id = "usr_" + Secrets.base64URL(Secrets.randomBytes(12))
            // A missing tenant fails the foreign key: `.notFound`.
            try connection.run(
                """
                INSERT INTO users (id, tenant_id, subject, identity, created_at, last_sign_in_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                """,
                [.text(id), .text(identity.tenantID.rawValue), .text(identity.subject), .text(text), .date(date)])
            _ = try transaction.appendAudit(body: body)
            return User(id: id, identity: identity, disabledAt: nil, createdAt: date, lastSignInAt: date)
        }
    }

    func get(tenant: TenantID, subject: String) async throws -> User? {
        try store.read { connection in
            try connection.queryOne(Self.selectBySubject, [.text(tenant.rawValue), .text(subject)], Self.user)
        }
    }

    /// Also deletes the user's sessions in the same commit. `SQLiteSessionStore.touch` refuses the
    /// sessions of a disabled user anyway, which covers one created while the user was disabled.
    func disable(tenant: TenantID, subject: String, at date: Date, audit: AuditEvent) async throws {
        let body = AuditChain.encode(audit)
        try await store.write("user.disable") { transaction in
            let connection = transaction.connection
            let found = try connection.queryOne(
                "SELECT id, disabled_at IS NOT NULL FROM users WHERE tenant_id = ?1 AND subject = ?2",
                [.text(tenant.rawValue), .text(subject)]
            ) { row in (id: row.text(0), disabled: row.bool(1)) }
            guard let found else { throw StoreError.notFound }
            // Already disabled: the first date stands and, since nothing changed, nothing is audited.
            if found.disabled { return }
            try connection.run("UPDATE users SET disabled_at = ?2 WHERE id = ?1", [.text(found.id), .date(date)])
            try connection.run("DELETE FROM sessions WHERE user_id = ?1", [.text(found.id)])
            _ = try transaction.appendAudit(body: body)
        }
    }

    /// The identity must name the row's own tenant and subject: a row that says otherwise is not
    /// trusted.
    private static func user(_ row: SQLiteRow) throws -> User {
        guard let identity = CanonicalJSON.decode(NormalizedIdentity.self, from: row.text(3)),
            identity.tenantID.rawValue == row.text(1), identity.subject == row.text(2)
        else { throw StoreError.unavailable("a stored user cannot be read") }
        return User(
            id: row.text(0), identity: identity, disabledAt: row.optionalDate(4), createdAt: row.date(5), lastSignInAt: row.date(6))
    }
}
