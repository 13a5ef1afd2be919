import Foundation
import PostgresNIO
import Synchronization
import TesseraCore
import TesseraStore
import XCTest

@testable import TesseraStorePostgres

private let epoch = Date(timeIntervalSince1970: 1_767_225_600)
private let acme = TenantID("acme")!

private func event(_ action: String) -> AuditEvent {
    AuditEvent(ts: epoch, tenant: "acme", actor: .operator("test"), action: action, outcome: .success)
}

private func token(_ jti: String) -> IssuedToken {
    IssuedToken(
        jti: jti, tenantID: acme, clientID: "svc", subject: "svc", scopes: ["crm:contacts.read"], issuedAt: epoch,
        expiresAt: epoch.addingTimeInterval(600))
}

private func client(_ id: String) -> OAuthClient {
    OAuthClient(
        clientID: id, tenantID: acme, name: id, authMethod: .clientSecretBasic, secretHash: Secrets.sha256("secret"), jwks: nil,
        scopes: try! ScopeSet(parsing: "crm:contacts.read"), grantTypes: [.clientCredentials], dpop: .optional, mayIntrospect: false,
        createdAt: epoch)
}

/// What a listener heard, for the test to wait on.
private final class HeardSignals: Sendable {
    private let signals = Mutex<[RevocationSignal]>([])
    func record(_ signal: RevocationSignal) { signals.withLock { $0.append(signal) } }
    var all: [RevocationSignal] { signals.withLock { $0 } }

