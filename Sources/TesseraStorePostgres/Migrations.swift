import Foundation
import Logging
import PostgresNIO
import TesseraStore

/// One schema change, numbered like the SQLite backend's (same versions, same tables, PostgreSQL
/// types). Applied in order, each in its own transaction, and recorded in `schema_migrations`; a
/// migration, once released, is never edited: a change is a new version.
struct Migration: Sendable {
    let version: Int64
    let summary: String
    /// Run one by one (the extended protocol takes one statement per query).
    let statements: [String]
}

/// Representation, the same as SQLite's wherever that is possible: every date is a BIGINT of Unix
/// milliseconds (exact round trips, the same rounding and comparisons as the other backend, no
/// time zone setting involved); hashes and the audit bodies are BYTEA; lists and small objects
/// are the same JSON text as in SQLite. Ids and keys are `COLLATE "C"`: ordered byte-wise like
/// SQLite, whatever the database's locale. The audit chain's links stay hex TEXT, since the hex
/// text is what the next link hashes.
enum Migrations {
    static let all: [Migration] = [
        Migration(
            version: 1, summary: "tenants, clients, issued tokens, replay, audit log",
            statements: [
                """
                CREATE TABLE tenants (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    name TEXT NOT NULL,
                    domains TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE clients (
                    client_id TEXT COLLATE "C" PRIMARY KEY,
                    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
                    name TEXT NOT NULL,
                    auth_method TEXT NOT NULL,
                    secret_hash BYTEA,
                    jwks TEXT,
                    scopes TEXT NOT NULL,
                    grant_types TEXT NOT NULL,
                    dpop TEXT NOT NULL,
                    may_introspect BOOLEAN NOT NULL,
                    disabled_at BIGINT,
                    created_at BIGINT NOT NULL,
                    position BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
                )
                """,
                "CREATE INDEX clients_by_tenant ON clients (tenant_id, created_at, position)",
                "CREATE INDEX clients_by_creation ON clients (created_at, position)",
                """
                CREATE TABLE issued_tokens (
                    jti TEXT COLLATE "C" PRIMARY KEY,
                    tenant_id TEXT COLLATE "C" NOT NULL,
                    client_id TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    scopes TEXT NOT NULL,
                    issued_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    parent_jti TEXT COLLATE "C",
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX issued_tokens_by_parent ON issued_tokens (parent_jti) WHERE parent_jti IS NOT NULL",
                "CREATE INDEX issued_tokens_by_expiry ON issued_tokens (expires_at)",
                """
                CREATE TABLE replay (
                    namespace TEXT COLLATE "C" NOT NULL,
                    id TEXT COLLATE "C" NOT NULL,
                    expires_at BIGINT NOT NULL,
                    PRIMARY KEY (namespace, id)
                )
                """,
                "CREATE INDEX replay_by_expiry ON replay (expires_at)",
                """
                CREATE TABLE audit (
                    seq BIGINT PRIMARY KEY CHECK (seq > 0),
                    body BYTEA NOT NULL,
                    prev_hash TEXT NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
                    hash TEXT NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
                )
                """,
                // Defence in depth only: whoever owns the tables can drop the trigger; the hash
                // chain is what detects a change.
                """
                CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
                END
                $$
                """,
                """
                CREATE TRIGGER audit_is_append_only BEFORE UPDATE OR DELETE ON audit
                FOR EACH ROW EXECUTE FUNCTION audit_is_append_only()
                """,
                """
                CREATE TRIGGER audit_is_not_truncated BEFORE TRUNCATE ON audit
                FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only()
                """,
                // The head, kept apart from the records so that cutting off the tail is detected.
                // Its one row exists from the start (seq 0 is the empty log): appends lock it with
                // `FOR UPDATE`, which needs a row to lock even for the very first record.
                """
                CREATE TABLE audit_head (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    seq BIGINT NOT NULL CHECK (seq >= 0),
                    hash TEXT NOT NULL
                )
                """,
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '\(AuditChain.genesis)')",
            ]),
        Migration(
            version: 2, summary: "exchange policies, workload issuers, refresh-token families",
            statements: [
                """
                CREATE TABLE policies (
                    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
                    version BIGINT NOT NULL,
                    document TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (tenant_id, version)
                )
                """,
                """
                CREATE TABLE workload_issuers (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
                    issuer TEXT COLLATE "C" NOT NULL,
                    jwks TEXT NOT NULL,
                    audience TEXT NOT NULL,
                    subject_patterns TEXT NOT NULL,
                    claim_conditions TEXT NOT NULL,
                    scopes TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    position BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                    UNIQUE (tenant_id, issuer)
                )
                """,
                // Each family is also a row of issued_tokens (jti = family_id), so that revoking
                // the token it was exchanged from reaches it and every access token it minted.
                """
                CREATE TABLE refresh_families (
                    family_id TEXT COLLATE "C" PRIMARY KEY,
                    tenant_id TEXT COLLATE "C" NOT NULL,
                    client_id TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    subject_type TEXT NOT NULL,
                    scopes TEXT NOT NULL,
                    audience TEXT NOT NULL,
                    act_claim TEXT,
                    jkt TEXT,
                    policy_facts TEXT NOT NULL,
                    parent_jti TEXT COLLATE "C",
                    issued_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX refresh_families_by_expiry ON refresh_families (expires_at)",
                // Only the SHA-256 of a refresh token is ever stored.
                """
                CREATE TABLE refresh_tokens (
                    hash BYTEA PRIMARY KEY,
                    family_id TEXT COLLATE "C" NOT NULL,
                    issued_at BIGINT NOT NULL,
                    used_at BIGINT
                )
                """,
                "CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id)",
            ]),
        Migration(
            version: 3, summary: "users, human sessions, upstream OpenID Providers",
            statements: [
                """
                CREATE TABLE users (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
                    subject TEXT COLLATE "C" NOT NULL,
                    identity TEXT NOT NULL,
                    disabled_at BIGINT,
                    created_at BIGINT NOT NULL,
                    last_sign_in_at BIGINT NOT NULL,
                    UNIQUE (tenant_id, subject)
                )
                """,
                // Only the SHA-256 of a session cookie is ever stored. No foreign key to users:
                // `touch` answers only for a session whose user exists and is not disabled.
                """
                CREATE TABLE sessions (
                    hash BYTEA PRIMARY KEY,
                    tenant_id TEXT COLLATE "C" NOT NULL,
                    user_id TEXT COLLATE "C" NOT NULL,
                    identity TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    last_seen_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX sessions_by_expiry ON sessions (expires_at)",
                "CREATE INDEX sessions_by_user ON sessions (user_id)",
                """
                CREATE TABLE oidc_providers (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    tenant_id TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES tenants (id),
                    config TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
            ]),
        Migration(
            version: 4, summary: "revocation log",
            statements: [
                // A sequence never hands a value out twice, so a reader's position stays valid
                // after purges. Appends take a lock on the table until they commit
                // (`PostgresTransaction.appendRevocations`), which makes seq order commit order.
                """
                CREATE TABLE revocation_log (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    kind TEXT NOT NULL CHECK (kind IN ('token', 'client')),
                    id TEXT COLLATE "C" NOT NULL,
                    tenant_id TEXT COLLATE "C" NOT NULL,
                    at BIGINT NOT NULL,
                    expires_at BIGINT
                )
                """,
                "CREATE INDEX revocation_log_by_expiry ON revocation_log (expires_at) WHERE expires_at IS NOT NULL",
                """
                CREATE FUNCTION revocation_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'the revocation log is append-only' USING ERRCODE = 'insufficient_privilege';
                END
                $$
                """,
                """
                CREATE TRIGGER revocation_log_is_append_only BEFORE UPDATE ON revocation_log
                FOR EACH ROW EXECUTE FUNCTION revocation_log_is_append_only()
                """,
                // What was revoked or disabled before the log existed.
                """
                INSERT INTO revocation_log (kind, id, tenant_id, at, expires_at)
                SELECT 'token', jti, tenant_id, revoked_at, expires_at FROM issued_tokens
                WHERE revoked_at IS NOT NULL ORDER BY revoked_at, jti
                """,
                """
                INSERT INTO revocation_log (kind, id, tenant_id, at, expires_at)
                SELECT 'client', client_id, tenant_id, disabled_at, NULL FROM clients
                WHERE disabled_at IS NOT NULL ORDER BY disabled_at, client_id
                """,
            ]),
        Migration(
            version: 5, summary: "upstream SAML identity providers",
            statements: [
                // No UNIQUE on the IdP's entityID: two tenants may trust the same IdP (each is its
                // own SP, with its own SP entityID, so audience binding keeps them apart).
                """
                CREATE TABLE saml_providers (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    tenant_id TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES tenants (id),
                    config TEXT NOT NULL,
                    metadata TEXT NOT NULL,
                    metadata_fetched_at BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    position BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
                )
                """
            ]),
    ]

    static var latestVersion: Int64 { all.last?.version ?? 0 }

    /// Any constant will do as long as every Tessera uses the same one; this is "tessera" in ASCII.
    static let advisoryLockKey: Int64 = 0x74_65_73_73_65_72_61

    /// Brings the database up to `latestVersion`. Safe when several instances start at once: each
    /// step takes `pg_advisory_xact_lock` first, so one migrates while the others wait, then find
    /// the work done. The lock is a transaction lock: it cannot outlive a crashed migrator.
    /// `logger` gets the store's own messages, `driverLogger` goes to PostgresNIO.
    static func apply(on connection: PostgresConnection, logger: Logger, driverLogger: Logger) async throws {
        while true {
            try await connection.query("BEGIN ISOLATION LEVEL READ COMMITTED", logger: driverLogger)
            do {
                try await connection.query("SELECT pg_advisory_xact_lock(\(advisoryLockKey))", logger: driverLogger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                    logger: driverLogger)
                var found: Int64 = 0
                for try await version in try await connection.query(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", logger: driverLogger
                ).decode(Int64.self) {
                    found = version
                }
                guard found <= latestVersion else {
                    throw PostgresStoreError.schemaTooNew(found: found, supported: latestVersion)
                }
                guard let migration = all.first(where: { $0.version > found }) else {
                    try await connection.query("COMMIT", logger: driverLogger)
                    return
                }
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: driverLogger)
                }
                let now = Date().unixMilliseconds
                try await connection.query(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (\(migration.version), \(now))", logger: driverLogger)
                try await connection.query("COMMIT", logger: driverLogger)
                logger.info(
                    "postgres migration applied",
                    metadata: ["schema.version": "\(migration.version)", "summary": "\(migration.summary)"])
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: driverLogger)
                throw error
            }
        }
    }
}
