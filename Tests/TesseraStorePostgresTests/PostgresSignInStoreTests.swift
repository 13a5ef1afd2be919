import Foundation
import PostgresNIO
import TesseraCore
import TesseraStore
import XCTest

@testable import TesseraStorePostgres

private let epoch = Date(timeIntervalSince1970: 1_767_225_600)
private let acme = TenantID("acme")!

private func event(_ action: String) -> AuditEvent {
    AuditEvent(ts: epoch, tenant: "acme", actor: .operator("test"), action: action, outcome: .success)
}

private let alice = NormalizedIdentity(
    tenantID: acme, subject: "oidc|idp-1|alice", email: "alice@acme.example", emailVerified: true, name: "Alice",
    groups: ["staff"], roles: ["crm.admin"], idpID: "idp-1")

private func session(_ label: String, userID: String) -> HumanSession {
    HumanSession(
        hash: Secrets.sha256(label), tenantID: acme, userID: userID, identity: alice, createdAt: epoch, lastSeenAt: epoch,
        expiresAt: epoch.addingTimeInterval(3600))
}

/// What only the PostgreSQL sign-in stores promise: no write statement for a made-up cookie, one
/// user however many instances sign the same person in at once, and what they keep in the tables.
final class PostgresSignInStoreTests: XCTestCase {
    private var databases: TestDatabases!

    override func setUp() async throws {
        databases = try TestDatabases()
    }

    override func tearDown() async throws {
        await databases?.removeAll()
    }

    /// A tenant with alice signed in, on a new database.
    private func storeWithAlice() async throws -> (PostgresDatabaseURL, PostgresStore, User) {
        let url = try await databases.newDatabase()
        let store = try await databases.open(url)
        try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        let user = try await store.users.upsert(alice, at: epoch, audit: event("user.signed_in"))
        return (url, store, user)
    }

    /// Made-up cookies, and cookies of dead sessions, are answered by a read: while another
    /// connection holds a lock on `sessions` that any UPDATE would wait for, they are answered at
    /// once, whereas the touch of a live session waits for the lock.
    func testTouchOfAnUnknownCookieRunsNoWriteStatement() async throws {
        let (url, store, user) = try await storeWithAlice()
        try await store.sessions.create(session("live", userID: user.id), audit: event("session.created"))
        try await store.sessions.create(session("orphan", userID: "usr_gone"), audit: event("session.created"))
        let now = epoch.addingTimeInterval(60)
        try await withConnection(to: url) { connection in
            try await connection.query("BEGIN", logger: TestServer.logger)
            try await connection.query("LOCK TABLE sessions IN SHARE MODE", logger: TestServer.logger)
            let answered = try await withTimeout(.seconds(10)) {
                var touched: [HumanSession?] = []
                for index in 0..<20 {
                    touched.append(try await store.sessions.touch(hash: Secrets.sha256("guess \(index)"), now: now, idleTimeout: 600))
                }
                touched.append(try await store.sessions.touch(hash: Secrets.sha256("orphan"), now: now, idleTimeout: 600))
                touched.append(try await store.sessions.touch(hash: Secrets.sha256("live"), now: now, idleTimeout: 1))
                return touched
            }
            XCTAssertEqual(answered?.count, 22, "touches of unknown or dead sessions waited for the lock on sessions")
            XCTAssertEqual(answered?.compactMap { $0 }, [])
            let live = Task { try await store.sessions.touch(hash: Secrets.sha256("live"), now: now, idleTimeout: 600) }
            let early = try await withTimeout(.milliseconds(500)) { try await live.value }
            XCTAssertNil(early, "the touch of a live session did not wait for the lock: the test proves nothing")
            try await connection.query("COMMIT", logger: TestServer.logger)
            let touched = try await live.value
            XCTAssertEqual(touched?.lastSeenAt, now)
        }
        await store.close()
    }

