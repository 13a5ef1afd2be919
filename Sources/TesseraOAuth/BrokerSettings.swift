public import Foundation
public import TesseraJOSE

/// The settings the OAuth endpoints need, resolved once at start.
public struct BrokerSettings: Sendable {
    /// The issuer identifier (RFC 8414 §2): `iss` of every token, base of every endpoint URL.
    public let issuer: String
    public let accessTokenLifetime: TimeInterval
    public let signingAlgorithm: JWSAlgorithm

    /// RFC 9068 leaves the lifetime to the server; DESIGN.md caps it at 15 minutes.
    public static let defaultAccessTokenLifetime: TimeInterval = 600
    public static let maximumAccessTokenLifetime: TimeInterval = 900

    public init(issuer: String, accessTokenLifetime: TimeInterval = defaultAccessTokenLifetime, signingAlgorithm: JWSAlgorithm = .ES256) {
        self.issuer = issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
        self.accessTokenLifetime = min(max(accessTokenLifetime, 1), Self.maximumAccessTokenLifetime)
        self.signingAlgorithm = signingAlgorithm
    }

    public var tokenEndpoint: String { issuer + "/oauth2/token" }
    public var introspectionEndpoint: String { issuer + "/oauth2/introspect" }
    public var revocationEndpoint: String { issuer + "/oauth2/revoke" }
    public var jwksURI: String { issuer + "/oauth2/jwks" }

    /// How long a retired signing key stays in JWKS: every token it signed has expired by then.
    public var keyRetention: TimeInterval { Self.maximumAccessTokenLifetime + 60 }
}
