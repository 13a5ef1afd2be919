import CSQLite
import Foundation
import Logging
import Synchronization
import TesseraStore

/// What a unit of work sees while it runs on the writer thread: the write connection inside the
/// batch's transaction, and the audit chain as this transaction has extended it so far.
final class WriteTransaction {
    let connection: SQLiteConnection

    /// The head is read inside the write transaction, not cached across batches, so appends by
    /// another process (the `tessera` CLI) between two batches are chained onto correctly.
    fileprivate enum Head: Equatable {
        case unread
        case read(seq: Int64, hash: String, changed: Bool)
    }
    fileprivate var head: Head = .unread

    fileprivate init(connection: SQLiteConnection) {
        self.connection = connection
    }

    /// Appends one audit record after the current head, in the current unit's savepoint.
    func appendAudit(body: [UInt8]) throws -> AuditRecord {
        let (seq, previousHash) = try currentHead()
        let record = AuditRecord(
            seq: seq + 1, body: body, prevHash: previousHash, hash: AuditChain.hash(prev: previousHash, body: body))
        do {
            try connection.run(
                "INSERT INTO audit (seq, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4)",
                [.integer(record.seq), .blob(record.body), .text(record.prevHash), .text(record.hash)])
        } catch {
            // (Not `catch where`: with typed throws it crashes the 6.3.1 compiler.)
            guard error.primaryCode == SQLITE_CONSTRAINT else { throw error }
            // The log holds a record the head does not know of: someone wrote around the store.
            throw StoreError.conflict("the audit log and its head disagree at record \(record.seq)")
        }
        head = .read(seq: record.seq, hash: record.hash, changed: true)
        return record
    }

    private func currentHead() throws -> (Int64, String) {
        if case .read(let seq, let hash, _) = head { return (seq, hash) }
        let stored = try connection.queryOne("SELECT seq, hash FROM audit_head WHERE id = 1") { row in
            (row.int64(0), row.text(1))
        }
        let (seq, hash) = stored ?? (0, AuditChain.genesis)
        head = .read(seq: seq, hash: hash, changed: false)
        return (seq, hash)
    }

    /// Writes the head back once per batch, in the same transaction as the records.
    fileprivate func storeHeadIfChanged() throws(SQLiteError) {
        guard case .read(let seq, let hash, true) = head else { return }
        try connection.run(
            """
            INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
            ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
            """,
            [.integer(seq), .text(hash)])
    }
}

/// One caller's piece of work, run inside its own savepoint.
struct WriteUnit: Sendable {
    let operation: String
    /// Does the work; returns what to do once the batch is durable (resume the caller).
    let execute: @Sendable (WriteTransaction) throws -> @Sendable () -> Void
    let fail: @Sendable (StoreError) -> Void
}

/// The single writer with group commit.
///
/// A dedicated thread (not the cooperative pool: a commit's fsync blocks for milliseconds) owns the
/// write connection. Callers enqueue units and await them. The thread takes everything pending,
/// runs it in one `BEGIN IMMEDIATE … COMMIT` with each unit in its own savepoint, and resumes the
/// callers only after `COMMIT` returned, so an acknowledged write is a durable write. While one
/// batch syncs, the next one accumulates: the batch size follows the load without any timer.
final class SQLiteWriter: @unchecked Sendable {
    // `@unchecked`: `pending`, `state` and `closeWaiters` are guarded by `condition`; `connection`
    // is used by `open` before `start()` and afterwards only by the writer thread.
    private let condition = NSCondition()
    private var pending: [WriteUnit] = []
    private var state = State.created
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []
    private let connection: SQLiteConnection
    private let logger: Logger

    /// Batches and units committed so far, for tests that check that group commit groups.
    let committedBatches = Atomic<Int>(0)
    let committedUnits = Atomic<Int>(0)

    /// Bounds how long one transaction holds the write lock that the CLI may be waiting for.
    static let maximumBatch = 2048

    private enum State { case created, running, closing, closed }

    init(connection: SQLiteConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    func start() {
        condition.lock()
        state = .running
        condition.unlock()
        let thread = Thread { [self] in
            // Set from inside: on Linux the name only reaches the kernel (ps, perf) this way, and
            // only up to 15 bytes.
            Thread.current.name = "tessera-writer"
            run()
        }
        thread.start()
    }

    var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return state == .running
    }

