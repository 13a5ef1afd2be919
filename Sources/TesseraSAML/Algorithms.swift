import CXMLSec

/// The XML Signature and Encryption algorithms the broker accepts, by URI, with the xmlsec
/// transform each enables. Anything not listed is refused before any cryptography runs, and
/// xmlsec's own allow-lists enforce the same sets.
enum Algorithms {
    static let exclusiveC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
    static let enveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

    struct Entry: Sendable {
        let uri: String
        let usesSHA1: Bool
        let transform: @Sendable () -> xmlSecTransformId?
    }

    static let signatureMethods: [Entry] = [
        Entry(uri: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", usesSHA1: false, transform: tessera_transform_rsa_sha256),
        Entry(uri: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384", usesSHA1: false, transform: tessera_transform_rsa_sha384),
        Entry(uri: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512", usesSHA1: false, transform: tessera_transform_rsa_sha512),
        Entry(uri: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", usesSHA1: false, transform: tessera_transform_ecdsa_sha256),
        Entry(uri: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384", usesSHA1: false, transform: tessera_transform_ecdsa_sha384),
        Entry(uri: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512", usesSHA1: false, transform: tessera_transform_ecdsa_sha512),
        Entry(uri: "http://www.w3.org/2000/09/xmldsig#rsa-sha1", usesSHA1: true, transform: tessera_transform_rsa_sha1),
        Entry(uri: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1", usesSHA1: true, transform: tessera_transform_ecdsa_sha1),
    ]

    static let digestMethods: [Entry] = [
        Entry(uri: "http://www.w3.org/2001/04/xmlenc#sha256", usesSHA1: false, transform: tessera_transform_sha256),
        Entry(uri: "http://www.w3.org/2001/04/xmldsig-more#sha384", usesSHA1: false, transform: tessera_transform_sha384),
        Entry(uri: "http://www.w3.org/2001/04/xmlenc#sha512", usesSHA1: false, transform: tessera_transform_sha512),
        Entry(uri: "http://www.w3.org/2000/09/xmldsig#sha1", usesSHA1: true, transform: tessera_transform_sha1),
    ]

    /// Content encryption: AES-CBC and AES-GCM.
    static let contentEncryption: [Entry] = [
        Entry(uri: "http://www.w3.org/2001/04/xmlenc#aes128-cbc", usesSHA1: false, transform: tessera_transform_aes128_cbc),
        Entry(uri: "http://www.w3.org/2001/04/xmlenc#aes192-cbc", usesSHA1: false, transform: tessera_transform_aes192_cbc),
        Entry(uri: "http://www.w3.org/2001/04/xmlenc#aes256-cbc", usesSHA1: false, transform: tessera_transform_aes256_cbc),
        Entry(uri: "http://www.w3.org/2009/xmlenc11#aes128-gcm", usesSHA1: false, transform: tessera_transform_aes128_gcm),
        Entry(uri: "http://www.w3.org/2009/xmlenc11#aes192-gcm", usesSHA1: false, transform: tessera_transform_aes192_gcm),
        Entry(uri: "http://www.w3.org/2009/xmlenc11#aes256-gcm", usesSHA1: false, transform: tessera_transform_aes256_gcm),
    ]

    /// Key transport: RSA-OAEP only. RSA PKCS#1 v1.5 (`rsa-1_5`) is refused: its padding oracle
    /// (Bleichenbacher) is practical against XML Encryption.
    static let keyTransport: [Entry] = [
        Entry(uri: "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", usesSHA1: false, transform: tessera_transform_rsa_oaep)
    ]

    static func find(_ uri: String?, in list: [Entry]) -> Entry? { list.first { $0.uri == uri } }
}
