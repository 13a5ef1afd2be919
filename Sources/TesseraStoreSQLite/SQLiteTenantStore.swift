import Foundation
import TesseraCore
import TesseraStore

struct SQLiteTenantStore: TenantStore {
    let store: SQLiteStore

    private static let columns = "id, name, domains, created_at"

    func create(_ tenant: Tenant, audit: AuditEvent) async throws {
        let body = AuditChain.encode(audit)
        let domains = String(decoding: try JSONEncoder().encode(tenant.domains), as: UTF8.self)
        try await store.write("tenant.create") { transaction in
            try transaction.connection.run(
                "INSERT INTO tenants (id, name, domains, created_at) VALUES (?1, ?2, ?3, ?4)",
                [.text(tenant.id.rawValue), .text(tenant.name), .text(domains), .date(tenant.createdAt)])
            _ = try transaction.appendAudit(body: body)
        }
    }

    func get(_ id: TenantID) async throws -> Tenant? {
        try store.read { connection in
            try connection.queryOne("SELECT \(Self.columns) FROM tenants WHERE id = ?1", [.text(id.rawValue)], Self.tenant)
        }
    }

    func list() async throws -> [Tenant] {
        try store.read { connection in
            try connection.query("SELECT \(Self.columns) FROM tenants ORDER BY id", [], Self.tenant)
        }
    }

    private static func tenant(_ row: SQLiteRow) throws -> Tenant {
        guard let id = TenantID(row.text(0)),
            let domains = try? JSONDecoder().decode([String].self, from: Data(row.text(2).utf8))
        else { throw StoreError.unavailable("a stored tenant cannot be read") }
        return Tenant(id: id, name: row.text(1), domains: domains, createdAt: row.date(3))
    }
}
