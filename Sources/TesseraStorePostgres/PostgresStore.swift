import Foundation
public import Logging
import PostgresNIO
import Synchronization
public import TesseraStore

/// The shared store for several broker instances: one PostgreSQL database, reached through a
/// pool of connections (`PostgresClient`).
///
/// Every mutation runs in one `READ COMMITTED` transaction together with its audit record. The
/// audit chain stays one chain however many processes write: an append locks the head row
/// (`SELECT … FROM audit_head … FOR UPDATE`) inside the mutation's transaction and computes the
/// next `seq` and `prev_hash` under that lock, so appends are serialised by the database, not by
/// any one process. Rows other writers may race for are locked before they are read (the parent
/// of a new token, the root of a revocation, a refresh family), so each decision is taken on
/// committed, current data — the guarantees of the SQLite backend's single writer, per row.
public final class PostgresStore: TesseraStore {
    /// How often a transaction runs again after a deadlock or serialization failure, both of which
    /// roll everything back (two revocations of overlapping lineages can deadlock, say).
    static let maximumAttempts = 5
    /// How long `ping` waits for an answer before reporting the store unavailable.
    static let pingTimeout: Duration = .seconds(2)
    /// Every statement and transaction answers within this, or fails as unavailable (503).
    static let operationTimeout: Duration = .seconds(5)

    /// Where the store is (its description hides the password).
    public let url: PostgresDatabaseURL
    let client: PostgresClient
    let logger: Logger
    /// The logger handed to PostgresNIO: never below `notice`, so no statement text reaches the log.
    let driverLogger: Logger
    private let runTask: Task<Void, Never>
    private let gate = OperationGate()
    /// Connections that `LISTEN` (outside the pool and the gate: they stay open until their
    /// listener stops), closed by `close()` so that no listener outlives the store.
    private let listeners = Mutex<(closed: Bool, nextID: Int, open: [ObjectIdentifier: PostgresConnection])>(
        (closed: false, nextID: 1, open: [:]))

