import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// Every `put` adds the next version (1, 2, 3) and returns it as stored; `current` is the
    /// newest, nil before the first.
    public func policyVersionsGrowAndCurrentIsNewest() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try probe.expectEqual(try await probe.store.policies.current(tenant: Fixtures.acme), nil, "current before any put")
            for version in Int64(1)...3 {
                let document = Fixtures.policyDocument("rule-\(version)")
                let expected = StoredPolicy(
                    tenantID: Fixtures.acme, version: version, document: document, createdAt: Fixtures.at(Int(version)))
                let event = Fixtures.event("policy.changed", tenant: Fixtures.acme)
                let stored = try await probe.expectAudited(event, "put version \(version)") {
                    try await probe.store.policies.put(
                        tenant: Fixtures.acme, document: document, at: Fixtures.at(Int(version)), audit: event)
                }
                try probe.expectEqual(stored, expected, "policy returned by put \(version)")
                try probe.expectEqual(
                    try await probe.store.policies.current(tenant: Fixtures.acme), expected, "current after put \(version)")
            }
            // The same document again is still a new version: `put` never overwrites.
            let again = try await probe.store.policies.put(
                tenant: Fixtures.acme, document: Fixtures.policyDocument("rule-3"), at: Fixtures.at(4),
                audit: Fixtures.event("policy.changed", tenant: Fixtures.acme))
            try probe.expectEqual(again.version, 4, "version of a repeated document")
        }
    }

    /// A policy for a tenant that does not exist is `notFound`, audits nothing and stores nothing.
    public func policyOfUnknownTenantIsNotFound() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.expectNotAudited("policy of an unknown tenant") {
                try await probe.expectError(.notFound, "put a policy for an unknown tenant") {
                    try await probe.store.policies.put(
                        tenant: Fixtures.globex, document: Fixtures.policyDocument("x"), at: Fixtures.epoch,
                        audit: Fixtures.event("policy.changed", tenant: Fixtures.globex))
                }
            }
            try probe.expectEqual(try await probe.store.policies.current(tenant: Fixtures.globex), nil, "current of the unknown tenant")
        }
    }

    /// Each tenant has its own versions: one tenant's puts neither number nor replace another's.
    public func policyTenantsAreSeparate() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            for label in ["acme-1", "acme-2"] {
                _ = try await probe.store.policies.put(
                    tenant: Fixtures.acme, document: Fixtures.policyDocument(label), at: Fixtures.at(1),
                    audit: Fixtures.event("policy.changed", tenant: Fixtures.acme))
            }
            try probe.expectEqual(
                try await probe.store.policies.current(tenant: Fixtures.globex), nil, "globex's policy after acme's puts")
            let globex = try await probe.store.policies.put(
                tenant: Fixtures.globex, document: Fixtures.policyDocument("globex-1"), at: Fixtures.at(2),
                audit: Fixtures.event("policy.changed", tenant: Fixtures.globex))
            try probe.expectEqual(globex.version, 1, "globex's first version")
            try probe.expectEqual(
                try await probe.store.policies.current(tenant: Fixtures.globex),
                StoredPolicy(
                    tenantID: Fixtures.globex, version: 1, document: Fixtures.policyDocument("globex-1"), createdAt: Fixtures.at(2)),
                "globex's current policy")
            try probe.expectEqual(
                try await probe.store.policies.current(tenant: Fixtures.acme),
                StoredPolicy(tenantID: Fixtures.acme, version: 2, document: Fixtures.policyDocument("acme-2"), createdAt: Fixtures.at(1)),
                "acme's current policy")
        }
    }
}
