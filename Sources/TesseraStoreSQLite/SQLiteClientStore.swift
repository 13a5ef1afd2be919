import Foundation
import Synchronization
import TesseraCore
import TesseraStore

struct SQLiteClientStore: ClientStore {
    let store: SQLiteStore

    private static let columns = """
        client_id, tenant_id, name, auth_method, secret_hash, jwks, scopes, grant_types, dpop, may_introspect, \
        disabled_at, created_at
        """
    private static let insert = "INSERT INTO clients (\(columns)) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    private static let select = "SELECT \(columns) FROM clients WHERE client_id = ?1"

    func create(_ client: OAuthClient, audit: AuditEvent) async throws {
        let body = AuditChain.encode(audit)
        let values: [SQLValue] = [
            .text(client.clientID), .text(client.tenantID.rawValue), .text(client.name), .text(client.authMethod.rawValue),
            .blob(client.secretHash), .text(client.jwks), .text(client.scopes.description),
            .text(client.grantTypes.map(\.rawValue).sorted().joined(separator: " ")), .text(client.dpop.rawValue),
            .bool(client.mayIntrospect), .date(client.disabledAt), .date(client.createdAt),
        ]
        try await store.write("client.create") { transaction in
            // A missing tenant fails the foreign key: `.notFound`.
            try transaction.connection.run(Self.insert, values)
            _ = try transaction.appendAudit(body: body)
        }
    }

    func get(clientID: String) async throws -> OAuthClient? {
        try store.read { connection in
            try connection.queryOne(Self.select, [.text(clientID)], Self.client)
        }
    }

    func list(tenant: TenantID?) async throws -> [OAuthClient] {
        try store.read { connection in
            if let tenant {
                try connection.query(
                    "SELECT \(Self.columns) FROM clients WHERE tenant_id = ?1 ORDER BY created_at, rowid", [.text(tenant.rawValue)],
                    Self.client)
            } else {
                try connection.query("SELECT \(Self.columns) FROM clients ORDER BY created_at, rowid", [], Self.client)
            }
        }
    }

    func disable(clientID: String, at date: Date, audit: AuditEvent) async throws {
        let body = AuditChain.encode(audit)
        try await store.write("client.disable") { transaction in
            let tenants = try transaction.connection.query(
                "UPDATE clients SET disabled_at = ?2 WHERE client_id = ?1 AND disabled_at IS NULL RETURNING tenant_id",
                [.text(clientID), .date(date)]
            ) { $0.text(0) }
            if let tenant = tenants.first {
                guard let tenantID = TenantID(tenant) else { throw StoreError.unavailable("a stored client cannot be read") }
                try SQLiteRevocationLog.append(.client, [(clientID, nil)], tenant: tenantID, at: date, transaction.connection)
                _ = try transaction.appendAudit(body: body)
                return
            }
            let exists = try transaction.connection.queryOne("SELECT 1 FROM clients WHERE client_id = ?1", [.text(clientID)]) { _ in true }
            // Already disabled: the first date stands and, since nothing changed, nothing is audited.
            guard exists != nil else { throw StoreError.notFound }
        }
    }

    /// Parsed registrations by their stored text. A client is read on every request it makes, and
    /// its scope text rarely changes, so the parse is done once per distinct text.
    private static let scopeCache = Mutex<[String: ScopeSet]>([:])

    private static func parsedScopes(_ text: String) throws -> ScopeSet {
        if let cached = scopeCache.withLock({ $0[text] }) { return cached }
        let parsed: ScopeSet
        if text.isEmpty {
            parsed = ScopeSet([])
        } else {
            guard let scopes = try? ScopeSet(parsing: text) else { throw unreadable }
            parsed = scopes
        }
        scopeCache.withLock { cache in
            if cache.count >= 10_000 { cache.removeAll(keepingCapacity: true) }
            cache[text] = parsed
        }
        return parsed
    }

    private static func client(_ row: SQLiteRow) throws -> OAuthClient {
        guard let tenantID = TenantID(row.text(1)),
            let authMethod = ClientAuthMethod(rawValue: row.text(3)),
            let dpop = DPoPRequirement(rawValue: row.text(8))
        else { throw unreadable }
        let scopes = try parsedScopes(row.text(6))
        var grantTypes: Set<GrantType> = []
        for name in row.text(7).split(separator: " ") {
            guard let grantType = GrantType(rawValue: String(name)) else { throw unreadable }
            grantTypes.insert(grantType)
        }
        return OAuthClient(
            clientID: row.text(0), tenantID: tenantID, name: row.text(2), authMethod: authMethod,
            secretHash: row.optionalBlob(4), jwks: row.optionalText(5), scopes: scopes, grantTypes: grantTypes, dpop: dpop,
            mayIntrospect: row.bool(9), disabledAt: row.optionalDate(10), createdAt: row.date(11))
    }

    private static var unreadable: StoreError { .unavailable("a stored client cannot be read") }
}