    /// Waits (bounded) until `count` signals arrived.
    func waitFor(_ count: Int, file: StaticString = #filePath, line: UInt = #line) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while all.count < count {
            guard ContinuousClock.now < deadline else {
                return XCTFail("heard \(all) while waiting for \(count) signals", file: file, line: line)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// What only the PostgreSQL backend promises about revocations: `NOTIFY` on commit with the
/// highest seq (and never for a transaction that rolled back), listeners that end with the
/// store, the upgrade that carries earlier revocations into the log, and an append-only log.
final class PostgresRevocationLogTests: XCTestCase {
    private var databases: TestDatabases!

    override func setUp() async throws {
        databases = try TestDatabases()
    }

    override func tearDown() async throws {
        await databases?.removeAll()
    }

    private func listen(_ store: PostgresStore, into heard: HeardSignals) -> Task<Void, any Error> {
        let notifications = store.revocationNotifications!
        return Task { try await notifications.listen { heard.record($0) } }
    }

    /// A listener on one instance hears each revocation committed by another, with the highest
    /// seq it logged.
    func testCommittedRevocationsAreAnnouncedWithTheirHighestSeq() async throws {
        let url = try await databases.newDatabase()
        let listener = try await databases.open(url)
        let revoker = try await databases.open(url)
        try await revoker.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        try await revoker.clients.create(client("svc"), audit: event("client.created"))
        try await revoker.tokens.recordIssued(token("root"), audit: event("token.issued"))
        try await revoker.tokens.recordIssued(
            IssuedToken(
                jti: "child", tenantID: acme, clientID: "svc", subject: "svc", scopes: [], issuedAt: epoch,
                expiresAt: epoch.addingTimeInterval(60), parentJTI: "root"),
            audit: event("token.issued"))

        let heard = HeardSignals()
        let listening = listen(listener, into: heard)
        try await heard.waitFor(1)
        XCTAssertEqual(heard.all, [.listening])

        _ = try await revoker.tokens.revoke(jti: "root", tenant: acme, at: epoch, audit: event("token.revoked"))
        let lineage = try await revoker.revocations.entries(after: 0, limit: 10)
        XCTAssertEqual(lineage.map(\.id), ["child", "root"])
        try await heard.waitFor(2)
        XCTAssertEqual(heard.all.last, .committed(seq: lineage.last!.seq), "one notification, with the highest seq")

        try await revoker.clients.disable(clientID: "svc", at: epoch, audit: event("client.disabled"))
        let disabled = try await revoker.revocations.entries(after: lineage.last!.seq, limit: 10)
        XCTAssertEqual(disabled.map(\.id), ["svc"])
        try await heard.waitFor(3)
        XCTAssertEqual(heard.all.last, .committed(seq: disabled[0].seq))

        listening.cancel()
        try await listening.value
        await listener.close()
        await revoker.close()
    }

    /// A revocation whose transaction fails after it logged and notified (here the audit append
    /// is refused) leaves no entry, a live token, and no notification: the next one heard is the
    /// next revocation that commits.
    func testRevocationThatRollsBackIsNeitherLoggedNorAnnounced() async throws {
        let url = try await databases.newDatabase()
        let store = try await databases.open(url)
        for jti in ["first", "second"] { try await store.tokens.recordIssued(token(jti), audit: event("token.issued")) }
        let heard = HeardSignals()
        let listening = listen(store, into: heard)
        try await heard.waitFor(1)
        try await withConnection(to: url) { connection in
            for statement in [
                """
                CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'refused'; END $$
                """,
                "CREATE TRIGGER audit_refused BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
            ] {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: TestServer.logger)
            }
        }
        do {
            _ = try await store.tokens.revoke(jti: "first", tenant: acme, at: epoch, audit: event("token.revoked"))
            XCTFail("the revocation succeeded without its audit record")
        } catch {}
        let afterFailure = try await store.revocations.entries(after: 0, limit: 10)
        XCTAssertEqual(afterFailure, [])
        let stillLive = try await store.tokens.isRevoked(jti: "first")
        XCTAssertFalse(stillLive)
        try await withConnection(to: url) { connection in
            try await connection.query("DROP TRIGGER audit_refused ON audit", logger: TestServer.logger)
        }
        _ = try await store.tokens.revoke(jti: "second", tenant: acme, at: epoch, audit: event("token.revoked"))
        let entries = try await store.revocations.entries(after: 0, limit: 10)
        XCTAssertEqual(entries.map(\.id), ["second"])
        try await heard.waitFor(2)
        XCTAssertEqual(heard.all, [.listening, .committed(seq: entries[0].seq)])
        listening.cancel()
        try await listening.value
        await store.close()
    }

    /// Closing the store ends its listeners instead of leaving them (and their connection) behind.
    func testClosingTheStoreEndsItsListeners() async throws {
        let store = try await databases.open(try await databases.newDatabase())
        let heard = HeardSignals()
        let listening = listen(store, into: heard)
        try await heard.waitFor(1)
        await store.close()
        _ = await listening.result
        do {
            try await store.revocationNotifications!.listen { _ in }
            XCTFail("listened on a closed store")
        } catch let error as StoreError {
            guard case .unavailable = error else { return XCTFail("\(error)") }
        }
    }

    /// A database of version 3 (before the log) gains it on open, with every token revoked and
    /// every client disabled before.
    func testUpgradeCarriesEarlierRevocationsIntoTheLog() async throws {
        let url = try await databases.newDatabase()
        let old = try await databases.open(url)
        try await old.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        try await old.clients.create(client("svc-off"), audit: event("client.created"))
        for jti in ["revoked", "live"] { try await old.tokens.recordIssued(token(jti), audit: event("token.issued")) }
        _ = try await old.tokens.revoke(jti: "revoked", tenant: acme, at: epoch.addingTimeInterval(5), audit: event("token.revoked"))
        try await old.clients.disable(clientID: "svc-off", at: epoch.addingTimeInterval(6), audit: event("client.disabled"))
        await old.close()
        try await withConnection(to: url) { connection in
            for statement in [
                "DROP TABLE saml_providers", "DROP TABLE revocation_log", "DROP FUNCTION revocation_log_is_append_only()",
                "DELETE FROM schema_migrations WHERE version > 3",
            ] {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: TestServer.logger)
            }
        }
        let upgraded = try await databases.open(url)
        let entries = try await upgraded.revocations.entries(after: 0, limit: 100)
        XCTAssertEqual(entries.map(\.id), ["revoked", "svc-off"])
        XCTAssertEqual(entries.map(\.kind), [.token, .client])
        XCTAssertEqual(entries.map(\.expiresAt), [epoch.addingTimeInterval(600), nil])
        XCTAssertEqual(entries.map(\.at), [epoch.addingTimeInterval(5), epoch.addingTimeInterval(6)])
        await upgraded.close()
    }

    func testTheLogCannotBeRewritten() async throws {
        let url = try await databases.newDatabase()
        let store = try await databases.open(url)
        try await store.tokens.recordIssued(token("jti-1"), audit: event("token.issued"))
        _ = try await store.tokens.revoke(jti: "jti-1", tenant: acme, at: epoch, audit: event("token.revoked"))
        await store.close()
        do {
            try await withConnection(to: url) { connection in
                try await connection.query("UPDATE revocation_log SET id = 'other'", logger: TestServer.logger)
            }
            XCTFail("the log was rewritten")
        } catch {}
    }
}
