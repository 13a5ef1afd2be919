public import Foundation
import CXMLSec

/// What the broker takes from an IdP's SAML metadata: who it is, where to send AuthnRequests and
/// which certificates may sign for it (several during a rollover). Parsed with the same strict
/// parser as responses; anything missing is an error, never a default.
public struct IdPMetadata: Sendable, Hashable {
    public static let maximumSize = 1 << 20
    public static let redirectBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

    public let entityID: String
    /// The HTTP-Redirect SingleSignOnService location (where the broker's AuthnRequest goes).
    public let singleSignOnURL: String
    /// DER certificates whose keys may sign responses and assertions.
    public let signingCertificates: [[UInt8]]
    public let nameIDFormats: [String]
    public let validUntil: Date?
    public let wantAuthnRequestsSigned: Bool

    public init(xml: [UInt8], now: Date) throws(SAMLMetadataError) {
        do {
            try XMLSecurity.ready()
        } catch {
            throw SAMLMetadataError("the XML security library is unavailable: \(error)")
        }
        guard xml.count <= Self.maximumSize else { throw SAMLMetadataError("the metadata is larger than 1 MiB") }
        let tree: XMLTree
        do {
            tree = try XMLTree(parsing: xml)
        } catch .doctype {
            throw SAMLMetadataError("the metadata has a DOCTYPE, which is refused")
        } catch {
            throw SAMLMetadataError("the metadata is not well-formed XML")
        }
        guard let root = tree.root else { throw SAMLMetadataError("the metadata is empty") }
        let entities: [XMLElement]
        if root.is("EntityDescriptor", in: Namespace.metadata) {
            entities = [root]
        } else if root.is("EntitiesDescriptor", in: Namespace.metadata) {
            entities = root.descendants { $0.is("EntityDescriptor", in: Namespace.metadata) }
        } else {
            throw SAMLMetadataError("the document is not SAML metadata (no md:EntityDescriptor)")
        }
        let idps = entities.filter { !$0.children("IDPSSODescriptor", in: Namespace.metadata).isEmpty }
        guard idps.count == 1, let entity = idps.first else {
            throw SAMLMetadataError("the metadata must describe exactly one identity provider, it describes \(idps.count)")
        }
        guard let entityID = entity.attribute("entityID"), !entityID.isEmpty, entityID.utf8.count <= 1024 else {
            throw SAMLMetadataError("the EntityDescriptor has no entityID")
        }
        let descriptors = entity.children("IDPSSODescriptor", in: Namespace.metadata)
        guard descriptors.count == 1, let idp = descriptors.first else {
            throw SAMLMetadataError("the entity must have exactly one IDPSSODescriptor")
        }
        guard (idp.attribute("protocolSupportEnumeration") ?? "").split(separator: " ").contains("urn:oasis:names:tc:SAML:2.0:protocol")
        else { throw SAMLMetadataError("the IdP does not support SAML 2.0 (protocolSupportEnumeration)") }

        let redirect = idp.children("SingleSignOnService", in: Namespace.metadata).first {
            $0.attribute("Binding") == Self.redirectBinding
        }
        guard let location = redirect?.attribute("Location"), let url = URL(string: location),
            url.scheme == "https" || url.scheme == "http", url.host != nil
        else { throw SAMLMetadataError("the IdP has no HTTP-Redirect SingleSignOnService with an http(s) Location") }

        var certificates: [[UInt8]] = []
        for descriptor in idp.children("KeyDescriptor", in: Namespace.metadata) {
            let use = descriptor.attribute("use")
            guard use == nil || use == "signing" else { continue }
            let found = descriptor.descendants { $0.is("X509Certificate", in: Namespace.dsig) }
            for element in found {
                guard let der = Base64Text.decode(element.text), !der.isEmpty else {
                    throw SAMLMetadataError("a signing certificate is not base64 DER")
                }
                guard TrustedKey(certificate: Array(der)) != nil else {
                    throw SAMLMetadataError("a signing certificate cannot be read")
                }
                if !certificates.contains(Array(der)) { certificates.append(Array(der)) }
            }
        }
        guard !certificates.isEmpty else { throw SAMLMetadataError("the IdP publishes no signing certificate") }
        guard certificates.count <= 8 else { throw SAMLMetadataError("the IdP publishes more than 8 signing certificates") }

        var validUntil: Date?
        if let text = entity.attribute("validUntil") ?? root.attribute("validUntil") {
            guard let parsed = SAMLTime.parse(text) else { throw SAMLMetadataError("validUntil is not a dateTime") }
            guard parsed > now else { throw SAMLMetadataError("the metadata expired (validUntil has passed)") }
            validUntil = parsed
        }
        self.entityID = entityID
        singleSignOnURL = location
        signingCertificates = certificates
        nameIDFormats = idp.children("NameIDFormat", in: Namespace.metadata).map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }
        self.validUntil = validUntil
        wantAuthnRequestsSigned = idp.attribute("WantAuthnRequestsSigned") == "true"
    }
}

public struct SAMLMetadataError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// xs:dateTime as SAML uses it (SAML core §1.3.3): UTC with `Z`, optional fractional seconds.
/// Parsed by hand: it runs several times per response, and nothing else is accepted.
enum SAMLTime {
    static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 40, bytes.last == UInt8(ascii: "Z"), bytes[4] == UInt8(ascii: "-"),
            bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month), (1...31).contains(day), hour < 24,
            minute < 60, second < 61
        else { return nil }
        var fraction = 0.0
        if bytes.count > 20 {
            guard bytes[19] == UInt8(ascii: "."), bytes.count > 21, let digits = number(20..<(bytes.count - 1)) else { return nil }
            fraction = Double(digits) / pow(10, Double(bytes.count - 21))
        }
        // Days from 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's days_from_civil).
        let shifted = month <= 2 ? year - 1 : year
        let era = shifted / 400
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Date(timeIntervalSince1970: Double(days * 86400 + hour * 3600 + minute * 60 + second) + fraction)
    }

    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }
}
