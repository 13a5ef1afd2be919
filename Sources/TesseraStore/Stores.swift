public import Foundation
public import TesseraCore

// Store protocols, one per aggregate (STYLE.md rule 8). Every state change takes the audit event
// that records it and commits both in one transaction: there is never a grant, a revocation or a
// new client without its audit record, nor an audit record for something that did not happen.
// Revocations also append their `RevocationLog` entries in that same transaction.

public protocol TenantStore: Sendable {
    /// Throws `alreadyExists` when the id is taken.
    func create(_ tenant: Tenant, audit: AuditEvent) async throws
    func get(_ id: TenantID) async throws -> Tenant?
    func list() async throws -> [Tenant]
}

public protocol ClientStore: Sendable {
    /// Throws `alreadyExists` when the client id is taken, `notFound` when the tenant does not exist.
    func create(_ client: OAuthClient, audit: AuditEvent) async throws
    func get(clientID: String) async throws -> OAuthClient?
    /// Clients of one tenant, or of every tenant when `tenant` is nil; ordered by creation.
    func list(tenant: TenantID?) async throws -> [OAuthClient]
    /// Marks the client disabled and logs it (`RevocationLog`, kind `client`). Throws `notFound`.
    /// Disabling twice keeps the first date and logs nothing more.
    func disable(clientID: String, at: Date, audit: AuditEvent) async throws
}

public protocol TokenStore: Sendable {
    /// Records an issued access token together with its `token.issued` audit event.
    func recordIssued(_ token: IssuedToken, audit: AuditEvent) async throws
    /// As `recordIssued`, and consumes `oneTime` (a DPoP proof's `jti`) in the same commit: one
    /// durable write per grant instead of two. Throws `alreadyExists`, writing nothing, when the
    /// value was used before and has not expired.
    func recordIssued(_ token: IssuedToken, audit: AuditEvent, consuming oneTime: OneTimeValue, now: Date) async throws
    func get(jti: String) async throws -> IssuedToken?
    /// Revokes a token of `tenant` and every token exchanged from it, recursively, and logs each
    /// jti it revoked (`RevocationLog`, kind `token`, with the token's expiry).
    /// A token of another tenant is `.unknown`: tenants never see each other's tokens.
    func revoke(jti: String, tenant: TenantID, at: Date, audit: AuditEvent) async throws -> RevocationOutcome
    func isRevoked(jti: String) async throws -> Bool
    /// Forgets issued and revoked records whose tokens expired before `before`.
    func purgeExpired(before: Date) async throws -> Int
}

/// A value that may be used once until it expires (an entry of `ReplayStore`).
public struct OneTimeValue: Sendable, Hashable {
    public let namespace: String
    public let id: String
    public let expiresAt: Date

    public init(namespace: String, id: String, expiresAt: Date) {
        self.namespace = namespace
        self.id = id
        self.expiresAt = expiresAt
    }
}

/// One-time values: client-assertion `jti`s, DPoP proof `jti`s, SAML assertion IDs, request IDs.
public protocol ReplayStore: Sendable {
    /// Atomically records `id` in `namespace` unless already present and unexpired.
    /// Returns true on first use, false on a replay.
    func consume(namespace: String, id: String, expiresAt: Date, now: Date) async throws -> Bool
    func purgeExpired(before: Date) async throws -> Int
}

public protocol AuditStore: Sendable {
    /// Appends an event that stands on its own (a denial, an authentication failure, an introspection).
    @discardableResult
    func append(_ event: AuditEvent) async throws -> AuditRecord
    /// Records in chain order with `seq > after`, at most `limit`.
    func records(after: Int64, limit: Int) async throws -> [AuditRecord]
    /// The last record's sequence number and hash as the store remembers them separately from the
    /// records, so that truncating the tail is detected too. Nil for an empty log.
    func head() async throws -> AuditHead?
}

/// Everything a broker instance persists, one protocol per aggregate.
public protocol TesseraStore: Sendable {
    var tenants: any TenantStore { get }
    var clients: any ClientStore { get }
    var tokens: any TokenStore { get }
    var replay: any ReplayStore { get }
    var audit: any AuditStore { get }
    var policies: any PolicyStore { get }
    var workloadIssuers: any WorkloadIssuerStore { get }
    var refreshTokens: any RefreshTokenStore { get }
    var users: any UserStore { get }
    var sessions: any SessionStore { get }
    var oidcProviders: any OIDCProviderStore { get }
    var samlProviders: any SAMLProviderStore { get }
    var revocations: any RevocationLog { get }
    /// Nil when the backend cannot push (SQLite): instances then learn of revocations by polling.
    var revocationNotifications: (any RevocationNotifications)? { get }
    /// Cheap liveness check of the backend for `/readyz`.
    func ping() async throws
    /// Waits for pending writes, then closes.
    func close() async
}

/// Tenant policy documents, versioned: `put` never overwrites, it adds the next version.
public protocol PolicyStore: Sendable {
    /// Stores `document` as the tenant's next version (1 for the first) and returns it, with the
    /// audit event in the same commit. Throws `notFound` when the tenant does not exist.
    func put(tenant: TenantID, document: String, at: Date, audit: AuditEvent) async throws -> StoredPolicy
    /// The newest version, nil when the tenant has none (then everything is denied).
    func current(tenant: TenantID) async throws -> StoredPolicy?
}

