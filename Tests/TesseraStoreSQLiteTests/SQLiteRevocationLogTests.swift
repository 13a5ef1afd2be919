import Foundation
import TesseraCore
import TesseraStore
import XCTest

@testable import TesseraStoreSQLite

private let epoch = Date(timeIntervalSince1970: 1_767_225_600)
private let acme = TenantID("acme")!

private func event(_ action: String) -> AuditEvent {
    AuditEvent(ts: epoch, tenant: "acme", actor: .operator("test"), action: action, outcome: .success)
}

private func token(_ jti: String, lifetime: TimeInterval = 600) -> IssuedToken {
    IssuedToken(
        jti: jti, tenantID: acme, clientID: "svc", subject: "svc", scopes: ["crm:contacts.read"], issuedAt: epoch,
        expiresAt: epoch.addingTimeInterval(lifetime))
}

private func client(_ id: String) -> OAuthClient {
    OAuthClient(
        clientID: id, tenantID: acme, name: id, authMethod: .clientSecretBasic, secretHash: Secrets.sha256("secret"), jwks: nil,
        scopes: try! ScopeSet(parsing: "crm:contacts.read"), grantTypes: [.clientCredentials], dpop: .optional, mayIntrospect: false,
        createdAt: epoch)
}

/// What only the SQLite backend promises about the revocation log: the upgrade carries earlier
/// revocations into it, a revocation that rolls back leaves nothing, another process's
/// revocations are read in order, and the log cannot be rewritten.
final class SQLiteRevocationLogTests: XCTestCase {
    private var databases: TemporaryDatabases!

    override func setUpWithError() throws {
        databases = try TemporaryDatabases()
    }

    override func tearDown() {
        databases?.remove()
    }

    /// A database of version 3 (before the log) gains it on open, with every token revoked and
    /// every client disabled before: an instance upgraded in place forgets no revocation.
    func testUpgradeCarriesEarlierRevocationsIntoTheLog() async throws {
        let path = databases.newPath()
        let old = try await databases.open(path)
        try await old.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        try await old.clients.create(client("svc-off"), audit: event("client.created"))
        try await old.clients.create(client("svc-on"), audit: event("client.created"))
        for jti in ["revoked", "live"] { try await old.tokens.recordIssued(token(jti), audit: event("token.issued")) }
        _ = try await old.tokens.revoke(jti: "revoked", tenant: acme, at: epoch.addingTimeInterval(5), audit: event("token.revoked"))
        try await old.clients.disable(clientID: "svc-off", at: epoch.addingTimeInterval(6), audit: event("client.disabled"))
        await old.close()
        try withRawConnection(path) { connection in
            try connection.execute("DROP TABLE saml_providers; DROP TABLE revocation_log; DELETE FROM schema_migrations WHERE version > 3;")
        }
        let upgraded = try await databases.open(path)
        let entries = try await upgraded.revocations.entries(after: 0, limit: 100)
        XCTAssertEqual(
            entries.map { RevocationEntry(seq: 0, kind: $0.kind, id: $0.id, tenantID: $0.tenantID, at: $0.at, expiresAt: $0.expiresAt) },
            [
                RevocationEntry(
                    seq: 0, kind: .token, id: "revoked", tenantID: acme, at: epoch.addingTimeInterval(5),
                    expiresAt: epoch.addingTimeInterval(600)),
                RevocationEntry(seq: 0, kind: .client, id: "svc-off", tenantID: acme, at: epoch.addingTimeInterval(6), expiresAt: nil),
            ])
        await upgraded.close()
    }

    /// A revocation whose transaction fails after its log entries were written (here the audit
    /// append) leaves no entry, and the token live.
    func testRevocationThatRollsBackLogsNothing() async throws {
        let path = databases.newPath()
        let store = try await databases.open(path)
        for jti in ["first", "second"] { try await store.tokens.recordIssued(token(jti), audit: event("token.issued")) }
        try withRawConnection(path) { connection in
            try connection.execute("CREATE TRIGGER audit_refused BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'refused'); END;")
        }
        do {
            _ = try await store.tokens.revoke(jti: "first", tenant: acme, at: epoch, audit: event("token.revoked"))
            XCTFail("the revocation succeeded without its audit record")
        } catch {}
        let afterFailure = try await store.revocations.entries(after: 0, limit: 100)
        XCTAssertEqual(afterFailure, [])
        let stillLive = try await store.tokens.isRevoked(jti: "first")
        XCTAssertFalse(stillLive)
        try withRawConnection(path) { connection in try connection.execute("DROP TRIGGER audit_refused;") }
        _ = try await store.tokens.revoke(jti: "second", tenant: acme, at: epoch, audit: event("token.revoked"))
        let entries = try await store.revocations.entries(after: 0, limit: 100)
        XCTAssertEqual(entries.map(\.id), ["second"])
        await store.close()
    }

    /// Two processes on one file (the server and the CLI): each one's revocations are logged in
    /// one sequence that both read.
    func testRevocationsOfAnotherProcessAreReadInOrder() async throws {
        let path = databases.newPath()
        let server = try await databases.open(path)
        let cli = try await databases.open(path)
        try await server.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        try await server.clients.create(client("svc"), audit: event("client.created"))
        for index in 0..<6 { try await server.tokens.recordIssued(token("jti-\(index)"), audit: event("token.issued")) }
        for index in 0..<6 {
            let writer = index.isMultiple(of: 2) ? server : cli
            _ = try await writer.tokens.revoke(jti: "jti-\(index)", tenant: acme, at: epoch, audit: event("token.revoked"))
        }
        try await cli.clients.disable(clientID: "svc", at: epoch, audit: event("client.disabled"))
        let seen = try await server.revocations.entries(after: 0, limit: 100)
        XCTAssertEqual(seen.map(\.id), (0..<6).map { "jti-\($0)" } + ["svc"])
        XCTAssertEqual(seen.map(\.seq), Array(1...7))
        await server.close()
        await cli.close()
    }

    func testTheLogCannotBeRewritten() async throws {
        let path = databases.newPath()
        let store = try await databases.open(path)
        try await store.tokens.recordIssued(token("jti-1"), audit: event("token.issued"))
        _ = try await store.tokens.revoke(jti: "jti-1", tenant: acme, at: epoch, audit: event("token.revoked"))
        await store.close()
        XCTAssertThrowsError(
            try withRawConnection(path) { try $0.execute("UPDATE revocation_log SET id = 'other'") })
    }
}
