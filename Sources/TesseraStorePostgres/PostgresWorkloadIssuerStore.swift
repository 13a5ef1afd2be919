import Foundation
import TesseraCore
import TesseraStore

struct PostgresWorkloadIssuerStore: WorkloadIssuerStore {
    let store: PostgresStore

    private static let columns = """
        id, tenant_id, issuer, jwks, audience, subject_patterns, claim_conditions, scopes, created_at
        """

    func add(_ issuer: WorkloadIssuer, audit: AuditEvent) async throws {
        let body = AuditChain.encode(audit)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let patterns = String(decoding: try encoder.encode(issuer.subjectPatterns), as: UTF8.self)
        let conditions = String(decoding: try encoder.encode(issuer.claimConditions), as: UTF8.self)
        let values: [SQLValue] = [
            .text(issuer.id), .text(issuer.tenantID.rawValue), .text(issuer.issuer), .text(issuer.jwks), .text(issuer.audience),
            .text(patterns), .text(conditions), .text(issuer.scopes.description), .date(issuer.createdAt),
        ]
        try await store.write("workload_issuer.add") { transaction in
            // A taken id or (tenant, issuer) fails a unique constraint: `.alreadyExists`; a missing
            // tenant fails the foreign key: `.notFound`.
            try await transaction.rows(
                SQL("INSERT INTO workload_issuers (\(Self.columns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", values))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    func list(tenant: TenantID) async throws -> [WorkloadIssuer] {
        try await store.statement(
            "workload_issuer.list",
            SQL(
                "SELECT \(Self.columns) FROM workload_issuers WHERE tenant_id = $1 ORDER BY created_at, position",
                [.text(tenant.rawValue)]), Self.issuer)
    }

    func find(tenant: TenantID, issuer: String) async throws -> WorkloadIssuer? {
        try await store.statement(
            "workload_issuer.find",
            SQL(
                "SELECT \(Self.columns) FROM workload_issuers WHERE tenant_id = $1 AND issuer = $2",
                [.text(tenant.rawValue), .text(issuer)]), Self.issuer
        ).first
    }

    private static func issuer(_ row: Row) throws -> WorkloadIssuer {
        let decoder = JSONDecoder()
        guard let tenantID = TenantID(try row.text(1)),
            let patterns = try? decoder.decode([String].self, from: Data(try row.text(5).utf8)),
            let conditions = try? decoder.decode([String: String].self, from: Data(try row.text(6).utf8)),
            let scopes = ScopeSet(storedText: try row.text(7))
        else { throw StoreError.unavailable("a stored workload issuer cannot be read") }
        return WorkloadIssuer(
            id: try row.text(0), tenantID: tenantID, issuer: try row.text(2), jwks: try row.text(3), audience: try row.text(4),
            subjectPatterns: patterns, claimConditions: conditions, scopes: scopes, createdAt: try row.date(8))
    }
}