/// External JWT issuers each tenant trusts for workload identity federation.
public protocol WorkloadIssuerStore: Sendable {
    /// Throws `alreadyExists` when the tenant already trusts that issuer (or the id is taken),
    /// `notFound` when the tenant does not exist.
    func add(_ issuer: WorkloadIssuer, audit: AuditEvent) async throws
    /// The tenant's issuers in creation order.
    func list(tenant: TenantID) async throws -> [WorkloadIssuer]
    func find(tenant: TenantID, issuer: String) async throws -> WorkloadIssuer?
}

/// Refresh-token families and their rotating tokens (RFC 6749 §6, RFC 9700 §4.14.2).
public protocol RefreshTokenStore: Sendable {
    /// In one commit: the family (also recorded as a lineage node, child of `family.parentJTI`),
    /// its first refresh token, the access token (whose parent is the family) and the audit event.
    /// Throws `conflict` when the family's parent is already revoked.
    func recordIssued(_ token: IssuedToken, family: RefreshFamily, refresh: RefreshTokenRecord, audit: AuditEvent) async throws
    /// The family of a presented refresh token (by its SHA-256), nil when unknown or expired at `now`.
    func lookup(hash: [UInt8], now: Date) async throws -> RefreshLookup?
    /// Atomically consumes the presented token: when it is unused and its family live, marks it
    /// used and records `next`, `token` and `audit`; when it was used before, revokes the family
    /// with every token minted from it, logs each jti revoked (`RevocationLog`) and records
    /// `reuseAudit` instead (RFC 9700 §4.14.2).
    func rotate(
        presented hash: [UInt8], next: RefreshTokenRecord, token: IssuedToken, at: Date, audit: AuditEvent,
        reuseAudit: AuditEvent
    ) async throws -> RefreshRotation
    /// Forgets families, and their tokens, that expired before `before`.
    func purgeExpired(before: Date) async throws -> Int
}

/// The tenant's users, provisioned just in time.
public protocol UserStore: Sendable {
    /// Creates the user of `identity` (tenant, subject) or updates its identity and last sign-in,
    /// with the audit event in the same commit. A disabled user is returned unchanged (still
    /// disabled) and nothing is written: the caller refuses the sign-in.
    func upsert(_ identity: NormalizedIdentity, at: Date, audit: AuditEvent) async throws -> User
    func get(tenant: TenantID, subject: String) async throws -> User?
    /// Throws `notFound`.
    func disable(tenant: TenantID, subject: String, at: Date, audit: AuditEvent) async throws
}

/// Human sessions, by the SHA-256 of their cookie.
public protocol SessionStore: Sendable {
    /// Throws `alreadyExists` on a hash collision (never in practice).
    func create(_ session: HumanSession, audit: AuditEvent) async throws
    /// The live session: nil when unknown, past its absolute expiry, idle longer than `idleTimeout`,
    /// or its user disabled. A hit records `now` as last seen.
    func touch(hash: [UInt8], now: Date, idleTimeout: TimeInterval) async throws -> HumanSession?
    /// Ends the session; false when there was none (then nothing is written).
    func delete(hash: [UInt8], audit: AuditEvent) async throws -> Bool
    func purgeExpired(before: Date) async throws -> Int
}

/// Upstream OpenID Providers, at most one per tenant.
public protocol OIDCProviderStore: Sendable {
    /// Throws `alreadyExists` when the tenant has one (or the id is taken), `notFound` for an
    /// unknown tenant.
    func add(_ provider: OIDCProviderConfig, audit: AuditEvent) async throws
    func get(tenant: TenantID) async throws -> OIDCProviderConfig?
}

/// Upstream SAML identity providers, at most one per tenant, with their last good metadata.
///
/// The same IdP entityID may be trusted by several tenants: each tenant is its own service
/// provider (its own SP entityID), so audience binding keeps their assertions apart.
public protocol SAMLProviderStore: Sendable {
    /// Throws `alreadyExists` when the tenant has one (or the id is taken), `notFound` for an
    /// unknown tenant, `conflict` for metadata over `SAMLMetadataLimit.maximumBytes`.
    func add(_ record: SAMLProviderRecord, audit: AuditEvent) async throws
    func get(tenant: TenantID) async throws -> SAMLProviderRecord?
    /// Every tenant's, oldest first: the metadata refresher walks them.
    func list() async throws -> [SAMLProviderRecord]
    /// Replaces the metadata document of provider `id` and the entityID it names (the config's
    /// `entityID`), with `audit` in the same commit. Throws `notFound` for an unknown id,
    /// `conflict` for metadata over `SAMLMetadataLimit.maximumBytes`.
    func replaceMetadata(id: String, entityID: String, metadata: String, fetchedAt: Date, audit: AuditEvent) async throws
}

/// The bound every backend puts on a stored SAML metadata document, in one place. Real metadata is
/// tens of kilobytes (federation aggregates are not per-IdP documents and are not stored here).
public enum SAMLMetadataLimit {
    /// 1 MiB of UTF-8.
    public static let maximumBytes = 1 << 20

    /// Throws `conflict` when `metadata` is over `maximumBytes` bytes of UTF-8.
    public static func require(_ metadata: String) throws(StoreError) {
        guard metadata.utf8.count <= maximumBytes else {
            throw StoreError.conflict("the SAML metadata document is larger than \(maximumBytes) bytes")
        }
    }
}
