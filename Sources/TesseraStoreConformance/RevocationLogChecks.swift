import Foundation
import Synchronization
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// Revoking a lineage logs one token entry per jti it revoked, with the token's expiry, the
    /// tenant and the date, in increasing seq order. Revocations that change nothing (already
    /// revoked, unknown, another tenant's) log nothing.
    public func revocationLogRecordsTokenRevocations() async throws {
        try await run { probe in
            let log = probe.store.revocations
            try probe.expectEqual(try await log.entries(after: 0, limit: 100), [], "entries of an empty log")
            try await recordRevocationLineage(probe)
            let outcome = try await probe.store.tokens.revoke(
                jti: "root", tenant: Fixtures.acme, at: Fixtures.at(100), audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            guard case .revoked = outcome else { throw probe.fail("revoke root answered \(outcome)") }
            let entries = try await log.entries(after: 0, limit: 100)
            try probe.expectEqual(Set(entries.map(\.id)), ["root", "a", "a1", "b"], "jtis logged for the lineage")
            try probe.expectEqual(entries.count, 4, "entries logged for the lineage")
            try probe.expectEqual(entries.map(\.seq), entries.map(\.seq).sorted(), "entries in seq order")
            try probe.expectEqual(Set(entries.map(\.seq)).count, 4, "distinct sequence numbers")
            for entry in entries {
                let token = try await probe.store.tokens.get(jti: entry.id)
                try probe.expectEqual(entry.kind, .token, "kind of \(entry.id)")
                try probe.expectEqual(entry.tenantID, Fixtures.acme, "tenant of \(entry.id)")
                try probe.expectEqual(entry.at, Fixtures.at(100), "date of \(entry.id)")
                try probe.expectEqual(entry.expiresAt, token?.expiresAt, "expiry of \(entry.id)")
            }
            let last = entries.last!.seq
            let ignored = Fixtures.event("token.revoked", tenant: Fixtures.acme)
            try probe.expectEqual(
                try await probe.store.tokens.revoke(jti: "a", tenant: Fixtures.acme, at: Fixtures.at(101), audit: ignored),
                .alreadyRevoked, "revoke a revoked token")
            try probe.expectEqual(
                try await probe.store.tokens.revoke(jti: "nope", tenant: Fixtures.acme, at: Fixtures.at(101), audit: ignored),
                .unknown, "revoke an unknown token")
            try probe.expectEqual(
                try await probe.store.tokens.revoke(jti: "other", tenant: Fixtures.globex, at: Fixtures.at(101), audit: ignored),
                .unknown, "revoke another tenant's token")
            try probe.expectEqual(try await log.entries(after: last, limit: 100), [], "entries after revocations that changed nothing")
            _ = try await probe.store.tokens.revoke(jti: "other", tenant: Fixtures.acme, at: Fixtures.at(102), audit: ignored)
            let later = try await log.entries(after: last, limit: 100)
            try probe.expectEqual(later.map(\.id), ["other"], "entries of a later revocation")
            try probe.expect(later[0].seq > last, "a later revocation has a higher seq")
        }
    }

    /// Disabling a client logs one client entry without expiry; disabling it again, or an unknown
    /// client, logs nothing.
    public func revocationLogRecordsClientDisable() async throws {
        try await run { probe in
            let log = probe.store.revocations
            try await probe.createTenant(Fixtures.acme)
            try await probe.store.clients.create(
                Fixtures.client("svc", tenant: Fixtures.acme), audit: Fixtures.event("client.created", tenant: Fixtures.acme))
            let disabled = Fixtures.event("client.disabled", tenant: Fixtures.acme, clientID: "svc")
            try await probe.store.clients.disable(clientID: "svc", at: Fixtures.at(5), audit: disabled)
            let entries = try await log.entries(after: 0, limit: 100)
            try probe.expectEqual(entries.count, 1, "entries after disabling a client")
            let entry = entries[0]
            try probe.expectEqual(
                RevocationEntry(seq: entry.seq, kind: .client, id: "svc", tenantID: Fixtures.acme, at: Fixtures.at(5), expiresAt: nil),
                entry, "the client entry")
            try await probe.store.clients.disable(clientID: "svc", at: Fixtures.at(6), audit: disabled)
            try await probe.expectError(.notFound, "disable an unknown client") {
                try await probe.store.clients.disable(clientID: "nobody", at: Fixtures.at(6), audit: disabled)
            }
            try probe.expectEqual(try await log.entries(after: 0, limit: 100), entries, "entries after disables that changed nothing")
        }
    }

    /// A refresh reuse logs every jti it revoked (the family and its access tokens); a rotation, an
    /// unknown token and a reuse of an already revoked family log nothing.
    public func revocationLogRecordsRefreshReuse() async throws {
        try await run { probe in
            let log = probe.store.revocations
            let refreshTokens = probe.store.refreshTokens
            let family = Fixtures.family("family-1", tenant: Fixtures.acme)
            try await refreshTokens.recordIssued(
                Fixtures.familyToken("at-0", of: family), family: family, refresh: Fixtures.refresh("r-0", family: "family-1"),
                audit: Fixtures.event("token.exchanged", tenant: Fixtures.acme))
            let refreshed = Fixtures.event("token.refreshed", tenant: Fixtures.acme)
            let reused = Fixtures.event("token.refresh_reused", tenant: Fixtures.acme)
            let rotation = try await refreshTokens.rotate(
                presented: Fixtures.refreshHash("r-0"), next: Fixtures.refresh("r-1", family: "family-1"),
                token: Fixtures.familyToken("at-1", of: family, issuedAt: Fixtures.at(60)), at: Fixtures.at(60), audit: refreshed,
                reuseAudit: reused)
            try probe.expectEqual(rotation, .rotated, "rotation")
            _ = try await refreshTokens.rotate(
                presented: Fixtures.refreshHash("unknown"), next: Fixtures.refresh("r-8", family: "family-1"),
                token: Fixtures.familyToken("at-8", of: family), at: Fixtures.at(61), audit: refreshed, reuseAudit: reused)
            try probe.expectEqual(try await log.entries(after: 0, limit: 100), [], "entries after a rotation and an unknown token")
            let reuse = try await refreshTokens.rotate(
                presented: Fixtures.refreshHash("r-0"), next: Fixtures.refresh("r-2", family: "family-1"),
                token: Fixtures.familyToken("at-2", of: family, issuedAt: Fixtures.at(70)), at: Fixtures.at(70), audit: refreshed,
                reuseAudit: reused)
            guard case .reused(let revoked) = reuse else { throw probe.fail("reuse answered \(reuse)") }
            let entries = try await log.entries(after: 0, limit: 100)
            try probe.expectEqual(Set(entries.map(\.id)), Set(revoked), "jtis logged for the reuse")
            try probe.expectEqual(Set(entries.map(\.id)), ["family-1", "at-0", "at-1"], "the family and its access tokens")
            try probe.expectEqual(entries.count, 3, "entries logged for the reuse")
            for entry in entries {
                try probe.expectEqual(entry.expiresAt, try await probe.store.tokens.get(jti: entry.id)?.expiresAt, "expiry of \(entry.id)")
                try probe.expectEqual(entry.at, Fixtures.at(70), "date of \(entry.id)")
            }
            _ = try await refreshTokens.rotate(
                presented: Fixtures.refreshHash("r-0"), next: Fixtures.refresh("r-3", family: "family-1"),
                token: Fixtures.familyToken("at-3", of: family, issuedAt: Fixtures.at(80)), at: Fixtures.at(80), audit: refreshed,
                reuseAudit: reused)
            try probe.expectEqual(try await log.entries(after: 0, limit: 100), entries, "entries after a second reuse")
        }
    }

    /// `entries(after:limit:)` pages through the log in seq order without gaps or overlaps.
    public func revocationLogPagesInOrder() async throws {
        try await run { probe in
            let log = probe.store.revocations
            for index in 0..<7 {
                try await probe.store.tokens.recordIssued(
                    Fixtures.token("jti-\(index)", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
                _ = try await probe.store.tokens.revoke(
                    jti: "jti-\(index)", tenant: Fixtures.acme, at: Fixtures.at(index),
                    audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            }
            var paged: [RevocationEntry] = []
            var pageSizes: [Int] = []
            var after: Int64 = 0
            while true {
                let page = try await log.entries(after: after, limit: 3)
                if page.isEmpty { break }
                pageSizes.append(page.count)
                paged += page
                after = page.last!.seq
            }
            try probe.expectEqual(pageSizes, [3, 3, 1], "page sizes")
            try probe.expectEqual(paged.map(\.id), (0..<7).map { "jti-\($0)" }, "entries paged, in revocation order")
            try probe.expectEqual(paged, try await log.entries(after: 0, limit: 100), "pages and one read")
            try probe.expect(zip(paged, paged.dropFirst()).allSatisfy { $0.seq < $1.seq }, "seqs increase")
            try probe.expectEqual(try await log.entries(after: paged[4].seq, limit: 100), Array(paged[5...]), "entries after the fifth")
            try probe.expectEqual(try await log.entries(after: after, limit: 10), [], "entries after the last")
            try probe.expectEqual(try await log.entries(after: 0, limit: 0), [], "a zero limit")
        }
    }

    /// `purgeExpired` removes token entries that expired before the date and keeps later ones and
    /// client entries; a seq is never handed out again, even when the newest entries were purged.
    public func revocationLogPurgeExpired() async throws {
        try await run { probe in
            let log = probe.store.revocations
            try await probe.createTenant(Fixtures.acme)
            try await probe.store.clients.create(
                Fixtures.client("svc", tenant: Fixtures.acme), audit: Fixtures.event("client.created", tenant: Fixtures.acme))
            try await probe.store.clients.disable(
                clientID: "svc", at: Fixtures.at(1), audit: Fixtures.event("client.disabled", tenant: Fixtures.acme))
            for (jti, lifetime) in [("long", 3600), ("short", 60)] {
                try await probe.store.tokens.recordIssued(
                    Fixtures.token(jti, tenant: Fixtures.acme, lifetime: lifetime),
                    audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
                _ = try await probe.store.tokens.revoke(
                    jti: jti, tenant: Fixtures.acme, at: Fixtures.at(10), audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            }
            let before = try await log.entries(after: 0, limit: 100)
            try probe.expectEqual(before.map(\.id), ["svc", "long", "short"], "entries before the purge")
            try probe.expectEqual(try await log.purgeExpired(before: Fixtures.at(60)), 0, "purge before the first expiry")
            try probe.expectEqual(try await log.purgeExpired(before: Fixtures.at(61)), 1, "purge after the short token expired")
            try probe.expectEqual(try await log.entries(after: 0, limit: 100).map(\.id), ["svc", "long"], "entries after the purge")
            try probe.expectEqual(try await log.purgeExpired(before: Fixtures.at(100_000)), 1, "purge after every token expired")
            try probe.expectEqual(try await log.entries(after: 0, limit: 100).map(\.id), ["svc"], "client entries are kept")
            try await probe.store.tokens.recordIssued(
                Fixtures.token("late", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
            _ = try await probe.store.tokens.revoke(
                jti: "late", tenant: Fixtures.acme, at: Fixtures.at(20), audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            let late = try await log.entries(after: 0, limit: 100).last!
            try probe.expectEqual(late.id, "late", "the entry revoked after the purge")
            try probe.expect(late.seq > before.last!.seq, "a seq is not reused after the newest entries were purged")
        }
    }

    /// Concurrent revocations and disables, while a follower reads `entries(after: last seen)` in a
    /// loop as a broker instance does: every entry is logged once, and the follower, which never
    /// looks below what it has seen, misses none (seq order is commit order).
    public func revocationLogFollowerMissesNothingUnderConcurrentRevocations() async throws {
        try await run { probe in
            let store = probe.store
            try await probe.createTenant(Fixtures.acme)
            for index in 0..<16 {
                try await store.clients.create(
                    Fixtures.client("svc-\(index)", tenant: Fixtures.acme),
                    audit: Fixtures.event("client.created", tenant: Fixtures.acme))
            }
            for index in 0..<48 {
                try await store.tokens.recordIssued(
                    Fixtures.token("jti-\(index)", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
            }
            let done = Atomic<Bool>(false)
            let follower = Task { () throws -> [RevocationEntry] in
                var seen: [RevocationEntry] = []
                var last: Int64 = 0
                while true {
                    let finished = done.load(ordering: .acquiring)
                    let page = try await store.revocations.entries(after: last, limit: 5)
                    seen += page
                    last = page.last?.seq ?? last
                    if finished && page.isEmpty { return seen }
                    await Task.yield()
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<48 {
                    group.addTask {
                        _ = try await store.tokens.revoke(
                            jti: "jti-\(index)", tenant: Fixtures.acme, at: Fixtures.at(index),
                            audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
                    }
                }
                for index in 0..<16 {
                    group.addTask {
                        try await store.clients.disable(
                            clientID: "svc-\(index)", at: Fixtures.at(index),
                            audit: Fixtures.event("client.disabled", tenant: Fixtures.acme))
                    }
                }
                try await group.waitForAll()
            }
            done.store(true, ordering: .releasing)
            let followed = try await follower.value
            let all = try await store.revocations.entries(after: 0, limit: 1_000)
            try probe.expectEqual(all.count, 64, "entries logged")
            try probe.expectEqual(Set(all.map(\.id)).count, 64, "each revocation logged once")
            let missed = all.filter { entry in !followed.contains { $0.seq == entry.seq } }.map(\.seq)
            try probe.expectEqual(missed, [], "sequence numbers the follower never saw")
            try probe.expectEqual(followed, all, "what the follower saw")
        }
    }

    /// root ─┬─ a ── a1, b (child of root), other (unrelated).
    private func recordRevocationLineage(_ probe: Probe) async throws {
        let lineage: [(String, String?, Int)] = [
            ("root", nil, 600), ("a", "root", 300), ("a1", "a", 120), ("b", "root", 60), ("other", nil, 600),
        ]
        for (offset, (jti, parent, lifetime)) in lineage.enumerated() {
            try await probe.store.tokens.recordIssued(
                Fixtures.token(jti, tenant: Fixtures.acme, parent: parent, issuedAt: Fixtures.at(offset), lifetime: lifetime),
                audit: Fixtures.event("token.issued", tenant: Fixtures.acme, jti: jti))
        }
    }
}
