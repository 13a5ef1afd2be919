import Foundation
import Logging

/// One schema change. Versions are applied in order, each in its own transaction, and recorded in
/// `schema_migrations`; a migration, once released, is never edited: a change is a new version.
struct Migration: Sendable {
    let version: Int64
    let summary: String
    let sql: String
}

enum Migrations {
    static let all: [Migration] = [
        Migration(
            version: 1, summary: "tenants, clients, issued tokens, replay, audit log",
            sql: """
                CREATE TABLE tenants (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    domains TEXT NOT NULL,            -- JSON array of strings
                    created_at INTEGER NOT NULL       -- Unix milliseconds, like every date here
                ) STRICT;

                CREATE TABLE clients (
                    client_id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL REFERENCES tenants (id),
                    name TEXT NOT NULL,
                    auth_method TEXT NOT NULL,
                    secret_hash BLOB,
                    jwks TEXT,
                    scopes TEXT NOT NULL,             -- canonical ScopeSet text
                    grant_types TEXT NOT NULL,        -- sorted, space-separated
                    dpop TEXT NOT NULL,
                    may_introspect INTEGER NOT NULL,
                    disabled_at INTEGER,
                    created_at INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX clients_by_tenant ON clients (tenant_id, created_at);
                CREATE INDEX clients_by_creation ON clients (created_at);

                CREATE TABLE issued_tokens (
                    jti TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    scopes TEXT NOT NULL,             -- scope tokens, space-separated, in order
                    issued_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    parent_jti TEXT,
                    revoked_at INTEGER
                ) STRICT;
                CREATE INDEX issued_tokens_by_parent ON issued_tokens (parent_jti) WHERE parent_jti IS NOT NULL;
                CREATE INDEX issued_tokens_by_expiry ON issued_tokens (expires_at);

                CREATE TABLE replay (
                    namespace TEXT NOT NULL,
                    id TEXT NOT NULL,
                    expires_at INTEGER NOT NULL,
                    PRIMARY KEY (namespace, id)
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX replay_by_expiry ON replay (expires_at);

                CREATE TABLE audit (
                    seq INTEGER PRIMARY KEY,
                    body BLOB NOT NULL,               -- canonical JSON of the event, hashed as stored
                    prev_hash TEXT NOT NULL,
                    hash TEXT NOT NULL
                ) STRICT;
                -- Defence in depth only: whoever can write the file can drop these; the hash chain
                -- is what detects them.
                CREATE TRIGGER audit_is_append_only_on_update BEFORE UPDATE ON audit
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_is_append_only_on_delete BEFORE DELETE ON audit
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

                -- The head, kept apart from the records so that cutting off the tail is detected.
                CREATE TABLE audit_head (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    seq INTEGER NOT NULL,
                    hash TEXT NOT NULL
                ) STRICT;
                """),
        Migration(
            version: 2, summary: "exchange policies, workload issuers, refresh-token families",
            sql: """
                CREATE TABLE policies (
                    tenant_id TEXT NOT NULL REFERENCES tenants (id),
                    version INTEGER NOT NULL,
                    document TEXT NOT NULL,           -- canonical JSON
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, version)
                ) STRICT;

                CREATE TABLE workload_issuers (
                    id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL REFERENCES tenants (id),
                    issuer TEXT NOT NULL,
                    jwks TEXT NOT NULL,
                    audience TEXT NOT NULL,
                    subject_patterns TEXT NOT NULL,   -- JSON array of globs
                    claim_conditions TEXT NOT NULL,   -- JSON object, claim name to glob
                    scopes TEXT NOT NULL,             -- canonical ScopeSet text
                    created_at INTEGER NOT NULL,
                    UNIQUE (tenant_id, issuer)
                ) STRICT;

                -- Each family is also a row of issued_tokens (jti = family_id), so that revoking
                -- the token it was exchanged from reaches it and every access token it minted.
                CREATE TABLE refresh_families (
                    family_id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    subject_type TEXT NOT NULL,
                    scopes TEXT NOT NULL,             -- canonical ScopeSet text
                    audience TEXT NOT NULL,           -- JSON array of strings
                    act_claim TEXT,                   -- canonical JSON
                    jkt TEXT,
                    policy_facts TEXT NOT NULL,       -- canonical JSON
                    parent_jti TEXT,
                    issued_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX refresh_families_by_expiry ON refresh_families (expires_at);

                -- Only the SHA-256 of a refresh token is ever stored.
                CREATE TABLE refresh_tokens (
                    hash BLOB PRIMARY KEY,
                    family_id TEXT NOT NULL,
                    issued_at INTEGER NOT NULL,
                    used_at INTEGER
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
                """),
        Migration(
            version: 3, summary: "users, human sessions, upstream OpenID Providers",
            sql: """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL REFERENCES tenants (id),
                    subject TEXT NOT NULL,
                    identity TEXT NOT NULL,           -- canonical JSON of NormalizedIdentity
                    disabled_at INTEGER,
                    created_at INTEGER NOT NULL,
                    last_sign_in_at INTEGER NOT NULL,
                    UNIQUE (tenant_id, subject)
                ) STRICT;

                -- Only the SHA-256 of a session cookie is ever stored. No foreign key to users:
                -- `touch` answers only for a session whose user exists and is not disabled.
                CREATE TABLE sessions (
                    hash BLOB PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    identity TEXT NOT NULL,           -- canonical JSON of NormalizedIdentity at sign-in
                    created_at INTEGER NOT NULL,
                    last_seen_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX sessions_by_expiry ON sessions (expires_at);
                CREATE INDEX sessions_by_user ON sessions (user_id);

                CREATE TABLE oidc_providers (
                    id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL UNIQUE REFERENCES tenants (id),
                    config TEXT NOT NULL,             -- canonical JSON of OIDCProviderConfig
                    created_at INTEGER NOT NULL
                ) STRICT;
                """),
        Migration(
            version: 4, summary: "revocation log",
            sql: """
                -- Every revocation appends here in its own transaction; instances follow the log by
                -- seq. AUTOINCREMENT: a seq is never handed out twice, even after the newest
                -- entries were purged, so a reader's position stays valid.
                CREATE TABLE revocation_log (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL CHECK (kind IN ('token', 'client')),
                    id TEXT NOT NULL,                 -- jti or client_id
                    tenant_id TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    expires_at INTEGER                -- the token's exp; NULL for a client
                ) STRICT;
                CREATE INDEX revocation_log_by_expiry ON revocation_log (expires_at) WHERE expires_at IS NOT NULL;
                CREATE TRIGGER revocation_log_is_append_only BEFORE UPDATE ON revocation_log
                BEGIN SELECT RAISE(ABORT, 'the revocation log is append-only'); END;

                -- What was revoked or disabled before the log existed.
                INSERT INTO revocation_log (kind, id, tenant_id, at, expires_at)
                SELECT 'token', jti, tenant_id, revoked_at, expires_at FROM issued_tokens
                WHERE revoked_at IS NOT NULL ORDER BY revoked_at, jti;
                INSERT INTO revocation_log (kind, id, tenant_id, at, expires_at)
                SELECT 'client', client_id, tenant_id, disabled_at, NULL FROM clients
                WHERE disabled_at IS NOT NULL ORDER BY disabled_at, client_id;
                """),
        Migration(
            version: 5, summary: "upstream SAML identity providers",
            sql: """
                -- No UNIQUE on the IdP's entityID: two tenants may trust the same IdP (each is its
                -- own SP, with its own SP entityID, so audience binding keeps them apart).
                CREATE TABLE saml_providers (
                    id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL UNIQUE REFERENCES tenants (id),
                    config TEXT NOT NULL,             -- canonical JSON of SAMLProviderConfig
                    metadata TEXT NOT NULL,           -- the IdP's metadata XML as last fetched and parsed
                    metadata_fetched_at INTEGER NOT NULL,
                    created_at INTEGER NOT NULL
                ) STRICT;
                """),
    ]