    private init(url: PostgresDatabaseURL, client: PostgresClient, logger: Logger, driverLogger: Logger) {
        self.url = url
        self.client = client
        self.logger = logger
        self.driverLogger = driverLogger
        // Started immediately where the platform allows, so `run()` has begun before the first
        // query leases a connection (PostgresNIO warns about a lease before `run()` otherwise).
        if #available(macOS 26.0, *) {
            runTask = Task.immediate { await client.run() }
        } else {
            runTask = Task { await client.run() }
        }
    }

    deinit {
        runTask.cancel()
    }

    /// Parses `text` (see `PostgresDatabaseURL`), connects, migrates and opens the pool.
    public static func open(
        url text: String, defaultPoolSize: Int = PostgresDatabaseURL.defaultPoolSize,
        logger: Logger = Logger(label: "tessera.store.postgres")
    ) async throws -> PostgresStore {
        try await open(url: PostgresDatabaseURL(parsing: text, defaultPoolSize: defaultPoolSize), logger: logger)
    }

    /// Connects once to migrate (failing fast when the server is unreachable or refuses the
    /// login), then opens the pool. Throws `PostgresStoreError`.
    public static func open(
        url: PostgresDatabaseURL, logger: Logger = Logger(label: "tessera.store.postgres")
    ) async throws -> PostgresStore {
        try await open(url: url, logger: logger, handshakeTimeout: .seconds(15))
    }

    /// `handshakeTimeout` bounds the connection and login (a server that accepts the TCP
    /// connection but never answers would hold `open` forever); never the migration itself, which
    /// may rightly wait for another instance's.
    static func open(url: PostgresDatabaseURL, logger: Logger, handshakeTimeout: Duration) async throws -> PostgresStore {
        var driverLogger = logger
        driverLogger.logLevel = max(logger.logLevel, .notice)
        let connection: PostgresConnection
        do {
            let configuration = try connectionConfiguration(url)
            let connected = try await withTimeout(handshakeTimeout) { [driverLogger] in
                try await PostgresConnection.connect(configuration: configuration, id: 0, logger: driverLogger)
            }
            guard let connected else {
                throw PostgresStoreError.cannotOpen(
                    database: url.description, reason: "the server did not complete the login within \(handshakeTimeout)")
            }
            connection = connected
        } catch let error as PostgresStoreError {
            throw error
        } catch {
            throw PostgresStoreError.cannotOpen(database: url.description, reason: openFailure(error))
        }
        do {
            try await Migrations.apply(on: connection, logger: logger, driverLogger: driverLogger)
        } catch let error as PostgresStoreError {
            try? await connection.close()
            throw error
        } catch {
            try? await connection.close()
            throw PostgresStoreError.cannotOpen(database: url.description, reason: "migration failed: \(openFailure(error))")
        }
        try? await connection.close()
        let client = PostgresClient(configuration: try clientConfiguration(url), backgroundLogger: driverLogger)
        logger.info(
            "postgres store opened",
            metadata: ["database": "\(url)", "schema.version": "\(Migrations.latestVersion)", "pool.size": "\(url.poolSize)"])
        return PostgresStore(url: url, client: client, logger: logger, driverLogger: driverLogger)
    }

    public var tenants: any TenantStore { PostgresTenantStore(store: self) }
    public var clients: any ClientStore { PostgresClientStore(store: self) }
    public var tokens: any TokenStore { PostgresTokenStore(store: self) }
    public var replay: any ReplayStore { PostgresReplayStore(store: self) }
    public var audit: any AuditStore { PostgresAuditStore(store: self) }
    public var policies: any PolicyStore { PostgresPolicyStore(store: self) }
    public var workloadIssuers: any WorkloadIssuerStore { PostgresWorkloadIssuerStore(store: self) }
    public var refreshTokens: any RefreshTokenStore { PostgresRefreshTokenStore(store: self) }
    public var users: any UserStore { PostgresUserStore(store: self) }
    public var sessions: any SessionStore { PostgresSessionStore(store: self) }
    public var oidcProviders: any OIDCProviderStore { PostgresOIDCProviderStore(store: self) }
    public var samlProviders: any SAMLProviderStore { PostgresSAMLProviderStore(store: self) }
    public var revocations: any RevocationLog { PostgresRevocationLog(store: self) }
    public var revocationNotifications: (any RevocationNotifications)? { PostgresRevocationListener(store: self) }

    /// `SELECT 1` through the pool, answered within `pingTimeout` or reported unavailable: the
    /// pool itself would keep a request waiting while it retries a server that is down.
    public func ping() async throws {
        try gate.enter()
        defer { gate.leave() }
        let client = client
        let driverLogger = driverLogger
        let answered = try await withTimeout(Self.pingTimeout) {
            do {
                _ = try await client.query("SELECT 1", logger: driverLogger).collect()
                return true
            } catch {
                throw PostgresErrors.storeError(error)
            }
        }
        guard answered != nil else { throw StoreError.unavailable("the database did not answer within \(Self.pingTimeout)") }
    }

    /// Stops the listeners, refuses new calls, waits for those under way, then closes the pool.
    public func close() async {
        let listening = listeners.withLock { state in
            state.closed = true
            defer { state.open.removeAll() }
            return Array(state.open.values)
        }
        for connection in listening { try? await connection.close() }
        await gate.close()
        runTask.cancel()
        await runTask.value
        logger.info("postgres store closed")
    }

    /// A new connection for a listener, outside the pool. Throws `.unavailable` once the store is
    /// closing or when the server cannot be reached.
    func openListenerConnection() async throws -> PostgresConnection {
        let id = try listeners.withLock { state throws(StoreError) -> Int in
            guard !state.closed else { throw StoreError.unavailable("the store is closed") }
            defer { state.nextID += 1 }
            return state.nextID
        }
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: try Self.connectionConfiguration(url), id: id, logger: driverLogger)
        } catch {
            // Not logged here: the listener retries every second, and its owner reports outages.
            throw PostgresErrors.storeError(error)
        }
        let registered = listeners.withLock { state in
            guard !state.closed else { return false }
            state.open[ObjectIdentifier(connection)] = connection
            return true
        }
        guard registered else {
            try? await connection.close()
            throw StoreError.unavailable("the store is closed")
        }
        return connection
    }

    func closeListenerConnection(_ connection: PostgresConnection) async {
        _ = listeners.withLock { $0.open.removeValue(forKey: ObjectIdentifier(connection)) }
        try? await connection.close()
    }

    /// One autocommit statement through the pool (a read, or a write that is atomic on its own and
    /// audits nothing); each row goes through `map`.
    func statement<T: Sendable>(_ operation: String, _ sql: SQL, _ map: @escaping @Sendable (Row) throws -> T) async throws -> [T] {
        try gate.enter()
        defer { gate.leave() }
        let client = client
        let driverLogger = driverLogger
        do {
            let answered = try await withTimeout(Self.operationTimeout) {
                var results: [T] = []
                for try await row in try await client.query(sql.query, logger: driverLogger) {
                    results.append(try map(Row(row)))
                }
                return results
            }
            guard let answered else { throw timedOut(operation) }
            return answered
        } catch let error as StoreError {
            throw error
        } catch {
            throw reported(error, operation)
        }
    }

    /// Runs `body` in one transaction on a pooled connection and commits; rolls back when it
    /// throws. Runs it again (from scratch, nothing having committed) after a deadlock or a
    /// serialization failure. Throws only `StoreError`s.
    func write<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (PostgresTransaction) async throws -> T) async throws -> T {
        try gate.enter()
        defer { gate.leave() }
        var attempt = 1
        while true {
            do {
                let client = client
                let driverLogger = driverLogger
                // A deadline on the whole transaction, lease included: while the server is down the
                // pool would keep a caller waiting until it is back. What timed out may still have
                // committed (the answer is 503 either way); the mutation and its audit record
                // commit together or not at all, so nothing is half-written.
                let answered = try await withTimeout(Self.operationTimeout) {
                    try await client.withConnection { connection in
                        try await Self.transaction(on: connection, logger: driverLogger, body)
                    }
                }
                guard let answered else { throw timedOut(operation) }
                return answered
            } catch let error as StoreError {
                throw error
            } catch {
                if attempt < Self.maximumAttempts, !(error is CommitFailed), SQLState.isRetryable((error as? PSQLError)?.sqlState) {
                    attempt += 1
                    logger.debug("postgres transaction retried", metadata: ["operation": "\(operation)", "attempt": "\(attempt)"])
                    continue
                }
                throw reported(error, operation)
            }
        }
    }

    /// The error for an operation past its deadline, logged: the database is failing or stuck.
    private func timedOut(_ operation: String) -> StoreError {
        logger.error("postgres operation timed out", metadata: ["operation": "\(operation)", "timeout": "\(Self.operationTimeout)"])
        return StoreError.unavailable("the database did not answer within \(Self.operationTimeout)")
    }

    private nonisolated(nonsending) static func transaction<T>(
        on connection: PostgresConnection, logger: Logger, _ body: (PostgresTransaction) async throws -> T
    ) async throws -> T {
        try await connection.query("BEGIN ISOLATION LEVEL READ COMMITTED", logger: logger)
        let value: T
        do {
            value = try await body(PostgresTransaction(connection: connection, logger: logger))
        } catch {
            do {
                try await connection.query("ROLLBACK", logger: logger)
            } catch {
                // The connection's state is unknown: it must not go back to the pool as it is.
                try? await connection.close()
            }
            throw error
        }
        do {
            try await connection.query("COMMIT", logger: logger)
        } catch {
            // The server answered (with an SQLSTATE): the transaction is rolled back. Otherwise
            // the connection failed during the commit and the outcome is unknown.
            if let error = error as? PSQLError, error.sqlState != nil { throw error }
            throw CommitFailed(underlying: error)
        }
        return value
    }

    /// The `StoreError` for `error`, logged when it means the database is failing.
    private func reported(_ error: any Error, _ operation: String) -> StoreError {
        let storeError = PostgresErrors.storeError(error)
        // A cancelled caller is not a failing database.
        if case .unavailable = storeError, !PostgresErrors.isCancellation(error) {
            logger.error("postgres operation failed", metadata: ["operation": "\(operation)", "error": "\(storeError)"])
        }
        return storeError
    }

    private static func openFailure(_ error: any Error) -> String {
        switch error {
        case let error as PSQLError:
            switch error.sqlState {
            case SQLState.invalidPassword, SQLState.invalidAuthorization: return "the server refused the login"
            case SQLState.undefinedDatabase: return "the database does not exist"
            case .some(let state): return "postgres error \(state)"
            case .none:
                if let underlying = error.underlying { return "\(error.code): \(underlying)" }
                return "\(error.code)"
            }
        case let error as StoreError: return "\(error)"
        default: return "\(type(of: error))"
        }
    }

    private static func tlsConfiguration(_ url: PostgresDatabaseURL) throws -> TLSConfiguration? {
        switch url.tls {
        case .disable: return nil
        case .verifyFull:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .fullVerification
            return tls
        }
    }

    static func connectionConfiguration(_ url: PostgresDatabaseURL) throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        switch url.endpoint {
        case .tcp(let host, let port):
            let tls: PostgresConnection.Configuration.TLS
            if let context = try tlsConfiguration(url) {
                tls = .require(try NIOSSLContext(configuration: context))
            } else {
                tls = .disable
            }
            configuration = PostgresConnection.Configuration(
                host: host, port: port, username: url.username, password: url.password, database: url.database, tls: tls)
        case .unixSocket(let path):
            configuration = PostgresConnection.Configuration(
                unixSocketPath: path, username: url.username, password: url.password, database: url.database)
        }
        configuration.options.connectTimeout = .seconds(10)
        configuration.options.additionalStartupParameters = [("application_name", "tessera")]
        return configuration
    }

    static func clientConfiguration(_ url: PostgresDatabaseURL) throws -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch url.endpoint {
        case .tcp(let host, let port):
            let tls: PostgresClient.Configuration.TLS
            if let context = try tlsConfiguration(url) {
                tls = .require(context)
            } else {
                tls = .disable
            }
            configuration = PostgresClient.Configuration(
                host: host, port: port, username: url.username, password: url.password, database: url.database, tls: tls)
        case .unixSocket(let path):
            configuration = PostgresClient.Configuration(
                unixSocketPath: path, username: url.username, password: url.password, database: url.database)
        }
        configuration.options.maximumConnections = url.poolSize
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(10)
        configuration.options.additionalStartupParameters = [("application_name", "tessera")]
        return configuration
    }
}