    /// Runs `body` in the next batch and returns its result once the batch has committed.
    /// Throws a `StoreError`: the body's own, the mapping of an SQLite failure in it, or
    /// `.unavailable` when the batch could not commit.
    func perform<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (WriteTransaction) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let unit = WriteUnit(
                operation: operation,
                execute: { transaction in
                    let value = try body(transaction)
                    return { continuation.resume(returning: value) }
                },
                fail: { error in continuation.resume(throwing: error) })
            if !enqueue(unit) {
                continuation.resume(throwing: StoreError.unavailable("the store is closed"))
            }
        }
    }

    /// Lets pending writes finish, then closes the connection and returns.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            switch state {
            case .created, .closed:
                state = .closed
                condition.unlock()
                continuation.resume()
            case .running, .closing:
                state = .closing
                closeWaiters.append(continuation)
                condition.signal()
                condition.unlock()
            }
        }
    }

    /// Asks the thread to finish the pending writes and stop, without waiting.
    func shutdown() {
        condition.lock()
        if state == .running {
            state = .closing
            condition.signal()
        }
        condition.unlock()
    }

    private func enqueue(_ unit: WriteUnit) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard state == .running else { return false }
        pending.append(unit)
        condition.signal()
        return true
    }

    private func run() {
        while let batch = nextBatch() {
            commit(batch)
        }
        connection.close()
        condition.lock()
        state = .closed
        let waiters = closeWaiters
        closeWaiters.removeAll()
        condition.unlock()
        for waiter in waiters { waiter.resume() }
    }

    /// Everything pending (up to `maximumBatch`), or nil once closing and drained.
    private func nextBatch() -> [WriteUnit]? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && state == .running { condition.wait() }
        if pending.isEmpty { return nil }
        let batch = Array(pending.prefix(Self.maximumBatch))
        pending.removeFirst(batch.count)
        return batch
    }

    private enum UnitOutcome {
        case done(@Sendable () -> Void)
        /// The unit's changes were rolled back; the rest of the batch goes on.
        case failed(StoreError)
        /// The transaction itself is lost (I/O error, disk full): nothing in the batch commits.
        case aborted(SQLiteError)
    }

    private func commit(_ batch: [WriteUnit]) {
        do {
            try connection.run("BEGIN IMMEDIATE")
        } catch {
            logger.error(
                "sqlite write batch could not begin", metadata: ["sqlite.code": "\(error.code)", "batch.size": "\(batch.count)"])
            for unit in batch { unit.fail(.unavailable("cannot begin a write transaction (sqlite \(error.code))")) }
            return
        }
        let transaction = WriteTransaction(connection: connection)
        var outcomes: [UnitOutcome] = []
        outcomes.reserveCapacity(batch.count)
        var abort: SQLiteError?
        for unit in batch {
            let outcome = run(unit, in: transaction)
            outcomes.append(outcome)
            if case .aborted(let error) = outcome {
                abort = error
                break
            }
        }
        if abort == nil {
            do {
                try transaction.storeHeadIfChanged()
                try connection.run("COMMIT")
            } catch {
                abort = error
            }
        }
        if let abort {
            if !connection.isAutocommit { _ = try? connection.run("ROLLBACK") }
            logger.error(
                "sqlite write batch rolled back", metadata: ["sqlite.code": "\(abort.code)", "batch.size": "\(batch.count)"])
            let lost = StoreError.unavailable("the write transaction failed (sqlite \(abort.code))")
            for (index, unit) in batch.enumerated() {
                // A unit that failed on its own keeps its answer: it wrote nothing either way.
                if index < outcomes.count, case .failed(let error) = outcomes[index] {
                    unit.fail(error)
                } else {
                    unit.fail(lost)
                }
            }
            return
        }
        // Durable now: only at this point may any caller hear "done".
        committedBatches.add(1, ordering: .relaxed)
        committedUnits.add(outcomes.count, ordering: .relaxed)
        for (index, outcome) in outcomes.enumerated() {
            switch outcome {
            case .done(let completion): completion()
            case .failed(let error): batch[index].fail(error)
            case .aborted: break
            }
        }
    }

    private func run(_ unit: WriteUnit, in transaction: WriteTransaction) -> UnitOutcome {
        do {
            try connection.run("SAVEPOINT unit")
        } catch {
            return .aborted(error)
        }
        let headBefore = transaction.head
        let completion: @Sendable () -> Void
        do {
            completion = try unit.execute(transaction)
        } catch {
            // The in-memory head rolls back with the savepoint.
            transaction.head = headBefore
            if connection.isAutocommit {
                // SQLite has already rolled the whole transaction back.
                return .aborted(error as? SQLiteError ?? SQLiteError(code: SQLITE_ABORT, message: "transaction rolled back"))
            }
            do {
                try connection.run("ROLLBACK TO unit")
                try connection.run("RELEASE unit")
            } catch {
                return .aborted(error)
            }
            let storeError = Self.storeError(error)
            if case .unavailable = storeError {
                logger.error("sqlite write failed", metadata: ["operation": "\(unit.operation)", "error": "\(storeError)"])
            }
            return .failed(storeError)
        }
        do {
            try connection.run("RELEASE unit")
        } catch {
            return .aborted(error)
        }
        return .done(completion)
    }

    static func storeError(_ error: any Error) -> StoreError {
        switch error {
        case let error as StoreError: error
        case let error as SQLiteError: error.storeError
        default: .unavailable("unexpected failure: \(type(of: error))")
        }
    }
}
