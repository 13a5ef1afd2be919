import Crypto
public import Foundation
import X509
public import _CryptoExtras

/// One RSA-2048 key pair of the service provider and its self-signed certificate (SAML metadata
/// carries certificates; trust comes from the metadata exchange, not from a CA). The broker has
/// two: one signs AuthnRequests, the other receives encrypted assertions.
public struct ServiceProviderCredentials: Sendable {
    public let privateKeyPEM: String
    public let certificateDER: [UInt8]
    public let signingKey: _RSA.Signing.PrivateKey

    public init(privateKeyPEM: String, certificateDER: [UInt8]) throws {
        signingKey = try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        let certificate = try Certificate(derEncoded: certificateDER)
        guard certificate.publicKey == Certificate.PublicKey(signingKey.publicKey) else {
            throw CredentialsError("the certificate is not for this private key")
        }
        self.privateKeyPEM = privateKeyPEM
        self.certificateDER = certificateDER
    }

    /// A new key pair with a certificate valid for ten years (rotation is explicit, by replacing
    /// the file; IdPs pin the certificate from the metadata, not its dates).
    public static func generate(commonName: String, now: Date) throws -> ServiceProviderCredentials {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let name = try DistinguishedName { CommonName(commonName) }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86400), issuer: name,
            subject: name, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            }, issuerPrivateKey: Certificate.PrivateKey(key))
        return try ServiceProviderCredentials(privateKeyPEM: key.pemRepresentation, certificateDER: try certificate.serializeAsPEM().derBytes)
    }

    public struct CredentialsError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
