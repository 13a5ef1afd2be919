import Foundation
import TesseraCore
import TesseraStore
import XCTest

@testable import TesseraStoreSQLite

private let epoch = Date(timeIntervalSince1970: 1_767_225_600)
private let acme = TenantID("acme")!

private func event(_ action: String, jti: String? = nil) -> AuditEvent {
    AuditEvent(ts: epoch, tenant: "acme", actor: .operator("test"), action: action, outcome: .success, jti: jti)
}

private func token(_ jti: String) -> IssuedToken {
    IssuedToken(
        jti: jti, tenantID: acme, clientID: "svc", subject: "svc", scopes: ["crm:contacts.read"], issuedAt: epoch,
        expiresAt: epoch.addingTimeInterval(600))
}

/// What only the SQLite backend promises: migrations, a second process on the same file,
/// durability of acknowledged writes, and answers when the file is locked.
final class SQLiteStoreTests: XCTestCase {
    private var databases: TemporaryDatabases!

    override func setUpWithError() throws {
        databases = try TemporaryDatabases()
    }

    override func tearDown() {
        databases?.remove()
    }

    func testOpenCreatesParentDirectoriesAndUsesWAL() async throws {
        let path = databases.newPath()
        XCTAssertFalse(FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path))
        let store = try await databases.open(path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        let mode = try withRawConnection(path) { try $0.queryOne("PRAGMA journal_mode") { $0.text(0) } }
        XCTAssertEqual(mode, "wal")
        await store.close()
    }

    func testMigrationsAreIdempotentOnReopen() async throws {
        let path = databases.newPath()
        let first = try await databases.open(path)
        try await first.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        await first.close()
        for _ in 0..<2 {
            let again = try await databases.open(path)
            let tenant = try await again.tenants.get(acme)
            XCTAssertEqual(tenant?.name, "Acme")
            await again.close()
        }
        let versions = try withRawConnection(path) { connection in
            try connection.query("SELECT version FROM schema_migrations ORDER BY version") { $0.int64(0) }
        }
        XCTAssertEqual(versions, Migrations.all.map(\.version))
        XCTAssertEqual(versions.last, Migrations.latestVersion)
    }

    /// A database written by a build that knew only version 1 is brought to the latest version on
    /// open, keeping its data.
    func testVersionOneDatabaseIsMigratedKeepingItsData() async throws {
        let path = databases.newPath()
        let first = try await databases.open(path)
        try await first.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        try await first.tokens.recordIssued(token("jti-1"), audit: event("token.issued", jti: "jti-1"))
        await first.close()
        // Back to version 1, as the older build left it.
        try withRawConnection(path) { connection in
            try connection.execute(
                """
                DROP TABLE saml_providers; DROP TABLE revocation_log; DROP TABLE users; DROP TABLE sessions;
                DROP TABLE oidc_providers; DROP TABLE policies; DROP TABLE workload_issuers; DROP TABLE refresh_families;
                DROP TABLE refresh_tokens; DELETE FROM schema_migrations WHERE version > 1;
                """)
        }
        let upgraded = try await databases.open(path)
        let tenant = try await upgraded.tenants.get(acme)
        XCTAssertEqual(tenant?.name, "Acme")
        let stored = try await upgraded.tokens.get(jti: "jti-1")
        XCTAssertEqual(stored, token("jti-1"))
        let policy = try await upgraded.policies.put(tenant: acme, document: "{}", at: epoch, audit: event("policy.changed"))
        XCTAssertEqual(policy.version, 1)
        let finding = try await AuditChain.verify(upgraded.audit)
        XCTAssertEqual(finding, .intact(count: 3))
        await upgraded.close()
        let versions = try withRawConnection(path) { connection in
            try connection.query("SELECT version FROM schema_migrations ORDER BY version") { $0.int64(0) }
        }
        XCTAssertEqual(versions, Migrations.all.map(\.version))
    }

