import Foundation
import HummingbirdTesting
import Logging
import PostgresNIO
import TesseraCore
import TesseraHTTP
import TesseraOAuth
import TesseraStore
import TesseraTesting
import XCTest

@testable import TesseraStorePostgres

/// Two broker instances (two stores, two revocation feeds, one signing-key folder) serving HTTP
/// on loopback from one PostgreSQL database: what one revokes, the other stops accepting within
/// a second, through the revocation log and `LISTEN`/`NOTIFY`.
///
/// Needs `TESSERA_TEST_POSTGRES_URL` (set by `make test-swift`); without it the test fails when
/// `CI` is set and is skipped otherwise, like the PostgreSQL store tests.
final class MultiInstanceRevocationTests: XCTestCase {
    /// The requirement is a second (the feed polls every 500 ms, and PostgreSQL notifies at once);
    /// the test allows five, since tests do not assert timings on noisy machines (DESIGN.md): what
    /// it proves is that the revocation reaches the other instance through the bus, and it prints
    /// the measured delay.
    static let propagationBound: Duration = .seconds(5)

    private struct NeverInactive: Error, CustomStringConvertible {
        var description: String { "the token was still active after 10 s" }
    }

    private struct Instance {
        let broker: Broker
        let store: PostgresStore
    }

    func testRevocationAtOneInstanceIsInactiveAtTheOtherWithinASecond() async throws {
        let database = try await ThrowawayDatabase.create()
        let folder = try TemporaryFolder()
        var logger = Logger(label: "tessera-multi-instance-test")
        logger.logLevel = .critical
        let settings = BrokerSettings(issuer: BrokerFixture.issuer)
        let keys = KeyDirectory(root: folder.url.appendingPathComponent("Keys"), kek: nil, retention: settings.keyRetention)
        try keys.ensureInitialized(algorithm: .ES256, now: Date())
        var instances: [Instance] = []
        do {
            for _ in 0..<2 {
                let store = try await PostgresStore.open(url: database.url, logger: logger)
                let broker = Broker(
                    settings: settings, store: store, keyRing: try KeyRing(directory: keys, clock: SystemWallClock()), logger: logger)
                try await broker.revocationFeed.refresh()
                instances.append(Instance(broker: broker, store: store))
            }
            try await run(instances, database: database, logger: logger)
        } catch {
            for instance in instances { await instance.store.close() }
            await database.drop()
            folder.remove()
            throw error
        }
        for instance in instances { await instance.store.close() }
        await database.drop()
        folder.remove()
    }

