public import Foundation
public import Logging
import Synchronization
public import TesseraCore
public import TesseraJOSE
public import TesseraOAuth
public import TesseraStore
import TesseraStoreSQLite

/// A clock tests move by hand.
public final class FixedWallClock: WallClock {
    private let instant: Mutex<Date>
    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { instant = Mutex(start) }
    public var now: Date { instant.withLock { $0 } }
    public func advance(by seconds: TimeInterval) { instant.withLock { $0 = $0.addingTimeInterval(seconds) } }
    public func set(_ date: Date) { instant.withLock { $0 = date } }
}

/// A fresh folder under the system temporary directory, removed by `remove()`.
public struct TemporaryFolder: Sendable {
    public let url: URL
    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-test-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    public func remove() { try? FileManager.default.removeItem(at: url) }
}

/// A whole broker on a temporary SQLite store and key folder, with helpers to register clients.
/// Its revocation feed has read the log before `make` returns and runs until `tearDown`; `store`
/// is the broker's, so a revocation written through it is seen by the broker when the call returns.
public struct BrokerFixture: Sendable {
    public let folder: TemporaryFolder
    public let store: any TesseraStore
    public let keyDirectory: KeyDirectory
    public let broker: Broker
    public let clock: FixedWallClock
    public let settings: BrokerSettings
    private let feedRunner: Task<Void, Never>

    public static let issuer = "http://127.0.0.1:8080"

    public static func make(
        clock: FixedWallClock = FixedWallClock(), kek: KeyEncryptionKey? = nil,
        throttle: AuthFailureThrottle = AuthFailureThrottle(), dpopNonces: Bool = false
    ) async throws -> BrokerFixture {
        let folder = try TemporaryFolder()
        var logger = Logger(label: "tessera-test")
        logger.logLevel = .warning
        let store = try await SQLiteStore.open(path: folder.url.appendingPathComponent("tessera.db").path, logger: logger)
        let settings = BrokerSettings(issuer: issuer)
        let keys = KeyDirectory(root: folder.url.appendingPathComponent("Keys"), kek: kek, retention: settings.keyRetention)
        try keys.ensureInitialized(algorithm: .ES256, now: clock.now)
        let ring = try KeyRing(directory: keys, clock: clock)
        let nonces = dpopNonces ? DPoPNonceSource(key: try keys.dpopNonceKey()) : nil
        let broker = Broker(
            settings: settings, store: store, keyRing: ring, clock: clock, throttle: throttle, dpopNonces: nonces, logger: logger)
        try await broker.revocationFeed.refresh()
        let feed = broker.revocationFeed
        return BrokerFixture(
            folder: folder, store: broker.store, keyDirectory: keys, broker: broker, clock: clock, settings: settings,
            feedRunner: Task { await feed.run() })
    }

    public func tearDown() async {
        feedRunner.cancel()
        await feedRunner.value
        await store.close()
        folder.remove()
    }

    @discardableResult
    public func addTenant(_ id: String) async throws -> TenantID {
        let tenantID = TenantID(id)!
        try await store.tenants.create(
            Tenant(id: tenantID, name: id, createdAt: clock.now),
            audit: AuditEvent(ts: clock.now, tenant: id, actor: .system, action: "tenant.created", outcome: .success))
        return tenantID
    }

    public struct RegisteredClient: Sendable {
        public let client: OAuthClient
        public let secret: String?
        public let signingKey: JWSSigningKey?
    }

    /// Registers a client; for `private_key_jwt` a key pair is generated and its public half registered.
    public func addClient(
        tenant: String, scopes: String, method: ClientAuthMethod = .clientSecretBasic, introspect: Bool = false,
        grants: Set<GrantType> = [.clientCredentials], keyAlgorithm: JWSAlgorithm = .ES256, dpop: DPoPRequirement = .optional
    ) async throws -> RegisteredClient {
        let secret = method == .privateKeyJWT ? nil : Secrets.randomToken(prefix: "tsec_")
        let key = method == .privateKeyJWT ? try JWSSigningKey.generate(keyAlgorithm) : nil
        let jwks = key.map { String(decoding: StrictJSON.serialize(JWKS(keys: [$0.publicJWK]).json), as: UTF8.self) }
        let client = OAuthClient(
            clientID: "tcl_" + Secrets.base64URL(Secrets.randomBytes(12)), tenantID: TenantID(tenant)!, name: "test client",
            authMethod: method, secretHash: secret.map(Secrets.sha256), jwks: jwks, scopes: try ScopeSet(parsing: scopes),
            grantTypes: grants, dpop: dpop, mayIntrospect: introspect, createdAt: clock.now)
        try await store.clients.create(
            client,
            audit: AuditEvent(
                ts: clock.now, tenant: tenant, actor: .system, clientID: client.clientID, action: "client.created", outcome: .success))
        return RegisteredClient(client: client, secret: secret, signingKey: key)
    }
}

/// Builds RFC 7523 client assertions, valid by default, with every field overridable.
public struct ClientAssertionBuilder: Sendable {
    public var claims: [String: JSONValue]
    public var typ: String? = "JWT"
    public let key: JWSSigningKey

    public init(clientID: String, audience: String, key: JWSSigningKey, now: Date) {
        self.key = key
        claims = [
            "iss": .string(clientID), "sub": .string(clientID), "aud": .string(audience),
            "iat": .number(now.timeIntervalSince1970.rounded(.down)), "exp": .number(now.timeIntervalSince1970.rounded(.down) + 120),
            "jti": .string(Secrets.randomToken()),
        ]
    }

    public func build() throws -> String { try key.signCompact(claims: claims, typ: typ) }

    /// A token with an arbitrary header and payload and a given signature: for `alg: none` and HMAC confusion.
    public static func unsigned(header: [String: JSONValue], claims: [String: JSONValue], signature: [UInt8] = []) -> String {
        let head = Base64URL.encode(StrictJSON.serialize(.object(header)))
        let body = Base64URL.encode(StrictJSON.serialize(.object(claims)))
        return "\(head).\(body).\(Base64URL.encode(signature))"
    }
}

/// Builds DPoP proofs (RFC 9449 §4.2) with a client-held key, valid by default.
public struct DPoPProofBuilder: Sendable {
    public let key: JWSSigningKey

    public init(algorithm: JWSAlgorithm = .ES256) throws { key = try JWSSigningKey.generate(algorithm) }

    /// The thumbprint a token bound to this key carries in `cnf.jkt`.
    public var jkt: String { key.publicJWK.thumbprint() }

    public func proof(
        method: String = "POST", url: String, now: Date, nonce: String? = nil, accessToken: String? = nil,
        jti: String = Secrets.randomToken(), typ: String = "dpop+jwt", extraClaims: [String: JSONValue] = [:]
    ) throws -> String {
        var claims: [String: JSONValue] = [
            "jti": .string(jti), "htm": .string(method), "htu": .string(url), "iat": .number(now.timeIntervalSince1970.rounded(.down)),
        ]
        if let nonce { claims["nonce"] = .string(nonce) }
        if let accessToken { claims["ath"] = .string(DPoPAccessTokenHash.of(accessToken)) }
        claims.merge(extraClaims) { $1 }
        var publicJWK = key.publicJWK
        publicJWK.kid = nil
        return try key.signCompact(claims: claims, typ: typ, extraHeader: ["jwk": publicJWK.json])
    }
}

/// SplitMix64: a deterministic generator for randomized tests, so a failure replays exactly.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
