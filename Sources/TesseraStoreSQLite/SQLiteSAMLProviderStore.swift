import Foundation
import TesseraCore
import TesseraStore

/// Upstream SAML identity providers, at most one per tenant. The tenant's trust settings are one
/// JSON document; the IdP's metadata document and its fetch date sit beside it, so a refresh
/// rewrites those and the entityID they name, never the settings.
struct SQLiteSAMLProviderStore: SAMLProviderStore {
    let store: SQLiteStore

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
            try transaction.connection.run(
                "INSERT INTO saml_providers (\(Self.columns), created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", values)
            _ = try transaction.appendAudit(body: body)
        }
    }

    func get(tenant: TenantID) async throws -> SAMLProviderRecord? {
        try store.read { connection in
            try connection.queryOne(
                "SELECT \(Self.columns) FROM saml_providers WHERE tenant_id = ?1", [.text(tenant.rawValue)], Self.record)
        }
    }

    func list() async throws -> [SAMLProviderRecord] {
        try store.read { connection in
            try connection.query("SELECT \(Self.columns) FROM saml_providers ORDER BY created_at, rowid", [], Self.record)
        }
    }

    func replaceMetadata(id: String, entityID: String, metadata: String, fetchedAt: Date, audit: AuditEvent) async throws {
        try SAMLMetadataLimit.require(metadata)
        let body = AuditChain.encode(audit)
        try await store.write("saml_provider.replace_metadata") { transaction in
            // Read and rewritten inside the write transaction: no other writer, in this process or
            // the CLI's, can change the settings in between.
            let current = try transaction.connection.queryOne(
                "SELECT \(Self.columns) FROM saml_providers WHERE id = ?1", [.text(id)], Self.record)
            guard let current else { throw StoreError.notFound }
            let config = try CanonicalJSON.encode(current.config.with(entityID: entityID), "the SAML provider configuration")
            try transaction.connection.run(
                "UPDATE saml_providers SET config = ?2, metadata = ?3, metadata_fetched_at = ?4 WHERE id = ?1",
                [.text(id), .text(config), .text(metadata), .date(fetchedAt)])
            _ = try transaction.appendAudit(body: body)
        }
    }

    private static func record(_ row: SQLiteRow) throws -> SAMLProviderRecord {
        // The document must name the row's own id and tenant: a row that says otherwise is not trusted.
        guard let config = CanonicalJSON.decode(SAMLProviderConfig.self, from: row.text(2)),
            config.id == row.text(0), config.tenantID.rawValue == row.text(1)
        else { throw StoreError.unavailable("a stored SAML identity provider cannot be read") }
        return SAMLProviderRecord(config: config, metadata: row.text(3), metadataFetchedAt: row.date(4))
    }
}
