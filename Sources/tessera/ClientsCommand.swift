import ArgumentParser
import Foundation
import TesseraCore
import TesseraJOSE
import TesseraStore

struct Clients: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage OAuth clients.", subcommands: [Add.self, List.self, Disable.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a client. The secret, when there is one, is shown once and stored only as a hash.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "Display name.") var name: String
        @Option(help: "Space-separated scopes the client may receive, e.g. \"crm:contacts.read crm:contacts.write:ids=1,2\".") var scopes:
            String
        @Option(help: "client_secret_basic (default), client_secret_post or private_key_jwt.") var auth: String = "client_secret_basic"
        @Option(help: "The client's public JWKS file, for private_key_jwt.") var jwks: String?
        @Option(help: "Comma-separated grant types (default client_credentials).") var grants: String = GrantType.clientCredentials.rawValue
        @Option(help: "DPoP: optional (default) or required.") var dpop: String = "optional"
        @Flag(help: "Allow the client to call the introspection endpoint.") var introspect = false

        func run() async throws {
            guard let tenantID = TenantID(tenant) else { throw ValidationError("invalid tenant id") }
            guard let method = ClientAuthMethod(rawValue: auth) else {
                throw ValidationError("--auth must be one of \(ClientAuthMethod.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let dpopRequirement = DPoPRequirement(rawValue: dpop) else {
                throw ValidationError("--dpop must be optional or required")
            }
            let scopeSet: ScopeSet
            do { scopeSet = try ScopeSet(parsing: scopes) } catch { throw ValidationError(error.description) }
            if let wildcard = scopeSet.scopes.first(where: \.hasWildcard) {
                throw ValidationError("scope \(wildcard) has a wildcard value; wildcards need a policy that names them")
            }
            var grantTypes: Set<GrantType> = []
            for name in grants.split(separator: ",") {
                guard let grant = GrantType(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("unknown grant type \(name)")
                }
                grantTypes.insert(grant)
            }
            var jwksText: String?
            if method == .privateKeyJWT {
                guard let jwks, let data = FileManager.default.contents(atPath: jwks) else {
                    throw ValidationError("private_key_jwt needs --jwks FILE with the client's public keys")
                }
                do {
                    let parsed = try JWKS(json: try StrictJSON.parse(Array(data)))
                    guard !parsed.keys.isEmpty else { throw ValidationError("the JWKS has no usable key") }
                    jwksText = String(decoding: StrictJSON.serialize(parsed.json), as: UTF8.self)
                } catch let error as JOSEError {
                    throw ValidationError("the JWKS is not acceptable: \(error)")
                }
            } else if jwks != nil {
                throw ValidationError("--jwks is only for --auth private_key_jwt")
            }
            let secret = method == .privateKeyJWT ? nil : Secrets.randomToken(prefix: "tsec_")
            let clientID = "tcl_" + Secrets.base64URL(Secrets.randomBytes(16))
            let client = OAuthClient(
                clientID: clientID, tenantID: tenantID, name: name, authMethod: method, secretHash: secret.map(Secrets.sha256),
                jwks: jwksText, scopes: scopeSet, grantTypes: grantTypes, dpop: dpopRequirement, mayIntrospect: introspect,
                createdAt: Date())
            let config = try ResolvedConfiguration.resolve(global)
            let store = try await config.openStore(logger: LogSetup.logger(label: "tessera", level: .warning))
            do {
                try await store.clients.create(
                    client,
                    audit: AuditEvent(
                        ts: Date(), tenant: tenant, actor: Output.operatorActor, clientID: clientID, action: "client.created",
                        outcome: .success,
                        reason: "auth=\(method.rawValue) grants=\(grantTypes.map(\.rawValue).sorted().joined(separator: ","))",
                        scopes: .init(requested: scopeSet.strings, granted: scopeSet.strings)))
            } catch StoreError.notFound {
                await store.close()
                throw ValidationError("tenant \(tenant) does not exist")
            }
            await store.close()
            var object: [String: Any] = ["client_id": clientID, "tenant": tenant, "token_endpoint_auth_method": method.rawValue]
            var text = "client_id: \(clientID)"
            if let secret {
                object["client_secret"] = secret
                text += "\nclient_secret: \(secret)\n(shown once; store it now)"
            }
            Output.emit(json: global.json, object: object, text: text)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List clients (never their secrets).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this tenant's clients.") var tenant: String?

        func run() async throws {
            let tenantID = try tenant.map(TenantArgument.parse)
            let clients = try await global.withStore { try await $0.clients.list(tenant: tenantID) }
            Output.emit(
                json: global.json,
                object: clients.map { client -> [String: Any] in
                    [
                        "client_id": client.clientID, "tenant": client.tenantID.rawValue, "name": client.name,
                        "token_endpoint_auth_method": client.authMethod.rawValue, "scope": client.scopes.description,
                        "grant_types": client.grantTypes.map(\.rawValue).sorted(), "dpop": client.dpop.rawValue,
                        "introspect": client.mayIntrospect, "disabled": client.isDisabled,
                    ]
                },
                text: clients.map { "\($0.clientID)\t\($0.tenantID)\t\($0.name)\t\($0.isDisabled ? "disabled" : "enabled")\t\($0.scopes)" }
                    .joined(separator: "\n"))
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a client: it gets no new token and its live tokens turn inactive.")
        @OptionGroup var global: GlobalOptions
        @Argument var clientID: String

        func run() async throws {
            let config = try ResolvedConfiguration.resolve(global)
            let store = try await config.openStore(logger: LogSetup.logger(label: "tessera", level: .warning))
            guard let client = try await store.clients.get(clientID: clientID) else {
                await store.close()
                throw ValidationError("no client \(clientID)")
            }
            try await store.clients.disable(
                clientID: clientID, at: Date(),
                audit: AuditEvent(
                    ts: Date(), tenant: client.tenantID.rawValue, actor: Output.operatorActor, clientID: clientID,
                    action: "client.disabled", outcome: .success))
            await store.close()
            Output.emit(json: global.json, object: ["client_id": clientID, "disabled": true], text: "disabled \(clientID)")
        }
    }
}