/// What a mutation sees inside its transaction: the connection, and the audit head once this
/// transaction has locked it.
final class PostgresTransaction {
    let connection: PostgresConnection
    let logger: Logger
    private var head: (seq: Int64, hash: String)?

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    @discardableResult
    func rows(_ sql: SQL) async throws -> [Row] {
        try await connection.rows(sql, logger: logger)
    }

    func rows<T>(_ sql: SQL, _ map: (Row) throws -> T) async throws -> [T] {
        try await connection.rows(sql, logger: logger).map(map)
    }

    /// Appends one audit record after the current head. The first append of a transaction locks
    /// the head row until the transaction ends, so no other writer, in this process or another,
    /// can chain onto the same head: `seq` and `prev_hash` are computed under the lock, and the
    /// record, the new head and the mutation commit (or vanish) together.
    func appendAudit(body: [UInt8]) async throws -> AuditRecord {
        let (seq, previousHash) = try await lockedHead()
        let record = AuditRecord(
            seq: seq + 1, body: body, prevHash: previousHash, hash: AuditChain.hash(prev: previousHash, body: body))
        do {
            try await rows(
                SQL(
                    """
                    WITH record AS (INSERT INTO audit (seq, body, prev_hash, hash) VALUES ($1, $2, $3, $4))
                    UPDATE audit_head SET seq = $1, hash = $4 WHERE id = 1
                    """,
                    [.integer(record.seq), .bytes(record.body), .text(record.prevHash), .text(record.hash)]))
        } catch {
            guard (error as? PSQLError)?.sqlState == SQLState.uniqueViolation else { throw error }
            // The log holds a record the head does not know of: someone wrote around the store.
            throw StoreError.conflict("the audit log and its head disagree at record \(record.seq)")
        }
        head = (record.seq, record.hash)
        return record
    }

    private func lockedHead() async throws -> (Int64, String) {
        if let head { return head }
        let found = try await rows(SQL("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")) { row in
            (try row.int64(0), try row.text(1))
        }
        // The migration creates the row; without it the chain has no anchor to extend.
        guard let current = found.first else { throw StoreError.conflict("the audit head is missing") }
        head = current
        return current
    }
}
