public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import TesseraCore
public import TesseraStore

/// This instance's in-memory deny set, fed by the store's revocation log: the revocation bus
/// (DESIGN.md: PostgreSQL `LISTEN`/`NOTIFY`), read on every token verification instead of the store.
///
/// The log is the record; notifications are only a hint. The feed loads the whole log at start,
/// then reads what follows the last `seq` it has seen: every `pollInterval` (500 ms), at once
/// when a notification arrives, after every (re)subscription (whatever was announced while the
/// connection was down is read then), and on `refresh()`. A lost notification therefore delays a
/// revocation by at most one poll interval.
///
/// Fail closed: when no poll has succeeded for `maximumStaleness` (2 s) the feed answers
/// `.stale` and verification fails with a store error (503), never with a possibly stale
/// "active". Staleness is measured on a monotonic clock, so a wall clock that is pinned (tests)
/// or steps does not fake freshness; expiry of entries uses the wall clock that `exp` is checked
/// against.
public final class RevocationFeed: Sendable {
    public struct Timing: Sendable {
        public var pollInterval: Duration
        public var maximumStaleness: Duration
        /// Pause before subscribing again after the notification connection failed.
        public var resubscribeDelay: Duration
        public var pageSize: Int

        public init(
            pollInterval: Duration = .milliseconds(500), maximumStaleness: Duration = .seconds(2),
            resubscribeDelay: Duration = .seconds(1), pageSize: Int = 1_000
        ) {
            self.pollInterval = pollInterval
            self.maximumStaleness = maximumStaleness
            self.resubscribeDelay = resubscribeDelay
            self.pageSize = pageSize
        }
    }

    /// What the feed knows of one token.
    public enum Status: Sendable, Equatable {
        case active
        case revoked
        case clientDisabled
        /// The feed has not read the log recently enough to say.
        case stale
    }

    private struct State {
        var lastSeq: Int64 = 0
        /// jti to the token's expiry; dropped once expired (`ClockSkew.allowed` later).
        var revokedTokens: [String: Date] = [:]
        var disabledClients: Set<String> = []
        /// Monotonic time at which the newest successful poll started: it saw every revocation
        /// committed before then.
        var freshAsOf: Duration?
        /// A poll counts only when it started at or after this: set when a refresh after a
        /// revocation of this process failed, since that revocation is then known to be unread.
        var requiredFreshness: Duration = .zero
        var lastPruned: Duration?
        var pollFailing = false
        var listenFailing = false
        var runnerActive = false
    }

    private let log: any RevocationLog
    private let notifications: (any RevocationNotifications)?
    private let clock: any WallClock
    private let uptime: @Sendable () -> Duration
    private let logger: Logger
    public let timing: Timing
    private let state = Mutex(State())

    /// How often expired entries are dropped from memory.
    static let pruneInterval: Duration = .seconds(10)

    /// - Parameters:
    ///   - uptime: a monotonic clock (the default counts from process start); injected by tests.
    public init(
        log: any RevocationLog, notifications: (any RevocationNotifications)?, clock: any WallClock, timing: Timing = Timing(),
        logger: Logger = Logger(label: "tessera.revocations"), uptime: @escaping @Sendable () -> Duration = RevocationFeed.systemUptime
    ) {
        self.log = log
        self.notifications = notifications
        self.clock = clock
        self.timing = timing
        self.logger = logger
        self.uptime = uptime
    }

    private static let origin = ContinuousClock.now
    /// Time since the first use, on `ContinuousClock`.
    public static let systemUptime: @Sendable () -> Duration = { ContinuousClock.now - origin }

    // MARK: Reading

    /// The answer for a token with `jti` issued to `clientID`; `.stale` whenever the feed cannot
    /// vouch for having read every revocation committed up to `maximumStaleness` ago.
    public func status(jti: String, clientID: String) -> Status {
        let now = uptime()
        return state.withLock { state in
            guard Self.isFresh(state, now: now, within: timing.maximumStaleness) else { return .stale }
            if state.disabledClients.contains(clientID) { return .clientDisabled }
            if state.revokedTokens[jti] != nil { return .revoked }
            return .active
        }
    }

    /// Whether `status` answers anything but `.stale` now (for `/readyz`).
    public var isFresh: Bool {
        let now = uptime()
        return state.withLock { Self.isFresh($0, now: now, within: timing.maximumStaleness) }
    }

    /// The highest `seq` read so far.
    public var lastSeq: Int64 { state.withLock { $0.lastSeq } }

    /// Revoked tokens held in memory (unexpired ones, give or take the prune interval).
    public var revokedTokenCount: Int { state.withLock { $0.revokedTokens.count } }

    private static func isFresh(_ state: State, now: Duration, within limit: Duration) -> Bool {
        guard let fresh = state.freshAsOf, fresh >= state.requiredFreshness else { return false }
        return now - fresh <= limit
    }

