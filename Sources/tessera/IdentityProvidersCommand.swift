import ArgumentParser
import Foundation
import TesseraCore
import TesseraHTTP
import TesseraOIDC
import TesseraJOSE
import TesseraStore

struct IdentityProviders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idps", abstract: "Identity providers and trusted token issuers of a tenant.",
        subcommands: [AddWorkload.self, AddOIDC.self, AddSAML.self, List.self])

    struct AddWorkload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Trust an external JWT issuer for workload identity federation (token exchange with subject_token_type jwt).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "The issuer, compared exactly with the token's iss.") var issuer: String
        @Option(
            help:
                "The issuer's public JWKS: a file (kept as is), or an https URL (fetched and refreshed). Default: the jwks_uri of the issuer's discovery document."
        ) var jwks: String?
        @Option(help: "The token's aud must contain this value.") var audience: String
        @Option(help: "Glob the token's sub must match (repeatable; '*' matches any run of characters).") var subject: [String] = []
        @Option(help: "NAME=GLOB: a claim that must be a string matching the glob (repeatable).") var claim: [String] = []
        @Option(help: "Space-separated scopes an identity from this issuer may hold at most.") var scopes: String

        func run() async throws {
            let tenantID = try TenantArgument.parse(tenant)
            guard let url = URLComponents(string: issuer), url.scheme == "https" || url.scheme == "http", url.host?.isEmpty == false,
                issuer.utf8.count <= 512
            else { throw ValidationError("--issuer must be an http(s) URL") }
            guard !audience.isEmpty, audience.utf8.count <= 512 else { throw ValidationError("--audience must not be empty") }
            let jwksText = try await Self.keySource(jwks, issuer: issuer)
            for pattern in subject where Glob(pattern) == nil { throw ValidationError("--subject pattern empty or too long") }
            var conditions: [String: String] = [:]
            for item in claim {
                let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2, !pair[0].isEmpty, Glob(pair[1]) != nil, conditions[pair[0]] == nil else {
                    throw ValidationError("--claim must be NAME=GLOB, each name once")
                }
                guard !["iss", "aud", "exp", "nbf", "iat", "sub"].contains(pair[0]) else {
                    throw ValidationError("--claim \(pair[0]) is checked already; use --issuer, --audience or --subject")
                }
                conditions[pair[0]] = pair[1]
            }
            let scopeSet: ScopeSet
            do { scopeSet = try ScopeSet(parsing: scopes) } catch { throw ValidationError(error.description) }
            let trust = WorkloadIssuer(
                id: "wl_" + Secrets.base64URL(Secrets.randomBytes(12)), tenantID: tenantID, issuer: issuer, jwks: jwksText,
                audience: audience, subjectPatterns: subject, claimConditions: conditions, scopes: scopeSet, createdAt: Date())
            let config = try ResolvedConfiguration.resolve(global)
            let store = try await config.openStore(logger: LogSetup.logger(label: "tessera", level: .warning))
            do {
                try await store.workloadIssuers.add(
                    trust,
                    audit: AuditEvent(
                        ts: Date(), tenant: tenant, actor: Output.operatorActor, action: "idp.added", outcome: .success,
                        reason: "workload issuer \(issuer) (\(trust.id))",
                        scopes: .init(requested: scopeSet.strings, granted: scopeSet.strings)))
            } catch StoreError.notFound {
                await store.close()
                throw ValidationError("tenant \(tenant) does not exist")
            } catch StoreError.alreadyExists {
                await store.close()
                throw ValidationError("tenant \(tenant) already trusts \(issuer)")
            }
            await store.close()
            Output.emit(
                json: global.json, object: ["id": trust.id, "tenant": tenant, "issuer": issuer, "kind": "workload"],
                text: "trusted \(issuer) for \(tenant) as \(trust.id)")
        }

        /// The stored key source: an inline JWKS from a file, or a remote `jwks_uri` (given, or
        /// found by OpenID discovery at the issuer), fetched once now to prove it serves keys.
        static func keySource(_ jwks: String?, issuer: String) async throws -> String {
            if let jwks, !(jwks.lowercased().hasPrefix("https://") || jwks.lowercased().hasPrefix("http://")) {
                guard let data = FileManager.default.contents(atPath: jwks), data.count <= 64 * 1024 else {
                    throw ValidationError("cannot read \(jwks) (at most 64 KiB)")
                }
                do {
                    let parsed = try JWKS(json: try StrictJSON.parse(Array(data)))
                    guard !parsed.keys.isEmpty else { throw ValidationError("the JWKS has no usable key") }
                    return String(decoding: StrictJSON.serialize(parsed.json), as: UTF8.self)
                } catch let error as JOSEError {
                    throw ValidationError("the JWKS is not acceptable: \(error)")
                }
            }
            let transport = AsyncHTTPOIDCTransport()
            do {
                let source = try await remoteKeySource(jwks, issuer: issuer, transport: transport)
                await transport.shutdown()
                return source
            } catch {
                await transport.shutdown()
                throw error
            }
        }

        static func remoteKeySource(_ jwks: String?, issuer: String, transport: AsyncHTTPOIDCTransport) async throws -> String {
            let url: URL
            if let jwks {
                guard let given = URL(string: jwks), DiscoveryDocument.isAcceptable(given) else {
                    throw ValidationError("--jwks URL must be https (http only on a loopback host)")
                }
                url = given
            } else {
                guard let discovery = URL(string: issuer.hasSuffix("/") ? issuer + ".well-known/openid-configuration" : issuer + "/.well-known/openid-configuration"),
                    DiscoveryDocument.isAcceptable(discovery)
                else { throw ValidationError("without --jwks, the issuer must be https (http only on loopback) to discover its keys") }
                let response: UpstreamResponse
                do {
                    response = try await transport.get(discovery, accept: "application/json", headers: [])
                } catch {
                    throw ValidationError("discovery at the issuer failed: \(error)")
                }
                guard response.status == 200, let document = try? StrictJSON.parse(response.body),
                    document["issuer"]?.stringValue == issuer, let text = document["jwks_uri"]?.stringValue, let found = URL(string: text),
                    DiscoveryDocument.isAcceptable(found)
                else { throw ValidationError("the issuer's discovery document is unusable (HTTP \(response.status); issuer must match, jwks_uri https)") }
                url = found
            }
            do {
                let body = try await UpstreamJWKSFetcher(transport: transport).fetch(url)
                let parsed = try JWKS(json: try StrictJSON.parse(body))
                guard !parsed.keys.isEmpty else { throw ValidationError("the JWKS at \(url.absoluteString) has no usable key") }
            } catch let error as ValidationError {
                throw error
            } catch {
                throw ValidationError("the JWKS at \(url.absoluteString) cannot be used: \(error)")
            }
            return WorkloadIssuer.remoteJWKS(url)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's identity providers and trusted issuers.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant id.") var tenant: String

        func run() async throws {
            let tenantID = try TenantArgument.parse(tenant)
            let (issuers, oidc, saml) = try await global.withStore { store in
                (
                    try await store.workloadIssuers.list(tenant: tenantID),
                    try await store.oidcProviders.get(tenant: tenantID),
                    try await store.samlProviders.get(tenant: tenantID)
                )
            }
            var rows: [[String: Any]] = []
            var lines: [String] = []
            if let oidc {
                rows.append([
                    "id": oidc.id, "kind": "oidc", "tenant": oidc.tenantID.rawValue, "issuer": oidc.issuer, "client_id": oidc.clientID,
                    "client_auth": oidc.clientAuth.rawValue, "preset": oidc.preset.rawValue, "scopes": oidc.scopes.joined(separator: " "),
                    "userinfo": oidc.useUserinfo, "group_roles": oidc.groupRoles, "created_at": Timestamps.format(oidc.createdAt),
                ])
                lines.append("\(oidc.id)\toidc\t\(oidc.issuer)\t\(oidc.clientID)\t\(oidc.preset.rawValue)")
            }
            if let saml {
                let config = saml.config
                rows.append([
                    "id": config.id, "kind": "saml", "tenant": config.tenantID.rawValue, "entity_id": config.entityID,
                    "metadata_source": config.metadataSource, "metadata_fetched_at": Timestamps.format(saml.metadataFetchedAt),
                    "preset": config.preset.rawValue, "signed": config.signedPart.rawValue, "allow_sha1": config.allowSHA1,
                    "allow_idp_initiated": config.allowIdPInitiated, "trust_email": config.trustEmail, "group_roles": config.groupRoles,
                    "return_to_prefixes": config.returnToPrefixes, "created_at": Timestamps.format(config.createdAt),
                ])
                lines.append("\(config.id)\tsaml\t\(config.entityID)\t\(config.preset.rawValue)\t\(config.signedPart.rawValue)")
            }
            for trust in issuers {
                let keys: String
                switch trust.keySource {
                case .inline: keys = "inline"
                case .remote(let url): keys = url.absoluteString
                }
                rows.append([
                    "jwks": keys,
                    "id": trust.id, "kind": "workload", "tenant": trust.tenantID.rawValue, "issuer": trust.issuer,
                    "audience": trust.audience, "subjects": trust.subjectPatterns, "claims": trust.claimConditions,
                    "scope": trust.scopes.description, "created_at": Timestamps.format(trust.createdAt),
                ])
                lines.append("\(trust.id)\tworkload\t\(trust.issuer)\t\(trust.audience)\t\(trust.scopes)")
            }
            Output.emit(json: global.json, object: rows, text: lines.joined(separator: "\n"))
        }
    }
}
