import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// A recorded token reads back equal and is not revoked; an unknown jti is nil and not revoked.
    public func tokenRecordGet() async throws {
        try await run { probe in
            let token = Fixtures.token("jti-1", tenant: Fixtures.acme)
            let child = Fixtures.token("jti-2", tenant: Fixtures.acme, parent: "jti-1", issuedAt: Fixtures.at(30), lifetime: 60)
            for token in [token, child] {
                let event = Fixtures.event("token.issued", tenant: Fixtures.acme, jti: token.jti)
                try await probe.expectAudited(event, "record \(token.jti)") {
                    try await probe.store.tokens.recordIssued(token, audit: event)
                }
                try probe.expectEqual(try await probe.store.tokens.get(jti: token.jti), token, "get \(token.jti)")
                try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: token.jti), false, "isRevoked(\(token.jti))")
            }
            try probe.expectEqual(try await probe.store.tokens.get(jti: "unknown"), nil, "get an unknown jti")
            try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: "unknown"), false, "isRevoked of an unknown jti")
        }
    }

    /// Recording a jti twice is `alreadyExists` and audits nothing.
    public func tokenDuplicateJTIIsAlreadyExists() async throws {
        try await run { probe in
            let token = Fixtures.token("jti-1", tenant: Fixtures.acme)
            try await probe.store.tokens.recordIssued(token, audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
            try await probe.expectNotAudited("duplicate jti") {
                try await probe.expectError(.alreadyExists, "record a jti twice") {
                    try await probe.store.tokens.recordIssued(
                        Fixtures.token("jti-1", tenant: Fixtures.globex, issuedAt: Fixtures.at(5)),
                        audit: Fixtures.event("token.issued", tenant: Fixtures.globex))
                }
            }
            try probe.expectEqual(try await probe.store.tokens.get(jti: "jti-1"), token, "the first token stays")
        }
    }

    /// A grant that consumes a one-time value records the token and uses the value up in one
    /// commit; a second grant with the same value is `alreadyExists` and writes nothing at all
    /// (no token, no audit record); once the value expired it can be used again.
    public func tokenRecordConsumingAOneTimeValueIsAllOrNothing() async throws {
        try await run { probe in
            let value = OneTimeValue(namespace: "dpop", id: "jkt-1 proof-1", expiresAt: Fixtures.at(60))
            let first = Fixtures.token("jti-1", tenant: Fixtures.acme)
            let event = Fixtures.event("token.issued", tenant: Fixtures.acme, jti: first.jti)
            try await probe.expectAudited(event, "record consuming a fresh value") {
                try await probe.store.tokens.recordIssued(first, audit: event, consuming: value, now: Fixtures.at(0))
            }
            try probe.expectEqual(try await probe.store.tokens.get(jti: "jti-1"), first, "the token is recorded")
            try await probe.expectNotAudited("value used twice") {
                try await probe.expectError(.alreadyExists, "the same value again") {
                    try await probe.store.tokens.recordIssued(
                        Fixtures.token("jti-2", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme),
                        consuming: value, now: Fixtures.at(1))
                }
            }
            try probe.expectEqual(try await probe.store.tokens.get(jti: "jti-2"), nil, "no token for the refused grant")
            try probe.expectEqual(
                try await probe.store.replay.consume(namespace: "dpop", id: "jkt-1 proof-1", expiresAt: Fixtures.at(60), now: Fixtures.at(2)),
                false, "the value stays used")
            // A refused grant leaves no trace: a value consumed in a failed commit is still free.
            let other = OneTimeValue(namespace: "dpop", id: "jkt-1 proof-2", expiresAt: Fixtures.at(60))
            try await probe.expectError(.alreadyExists, "a duplicate jti with a fresh value") {
                try await probe.store.tokens.recordIssued(
                    Fixtures.token("jti-1", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme),
                    consuming: other, now: Fixtures.at(3))
            }
            try probe.expectEqual(
                try await probe.store.replay.consume(namespace: "dpop", id: "jkt-1 proof-2", expiresAt: Fixtures.at(60), now: Fixtures.at(4)),
                true, "the value of a rolled-back grant is unused")
            // After its expiry the value may be used again.
            try await probe.store.tokens.recordIssued(
                Fixtures.token("jti-3", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme),
                consuming: value, now: Fixtures.at(61))
        }
    }

    /// Revoking a root revokes its children and grandchildren, reports them, and nothing else.
    public func tokenRevokeRevokesDescendantsTwoLevelsDeep() async throws {
        try await run { probe in
            // root ─┬─ a ─┬─ a1
            //       │     └─ a2
            //       └─ b ─── b1        other (unrelated)
            try await recordLineage(probe)
            let event = Fixtures.event("token.revoked", tenant: Fixtures.acme, jti: "root", at: Fixtures.at(100))
            let outcome = try await probe.expectAudited(event, "revoke root") {
                try await probe.store.tokens.revoke(jti: "root", tenant: Fixtures.acme, at: Fixtures.at(100), audit: event)
            }
            guard case .revoked(let descendants) = outcome else { throw probe.fail("revoke root answered \(outcome)") }
            try probe.expectEqual(Set(descendants), ["a", "a1", "a2", "b", "b1"], "descendants reported")
            try probe.expectEqual(descendants.count, 5, "number of descendants reported")
            for jti in ["root", "a", "a1", "a2", "b", "b1"] {
                try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: jti), true, "isRevoked(\(jti))")
            }
            try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: "other"), false, "isRevoked(other)")
            let leaf = Fixtures.event("token.revoked", tenant: Fixtures.acme, jti: "other")
            let leafOutcome = try await probe.expectAudited(leaf, "revoke a token without descendants") {
                try await probe.store.tokens.revoke(jti: "other", tenant: Fixtures.acme, at: Fixtures.at(101), audit: leaf)
            }
            try probe.expectEqual(leafOutcome, .revoked(descendants: []), "revoke a token without descendants")
        }
    }

    /// Revoking a token in the middle of a lineage revokes its subtree, not its parent or siblings.
    public func tokenRevokeOfMiddleTokenSparesItsAncestors() async throws {
        try await run { probe in
            try await recordLineage(probe)
            let outcome = try await probe.store.tokens.revoke(
                jti: "a", tenant: Fixtures.acme, at: Fixtures.at(100), audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            guard case .revoked(let descendants) = outcome else { throw probe.fail("revoke a answered \(outcome)") }
            try probe.expectEqual(Set(descendants), ["a1", "a2"], "descendants of a")
            for (jti, revoked) in [("root", false), ("a", true), ("a1", true), ("a2", true), ("b", false), ("b1", false)] {
                try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: jti), revoked, "isRevoked(\(jti))")
            }
            // Revoking the root later reports only what was still live.
            let later = try await probe.store.tokens.revoke(
                jti: "root", tenant: Fixtures.acme, at: Fixtures.at(200), audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            guard case .revoked(let rest) = later else { throw probe.fail("revoke root answered \(later)") }
            try probe.expectEqual(Set(rest), ["b", "b1"], "descendants of root still live")
        }
    }

    /// A tenant cannot revoke, or learn of, another tenant's token: `.unknown`, nothing revoked,
    /// nothing audited. An id that was never issued is `.unknown` too.
    public func tokenRevokeAcrossTenantsIsUnknown() async throws {
        try await run { probe in
            try await recordLineage(probe)
            try await probe.expectNotAudited("revoke across tenants") {
                let outcome = try await probe.store.tokens.revoke(
                    jti: "root", tenant: Fixtures.globex, at: Fixtures.at(100),
                    audit: Fixtures.event("token.revoked", tenant: Fixtures.globex, jti: "root"))
                try probe.expectEqual(outcome, .unknown, "revoke another tenant's token")
            }
            for jti in ["root", "a", "a1", "a2", "b", "b1"] {
                try probe.expectEqual(try await probe.store.tokens.isRevoked(jti: jti), false, "isRevoked(\(jti))")
            }
            try await probe.expectNotAudited("revoke an unknown jti") {
                let outcome = try await probe.store.tokens.revoke(
                    jti: "never-issued", tenant: Fixtures.acme, at: Fixtures.at(100),
                    audit: Fixtures.event("token.revoked", tenant: Fixtures.acme, jti: "never-issued"))
                try probe.expectEqual(outcome, .unknown, "revoke a jti never issued")
            }
        }
    }

    /// A second revocation, of the token or of a descendant revoked with it, is `.alreadyRevoked`
    /// and audits nothing: the log records revocations that happened.
    public func tokenRevokeTwiceIsAlreadyRevoked() async throws {
        try await run { probe in
            try await recordLineage(probe)
            _ = try await probe.store.tokens.revoke(
                jti: "a", tenant: Fixtures.acme, at: Fixtures.at(100), audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            for jti in ["a", "a1"] {
                try await probe.expectNotAudited("revoke \(jti) again") {
                    let outcome = try await probe.store.tokens.revoke(
                        jti: jti, tenant: Fixtures.acme, at: Fixtures.at(200),
                        audit: Fixtures.event("token.revoked", tenant: Fixtures.acme, jti: jti))
                    try probe.expectEqual(outcome, .alreadyRevoked, "revoke \(jti) again")
                }
            }
        }
    }

    /// A token exchanged from a parent that is already revoked is refused with `.conflict`, so a
    /// grant racing a revocation cannot leave a live descendant of a revoked token.
    public func tokenChildOfRevokedParentIsRefused() async throws {
        try await run { probe in
            try await probe.store.tokens.recordIssued(
                Fixtures.token("parent", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
            _ = try await probe.store.tokens.revoke(
                jti: "parent", tenant: Fixtures.acme, at: Fixtures.at(10), audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            try await probe.expectNotAudited("child of a revoked parent") {
                try await probe.expectError(.conflict(""), "record a child of a revoked token") {
                    try await probe.store.tokens.recordIssued(
                        Fixtures.token("child", tenant: Fixtures.acme, parent: "parent", issuedAt: Fixtures.at(20)),
                        audit: Fixtures.event("token.issued", tenant: Fixtures.acme, jti: "child"))
                }
            }
            try probe.expectEqual(try await probe.store.tokens.get(jti: "child"), nil, "the refused child")
        }
    }

    /// `purgeExpired(before:)` forgets tokens, revoked or not, that expired strictly before the date.
    public func tokenPurgeExpired() async throws {
        try await run { probe in
            let tokens = [
                Fixtures.token("expired", tenant: Fixtures.acme, issuedAt: Fixtures.at(0), lifetime: 60),
                Fixtures.token("expired-revoked", tenant: Fixtures.acme, issuedAt: Fixtures.at(0), lifetime: 90),
                Fixtures.token("at-cutoff", tenant: Fixtures.acme, issuedAt: Fixtures.at(0), lifetime: 100),
                Fixtures.token("live", tenant: Fixtures.acme, issuedAt: Fixtures.at(50), lifetime: 600),
            ]
            for token in tokens {
                try await probe.store.tokens.recordIssued(token, audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
            }
            _ = try await probe.store.tokens.revoke(
                jti: "expired-revoked", tenant: Fixtures.acme, at: Fixtures.at(70),
                audit: Fixtures.event("token.revoked", tenant: Fixtures.acme))
            try probe.expectEqual(try await probe.store.tokens.purgeExpired(before: Fixtures.at(100)), 2, "tokens purged")
            for (jti, kept) in [("expired", false), ("expired-revoked", false), ("at-cutoff", true), ("live", true)] {
                try probe.expectEqual(try await probe.store.tokens.get(jti: jti) != nil, kept, "\(jti) kept after the purge")
            }
            try probe.expectEqual(try await probe.store.tokens.purgeExpired(before: Fixtures.at(100)), 0, "second purge")
        }
    }

    private func recordLineage(_ probe: Probe) async throws {
        let lineage: [(String, String?)] = [
            ("root", nil), ("a", "root"), ("b", "root"), ("a1", "a"), ("a2", "a"), ("b1", "b"), ("other", nil),
        ]
        for (offset, (jti, parent)) in lineage.enumerated() {
            try await probe.store.tokens.recordIssued(
                Fixtures.token(jti, tenant: Fixtures.acme, parent: parent, issuedAt: Fixtures.at(offset)),
                audit: Fixtures.event("token.issued", tenant: Fixtures.acme, jti: jti))
        }
    }
}
