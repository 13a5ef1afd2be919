import ArgumentParser
import Foundation
import Logging
import TesseraCore
import TesseraHTTP
import TesseraJOSE
import TesseraOAuth
import TesseraStore
import TesseraStorePostgres
import TesseraStoreSQLite

/// Options every command shares. Resolution order: flag, then `TESSERA_*` variable, then the
/// `--config` JSON file, then the default.
struct GlobalOptions: ParsableArguments {
    @Option(
        help:
            "A JSON configuration file (keys: host, port, issuer, database, keys_dir, access_token_lifetime, log_level, dpop_nonce, signing_alg)."
    )
    var config: String?

    @Option(
        help:
            "sqlite:PATH (default sqlite:./data/tessera.db) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?pool=N]. Env: TESSERA_DATABASE."
    )
    var database: String?

    @Option(name: .customLong("keys-dir"), help: "Folder of the signing keys (default ./Keys). Env: TESSERA_KEYS_DIR.")
    var keysDir: String?

    @Flag(help: "Machine-readable JSON output.")
    var json = false
}

/// The resolved configuration. `TESSERA_KEK` is read from the environment only: a secret never
/// belongs on a command line or in a configuration file.
struct ResolvedConfiguration {
    var host: String
    var port: Int
    var issuer: String
    var database: String
    var keysDir: String
    var accessTokenLifetime: TimeInterval
    var logLevel: Logger.Level
    var kek: KeyEncryptionKey?
    var kekConfigured: Bool
    /// Whether the token endpoint asks DPoP clients for a server nonce (RFC 9449 §8). On by default.
    var dpopNonce: Bool
    /// The algorithm of newly generated signing keys: ES256 (default), EdDSA, RS256 or PS256.
    var signingAlgorithm: JWSAlgorithm

