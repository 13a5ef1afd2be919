import CSQLite
import Foundation
import TesseraStore

/// A value bound to a statement parameter. Every value reaches SQLite through a binding, never
/// through the SQL text.
enum SQLValue {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null

    static func text(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
    static func integer(_ value: Int64?) -> SQLValue { value.map(SQLValue.integer) ?? .null }
    static func blob(_ value: [UInt8]?) -> SQLValue { value.map(SQLValue.blob) ?? .null }
    static func bool(_ value: Bool) -> SQLValue { .integer(value ? 1 : 0) }
    /// Dates are stored as Unix milliseconds.
    static func date(_ value: Date) -> SQLValue { .integer(value.unixMilliseconds) }
    static func date(_ value: Date?) -> SQLValue { value.map(SQLValue.date) ?? .null }
}

extension Date {
    var unixMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    init(unixMilliseconds: Int64) { self.init(timeIntervalSince1970: Double(unixMilliseconds) / 1000) }
}

/// An SQLite failure: the extended result code and the library's message. The message names
/// tables and columns, never bound values, but it stays out of logs all the same: only `code` is
/// logged.
struct SQLiteError: Error, CustomStringConvertible {
    let code: Int32
    let message: String

    var primaryCode: Int32 { code & 0xFF }
    var description: String { "sqlite error \(code): \(message)" }

    // Extended codes are `#define`s built from `|` and `<<`, which Swift does not import.
    static let constraintForeignKey: Int32 = 787  // SQLITE_CONSTRAINT | (3 << 8)
    static let constraintPrimaryKey: Int32 = 1555  // SQLITE_CONSTRAINT | (6 << 8)
    static let constraintUnique: Int32 = 2067  // SQLITE_CONSTRAINT | (8 << 8)

    /// The store's view of this failure (StoreError is the only error a store reports).
    var storeError: StoreError {
        switch code {
        case Self.constraintPrimaryKey, Self.constraintUnique: return .alreadyExists
        case Self.constraintForeignKey: return .notFound
        default: break
        }
        switch primaryCode {
        case SQLITE_CONSTRAINT: return .conflict("constraint violated (sqlite \(code))")
        default: return .unavailable("sqlite error \(code)")
        }
    }
}

/// One row of a result, valid only inside the closure it was passed to.
struct SQLiteRow {
    fileprivate let statement: OpaquePointer

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }

    func bool(_ column: Int32) -> Bool { int64(column) != 0 }

    func date(_ column: Int32) -> Date { Date(unixMilliseconds: int64(column)) }

    func optionalDate(_ column: Int32) -> Date? { optionalInt64(column).map(Date.init(unixMilliseconds:)) }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    func optionalBlob(_ column: Int32) -> [UInt8]? { isNull(column) ? nil : blob(column) }
}

/// One SQLite connection with its cache of prepared statements. Not thread-safe: the writer
/// thread owns one, and each reader is used under its own lock.
final class SQLiteConnection {
    private var handle: OpaquePointer?
    /// Prepared statements keyed by their SQL text; point queries are prepared once per connection.
    private var statements: [String: OpaquePointer] = [:]

    enum Mode {
        case readWrite
        case readOnly

        var flags: Int32 {
            switch self {
            case .readWrite: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
            case .readOnly: SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
            }
        }
    }

    init(path: String, mode: Mode, busyTimeoutMilliseconds: Int32) throws(SQLiteError) {
        var handle: OpaquePointer?
        let status = sqlite3_open_v2(path, &handle, mode.flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: status, message: message)
        }
        self.handle = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
    }

    deinit { close() }

    var isOpen: Bool { handle != nil }

    /// Whether the connection is outside a transaction, which after a failure inside one means
    /// SQLite rolled the whole transaction back on its own (I/O error, disk full, ...).
    var isAutocommit: Bool { handle.map { sqlite3_get_autocommit($0) != 0 } ?? true }

    var changes: Int { handle.map { Int(sqlite3_changes64($0)) } ?? 0 }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs SQL text without parameters (schema, pragmas, transaction control); may hold several
    /// statements. Never called with text that contains a value.
    func execute(_ sql: String) throws(SQLiteError) {
        let db = try open()
        var errorMessage: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        if status != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errorMessage)
            throw SQLiteError(code: sqlite3_extended_errcode(db), message: message)
        }
    }

    /// Runs one statement to completion and returns the number of rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> Int {
        let statement = try prepared(sql, values)
        defer { sqlite3_reset(statement) }
        while true {
            let status = sqlite3_step(statement)
            switch status {
            case SQLITE_DONE: return changes
            case SQLITE_ROW: continue
            default: throw currentError(status)
            }
        }
    }

    /// Runs one query and maps every row.
    func query<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (SQLiteRow) throws -> T) throws -> [T] {
        let statement = try prepared(sql, values)
        defer { sqlite3_reset(statement) }
        var results: [T] = []
        while true {
            let status = sqlite3_step(statement)
            switch status {
            case SQLITE_ROW: results.append(try map(SQLiteRow(statement: statement)))
            case SQLITE_DONE: return results
            default: throw currentError(status)
            }
        }
    }

    /// Runs one query and maps its first row, if any.
    func queryOne<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (SQLiteRow) throws -> T) throws -> T? {
        let statement = try prepared(sql, values)
        // Resetting ends the implicit read transaction, so the next read sees newer commits.
        defer { sqlite3_reset(statement) }
        let status = sqlite3_step(statement)
        switch status {
        case SQLITE_ROW: return try map(SQLiteRow(statement: statement))
        case SQLITE_DONE: return nil
        default: throw currentError(status)
        }
    }

    private func open() throws(SQLiteError) -> OpaquePointer {
        guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "connection is closed") }
        return handle
    }

    private func currentError(_ status: Int32) -> SQLiteError {
        guard let handle else { return SQLiteError(code: status, message: "connection is closed") }
        return SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)))
    }

    private func prepared(_ sql: String, _ values: [SQLValue]) throws(SQLiteError) -> OpaquePointer {
        let db = try open()
        let statement: OpaquePointer
        if let cached = statements[sql] {
            statement = cached
        } else {
            var fresh: OpaquePointer?
            let status = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &fresh, nil)
            guard status == SQLITE_OK, let fresh else { throw currentError(status) }
            statements[sql] = fresh
            statement = fresh
        }
        sqlite3_clear_bindings(statement)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .integer(let number):
                status = sqlite3_bind_int64(statement, index, number)
            case .text(let text):
                status = sqlite3_bind_text(statement, index, text, -1, tessera_sqlite_transient())
            case .blob(let bytes):
                if bytes.isEmpty {
                    // A null pointer would bind NULL; an empty blob must stay an empty blob.
                    status = sqlite3_bind_zeroblob(statement, index, 0)
                } else {
                    status = bytes.withUnsafeBytes { buffer in
                        sqlite3_bind_blob64(
                            statement, index, buffer.baseAddress, sqlite3_uint64(buffer.count), tessera_sqlite_transient())
                    }
                }
            case .null:
                status = sqlite3_bind_null(statement, index)
            }
            guard status == SQLITE_OK else { throw currentError(status) }
        }
        return statement
    }
}
