import Foundation
import TesseraCore
import TesseraStore

struct PostgresTenantStore: TenantStore {
    let store: PostgresStore

    private static let columns = "id, name, domains, created_at"

    func create(_ tenant: Tenant, audit: AuditEvent) async throws {
        let body = AuditChain.encode(audit)
        let domains = String(decoding: try JSONEncoder().encode(tenant.domains), as: UTF8.self)
        try await store.write("tenant.create") { transaction in
            // A taken id fails the primary key: `.alreadyExists`.
            try await transaction.rows(
                SQL(
                    "INSERT INTO tenants (\(Self.columns)) VALUES ($1, $2, $3, $4)",
                    [.text(tenant.id.rawValue), .text(tenant.name), .text(domains), .date(tenant.createdAt)]))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    func get(_ id: TenantID) async throws -> Tenant? {
        try await store.statement(
            "tenant.get", SQL("SELECT \(Self.columns) FROM tenants WHERE id = $1", [.text(id.rawValue)]), Self.tenant
        ).first
    }

    func list() async throws -> [Tenant] {
        try await store.statement("tenant.list", SQL("SELECT \(Self.columns) FROM tenants ORDER BY id"), Self.tenant)
    }

    private static func tenant(_ row: Row) throws -> Tenant {
        guard let id = TenantID(try row.text(0)),
            let domains = try? JSONDecoder().decode([String].self, from: Data(try row.text(2).utf8))
        else { throw StoreError.unavailable("a stored tenant cannot be read") }
        return Tenant(id: id, name: try row.text(1), domains: domains, createdAt: try row.date(3))
    }
}
