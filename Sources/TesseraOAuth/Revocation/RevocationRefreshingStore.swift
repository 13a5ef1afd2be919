import Foundation
import TesseraCore
import TesseraStore

/// The store as the broker uses it: every revocation this process commits through it (a token or
/// refresh family revoked at `/oauth2/revoke`, a refresh reuse at `/oauth2/token`, a client
/// disabled) refreshes the revocation feed before the call returns. So the instance that answered
/// 200 to a revocation never answers "active" for the token afterwards, without waiting for its
/// next poll; other instances hear of it through the log within a poll interval.
///
/// When that refresh fails the call still succeeds (the revocation is committed) and the feed
/// turns stale, so verification answers 503 until it has read the log (`RevocationFeed.refresh`).
struct RevocationRefreshingStore: TesseraStore {
    let base: any TesseraStore
    let feed: RevocationFeed

    var tenants: any TenantStore { base.tenants }
    var clients: any ClientStore { Clients(base: base.clients, feed: feed) }
    var tokens: any TokenStore { Tokens(base: base.tokens, feed: feed) }
    var replay: any ReplayStore { base.replay }
    var audit: any AuditStore { base.audit }
    var policies: any PolicyStore { base.policies }
    var workloadIssuers: any WorkloadIssuerStore { base.workloadIssuers }
    var refreshTokens: any RefreshTokenStore { RefreshTokens(base: base.refreshTokens, feed: feed) }
    var users: any UserStore { base.users }
    var sessions: any SessionStore { base.sessions }
    var oidcProviders: any OIDCProviderStore { base.oidcProviders }
    var samlProviders: any SAMLProviderStore { base.samlProviders }
    var revocations: any RevocationLog { base.revocations }
    var revocationNotifications: (any RevocationNotifications)? { base.revocationNotifications }

    func ping() async throws { try await base.ping() }
    func close() async { await base.close() }

    private struct Clients: ClientStore {
        let base: any ClientStore
        let feed: RevocationFeed

        func create(_ client: OAuthClient, audit: AuditEvent) async throws { try await base.create(client, audit: audit) }
        func get(clientID: String) async throws -> OAuthClient? { try await base.get(clientID: clientID) }
        func list(tenant: TenantID?) async throws -> [OAuthClient] { try await base.list(tenant: tenant) }

        func disable(clientID: String, at date: Date, audit: AuditEvent) async throws {
            try await base.disable(clientID: clientID, at: date, audit: audit)
            try? await feed.refresh()
        }
    }

    private struct Tokens: TokenStore {
        let base: any TokenStore
        let feed: RevocationFeed

        func recordIssued(_ token: IssuedToken, audit: AuditEvent) async throws { try await base.recordIssued(token, audit: audit) }
        func recordIssued(_ token: IssuedToken, audit: AuditEvent, consuming oneTime: OneTimeValue, now: Date) async throws {
            try await base.recordIssued(token, audit: audit, consuming: oneTime, now: now)
        }
        func get(jti: String) async throws -> IssuedToken? { try await base.get(jti: jti) }
        func isRevoked(jti: String) async throws -> Bool { try await base.isRevoked(jti: jti) }
        func purgeExpired(before date: Date) async throws -> Int { try await base.purgeExpired(before: date) }

        func revoke(jti: String, tenant: TenantID, at date: Date, audit: AuditEvent) async throws -> RevocationOutcome {
            let outcome = try await base.revoke(jti: jti, tenant: tenant, at: date, audit: audit)
            if case .revoked = outcome { try? await feed.refresh() }
            return outcome
        }
    }

    private struct RefreshTokens: RefreshTokenStore {
        let base: any RefreshTokenStore
        let feed: RevocationFeed

        func recordIssued(_ token: IssuedToken, family: RefreshFamily, refresh: RefreshTokenRecord, audit: AuditEvent) async throws {
            try await base.recordIssued(token, family: family, refresh: refresh, audit: audit)
        }
        func lookup(hash: [UInt8], now: Date) async throws -> RefreshLookup? { try await base.lookup(hash: hash, now: now) }
        func purgeExpired(before date: Date) async throws -> Int { try await base.purgeExpired(before: date) }

        func rotate(
            presented hash: [UInt8], next: RefreshTokenRecord, token: IssuedToken, at date: Date, audit: AuditEvent,
            reuseAudit: AuditEvent
        ) async throws -> RefreshRotation {
            let rotation = try await base.rotate(presented: hash, next: next, token: token, at: date, audit: audit, reuseAudit: reuseAudit)
            if case .reused = rotation { try? await feed.refresh() }
            return rotation
        }
    }
}
