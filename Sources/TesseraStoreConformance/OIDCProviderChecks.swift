import Foundation
import TesseraCore
import TesseraStore

extension StoreConformance {
    /// Every field of a provider reads back as added, with every optional set and with none.
    public func oidcProviderAddGetRoundTrips() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let full = Fixtures.oidcProvider("idp-entra", tenant: Fixtures.acme, createdAt: Fixtures.at(10))
            let plain = OIDCProviderConfig(
                id: "idp-google", tenantID: Fixtures.globex, issuer: "https://accounts.google.com",
                clientID: "1234.apps.googleusercontent.com",
                clientAuth: .clientSecretPost, preset: .google, scopes: ["openid"], hostedDomain: nil, useUserinfo: false, groupRoles: [:],
                createdAt: Fixtures.at(20))
            for provider in [full, plain] {
                let event = Fixtures.event("idp.added", tenant: provider.tenantID, at: provider.createdAt)
                try await probe.expectAudited(event, "add \(provider.id)") {
                    try await probe.store.oidcProviders.add(provider, audit: event)
                }
                try probe.expectEqual(try await probe.store.oidcProviders.get(tenant: provider.tenantID), provider, "get \(provider.id)")
            }
        }
    }

    /// A tenant has at most one provider, and a provider id is unique across tenants: either
    /// duplicate is `alreadyExists`, audits nothing and leaves the first provider as it was.
    public func oidcProviderSecondForTenantIsAlreadyExists() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let first = Fixtures.oidcProvider("idp-1", tenant: Fixtures.acme)
            try await probe.store.oidcProviders.add(first, audit: Fixtures.event("idp.added", tenant: Fixtures.acme))
            let duplicates = [
                ("a second provider for the tenant", Fixtures.oidcProvider("idp-2", tenant: Fixtures.acme, createdAt: Fixtures.at(5))),
                ("a taken id for another tenant", Fixtures.oidcProvider("idp-1", tenant: Fixtures.globex, createdAt: Fixtures.at(5))),
            ]
            for (what, duplicate) in duplicates {
                try await probe.expectNotAudited(what) {
                    try await probe.expectError(.alreadyExists, "add \(what)") {
                        try await probe.store.oidcProviders.add(duplicate, audit: Fixtures.event("idp.added", tenant: duplicate.tenantID))
                    }
                }
            }
            try probe.expectEqual(try await probe.store.oidcProviders.get(tenant: Fixtures.acme), first, "acme's provider")
            try probe.expectEqual(try await probe.store.oidcProviders.get(tenant: Fixtures.globex), nil, "globex's provider")
        }
    }

    /// A provider for a tenant that does not exist is `notFound` and audits nothing.
    public func oidcProviderOfUnknownTenantIsNotFound() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.expectNotAudited("provider of an unknown tenant") {
                try await probe.expectError(.notFound, "add a provider for an unknown tenant") {
                    try await probe.store.oidcProviders.add(
                        Fixtures.oidcProvider("idp-1", tenant: Fixtures.globex), audit: Fixtures.event("idp.added", tenant: Fixtures.globex)
                    )
                }
            }
            try probe.expectEqual(try await probe.store.oidcProviders.get(tenant: Fixtures.globex), nil, "the unknown tenant's provider")
        }
    }

    /// `get` never answers with another tenant's provider.
    public func oidcProviderGetIsTenantScoped() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            try await probe.store.oidcProviders.add(
                Fixtures.oidcProvider("idp-1", tenant: Fixtures.acme), audit: Fixtures.event("idp.added", tenant: Fixtures.acme))
            try probe.expectEqual(try await probe.store.oidcProviders.get(tenant: Fixtures.globex), nil, "acme's provider as globex")
            try probe.expectEqual(
                try await probe.store.oidcProviders.get(tenant: Fixtures.tenantID("initech")), nil, "an unknown tenant's provider")
        }
    }
}
