import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// Every field of a session reads back as created through `touch`, which moves `lastSeenAt` to
    /// its `now` and nothing else, writes no audit record, and keeps the identity as it was at
    /// sign-in when the user's identity changes later.
    public func sessionCreateTouchRoundTrips() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let alice = try await probe.signIn(Fixtures.identity("alice", tenant: Fixtures.acme), at: Fixtures.at(100))
            let bob = try await probe.signIn(Fixtures.bareIdentity("bob", tenant: Fixtures.acme), at: Fixtures.at(200))
            let sessions = [
                Fixtures.session("alice", of: alice, createdAt: Fixtures.at(100)),
                Fixtures.session("bob", of: bob, createdAt: Fixtures.at(200), lastSeenAt: Fixtures.at(250), lifetime: 3600),
            ]
            for session in sessions {
                let event = Fixtures.event("session.created", tenant: Fixtures.acme, at: session.createdAt)
                try await probe.expectAudited(event, "create the session of \(session.userID)") {
                    try await probe.store.sessions.create(session, audit: event)
                }
            }
            for session in sessions {
                for now in [Fixtures.at(700), Fixtures.at(1300)] {
                    var touched: HumanSession?
                    try await probe.expectNotAudited("touch the session of \(session.userID)") {
                        touched = try await probe.store.sessions.touch(hash: session.hash, now: now, idleTimeout: 3600)
                    }
                    let expected = HumanSession(
                        hash: session.hash, tenantID: session.tenantID, userID: session.userID, identity: session.identity,
                        createdAt: session.createdAt, lastSeenAt: now, expiresAt: session.expiresAt)
                    try probe.expectEqual(touched, expected, "the session of \(session.userID) touched at \(now)")
                }
            }
            try await probe.signIn(Fixtures.identity("alice", tenant: Fixtures.acme, groups: ["erp-readers"]), at: Fixtures.at(1400))
            try probe.expectEqual(
                try await probe.store.sessions.touch(hash: Fixtures.sessionHash("alice"), now: Fixtures.at(1500), idleTimeout: 3600)?
                    .identity,
                alice.identity, "the session's identity after the user's changed")
        }
    }

    /// Activity never extends a session: it is live until just before `expiresAt` and dead from
    /// `expiresAt` on, however recently it was used.
    public func sessionTouchAfterAbsoluteExpiryIsNil() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let alice = try await probe.signIn(Fixtures.identity("alice", tenant: Fixtures.acme))
            try await probe.createSession(Fixtures.session("alice", of: alice, lifetime: 3600))
            let hash = Fixtures.sessionHash("alice")
            for seconds in [1800, 3599] {
                try probe.expectEqual(
                    try await probe.store.sessions.touch(hash: hash, now: Fixtures.at(seconds), idleTimeout: 3600)?.lastSeenAt,
                    Fixtures.at(seconds), "touch \(seconds) s after sign-in, before expiry")
            }
            for seconds in [3600, 3601, 86_400] {
                try probe.expectEqual(
                    try await probe.store.sessions.touch(hash: hash, now: Fixtures.at(seconds), idleTimeout: 3600), nil,
                    "touch \(seconds) s after sign-in, at or after expiry")
            }
        }
    }

    /// A session idle for `idleTimeout` or longer is dead; each hit restarts the idle clock from
    /// its `now`, and a miss records nothing.
    public func sessionTouchAfterIdleTimeoutIsNil() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let alice = try await probe.signIn(Fixtures.identity("alice", tenant: Fixtures.acme))
            try await probe.createSession(Fixtures.session("idle", of: alice))
            try await probe.createSession(Fixtures.session("active", of: alice))
            try probe.expectEqual(
                try await probe.store.sessions.touch(hash: Fixtures.sessionHash("idle"), now: Fixtures.at(600), idleTimeout: 600), nil,
                "touch exactly the idle timeout after creation")
            let active = Fixtures.sessionHash("active")
            for seconds in [599, 1198] {
                try probe.expectEqual(
                    try await probe.store.sessions.touch(hash: active, now: Fixtures.at(seconds), idleTimeout: 600)?.lastSeenAt,
                    Fixtures.at(seconds), "touch at \(seconds) s, within the idle timeout of the last hit")
            }
            try probe.expectEqual(
                try await probe.store.sessions.touch(hash: active, now: Fixtures.at(1798), idleTimeout: 600), nil,
                "touch the idle timeout after the last hit")
            // Last seen is still 1198: had the miss at 1798 recorded itself, this would be a hit.
            try probe.expectEqual(
                try await probe.store.sessions.touch(hash: active, now: Fixtures.at(1800), idleTimeout: 602), nil,
                "touch after a miss, idle since the last hit")
        }
    }

    /// An unknown hash, a hash one bit off a known one, and the empty hash are not sessions.
    public func sessionTouchUnknownIsNil() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let alice = try await probe.signIn(Fixtures.identity("alice", tenant: Fixtures.acme))
            try await probe.createSession(Fixtures.session("alice", of: alice))
            var offByOne = Fixtures.sessionHash("alice")
            offByOne[offByOne.count - 1] ^= 1
            let unknown = [("an unknown hash", Fixtures.sessionHash("nobody")), ("a hash one bit off", offByOne), ("the empty hash", [])]
            for (what, hash) in unknown {
                try await probe.expectNotAudited("touch \(what)") {
                    let touched = try await probe.store.sessions.touch(hash: hash, now: Fixtures.at(60), idleTimeout: 3600)
                    try probe.expectEqual(touched, nil, "touch \(what)")
                }
            }
            try probe.expect(
                try await probe.store.sessions.touch(hash: Fixtures.sessionHash("alice"), now: Fixtures.at(60), idleTimeout: 3600) != nil,
                "the known session is not live")
        }
    }

    /// Deleting a session ends it with one audit record; deleting it again, or a session that
    /// never was, answers false and writes nothing.
    public func sessionDeleteOnce() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let alice = try await probe.signIn(Fixtures.identity("alice", tenant: Fixtures.acme))
            try await probe.createSession(Fixtures.session("alice", of: alice))
            try await probe.createSession(Fixtures.session("other", of: alice))
            let hash = Fixtures.sessionHash("alice")
            let ended = Fixtures.event("session.ended", tenant: Fixtures.acme, at: Fixtures.at(60))
            let deleted = try await probe.expectAudited(ended, "delete") {
                try await probe.store.sessions.delete(hash: hash, audit: ended)
            }
            try probe.expectEqual(deleted, true, "delete a live session")
            try probe.expectEqual(
                try await probe.store.sessions.touch(hash: hash, now: Fixtures.at(61), idleTimeout: 3600), nil, "touch a deleted session")
            for (what, hash) in [("delete again", hash), ("delete an unknown session", Fixtures.sessionHash("nobody"))] {
                try await probe.expectNotAudited(what) {
                    let deleted = try await probe.store.sessions.delete(
                        hash: hash, audit: Fixtures.event("session.ended", tenant: Fixtures.acme))
                    try probe.expectEqual(deleted, false, what)
                }
            }
            try probe.expect(
                try await probe.store.sessions.touch(hash: Fixtures.sessionHash("other"), now: Fixtures.at(61), idleTimeout: 3600) != nil,
                "deleting one session ended another")
        }
    }

    /// A second session with a taken hash is `alreadyExists`, audits nothing, and leaves the first
    /// one as it was.
    public func sessionDuplicateHashIsAlreadyExists() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let alice = try await probe.signIn(Fixtures.identity("alice", tenant: Fixtures.acme))
            let bob = try await probe.signIn(Fixtures.identity("bob", tenant: Fixtures.acme))
            let first = Fixtures.session("cookie", of: alice)
            try await probe.createSession(first)
            let second = Fixtures.session("cookie", of: bob, createdAt: Fixtures.at(10), lifetime: 86_400)
            try await probe.expectNotAudited("duplicate session") {
                try await probe.expectError(.alreadyExists, "create a session whose hash is taken") {
                    try await probe.store.sessions.create(second, audit: Fixtures.event("session.created", tenant: Fixtures.acme))
                }
            }
            let touched = try await probe.store.sessions.touch(hash: first.hash, now: Fixtures.at(60), idleTimeout: 3600)
            try probe.expectEqual(touched?.userID, alice.id, "the session's user after the duplicate")
            try probe.expectEqual(touched?.expiresAt, first.expiresAt, "the session's expiry after the duplicate")
        }
    }

    /// Purging deletes the sessions that expired strictly before the date, answers how many, and
    /// audits nothing.
    public func sessionPurgeExpired() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let alice = try await probe.signIn(Fixtures.identity("alice", tenant: Fixtures.acme))
            for lifetime in [100, 200, 300] {
                try await probe.createSession(Fixtures.session("s-\(lifetime)", of: alice, lifetime: lifetime))
            }
            try await probe.expectNotAudited("purge") {
                let purged = try await probe.store.sessions.purgeExpired(before: Fixtures.at(200))
                try probe.expectEqual(purged, 1, "sessions purged before 200 s")
                let again = try await probe.store.sessions.purgeExpired(before: Fixtures.at(200))
                try probe.expectEqual(again, 0, "sessions purged before 200 s again")
            }
            // Touched at a time they were live: a purged session is gone for good, the others stay.
            try probe.expectEqual(
                try await probe.store.sessions.touch(hash: Fixtures.sessionHash("s-100"), now: Fixtures.at(50), idleTimeout: 3600), nil,
                "a purged session")
            try probe.expect(
                try await probe.store.sessions.touch(hash: Fixtures.sessionHash("s-200"), now: Fixtures.at(50), idleTimeout: 3600) != nil,
                "a session expiring at the purge date was purged")
            try probe.expectEqual(try await probe.store.sessions.purgeExpired(before: Fixtures.at(301)), 2, "sessions purged before 301 s")
        }
    }
}
