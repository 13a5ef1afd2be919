public import Foundation
public import TesseraJOSE

/// The parts of an OpenID Provider's discovery document (OpenID Connect Discovery 1.0 §3) the
/// relying party uses, checked: `issuer` equal to the configured one exactly (§4.3), the three
/// endpoints present and each an absolute https URL (http only on loopback, for tests).
public struct DiscoveryDocument: Sendable, Equatable {
    public let issuer: String
    public let authorizationEndpoint: URL
    public let tokenEndpoint: URL
    public let jwksURI: URL
    public let userinfoEndpoint: URL?

    public init(parsing body: [UInt8], expectedIssuer: String) throws(OIDCProblem) {
        let json: JSONValue
        do { json = try StrictJSON.parse(body) } catch { throw .discovery("the discovery document is not valid JSON") }
        guard let issuer = json["issuer"]?.stringValue else { throw .discovery("the discovery document has no issuer") }
        guard issuer == expectedIssuer else { throw .discovery("the discovery issuer differs from the configured issuer") }
        self.issuer = issuer
        authorizationEndpoint = try Self.endpoint(json, "authorization_endpoint", required: true)!
        tokenEndpoint = try Self.endpoint(json, "token_endpoint", required: true)!
        jwksURI = try Self.endpoint(json, "jwks_uri", required: true)!
        userinfoEndpoint = try Self.endpoint(json, "userinfo_endpoint", required: false)
    }

    public static func url(of issuer: String) -> URL? {
        URL(string: (issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer) + "/.well-known/openid-configuration")
    }

    static func endpoint(_ json: JSONValue, _ name: String, required: Bool) throws(OIDCProblem) -> URL? {
        guard let text = json[name]?.stringValue else {
            if required { throw .discovery("the discovery document has no \(name)") }
            return nil
        }
        guard let url = URL(string: text), isAcceptable(url) else { throw .discovery("\(name) is not an https URL") }
        return url
    }

    /// https, or http on a loopback host.
    public static func isAcceptable(_ url: URL) -> Bool {
        guard let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased(), !host.isEmpty, url.fragment == nil else {
            return false
        }
        if scheme == "https" { return true }
        return scheme == "http" && ["127.0.0.1", "::1", "[::1]", "localhost"].contains(host)
    }
}

/// Everything that can go wrong talking to or trusting an OpenID Provider. The associated text
/// names the failed check in general terms; it never holds a token, a code or a claim value.
public enum OIDCProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// The provider's configuration is unusable (discovery, JWKS content).
    case discovery(String)
    /// The provider could not be reached or answered with a server error.
    case unavailable(String)
    /// The provider refused the code (RFC 6749 §5.2) or answered the token request wrongly.
    case codeRefused(String)
    /// The ID token or userinfo failed a check.
    case untrusted(String)

    public var description: String {
        switch self {
        case .discovery(let why), .unavailable(let why), .codeRefused(let why), .untrusted(let why): why
        }
    }
}
