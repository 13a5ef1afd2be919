import Foundation

@testable import TesseraStoreSQLite

/// A directory of throw-away databases for one test, removed afterwards.
struct TemporaryDatabases: Sendable {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("tessera-sqlite-tests", isDirectory: true)
            .appendingPathComponent(UUID().uuidString, isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// A path whose parent directories do not exist yet: opening must create them.
    func newPath() -> String {
        root.appendingPathComponent(UUID().uuidString).appendingPathComponent("data").appendingPathComponent("tessera.db").path
    }

    func open(_ path: String) async throws -> SQLiteStore {
        try await SQLiteStore.open(path: path)
    }

    func remove() {
        try? FileManager.default.removeItem(at: root)
    }
}

/// Raw SQL on the database file, from outside the store, as another process (or an attacker with
/// access to the file) would do it.
func withRawConnection<T>(_ path: String, _ body: (SQLiteConnection) throws -> T) throws -> T {
    let connection = try SQLiteConnection(path: path, mode: .readWrite, busyTimeoutMilliseconds: 5_000)
    defer { connection.close() }
    return try body(connection)
}
