public import Foundation
public import Logging
public import ServiceLifecycle
public import TesseraCore
public import TesseraJOSE
public import TesseraStore

/// The OAuth side of one broker instance, wired in one place (STYLE.md rule 3).
public struct Broker: Sendable {
    public let settings: BrokerSettings
    /// The store given, as the broker uses it: revocations committed through it refresh
    /// `revocationFeed` before they return (`RevocationRefreshingStore`).
    public let store: any TesseraStore
    public let keyRing: KeyRing
    /// This instance's view of every revocation, shared by everything that verifies a token.
    /// Run it (`RevocationFeedService`) for as long as the broker serves.
    public let revocationFeed: RevocationFeed
    public let tokenEndpoint: TokenEndpoint
    public let introspection: IntrospectionEndpoint
    public let revocation: RevocationEndpoint
    public let accessTokens: AccessTokenVerifier
    public let clock: any WallClock
    /// Server nonces for DPoP proofs at the token endpoint (RFC 9449 §8); nil when off.
    public let dpopNonces: DPoPNonceSource?

    public init(
        settings: BrokerSettings, store base: any TesseraStore, keyRing: KeyRing, clock: any WallClock = SystemWallClock(),
        throttle: AuthFailureThrottle = AuthFailureThrottle(), dpopNonces: DPoPNonceSource? = nil,
        revocationTiming: RevocationFeed.Timing = RevocationFeed.Timing(), logger: Logger = Logger(label: "tessera.revocations"),
        externalSubjects: (any ExternalSubjectVerifier)? = nil, jwksFetcher: (any JWKSFetcher)? = nil
    ) {
        self.settings = settings
        revocationFeed = RevocationFeed(
            log: base.revocations, notifications: base.revocationNotifications, clock: clock, timing: revocationTiming, logger: logger)
        let store = RevocationRefreshingStore(base: base, feed: revocationFeed)
        self.store = store
        self.keyRing = keyRing
        self.clock = clock
        let authenticator = ClientAuthenticator(
            clients: store.clients, replay: store.replay, throttle: throttle,
            assertionAudiences: [settings.tokenEndpoint, settings.issuer])
        accessTokens = AccessTokenVerifier(keyRing: keyRing, issuer: settings.issuer, revocations: revocationFeed)
        let policies = ExchangePolicySource(store: store.policies)
        let exchangeTokens = ExchangeTokenVerifier(
            accessTokens: accessTokens, workload: WorkloadTokenVerifier(), trustedIssuers: store.workloadIssuers, issuer: settings.issuer,
            external: externalSubjects, remoteKeys: jwksFetcher.map { RemoteJWKS(fetcher: $0) })
        tokenEndpoint = TokenEndpoint(
            settings: settings, store: store, authenticator: authenticator,
            handlers: [
                ClientCredentialsGrant(), TokenExchangeGrant(tokens: exchangeTokens, policies: policies),
                RefreshTokenGrant(store: store.refreshTokens, policies: policies),
            ],
            minter: AccessTokenMinter(keyRing: keyRing, issuer: settings.issuer),
            dpop: DPoPBinding(nonces: dpopNonces, replay: store.replay), clock: clock)
        self.dpopNonces = dpopNonces
        introspection = IntrospectionEndpoint(authenticator: authenticator, verifier: accessTokens, auditStore: store.audit, clock: clock)
        revocation = RevocationEndpoint(authenticator: authenticator, verifier: accessTokens, store: store, clock: clock)
    }
}

/// Background upkeep: picks up key rotations done by another process (`tessera keys rotate`)
/// within a second, and purges expired one-time values and token records.
public struct BrokerUpkeepService: Service {
    private let broker: Broker
    private let logger: Logger
    private let keyPollInterval: Duration

    public init(broker: Broker, logger: Logger, keyPollInterval: Duration = .seconds(1)) {
        self.broker = broker
        self.logger = logger
        self.keyPollInterval = keyPollInterval
    }

    public func run() async throws {
        var ticks = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await Task.sleep(for: keyPollInterval)
            } catch {
                return
            }
            do {
                if try broker.keyRing.reloadIfChanged() {
                    logger.notice("signing keys reloaded", metadata: ["active_kid": "\(broker.keyRing.activeKey.kid)"])
                }
            } catch {
                logger.error("signing keys could not be reloaded; keeping the previous set", metadata: ["error": "\(error)"])
            }
            ticks += 1
            if ticks % 300 == 0 {
                let now = broker.clock.now
                do {
                    let replay = try await broker.store.replay.purgeExpired(before: now)
                    let tokens = try await broker.store.tokens.purgeExpired(before: now.addingTimeInterval(-3600))
                    _ = try await broker.store.refreshTokens.purgeExpired(before: now.addingTimeInterval(-3600))
                    _ = try await broker.store.sessions.purgeExpired(before: now)
                    let revocations = try await broker.store.revocations.purgeExpired(before: now.addingTimeInterval(-3600))
                    logger.debug(
                        "purged expired records",
                        metadata: ["replay": "\(replay)", "tokens": "\(tokens)", "revocations": "\(revocations)"])
                } catch {
                    logger.warning("purge failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
