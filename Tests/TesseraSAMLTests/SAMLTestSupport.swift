import Foundation
import TesseraCore
@testable import TesseraSAML

/// Documents for the verifier's tests: unsigned, so they exercise every check that comes before
/// the signature (the signed paths run against a real IdP in Tests/Interop/test_saml_*.py).
enum SAMLFixtures {
    static let sp = ServiceProviderEndpoints(issuer: "http://127.0.0.1:8080", tenant: TenantID("acme")!)
    static let idpEntity = "https://idp.example.test/metadata"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func time(_ offset: TimeInterval) -> String { SAMLTime.format(now.addingTimeInterval(offset)) }

    static func assertion(id: String = "_a1", nameID: String = "ada@example.test", extra: String = "") -> String {
        """
        <saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="\(id)" Version="2.0" IssueInstant="\(time(0))">\
        <saml:Issuer>\(idpEntity)</saml:Issuer>\
        <saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">\(nameID)</saml:NameID>\
        <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">\
        <saml:SubjectConfirmationData Recipient="\(sp.acsURL)" NotOnOrAfter="\(time(300))" InResponseTo="_req"/>\
        </saml:SubjectConfirmation></saml:Subject>\
        <saml:Conditions NotBefore="\(time(-60))" NotOnOrAfter="\(time(300))"><saml:AudienceRestriction>\
        <saml:Audience>\(sp.entityID)</saml:Audience></saml:AudienceRestriction></saml:Conditions>\
        <saml:AuthnStatement AuthnInstant="\(time(0))"/>\(extra)</saml:Assertion>
        """
    }

    static func response(
        destination: String? = sp.acsURL, status: String = "urn:oasis:names:tc:SAML:2.0:status:Success", body: String? = nil,
        prolog: String = ""
    ) -> String {
        let destinationAttribute = destination.map { " Destination=\"\($0)\"" } ?? ""
        return """
            \(prolog)<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0" \
            IssueInstant="\(time(0))"\(destinationAttribute) InResponseTo="_req">\
            <samlp:Status><samlp:StatusCode Value="\(status)"/></samlp:Status>\(body ?? assertion())</samlp:Response>
            """
    }

    static func encoded(_ xml: String) -> String { Data(xml.utf8).base64EncodedString() }

    static func idpMetadata(certificates: [[UInt8]], ssoBinding: String = IdPMetadata.redirectBinding, validUntil: String? = nil) -> String {
        let keys = certificates.map {
            "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\(Data($0).base64EncodedString(options: .lineLength64Characters))"
                + "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        }.joined()
        let until = validUntil.map { " validUntil=\"\($0)\"" } ?? ""
        return """
            <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" \
            entityID="\(idpEntity)"\(until)><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\
            \(keys)<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>\
            <md:SingleSignOnService Binding="\(ssoBinding)" Location="https://idp.example.test/sso"/>\
            </md:IDPSSODescriptor></md:EntityDescriptor>
            """
    }

    /// One generated key pair shared by the tests (RSA generation is slow in debug builds).
    static let credentials: ServiceProviderCredentials = try! ServiceProviderCredentials.generate(commonName: "test", now: now)
    static let otherCredentials: ServiceProviderCredentials = try! ServiceProviderCredentials.generate(commonName: "other", now: now)

    static var trust: IdPTrust {
        let metadata = try! IdPMetadata(xml: Array(idpMetadata(certificates: [credentials.certificateDER]).utf8), now: now)
        return try! IdPTrust(metadata: metadata, signedPart: .assertion, allowSHA1: false)
    }
}
