import ArgumentParser
import Foundation
import TesseraCore
import TesseraOIDC
import TesseraStore

extension IdentityProviders {
    struct AddOIDC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-oidc", abstract: "Register the tenant's OpenID Provider for browser sign-in (docs/sso-oidc.md).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "The provider's issuer; its discovery document must name exactly this issuer.") var issuer: String
        @Option(help: "The client id the provider gave the broker.") var clientId: String
        @Option(help: "A file holding the client secret (preferred: a secret on the command line shows in ps).") var clientSecretFile:
            String?
        @Option(help: "The client secret itself (DESIGN.md's form; prefer --client-secret-file).") var clientSecret: String?
        @Flag(help: "Authenticate with a key the broker generates (its JWKS is served at /sso/TENANT/oidc/jwks).")
        var privateKeyJwt = false
        @Option(help: "With a secret: client_secret_basic (default) or client_secret_post.") var auth: String?
        @Option(help: "Claims preset: generic, entra, okta, google, keycloak.") var preset: String = "generic"
        @Option(help: "Google Workspace: the required hd claim and e-mail domain.") var hostedDomain: String?
        @Option(help: "Scopes to ask for; must contain openid.") var scopes: String = "openid email profile"
        @Flag(help: "Also read the userinfo endpoint; its sub must equal the ID token's.") var userinfo = false
        @Option(help: "GROUP=ROLE: a role for members of an upstream group (repeatable).") var groupRole: [String] = []

        func run() async throws {
            let tenantID = try TenantArgument.parse(tenant)
            guard let presetValue = OIDCProviderConfig.Preset(rawValue: preset) else {
                throw ValidationError(
                    "--preset must be one of \(OIDCProviderConfig.Preset.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard !clientId.isEmpty, clientId.utf8.count <= 256 else { throw ValidationError("--client-id must not be empty") }
            let scopeList = scopes.split(separator: " ").map(String.init)
            guard scopeList.contains("openid"), scopeList.count <= 32 else { throw ValidationError("--scopes must contain openid") }
            let roles = try GroupRoleArgument.parse(groupRole)
            let clientAuth: OIDCProviderConfig.ClientAuth
            var secret: String?
            if clientSecret != nil {
                guard clientSecretFile == nil else { throw ValidationError("give --client-secret or --client-secret-file, not both") }
                FileHandle.standardError.write(
                    Data(
                        "warning: a secret on the command line is visible to other users (ps, shell history); prefer --client-secret-file\n"
                            .utf8))
            }
            switch (clientSecretFile ?? clientSecret.map { _ in "-" }, privateKeyJwt) {
            case (nil, true):
                guard auth == nil || auth == "private_key_jwt" else { throw ValidationError("--auth does not apply to --private-key-jwt") }
                clientAuth = .privateKeyJWT
            case (let file?, false):
                if let clientSecret {
                    guard !clientSecret.isEmpty, clientSecret.utf8.count <= 4096 else { throw ValidationError("--client-secret is empty") }
                    secret = clientSecret
                } else {
                    guard let data = FileManager.default.contents(atPath: file), data.count <= 4096,
                        let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty
                    else { throw ValidationError("cannot read a client secret from \(file)") }
                    secret = text
                }
                switch auth ?? "client_secret_basic" {
                case "client_secret_basic": clientAuth = .clientSecretBasic
                case "client_secret_post": clientAuth = .clientSecretPost
                default: throw ValidationError("--auth must be client_secret_basic or client_secret_post with a secret")
                }
            default:
                throw ValidationError("give exactly one of --client-secret-file FILE (or --client-secret S) and --private-key-jwt")
            }

            // The provider must be reachable and its discovery must name exactly this issuer.
            let transport = AsyncHTTPOIDCTransport()
            let discovery: DiscoveryDocument
            do {
                discovery = try await UpstreamProvider.fetchDiscovery(issuer: issuer, transport: transport)
            } catch {
                await transport.shutdown()
                throw ValidationError("discovery failed: \(error)")
            }
            await transport.shutdown()

            let config = try ResolvedConfiguration.resolve(global)
            let provider = OIDCProviderConfig(
                id: "oidc_" + Secrets.base64URL(Secrets.randomBytes(12)), tenantID: tenantID, issuer: issuer, clientID: clientId,
                clientAuth: clientAuth, preset: presetValue, scopes: scopeList, hostedDomain: hostedDomain?.lowercased(),
                useUserinfo: userinfo, groupRoles: roles, createdAt: Date())
            let keys = config.keyDirectory
            if let secret {
                try keys.storeClientSecret(secret, providerID: provider.id)
            } else {
                _ = try keys.clientKey(providerID: provider.id, create: true)
            }
            do {
                try await global.withStore { store in
                    try await store.oidcProviders.add(
                        provider,
                        audit: AuditEvent(
                            ts: Date(), tenant: tenant, actor: Output.operatorActor, action: "idp.added", outcome: .success,
                            reason: "oidc provider \(issuer) (\(provider.id)) with \(clientAuth.rawValue)"))
                }
            } catch {
                try? FileManager.default.removeItem(at: keys.root.appendingPathComponent("oidc/\(provider.id).secret"))
                try? FileManager.default.removeItem(at: keys.root.appendingPathComponent("oidc/\(provider.id).key.json"))
                switch error {
                case StoreError.notFound: throw ValidationError("tenant \(tenant) does not exist")
                case StoreError.alreadyExists: throw ValidationError("tenant \(tenant) already has an OpenID provider")
                default: throw error
                }
            }
            let base = config.settings.issuer + "/sso/\(tenant)/oidc"
            var object: [String: Any] = [
                "id": provider.id, "tenant": tenant, "issuer": issuer, "kind": "oidc", "redirect_uri": base + "/callback",
                "authorization_endpoint": discovery.authorizationEndpoint.absoluteString,
            ]
            if clientAuth == .privateKeyJWT { object["jwks_uri"] = base + "/jwks" }
            Output.emit(
                json: global.json, object: object,
                text: "registered \(issuer) for \(tenant) as \(provider.id)\nredirect_uri: \(base)/callback"
                    + (clientAuth == .privateKeyJWT ? "\njwks_uri: \(base)/jwks" : ""))
        }
    }
}

/// `--group-role GROUP=ROLE` (repeatable), shared by every sign-in provider.
enum GroupRoleArgument {
    static func parse(_ items: [String]) throws -> [String: String] {
        var roles: [String: String] = [:]
        for item in items {
            let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, !pair[0].isEmpty, !pair[1].isEmpty, roles[pair[0]] == nil else {
                throw ValidationError("--group-role must be GROUP=ROLE, each group once")
            }
            roles[pair[0]] = pair[1]
        }
        return roles
    }
}
