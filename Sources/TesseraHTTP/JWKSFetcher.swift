public import Foundation
public import TesseraOAuth
public import TesseraOIDC

/// Remote JWKS of trusted workload issuers, fetched with the upstream HTTP client (no redirects,
/// 5 s timeouts, 1 MiB bodies; https, or http on loopback only).
public struct UpstreamJWKSFetcher: JWKSFetcher {
    let transport: any OIDCTransport

    public init(transport: any OIDCTransport) { self.transport = transport }

    public func fetch(_ url: URL) async throws -> [UInt8] {
        let response = try await transport.get(url, accept: "application/jwk-set+json, application/json;q=0.9", headers: [])
        guard response.status == 200 else { throw UpstreamUnavailable("JWKS answered HTTP \(response.status)") }
        return response.body
    }
}
