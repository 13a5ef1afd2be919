import Foundation
import PostgresNIO

/// Statement text with its bindings, built once per call. The text comes from constants only;
/// every value travels as a bound parameter.
struct SQL: Sendable {
    let text: String
    var bindings = PostgresBindings()

    init(_ text: String) {
        self.text = text
    }

    /// `text` with `values` bound to `$1`, `$2`, … in order.
    init(_ text: String, _ values: [SQLValue]) {
        self.text = text
        bindings = PostgresBindings(capacity: values.count)
        for value in values { value.bind(into: &bindings) }
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: text, binds: bindings) }
}

/// A value to bind. Dates are Unix milliseconds, as in the SQLite backend.
enum SQLValue: Sendable {
    case integer(Int64)
    case text(String)
    case bytes([UInt8])
    case bool(Bool)
    /// Arrays, for `unnest`: one statement for many rows.
    case texts([String])
    case integers([Int64])
    case null

    static func text(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
    static func bytes(_ value: [UInt8]?) -> SQLValue { value.map(SQLValue.bytes) ?? .null }
    static func date(_ value: Date) -> SQLValue { .integer(value.unixMilliseconds) }
    static func date(_ value: Date?) -> SQLValue { value.map(SQLValue.date) ?? .null }

    func bind(into bindings: inout PostgresBindings) {
        switch self {
        case .integer(let number): bindings.append(number)
        case .text(let text): bindings.append(text)
        // As a ByteBuffer: `[UInt8]` alone would be sent as an array of "char", not BYTEA.
        case .bytes(let bytes): bindings.append(ByteBuffer(bytes: bytes))
        case .bool(let flag): bindings.append(flag)
        case .texts(let texts): bindings.append(texts)
        case .integers(let numbers): bindings.append(numbers)
        case .null: bindings.appendNull()
        }
    }
}

extension Date {
    var unixMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    init(unixMilliseconds: Int64) { self.init(timeIntervalSince1970: Double(unixMilliseconds) / 1000) }
}

/// One result row, read by column position.
struct Row {
    private let cells: [PostgresCell]

    init(_ row: PostgresRow) {
        cells = Array(row)
    }

    func isNull(_ column: Int) -> Bool { cells[column].bytes == nil }
    func int64(_ column: Int) throws -> Int64 { try cells[column].decode(Int64.self) }
    func optionalInt64(_ column: Int) throws -> Int64? { isNull(column) ? nil : try int64(column) }
    func bool(_ column: Int) throws -> Bool { try cells[column].decode(Bool.self) }
    func text(_ column: Int) throws -> String { try cells[column].decode(String.self) }
    func optionalText(_ column: Int) throws -> String? { isNull(column) ? nil : try text(column) }
    func bytes(_ column: Int) throws -> [UInt8] { Array(try cells[column].decode(ByteBuffer.self).readableBytesView) }
    func optionalBytes(_ column: Int) throws -> [UInt8]? { isNull(column) ? nil : try bytes(column) }
    func date(_ column: Int) throws -> Date { Date(unixMilliseconds: try int64(column)) }
    func optionalDate(_ column: Int) throws -> Date? { try optionalInt64(column).map(Date.init(unixMilliseconds:)) }
}

extension PostgresConnection {
    /// Runs `sql` and returns every row (the sequence must be drained before the next statement).
    func rows(_ sql: SQL, logger: Logger) async throws -> [Row] {
        var rows: [Row] = []
        for try await row in try await query(sql.query, logger: logger) { rows.append(Row(row)) }
        return rows
    }
}