    static var latestVersion: Int64 { all.last?.version ?? 0 }

    /// Brings the database up to `latestVersion`. Safe when another process migrates at the same
    /// time: each version is re-checked inside its own write transaction.
    static func apply(on connection: SQLiteConnection, logger: Logger) throws {
        try connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT")
        let found = try currentVersion(connection)
        guard found <= latestVersion else {
            throw SQLiteStoreError.schemaTooNew(found: found, supported: latestVersion)
        }
        for migration in all where migration.version > found {
            try connection.execute("BEGIN IMMEDIATE")
            do {
                let newest = try currentVersion(connection)
                guard newest <= latestVersion else {
                    throw SQLiteStoreError.schemaTooNew(found: newest, supported: latestVersion)
                }
                if newest < migration.version {
                    try connection.execute(migration.sql)
                    try connection.run(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                        [.integer(migration.version), .date(Date())])
                    logger.info(
                        "sqlite migration applied",
                        metadata: ["schema.version": "\(migration.version)", "summary": "\(migration.summary)"])
                }
                try connection.execute("COMMIT")
            } catch {
                if !connection.isAutocommit { try? connection.execute("ROLLBACK") }
                throw error
            }
        }
    }

    static func currentVersion(_ connection: SQLiteConnection) throws -> Int64 {
        let newest = try connection.queryOne("SELECT MAX(version) FROM schema_migrations") { $0.optionalInt64(0) }
        return newest.flatMap { $0 } ?? 0
    }
}
