public import TesseraCore
public import TesseraJOSE

/// RFC 8414 §2 authorization server metadata, served at both well-known paths.
public enum AuthorizationServerMetadata {
    public static func document(settings: BrokerSettings, grantTypes: [GrantType]) -> [String: JSONValue] {
        let authMethods = JSONValue.array(ClientAuthMethod.allCases.map { .string($0.rawValue) })
        let assertionAlgorithms = JSONValue.array(ClientAssertionVerifier.allowedAlgorithms.map(\.rawValue).sorted().map(JSONValue.string))
        return [
            "issuer": .string(settings.issuer),
            "token_endpoint": .string(settings.tokenEndpoint),
            "jwks_uri": .string(settings.jwksURI),
            "introspection_endpoint": .string(settings.introspectionEndpoint),
            "revocation_endpoint": .string(settings.revocationEndpoint),
            "grant_types_supported": .array(grantTypes.map { .string($0.rawValue) }),
            // No authorization endpoint: this server issues tokens to clients directly.
            "response_types_supported": .array([]),
            "token_endpoint_auth_methods_supported": authMethods,
            "token_endpoint_auth_signing_alg_values_supported": assertionAlgorithms,
            "introspection_endpoint_auth_methods_supported": authMethods,
            "introspection_endpoint_auth_signing_alg_values_supported": assertionAlgorithms,
            "revocation_endpoint_auth_methods_supported": authMethods,
            "revocation_endpoint_auth_signing_alg_values_supported": assertionAlgorithms,
            "dpop_signing_alg_values_supported": .array(DPoPProofVerifier.allowedAlgorithms.map(\.rawValue).sorted().map(JSONValue.string)),
        ]
    }
}
