import Foundation
import Logging
import Synchronization
import TesseraCore
import TesseraOAuth
import TesseraStore
import TesseraTesting
import XCTest

/// A revocation log in memory, which can be made to fail like a store that went away.
private final class MemoryRevocationLog: RevocationLog {
    private struct State {
        var entries: [RevocationEntry] = []
        var failing = false
        var reads = 0
    }

    private let state = Mutex(State())

    /// Appends an entry (as a committed revocation would) and returns its seq.
    @discardableResult
    func append(_ kind: RevocationEntry.Kind, _ id: String, expiresAt: Date?, at date: Date = Date()) -> Int64 {
        state.withLock { state in
            let seq = (state.entries.last?.seq ?? 0) + 1
            state.entries.append(
                RevocationEntry(seq: seq, kind: kind, id: id, tenantID: TenantID("acme")!, at: date, expiresAt: expiresAt))
            return seq
        }
    }

    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }
    var reads: Int { state.withLock { $0.reads } }

    func entries(after seq: Int64, limit: Int) async throws -> [RevocationEntry] {
        try state.withLock { state throws(StoreError) in
            state.reads += 1
            guard !state.failing else { throw StoreError.unavailable("the test store is down") }
            return Array(state.entries.filter { $0.seq > seq }.prefix(limit))
        }
    }

    func purgeExpired(before date: Date) async throws -> Int { 0 }
}

/// Notifications the test sends by hand: each subscription announces `.listening`, then passes
/// on what the test sends until it sends `drop`, which fails the subscription like a lost connection.
private final class ManualNotifications: RevocationNotifications {
    enum Event: Sendable {
        case committed(Int64?)
        case drop
    }

    private let stream: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let subscriptionCount = Atomic<Int>(0)

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Event.self)
    }

    var subscriptions: Int { subscriptionCount.load(ordering: .relaxed) }
    func send(_ event: Event) { continuation.yield(event) }

    struct Dropped: Error {}

    func listen(_ onSignal: @escaping @Sendable (RevocationSignal) async -> Void) async throws {
        subscriptionCount.add(1, ordering: .relaxed)
        await onSignal(.listening)
        for await event in stream {
            switch event {
            case .committed(let seq): await onSignal(.committed(seq: seq))
            case .drop: throw Dropped()
            }
        }
    }
}

/// A monotonic clock the test moves by hand.
private final class ManualUptime: Sendable {
    private let value = Mutex<Duration>(.seconds(100))
    func advance(by duration: Duration) { value.withLock { $0 += duration } }
    var read: @Sendable () -> Duration { { self.value.withLock { $0 } } }
}

final class RevocationFeedTests: XCTestCase {
    private let clock = FixedWallClock()

    private func feed(
        _ log: MemoryRevocationLog, notifications: (any RevocationNotifications)? = nil, uptime: ManualUptime? = nil,
        pollInterval: Duration = .milliseconds(500), pageSize: Int = 1_000
    ) -> RevocationFeed {
        var logger = Logger(label: "tessera-test")
        logger.logLevel = .critical
        let timing = RevocationFeed.Timing(pollInterval: pollInterval, resubscribeDelay: .milliseconds(20), pageSize: pageSize)
        if let uptime {
            return RevocationFeed(log: log, notifications: notifications, clock: clock, timing: timing, logger: logger, uptime: uptime.read)
        }
        return RevocationFeed(log: log, notifications: notifications, clock: clock, timing: timing, logger: logger)
    }

