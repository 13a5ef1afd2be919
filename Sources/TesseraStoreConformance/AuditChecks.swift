import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// Each successful mutating call writes exactly one record, holding the event it was given.
    public func auditEveryMutationWritesOneRecord() async throws {
        try await run { probe in
            let store = probe.store
            let tenant = Tenant(id: Fixtures.acme, name: "Acme", createdAt: Fixtures.epoch)
            let tenantCreated = Fixtures.event("tenant.created", tenant: Fixtures.acme)
            try await probe.expectAudited(tenantCreated, "tenants.create") {
                try await store.tenants.create(tenant, audit: tenantCreated)
            }
            let clientCreated = Fixtures.event("client.created", tenant: Fixtures.acme, clientID: "svc")
            try await probe.expectAudited(clientCreated, "clients.create") {
                try await store.clients.create(Fixtures.client("svc", tenant: Fixtures.acme), audit: clientCreated)
            }
            let tokenIssued = Fixtures.event("token.issued", tenant: Fixtures.acme, jti: "jti-1", clientID: "svc")
            try await probe.expectAudited(tokenIssued, "tokens.recordIssued") {
                try await store.tokens.recordIssued(Fixtures.token("jti-1", tenant: Fixtures.acme), audit: tokenIssued)
            }
            let tokenRevoked = Fixtures.event("token.revoked", tenant: Fixtures.acme, jti: "jti-1")
            try await probe.expectAudited(tokenRevoked, "tokens.revoke") {
                try await store.tokens.revoke(jti: "jti-1", tenant: Fixtures.acme, at: Fixtures.at(5), audit: tokenRevoked)
            }
            let clientDisabled = Fixtures.event("client.disabled", tenant: Fixtures.acme, clientID: "svc")
            try await probe.expectAudited(clientDisabled, "clients.disable") {
                try await store.clients.disable(clientID: "svc", at: Fixtures.at(6), audit: clientDisabled)
            }
            let introspected = Fixtures.event("token.introspected", tenant: Fixtures.acme, jti: "jti-1")
            let record = try await probe.expectAudited(introspected, "audit.append") {
                try await store.audit.append(introspected)
            }
            try probe.expectEqual(record.body, AuditChain.encode(introspected), "body of the record append returned")
            try probe.expectEqual(try await probe.auditSeq(), 6, "records after six mutations")
            // Replay entries are not security events of their own: consuming one writes no record.
            try await probe.expectNotAudited("replay.consume") {
                _ = try await store.replay.consume(namespace: "n", id: "i", expiresAt: Fixtures.at(60), now: Fixtures.epoch)
            }
            try await probe.expectChainIntact(count: 6, "chain after every kind of mutation")
        }
    }

    /// The token-exchange stores audit like the others: one record per successful mutation (policy
    /// put, issuer added, family recorded, rotation, reuse), holding the event given; a rotation
    /// that changes nothing and a purge write none.
    public func auditTokenExchangeMutationsWriteOneRecordEach() async throws {
        try await run { probe in
            let store = probe.store
            try await probe.createTenant(Fixtures.acme)
            let policyChanged = Fixtures.event("policy.changed", tenant: Fixtures.acme)
            try await probe.expectAudited(policyChanged, "policies.put") {
                try await store.policies.put(
                    tenant: Fixtures.acme, document: Fixtures.policyDocument("p"), at: Fixtures.at(1), audit: policyChanged)
            }
            let idpAdded = Fixtures.event("idp.added", tenant: Fixtures.acme)
            try await probe.expectAudited(idpAdded, "workloadIssuers.add") {
                try await store.workloadIssuers.add(
                    Fixtures.workloadIssuer("wi-1", tenant: Fixtures.acme, issuer: "https://ci.example.com"), audit: idpAdded)
            }
            let family = Fixtures.family("family-1", tenant: Fixtures.acme)
            let exchanged = Fixtures.event("token.exchanged", tenant: Fixtures.acme, jti: "at-0")
            try await probe.expectAudited(exchanged, "refreshTokens.recordIssued") {
                try await store.refreshTokens.recordIssued(
                    Fixtures.familyToken("at-0", of: family), family: family, refresh: Fixtures.refresh("r-0", family: "family-1"),
                    audit: exchanged)
            }
            let refreshed = Fixtures.event("token.refreshed", tenant: Fixtures.acme, jti: "at-1")
            let reused = Fixtures.event("token.refresh_reused", tenant: Fixtures.acme)
            try await probe.expectAudited(refreshed, "refreshTokens.rotate") {
                try await store.refreshTokens.rotate(
                    presented: Fixtures.refreshHash("r-0"), next: Fixtures.refresh("r-1", family: "family-1"),
                    token: Fixtures.familyToken("at-1", of: family), at: Fixtures.at(60), audit: refreshed, reuseAudit: reused)
            }
            try await probe.expectNotAudited("refreshTokens.rotate of an unknown token") {
                _ = try await store.refreshTokens.rotate(
                    presented: Fixtures.refreshHash("unknown"), next: Fixtures.refresh("r-9", family: "family-1"),
                    token: Fixtures.familyToken("at-9", of: family), at: Fixtures.at(60), audit: refreshed, reuseAudit: reused)
            }
            try await probe.expectAudited(reused, "refreshTokens.rotate of a used token") {
                try await store.refreshTokens.rotate(
                    presented: Fixtures.refreshHash("r-0"), next: Fixtures.refresh("r-2", family: "family-1"),
                    token: Fixtures.familyToken("at-2", of: family), at: Fixtures.at(70), audit: refreshed, reuseAudit: reused)
            }
            try await probe.expectNotAudited("refreshTokens.purgeExpired") {
                _ = try await store.refreshTokens.purgeExpired(before: Fixtures.at(100_000))
            }
            try await probe.expectChainIntact(count: 6, "chain after the token-exchange mutations")
        }
    }

    /// Calls that fail or change nothing write no record: duplicates, unknown tenants and clients,
    /// revocations of unknown, foreign or already revoked tokens.
    public func auditFailedMutationsWriteNothing() async throws {
        try await run { probe in
            let store = probe.store
            try await probe.createTenant(Fixtures.acme)
            try await store.clients.create(
                Fixtures.client("svc", tenant: Fixtures.acme), audit: Fixtures.event("client.created", tenant: Fixtures.acme))
            try await store.tokens.recordIssued(
                Fixtures.token("jti-1", tenant: Fixtures.acme), audit: Fixtures.event("token.issued", tenant: Fixtures.acme))
            let before = try await probe.auditSeq()
            let ignored = Fixtures.event("should.not.appear", tenant: Fixtures.acme)
            try await probe.expectNotAudited("failures") {
                try await probe.expectError(.alreadyExists, "duplicate tenant") {
                    try await store.tenants.create(Tenant(id: Fixtures.acme, name: "x", createdAt: Fixtures.epoch), audit: ignored)
                }
                try await probe.expectError(.alreadyExists, "duplicate client") {
                    try await store.clients.create(Fixtures.client("svc", tenant: Fixtures.acme), audit: ignored)
                }
                try await probe.expectError(.notFound, "client of an unknown tenant") {
                    try await store.clients.create(Fixtures.client("other", tenant: Fixtures.globex), audit: ignored)
                }
                try await probe.expectError(.notFound, "disable an unknown client") {
                    try await store.clients.disable(clientID: "nobody", at: Fixtures.epoch, audit: ignored)
                }
                try await probe.expectError(.alreadyExists, "duplicate jti") {
                    try await store.tokens.recordIssued(Fixtures.token("jti-1", tenant: Fixtures.acme), audit: ignored)
                }
                _ = try await store.tokens.revoke(jti: "jti-1", tenant: Fixtures.globex, at: Fixtures.epoch, audit: ignored)
                _ = try await store.tokens.revoke(jti: "nope", tenant: Fixtures.acme, at: Fixtures.epoch, audit: ignored)
            }
            try await probe.expectChainIntact(count: before, "chain after failed mutations")
        }
    }

    /// 200 concurrent appends get distinct consecutive sequence numbers and one intact chain.
    public func auditConcurrentAppendsFormOneChain() async throws {
        try await run { probe in
            let audit = probe.store.audit
            let records = try await withThrowingTaskGroup(of: AuditRecord.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        try await audit.append(Fixtures.event("token.introspected", tenant: Fixtures.acme, jti: "jti-\(index)"))
                    }
                }
                var records: [AuditRecord] = []
                for try await record in group { records.append(record) }
                return records
            }
            try probe.expectEqual(records.map(\.seq).sorted(), Array(1...200), "sequence numbers handed out")
            try await probe.expectChainIntact(count: 200, "chain after 200 concurrent appends")
            let stored = try await audit.records(after: 0, limit: 1_000)
            try probe.expectEqual(Set(stored), Set(records), "records as stored and as returned by append")
        }
    }

    /// Concurrent writes of which half fail (duplicates) leave one intact chain holding exactly
    /// the records of the writes that succeeded.
    public func auditConcurrentFailuresLeaveChainIntact() async throws {
        try await run { probe in
            let store = probe.store
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<120 {
                    group.addTask {
                        // Every jti is recorded twice: one of each pair fails.
                        let jti = "jti-\(index / 2)"
                        do {
                            try await store.tokens.recordIssued(
                                Fixtures.token(jti, tenant: Fixtures.acme),
                                audit: Fixtures.event("token.issued", tenant: Fixtures.acme, jti: jti))
                            return true
                        } catch StoreError.alreadyExists {
                            return false
                        }
                    }
                    group.addTask {
                        try await store.audit.append(Fixtures.event("token.introspected", tenant: Fixtures.acme))
                        return true
                    }
                }
                var successes = 0
                for try await succeeded in group where succeeded { successes += 1 }
                return successes
            }
            try probe.expectEqual(outcomes, 60 + 120, "writes that succeeded")
            try await probe.expectChainIntact(count: 180, "chain after concurrent writes with failures")
        }
    }

    /// `records(after:limit:)` pages through the log in order without gaps or overlaps.
    public func auditRecordsPageInOrder() async throws {
        try await run { probe in
            let audit = probe.store.audit
            var appended: [AuditRecord] = []
            for index in 0..<25 {
                appended.append(try await audit.append(Fixtures.event("token.introspected", tenant: nil, jti: "jti-\(index)")))
            }
            var paged: [AuditRecord] = []
            var pageSizes: [Int] = []
            var after: Int64 = 0
            while true {
                let page = try await audit.records(after: after, limit: 10)
                if page.isEmpty { break }
                pageSizes.append(page.count)
                paged += page
                after = page.last!.seq
            }
            try probe.expectEqual(pageSizes, [10, 10, 5], "page sizes")
            try probe.expectEqual(paged, appended, "records paged")
            try probe.expectEqual(try await audit.records(after: 20, limit: 100).map(\.seq), Array(21...25), "records after 20")
            try probe.expectEqual(try await audit.records(after: 25, limit: 10), [], "records after the last")
            try probe.expectEqual(try await audit.records(after: 3, limit: 0), [], "a zero limit")
        }
    }

    /// The head is nil for an empty log and afterwards names the last record's seq and hash; the
    /// first record is chained to the genesis hash.
    public func auditHeadMatchesLastRecord() async throws {
        try await run { probe in
            let audit = probe.store.audit
            try probe.expectEqual(try await audit.head(), nil, "head of an empty log")
            try await probe.expectChainIntact(count: 0, "empty chain")
            let first = try await audit.append(Fixtures.event("key.rotated", tenant: nil))
            try probe.expectEqual(first.seq, 1, "seq of the first record")
            try probe.expectEqual(first.prevHash, AuditChain.genesis, "prev_hash of the first record")
            try probe.expectEqual(first.hash, AuditChain.hash(prev: AuditChain.genesis, body: first.body), "hash of the first record")
            try probe.expectEqual(try await audit.head(), AuditHead(seq: 1, hash: first.hash), "head after one record")
            var last = first
            for _ in 0..<4 { last = try await audit.append(Fixtures.event("key.rotated", tenant: nil)) }
            try probe.expectEqual(last.prevHash, try await audit.records(after: 3, limit: 1).first?.hash, "link to the previous record")
            try probe.expectEqual(try await audit.head(), AuditHead(seq: last.seq, hash: last.hash), "head after five records")
            try await probe.expectChainIntact(count: 5, "chain of five")
        }
    }
}
