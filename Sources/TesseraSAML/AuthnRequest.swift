public import Foundation
import Crypto
import TesseraCore
public import _CryptoExtras

/// The broker's AuthnRequest, sent by the HTTP-Redirect binding (SAML bindings §3.4): DEFLATE,
/// base64, and a detached RSA-SHA256 signature over the query string as sent (§3.4.4.1).
public struct AuthnRequest: Sendable {
    public static let signatureAlgorithm = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    static let postBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

    /// An xs:ID (an NCName: starts with a letter or `_`) with 160 random bits.
    public let id: String
    public let xml: String

    public init(serviceProvider: ServiceProviderEndpoints, destination: String, now: Date) {
        id = "_" + Secrets.randomBytes(20).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        xml = """
            <samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" \
            ID="\(id)" Version="2.0" IssueInstant="\(SAMLTime.format(now))" Destination="\(XMLText.escape(destination))" \
            AssertionConsumerServiceURL="\(XMLText.escape(serviceProvider.acsURL))" ProtocolBinding="\(Self.postBinding)">\
            <saml:Issuer>\(XMLText.escape(serviceProvider.entityID))</saml:Issuer>\
            <samlp:NameIDPolicy AllowCreate="true"/>\
            </samlp:AuthnRequest>
            """
    }

    /// The IdP's SSO URL with `SAMLRequest`, `SigAlg` and `Signature`.
    public func redirectURL(to destination: String, signingKey: _RSA.Signing.PrivateKey) throws -> String {
        let encoded = Data(Deflate.stored(Array(xml.utf8))).base64EncodedString()
        let signed = "SAMLRequest=\(URLQuery.escape(encoded))&SigAlg=\(URLQuery.escape(Self.signatureAlgorithm))"
        let signature = try signingKey.signature(for: SHA256.hash(data: Array(signed.utf8)), padding: .insecurePKCS1v1_5)
        let query = signed + "&Signature=" + URLQuery.escape(signature.rawRepresentation.base64EncodedString())
        return destination + (destination.contains("?") ? "&" : "?") + query
    }
}

/// A raw DEFLATE stream (RFC 1951) of stored blocks: valid for every inflater, and an
/// AuthnRequest is small enough that compressing it gains nothing worth a dependency.
enum Deflate {
    static func stored(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var offset = 0
        repeat {
            let length = min(65535, bytes.count - offset)
            let final: UInt8 = offset + length == bytes.count ? 1 : 0
            output.append(final)  // BFINAL, BTYPE = 00 (stored)
            output += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            output += bytes[offset..<offset + length]
            offset += length
        } while offset < bytes.count
        return output
    }
}

enum URLQuery {
    static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    static func escape(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) {
                result.append(Character(UnicodeScalar(byte)))
            } else {
                result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return result
    }
}

enum XMLText {
    static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            default: result.append(character)
            }
        }
        return result
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
