import ArgumentParser
import Foundation
import Hummingbird
import Logging
import TesseraCore
import TesseraHTTP
import TesseraJOSE
import TesseraOAuth
import TesseraOIDC
import TesseraSignIn
import TesseraStore

@main
struct Tessera: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera identity broker: workload tokens, token exchange, SSO.",
        subcommands: [Serve.self, Tenants.self, Clients.self, IdentityProviders.self, Policies.self, Keys.self, Audit.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the broker.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Address to listen on (default 127.0.0.1). Env: TESSERA_HOST.") var host: String?
    @Option(help: "Port (default 8080). Env: TESSERA_PORT.") var port: Int?
    @Option(help: "Issuer URL (default http://HOST:PORT). Env: TESSERA_ISSUER.") var issuer: String?

    func run() async throws {
        let config = try ResolvedConfiguration.resolve(global, host: host, port: port, issuer: issuer)
        let logger = LogSetup.logger(label: "tessera", level: config.logLevel)
        let store = try await config.openStore(logger: logger)
        let directory = config.keyDirectory
        if try directory.ensureInitialized(algorithm: config.settings.signingAlgorithm, now: Date()) {
            logger.notice("generated signing keys on first run", metadata: ["keys_dir": "\(config.keysDir)"])
            try await store.audit.append(
                AuditEvent(
                    ts: Date(), tenant: nil, actor: .system, action: "key.generated", outcome: .success,
                    reason: "first run: active and next signing keys"))
        }
        let keyRing: KeyRing
        do {
            keyRing = try KeyRing(directory: directory, clock: SystemWallClock())
        } catch {
            logger.critical("cannot load the signing keys", metadata: ["error": "\(error)"])
            await store.close()
            throw ExitCode(2)
        }
        if !config.kekConfigured {
            logger.warning("signing keys are stored UNSEALED in \(config.keysDir): set TESSERA_KEK to seal them with a key-encryption key")
        } else if try directory.load().contains(where: { !$0.isSealed }) {
            logger.warning("some signing keys are not sealed yet")
        } else {
            logger.notice("signing keys are sealed with TESSERA_KEK")
        }
        let nonces = config.dpopNonce ? DPoPNonceSource(key: try directory.dpopNonceKey()) : nil
        let transport = AsyncHTTPOIDCTransport()
        let sealer = CookieSealer(key: try directory.cookieKey())
        let signInService = SignInService(store: store, settings: SessionSettings(secureCookies: config.issuer.hasPrefix("https:")))
        let signIn = OIDCSignIn(
            store: store, transport: transport, secrets: KeyDirectoryRelyingPartySecrets(directory: directory), sealer: sealer,
            service: signInService, brokerIssuer: config.settings.issuer)
        let samlSignIn = SAMLSignIn(
            store: store, keys: KeyDirectorySAMLKeys(directory: directory), sealer: sealer, service: signInService,
            brokerIssuer: config.settings.issuer)
        let broker = Broker(
            settings: config.settings, store: store, keyRing: keyRing, dpopNonces: nonces,
            logger: LogSetup.logger(label: "tessera.revocations", level: config.logLevel),
            externalSubjects: SignInSubjectTokens(
                oidc: signIn, saml: samlSignIn, users: store.users, tokenEndpoint: config.settings.tokenEndpoint),
            jwksFetcher: UpstreamJWKSFetcher(transport: transport))
        // Every revocation in the log before the first request; should this read fail, tokens
        // verify as unavailable (503) until the feed's service has read it.
        do {
            try await broker.revocationFeed.refresh()
        } catch {
            logger.error("the revocation log could not be read at start", metadata: ["error": "\(error)"])
        }
        let metadataRefresh = SAMLMetadataRefreshService(
            source: SAMLMetadataSource(store: store, transport: transport), clock: SystemWallClock(),
            logger: LogSetup.logger(label: "tessera.saml", level: config.logLevel))
        logger.notice("tessera starting", metadata: ["issuer": "\(config.issuer)", "database": "\(Self.redacted(config.database))"])
        let app = buildApplication(
            broker: broker, host: config.host, port: config.port, logger: logger, signIn: signIn, samlSignIn: samlSignIn,
            extraServices: [metadataRefresh])
        do {
            try await app.runService()
        } catch {
            await transport.shutdown()
            await store.close()
            throw error
        }
        await transport.shutdown()
        await store.close()
        logger.notice("tessera stopped")
    }

    /// A database URL without its password, for logs.
    static func redacted(_ url: String) -> String {
        guard let parsed = URLComponents(string: url), parsed.password != nil else { return url }
        var copy = parsed
        copy.password = "***"
        return copy.string ?? "***"
    }
}

// MARK: - tenants

struct Tenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage tenants.", subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Tenant id: lower-case letters, digits and '-'.") var id: String
        @Option(help: "Display name.") var name: String?
        @Option(help: "A verified e-mail domain of the organisation (repeatable).") var domain: [String] = []

        func run() async throws {
            guard let tenantID = TenantID(id) else { throw ValidationError("tenant id must match [a-z0-9][a-z0-9-]{0,62}") }
            let config = try ResolvedConfiguration.resolve(global)
            let store = try await config.openStore(logger: LogSetup.logger(label: "tessera", level: .warning))
            let tenant = Tenant(id: tenantID, name: name ?? id, domains: domain.map { $0.lowercased() }, createdAt: Date())
            do {
                try await store.tenants.create(
                    tenant,
                    audit: AuditEvent(ts: Date(), tenant: id, actor: Output.operatorActor, action: "tenant.created", outcome: .success))
            } catch StoreError.alreadyExists {
                await store.close()
                throw ValidationError("tenant \(id) already exists")
            }
            await store.close()
            Output.emit(
                json: global.json, object: ["id": id, "name": tenant.name, "domains": tenant.domains], text: "created tenant \(id)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let tenants = try await global.withStore { try await $0.tenants.list() }
            Output.emit(
                json: global.json,
                object: tenants.map {
                    ["id": $0.id.rawValue, "name": $0.name, "domains": $0.domains, "created_at": Timestamps.format($0.createdAt)]
                },
                text: tenants.map { "\($0.id)\t\($0.name)\t\($0.domains.joined(separator: ","))" }.joined(separator: "\n"))
        }
    }
}
