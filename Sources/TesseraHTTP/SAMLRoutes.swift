import Foundation
import HTTPTypes
import Hummingbird
public import Logging
public import ServiceLifecycle
import NIOCore
public import TesseraCore
public import TesseraOAuth
import TesseraJOSE
public import TesseraSAML
public import TesseraSignIn

/// The SAML service provider's routes (`/sso/{tenant}/saml/...`); the checks live in `SAMLSignIn`
/// and `SAMLResponseVerifier`.
extension SignInController {
    /// The ACS form: the encoded response (256 KiB) plus a RelayState and the encoding's overhead.
    static let maximumACSBody = SAMLResponseVerifier.maximumEncodedSize + 8 * 1024

    func addSAMLRoutes(_ saml: SAMLSignIn, to router: Router<TesseraRequestContext>) {
        router.get("/sso/:tenant/saml/metadata") { request, context in
            try await answer(request, context) { tenant in
                let document = try await saml.metadata(tenant: tenant)
                return Response(
                    status: .ok, headers: [.contentType: ServiceProviderMetadata.contentType, .cacheControl: "public, max-age=300"],
                    body: .init(byteBuffer: ByteBuffer(string: document)))
            }
        }
        router.get("/sso/:tenant/saml/login") { request, context in
            try await answer(request, context) { tenant in
                let redirect = try await saml.start(
                    tenant: tenant, returnTo: request.uri.queryParameters.get("return_to"), now: clock.now, traceID: context.requestID)
                var headers: HTTPFields = [.location: redirect.location, .cacheControl: "no-store"]
                headers[.setCookie] = loginCookie(redirect.loginCookie, path: saml.cookiePath(tenant), maxAge: Int(PendingSignIn.lifetime))
                return Response(status: .found, headers: headers)
            }
        }
        router.post("/sso/:tenant/saml/acs") { request, context in
            try await answer(request, context) { tenant in
                let form: FormParameters
                do throws(OAuthError) {
                    form = try await Self.acsForm(request)
                } catch {
                    throw await saml.service.failed(error, tenant: tenant, via: "saml", now: clock.now, traceID: context.requestID)
                }
                let completed = try await saml.finish(
                    tenant: tenant, samlResponse: form["SAMLResponse"], relayState: form["RelayState"],
                    loginCookie: request.cookies[SAMLSignIn.loginCookie]?.value, now: clock.now, traceID: context.requestID)
                return signedIn(completed, clearing: loginCookie("", path: saml.cookiePath(tenant), maxAge: 0))
            }
        }
    }

    /// The login cookie must come back on the IdP's cross-site POST to the ACS, which
    /// `SameSite=Lax` forbids: over https it is `SameSite=None; Secure`; over plain http (local
    /// use only) it has no SameSite attribute, which browsers treat as Lax with a short
    /// allowance for top-level POSTs.
    func loginCookie(_ value: String, path: String, maxAge: Int) -> String {
        var text = "\(SAMLSignIn.loginCookie)=\(value); Path=\(path); Max-Age=\(maxAge); HttpOnly"
        if oidc.service.settings.secureCookies { text += "; SameSite=None; Secure" }
        return text
    }

    static func acsForm(_ request: Request) async throws(OAuthError) -> FormParameters {
        let contentType = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard contentType == "application/x-www-form-urlencoded" else {
            throw .invalidRequest("the ACS takes an application/x-www-form-urlencoded form", reason: "Form: wrong content type")
        }
        let buffer: ByteBuffer
        do {
            var request = request
            buffer = try await request.collectBody(upTo: maximumACSBody)
        } catch {
            throw .invalidRequest("the form is too large", reason: "Size: the form is over \(maximumACSBody) bytes")
        }
        do {
            return try FormParameters(parsing: Array(buffer.readableBytesView))
        } catch {
            throw .invalidRequest("the form is malformed", reason: "Form: \(error.reason)")
        }
    }
}

/// The service provider's key pairs in the keys folder (`Keys/saml/`), sealed with the KEK when
/// one is set, generated on first use.
public struct KeyDirectorySAMLKeys: SAMLServiceProviderKeys {
    let directory: KeyDirectory

    public init(directory: KeyDirectory) { self.directory = directory }

    public func signingCredentials() throws -> ServiceProviderCredentials { try credentials("signing") }
    public func encryptionCredentials() throws -> ServiceProviderCredentials { try credentials("encryption") }

    private func credentials(_ purpose: String) throws -> ServiceProviderCredentials {
        let bytes = try directory.keyFile(folder: "saml", name: "\(purpose).json") {
            let made = try ServiceProviderCredentials.generate(commonName: "Tessera SAML SP \(purpose)", now: Date())
            let object: JSONValue = [
                "private_key_pem": .string(made.privateKeyPEM), "certificate": .string(Data(made.certificateDER).base64EncodedString()),
            ]
            return StrictJSON.serialize(object)
        }
        guard let object = try? StrictJSON.parse(bytes), let pem = object["private_key_pem"]?.stringValue,
            let certificate = object["certificate"]?.stringValue.flatMap({ Data(base64Encoded: $0) })
        else { throw KeyRingError.storage("saml/\(purpose).json is not a SAML key pair") }
        return try ServiceProviderCredentials(privateKeyPEM: pem, certificateDER: Array(certificate))
    }
}

/// Refreshes URL-sourced SAML metadata in the background (`SAMLMetadataSource.refreshDue`).
public struct SAMLMetadataRefreshService: Service {
    let source: SAMLMetadataSource
    let clock: any WallClock
    let logger: Logger
    let tick: Duration

    public init(source: SAMLMetadataSource, clock: any WallClock, logger: Logger, tick: Duration = .seconds(1)) {
        self.source = source
        self.clock = clock
        self.logger = logger
        self.tick = tick
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await Task.sleep(for: tick)
            } catch {
                return
            }
            do {
                let outcome = try await source.refreshDue(now: clock.now)
                if outcome.refreshed + outcome.failed > 0 {
                    logger.notice("SAML metadata refreshed", metadata: ["refreshed": "\(outcome.refreshed)", "failed": "\(outcome.failed)"])
                }
            } catch {
                logger.warning("SAML metadata refresh could not run", metadata: ["error": "\(error)"])
            }
        }
    }
}
