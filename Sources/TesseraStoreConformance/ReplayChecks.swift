import Foundation
import TesseraStore

extension StoreConformance {
    /// The first use of an id is true; any later use before it expires is false.
    public func replayFirstUseThenReplay() async throws {
        try await run { probe in
            let replay = probe.store.replay
            let expiry = Fixtures.at(60)
            try probe.expectEqual(
                try await replay.consume(namespace: "dpop", id: "proof-1", expiresAt: expiry, now: Fixtures.at(0)), true, "first use")
            try probe.expectEqual(
                try await replay.consume(namespace: "dpop", id: "proof-1", expiresAt: expiry, now: Fixtures.at(0)), false, "replay")
            try probe.expectEqual(
                try await replay.consume(namespace: "dpop", id: "proof-1", expiresAt: Fixtures.at(600), now: Fixtures.at(59)),
                false, "replay one second before expiry, with a later expiry")
        }
    }

    /// Once its entry has expired, an id may be used again, and is then remembered anew.
    public func replayExpiredIDIsUsableAgain() async throws {
        try await run { probe in
            let replay = probe.store.replay
            try probe.expectEqual(
                try await replay.consume(namespace: "jti", id: "x", expiresAt: Fixtures.at(60), now: Fixtures.at(0)), true, "first use")
            try probe.expectEqual(
                try await replay.consume(namespace: "jti", id: "x", expiresAt: Fixtures.at(120), now: Fixtures.at(60)), true,
                "use at the moment the entry expires")
            try probe.expectEqual(
                try await replay.consume(namespace: "jti", id: "x", expiresAt: Fixtures.at(180), now: Fixtures.at(61)), false,
                "replay of the renewed entry")
        }
    }

    /// The same id in two namespaces is two different ids.
    public func replayNamespacesAreIndependent() async throws {
        try await run { probe in
            let replay = probe.store.replay
            for namespace in ["dpop", "client-assertion", "saml-assertion"] {
                try probe.expectEqual(
                    try await replay.consume(namespace: namespace, id: "same", expiresAt: Fixtures.at(60), now: Fixtures.at(0)),
                    true, "first use in \(namespace)")
            }
            try probe.expectEqual(
                try await replay.consume(namespace: "dpop", id: "same", expiresAt: Fixtures.at(60), now: Fixtures.at(1)),
                false, "replay in dpop")
        }
    }

    /// 64 concurrent consumers of one id: exactly one wins.
    public func replayConcurrentConsumesHaveOneWinner() async throws {
        try await run { probe in
            let replay = probe.store.replay
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<64 {
                    group.addTask {
                        try await replay.consume(namespace: "dpop", id: "raced", expiresAt: Fixtures.at(60), now: Fixtures.at(0))
                    }
                }
                var wins = 0
                for try await won in group where won { wins += 1 }
                return wins
            }
            try probe.expectEqual(wins, 1, "consumers that won")
        }
    }

    /// `purgeExpired(before:)` forgets entries that expired strictly before the date.
    public func replayPurgeExpired() async throws {
        try await run { probe in
            let replay = probe.store.replay
            for (id, expiry) in [("a", 10), ("b", 20), ("c", 30)] {
                _ = try await replay.consume(namespace: "n", id: id, expiresAt: Fixtures.at(expiry), now: Fixtures.at(0))
            }
            try probe.expectEqual(try await replay.purgeExpired(before: Fixtures.at(20)), 1, "entries purged")
            try probe.expectEqual(
                try await replay.consume(namespace: "n", id: "c", expiresAt: Fixtures.at(90), now: Fixtures.at(25)), false,
                "an unexpired entry survives the purge")
            try probe.expectEqual(try await replay.purgeExpired(before: Fixtures.at(1_000)), 2, "entries purged later")
        }
    }
}
