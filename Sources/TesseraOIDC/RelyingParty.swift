import Crypto
public import Foundation
public import TesseraCore
public import TesseraJOSE

/// How the broker authenticates to the provider's token endpoint (OpenID Connect Core §9).
public enum RelyingPartyCredentials: Sendable {
    case clientSecretBasic(String)
    case clientSecretPost(String)
    /// RFC 7523 client assertion signed with the broker's key for this provider.
    case privateKeyJWT(JWSSigningKey)
}

/// RFC 7636 PKCE with S256: a 256-bit verifier (43 characters) and its challenge.
public struct PKCEPair: Sendable {
    public let verifier: String
    public let challenge: String

    public init() { self.init(verifier: Secrets.randomToken()) }

    public init(verifier: String) {
        self.verifier = verifier
        challenge = Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8))))
    }
}

/// The relying party's two calls in the authorization code flow: where to send the browser, and
/// redeeming the code for a verified identity's claims.
public struct OIDCRelyingParty: Sendable {
    public let provider: UpstreamProvider
    private let credentials: RelyingPartyCredentials
    private let redirectURI: String
    private let verifier = IDTokenVerifier()

    public init(provider: UpstreamProvider, credentials: RelyingPartyCredentials, redirectURI: String) {
        self.provider = provider
        self.credentials = credentials
        self.redirectURI = redirectURI
    }

    /// OpenID Connect Core §3.1.2.1 with RFC 7636 §4.3.
    public func authorizationURL(state: String, nonce: String, pkce: PKCEPair, now: Date) async throws(OIDCProblem) -> URL {
        let endpoint = try await provider.discovery(now: now).authorizationEndpoint
        let query = FormEncoding.encode([
            ("response_type", "code"), ("client_id", provider.config.clientID), ("redirect_uri", redirectURI),
            ("scope", provider.config.scopes.joined(separator: " ")), ("state", state), ("nonce", nonce),
            ("code_challenge", pkce.challenge), ("code_challenge_method", "S256"),
        ])
        let separator = endpoint.query == nil ? "?" : "&"
        guard let url = URL(string: endpoint.absoluteString + separator + query) else {
            throw .discovery("the authorization endpoint cannot take a query")
        }
        return url
    }

    /// Redeems the code (§3.1.3.1), verifies the ID token (§3.1.3.7) and, when configured, reads
    /// userinfo (§5.3.2: its `sub` must equal the ID token's). Returns the claims, the ID token's
    /// first and userinfo's only where the ID token has none.
    public func redeem(code: String, pkce: PKCEPair, nonce: String, now: Date) async throws(OIDCProblem) -> [String: JSONValue] {
        let discovery = try await provider.discovery(now: now)
        var form = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", pkce.verifier),
        ]
        var headers: [(String, String)] = []
        let clientID = provider.config.clientID
        switch credentials {
        case .clientSecretBasic(let secret):
            let pair = FormEncoding.escape(clientID) + ":" + FormEncoding.escape(secret)
            headers.append(("Authorization", "Basic " + Data(pair.utf8).base64EncodedString()))
        case .clientSecretPost(let secret):
            form += [("client_id", clientID), ("client_secret", secret)]
        case .privateKeyJWT(let key):
            let issuedAt = now.timeIntervalSince1970.rounded(.down)
            let assertion: String
            do {
                assertion = try key.signCompact(
                    claims: [
                        "iss": .string(clientID), "sub": .string(clientID), "aud": .string(discovery.tokenEndpoint.absoluteString),
                        "iat": .number(issuedAt), "exp": .number(issuedAt + 60), "jti": .string(Secrets.randomToken()),
                    ], typ: "JWT")
            } catch {
                throw .discovery("the client assertion could not be signed")
            }
            form += [
                ("client_id", clientID), ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion),
            ]
        }
        let response: UpstreamResponse
        do {
            response = try await provider.transportForCalls.postForm(discovery.tokenEndpoint, form: form, headers: headers)
        } catch {
            throw .unavailable("the provider's token endpoint is unreachable")
        }
        guard response.status == 200 else {
            if response.status >= 500 { throw .unavailable("the provider's token endpoint answered \(response.status)") }
            let error = (try? StrictJSON.parse(response.body))?["error"]?.stringValue ?? "no error code"
            throw .codeRefused("the provider refused the code (\(String(error.prefix(40))))")
        }
        guard let body = try? StrictJSON.parse(response.body), let idToken = body["id_token"]?.stringValue else {
            throw .codeRefused("the token response has no ID token")
        }
        let accessToken = body["access_token"]?.stringValue
        let verified = try await verifier.verify(
            idToken, provider: provider,
            expecting: IDTokenExpectations(
                issuer: provider.config.issuer, clientID: clientID, nonce: nonce, accessToken: accessToken, now: now))
        var claims = verified.claims
        if provider.config.useUserinfo {
            guard let endpoint = discovery.userinfoEndpoint, let accessToken else {
                throw .untrusted("userinfo is configured but the provider offers no endpoint or access token")
            }
            let info: UpstreamResponse
            do {
                info = try await provider.transportForCalls.get(
                    endpoint, accept: "application/json", headers: [("Authorization", "Bearer " + accessToken)])
            } catch {
                throw .unavailable("the provider's userinfo endpoint is unreachable")
            }
            guard info.status == 200, let object = (try? StrictJSON.parse(info.body))?.objectValue else {
                throw info.status >= 500 ? .unavailable("userinfo answered \(info.status)") : .untrusted("userinfo answered \(info.status)")
            }
            guard object["sub"]?.stringValue == verified.subject else { throw .untrusted("UserinfoSubject: userinfo sub differs") }
            claims.merge(object) { idTokenValue, _ in idTokenValue }
        }
        return claims
    }
}
