import ArgumentParser
import Foundation
import TesseraCore
import TesseraOIDC
import TesseraSAML
import TesseraSignIn
import TesseraStore

extension IdentityProviders {
    struct AddSAML: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-saml", abstract: "Trust the tenant's SAML 2.0 identity provider for admin sign-in (docs/sso-saml.md).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "The IdP's metadata: a file, or an https URL (refreshed every --refresh-interval seconds).") var metadata: String
        @Option(help: "Attribute preset: generic, entra, adfs, okta, google, shibboleth.") var preset: String = "generic"
        @Option(help: "What must be signed: assertion (default), response, or both.") var signed: String = "assertion"
        @Flag(help: "Accept RSA-SHA1 signatures and SHA-1 digests (refused by default).") var allowSha1 = false
        @Flag(help: "Accept unsolicited (IdP-initiated) responses; replay defences still hold.") var allowIdpInitiated = false
        @Flag(help: "The IdP's mail attribute is authoritative: mark e-mail addresses verified.") var trustEmail = false
        @Option(help: "GROUP=ROLE: a role for members of an upstream group (repeatable).") var groupRole: [String] = []
        @Option(help: "A path return_to must be under (repeatable; default: any local path).") var returnToPrefix: [String] = []
        @Option(help: "Seconds between refreshes of a URL source (at least 5, default 3600).") var refreshInterval: Int?
        @Option(help: "Where imported metadata files are kept (default ./metadata). Env: TESSERA_METADATA_DIR.") var metadataDir: String?

        func run() async throws {
            let tenantID = try TenantArgument.parse(tenant)
            guard let presetValue = SAMLProviderConfig.Preset(rawValue: preset) else {
                throw ValidationError("--preset must be one of \(SAMLProviderConfig.Preset.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let signedPart = SAMLProviderConfig.SignedPart(rawValue: signed) else {
                throw ValidationError("--signed must be assertion, response or both")
            }
            let roles = try GroupRoleArgument.parse(groupRole)
            for prefix in returnToPrefix where ReturnTo(prefix) == nil {
                throw ValidationError("--return-to-prefix must be a local path such as /admin")
            }
            if let refreshInterval, refreshInterval < SAMLMetadataSource.minimumRefreshInterval {
                throw ValidationError("--refresh-interval must be at least \(SAMLMetadataSource.minimumRefreshInterval) seconds")
            }

            let now = Date()
            let text: String
            let parsed: IdPMetadata
            let source: String
            let isURL = metadata.lowercased().hasPrefix("http://") || metadata.lowercased().hasPrefix("https://")
            if isURL {
                guard let url = SAMLMetadataSource.checkedURL(metadata) else {
                    throw ValidationError("--metadata URL must be https (http only on a loopback host)")
                }
                let transport = AsyncHTTPOIDCTransport()
                do {
                    (text, parsed) = try await SAMLMetadataSource.fetch(url, transport: transport, now: now)
                } catch {
                    await transport.shutdown()
                    throw ValidationError("\(error)")
                }
                await transport.shutdown()
                source = metadata
            } else {
                guard let data = FileManager.default.contents(atPath: metadata) else { throw ValidationError("cannot read \(metadata)") }
                guard data.count <= IdPMetadata.maximumSize else { throw ValidationError("\(metadata) is larger than 1 MiB") }
                do {
                    (text, parsed) = try SAMLMetadataSource.parse(Array(data), now: now)
                } catch {
                    throw ValidationError("\(error)")
                }
                source = ""
            }
            if !isURL, refreshInterval != nil { throw ValidationError("--refresh-interval applies to a URL source only") }

            let id = "saml_" + Secrets.base64URL(Secrets.randomBytes(12))
            // A file source is kept under the metadata folder, so the broker never depends on where
            // the operator's copy was.
            let directory = URL(
                fileURLWithPath: metadataDir ?? ProcessInfo.processInfo.environment["TESSERA_METADATA_DIR"] ?? "./metadata", isDirectory: true
            ).appendingPathComponent(tenant, isDirectory: true)
            let kept = directory.appendingPathComponent("\(id).xml")
            let config = SAMLProviderConfig(
                id: id, tenantID: tenantID, entityID: parsed.entityID, metadataSource: isURL ? source : kept.path,
                refreshInterval: isURL ? (refreshInterval ?? SAMLMetadataSource.defaultRefreshInterval) : nil, preset: presetValue,
                signedPart: signedPart, allowSHA1: allowSha1, allowIdPInitiated: allowIdpInitiated, trustEmail: trustEmail,
                groupRoles: roles, returnToPrefixes: returnToPrefix.isEmpty ? ["/"] : returnToPrefix, createdAt: now)
            if !isURL {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                guard FileManager.default.createFile(atPath: kept.path, contents: Data(text.utf8)) else {
                    throw ValidationError("cannot write \(kept.path)")
                }
            }
            let resolved = try ResolvedConfiguration.resolve(global)
            do {
                try await global.withStore { store in
                    try await store.samlProviders.add(
                        SAMLProviderRecord(config: config, metadata: text, metadataFetchedAt: now),
                        audit: AuditEvent(
                            ts: now, tenant: tenant, actor: Output.operatorActor, action: "idp.added", outcome: .success,
                            reason: "saml idp \(parsed.entityID) (\(id)), \(parsed.signingCertificates.count) signing certificate(s)"))
                }
            } catch {
                if !isURL { try? FileManager.default.removeItem(at: kept) }
                switch error {
                case StoreError.notFound: throw ValidationError("tenant \(tenant) does not exist")
                case StoreError.alreadyExists: throw ValidationError("tenant \(tenant) already has a SAML identity provider")
                default: throw error
                }
            }
            let sp = ServiceProviderEndpoints(issuer: resolved.settings.issuer, tenant: tenantID)
            Output.emit(
                json: global.json,
                object: [
                    "id": id, "tenant": tenant, "kind": "saml", "entity_id": parsed.entityID, "metadata_source": config.metadataSource,
                    "sp_entity_id": sp.entityID, "acs_url": sp.acsURL, "sp_metadata_url": sp.entityID,
                ],
                text: "trusted \(parsed.entityID) for \(tenant) as \(id)\nSP metadata: \(sp.entityID)\nACS: \(sp.acsURL)")
        }
    }
}
