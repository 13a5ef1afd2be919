import CSQLite
import Foundation
public import Logging
public import TesseraStore

/// Errors of opening an SQLite database; once open, the store reports only `StoreError`s.
public enum SQLiteStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file was migrated by a newer Tessera. This build does not know that schema and refuses
    /// to write to it rather than corrupt it.
    case schemaTooNew(found: Int64, supported: Int64)
    case cannotOpen(path: String, reason: String)

    public var description: String {
        switch self {
        case .schemaTooNew(let found, let supported):
            "the database schema is version \(found) but this build of tessera knows versions up to \(supported): upgrade tessera"
        case .cannotOpen(let path, let reason):
            "cannot open the database at \(path): \(reason)"
        }
    }
}

/// The embedded store: one SQLite file in WAL mode.
///
/// Writes go through one writer thread with group commit (`synchronous=FULL`: a write whose call
/// returned survives a crash); reads use a small pool of read-only connections. Another process
/// (the `tessera` CLI) may write the same file at the same time: writers wait for each other
/// (`busy_timeout`), and the audit chain is extended from the head as read inside each transaction.
public final class SQLiteStore: TesseraStore {
    /// How long a writer waits for another process's write lock before answering `.unavailable`.
    static let defaultBusyTimeoutMilliseconds: Int32 = 5_000
    static let readerCount = 4

    public let path: String
    let writer: SQLiteWriter
    let readers: SQLiteReaderPool
    let logger: Logger

    private init(path: String, writer: SQLiteWriter, readers: SQLiteReaderPool, logger: Logger) {
        self.path = path
        self.writer = writer
        self.readers = readers
        self.logger = logger
    }

    deinit {
        // Without `close()` the writer still finishes what is pending, then stops.
        writer.shutdown()
    }

    /// Opens (creating it and its parent directories if needed) and migrates the database at `path`.
    /// Throws `SQLiteStoreError.schemaTooNew` for a database written by a newer build.
    public static func open(path: String, logger: Logger = Logger(label: "tessera.store.sqlite")) async throws -> SQLiteStore {
        try await open(path: path, logger: logger, busyTimeoutMilliseconds: defaultBusyTimeoutMilliseconds)
    }

    static func open(path: String, logger: Logger, busyTimeoutMilliseconds: Int32) async throws -> SQLiteStore {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw SQLiteStoreError.cannotOpen(path: path, reason: "cannot create its directory")
        }
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: path, mode: .readWrite, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            let journalMode = try connection.queryOne("PRAGMA journal_mode = WAL") { $0.text(0) }
            if journalMode?.lowercased() != "wal" {
                // Still correct, but readers then wait for the writer.
                logger.warning("sqlite could not switch to WAL", metadata: ["journal_mode": "\(journalMode ?? "none")"])
            }
            try connection.execute("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        } catch {
            throw SQLiteStoreError.cannotOpen(path: path, reason: "\(error)")
        }
        do {
            try Migrations.apply(on: connection, logger: logger)
        } catch let error as SQLiteError {
            throw SQLiteStoreError.cannotOpen(path: path, reason: "migration failed: \(error)")
        }
        let readers: SQLiteReaderPool
        do {
            readers = try SQLiteReaderPool(path: path, count: readerCount, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        } catch {
            throw SQLiteStoreError.cannotOpen(path: path, reason: "\(error)")
        }
        let writer = SQLiteWriter(connection: connection, logger: logger)
        writer.start()
        logger.info("sqlite store opened", metadata: ["path": "\(path)", "schema.version": "\(Migrations.latestVersion)"])
        return SQLiteStore(path: path, writer: writer, readers: readers, logger: logger)
    }

    public var tenants: any TenantStore { SQLiteTenantStore(store: self) }
    public var clients: any ClientStore { SQLiteClientStore(store: self) }
    public var tokens: any TokenStore { SQLiteTokenStore(store: self) }
    public var replay: any ReplayStore { SQLiteReplayStore(store: self) }
    public var audit: any AuditStore { SQLiteAuditStore(store: self) }
    public var policies: any PolicyStore { SQLitePolicyStore(store: self) }
    public var workloadIssuers: any WorkloadIssuerStore { SQLiteWorkloadIssuerStore(store: self) }
    public var refreshTokens: any RefreshTokenStore { SQLiteRefreshTokenStore(store: self) }
    public var users: any UserStore { SQLiteUserStore(store: self) }
    public var sessions: any SessionStore { SQLiteSessionStore(store: self) }
    public var oidcProviders: any OIDCProviderStore { SQLiteOIDCProviderStore(store: self) }
    public var samlProviders: any SAMLProviderStore { SQLiteSAMLProviderStore(store: self) }
    public var revocations: any RevocationLog { SQLiteRevocationLog(store: self) }
    /// None: SQLite cannot push, and the CLI writes from another process; readers poll the log.
    public var revocationNotifications: (any RevocationNotifications)? { nil }

    public func ping() async throws {
        guard writer.isRunning else { throw StoreError.unavailable("the store is closed") }
        _ = try readers.read { connection in try connection.queryOne("SELECT 1") { $0.int64(0) } }
    }

    public func close() async {
        await writer.close()
        readers.close()
        logger.info("sqlite store closed")
    }

    /// Runs `body` on the writer thread in the next group commit; returns once it is durable.
    func write<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (WriteTransaction) throws -> T) async throws -> T {
        try await writer.perform(operation, body)
    }

    /// Runs `body` on a read connection on the caller's task.
    func read<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try readers.read(body)
    }
}
