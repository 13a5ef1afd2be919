import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// Every field of a workload issuer reads back as written, by `find` and in `list` (creation
    /// order); empty subject patterns and claim conditions stay empty.
    public func workloadIssuerAddFindListRoundTrips() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let ci = Fixtures.workloadIssuer("wi-ci", tenant: Fixtures.acme, issuer: "https://ci.example.com", createdAt: Fixtures.at(20))
            let plain = WorkloadIssuer(
                id: "wi-k8s", tenantID: Fixtures.acme, issuer: "https://k8s.example.com/cluster/1", jwks: #"{"keys":[]}"#,
                audience: "tessera", subjectPatterns: [], claimConditions: [:], scopes: ScopeSet([]), createdAt: Fixtures.at(10))
            // Added in this order; `list` answers in creation order, as added.
            for issuer in [plain, ci] {
                let event = Fixtures.event("idp.added", tenant: Fixtures.acme)
                try await probe.expectAudited(event, "add \(issuer.id)") {
                    try await probe.store.workloadIssuers.add(issuer, audit: event)
                }
                try probe.expectEqual(
                    try await probe.store.workloadIssuers.find(tenant: Fixtures.acme, issuer: issuer.issuer), issuer, "find \(issuer.id)")
            }
            try probe.expectEqual(try await probe.store.workloadIssuers.list(tenant: Fixtures.acme), [plain, ci], "acme's issuers")
            try probe.expectEqual(
                try await probe.store.workloadIssuers.find(tenant: Fixtures.acme, issuer: "https://ci.example.com/"), nil,
                "find compares the issuer exactly")
            try probe.expectEqual(
                try await probe.store.workloadIssuers.find(tenant: Fixtures.acme, issuer: "https://unknown.example"), nil,
                "find an unknown issuer")
        }
    }

    /// A tenant trusts an issuer once: the same (tenant, issuer) under a new id, or a taken id, is
    /// `alreadyExists` and audits nothing. Another tenant may trust the same issuer.
    public func workloadIssuerDuplicateIsAlreadyExists() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let first = Fixtures.workloadIssuer("wi-1", tenant: Fixtures.acme, issuer: "https://ci.example.com")
            try await probe.store.workloadIssuers.add(first, audit: Fixtures.event("idp.added", tenant: Fixtures.acme))
            let duplicates = [
                ("same issuer, new id", Fixtures.workloadIssuer("wi-2", tenant: Fixtures.acme, issuer: "https://ci.example.com")),
                ("taken id, other issuer", Fixtures.workloadIssuer("wi-1", tenant: Fixtures.acme, issuer: "https://other.example.com")),
                ("taken id, other tenant", Fixtures.workloadIssuer("wi-1", tenant: Fixtures.globex, issuer: "https://other.example.com")),
            ]
            for (what, duplicate) in duplicates {
                try await probe.expectNotAudited(what) {
                    try await probe.expectError(.alreadyExists, what) {
                        try await probe.store.workloadIssuers.add(duplicate, audit: Fixtures.event("idp.added", tenant: duplicate.tenantID))
                    }
                }
            }
            try probe.expectEqual(try await probe.store.workloadIssuers.list(tenant: Fixtures.acme), [first], "acme's issuers")
            let globex = Fixtures.workloadIssuer("wi-3", tenant: Fixtures.globex, issuer: "https://ci.example.com")
            try await probe.store.workloadIssuers.add(globex, audit: Fixtures.event("idp.added", tenant: Fixtures.globex))
            try probe.expectEqual(
                try await probe.store.workloadIssuers.find(tenant: Fixtures.globex, issuer: "https://ci.example.com"), globex,
                "the same issuer trusted by another tenant")
        }
    }

    /// An issuer for a tenant that does not exist is `notFound` and audits nothing.
    public func workloadIssuerOfUnknownTenantIsNotFound() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.expectNotAudited("issuer of an unknown tenant") {
                try await probe.expectError(.notFound, "add an issuer for an unknown tenant") {
                    try await probe.store.workloadIssuers.add(
                        Fixtures.workloadIssuer("wi-1", tenant: Fixtures.globex, issuer: "https://ci.example.com"),
                        audit: Fixtures.event("idp.added", tenant: Fixtures.globex))
                }
            }
            try probe.expectEqual(try await probe.store.workloadIssuers.list(tenant: Fixtures.globex), [], "the unknown tenant's issuers")
        }
    }

    /// `find` and `list` never answer with another tenant's issuer.
    public func workloadIssuerFindIsTenantScoped() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            try await probe.store.workloadIssuers.add(
                Fixtures.workloadIssuer("wi-1", tenant: Fixtures.acme, issuer: "https://ci.example.com"),
                audit: Fixtures.event("idp.added", tenant: Fixtures.acme))
            try probe.expectEqual(
                try await probe.store.workloadIssuers.find(tenant: Fixtures.globex, issuer: "https://ci.example.com"), nil,
                "find acme's issuer as globex")
            try probe.expectEqual(try await probe.store.workloadIssuers.list(tenant: Fixtures.globex), [], "globex's issuers")
        }
    }
}
