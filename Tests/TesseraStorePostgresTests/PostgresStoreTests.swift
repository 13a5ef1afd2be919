import Foundation
import Logging
import PostgresNIO
import Synchronization
import TesseraCore
import TesseraStore
import XCTest

@testable import TesseraStorePostgres

private let epoch = Date(timeIntervalSince1970: 1_767_225_600)
private let acme = TenantID("acme")!

private func event(_ action: String, jti: String? = nil) -> AuditEvent {
    AuditEvent(ts: epoch, tenant: "acme", actor: .operator("test"), action: action, outcome: .success, jti: jti)
}

private func token(_ jti: String, parent: String? = nil) -> IssuedToken {
    IssuedToken(
        jti: jti, tenantID: acme, clientID: "svc", subject: "svc", scopes: ["crm:contacts.read"], issuedAt: epoch,
        expiresAt: epoch.addingTimeInterval(600), parentJTI: parent)
}

/// What only the PostgreSQL backend promises: migrations that several instances may run at once,
/// one audit chain and one-winner races across instances (two pools stand for two processes),
/// the append-only log, and errors that never carry the password.
final class PostgresStoreTests: XCTestCase {
    private var databases: TestDatabases!

    override func setUp() async throws {
        databases = try TestDatabases()
    }

    override func tearDown() async throws {
        await databases?.removeAll()
    }

    /// Two instances, each with its own pool, append 200 records each at the same time: the log is
    /// one chain of 400 that verifies, with every sequence number handed out once.
    func testTwoStoresAppendingConcurrentlyFormOneChain() async throws {
        let url = try await databases.newDatabase()
        let first = try await databases.open(url)
        let second = try await databases.open(url)
        let records = try await withThrowingTaskGroup(of: AuditRecord.self) { group in
            for index in 0..<200 {
                group.addTask { try await first.audit.append(event("token.introspected", jti: "first-\(index)")) }
                group.addTask { try await second.audit.append(event("token.introspected", jti: "second-\(index)")) }
            }
            var records: [AuditRecord] = []
            for try await record in group { records.append(record) }
            return records
        }
        XCTAssertEqual(records.map(\.seq).sorted(), Array(1...400))
        for store in [first, second] {
            let finding = try await AuditChain.verify(store.audit, pageSize: 64)
            XCTAssertEqual(finding, .intact(count: 400))
        }
        let stored = try await first.audit.records(after: 0, limit: 1_000)
        XCTAssertEqual(Set(stored), Set(records))
        await first.close()
        await second.close()
    }

