public import Foundation
public import HTTPTypes
public import Hummingbird
public import TesseraCore

/// Renders an `OAuthError` as RFC 6749 §5.2 JSON with `Cache-Control: no-store`, plus
/// `WWW-Authenticate` on 401 (§5.2: required when the client used the Authorization header) and
/// `Retry-After` where the error carries one. Only the public description is sent.
public enum OAuthErrorResponse {
    public static func response(for error: OAuthError) -> Response {
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store", .pragma: "no-cache"]
        if error.code == .invalidClient {
            headers[.wwwAuthenticate] = "Basic realm=\"tessera\", error=\"invalid_client\""
        }
        if let nonce = error.dpopNonce {
            headers[.dpopNonce] = nonce
        }
        if let retryAfter = error.retryAfter {
            headers[.retryAfter] = String(retryAfter)
        }
        var body = JSONWriter(capacity: 128)
        body.beginObject()
        body.field("error", error.code.rawValue)
        body.field("error_description", error.publicDescription)
        body.endObject()
        return Response(
            status: .init(code: error.code.httpStatus), headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: body.bytes)))
    }
}
