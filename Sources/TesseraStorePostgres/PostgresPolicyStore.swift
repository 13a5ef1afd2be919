import Foundation
import TesseraCore
import TesseraStore

struct PostgresPolicyStore: PolicyStore {
    let store: PostgresStore

    private static let columns = "tenant_id, version, document, created_at"

    /// Locks the tenant's row first, so two puts for one tenant (from any instance) take turns
    /// and never compute the same next version. `FOR NO KEY UPDATE` leaves the tenant free for
    /// the foreign-key checks of other writes.
    func put(tenant: TenantID, document: String, at date: Date, audit: AuditEvent) async throws -> StoredPolicy {
        let body = AuditChain.encode(audit)
        return try await store.write("policy.put") { transaction in
            let locked = try await transaction.rows(
                SQL("SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE", [.text(tenant.rawValue)]))
            guard !locked.isEmpty else { throw StoreError.notFound }
            let versions = try await transaction.rows(
                SQL(
                    """
                    INSERT INTO policies (\(Self.columns))
                    SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM policies WHERE tenant_id = $1
                    RETURNING version
                    """,
                    [.text(tenant.rawValue), .text(document), .date(date)])
            ) { try $0.int64(0) }
            guard let version = versions.first else { throw StoreError.conflict("the policy version was not assigned") }
            _ = try await transaction.appendAudit(body: body)
            return StoredPolicy(tenantID: tenant, version: version, document: document, createdAt: date)
        }
    }

    func current(tenant: TenantID) async throws -> StoredPolicy? {
        try await store.statement(
            "policy.current",
            SQL(
                "SELECT \(Self.columns) FROM policies WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", [.text(tenant.rawValue)])
        ) { row in
            guard let tenantID = TenantID(try row.text(0)) else { throw StoreError.unavailable("a stored policy cannot be read") }
            return StoredPolicy(tenantID: tenantID, version: try row.int64(1), document: try row.text(2), createdAt: try row.date(3))
        }.first
    }
}
