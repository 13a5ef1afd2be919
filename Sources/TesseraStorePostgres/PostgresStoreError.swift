import PostgresNIO
import TesseraStore

/// Errors of opening a PostgreSQL store; once open, the store reports only `StoreError`s.
/// No case carries the password or the full URL.
public enum PostgresStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidURL(String)
    /// The server cannot be reached, refused the login, or failed while migrating.
    case cannotOpen(database: String, reason: String)
    /// The database was migrated by a newer Tessera; this build refuses to write to it.
    case schemaTooNew(found: Int64, supported: Int64)

    public var description: String {
        switch self {
        case .invalidURL(let why): "invalid PostgreSQL URL: \(why)"
        case .cannotOpen(let database, let reason): "cannot open the PostgreSQL database \(database): \(reason)"
        case .schemaTooNew(let found, let supported):
            "the database schema is version \(found) but this build of tessera knows versions up to \(supported): upgrade tessera"
        }
    }
}

/// SQLSTATE codes the store acts on (PostgreSQL manual, appendix A).
enum SQLState {
    static let uniqueViolation = "23505"
    static let foreignKeyViolation = "23503"
    static let serializationFailure = "40001"
    static let deadlockDetected = "40P01"
    static let invalidPassword = "28P01"
    static let invalidAuthorization = "28000"
    static let undefinedDatabase = "3D000"

    /// Failures after which the whole transaction may simply run again: nothing of it committed.
    static func isRetryable(_ state: String?) -> Bool {
        state == serializationFailure || state == deadlockDetected
    }
}

extension PSQLError {
    var sqlState: String? { serverInfo?[.sqlState] }

    /// A description safe for logs and error messages: the error class and SQLSTATE, never the
    /// server's message, which may quote values (a duplicate key, say).
    var safeDescription: String {
        if let sqlState { return "postgres error \(sqlState)" }
        return "postgres client error: \(code)"
    }
}

/// A COMMIT whose outcome is unknown (the connection failed while committing): never retried,
/// since the transaction may have committed.
struct CommitFailed: Error {
    let underlying: any Error
}

enum PostgresErrors {
    /// The caller's task was cancelled: the call did not happen, the database is fine.
    static func isCancellation(_ error: any Error) -> Bool {
        error is CancellationError || (error as? PSQLError)?.code == .queryCancelled
    }

    /// The store's view of a failure (StoreError is the only error a store reports).
    static func storeError(_ error: any Error) -> StoreError {
        switch error {
        case let error as StoreError:
            return error
        case let error as CommitFailed:
            return .unavailable("the commit failed: \(storeError(error.underlying))")
        case let error as PSQLError:
            if error.code == .queryCancelled { return .unavailable("the call was cancelled") }
            guard let state = error.sqlState else {
                // Connection refused or lost, pool closed, query cancelled, TLS failure.
                return .unavailable(error.safeDescription)
            }
            switch state {
            case SQLState.uniqueViolation: return .alreadyExists
            // The only foreign keys point at tenants: a row of a tenant that does not exist.
            case SQLState.foreignKeyViolation: return .notFound
            case SQLState.serializationFailure, SQLState.deadlockDetected:
                return .conflict("concurrent writes kept conflicting (sqlstate \(state))")
            default:
                break
            }
            switch state.prefix(2) {
            // Integrity constraint violations and data exceptions (a NUL byte in a text value):
            // the write breaks an invariant, it is not the server failing.
            case "23", "22": return .conflict("the value cannot be stored (sqlstate \(state))")
            default: return .unavailable("postgres error \(state)")
            }
        case is PostgresDecodingError:
            return .unavailable("a stored value cannot be read")
        case is CancellationError:
            return .unavailable("the call was cancelled")
        default:
            return .unavailable("unexpected failure: \(type(of: error))")
        }
    }
}
