import Foundation
import TesseraCore
import TesseraStore

struct SQLitePolicyStore: PolicyStore {
    let store: SQLiteStore

    private static let columns = "tenant_id, version, document, created_at"

    /// The next version is read and written in the same unit of the single writer, so two puts
    /// for one tenant never get the same version (and the primary key would refuse it anyway).
    func put(tenant: TenantID, document: String, at date: Date, audit: AuditEvent) async throws -> StoredPolicy {
        let body = AuditChain.encode(audit)
        return try await store.write("policy.put") { transaction in
            let version =
                try transaction.connection.queryOne(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM policies WHERE tenant_id = ?1", [.text(tenant.rawValue)]
                ) { $0.int64(0) } ?? 1
            // A missing tenant fails the foreign key: `.notFound`.
            try transaction.connection.run(
                "INSERT INTO policies (\(Self.columns)) VALUES (?1, ?2, ?3, ?4)",
                [.text(tenant.rawValue), .integer(version), .text(document), .date(date)])
            _ = try transaction.appendAudit(body: body)
            return StoredPolicy(tenantID: tenant, version: version, document: document, createdAt: date)
        }
    }

    func current(tenant: TenantID) async throws -> StoredPolicy? {
        try store.read { connection in
            try connection.queryOne(
                "SELECT \(Self.columns) FROM policies WHERE tenant_id = ?1 ORDER BY version DESC LIMIT 1", [.text(tenant.rawValue)]
            ) { row in
                guard let tenantID = TenantID(row.text(0)) else { throw StoreError.unavailable("a stored policy cannot be read") }
                return StoredPolicy(tenantID: tenantID, version: row.int64(1), document: row.text(2), createdAt: row.date(3))
            }
        }
    }
}
