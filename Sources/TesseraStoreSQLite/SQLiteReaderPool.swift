import Foundation
import Synchronization
import TesseraStore

/// A few read-only connections. WAL lets them read while the writer writes; each is used under its
/// own lock, on the caller's task (a point query takes microseconds, less than a hop to a thread).
final class SQLiteReaderPool: Sendable {
    /// `@unchecked`: `connection` is only touched while `lock` is held.
    private final class Slot: @unchecked Sendable {
        let lock = NSLock()
        var connection: SQLiteConnection?
        init(_ connection: SQLiteConnection) { self.connection = connection }

        func use<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
            defer { lock.unlock() }
            guard let connection else { throw StoreError.unavailable("the store is closed") }
            return try body(connection)
        }
    }

    private let slots: [Slot]
    private let next = Atomic<Int>(0)

    init(path: String, count: Int, busyTimeoutMilliseconds: Int32) throws(SQLiteError) {
        var slots: [Slot] = []
        for _ in 0..<max(1, count) {
            slots.append(Slot(try SQLiteConnection(path: path, mode: .readOnly, busyTimeoutMilliseconds: busyTimeoutMilliseconds)))
        }
        self.slots = slots
    }

    /// Runs `body` on a free connection, or waits for one. Every failure arrives as a `StoreError`.
    func read<T>(_ body: (SQLiteConnection) throws -> T) throws(StoreError) -> T {
        let start = next.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
        do {
            for offset in 0..<slots.count {
                let slot = slots[(start + offset) % slots.count]
                if slot.lock.try() { return try slot.use(body) }
            }
            let slot = slots[start % slots.count]
            slot.lock.lock()
            return try slot.use(body)
        } catch {
            throw SQLiteWriter.storeError(error)
        }
    }

    func close() {
        for slot in slots {
            slot.lock.lock()
            slot.connection?.close()
            slot.connection = nil
            slot.lock.unlock()
        }
    }
}
