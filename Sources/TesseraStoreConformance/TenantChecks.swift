import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// A created tenant reads back equal, by id and in the list; an unknown id reads as nil.
    public func tenantCreateGetList() async throws {
        try await run { probe in
            let acme = Tenant(id: Fixtures.acme, name: "Acme Corp", domains: ["acme.example", "acme.test"], createdAt: Fixtures.at(1))
            let globex = Tenant(id: Fixtures.globex, name: "Globex", domains: [], createdAt: Fixtures.at(2))
            for tenant in [acme, globex] {
                let event = Fixtures.event("tenant.created", tenant: tenant.id)
                try await probe.expectAudited(event, "create tenant \(tenant.id)") {
                    try await probe.store.tenants.create(tenant, audit: event)
                }
            }
            try probe.expectEqual(try await probe.store.tenants.get(Fixtures.acme), acme, "get acme")
            try probe.expectEqual(try await probe.store.tenants.get(Fixtures.globex), globex, "get globex")
            try probe.expectEqual(try await probe.store.tenants.get(Fixtures.tenantID("initech")), nil, "get an unknown tenant")
            let listed = try await probe.store.tenants.list()
            try probe.expectEqual(listed.count, 2, "number of tenants listed")
            try probe.expectEqual(Set(listed), [acme, globex], "tenants listed")
        }
    }

    /// Creating a tenant whose id is taken is `alreadyExists`, keeps the first, and audits nothing.
    public func tenantDuplicateIsAlreadyExists() async throws {
        try await run { probe in
            let first = try await probe.createTenant(Fixtures.acme)
            let second = Tenant(id: Fixtures.acme, name: "Impostor", domains: ["evil.example"], createdAt: Fixtures.at(5))
            try await probe.expectNotAudited("duplicate tenant") {
                try await probe.expectError(.alreadyExists, "create a tenant whose id is taken") {
                    try await probe.store.tenants.create(second, audit: Fixtures.event("tenant.created", tenant: Fixtures.acme))
                }
            }
            try probe.expectEqual(try await probe.store.tenants.get(Fixtures.acme), first, "the first tenant stays")
            try probe.expectEqual(try await probe.store.tenants.list().count, 1, "number of tenants")
        }
    }
}
