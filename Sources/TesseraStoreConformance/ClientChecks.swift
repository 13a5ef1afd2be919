import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// Every field of a client reads back as written: secret hash, JWKS, parameterized scopes,
    /// grant types, DPoP requirement, introspection permission, dates.
    public func clientCreateGetRoundTrips() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let secretClient = Fixtures.client("svc-secret", tenant: Fixtures.acme, createdAt: Fixtures.at(10))
            var keyClient = Fixtures.client("svc-key", tenant: Fixtures.acme, createdAt: Fixtures.at(11), authMethod: .privateKeyJWT)
            keyClient.grantTypes = [.jwtBearer]
            keyClient.dpop = .optional
            keyClient.mayIntrospect = false
            keyClient.scopes = ScopeSet([])
            for client in [secretClient, keyClient] {
                let event = Fixtures.event("client.created", tenant: Fixtures.acme, clientID: client.clientID)
                try await probe.expectAudited(event, "create client \(client.clientID)") {
                    try await probe.store.clients.create(client, audit: event)
                }
                try probe.expectEqual(try await probe.store.clients.get(clientID: client.clientID), client, "get \(client.clientID)")
            }
            try probe.expectEqual(try await probe.store.clients.get(clientID: "nobody"), nil, "get an unknown client")
        }
    }

    /// `list(tenant:)` gives one tenant's clients, `list(tenant: nil)` everyone's, both in
    /// creation order.
    public func clientListPerTenantAndAllInCreationOrder() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            var created: [OAuthClient] = []
            for index in 0..<6 {
                let tenant = index.isMultiple(of: 2) ? Fixtures.acme : Fixtures.globex
                let client = Fixtures.client("client-\(index)", tenant: tenant, createdAt: Fixtures.at(100 + index))
                try await probe.store.clients.create(client, audit: Fixtures.event("client.created", tenant: tenant))
                created.append(client)
            }
            try probe.expectEqual(
                try await probe.store.clients.list(tenant: Fixtures.acme).map(\.clientID),
                created.filter { $0.tenantID == Fixtures.acme }.map(\.clientID), "acme's clients")
            try probe.expectEqual(
                try await probe.store.clients.list(tenant: Fixtures.globex).map(\.clientID),
                created.filter { $0.tenantID == Fixtures.globex }.map(\.clientID), "globex's clients")
            try probe.expectEqual(try await probe.store.clients.list(tenant: nil), created, "all clients")
            try probe.expectEqual(
                try await probe.store.clients.list(tenant: Fixtures.tenantID("initech")), [], "clients of an unknown tenant")
        }
    }

    /// A client id is unique across all tenants; a duplicate audits nothing and changes nothing.
    public func clientDuplicateIsAlreadyExists() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let first = Fixtures.client("svc", tenant: Fixtures.acme)
            try await probe.store.clients.create(first, audit: Fixtures.event("client.created", tenant: Fixtures.acme))
            for tenant in [Fixtures.acme, Fixtures.globex] {
                var second = Fixtures.client("svc", tenant: tenant, createdAt: Fixtures.at(9))
                second.name = "Impostor"
                try await probe.expectNotAudited("duplicate client in \(tenant)") {
                    try await probe.expectError(.alreadyExists, "create a client whose id is taken, in \(tenant)") {
                        try await probe.store.clients.create(second, audit: Fixtures.event("client.created", tenant: tenant))
                    }
                }
            }
            try probe.expectEqual(try await probe.store.clients.get(clientID: "svc"), first, "the first client stays")
        }
    }

    /// A client of a tenant that does not exist is `notFound`, and nothing is written.
    public func clientOfUnknownTenantIsNotFound() async throws {
        try await run { probe in
            let ghost = Fixtures.tenantID("ghost")
            try await probe.expectNotAudited("client of an unknown tenant") {
                try await probe.expectError(.notFound, "create a client of an unknown tenant") {
                    try await probe.store.clients.create(
                        Fixtures.client("orphan", tenant: ghost), audit: Fixtures.event("client.created", tenant: ghost))
                }
            }
            try probe.expectEqual(try await probe.store.clients.get(clientID: "orphan"), nil, "the orphan is not stored")
        }
    }

    /// Disabling records the date and one audit record; disabling again keeps the first date and,
    /// since nothing changes, writes no record.
    public func clientDisableKeepsFirstDate() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let client = Fixtures.client("svc", tenant: Fixtures.acme)
            try await probe.store.clients.create(client, audit: Fixtures.event("client.created", tenant: Fixtures.acme))
            let first = Fixtures.event("client.disabled", tenant: Fixtures.acme, clientID: "svc", at: Fixtures.at(60))
            try await probe.expectAudited(first, "disable") {
                try await probe.store.clients.disable(clientID: "svc", at: Fixtures.at(60), audit: first)
            }
            var expected = client
            expected.disabledAt = Fixtures.at(60)
            try probe.expectEqual(try await probe.store.clients.get(clientID: "svc"), expected, "the disabled client")
            try await probe.expectNotAudited("disable again") {
                try await probe.store.clients.disable(
                    clientID: "svc", at: Fixtures.at(120),
                    audit: Fixtures.event("client.disabled", tenant: Fixtures.acme, clientID: "svc", at: Fixtures.at(120)))
            }
            try probe.expectEqual(
                try await probe.store.clients.get(clientID: "svc")?.disabledAt, Fixtures.at(60), "disabledAt after disabling twice")
        }
    }

    /// Disabling a client that does not exist is `notFound` and audits nothing.
    public func clientDisableUnknownIsNotFound() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.expectNotAudited("disable an unknown client") {
                try await probe.expectError(.notFound, "disable an unknown client") {
                    try await probe.store.clients.disable(
                        clientID: "nobody", at: Fixtures.epoch, audit: Fixtures.event("client.disabled", tenant: Fixtures.acme))
                }
            }
        }
    }
}
