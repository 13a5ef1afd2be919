public import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
public import TesseraCore
public import TesseraJOSE
public import TesseraOAuth

/// Routes of the OAuth endpoints. Translates HTTP to domain calls and back; nothing else.
public struct OAuthController: Sendable {
    let broker: Broker
    let metrics: BrokerMetrics

    public init(broker: Broker, metrics: BrokerMetrics) {
        self.broker = broker
        self.metrics = metrics
    }

    public func addRoutes(to router: Router<TesseraRequestContext>) {
        router.post("/oauth2/token") { request, context in
            try await respond(request, context) { tokenRequest in
                do throws(OAuthError) {
                    let token = try await broker.tokenEndpoint.handle(tokenRequest)
                    metrics.grants(outcome: "issued").increment()
                    var response = Self.json(StrictJSON.serialize(.object(token.jsonObject)), noStore: true)
                    // RFC 9449 §8.2: a fresh nonce with each answer to a DPoP client saves it a round trip.
                    if let nonces = broker.dpopNonces, !tokenRequest.dpopProofs.isEmpty {
                        response.headers[.dpopNonce] = nonces.current(now: broker.clock.now)
                    }
                    return response
                } catch {
                    metrics.grants(outcome: error.code.rawValue).increment()
                    throw error
                }
            }
        }
        router.post("/oauth2/introspect") { request, context in
            try await respond(request, context) { tokenRequest in
                let answer = try await broker.introspection.handle(tokenRequest)
                return Self.json(StrictJSON.serialize(.object(answer)), noStore: true)
            }
        }
        router.post("/oauth2/revoke") { request, context in
            try await respond(request, context) { tokenRequest in
                try await broker.revocation.handle(tokenRequest)
                return Response(status: .ok, headers: [.cacheControl: "no-store"])
            }
        }
        // The form endpoints take POST only (RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1).
        for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
            router.get(RouterPath(path)) { _, _ in
                var response = OAuthErrorResponse.response(for: .invalidRequest("this endpoint accepts POST only"))
                response.status = .methodNotAllowed
                response.headers[.allow] = "POST"
                return response
            }
        }
        router.get("/oauth2/jwks") { _, _ in
            var response = Self.json(StrictJSON.serialize(broker.keyRing.jwks.json), noStore: false)
            // Short enough that a rotation is seen well within the pre-publication period.
            response.headers[.cacheControl] = "public, max-age=60"
            return response
        }
        let metadata: @Sendable (Request, TesseraRequestContext) async throws -> Response = { _, _ in
            let document = AuthorizationServerMetadata.document(settings: broker.settings, grantTypes: broker.tokenEndpoint.grantTypes)
            var response = Self.json(StrictJSON.serialize(.object(document)), noStore: false)
            response.headers[.cacheControl] = "public, max-age=300"
            return response
        }
        router.get("/.well-known/oauth-authorization-server", use: metadata)
        router.get("/.well-known/openid-configuration", use: metadata)
    }

    /// Reads and checks the form body, runs `body`, renders any OAuth error.
    private func respond(
        _ request: Request, _ context: TesseraRequestContext, _ body: (TokenRequest) async throws -> Response
    ) async throws -> Response {
        do {
            let tokenRequest = try await Self.tokenRequest(request, context)
            return try await body(tokenRequest)
        } catch let error as OAuthError {
            if error.code == .serverError || error.code == .temporarilyUnavailable {
                context.logger.error("oauth request failed", metadata: ["error": "\(error.code.rawValue)", "reason": "\(error.reason)"])
            } else {
                context.logger.info("oauth request refused", metadata: ["error": "\(error.code.rawValue)", "reason": "\(error.reason)"])
            }
            return OAuthErrorResponse.response(for: error)
        } catch {
            context.logger.error("oauth request failed unexpectedly", metadata: ["error": "\(type(of: error))"])
            return OAuthErrorResponse.response(for: OAuthError(.serverError, "internal error"))
        }
    }

    static func tokenRequest(_ request: Request, _ context: TesseraRequestContext) async throws(OAuthError) -> TokenRequest {
        let contentType = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard contentType == "application/x-www-form-urlencoded" else {
            throw .invalidRequest("the body must be application/x-www-form-urlencoded")
        }
        let buffer: ByteBuffer
        do {
            var request = request
            buffer = try await request.collectBody(upTo: HTTPLimits.maximumBodySize)
        } catch {
            throw .invalidRequest("the request body is too large", reason: "body over \(HTTPLimits.maximumBodySize) bytes")
        }
        let form = try FormParameters(parsing: Array(buffer.readableBytesView))
        let authorizations = request.headers[values: .authorization]
        guard authorizations.count <= 1 else { throw .invalidRequest("more than one Authorization header") }
        return TokenRequest(
            form: form, authorization: authorizations.first, sourceAddress: context.remoteAddress, traceID: context.requestID,
            dpopProofs: request.headers[values: .dpop])
    }

    static func json(_ bytes: some Sequence<UInt8>, noStore: Bool) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if noStore {
            headers[.cacheControl] = "no-store"
            headers[.pragma] = "no-cache"
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension TesseraRequestContext {
    /// The request id given by `RequestIDMiddleware`, also the audit record's `trace_id`.
    var requestID: String { logger[metadataKey: "request_id"]?.description ?? "-" }
}
