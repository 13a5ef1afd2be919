public import TesseraCore
public import TesseraJOSE

/// A token endpoint request as the HTTP layer hands it over: parsed, but nothing checked yet.
public struct TokenRequest: Sendable {
    public let form: FormParameters
    public let authorization: String?
    public let sourceAddress: String?
    public let traceID: String
    /// Every `DPoP` header value, so that more than one can be refused (RFC 9449 §4.3).
    public let dpopProofs: [String]

    public init(form: FormParameters, authorization: String?, sourceAddress: String?, traceID: String, dpopProofs: [String] = []) {
        self.form = form
        self.authorization = authorization
        self.sourceAddress = sourceAddress
        self.traceID = traceID
        self.dpopProofs = dpopProofs
    }
}

/// RFC 6749 §5.1 successful response.
public struct TokenResponse: Sendable {
    public let accessToken: String
    public let tokenType: String
    public let expiresIn: Int
    public let scope: String?
    public let issuedTokenType: String?
    public let refreshToken: String?

    public init(
        accessToken: String, tokenType: String, expiresIn: Int, scope: String?, issuedTokenType: String?, refreshToken: String? = nil
    ) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresIn = expiresIn
        self.scope = scope
        self.issuedTokenType = issuedTokenType
        self.refreshToken = refreshToken
    }

    /// The response members as JSON, absent optionals omitted.
    public var jsonObject: [String: JSONValue] {
        var object: [String: JSONValue] = [
            "access_token": .string(accessToken), "token_type": .string(tokenType), "expires_in": .number(Double(expiresIn)),
        ]
        if let scope { object["scope"] = .string(scope) }
        if let issuedTokenType { object["issued_token_type"] = .string(issuedTokenType) }
        if let refreshToken { object["refresh_token"] = .string(refreshToken) }
        return object
    }
}
