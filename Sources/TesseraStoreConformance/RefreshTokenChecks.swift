import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// Every field of a family reads back through `lookup`, bound and delegated or neither; the
    /// access token recorded with it reads back through `tokens`. An unknown hash is nil, and so
    /// is a family from the moment it expires.
    public func refreshRecordLookupRoundTrips() async throws {
        try await run { probe in
            try await probe.store.tokens.recordIssued(
                Fixtures.token("subject-1", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
            let bound = Fixtures.family("family-1", tenant: Fixtures.acme, parent: "subject-1", issuedAt: Fixtures.at(10))
            let plain = RefreshFamily(
                familyID: "family-2", tenantID: Fixtures.globex, clientID: "client-2", subject: "user@globex.example",
                subjectType: "user", scopes: Fixtures.scopes("erp:orders.read"), audience: [], actClaim: nil, jkt: nil,
                policyFacts: "{}", parentJTI: nil, issuedAt: Fixtures.at(20), expiresAt: Fixtures.at(80))
            for (family, label) in [(bound, "r-1"), (plain, "r-2")] {
                let token = Fixtures.familyToken("at-\(label)", of: family)
                let event = Fixtures.event("token.exchanged", tenant: family.tenantID, jti: token.jti)
                try await probe.expectAudited(event, "record \(family.familyID)") {
                    try await probe.store.refreshTokens.recordIssued(
                        token, family: family, refresh: Fixtures.refresh(label, family: family.familyID, issuedAt: family.issuedAt),
                        audit: event)
                }
                try probe.expectEqual(
                    try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash(label), now: family.issuedAt),
                    RefreshLookup(family: family, used: false, familyRevoked: false), "lookup \(family.familyID)")
                try probe.expectEqual(
                    try await probe.store.refreshTokens.lookup(
                        hash: Fixtures.refreshHash(label), now: family.expiresAt.addingTimeInterval(-1))?.family, family,
                    "lookup \(family.familyID) one second before it expires")
                try probe.expectEqual(
                    try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash(label), now: family.expiresAt), nil,
                    "lookup \(family.familyID) when it expires")
                try probe.expectEqual(try await probe.store.tokens.get(jti: token.jti), token, "the access token of \(family.familyID)")
                try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: token.jti), false, "isRevoked(\(token.jti))")
            }
            try probe.expectEqual(
                try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash("unknown"), now: Fixtures.at(10)), nil,
                "lookup an unknown hash")
        }
    }

    /// Rotation marks the presented token used and records the next one and the new access token.
    /// Presenting the used one again revokes the family and every access token minted from it,
    /// answers with all of them, and audits the reuse; the token it was exchanged from stays live,
    /// and the family's newest refresh token is now inactive too.
    public func refreshRotateThenReuseRevokesFamily() async throws {
        try await run { probe in
            let refreshTokens = probe.store.refreshTokens
            let family = try await recordFamily(probe, parent: "subject-1")
            let next = Fixtures.refresh("r-1", family: family.familyID, issuedAt: Fixtures.at(60))
            let second = Fixtures.familyToken("at-1", of: family, issuedAt: Fixtures.at(60))
            let refreshed = Fixtures.event("token.refreshed", tenant: Fixtures.acme, jti: "at-1")
            let reused = Fixtures.event("token.refresh_reused", tenant: Fixtures.acme)
            let rotation = try await probe.expectAudited(refreshed, "rotate") {
                try await refreshTokens.rotate(
                    presented: Fixtures.refreshHash("r-0"), next: next, token: second, at: Fixtures.at(60), audit: refreshed,
                    reuseAudit: reused)
            }
            try probe.expectEqual(rotation, .rotated, "first rotation")
            try probe.expectEqual(
                try await refreshTokens.lookup(hash: Fixtures.refreshHash("r-0"), now: Fixtures.at(61)),
                RefreshLookup(family: family, used: true, familyRevoked: false), "lookup of the rotated token")
            try probe.expectEqual(
                try await refreshTokens.lookup(hash: Fixtures.refreshHash("r-1"), now: Fixtures.at(61)),
                RefreshLookup(family: family, used: false, familyRevoked: false), "lookup of the next token")
            try probe.expectEqual(try await probe.store.tokens.get(jti: "at-1"), second, "the access token minted by the rotation")

            let replay = try await probe.expectAudited(reused, "present the rotated token again") {
                try await refreshTokens.rotate(
                    presented: Fixtures.refreshHash("r-0"), next: Fixtures.refresh("r-2", family: family.familyID),
                    token: Fixtures.familyToken("at-2", of: family, issuedAt: Fixtures.at(70)), at: Fixtures.at(70),
                    audit: Fixtures.event("token.refreshed", tenant: Fixtures.acme), reuseAudit: reused)
            }
            try probe.expectEqual(replay, .reused(revoked: ["at-0", "at-1", family.familyID].sorted()), "reuse of the rotated token")
            for jti in ["at-0", "at-1"] {
                try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: jti), true, "isRevoked(\(jti)) after the reuse")
            }
            try probe.expectEqual(try await probe.store.tokens.get(jti: "at-2"), nil, "the access token of the refused rotation")
            try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: "subject-1"), false, "the subject token after the reuse")
            for label in ["r-0", "r-1"] {
                try probe.expectEqual(
                    try await refreshTokens.lookup(hash: Fixtures.refreshHash(label), now: Fixtures.at(71))?.familyRevoked, true,
                    "familyRevoked of \(label) after the reuse")
            }
            try await probe.expectNotAudited("rotate the newest token of the revoked family") {
                let outcome = try await refreshTokens.rotate(
                    presented: Fixtures.refreshHash("r-1"), next: Fixtures.refresh("r-3", family: family.familyID),
                    token: Fixtures.familyToken("at-3", of: family, issuedAt: Fixtures.at(80)), at: Fixtures.at(80),
                    audit: Fixtures.event("token.refreshed", tenant: Fixtures.acme),
                    reuseAudit: Fixtures.event("token.refresh_reused", tenant: Fixtures.acme))
                try probe.expectEqual(outcome, .inactive, "rotate the newest token of the revoked family")
            }
            try probe.expectEqual(
                try await refreshTokens.lookup(hash: Fixtures.refreshHash("r-3"), now: Fixtures.at(81)), nil,
                "the next token of the refused rotation")
            try probe.expectEqual(try await probe.store.tokens.get(jti: "at-3"), nil, "the access token of the refused rotation")
        }
    }

    /// Presenting a hash the store never saw is `.inactive` and writes nothing.
    public func refreshRotateUnknownIsInactive() async throws {
        try await run { probe in
            let family = try await recordFamily(probe)
            try await probe.expectNotAudited("rotate an unknown token") {
                let outcome = try await probe.store.refreshTokens.rotate(
                    presented: Fixtures.refreshHash("never-issued"), next: Fixtures.refresh("r-1", family: family.familyID),
                    token: Fixtures.familyToken("at-1", of: family), at: Fixtures.at(60),
                    audit: Fixtures.event("token.refreshed", tenant: Fixtures.acme),
                    reuseAudit: Fixtures.event("token.refresh_reused", tenant: Fixtures.acme))
                try probe.expectEqual(outcome, .inactive, "rotate an unknown token")
            }
            try probe.expectEqual(
                try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash("r-1"), now: Fixtures.at(60)), nil,
                "the next token of the refused rotation")
            try probe.expectEqual(try await probe.store.tokens.get(jti: "at-1"), nil, "the access token of the refused rotation")
        }
    }

    /// Rotation never extends a family: from the moment it expires, rotating is `.inactive`, writes
    /// nothing and leaves the presented token unused.
    public func refreshRotateAfterExpiryIsInactive() async throws {
        try await run { probe in
            let family = try await recordFamily(probe, lifetime: 600)
            for seconds in [600, 601] {
                try await probe.expectNotAudited("rotate \(seconds - 600) s after the family expired") {
                    let outcome = try await probe.store.refreshTokens.rotate(
                        presented: Fixtures.refreshHash("r-0"), next: Fixtures.refresh("r-\(seconds)", family: family.familyID),
                        token: Fixtures.familyToken("at-\(seconds)", of: family, issuedAt: Fixtures.at(seconds)),
                        at: Fixtures.at(seconds), audit: Fixtures.event("token.refreshed", tenant: Fixtures.acme),
                        reuseAudit: Fixtures.event("token.refresh_reused", tenant: Fixtures.acme))
                    try probe.expectEqual(outcome, .inactive, "rotate \(seconds - 600) s after the family expired")
                }
                try probe.expectEqual(try await probe.store.tokens.get(jti: "at-\(seconds)"), nil, "the refused access token")
            }
            try probe.expectEqual(
                try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash("r-0"), now: Fixtures.at(599))?.used, false,
                "the presented token after the refused rotations")
            try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: "at-0"), false, "the family's access token")
        }
    }

    /// Eight concurrent rotations of one token: exactly one `.rotated`, every other `.reused`, and
    /// the family ends revoked with every access token it minted (RFC 9700 §4.14.2).
    public func refreshConcurrentRotationsHaveOneWinner() async throws {
        try await run { probe in
            let family = try await recordFamily(probe)
            let refreshTokens = probe.store.refreshTokens
            let outcomes = try await withThrowingTaskGroup(of: (Int, RefreshRotation).self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let outcome = try await refreshTokens.rotate(
                            presented: Fixtures.refreshHash("r-0"), next: Fixtures.refresh("next-\(index)", family: family.familyID),
                            token: Fixtures.familyToken("racer-\(index)", of: family, issuedAt: Fixtures.at(60)), at: Fixtures.at(60),
                            audit: Fixtures.event("token.refreshed", tenant: Fixtures.acme),
                            reuseAudit: Fixtures.event("token.refresh_reused", tenant: Fixtures.acme))
                        return (index, outcome)
                    }
                }
                var outcomes: [(Int, RefreshRotation)] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            let winners = outcomes.filter { $0.1 == .rotated }.map(\.0)
            try probe.expectEqual(winners.count, 1, "rotations that won")
            var revoked: [String] = []
            for (index, outcome) in outcomes where outcome != .rotated {
                guard case .reused(let jtis) = outcome else { throw probe.fail("rotation \(index) answered \(outcome)") }
                revoked += jtis
            }
            let winner = "racer-\(winners[0])"
            try probe.expectEqual(revoked.sorted(), [family.familyID, "at-0", winner].sorted(), "jtis revoked by the reuses")
            for jti in ["at-0", winner] {
                try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: jti), true, "isRevoked(\(jti))")
            }
            try probe.expectEqual(
                try await refreshTokens.lookup(hash: Fixtures.refreshHash("next-\(winners[0])"), now: Fixtures.at(61))?.familyRevoked,
                true, "familyRevoked of the winner's next token")
            try await probe.expectChainIntact(count: 1 + 8, "chain after the race")
        }
    }

    /// Revoking the token a family was exchanged from revokes the family and every access token it
    /// minted, before and after a rotation; the family's refresh tokens then rotate no more.
    public func refreshRevokingParentRevokesFamily() async throws {
        try await run { probe in
            let family = try await recordFamily(probe, parent: "subject-1")
            let rotation = try await probe.store.refreshTokens.rotate(
                presented: Fixtures.refreshHash("r-0"), next: Fixtures.refresh("r-1", family: family.familyID),
                token: Fixtures.familyToken("at-1", of: family, issuedAt: Fixtures.at(60)), at: Fixtures.at(60),
                audit: Fixtures.event("token.refreshed", tenant: Fixtures.acme),
                reuseAudit: Fixtures.event("token.refresh_reused", tenant: Fixtures.acme))
            try probe.expectEqual(rotation, .rotated, "rotation before the revocation")
            let outcome = try await probe.store.tokens.revoke(
                jti: "subject-1", tenant: Fixtures.acme, at: Fixtures.at(100),
                audit: Fixtures.event("token.revoked", tenant: Fixtures.acme, jti: "subject-1"))
            guard case .revoked(let descendants) = outcome else { throw probe.fail("revoke the subject token answered \(outcome)") }
            try probe.expect(
                Set(descendants).isSuperset(of: ["at-0", "at-1"]), "descendants of the subject token: \(descendants)")
            for jti in ["at-0", "at-1"] {
                try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: jti), true, "isRevoked(\(jti))")
            }
            try probe.expectEqual(
                try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash("r-1"), now: Fixtures.at(101)),
                RefreshLookup(family: family, used: false, familyRevoked: true), "lookup after the parent was revoked")
            try await probe.expectNotAudited("rotate a token of a family revoked through its parent") {
                let outcome = try await probe.store.refreshTokens.rotate(
                    presented: Fixtures.refreshHash("r-1"), next: Fixtures.refresh("r-2", family: family.familyID),
                    token: Fixtures.familyToken("at-2", of: family, issuedAt: Fixtures.at(110)), at: Fixtures.at(110),
                    audit: Fixtures.event("token.refreshed", tenant: Fixtures.acme),
                    reuseAudit: Fixtures.event("token.refresh_reused", tenant: Fixtures.acme))
                try probe.expectEqual(outcome, .inactive, "rotate a token of a family revoked through its parent")
            }
            try probe.expectEqual(try await probe.store.tokens.get(jti: "at-2"), nil, "the access token of the refused rotation")
        }
    }

    /// A family exchanged from a token that is already revoked is refused with `.conflict`; nothing
    /// of it is stored and nothing is audited.
    public func refreshChildOfRevokedParentIsRefused() async throws {
        try await run { probe in
            try await probe.store.tokens.recordIssued(
                Fixtures.token("subject-1", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
            _ = try await probe.store.tokens.revoke(
                jti: "subject-1", tenant: Fixtures.acme, at: Fixtures.at(5), audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            let family = Fixtures.family("family-1", tenant: Fixtures.acme, parent: "subject-1", issuedAt: Fixtures.at(10))
            try await probe.expectNotAudited("family of a revoked token") {
                try await probe.expectError(.conflict(""), "record a family of a revoked token") {
                    try await probe.store.refreshTokens.recordIssued(
                        Fixtures.familyToken("at-0", of: family), family: family, refresh: Fixtures.refresh("r-0", family: family.familyID),
                        audit: Fixtures.event("token.exchanged", tenant: Fixtures.acme, jti: "at-0"))
                }
            }
            try probe.expectEqual(
                try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash("r-0"), now: Fixtures.at(10)), nil,
                "the refused family's refresh token")
            try probe.expectEqual(try await probe.store.tokens.get(jti: "at-0"), nil, "the refused family's access token")
            try probe.expectEqual(try await probe.store.tokens.get(jti: family.familyID), nil, "the refused family's lineage node")
        }
    }

    /// `purgeExpired(before:)` forgets families, with their refresh tokens, that expired strictly
    /// before the date, and counts the families.
    public func refreshPurgeExpired() async throws {
        try await run { probe in
            let short = try await recordFamily(probe, id: "family-short", label: "short", access: "short-at-0", lifetime: 100)
            let long = try await recordFamily(probe, id: "family-long", label: "long", access: "long-at-0", lifetime: 1_000)
            let rotation = try await probe.store.refreshTokens.rotate(
                presented: Fixtures.refreshHash("short"), next: Fixtures.refresh("short-next", family: short.familyID),
                token: Fixtures.familyToken("short-at-1", of: short, issuedAt: Fixtures.at(50)), at: Fixtures.at(50),
                audit: Fixtures.event("token.refreshed", tenant: Fixtures.acme),
                reuseAudit: Fixtures.event("token.refresh_reused", tenant: Fixtures.acme))
            try probe.expectEqual(rotation, .rotated, "rotation of the short family")
            try probe.expectEqual(
                try await probe.store.refreshTokens.purgeExpired(before: Fixtures.at(100)), 0, "families purged at the cutoff")
            try probe.expectEqual(
                try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash("short-next"), now: Fixtures.at(60))?.family, short,
                "a family expiring at the cutoff survives the purge")
            try await probe.expectNotAudited("purge") {
                try probe.expectEqual(try await probe.store.refreshTokens.purgeExpired(before: Fixtures.at(101)), 1, "families purged")
            }
            for label in ["short", "short-next"] {
                try probe.expectEqual(
                    try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash(label), now: Fixtures.at(60)), nil,
                    "lookup of \(label) after the purge")
            }
            try probe.expectEqual(
                try await probe.store.refreshTokens.lookup(hash: Fixtures.refreshHash("long"), now: Fixtures.at(60))?.family, long,
                "the live family after the purge")
            try probe.expectEqual(try await probe.store.refreshTokens.purgeExpired(before: Fixtures.at(101)), 0, "second purge")
        }
    }

    /// Records a family of acme, issued at the epoch, with its refresh token `label` and its
    /// access token `access`; first the token `parent` when one is named.
    @discardableResult
    private func recordFamily(
        _ probe: Probe, id: String = "family-1", label: String = "r-0", access: String = "at-0", parent: String? = nil,
        lifetime: Int = 3600
    ) async throws -> RefreshFamily {
        if let parent {
            try await probe.store.tokens.recordIssued(
                Fixtures.token(parent, tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
        }
        let family = Fixtures.family(id, tenant: Fixtures.acme, parent: parent, issuedAt: Fixtures.epoch, lifetime: lifetime)
        let token = Fixtures.familyToken(access, of: family)
        let event = Fixtures.event("token.exchanged", tenant: Fixtures.acme, jti: token.jti)
        try await probe.expectAudited(event, "record \(id)") {
            try await probe.store.refreshTokens.recordIssued(
                token, family: family, refresh: Fixtures.refresh(label, family: id), audit: event)
        }
        return family
    }
}
