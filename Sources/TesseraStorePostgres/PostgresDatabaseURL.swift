import Foundation

/// Where and how to reach the PostgreSQL server, parsed from a libpq-style URL:
///
///     postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?pool=N&sslmode=disable|verify-full]
///     postgres://USER@/DATABASE?host=/run/postgresql      (Unix socket folder, as libpq)
///
/// `postgresql://` is accepted too. Parsing is strict: an unknown query item, a port out of range
/// or a pool size out of range is an error, never a silent default.
public struct PostgresDatabaseURL: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The server's socket file (`<folder>/.s.PGSQL.<port>`).
        case unixSocket(path: String)
    }

    public enum TLSMode: String, Sendable, Equatable {
        /// Plain TCP: for loopback, a Unix socket or a private network only.
        case disable
        /// TLS with the server certificate verified against the system's trust roots and the host
        /// name. (libpq's `require`, which encrypts without verifying, is deliberately not offered.)
        case verifyFull = "verify-full"
    }

    public var endpoint: Endpoint
    public var username: String
    public var password: String?
    public var database: String
    /// Connections in the pool (`?pool=N`); `defaultPoolSize` when absent.
    public var poolSize: Int
    public var tls: TLSMode

    public static let defaultPoolSize = 8
    public static let poolSizes = 1...200

    public init(
        endpoint: Endpoint, username: String, password: String?, database: String, poolSize: Int = defaultPoolSize,
        tls: TLSMode = .disable
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.poolSize = poolSize
        self.tls = tls
    }

    /// Whether `text` names a PostgreSQL database at all (by its scheme).
    public static func isPostgresURL(_ text: String) -> Bool {
        let lowered = text.lowercased()
        return lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://")
    }

    /// Parses `text`; `defaultPoolSize` applies when the URL has no `pool` item. The error never
    /// repeats the URL, which may hold a password.
    public init(parsing text: String, defaultPoolSize: Int = Self.defaultPoolSize) throws(PostgresStoreError) {
        guard Self.isPostgresURL(text), let components = URLComponents(string: text) else {
            throw .invalidURL("expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        guard let user = components.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
            throw .invalidURL("the URL names no user")
        }
        let password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        var database = components.percentEncodedPath
        if database.hasPrefix("/") { database.removeFirst() }
        guard let decodedDatabase = database.removingPercentEncoding, !decodedDatabase.contains("/") else {
            throw .invalidURL("the database name is not valid")
        }
        if components.fragment != nil { throw .invalidURL("a fragment is not allowed") }
        var poolSize = defaultPoolSize
        var tls = TLSMode.disable
        var socketFolder: String?
        var seen: Set<String> = []
        for item in components.queryItems ?? [] {
            guard seen.insert(item.name).inserted else { throw .invalidURL("the query item '\(item.name)' is repeated") }
            let value = item.value ?? ""
            switch item.name {
            case "pool":
                guard let size = Int(value), Self.poolSizes.contains(size) else {
                    throw .invalidURL("pool must be a number from \(Self.poolSizes.lowerBound) to \(Self.poolSizes.upperBound)")
                }
                poolSize = size
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else { throw .invalidURL("sslmode must be disable or verify-full") }
                tls = mode
            case "host":
                guard value.hasPrefix("/") else { throw .invalidURL("the host query item must be a socket folder (an absolute path)") }
                socketFolder = value
            default:
                throw .invalidURL("unknown query item '\(item.name)' (known: pool, sslmode, host)")
            }
        }
        let port: Int
        if let given = components.port {
            guard (1...65535).contains(given) else { throw .invalidURL("the port must be from 1 to 65535") }
            port = given
        } else {
            port = 5432
        }
        let host = components.host ?? ""
        let endpoint: Endpoint
        if let socketFolder {
            guard host.isEmpty else { throw .invalidURL("give either a host name or a host=/socket/folder item, not both") }
            guard tls == .disable else { throw .invalidURL("sslmode=verify-full needs a TCP host") }
            endpoint = .unixSocket(path: socketFolder + "/.s.PGSQL.\(port)")
        } else {
            guard !host.isEmpty else { throw .invalidURL("the URL names no host") }
            // URLComponents keeps the brackets of an IPv6 literal.
            let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            endpoint = .tcp(host: bare, port: port)
        }
        self.init(
            endpoint: endpoint, username: user, password: password, database: decodedDatabase.isEmpty ? user : decodedDatabase,
            poolSize: poolSize, tls: tls)
    }

    /// The URL without its password, for logs and error messages.
    public var description: String {
        let credentials = password == nil ? username : "\(username):***"
        let query = "pool=\(poolSize)" + (tls == .disable ? "" : "&sslmode=\(tls.rawValue)")
        switch endpoint {
        case .tcp(let host, let port):
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "postgres://\(credentials)@\(shownHost):\(port)/\(database)?\(query)"
        case .unixSocket(let path):
            return "postgres://\(credentials)@/\(database)?\(query) (socket \(path))"
        }
    }

    public var debugDescription: String { description }

    /// Without the password, so that `dump` and reflection-based loggers cannot show it either.
    public var customMirror: Mirror {
        Mirror(self, children: ["description": description], displayStyle: .struct)
    }
}