    /// A database written by a build that knew only version 2 gains the sign-in tables on open,
    /// keeping its data, and the new stores work on it.
    func testVersionTwoDatabaseIsMigratedKeepingItsData() async throws {
        let path = databases.newPath()
        let first = try await databases.open(path)
        try await first.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        try await first.tokens.recordIssued(token("jti-1"), audit: event("token.issued", jti: "jti-1"))
        _ = try await first.policies.put(tenant: acme, document: "{}", at: epoch, audit: event("policy.changed"))
        await first.close()
        // Back to version 2, as the older build left it.
        try withRawConnection(path) { connection in
            try connection.execute(
                """
                DROP TABLE saml_providers; DROP TABLE revocation_log; DROP TABLE users; DROP TABLE sessions;
                DROP TABLE oidc_providers; DELETE FROM schema_migrations WHERE version > 2;
                """)
        }
        let upgraded = try await databases.open(path)
        let tenant = try await upgraded.tenants.get(acme)
        XCTAssertEqual(tenant?.name, "Acme")
        let stored = try await upgraded.tokens.get(jti: "jti-1")
        XCTAssertEqual(stored, token("jti-1"))
        let policy = try await upgraded.policies.current(tenant: acme)
        XCTAssertEqual(policy?.version, 1)
        let identity = NormalizedIdentity(
            tenantID: acme, subject: "oidc|idp-1|alice", email: nil, emailVerified: false, name: nil, groups: [], roles: [], idpID: "idp-1")
        let user = try await upgraded.users.upsert(identity, at: epoch, audit: event("user.signed_in"))
        let found = try await upgraded.users.get(tenant: acme, subject: identity.subject)
        XCTAssertEqual(found, user)
        let finding = try await AuditChain.verify(upgraded.audit)
        XCTAssertEqual(finding, .intact(count: 4))
        await upgraded.close()
        let versions = try withRawConnection(path) { connection in
            try connection.query("SELECT version FROM schema_migrations ORDER BY version") { $0.int64(0) }
        }
        XCTAssertEqual(versions, Migrations.all.map(\.version))
        XCTAssertEqual(versions.last, Migrations.latestVersion)
    }

    func testDatabaseOfANewerSchemaIsRefused() async throws {
        let path = databases.newPath()
        try await databases.open(path).close()
        let newer = Migrations.latestVersion + 1
        _ = try withRawConnection(path) { connection in
            try connection.run("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)", [.integer(newer)])
        }
        do {
            _ = try await databases.open(path)
            XCTFail("a database of a newer schema was opened")
        } catch let error as SQLiteStoreError {
            XCTAssertEqual(error, .schemaTooNew(found: newer, supported: Migrations.latestVersion))
            XCTAssertTrue(error.description.contains("upgrade tessera"), error.description)
        }
    }