    /// Waits (bounded, generously) until `condition` holds; fails the test otherwise.
    private func eventually(
        _ what: String, timeout: Duration = .seconds(10), file: StaticString = #filePath, line: UInt = #line,
        _ condition: () -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { return XCTFail("never happened: \(what)", file: file, line: line) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func testRefreshLoadsEveryEntryAcrossPagesAndAnswersFromMemory() async throws {
        let log = MemoryRevocationLog()
        let expiry = clock.now.addingTimeInterval(600)
        for index in 0..<2_500 { log.append(.token, "jti-\(index)", expiresAt: expiry) }
        log.append(.client, "svc-off", expiresAt: nil)
        let feed = feed(log, pageSize: 1_000)
        XCTAssertEqual(feed.status(jti: "jti-1", clientID: "svc"), .stale, "nothing read yet")
        try await feed.refresh()
        XCTAssertEqual(feed.lastSeq, 2_501)
        XCTAssertEqual(feed.revokedTokenCount, 2_500)
        XCTAssertEqual(log.reads, 3, "pages of 1000, 1000 and 501")
        XCTAssertEqual(feed.status(jti: "jti-0", clientID: "svc"), .revoked)
        XCTAssertEqual(feed.status(jti: "jti-2499", clientID: "svc"), .revoked)
        XCTAssertEqual(feed.status(jti: "live", clientID: "svc"), .active)
        XCTAssertEqual(feed.status(jti: "live", clientID: "svc-off"), .clientDisabled)
        let readsBefore = log.reads
        for _ in 0..<100 { _ = feed.status(jti: "live", clientID: "svc") }
        XCTAssertEqual(log.reads, readsBefore, "answering reads no store")
        try await feed.refresh()
        XCTAssertEqual(log.reads, readsBefore + 1, "a refresh reads only after the last seq")
    }

    /// No notification at all (SQLite, or every one lost): the periodic poll still picks the entry up.
    func testPollingCatchesRevocationsWhoseNotificationWasLost() async throws {
        let log = MemoryRevocationLog()
        let notifications = ManualNotifications()
        let feed = feed(log, notifications: notifications, pollInterval: .milliseconds(50))
        let runner = Task { await feed.run() }
        try await eventually("the first load") { feed.isFresh }
        log.append(.token, "jti-lost", expiresAt: clock.now.addingTimeInterval(600))
        // The notification is never sent.
        try await eventually("the revocation is seen") { feed.status(jti: "jti-lost", clientID: "svc") == .revoked }
        runner.cancel()
        await runner.value
    }

    /// With polling too slow to matter, a notification makes the feed read at once; after a lost
    /// connection it subscribes again and reads what was committed meanwhile.
    func testNotificationsAndResubscriptionReadTheLogAtOnce() async throws {
        let log = MemoryRevocationLog()
        let notifications = ManualNotifications()
        let feed = feed(log, notifications: notifications, pollInterval: .seconds(3600))
        let runner = Task { await feed.run() }
        try await eventually("subscribed") { notifications.subscriptions == 1 && feed.isFresh }
        let seq = log.append(.token, "jti-notified", expiresAt: clock.now.addingTimeInterval(600))
        notifications.send(.committed(seq))
        try await eventually("the notified revocation is seen") { feed.status(jti: "jti-notified", clientID: "svc") == .revoked }

        notifications.send(.drop)
        log.append(.client, "svc-off", expiresAt: nil)  // committed while the connection is down: no notification
        try await eventually("subscribed again") { notifications.subscriptions == 2 }
        try await eventually("what was committed while disconnected is read") {
            feed.status(jti: "other", clientID: "svc-off") == .clientDisabled
        }
        runner.cancel()
        await runner.value
    }

    /// A notification for a seq already read causes no read.
    func testNotificationForWhatWasReadAlreadyIsIgnored() async throws {
        let log = MemoryRevocationLog()
        let notifications = ManualNotifications()
        let seq = log.append(.token, "jti-1", expiresAt: clock.now.addingTimeInterval(600))
        let feed = feed(log, notifications: notifications, pollInterval: .seconds(3600))
        let runner = Task { await feed.run() }
        // At start: one read by the poll loop, one after subscribing.
        try await eventually("subscribed and loaded") { notifications.subscriptions == 1 && log.reads == 2 }
        XCTAssertEqual(feed.lastSeq, seq)
        notifications.send(.committed(seq))
        let next = log.append(.token, "jti-2", expiresAt: clock.now.addingTimeInterval(600))
        notifications.send(.committed(next))
        // Notifications are handled in order: once the second is read, the first was handled.
        try await eventually("the newer notification is read") { feed.lastSeq == next }
        XCTAssertEqual(log.reads, 3, "one read, for the newer notification only")
        runner.cancel()
        await runner.value
    }

    /// Fail closed: a feed that has not read the log for more than 2 s answers `.stale`, and a
    /// verification fails with a store error (503) instead of answering for a revoked token.
    func testStaleFeedMakesVerificationUnavailable() async throws {
        let fixture = try await BrokerFixture.make(clock: clock)
        let log = MemoryRevocationLog()
        let uptime = ManualUptime()
        let feed = feed(log, uptime: uptime)
        let verifier = AccessTokenVerifier(keyRing: fixture.broker.keyRing, issuer: fixture.settings.issuer, revocations: feed)
        try await fixture.addTenant("acme")
        let owner = try await fixture.addClient(tenant: "acme", scopes: "crm:contacts.read")
        let minter = AccessTokenMinter(keyRing: fixture.broker.keyRing, issuer: fixture.settings.issuer)
        let decision = GrantDecision(
            subject: "svc", subjectType: .service, scopes: try ScopeSet(parsing: "crm:contacts.read"), audience: ["crm"], lifetime: 300)
        let revoked = try minter.mint(decision, client: owner.client, now: clock.now)
        let live = try minter.mint(decision, client: owner.client, now: clock.now)
        log.append(.token, revoked.record.jti, expiresAt: revoked.record.expiresAt)

        await assertUnavailable(try await verifier.verify(revoked.token, now: clock.now), "before the first read")
        try await feed.refresh()
        await assertInactive(try await verifier.verify(revoked.token, now: clock.now), "after the first read")
        _ = try await verifier.verify(live.token, now: clock.now)

        log.setFailing(true)
        uptime.advance(by: .milliseconds(1_900))
        do {
            try await feed.refresh()
            XCTFail("a refresh of a failing log succeeded")
        } catch {}
        await assertUnavailable(
            try await verifier.verify(revoked.token, now: clock.now), "a refresh failed: something this process revoked may be unread")
        log.setFailing(false)
        try await feed.refresh()
        _ = try await verifier.verify(live.token, now: clock.now)

        log.setFailing(true)
        uptime.advance(by: .milliseconds(1_999))
        _ = try await verifier.verify(live.token, now: clock.now)
        uptime.advance(by: .milliseconds(2))
        XCTAssertEqual(feed.status(jti: revoked.record.jti, clientID: owner.client.clientID), .stale)
        XCTAssertFalse(feed.isFresh)
        await assertUnavailable(try await verifier.verify(revoked.token, now: clock.now), "revoked token, log unread for 2 s")
        await assertUnavailable(try await verifier.verify(live.token, now: clock.now), "live token, log unread for 2 s")

        log.setFailing(false)
        try await feed.refresh()
        XCTAssertTrue(feed.isFresh)
        await assertInactive(try await verifier.verify(revoked.token, now: clock.now), "after the log is readable again")
        await fixture.tearDown()
    }

    /// Entries are kept until the token's expiry (plus the allowed skew), then dropped; an entry
    /// that arrives already expired is not kept at all. Client entries stay.
    func testExpiredEntriesArePruned() async throws {
        let log = MemoryRevocationLog()
        let uptime = ManualUptime()
        let feed = feed(log, uptime: uptime)
        log.append(.token, "short", expiresAt: clock.now.addingTimeInterval(60))
        log.append(.token, "long", expiresAt: clock.now.addingTimeInterval(3_600))
        log.append(.token, "gone", expiresAt: clock.now.addingTimeInterval(-3_600))
        log.append(.client, "svc-off", expiresAt: nil)
        try await feed.refresh()
        XCTAssertEqual(feed.revokedTokenCount, 2, "the entry that was already expired is not kept")

        clock.advance(by: 60 + ClockSkew.allowed - 1)
        uptime.advance(by: .seconds(11))
        try await feed.refresh()
        XCTAssertEqual(feed.revokedTokenCount, 2, "kept within the allowed skew after expiry")

        clock.advance(by: 2)
        uptime.advance(by: .seconds(11))
        try await feed.refresh()
        XCTAssertEqual(feed.revokedTokenCount, 1, "dropped after expiry")
        XCTAssertEqual(feed.status(jti: "long", clientID: "svc"), .revoked)
        XCTAssertEqual(feed.status(jti: "short", clientID: "svc-off"), .clientDisabled, "client entries are never pruned")
    }

    /// Running the same feed twice (the fixture and the application both start it) polls once.
    func testASecondRunnerOfTheSameFeedStaysIdle() async throws {
        let log = MemoryRevocationLog()
        let feed = feed(log, pollInterval: .seconds(3600))
        let first = Task { await feed.run() }
        try await eventually("the first runner reads") { log.reads == 1 }
        let second = Task { await feed.run() }
        // A second runner would read at once; give it the chance.
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertEqual(log.reads, 1)
        second.cancel()
        await second.value
        first.cancel()
        await first.value
    }

    private func assertUnavailable<T>(
        _ body: @autoclosure () async throws -> T, _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) async {
        do {
            _ = try await body()
            XCTFail("\(what): verified", file: file, line: line)
        } catch let error as StoreError {
            guard case .unavailable = error else { return XCTFail("\(what): \(error)", file: file, line: line) }
        } catch {
            XCTFail("\(what): expected unavailable, got \(error)", file: file, line: line)
        }
    }

    private func assertInactive<T>(
        _ body: @autoclosure () async throws -> T, _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) async {
        do {
            _ = try await body()
            XCTFail("\(what): verified", file: file, line: line)
        } catch let failure as AccessTokenVerifier.Failure {
            guard case .inactive = failure else { return XCTFail("\(what): \(failure)", file: file, line: line) }
        } catch {
            XCTFail("\(what): expected inactive, got \(error)", file: file, line: line)
        }
    }
}
