public import Foundation

/// The SP's metadata for one tenant (`GET /sso/{tenant}/saml/metadata`): what an IdP admin imports.
public enum ServiceProviderMetadata {
    public static let contentType = "application/samlmetadata+xml"

    public static func document(
        serviceProvider: ServiceProviderEndpoints, signing: ServiceProviderCredentials, encryption: ServiceProviderCredentials,
        wantAssertionsSigned: Bool
    ) -> String {
        func keyDescriptor(_ use: String, _ credentials: ServiceProviderCredentials, methods: [String]) -> String {
            let certificate = Data(credentials.certificateDER).base64EncodedString()
            let listed = methods.map { "<md:EncryptionMethod Algorithm=\"\($0)\"/>" }.joined()
            return """
                <md:KeyDescriptor use="\(use)"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\(certificate)</ds:X509Certificate>\
                </ds:X509Data></ds:KeyInfo>\(listed)</md:KeyDescriptor>
                """
        }
        let encryptionMethods = [
            "http://www.w3.org/2009/xmlenc11#aes256-gcm", "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            "http://www.w3.org/2001/04/xmlenc#aes256-cbc", "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        ]
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" \
            entityID="\(XMLText.escape(serviceProvider.entityID))">\
            <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="\(wantAssertionsSigned)" \
            protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\
            \(keyDescriptor("signing", signing, methods: []))\
            \(keyDescriptor("encryption", encryption, methods: encryptionMethods))\
            <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>\
            <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>\
            <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>\
            <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" \
            Location="\(XMLText.escape(serviceProvider.acsURL))" index="0" isDefault="true"/>\
            </md:SPSSODescriptor></md:EntityDescriptor>

            """
    }
}