    // MARK: Polling

    /// Reads the log now. For callers that just committed a revocation: once this returns, the
    /// feed holds it. When the read fails the feed turns stale until a poll that starts later
    /// succeeds, so the revocation can never be answered "active" meanwhile. Throws a store error.
    public func refresh() async throws {
        let requested = uptime()
        do {
            try await poll()
        } catch {
            state.withLock { $0.requiredFreshness = max($0.requiredFreshness, requested) }
            throw error
        }
    }

    /// Reads every entry after the last `seq` seen, page by page, and applies it. Polls may run
    /// concurrently: entries are facts, applying one twice changes nothing, and each poll moves
    /// `freshAsOf` only up to its own start.
    func poll() async throws {
        let started = uptime()
        var after = state.withLock { $0.lastSeq }
        while true {
            let page = try await log.entries(after: after, limit: timing.pageSize)
            if !page.isEmpty { apply(page) }
            guard page.count == timing.pageSize, let last = page.last else { break }
            after = last.seq
        }
        let now = clock.now
        state.withLock { state in
            state.freshAsOf = max(state.freshAsOf ?? started, started)
            if state.pollFailing {
                state.pollFailing = false
                logger.notice("revocation log readable again", metadata: ["revocation.seq": "\(state.lastSeq)"])
            }
            if state.lastPruned.map({ started - $0 >= Self.pruneInterval }) ?? true {
                state.lastPruned = started
                Self.prune(&state, now: now)
            }
        }
    }

    private func apply(_ entries: [RevocationEntry]) {
        let now = clock.now
        state.withLock { state in
            for entry in entries {
                switch entry.kind {
                case .token:
                    // An entry already past expiry denies nothing: `exp` refuses the token first.
                    if let expiresAt = entry.expiresAt, !Self.isExpired(expiresAt, now: now) {
                        state.revokedTokens[entry.id] = expiresAt
                    }
                case .client:
                    state.disabledClients.insert(entry.id)
                }
                state.lastSeq = max(state.lastSeq, entry.seq)
            }
        }
    }

    /// Kept `ClockSkew.allowed` past expiry, in case this clock steps back.
    private static func isExpired(_ expiresAt: Date, now: Date) -> Bool {
        expiresAt.addingTimeInterval(ClockSkew.allowed) < now
    }

    private static func prune(_ state: inout State, now: Date) {
        state.revokedTokens = state.revokedTokens.filter { !isExpired($0.value, now: now) }
    }

    // MARK: Running

    /// Polls every `pollInterval` and, where the store pushes, listens; until cancelled or
    /// graceful shutdown. A second concurrent `run` of the same feed does nothing but wait.
    public func run() async {
        let claimed = state.withLock { state in
            defer { state.runnerActive = true }
            return !state.runnerActive
        }
        guard claimed else {
            try? await gracefulShutdown()
            return
        }
        defer { state.withLock { $0.runnerActive = false } }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.pollLoop() }
                if let notifications = self.notifications {
                    group.addTask { await self.listenLoop(notifications) }
                }
            }
        }
    }

    private func pollLoop() async {
        while !Task.isCancelled {
            do {
                try await poll()
            } catch {
                let first = state.withLock { state in
                    defer { state.pollFailing = true }
                    return !state.pollFailing
                }
                // Once per outage: the store's own log names each failure.
                if first && !Task.isCancelled {
                    logger.error(
                        "revocation log unreadable: tokens verify as unavailable once it has not been read for \(timing.maximumStaleness)",
                        metadata: ["error": "\(error)"])
                }
            }
            do {
                try await Task.sleep(for: timing.pollInterval)
            } catch {
                return
            }
        }
    }

    private func listenLoop(_ notifications: any RevocationNotifications) async {
        while !Task.isCancelled {
            do {
                try await notifications.listen { [self] signal in
                    switch signal {
                    case .listening:
                        // Whatever was committed while not listening was not announced: read it now.
                        let recovered = state.withLock { state in
                            defer { state.listenFailing = false }
                            return state.listenFailing
                        }
                        if recovered { logger.notice("listening for revocations again") }
                    case .committed(let seq):
                        if let seq, seq <= lastSeq { return }
                    }
                    try? await poll()
                }
            } catch {
                if Task.isCancelled { return }
                let first = state.withLock { state in
                    defer { state.listenFailing = true }
                    return !state.listenFailing
                }
                if first {
                    logger.warning("revocation notifications interrupted; polling continues", metadata: ["error": "\(error)"])
                }
            }
            do {
                try await Task.sleep(for: timing.resubscribeDelay)
            } catch {
                return
            }
        }
    }
}

/// Runs a `RevocationFeed` as a service of the application.
public struct RevocationFeedService: Service {
    private let feed: RevocationFeed

    public init(feed: RevocationFeed) {
        self.feed = feed
    }

    public func run() async throws {
        await feed.run()
    }
}
