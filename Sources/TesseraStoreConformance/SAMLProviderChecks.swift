import Foundation
import TesseraCore
import TesseraStore

extension Fixtures {
    /// Entra ID's entityID has the directory in it; two tenants of the broker may both trust it.
    static let entraEntityID = "https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/"

    /// An IdP metadata document; its text is opaque to the store. `padding` characters of `pad`
    /// are added inside a comment, to reach a given size.
    static func samlMetadata(entityID: String, label: String = "", padding: Int = 0, pad: Character = "x") -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="\(entityID)">\
        <!--\(label)\(String(repeating: pad, count: padding))-->\
        <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\
        <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" \
        Location="https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/saml2"/>\
        </md:IDPSSODescriptor></md:EntityDescriptor>
        """
    }

    /// A provider with every optional field set and every switch away from its default.
    static func samlProvider(
        _ id: String, tenant: TenantID, entityID: String = entraEntityID, createdAt: Date = epoch, fetchedAt: Date? = nil
    ) -> SAMLProviderRecord {
        let config = SAMLProviderConfig(
            id: id, tenantID: tenant, entityID: entityID,
            metadataSource:
                "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/federationmetadata/2007-06/federationmetadata.xml?appid=\(id)",
            refreshInterval: 3600, preset: .entra, signedPart: .both, allowSHA1: true, allowIdPInitiated: true, trustEmail: true,
            groupRoles: ["crm-admins": "crm.admin", "erp-readers": "erp.viewer", "Everyone": "member"],
            returnToPrefixes: ["/app/", "/admin/"], createdAt: createdAt)
        return SAMLProviderRecord(
            config: config, metadata: samlMetadata(entityID: entityID, label: "\(id) of \(tenant)"),
            metadataFetchedAt: fetchedAt ?? createdAt)
    }
}

extension StoreConformance {
    /// Every field of a provider reads back as added: settings, metadata text (non-ASCII
    /// included) and fetch date, with every optional set and with none.
    public func samlProviderAddGetRoundTrips() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let full = Fixtures.samlProvider("saml-entra", tenant: Fixtures.acme, createdAt: Fixtures.at(10), fetchedAt: Fixtures.at(7))
            let plain = SAMLProviderRecord(
                config: SAMLProviderConfig(
                    id: "saml-shib", tenantID: Fixtures.globex, entityID: "https://idp.uni-example.de/idp/shibboleth",
                    metadataSource: "metadata/globex-shibboleth.xml", refreshInterval: nil, preset: .generic, signedPart: .assertion,
                    allowSHA1: false, allowIdPInitiated: false, trustEmail: false, groupRoles: [:], returnToPrefixes: ["/"],
                    createdAt: Fixtures.at(20)),
                metadata: Fixtures.samlMetadata(entityID: "https://idp.uni-example.de/idp/shibboleth", label: "Universität Ødegård — 名前"),
                metadataFetchedAt: Fixtures.at(20))
            for record in [full, plain] {
                try await probe.store.samlProviders.add(
                    record, audit: Fixtures.event("idp.added", tenant: record.config.tenantID, at: record.config.createdAt))
                try probe.expectEqual(
                    try await probe.store.samlProviders.get(tenant: record.config.tenantID), record, "get \(record.config.id)")
            }
        }
    }

    /// `add` appends exactly the audit event passed in, onto an intact chain.
    public func samlProviderAddAppendsItsAuditEvent() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let record = Fixtures.samlProvider("saml-1", tenant: Fixtures.acme)
            let event = Fixtures.event("idp.added", tenant: Fixtures.acme, at: Fixtures.at(3))
            try await probe.expectAudited(event, "add a SAML provider") {
                try await probe.store.samlProviders.add(record, audit: event)
            }
            try await probe.expectChainIntact(count: 2, "the audit chain after tenant and provider")
        }
    }

    /// A tenant has at most one SAML provider, and a provider id is unique across tenants: either
    /// duplicate is `alreadyExists`, audits nothing and leaves the first provider as it was.
    public func samlProviderSecondForTenantIsAlreadyExists() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let first = Fixtures.samlProvider("saml-1", tenant: Fixtures.acme)
            try await probe.store.samlProviders.add(first, audit: Fixtures.event("idp.added", tenant: Fixtures.acme))
            let duplicates = [
                (
                    "a second provider for the tenant, of another IdP",
                    Fixtures.samlProvider("saml-2", tenant: Fixtures.acme, entityID: "http://adfs.acme.example/adfs/services/trust")
                ),
                ("a second provider for the tenant, of the same IdP", Fixtures.samlProvider("saml-3", tenant: Fixtures.acme)),
                ("a taken id for another tenant", Fixtures.samlProvider("saml-1", tenant: Fixtures.globex, createdAt: Fixtures.at(5))),
            ]
            for (what, duplicate) in duplicates {
                try await probe.expectNotAudited(what) {
                    try await probe.expectError(.alreadyExists, "add \(what)") {
                        try await probe.store.samlProviders.add(
                            duplicate, audit: Fixtures.event("idp.added", tenant: duplicate.config.tenantID))
                    }
                }
            }
            try probe.expectEqual(try await probe.store.samlProviders.get(tenant: Fixtures.acme), first, "acme's provider")
            try probe.expectEqual(try await probe.store.samlProviders.get(tenant: Fixtures.globex), nil, "globex's provider")
            try probe.expectEqual(try await probe.store.samlProviders.list(), [first], "every provider")
        }
    }

    /// A provider for a tenant that does not exist is `notFound` and writes nothing.
    public func samlProviderOfUnknownTenantIsNotFound() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.expectNotAudited("SAML provider of an unknown tenant") {
                try await probe.expectError(.notFound, "add a SAML provider for an unknown tenant") {
                    try await probe.store.samlProviders.add(
                        Fixtures.samlProvider("saml-1", tenant: Fixtures.globex),
                        audit: Fixtures.event("idp.added", tenant: Fixtures.globex))
                }
            }
            try probe.expectEqual(try await probe.store.samlProviders.get(tenant: Fixtures.globex), nil, "the unknown tenant's provider")
            try probe.expectEqual(try await probe.store.samlProviders.list(), [], "every provider")
        }
    }

    /// Two tenants may trust the same IdP entityID (each is its own SP); each reads back its own
    /// provider, with its own settings and metadata.
    public func samlProviderSameEntityIDInTwoTenantsIsAllowed() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let acme = Fixtures.samlProvider("saml-acme", tenant: Fixtures.acme, createdAt: Fixtures.at(1))
            let globex = SAMLProviderRecord(
                config: SAMLProviderConfig(
                    id: "saml-globex", tenantID: Fixtures.globex, entityID: Fixtures.entraEntityID,
                    metadataSource: "metadata/globex-entra.xml",
                    refreshInterval: nil, preset: .generic, signedPart: .response, allowSHA1: false, allowIdPInitiated: false,
                    trustEmail: false, groupRoles: ["globex-staff": "member"], returnToPrefixes: ["/"], createdAt: Fixtures.at(2)),
                metadata: Fixtures.samlMetadata(entityID: Fixtures.entraEntityID, label: "globex's copy"), metadataFetchedAt: Fixtures.at(2)
            )
            for record in [acme, globex] {
                let event = Fixtures.event("idp.added", tenant: record.config.tenantID, at: record.config.createdAt)
                try await probe.expectAudited(event, "add \(record.config.id)") {
                    try await probe.store.samlProviders.add(record, audit: event)
                }
            }
            try probe.expectEqual(try await probe.store.samlProviders.get(tenant: Fixtures.acme), acme, "acme's provider")
            try probe.expectEqual(try await probe.store.samlProviders.get(tenant: Fixtures.globex), globex, "globex's provider")
        }
    }

    /// `get` never answers with another tenant's provider.
    public func samlProviderGetIsTenantScoped() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            try await probe.store.samlProviders.add(
                Fixtures.samlProvider("saml-1", tenant: Fixtures.acme), audit: Fixtures.event("idp.added", tenant: Fixtures.acme))
            try probe.expectEqual(try await probe.store.samlProviders.get(tenant: Fixtures.globex), nil, "acme's provider as globex")
            try probe.expectEqual(
                try await probe.store.samlProviders.get(tenant: Fixtures.tenantID("initech")), nil, "an unknown tenant's provider")
        }
    }

    /// `list` returns every tenant's provider, oldest first (by creation date, not by id, tenant or
    /// insertion); providers created at the same millisecond in the order they were added.
    public func samlProviderListIsInCreationOrder() async throws {
        try await run { probe in
            try probe.expectEqual(try await probe.store.samlProviders.list(), [], "the providers of an empty store")
            let tenants = ["acme", "globex", "initech", "umbrella"].map(Fixtures.tenantID)
            for tenant in tenants { try await probe.createTenant(tenant) }
            let globex = Fixtures.samlProvider("saml-a", tenant: tenants[1], createdAt: Fixtures.at(30))
            let initech = Fixtures.samlProvider("saml-b", tenant: tenants[2], createdAt: Fixtures.at(10))
            let umbrella = Fixtures.samlProvider("saml-c", tenant: tenants[3], createdAt: Fixtures.at(20))
            let acme = Fixtures.samlProvider("saml-d", tenant: tenants[0], createdAt: Fixtures.at(20))
            for record in [globex, initech, umbrella, acme] {
                try await probe.store.samlProviders.add(record, audit: Fixtures.event("idp.added", tenant: record.config.tenantID))
            }
            try probe.expectEqual(try await probe.store.samlProviders.list(), [initech, umbrella, acme, globex], "every provider")
        }
    }

    /// `replaceMetadata` changes the metadata, the entityID and the fetch date of that provider and
    /// nothing else, appending its audit event; other providers are untouched. Replacing with the
    /// same entityID keeps it.
    public func samlProviderReplaceMetadataChangesOnlyMetadataEntityIDAndFetchedAt() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let acme = Fixtures.samlProvider("saml-acme", tenant: Fixtures.acme, createdAt: Fixtures.at(1))
            let globex = Fixtures.samlProvider("saml-globex", tenant: Fixtures.globex, createdAt: Fixtures.at(2))
            for record in [acme, globex] {
                try await probe.store.samlProviders.add(record, audit: Fixtures.event("idp.added", tenant: record.config.tenantID))
            }
            let renamed = "https://sts.windows.net/0b3f9c00-7e1a-4d2b-9c5f-2a6e8d1f4b7a/"
            let steps: [(entityID: String, label: String, fetchedAt: Date)] = [
                (renamed, "after the move", Fixtures.at(3600)),
                (renamed, "rolled signing key", Fixtures.at(7200)),
            ]
            var expected = acme
            for (number, step) in steps.enumerated() {
                let metadata = Fixtures.samlMetadata(entityID: step.entityID, label: step.label)
                let event = Fixtures.event("idp.metadata_refreshed", tenant: Fixtures.acme, at: step.fetchedAt)
                try await probe.expectAudited(event, "replace the metadata (\(number + 1))") {
                    try await probe.store.samlProviders.replaceMetadata(
                        id: acme.config.id, entityID: step.entityID, metadata: metadata, fetchedAt: step.fetchedAt, audit: event)
                }
                expected = SAMLProviderRecord(
                    config: acme.config.with(entityID: step.entityID), metadata: metadata, metadataFetchedAt: step.fetchedAt)
                try probe.expectEqual(
                    try await probe.store.samlProviders.get(tenant: Fixtures.acme), expected, "acme's provider after replace \(number + 1)")
            }
            try probe.expectEqual(try await probe.store.samlProviders.get(tenant: Fixtures.globex), globex, "globex's provider")
            try probe.expectEqual(try await probe.store.samlProviders.list(), [expected, globex], "every provider")
            try await probe.expectChainIntact(count: 6, "the audit chain")
        }
    }

    /// Replacing the metadata of an unknown provider is `notFound` and writes nothing, not even
    /// its audit event.
    public func samlProviderReplaceMetadataOfUnknownIDIsNotFound() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            let record = Fixtures.samlProvider("saml-1", tenant: Fixtures.acme)
            try await probe.store.samlProviders.add(record, audit: Fixtures.event("idp.added", tenant: Fixtures.acme))
            // An unknown id, and the tenant's name where the provider's id belongs.
            for id in ["saml-2", Fixtures.acme.rawValue] {
                try await probe.expectNotAudited("replace the metadata of \(id)") {
                    try await probe.expectError(.notFound, "replace the metadata of \(id)") {
                        try await probe.store.samlProviders.replaceMetadata(
                            id: id, entityID: "https://idp.evil.example/",
                            metadata: Fixtures.samlMetadata(entityID: "https://idp.evil.example/"),
                            fetchedAt: Fixtures.at(60), audit: Fixtures.event("idp.metadata_refreshed", tenant: Fixtures.acme))
                    }
                }
            }
            try probe.expectEqual(try await probe.store.samlProviders.get(tenant: Fixtures.acme), record, "the provider")
            try probe.expectEqual(try await probe.store.samlProviders.list(), [record], "every provider")
        }
    }

    /// Metadata over `SAMLMetadataLimit.maximumBytes` bytes of UTF-8 (not characters) is a
    /// `conflict` for `add` and for `replaceMetadata`, and writes nothing; exactly the limit is
    /// stored.
    public func samlProviderOversizeMetadataIsRefused() async throws {
        try await run { probe in
            try await probe.createTenant(Fixtures.acme)
            try await probe.createTenant(Fixtures.globex)
            let limit = SAMLMetadataLimit.maximumBytes
            // Two bytes per U+00E9: counted in characters, these would be about half the limit.
            func metadata(bytes: Int, label: String) -> String {
                let base = Fixtures.samlMetadata(entityID: Fixtures.entraEntityID, label: label).utf8.count
                let text = Fixtures.samlMetadata(
                    entityID: Fixtures.entraEntityID, label: label + String(repeating: "x", count: (bytes - base) % 2),
                    padding: (bytes - base) / 2, pad: "\u{E9}")
                precondition(text.utf8.count == bytes, "fixture metadata of \(bytes) bytes has \(text.utf8.count)")
                return text
            }
            let oversize = metadata(bytes: limit + 1, label: "too big")
            let record = Fixtures.samlProvider("saml-1", tenant: Fixtures.acme)
            let tooBig = SAMLProviderRecord(config: record.config, metadata: oversize, metadataFetchedAt: record.metadataFetchedAt)
            try await probe.expectNotAudited("add oversize metadata") {
                try await probe.expectError(.conflict("oversize"), "add oversize metadata") {
                    try await probe.store.samlProviders.add(tooBig, audit: Fixtures.event("idp.added", tenant: Fixtures.acme))
                }
            }
            // `expect`, not `expectEqual`, where a record may hold a megabyte: a failure should not print it.
            try probe.expect(try await probe.store.samlProviders.get(tenant: Fixtures.acme) == nil, "the refused provider was stored")

            try await probe.store.samlProviders.add(record, audit: Fixtures.event("idp.added", tenant: Fixtures.acme))
            try await probe.expectNotAudited("replace with oversize metadata") {
                try await probe.expectError(.conflict("oversize"), "replace with oversize metadata") {
                    try await probe.store.samlProviders.replaceMetadata(
                        id: record.config.id, entityID: "https://idp.renamed.example/", metadata: oversize, fetchedAt: Fixtures.at(60),
                        audit: Fixtures.event("idp.metadata_refreshed", tenant: Fixtures.acme))
                }
            }
            try probe.expect(
                try await probe.store.samlProviders.get(tenant: Fixtures.acme) == record,
                "the provider changed although the replace was refused")

            let atLimit = metadata(bytes: limit, label: "just fits")
            let fits = SAMLProviderRecord(
                config: Fixtures.samlProvider("saml-2", tenant: Fixtures.globex).config, metadata: atLimit,
                metadataFetchedAt: Fixtures.epoch)
            try await probe.store.samlProviders.add(fits, audit: Fixtures.event("idp.added", tenant: Fixtures.globex))
            try probe.expect(
                try await probe.store.samlProviders.get(tenant: Fixtures.globex) == fits,
                "metadata of exactly the limit: not read back as added")
            try await probe.store.samlProviders.replaceMetadata(
                id: record.config.id, entityID: record.config.entityID, metadata: atLimit, fetchedAt: Fixtures.at(60),
                audit: Fixtures.event("idp.metadata_refreshed", tenant: Fixtures.acme))
            try probe.expect(
                try await probe.store.samlProviders.get(tenant: Fixtures.acme)
                    == SAMLProviderRecord(config: record.config, metadata: atLimit, metadataFetchedAt: Fixtures.at(60)),
                "replaced with metadata of exactly the limit: not read back as replaced")
        }
    }
}