    /// Two stores on one file stand for the server and the `tessera` CLI: each sees the other's
    /// writes, and their audit appends interleave into one intact chain.
    func testSecondStoreOnTheSameFileSharesDataAndOneAuditChain() async throws {
        let path = databases.newPath()
        let server = try await databases.open(path)
        let cli = try await databases.open(path)
        try await cli.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        let seenByServer = try await server.tenants.get(acme)
        XCTAssertEqual(seenByServer?.name, "Acme")

        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<100 {
                group.addTask { try await server.tokens.recordIssued(token("jti-\(index)"), audit: event("token.issued")) }
                group.addTask { try await cli.audit.append(event("key.rotated")) }
            }
            try await group.waitForAll()
        }
        let fromServer = try await AuditChain.verify(server.audit)
        let fromCLI = try await AuditChain.verify(cli.audit)
        XCTAssertEqual(fromServer, .intact(count: 201))
        XCTAssertEqual(fromCLI, .intact(count: 201))
        let revoked = try await cli.tokens.revoke(jti: "jti-7", tenant: acme, at: epoch, audit: event("token.revoked"))
        XCTAssertEqual(revoked, .revoked(descendants: []))
        let seenRevoked = try await server.tokens.isRevoked(jti: "jti-7")
        XCTAssertTrue(seenRevoked)
        await server.close()
        await cli.close()
    }

    func testAcknowledgedWriteIsInTheFileAndSurvivesReopening() async throws {
        let path = databases.newPath()
        let store = try await databases.open(path)
        try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        try await store.tokens.recordIssued(token("jti-1"), audit: event("token.issued", jti: "jti-1"))
        let record = try await store.audit.append(event("token.introspected", jti: "jti-1"))

        // Committed, not merely queued: an independent connection already sees it.
        let counts = try withRawConnection(path) { connection in
            try connection.queryOne("SELECT (SELECT COUNT(*) FROM issued_tokens), (SELECT COUNT(*) FROM audit)") {
                [$0.int64(0), $0.int64(1)]
            }
        }
        XCTAssertEqual(counts, [1, 3])
        await store.close()

        let reopened = try await databases.open(path)
        let stored = try await reopened.tokens.get(jti: "jti-1")
        XCTAssertEqual(stored, token("jti-1"))
        let records = try await reopened.audit.records(after: 2, limit: 10)
        XCTAssertEqual(records, [record])
        let finding = try await AuditChain.verify(reopened.audit)
        XCTAssertEqual(finding, .intact(count: 3))
        await reopened.close()
    }

    func testWritesAfterCloseAreUnavailable() async throws {
        let store = try await databases.open(databases.newPath())
        await store.close()
        do {
            try await store.audit.append(event("key.rotated"))
            XCTFail("a write after close succeeded")
        } catch let error as StoreError {
            guard case .unavailable = error else { return XCTFail("expected unavailable, got \(error)") }
        }
        do {
            try await store.ping()
            XCTFail("ping after close succeeded")
        } catch let error as StoreError {
            guard case .unavailable = error else { return XCTFail("expected unavailable, got \(error)") }
        }
        await store.close()  // closing twice is harmless
    }

    /// Another process holds the write lock longer than the busy timeout: the write answers
    /// `.unavailable` and leaves nothing behind; once the lock is gone, writes go through.
    func testLockedDatabaseAnswersUnavailableAndWritesNothing() async throws {
        let path = databases.newPath()
        let store = try await SQLiteStore.open(path: path, logger: .init(label: "test"), busyTimeoutMilliseconds: 100)
        let other = try SQLiteConnection(path: path, mode: .readWrite, busyTimeoutMilliseconds: 100)
        try other.execute("BEGIN IMMEDIATE")
        do {
            try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
            XCTFail("a write succeeded while another process held the lock")
        } catch let error as StoreError {
            guard case .unavailable = error else { return XCTFail("expected unavailable, got \(error)") }
        }
        try other.execute("ROLLBACK")
        other.close()
        let tenant = try await store.tenants.get(acme)
        XCTAssertNil(tenant)
        let head = try await store.audit.head()
        XCTAssertNil(head)
        try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        let finding = try await AuditChain.verify(store.audit)
        XCTAssertEqual(finding, .intact(count: 1))
        await store.close()
    }

    /// Many concurrent grants (token row + audit record each) all commit, durably and chained,
    /// in fewer transactions than grants. Prints the rate; asserts no time (DESIGN.md).
    func testGroupCommitBatchesConcurrentGrants() async throws {
        let path = databases.newPath()
        let store = try await databases.open(path)
        let grants = 4_000
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<grants {
                group.addTask {
                    try await store.tokens.recordIssued(token("jti-\(index)"), audit: event("token.issued", jti: "jti-\(index)"))
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let batches = store.writer.committedBatches.load(ordering: .relaxed)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("group commit: \(grants) grants in \(elapsed), \(Int(Double(grants) / seconds)) grants/s, \(batches) transactions")
        XCTAssertLessThan(batches, grants)
        let finding = try await AuditChain.verify(store.audit)
        XCTAssertEqual(finding, .intact(count: Int64(grants)))
        let last = try await store.tokens.get(jti: "jti-\(grants - 1)")
        XCTAssertNotNil(last)
        await store.close()
    }
}
