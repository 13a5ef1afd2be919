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

private let alice = NormalizedIdentity(
    tenantID: acme, subject: "oidc|idp-1|alice", email: "alice@acme.example", emailVerified: true, name: "Alice",
    groups: ["staff"], roles: ["crm.admin"], idpID: "idp-1")

/// What only the SQLite sign-in stores promise: how they use the writer and what they keep in the file.
final class SQLiteSessionStoreTests: XCTestCase {
    private var databases: TemporaryDatabases!

    override func setUpWithError() throws {
        databases = try TemporaryDatabases()
    }

    override func tearDown() {
        databases?.remove()
    }

    private func session(_ label: String, userID: String) -> HumanSession {
        HumanSession(
            hash: Secrets.sha256(label), tenantID: acme, userID: userID, identity: alice, createdAt: epoch, lastSeenAt: epoch,
            expiresAt: epoch.addingTimeInterval(3600))
    }

    /// Made-up cookies are answered from a reader: they never queue a unit for the single writer.
    func testTouchOfAnUnknownCookieQueuesNoWrite() async throws {
        let store = try await databases.open(databases.newPath())
        try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        let before = store.writer.committedUnits.load(ordering: .relaxed)
        for index in 0..<20 {
            let touched = try await store.sessions.touch(hash: Secrets.sha256("guess \(index)"), now: epoch, idleTimeout: 600)
            XCTAssertNil(touched)
        }
        XCTAssertEqual(store.writer.committedUnits.load(ordering: .relaxed), before)
        await store.close()
    }

    /// A session whose user row is gone (there is no foreign key from sessions to users) is dead.
    func testSessionOfAMissingUserIsDead() async throws {
        let store = try await databases.open(databases.newPath())
        try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        let user = try await store.users.upsert(alice, at: epoch, audit: event("user.signed_in"))
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
        let store = try await databases.open(databases.newPath())
        try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        let user = try await store.users.upsert(alice, at: epoch, audit: event("user.signed_in"))
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

    /// Identity and configuration columns hold canonical JSON (sorted keys), one text per value.
    func testJSONColumnsAreCanonical() async throws {
        let path = databases.newPath()
        let store = try await databases.open(path)
        try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        let user = try await store.users.upsert(alice, at: epoch, audit: event("user.signed_in"))
        try await store.sessions.create(session("s", userID: user.id), audit: event("session.created"))
        let provider = OIDCProviderConfig(
            id: "idp-1", tenantID: acme, issuer: "https://idp.example", clientID: "tessera", clientAuth: .clientSecretBasic,
            preset: .generic, scopes: ["openid", "email"], hostedDomain: nil, useUserinfo: true,
            groupRoles: ["b": "2", "a": "1"], createdAt: epoch)
        try await store.oidcProviders.add(provider, audit: event("idp.added"))
        await store.close()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let columns = try withRawConnection(path) { connection in
            try connection.queryOne(
                """
                SELECT (SELECT identity FROM users), (SELECT identity FROM sessions), (SELECT config FROM oidc_providers)
                """
            ) { [$0.text(0), $0.text(1), $0.text(2)] }
        }
        let identityText = String(decoding: try encoder.encode(alice), as: UTF8.self)
        let configText = String(decoding: try encoder.encode(provider), as: UTF8.self)
        XCTAssertEqual(columns, [identityText, identityText, configText])
    }
}