    /// Several instances starting at once on an empty database: all open, the schema is applied
    /// once, and all of them work on it.
    func testConcurrentMigrationsFromSeveralStoresSucceed() async throws {
        let url = try await databases.newDatabase()
        let databases = self.databases!
        let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
            for _ in 0..<4 { group.addTask { try await databases.open(url) } }
            var stores: [PostgresStore] = []
            for try await store in group { stores.append(store) }
            return stores
        }
        XCTAssertEqual(stores.count, 4)
        try await withConnection(to: url) { connection in
            let versions = try await integers(connection, "SELECT version FROM schema_migrations ORDER BY version")
            XCTAssertEqual(versions, Migrations.all.map(\.version))
        }
        for (index, store) in stores.enumerated() {
            try await store.ping()
            try await store.audit.append(event("key.rotated", jti: "\(index)"))
        }
        let finding = try await AuditChain.verify(stores[0].audit)
        XCTAssertEqual(finding, .intact(count: 4))
        for store in stores { await store.close() }
    }

    func testMigrationsAreIdempotentOnReopen() async throws {
        let url = try await databases.newDatabase()
        let first = try await databases.open(url)
        try await first.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        await first.close()
        for _ in 0..<2 {
            let again = try await databases.open(url)
            let tenant = try await again.tenants.get(acme)
            XCTAssertEqual(tenant?.name, "Acme")
            await again.close()
        }
        try await withConnection(to: url) { connection in
            let versions = try await integers(connection, "SELECT version FROM schema_migrations ORDER BY version")
            XCTAssertEqual(versions, Migrations.all.map(\.version))
        }
    }

    /// A database left at version 1 by an older build is brought to the latest version on open,
    /// keeping its data and its chain.
    func testVersionOneDatabaseIsMigratedKeepingItsData() async throws {
        let url = try await databases.newDatabase()
        let first = try await databases.open(url)
        try await first.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        try await first.tokens.recordIssued(token("jti-1"), audit: event("token.issued", jti: "jti-1"))
        await first.close()
        try await withConnection(to: url) { connection in
            for statement in [
                "DROP TABLE saml_providers", "DROP TABLE revocation_log", "DROP FUNCTION revocation_log_is_append_only()",
                "DROP TABLE policies",
                "DROP TABLE workload_issuers", "DROP TABLE refresh_families", "DROP TABLE refresh_tokens",
                "DROP TABLE users", "DROP TABLE sessions", "DROP TABLE oidc_providers", "DELETE FROM schema_migrations WHERE version > 1",
            ] {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: TestServer.logger)
            }
        }
        let upgraded = try await databases.open(url)
        let tenant = try await upgraded.tenants.get(acme)
        XCTAssertEqual(tenant?.name, "Acme")
        let stored = try await upgraded.tokens.get(jti: "jti-1")
        XCTAssertEqual(stored, token("jti-1"))
        let policy = try await upgraded.policies.put(tenant: acme, document: "{}", at: epoch, audit: event("policy.changed"))
        XCTAssertEqual(policy.version, 1)
        let finding = try await AuditChain.verify(upgraded.audit)
        XCTAssertEqual(finding, .intact(count: 3))
        await upgraded.close()
    }

    func testDatabaseOfANewerSchemaIsRefused() async throws {
        let url = try await databases.newDatabase()
        try await databases.open(url).close()
        let newer = Migrations.latestVersion + 1
        try await withConnection(to: url) { connection in
            try await connection.query(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (\(newer), 0)", logger: TestServer.logger)
        }
        do {
            _ = try await databases.open(url)
            XCTFail("a database of a newer schema was opened")
        } catch let error as PostgresStoreError {
            XCTAssertEqual(error, .schemaTooNew(found: newer, supported: Migrations.latestVersion))
            XCTAssertTrue(error.description.contains("upgrade tessera"), error.description)
        }
    }

    /// The log refuses UPDATE, DELETE and TRUNCATE while its triggers stand; when someone who owns
    /// the tables drops them and edits a record, `AuditChain.verify` names the record.
    func testAuditLogIsAppendOnlyAndTamperingIsDetected() async throws {
        let url = try await databases.newDatabase()
        let store = try await databases.open(url)
        for index in 1...5 { try await store.audit.append(event("token.issued", jti: "jti-\(index)")) }
        try await withConnection(to: url) { connection in
            for statement in ["UPDATE audit SET body = '\\x00' WHERE seq = 2", "DELETE FROM audit WHERE seq = 5", "TRUNCATE audit"] {
                do {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: TestServer.logger)
                    XCTFail("the audit log accepted: \(statement)")
                } catch let error as PSQLError {
                    XCTAssertEqual(error.serverInfo?[.message], "the audit log is append-only", statement)
                }
            }
        }
        let intact = try await AuditChain.verify(store.audit)
        XCTAssertEqual(intact, .intact(count: 5))
        try await withConnection(to: url) { connection in
            try await connection.query("DROP TRIGGER audit_is_append_only ON audit", logger: TestServer.logger)
            try await connection.query(
                "UPDATE audit SET body = convert_to(replace(convert_from(body, 'UTF8'), 'jti-3', 'jti-X'), 'UTF8') WHERE seq = 3",
                logger: TestServer.logger)
        }
        let finding = try await AuditChain.verify(store.audit)
        XCTAssertEqual(finding, .broken(seq: 3, reason: "content does not match its hash: the record was changed"))
        await store.close()
    }

    /// A record written around the store (the head not moved with it) makes the next append fail
    /// with `.conflict` and write nothing, rather than fork the chain.
    func testRecordWrittenAroundTheStoreStopsAppends() async throws {
        let url = try await databases.newDatabase()
        let store = try await databases.open(url)
        let first = try await store.audit.append(event("key.rotated"))
        try await withConnection(to: url) { connection in
            try await connection.query(
                "INSERT INTO audit (seq, body, prev_hash, hash) VALUES (2, '\\x7b7d', \(first.hash), \(first.hash))",
                logger: TestServer.logger)
        }
        do {
            try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
            XCTFail("an append onto a stale head succeeded")
        } catch StoreError.conflict(let reason) {
            XCTAssertTrue(reason.contains("record 2"), reason)
        }
        let tenant = try await store.tenants.get(acme)
        XCTAssertNil(tenant, "the mutation of a failed append was kept")
        await store.close()
    }

    /// Eight rotations of one refresh token through two instances: one `.rotated`, seven
    /// `.reused`, the family revoked with every token, one intact chain.
    func testRefreshRotationsThroughTwoStoresHaveOneWinner() async throws {
        let url = try await databases.newDatabase()
        let first = try await databases.open(url)
        let second = try await databases.open(url)
        let family = RefreshFamily(
            familyID: "family-1", tenantID: acme, clientID: "svc", subject: "svc", subjectType: "service",
            scopes: try ScopeSet(parsing: "crm:contacts.read"), audience: ["crm"], actClaim: nil, jkt: nil, policyFacts: "{}",
            parentJTI: nil, issuedAt: epoch, expiresAt: epoch.addingTimeInterval(3600))
        func accessToken(_ jti: String) -> IssuedToken {
            IssuedToken(
                jti: jti, tenantID: acme, clientID: "svc", subject: "svc", scopes: ["crm:contacts.read"], issuedAt: epoch,
                expiresAt: epoch.addingTimeInterval(300), parentJTI: "family-1")
        }
        let presented = Secrets.sha256("refresh-0")
        try await first.refreshTokens.recordIssued(
            accessToken("at-0"), family: family, refresh: RefreshTokenRecord(hash: presented, familyID: "family-1", issuedAt: epoch),
            audit: event("token.exchanged"))
        let outcomes = try await withThrowingTaskGroup(of: (Int, RefreshRotation).self) { group in
            for index in 0..<8 {
                let store = index.isMultiple(of: 2) ? first : second
                group.addTask {
                    let outcome = try await store.refreshTokens.rotate(
                        presented: presented,
                        next: RefreshTokenRecord(hash: Secrets.sha256("next-\(index)"), familyID: "family-1", issuedAt: epoch),
                        token: accessToken("racer-\(index)"), at: epoch.addingTimeInterval(60), audit: event("token.refreshed"),
                        reuseAudit: event("token.refresh_reused"))
                    return (index, outcome)
                }
            }
            var outcomes: [(Int, RefreshRotation)] = []
            for try await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let winners = outcomes.filter { $0.1 == .rotated }.map(\.0)
        XCTAssertEqual(winners.count, 1)
        var revoked: [String] = []
        for (_, outcome) in outcomes where outcome != .rotated {
            guard case .reused(let jtis) = outcome else { return XCTFail("unexpected outcome \(outcome)") }
            revoked += jtis
        }
        XCTAssertEqual(revoked.sorted(), ["at-0", "family-1", "racer-\(winners.first ?? -1)"].sorted())
        let finding = try await AuditChain.verify(second.audit)
        XCTAssertEqual(finding, .intact(count: 9))
        await first.close()
        await second.close()
    }

    /// One id consumed 64 times through two instances: exactly one first use.
    func testReplayThroughTwoStoresHasOneWinner() async throws {
        let url = try await databases.newDatabase()
        let first = try await databases.open(url)
        let second = try await databases.open(url)
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<64 {
                let store = index.isMultiple(of: 2) ? first : second
                group.addTask {
                    try await store.replay.consume(
                        namespace: "dpop", id: "raced", expiresAt: epoch.addingTimeInterval(60), now: epoch)
                }
            }
            var wins = 0
            for try await won in group where won { wins += 1 }
            return wins
        }
        XCTAssertEqual(wins, 1)
        await first.close()
        await second.close()
    }

    /// One instance revokes a lineage while another records children under its nodes: every child
    /// ends refused (`.conflict`) or revoked — never live under a revoked parent.
    func testChildrenRecordedDuringARevocationNeverOutliveIt() async throws {
        let url = try await databases.newDatabase()
        let revoker = try await databases.open(url)
        let issuer = try await databases.open(url)
        for round in 0..<5 {
            let nodes = ["root-\(round)", "a-\(round)", "b-\(round)"]
            try await revoker.tokens.recordIssued(token(nodes[0]), audit: event("token.issued"))
            try await revoker.tokens.recordIssued(token(nodes[1], parent: nodes[0]), audit: event("token.issued"))
            try await revoker.tokens.recordIssued(token(nodes[2], parent: nodes[1]), audit: event("token.issued"))
            let recorded = try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    _ = try await revoker.tokens.revoke(jti: nodes[0], tenant: acme, at: epoch, audit: event("token.revoked"))
                    return nil
                }
                for index in 0..<24 {
                    group.addTask {
                        let jti = "child-\(round)-\(index)"
                        do {
                            try await issuer.tokens.recordIssued(token(jti, parent: nodes[index % 3]), audit: event("token.issued"))
                            return jti
                        } catch StoreError.conflict {
                            return nil
                        }
                    }
                }
                var recorded: [String] = []
                for try await jti in group { if let jti { recorded.append(jti) } }
                return recorded
            }
            for jti in nodes + recorded {
                let revoked = try await issuer.tokens.isRevoked(jti: jti)
                XCTAssertTrue(revoked, "\(jti) is live after its ancestor \(nodes[0]) was revoked")
            }
        }
        let finding = try await AuditChain.verify(issuer.audit)
        guard case .intact = finding else { return XCTFail("\(finding)") }
        await revoker.close()
        await issuer.close()
    }

    /// Two instances revoke overlapping lineages (a root, and a node under it) at the same time,
    /// which can deadlock in the database: the store runs the losing transaction again, so both
    /// calls answer, everything ends revoked, and each revocation that happened is audited once.
    func testOverlappingRevocationsThroughTwoStoresBothComplete() async throws {
        let url = try await databases.newDatabase()
        let first = try await databases.open(url)
        let second = try await databases.open(url)
        var expectedRecords: Int64 = 0
        for round in 0..<5 {
            var lineage = [("root-\(round)", nil as String?), ("a-\(round)", "root-\(round)"), ("b-\(round)", "root-\(round)")]
            for index in 0..<12 {
                lineage.append(("a\(index)-\(round)", "a-\(round)"))
                lineage.append(("b\(index)-\(round)", "b-\(round)"))
            }
            // Leaves first (a parent need not exist yet): the rows then lie in the table in the
            // opposite order of the lineage, so the two updates lock them in opposite orders.
            for (jti, parent) in lineage.reversed() {
                try await first.tokens.recordIssued(token(jti, parent: parent), audit: event("token.issued"))
            }
            expectedRecords += Int64(lineage.count)
            async let fromRoot = first.tokens.revoke(jti: "root-\(round)", tenant: acme, at: epoch, audit: event("token.revoked"))
            async let fromMiddle = second.tokens.revoke(jti: "a-\(round)", tenant: acme, at: epoch, audit: event("token.revoked"))
            let outcomes = try await [fromRoot, fromMiddle]
            for outcome in outcomes {
                switch outcome {
                case .revoked: expectedRecords += 1
                case .alreadyRevoked: break
                case .unknown: XCTFail("a revocation answered unknown")
                }
            }
            for (jti, _) in lineage {
                let revoked = try await second.tokens.isRevoked(jti: jti)
                XCTAssertTrue(revoked, "\(jti) is live")
            }
        }
        let finding = try await AuditChain.verify(first.audit)
        XCTAssertEqual(finding, .intact(count: expectedRecords))
        await first.close()
        await second.close()
    }

    func testCallsAfterCloseAreUnavailable() async throws {
        let store = try await databases.open(try await databases.newDatabase())
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

    /// Calls under way when `close` begins finish first, and what they acknowledged is stored.
    func testCloseWaitsForCallsUnderWay() async throws {
        let url = try await databases.newDatabase()
        let store = try await databases.open(url)
        let acknowledged = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<50 {
                group.addTask {
                    do {
                        try await store.audit.append(event("key.rotated", jti: "\(index)"))
                        return true
                    } catch StoreError.unavailable {
                        return false
                    }
                }
            }
            group.addTask {
                await store.close()
                return false
            }
            var acknowledged = 0
            for try await done in group where done { acknowledged += 1 }
            return acknowledged
        }
        let reopened = try await databases.open(url)
        let finding = try await AuditChain.verify(reopened.audit)
        XCTAssertEqual(finding, .intact(count: Int64(acknowledged)))
        await reopened.close()
    }

    func testWrongPasswordIsRefusedWithoutRepeatingIt() async throws {
        var url = try await databases.newDatabase()
        let password = "not-the-password-\(UUID().uuidString)"
        url.password = password
        let logs = CapturedLogs()
        do {
            _ = try await PostgresStore.open(url: url, logger: logs.logger)
            XCTFail("a wrong password was accepted")
        } catch let error as PostgresStoreError {
            XCTAssertTrue(error.description.contains("refused the login"), error.description)
            XCTAssertFalse(error.description.contains(password), error.description)
            XCTAssertFalse(String(reflecting: error).contains(password))
        }
        XCTAssertFalse(logs.text.contains(password))
    }

    func testUnreachableServerIsReportedAtOpen() async throws {
        var url = try await databases.newDatabase()
        url.endpoint = .tcp(host: "127.0.0.1", port: try unusedPort())
        do {
            _ = try await databases.open(url)
            XCTFail("a store opened on a port nobody listens on")
        } catch let error as PostgresStoreError {
            guard case .cannotOpen = error else { return XCTFail("expected cannotOpen, got \(error)") }
        }
    }

    /// A server that takes the TCP connection but never answers the login cannot hold `open`
    /// forever: it reports `cannotOpen` once the handshake timeout passes.
    func testSilentServerIsReportedAtOpen() async throws {
        var url = try await databases.newDatabase()
        let silent = try SilentListener()
        defer { silent.close() }
        url.endpoint = .tcp(host: "127.0.0.1", port: silent.port)
        do {
            _ = try await PostgresStore.open(url: url, logger: TestServer.logger, handshakeTimeout: .milliseconds(500))
            XCTFail("a store opened on a server that never answers")
        } catch let error as PostgresStoreError {
            XCTAssertTrue(error.description.contains("did not complete the login"), error.description)
        }
    }

    /// The store's own log lines, at the most verbose level, never carry the password.
    func testPasswordNeverReachesTheLog() async throws {
        let url = try await databases.newDatabase()
        let password = try XCTUnwrap(url.password)
        let logs = CapturedLogs()
        let store = try await PostgresStore.open(url: url, logger: logs.logger)
        try await store.ping()
        try await store.audit.append(event("key.rotated"))
        await store.close()
        XCTAssertTrue(logs.text.contains("postgres store opened"), logs.text)
        XCTAssertFalse(logs.text.contains(password))
    }

    /// The store reached through the cluster's Unix socket works like through TCP.
    func testUnixSocketEndpoint() async throws {
        var url = try await databases.newDatabase()
        let folder = try await socketFolder(url)
        guard case .tcp(_, let port) = url.endpoint else { return XCTFail("the test server is not on TCP") }
        url.endpoint = .unixSocket(path: "\(folder)/.s.PGSQL.\(port)")
        let store = try await databases.open(url)
        try await store.ping()
        try await store.tenants.create(Tenant(id: acme, name: "Acme", createdAt: epoch), audit: event("tenant.created"))
        let tenants = try await store.tenants.list()
        XCTAssertEqual(tenants.map(\.id), [acme])
        await store.close()
    }

    private func socketFolder(_ url: PostgresDatabaseURL) async throws -> String {
        var folder = ""
        try await withConnection(to: url) { connection in
            for try await text in try await connection.query("SHOW unix_socket_directories", logger: TestServer.logger).decode(
                String.self)
            {
                folder = String(text.split(separator: ",").first ?? "").trimmingCharacters(in: .whitespaces)
            }
        }
        guard !folder.isEmpty else { throw XCTSkip("the test server has no Unix socket") }
        return folder
    }
}

/// A socket listening on 127.0.0.1 that never accepts: the kernel completes TCP connections to
/// it, and nothing ever answers on them.
struct SilentListener {
    let socket: Int32
    let port: Int

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(socket, generic, length) == 0 && listen(socket, 8) == 0 && getsockname(socket, generic, &length) == 0
            }
        }
        guard listening else {
            Glibc.close(socket)
            throw XCTSkip("cannot listen on 127.0.0.1")
        }
        self.socket = socket
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(socket) }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
func unusedPort() throws -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
            bind(socket, generic, length) == 0 && getsockname(socket, generic, &length) == 0
        }
    }
    guard bound else { throw XCTSkip("cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Log lines of every level, kept as text.
final class CapturedLogs: Sendable {
    private let lines = Mutex<[String]>([])

    var logger: Logger {
        var logger = Logger(label: "tessera.test.captured") { _ in CapturingHandler(sink: self) }
        logger.logLevel = .trace
        return logger
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    fileprivate func append(_ line: String) { lines.withLock { $0.append(line) } }
}

private struct CapturingHandler: LogHandler {
    let sink: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        sink.append("\(event.level) \(event.message) \(merged)")
    }
}
