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
        let body = "{\"error\":\"\(error.code.rawValue)\",\"error_description\":\(JSONText.quote(error.publicDescription))}"
        return Response(
            status: .init(code: error.code.httpStatus), headers: headers,
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

enum JSONText {
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