    private func run(_ instances: [Instance], database: ThrowawayDatabase, logger: Logger) async throws {
        let setup = instances[0].broker.store
        let now = Date()
        try await setup.tenants.create(
            Tenant(id: TenantID("acme")!, name: "Acme", createdAt: now),
            audit: AuditEvent(ts: now, tenant: "acme", actor: .system, action: "tenant.created", outcome: .success))
        let service = try await registerClient(setup, introspect: false)
        let gateway = try await registerClient(setup, introspect: true)

        let first = buildApplication(broker: instances[0].broker, host: "127.0.0.1", port: 0, logger: logger)
        let second = buildApplication(broker: instances[1].broker, host: "127.0.0.1", port: 0, logger: logger)
        try await first.test(.live) { a in
            try await second.test(.live) { b in
                func token() async throws -> String {
                    let response = try await a.postForm(
                        "/oauth2/token", [("grant_type", "client_credentials")], basic: (service.id, service.secret))
                    XCTAssertEqual(response.status, .ok)
                    return try XCTUnwrap(response.json["access_token"] as? String)
                }
                func introspect(_ client: any TestClientProtocol, _ token: String) async throws -> Bool? {
                    let response = try await client.postForm("/oauth2/introspect", [("token", token)], basic: (gateway.id, gateway.secret))
                    XCTAssertEqual(response.status, .ok, String(buffer: response.body))
                    return response.json["active"] as? Bool
                }
                /// Introspects at `client` until the token is inactive; the time it took from `start`.
                func timeUntilInactive(
                    at client: any TestClientProtocol, _ token: String, since start: ContinuousClock.Instant
                )
                    async throws -> Duration
                {
                    while try await introspect(client, token) != false {
                        guard ContinuousClock.now - start < .seconds(10) else { throw NeverInactive() }
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    return ContinuousClock.now - start
                }

                // Issued at the first instance, active at both.
                let accessToken = try await token()
                let activeAtA = try await introspect(a, accessToken)
                let activeAtB = try await introspect(b, accessToken)
                XCTAssertEqual(activeAtA, true)
                XCTAssertEqual(activeAtB, true)

                // Revoked at the first: inactive there at once, at the second within the bound.
                let revoke = try await a.postForm("/oauth2/revoke", [("token", accessToken)], basic: (service.id, service.secret))
                XCTAssertEqual(revoke.status, .ok)
                let revokedAt = ContinuousClock.now
                let inactiveAtA = try await introspect(a, accessToken)
                XCTAssertEqual(inactiveAtA, false, "the instance that revoked never answers active after its 200")
                let tokenDelay = try await timeUntilInactive(at: b, accessToken, since: revokedAt)
                XCTAssertLessThanOrEqual(tokenDelay, Self.propagationBound, "revocation seen by the other instance")

                // Disabled by another process (as `tessera clients disable` does, store only): both
                // instances stop accepting the client's live tokens within the bound.
                let second = try await token()
                let operatorStore = try await PostgresStore.open(url: database.url, logger: logger)
                let disabledAt: ContinuousClock.Instant
                do {
                    try await operatorStore.clients.disable(
                        clientID: service.id, at: Date(),
                        audit: AuditEvent(
                            ts: Date(), tenant: "acme", actor: .operator("test"), action: "client.disabled", outcome: .success))
                    disabledAt = ContinuousClock.now
                } catch {
                    await operatorStore.close()
                    throw error
                }
                await operatorStore.close()
                let disableDelayA = try await timeUntilInactive(at: a, second, since: disabledAt)
                let disableDelayB = try await timeUntilInactive(at: b, second, since: disabledAt)
                XCTAssertLessThanOrEqual(disableDelayA, Self.propagationBound, "client disabled elsewhere, seen by the first instance")
                XCTAssertLessThanOrEqual(disableDelayB, Self.propagationBound, "client disabled elsewhere, seen by the second instance")
                print(
                    "revocation propagation: token revoked at A, inactive at B after \(tokenDelay); "
                        + "client disabled by another process, inactive at A after \(disableDelayA), at B after \(disableDelayB)")
            }
        }
    }

    private func registerClient(_ store: any TesseraStore, introspect: Bool) async throws -> (id: String, secret: String) {
        let secret = Secrets.randomToken(prefix: "tsec_")
        let client = OAuthClient(
            clientID: "tcl_" + Secrets.base64URL(Secrets.randomBytes(12)), tenantID: TenantID("acme")!, name: "test client",
            authMethod: .clientSecretBasic, secretHash: Secrets.sha256(secret), jwks: nil,
            scopes: try ScopeSet(parsing: "crm:contacts.read"), grantTypes: [.clientCredentials], dpop: .optional,
            mayIntrospect: introspect, createdAt: Date())
        try await store.clients.create(
            client,
            audit: AuditEvent(
                ts: Date(), tenant: "acme", actor: .system, clientID: client.clientID, action: "client.created", outcome: .success))
        return (client.clientID, secret)
    }
}

/// An empty database on the test server, dropped by `drop()`.
private struct ThrowawayDatabase {
    static let variable = "TESSERA_TEST_POSTGRES_URL"

    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "\(ThrowawayDatabase.variable) is not set, but CI is: the multi-instance tests must run. Run them through "
                + "`make test-swift` (scripts/pg-test-cluster.sh run swift test), which starts a throwaway cluster."
        }
    }

    let server: PostgresDatabaseURL
    let url: PostgresDatabaseURL

    static func create() async throws -> ThrowawayDatabase {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment[variable], !text.isEmpty else {
            if let ci = environment["CI"], !ci.isEmpty, ci != "0", ci.lowercased() != "false" { throw Missing() }
            throw XCTSkip("\(variable) is not set: multi-instance tests skipped (run `make test-swift` to run them)")
        }
        let server = try PostgresDatabaseURL(parsing: text)
        // Lowercase hex only: safe to splice into the statement, which cannot bind an identifier.
        let name = "tessera_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await admin(server, "CREATE DATABASE \(name)")
        var url = server
        url.database = name
        return ThrowawayDatabase(server: server, url: url)
    }

    func drop() async {
        try? await Self.admin(server, "DROP DATABASE IF EXISTS \(url.database) WITH (FORCE)")
    }

    private static func admin(_ server: PostgresDatabaseURL, _ sql: String) async throws {
        var logger = Logger(label: "tessera-multi-instance-test")
        logger.logLevel = .critical
        let connection = try await PostgresConnection.connect(
            configuration: try PostgresStore.connectionConfiguration(server), id: 1, logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
