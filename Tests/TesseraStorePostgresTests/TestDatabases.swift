import Foundation
import Logging
import PostgresNIO
import TesseraStore
import XCTest

@testable import TesseraStorePostgres

/// The PostgreSQL server of the test run, named by `TESSERA_TEST_POSTGRES_URL` (set by
/// `scripts/pg-test-cluster.sh run`, which `make test-swift` uses). Without it the tests fail when
/// `CI` is set and are skipped otherwise.
enum TestServer {
    static let variable = "TESSERA_TEST_POSTGRES_URL"

    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "\(TestServer.variable) is not set, but CI is: the PostgreSQL store tests must run. Run them through "
                + "`make test-swift` (scripts/pg-test-cluster.sh run swift test), which starts a throwaway cluster."
        }
    }

    /// The server's URL (of its maintenance database), or a failure or skip when there is none.
    static func url() throws -> PostgresDatabaseURL {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment[variable], !text.isEmpty else {
            if let ci = environment["CI"], !ci.isEmpty, ci != "0", ci.lowercased() != "false" { throw Missing() }
            throw XCTSkip("\(variable) is not set: PostgreSQL store tests skipped (run `make test-swift` to run them)")
        }
        return try PostgresDatabaseURL(parsing: text)
    }

    static let logger: Logger = {
        var logger = Logger(label: "tessera.test.postgres")
        logger.logLevel = .warning
        return logger
    }()
}

/// Empty databases for one test, each created on demand with a random name and dropped afterwards.
final class TestDatabases: @unchecked Sendable {
    // `@unchecked`: `created` is guarded by `lock`.
    let server: PostgresDatabaseURL
    private let lock = NSLock()
    private var created: [String] = []

    init() throws {
        server = try TestServer.url()
    }

    /// The URL of a new, empty database.
    func newDatabase(poolSize: Int = PostgresDatabaseURL.defaultPoolSize) async throws -> PostgresDatabaseURL {
        // Lowercase hex only: safe to splice into the statement, which cannot bind an identifier.
        let name = "tessera_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await admin { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: TestServer.logger)
        }
        lock.withLock { created.append(name) }
        var url = server
        url.database = name
        url.poolSize = poolSize
        return url
    }

    func open(_ url: PostgresDatabaseURL) async throws -> PostgresStore {
        try await PostgresStore.open(url: url, logger: TestServer.logger)
    }

    /// Drops every database this instance created (forcing off any connection left open).
    func removeAll() async {
        let names = lock.withLock {
            defer { created.removeAll() }
            return created
        }
        for name in names {
            try? await admin { connection in
                try await connection.query(
                    PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: TestServer.logger)
            }
        }
    }

    /// Runs `body` on a connection to the server's maintenance database.
    func admin(_ body: (PostgresConnection) async throws -> Void) async throws {
        try await withConnection(to: server, body)
    }
}

/// Raw SQL on a database, from outside the store, as another program (or an attacker with access
/// to the database) would do it.
func withConnection(to url: PostgresDatabaseURL, _ body: (PostgresConnection) async throws -> Void) async throws {
    let connection = try await PostgresConnection.connect(
        configuration: try PostgresStore.connectionConfiguration(url), id: 1, logger: TestServer.logger)
    do {
        try await body(connection)
    } catch {
        try? await connection.close()
        throw error
    }
    try await connection.close()
}

/// Every row of `sql` as Int64s of its first column.
func integers(_ connection: PostgresConnection, _ sql: String) async throws -> [Int64] {
    var values: [Int64] = []
    for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: TestServer.logger).decode(Int64.self) {
        values.append(value)
    }
    return values
}
