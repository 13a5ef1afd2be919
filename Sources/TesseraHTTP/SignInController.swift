public import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
public import TesseraCore
public import TesseraJOSE
public import TesseraOAuth
public import TesseraOIDC
public import TesseraSignIn

/// Routes of browser sign-in (`/sso/{tenant}/oidc/...`) and of the human session (`/session`).
/// Translates HTTP (query, cookies, Accept) to domain calls and back; the checks live in
/// `OIDCSignIn` and `SignInService`.
public struct SignInController: Sendable {
    let oidc: OIDCSignIn
    let saml: SAMLSignIn?
    let clock: any WallClock

    public init(oidc: OIDCSignIn, saml: SAMLSignIn? = nil, clock: any WallClock) {
        self.oidc = oidc
        self.saml = saml
        self.clock = clock
    }

    public func addRoutes(to router: Router<TesseraRequestContext>) {
        if let saml { addSAMLRoutes(saml, to: router) }
        router.get("/sso/:tenant/oidc/login") { request, context in
            try await answer(request, context) { tenant in
                let redirect = try await oidc.start(
                    tenant: tenant, returnTo: request.uri.queryParameters.get("return_to"), now: clock.now, traceID: context.requestID)
                var headers: HTTPFields = [.location: redirect.location, .cacheControl: "no-store"]
                headers[.setCookie] = cookie(
                    OIDCSignIn.loginCookie, redirect.loginCookie, path: oidc.cookiePath(tenant), maxAge: Int(PendingSignIn.lifetime))
                return Response(status: .found, headers: headers)
            }
        }
        router.get("/sso/:tenant/oidc/callback") { request, context in
            try await answer(request, context) { tenant in
                var query: [String: String] = [:]
                for name in ["code", "state", "error"] {
                    let values = request.uri.queryParameters.getAll(name)
                    // A repeated parameter is refused, never resolved by picking one (parameter pollution).
                    guard values.count <= 1 else {
                        throw await oidc.service.failed(
                            OAuthError.invalidRequest("a callback parameter is repeated", reason: "Callback: \(name) repeated"),
                            tenant: tenant, via: "oidc", now: clock.now, traceID: context.requestID)
                    }
                    if let value = values.first { query[name] = String(value) }
                }
                let completed = try await oidc.finish(
                    tenant: tenant, query: query, loginCookie: request.cookies[OIDCSignIn.loginCookie]?.value, now: clock.now,
                    traceID: context.requestID)
                return signedIn(completed, clearing: cookie(OIDCSignIn.loginCookie, "", path: oidc.cookiePath(tenant), maxAge: 0))
            }
        }
        router.get("/sso/:tenant/oidc/jwks") { request, context in
            try await answer(request, context) { tenant in
                let jwks = try await oidc.clientJWKS(tenant: tenant)
                return Response(
                    status: .ok, headers: [.contentType: "application/json", .cacheControl: "public, max-age=300"],
                    body: .init(byteBuffer: ByteBuffer(bytes: StrictJSON.serialize(jwks))))
            }
        }
        router.get("/session") { request, context in
            try await answer(request, context, tenantInPath: false) { _ in
                guard let value = request.cookies[SessionSettings.cookieName]?.value,
                    let session = try await oidc.service.session(cookie: value, now: clock.now)
                else { throw OAuthError(.loginRequired, "no live session") }
                let identity = session.identity
                let body: JSONValue = [
                    "tenant": .string(identity.tenantID.rawValue), "subject": .string(identity.subject),
                    "email": identity.email.map(JSONValue.string) ?? .null, "email_verified": .bool(identity.emailVerified),
                    "name": identity.name.map(JSONValue.string) ?? .null, "groups": .array(identity.groups.map(JSONValue.string)),
                    "roles": .array(identity.roles.map(JSONValue.string)), "idp": .string(identity.idpID),
                    // The effective end: the absolute limit, or sooner if the browser stays idle.
                    "expires_at": .string(
                        RFC3339.format(min(session.expiresAt, session.lastSeenAt.addingTimeInterval(oidc.service.settings.idleTimeout)))),
                ]
                return Response(
                    status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(bytes: StrictJSON.serialize(body))))
            }
        }
        router.post("/session/logout") { request, context in
            try await answer(request, context, tenantInPath: false) { _ in
                if let value = request.cookies[SessionSettings.cookieName]?.value {
                    try await oidc.service.end(cookie: value, now: clock.now, traceID: context.requestID)
                }
                var headers: HTTPFields = [.cacheControl: "no-store"]
                headers[.setCookie] = cookie(SessionSettings.cookieName, "", path: "/", maxAge: 0)
                return Response(status: .noContent, headers: headers)
            }
        }
    }

    /// 303 to `return_to` with the session cookie (living as long as the session may), the
    /// protocol's login cookie cleared.
    func signedIn(_ completed: SignInService.Completed, clearing loginCookie: String) -> Response {
        var headers: HTTPFields = [.location: completed.returnTo.path, .cacheControl: "no-store"]
        let lifetime = max(0, Int(completed.opened.session.expiresAt.timeIntervalSince(clock.now).rounded(.down)))
        headers.append(HTTPField(name: .setCookie, value: cookie(SessionSettings.cookieName, completed.opened.cookie, path: "/", maxAge: lifetime)))
        headers.append(HTTPField(name: .setCookie, value: loginCookie))
        return Response(status: .seeOther, headers: headers)
    }

    /// `name=value` with the attributes every broker cookie has: HttpOnly, SameSite=Lax, Secure on https.
    func cookie(_ name: String, _ value: String, path: String, maxAge: Int) -> String {
        var text = "\(name)=\(value); Path=\(path); Max-Age=\(maxAge); HttpOnly; SameSite=Lax"
        if oidc.service.settings.secureCookies { text += "; Secure" }
        return text
    }

    /// Parses the tenant, runs `body`, renders a refusal as JSON or a plain page (DESIGN.md: SSO
    /// endpoints answer JSON when the request asks for it).
    func answer(
        _ request: Request, _ context: TesseraRequestContext, tenantInPath: Bool = true,
        _ body: (TenantID) async throws -> Response
    ) async throws -> Response {
        let wantsJSON = request.headers[.accept]?.lowercased().contains("application/json") ?? false
        do {
            var tenant = TenantID("session")!
            if tenantInPath {
                guard let text = context.parameters.get("tenant"), let parsed = TenantID(text) else {
                    throw OAuthError.invalidRequest("unknown tenant")
                }
                tenant = parsed
            }
            return try await body(tenant)
        } catch let error as OAuthError {
            let level: Logger.Level = error.code == .serverError || error.code == .temporarilyUnavailable ? .error : .info
            context.logger.log(level: level, "sign-in refused", metadata: ["error": "\(error.code.rawValue)", "reason": "\(error.reason)"])
            return Self.refusal(error, json: wantsJSON)
        } catch {
            context.logger.error("sign-in failed unexpectedly", metadata: ["error": "\(type(of: error))"])
            return Self.refusal(OAuthError(.serverError, "internal error"), json: wantsJSON)
        }
    }

    static func refusal(_ error: OAuthError, json: Bool) -> Response {
        var response = OAuthErrorResponse.response(for: error)
        guard !json else { return response }
        let status = HTTPResponse.Status(code: error.code.httpStatus)
        let page = "\(status.code) \(status.reasonPhrase)\n\n\(error.publicDescription)\n"
        response.headers[.contentType] = "text/plain; charset=utf-8"
        response.body = .init(byteBuffer: ByteBuffer(string: page))
        return response
    }
}

/// Client credentials for upstream providers, from the keys folder.
public struct KeyDirectoryRelyingPartySecrets: RelyingPartySecrets {
    let directory: KeyDirectory

    public init(directory: KeyDirectory) { self.directory = directory }

    public func credentials(for provider: OIDCProviderConfig) throws -> RelyingPartyCredentials {
        switch provider.clientAuth {
        case .clientSecretBasic: .clientSecretBasic(try directory.clientSecret(providerID: provider.id))
        case .clientSecretPost: .clientSecretPost(try directory.clientSecret(providerID: provider.id))
        case .privateKeyJWT: .privateKeyJWT(try directory.clientKey(providerID: provider.id, create: false))
        }
    }
}
