public import Foundation
public import TesseraCore
import TesseraJOSE

/// What a request presented to authenticate its client, before anything is checked
/// (RFC 6749 §2.3.1, RFC 7521 §4.2, RFC 7523 §2.2).
public struct PresentedClientCredentials: Sendable {
    public enum Method: Sendable {
        case secretBasic(clientID: String, secret: String)
        case secretPost(clientID: String, secret: String)
        case privateKeyJWT(assertion: String, claimedClientID: String?)
        /// Only a `client_id`: a public client, which this broker does not register.
        case none(clientID: String?)
    }

    public static let jwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    public let method: Method

    /// The client id the request claims, for throttling and audit before it is proven.
    public var claimedClientID: String? {
        switch method {
        case .secretBasic(let id, _), .secretPost(let id, _): id
        case .privateKeyJWT(_, let id): id ?? Self.unverifiedIssuer(of: assertionText)
        case .none(let id): id
        }
    }

    private var assertionText: String? {
        if case .privateKeyJWT(let assertion, _) = method { return assertion }
        return nil
    }

    /// Reads the credentials from the `Authorization` header and the form.
    /// RFC 6749 §2.3: a client must not use more than one method in a request.
    public init(authorization: String?, form: FormParameters) throws(OAuthError) {
        var methods: [Method] = []
        if let authorization {
            methods.append(try Self.parseBasic(authorization))
        }
        if let secret = form["client_secret"] {
            guard let id = form["client_id"] else {
                throw .invalidRequest("client_secret without client_id")
            }
            methods.append(.secretPost(clientID: id, secret: secret))
        }
        if form.contains("client_assertion") || form.contains("client_assertion_type") {
            guard form["client_assertion_type"] == Self.jwtBearerAssertionType else {
                throw .invalidClient(reason: "unsupported client_assertion_type")
            }
            guard let assertion = form["client_assertion"] else {
                throw .invalidRequest("client_assertion is missing")
            }
            methods.append(.privateKeyJWT(assertion: assertion, claimedClientID: form["client_id"]))
        }
        guard methods.count <= 1 else {
            throw .invalidRequest("more than one client authentication method", reason: "RFC 6749 §2.3: one method per request")
        }
        method = methods.first ?? .none(clientID: form["client_id"])
        if case .secretBasic(let id, _) = method, let formID = form["client_id"], formID != id {
            throw .invalidRequest("client_id does not match the authenticated client")
        }
    }

    /// `Basic base64(urlencode(id) ":" urlencode(secret))`, RFC 6749 §2.3.1 and RFC 7617.
    static func parseBasic(_ header: String) throws(OAuthError) -> Method {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic" else {
            throw .invalidClient(reason: "unsupported Authorization scheme")
        }
        guard let decoded = Data(base64Encoded: String(parts[1])),
            let colon = decoded.firstIndex(of: UInt8(ascii: ":")),
            let id = FormParameters.decode(ArraySlice(decoded[decoded.startIndex..<colon])),
            let secret = FormParameters.decode(ArraySlice(decoded[decoded.index(after: colon)...])),
            !id.isEmpty, !secret.isEmpty
        else { throw .invalidClient(reason: "malformed Basic credentials") }
        return .secretBasic(clientID: id, secret: secret)
    }

    /// The `iss` of an assertion read without verification: it only says which client's registered
    /// keys to try, and keys throttling and audit. The signature and the iss/sub policy decide.
    private static func unverifiedIssuer(of assertion: String?) -> String? {
        guard let assertion else { return nil }
        let segments = assertion.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3, segments[1].utf8.count < 8192, let payload = Base64URL.decode(segments[1]),
            let issuer = (try? StrictJSON.parse(payload))?["iss"]?.stringValue, issuer.utf8.count <= 128
        else { return nil }
        return issuer
    }
}
