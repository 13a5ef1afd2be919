public import Foundation

/// How a client proves who it is at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2).
public enum ClientAuthMethod: String, Sendable, Codable, CaseIterable {
    case clientSecretBasic = "client_secret_basic"
    case clientSecretPost = "client_secret_post"
    case privateKeyJWT = "private_key_jwt"
}

public enum GrantType: String, Sendable, Codable, CaseIterable {
    case clientCredentials = "client_credentials"
    case tokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
    case refreshToken = "refresh_token"
    case jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
}

public enum DPoPRequirement: String, Sendable, Codable {
    case optional
    case required
}

/// A registered OAuth client (a background service or a connector). Belongs to one tenant.
public struct OAuthClient: Sendable, Hashable, Codable {
    public let clientID: String
    public let tenantID: TenantID
    public var name: String
    public var authMethod: ClientAuthMethod
    /// SHA-256 of the client secret; nil for `private_key_jwt` clients. The secret itself is never stored.
    public var secretHash: [UInt8]?
    /// The client's public JWKS as JSON text, for `private_key_jwt`.
    public var jwks: String?
    /// The scopes this client may ever receive; a request must be covered by them.
    public var scopes: ScopeSet
    public var grantTypes: Set<GrantType>
    public var dpop: DPoPRequirement
    /// Whether the client may call the introspection endpoint (RFC 7662 §2.1 requires authorization).
    public var mayIntrospect: Bool
    public var disabledAt: Date?
    public let createdAt: Date

    public var isDisabled: Bool { disabledAt != nil }

    public init(
        clientID: String, tenantID: TenantID, name: String, authMethod: ClientAuthMethod, secretHash: [UInt8]?,
        jwks: String?, scopes: ScopeSet, grantTypes: Set<GrantType>, dpop: DPoPRequirement, mayIntrospect: Bool,
        disabledAt: Date? = nil, createdAt: Date
    ) {
        self.clientID = clientID
        self.tenantID = tenantID
        self.name = name
        self.authMethod = authMethod
        self.secretHash = secretHash
        self.jwks = jwks
        self.scopes = scopes
        self.grantTypes = grantTypes
        self.dpop = dpop
        self.mayIntrospect = mayIntrospect
        self.disabledAt = disabledAt
        self.createdAt = createdAt
    }
}

extension ScopeSet: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        if text.isEmpty {
            self.init([])
        } else {
            do { try self.init(parsing: text) } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
