import Foundation
import TesseraCore
import TesseraStore

/// Upstream OpenID Providers, at most one per tenant. The configuration is one JSON document; the
/// columns beside it carry what is looked up or constrained.
struct PostgresOIDCProviderStore: OIDCProviderStore {
    let store: PostgresStore

    func add(_ provider: OIDCProviderConfig, audit: AuditEvent) async throws {
        let config = try CanonicalJSON.encode(provider, "the provider configuration")
        let body = AuditChain.encode(audit)
        let values: [SQLValue] = [.text(provider.id), .text(provider.tenantID.rawValue), .text(config), .date(provider.createdAt)]
        try await store.write("oidc_provider.add") { transaction in
            // A taken id or a tenant that has a provider fails a unique constraint: `.alreadyExists`;
            // a missing tenant fails the foreign key: `.notFound`.
            try await transaction.rows(
                SQL("INSERT INTO oidc_providers (id, tenant_id, config, created_at) VALUES ($1, $2, $3, $4)", values))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    func get(tenant: TenantID) async throws -> OIDCProviderConfig? {
        try await store.statement(
            "oidc_provider.get",
            SQL("SELECT id, tenant_id, config FROM oidc_providers WHERE tenant_id = $1", [.text(tenant.rawValue)])
        ) { row in
            // The document must name the row's own id and tenant: a row that says otherwise is not trusted.
            guard let config = CanonicalJSON.decode(OIDCProviderConfig.self, from: try row.text(2)),
                config.id == (try row.text(0)), config.tenantID.rawValue == (try row.text(1))
            else { throw StoreError.unavailable("a stored OpenID Provider cannot be read") }
            return config
        }.first
    }
}
