import Foundation
import Synchronization
import TesseraCore
import TesseraStore

struct PostgresClientStore: ClientStore {
    let store: PostgresStore

    private static let columns = """
        client_id, tenant_id, name, auth_method, secret_hash, jwks, scopes, grant_types, dpop, may_introspect, \
        disabled_at, created_at
        """
    private static let insert = "INSERT INTO clients (\(columns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"

    func create(_ client: OAuthClient, audit: AuditEvent) async throws {
        let body = AuditChain.encode(audit)
        let values: [SQLValue] = [
            .text(client.clientID), .text(client.tenantID.rawValue), .text(client.name), .text(client.authMethod.rawValue),
            .bytes(client.secretHash), .text(client.jwks), .text(client.scopes.description),
            .text(client.grantTypes.map(\.rawValue).sorted().joined(separator: " ")), .text(client.dpop.rawValue),
            .bool(client.mayIntrospect), .date(client.disabledAt), .date(client.createdAt),
        ]
        try await store.write("client.create") { transaction in
            // A taken id fails the primary key: `.alreadyExists`; a missing tenant fails the
            // foreign key: `.notFound`.
            try await transaction.rows(SQL(Self.insert, values))
            _ = try await transaction.appendAudit(body: body)
        }
    }

    func get(clientID: String) async throws -> OAuthClient? {
        try await store.statement(
            "client.get", SQL("SELECT \(Self.columns) FROM clients WHERE client_id = $1", [.text(clientID)]), Self.client
        ).first
    }

    /// In creation order; clients created at the same millisecond in the order they were inserted.
    func list(tenant: TenantID?) async throws -> [OAuthClient] {
        if let tenant {
            return try await store.statement(
                "client.list",
                SQL(
                    "SELECT \(Self.columns) FROM clients WHERE tenant_id = $1 ORDER BY created_at, position",
                    [.text(tenant.rawValue)]), Self.client)
        }
        return try await store.statement(
            "client.list", SQL("SELECT \(Self.columns) FROM clients ORDER BY created_at, position"), Self.client)
    }

    /// The conditional update locks the row, so of two concurrent disables one changes it, logs
    /// the revocation and audits; the other finds it disabled and writes nothing.
    func disable(clientID: String, at date: Date, audit: AuditEvent) async throws {
        let body = AuditChain.encode(audit)
        try await store.write("client.disable") { transaction in
            let tenants = try await transaction.rows(
                SQL(
                    "UPDATE clients SET disabled_at = $2 WHERE client_id = $1 AND disabled_at IS NULL RETURNING tenant_id",
                    [.text(clientID), .date(date)])
            ) { try $0.text(0) }
            if let tenant = tenants.first {
                guard let tenantID = TenantID(tenant) else { throw Self.unreadable }
                try await transaction.appendRevocations(.client(clientID), tenant: tenantID, at: date)
                _ = try await transaction.appendAudit(body: body)
                return
            }
            let exists = try await transaction.rows(SQL("SELECT 1 FROM clients WHERE client_id = $1", [.text(clientID)]))
            // Already disabled: the first date stands and, since nothing changed, nothing is audited.
            guard !exists.isEmpty else { throw StoreError.notFound }
        }
    }

    /// Parsed registrations by their stored text. A client is read on every request it makes, and
    /// its scope text rarely changes, so the parse is done once per distinct text.
    private static let scopeCache = Mutex<[String: ScopeSet]>([:])

    private static func parsedScopes(_ text: String) throws -> ScopeSet {
        if let cached = scopeCache.withLock({ $0[text] }) { return cached }
        guard let parsed = ScopeSet(storedText: text) else { throw unreadable }
        scopeCache.withLock { cache in
            if cache.count >= 10_000 { cache.removeAll(keepingCapacity: true) }
            cache[text] = parsed
        }
        return parsed
    }

    private static func client(_ row: Row) throws -> OAuthClient {
        guard let tenantID = TenantID(try row.text(1)),
            let authMethod = ClientAuthMethod(rawValue: try row.text(3)),
            let dpop = DPoPRequirement(rawValue: try row.text(8))
        else { throw unreadable }
        let scopes = try parsedScopes(try row.text(6))
        var grantTypes: Set<GrantType> = []
        for name in try row.text(7).split(separator: " ") {
            guard let grantType = GrantType(rawValue: String(name)) else { throw unreadable }
            grantTypes.insert(grantType)
        }
        return OAuthClient(
            clientID: try row.text(0), tenantID: tenantID, name: try row.text(2), authMethod: authMethod,
            secretHash: try row.optionalBytes(4), jwks: try row.optionalText(5), scopes: scopes, grantTypes: grantTypes, dpop: dpop,
            mayIntrospect: try row.bool(9), disabledAt: try row.optionalDate(10), createdAt: try row.date(11))
    }

    private static var unreadable: StoreError { .unavailable("a stored client cannot be read") }
}

extension ScopeSet {
    /// Reads back the canonical text (`description`) a store wrote; the empty text is the empty set.
    init?(storedText text: String) {
        if text.isEmpty {
            self.init([])
        } else if let parsed = try? ScopeSet(parsing: text) {
            self = parsed
        } else {
            return nil
        }
    }
}
