import Foundation
import TesseraCore
import TesseraStore

/// Upstream SAML identity providers, at most one per tenant. The tenant's trust settings are one
/// JSON document; the IdP's metadata document and its fetch date sit beside it, so a refresh
/// rewrites those and the entityID they name, never the settings.
struct PostgresSAMLProviderStore: SAMLProviderStore {
    let store: PostgresStore

    private static let columns = "id, tenant_id, config, metadata, metadata_fetched_at"

    func add(_ record: SAMLProviderRecord, audit: AuditEvent) async throws {
        try SAMLMetadataLimit.require(record.metadata)
        let provider = record.config
        let config = try CanonicalJSON.encode(provider, "the SAML provider configuration")
        let body = AuditChain.encode(audit)
        let values: [SQLValue] = [
            .text(provider.id), .text(provider.tenantID.rawValue), .text(config), .text(record.metadata),
            .date(record.metadataFetchedAt), .date(provider.createdAt),
        ]
        try await store.write("saml_provider.add") { transaction in
            // A taken id or a tenant that has a provider fails a unique constraint: `.alreadyExists`;
            // a missing tenant fails the foreign key: `.notFound`.
            try await transaction.rows(
                SQL("INSERT INTO saml_providers (\(Self.columns), created_at) VALUES ($1, $2, $3, $4, $5, $6)", values))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    func get(tenant: TenantID) async throws -> SAMLProviderRecord? {
        try await store.statement(
            "saml_provider.get",
            SQL("SELECT \(Self.columns) FROM saml_providers WHERE tenant_id = $1", [.text(tenant.rawValue)]), Self.record
        ).first
    }

    /// In creation order; providers created at the same millisecond in the order they were inserted.
    func list() async throws -> [SAMLProviderRecord] {
        try await store.statement(
            "saml_provider.list", SQL("SELECT \(Self.columns) FROM saml_providers ORDER BY created_at, position"), Self.record)
    }

    /// The row is locked before its settings are read, so a concurrent refresh of the same provider
    /// waits and then rewrites the settings as this one left them.
    func replaceMetadata(id: String, entityID: String, metadata: String, fetchedAt: Date, audit: AuditEvent) async throws {
        try SAMLMetadataLimit.require(metadata)
        let body = AuditChain.encode(audit)
        try await store.write("saml_provider.replace_metadata") { transaction in
            let current = try await transaction.rows(
                SQL("SELECT \(Self.columns) FROM saml_providers WHERE id = $1 FOR UPDATE", [.text(id)]), Self.record)
            guard let current = current.first else { throw StoreError.notFound }
            let config = try CanonicalJSON.encode(current.config.with(entityID: entityID), "the SAML provider configuration")
            try await transaction.rows(
                SQL(
                    "UPDATE saml_providers SET config = $2, metadata = $3, metadata_fetched_at = $4 WHERE id = $1",
                    [.text(id), .text(config), .text(metadata), .date(fetchedAt)]))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    private static func record(_ row: Row) throws -> SAMLProviderRecord {
        // The document must name the row's own id and tenant: a row that says otherwise is not trusted.
        guard let config = CanonicalJSON.decode(SAMLProviderConfig.self, from: try row.text(2)),
            config.id == (try row.text(0)), config.tenantID.rawValue == (try row.text(1))
        else { throw StoreError.unavailable("a stored SAML identity provider cannot be read") }
        return SAMLProviderRecord(config: config, metadata: try row.text(3), metadataFetchedAt: try row.date(4))
    }
}