    /// A session whose user row is gone (there is no foreign key from sessions to users) is dead.
    func testSessionOfAMissingUserIsDead() async throws {
        let (_, store, user) = try await storeWithAlice()
        try await store.sessions.create(session("orphan", userID: "usr_gone"), audit: event("session.created"))
        try await store.sessions.create(session("live", userID: user.id), audit: event("session.created"))
        let orphan = try await store.sessions.touch(hash: Secrets.sha256("orphan"), now: epoch.addingTimeInterval(1), idleTimeout: 600)
        XCTAssertNil(orphan)
        let live = try await store.sessions.touch(hash: Secrets.sha256("live"), now: epoch.addingTimeInterval(1), idleTimeout: 600)
        XCTAssertEqual(live?.userID, user.id)
        await store.close()
    }

    /// Idle timeouts that are not a positive number of seconds end every session instead of trapping.
    func testOddIdleTimeoutsDoNotTrap() async throws {
        let (_, store, user) = try await storeWithAlice()
        try await store.sessions.create(session("s", userID: user.id), audit: event("session.created"))
        let now = epoch.addingTimeInterval(1)
        for idle in [TimeInterval.nan, -TimeInterval.infinity, -1, 0] {
            let touched = try await store.sessions.touch(hash: Secrets.sha256("s"), now: now, idleTimeout: idle)
            XCTAssertNil(touched, "idle timeout \(idle)")
        }
        let forever = try await store.sessions.touch(hash: Secrets.sha256("s"), now: now, idleTimeout: .infinity)
        XCTAssertEqual(forever?.lastSeenAt, now)
        await store.close()
    }

    /// Ten first sign-ins of one person through each of two instances at once: one user, every
    /// answer naming it, one audit record per sign-in in one intact chain.
    func testFirstSignInsThroughTwoStoresMakeOneUser() async throws {
        let url = try await databases.newDatabase()
        let first = try await databases.open(url)
        let second = try await databases.open(url)
        try await first.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        let users = try await withThrowingTaskGroup(of: User.self) { group in
            for index in 0..<10 {
                let date = epoch.addingTimeInterval(TimeInterval(index))
                group.addTask { try await first.users.upsert(alice, at: date, audit: event("user.signed_in")) }
                group.addTask { try await second.users.upsert(alice, at: date, audit: event("user.signed_in")) }
            }
            var users: [User] = []
            for try await user in group { users.append(user) }
            return users
        }
        XCTAssertEqual(Set(users.map(\.id)).count, 1)
        try await withConnection(to: url) { connection in
            let count = try await integers(connection, "SELECT count(*) FROM users")
            XCTAssertEqual(count, [1])
        }
        let finding = try await AuditChain.verify(first.audit)
        XCTAssertEqual(finding, .intact(count: 21))
        await first.close()
        await second.close()
    }

    /// Identity and configuration columns hold canonical JSON (sorted keys), one text per value:
    /// the text the SQLite backend stores.
    func testJSONColumnsAreCanonical() async throws {
        let (url, store, user) = try await storeWithAlice()
        try await store.sessions.create(session("s", userID: user.id), audit: event("session.created"))
        let provider = OIDCProviderConfig(
            id: "idp-1", tenantID: acme, issuer: "https://idp.example", clientID: "tessera", clientAuth: .clientSecretBasic,
            preset: .generic, scopes: ["openid", "email"], hostedDomain: nil, useUserinfo: true,
            groupRoles: ["b": "2", "a": "1"], createdAt: epoch)
        try await store.oidcProviders.add(provider, audit: event("idp.added"))
        await store.close()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var columns: [String] = []
        try await withConnection(to: url) { connection in
            let rows = try await connection.query(
                "SELECT (SELECT identity FROM users), (SELECT identity FROM sessions), (SELECT config FROM oidc_providers)",
                logger: TestServer.logger)
            for try await (user, session, config) in rows.decode((String, String, String).self) {
                columns = [user, session, config]
            }
        }
        let identityText = String(decoding: try encoder.encode(alice), as: UTF8.self)
        let configText = String(decoding: try encoder.encode(provider), as: UTF8.self)
        XCTAssertEqual(columns, [identityText, identityText, configText])
    }
}