    static func resolve(
        _ global: GlobalOptions, host: String? = nil, port: Int? = nil, issuer: String? = nil
    ) throws -> ResolvedConfiguration {
        let environment = ProcessInfo.processInfo.environment
        var file: [String: Any] = [:]
        if let path = global.config ?? environment["TESSERA_CONFIG"] {
            guard let data = FileManager.default.contents(atPath: path),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { throw ValidationError("cannot read configuration file \(path) as a JSON object") }
            let known: Set = [
                "host", "port", "issuer", "database", "keys_dir", "access_token_lifetime", "log_level", "dpop_nonce", "signing_alg",
            ]
            if let unknown = object.keys.first(where: { !known.contains($0) }) {
                throw ValidationError("unknown configuration key '\(unknown)' in \(path)")
            }
            file = object
        }
        func value(_ flag: String?, _ env: String, _ key: String) -> String? {
            if let flag { return flag }
            if let text = environment[env], !text.isEmpty { return text }
            if let fileValue = file[key] { return "\(fileValue)" }
            return nil
        }
        let resolvedHost = value(host, "TESSERA_HOST", "host") ?? "127.0.0.1"
        guard let resolvedPort = Int(value(port.map(String.init), "TESSERA_PORT", "port") ?? "8080"), (0...65535).contains(resolvedPort)
        else {
            throw ValidationError("port must be a number from 0 to 65535")
        }
        let defaultIssuer = "http://\(resolvedHost.contains(":") ? "[\(resolvedHost)]" : resolvedHost):\(resolvedPort)"
        let resolvedIssuer = value(issuer, "TESSERA_ISSUER", "issuer") ?? defaultIssuer
        guard let issuerURL = URL(string: resolvedIssuer), ["http", "https"].contains(issuerURL.scheme ?? ""), issuerURL.host != nil,
            issuerURL.query == nil, issuerURL.fragment == nil
        else { throw ValidationError("issuer must be an http(s) URL without query or fragment (RFC 8414 §2)") }
        guard let lifetime = TimeInterval(value(nil, "TESSERA_ACCESS_TOKEN_LIFETIME", "access_token_lifetime") ?? "600"),
            lifetime >= 1, lifetime <= BrokerSettings.maximumAccessTokenLifetime
        else { throw ValidationError("access_token_lifetime must be 1 to 900 seconds") }
        guard let level = Logger.Level(rawValue: value(nil, "TESSERA_LOG_LEVEL", "log_level") ?? "info") else {
            throw ValidationError("log_level must be one of trace, debug, info, notice, warning, error, critical")
        }
        let algorithmText = value(nil, "TESSERA_SIGNING_ALG", "signing_alg") ?? "ES256"
        guard let signingAlgorithm = JWSAlgorithm(rawValue: algorithmText), Self.signingAlgorithms.contains(signingAlgorithm) else {
            throw ValidationError("signing_alg must be one of \(Self.signingAlgorithms.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        let dpopNonceText = value(nil, "TESSERA_DPOP_NONCE", "dpop_nonce") ?? "true"
        guard ["true", "false", "1", "0"].contains(dpopNonceText) else { throw ValidationError("dpop_nonce must be true or false") }
        var kek: KeyEncryptionKey?
        let kekText = environment["TESSERA_KEK"] ?? ""
        if !kekText.isEmpty {
            guard let parsed = KeyEncryptionKey(secret: kekText) else {
                throw ValidationError("TESSERA_KEK must be at least 16 characters (use 32 random bytes, base64)")
            }
            kek = parsed
        }
        return ResolvedConfiguration(
            host: resolvedHost, port: resolvedPort, issuer: resolvedIssuer,
            database: value(global.database, "TESSERA_DATABASE", "database") ?? "sqlite:./data/tessera.db",
            keysDir: value(global.keysDir, "TESSERA_KEYS_DIR", "keys_dir") ?? "./Keys",
            accessTokenLifetime: lifetime, logLevel: level, kek: kek, kekConfigured: kek != nil,
            dpopNonce: dpopNonceText == "true" || dpopNonceText == "1", signingAlgorithm: signingAlgorithm)
    }

    /// DESIGN.md: ES256 by default; EdDSA, RS256 and PS256 configurable.
    static let signingAlgorithms: Set<JWSAlgorithm> = [.ES256, .EdDSA, .RS256, .PS256]

    var settings: BrokerSettings {
        BrokerSettings(issuer: issuer, accessTokenLifetime: accessTokenLifetime, signingAlgorithm: signingAlgorithm)
    }

    var keyDirectory: KeyDirectory {
        KeyDirectory(root: URL(fileURLWithPath: keysDir, isDirectory: true), kek: kek, retention: settings.keyRetention)
    }

    func openStore(logger: Logger) async throws -> any TesseraStore {
        if database.hasPrefix("sqlite:") {
            return try await SQLiteStore.open(path: String(database.dropFirst("sqlite:".count)), logger: logger)
        }
        if PostgresDatabaseURL.isPostgresURL(database) {
            // The pool size: the URL's `?pool=N`, else TESSERA_DB_POOL, else 8 connections.
            var poolSize = PostgresDatabaseURL.defaultPoolSize
            if let text = ProcessInfo.processInfo.environment["TESSERA_DB_POOL"], !text.isEmpty {
                guard let size = Int(text), PostgresDatabaseURL.poolSizes.contains(size) else {
                    throw ValidationError(
                        "TESSERA_DB_POOL must be a number from \(PostgresDatabaseURL.poolSizes.lowerBound) to \(PostgresDatabaseURL.poolSizes.upperBound)"
                    )
                }
                poolSize = size
            }
            // Neither error repeats the URL's password.
            let url: PostgresDatabaseURL
            do {
                url = try PostgresDatabaseURL(parsing: database, defaultPoolSize: poolSize)
            } catch {
                throw ValidationError(error.description)
            }
            return try await PostgresStore.open(url: url, logger: logger)
        }
        throw ValidationError("database must be sqlite:PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
    }
}

enum LogSetup {
    static func logger(label: String, level: Logger.Level) -> Logger {
        var logger = Logger(label: label) { label in JSONLogHandler(label: label, level: level) }
        logger.logLevel = level
        return logger
    }
}

/// Output for humans or, with `--json`, for scripts.
enum Output {
    static func emit(json: Bool, object: Any, text: String) {
        if json {
            let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(text)
        }
    }

    static var operatorActor: AuditEvent.Actor {
        .operator("cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "unknown"))
    }
}

extension GlobalOptions {
    /// Opens the configured store for one command, runs `body` and closes the store whatever
    /// happens, so no command leaves a writer thread or a lock behind.
    func withStore<T>(_ body: (any TesseraStore) async throws -> T) async throws -> T {
        let config = try ResolvedConfiguration.resolve(self)
        let store = try await config.openStore(logger: LogSetup.logger(label: "tessera", level: .warning))
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}
