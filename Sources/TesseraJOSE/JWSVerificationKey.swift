import Crypto
import Foundation
import _CryptoExtras

/// A public key prepared once for repeated JWS verification (RFC 7515 §5.2 step 8).
///
/// Building the swift-crypto key object is the expensive part of a verification that reuses a
/// key, so this is built once per JWK (per JWKS refresh, per registered client) and shared.
public struct JWSVerificationKey: Sendable {
    public let jwk: JWK
    private let backing: Backing

    private enum Backing: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey, modulusByteCount: Int)
    }

    /// - Throws: what ``JWK/init(json:)`` throws for a bad key, and
    ///   ``JOSEError/malformed(_:)`` when the members do not form a valid public key (an EC
    ///   point off the curve, an RSA exponent BoringSSL refuses).
    public init(jwk: JWK) throws(JOSEError) {
        let material = try jwk.material()
        do {
            switch material {
            case .ec(.p256, let x, let y):
                backing = .p256(try P256.Signing.PublicKey(rawRepresentation: x + y))
            case .ec(.p384, let x, let y):
                backing = .p384(try P384.Signing.PublicKey(rawRepresentation: x + y))
            case .ed25519(let x):
                backing = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x))
            case .rsa(let n, let e):
                backing = .rsa(try _RSA.Signing.PublicKey(n: n, e: e), modulusByteCount: n.count)
            }
        } catch {
            throw .malformed("JWK is not a valid public key")
        }
        self.jwk = jwk
    }

    /// Parses a public JWK and prepares it.
    public init(json: JSONValue) throws(JOSEError) {
        try self.init(jwk: JWK(json: json))
    }

    /// Whether `signature` is a valid `alg` signature over `data` by this key.
    ///
    /// Refuses (returns `false`) when ``JWK/canVerify(_:)`` refuses `alg`, so the algorithm is
    /// bound to the key and never taken from the token alone (RFC 8725 §3.1). ECDSA signatures
    /// must be the fixed-length `r || s` of RFC 7518 §3.4, never DER; RSA signatures must be as
    /// long as the modulus (RFC 8017 §8.2.2 step 1).
    public func isValidSignature(_ signature: [UInt8], for data: [UInt8], alg: JWSAlgorithm) -> Bool {
        guard jwk.canVerify(alg) else { return false }
        switch (backing, alg) {
        case (.p256(let key), .ES256):
            guard signature.count == 64,
                let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(ecdsa, for: data)
        case (.p384(let key), .ES384):
            guard signature.count == 96,
                let ecdsa = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(ecdsa, for: data)
        case (.ed25519(let key), .EdDSA):
            return signature.count == 64 && key.isValidSignature(signature, for: data)
        case (.rsa(let key, let modulusByteCount), _):
            guard signature.count == modulusByteCount else { return false }
            let rsa = _RSA.Signing.RSASignature(rawRepresentation: signature)
            // swift-crypto's `.PSS` uses MGF1 with the message hash and a salt as long as the
            // hash, which is exactly RFC 7518 §3.5.
            switch alg {
            case .RS256: return key.isValidSignature(rsa, for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
            case .RS384: return key.isValidSignature(rsa, for: SHA384.hash(data: data), padding: .insecurePKCS1v1_5)
            case .RS512: return key.isValidSignature(rsa, for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
            case .PS256: return key.isValidSignature(rsa, for: SHA256.hash(data: data), padding: .PSS)
            case .PS384: return key.isValidSignature(rsa, for: SHA384.hash(data: data), padding: .PSS)
            case .PS512: return key.isValidSignature(rsa, for: SHA512.hash(data: data), padding: .PSS)
            case .ES256, .ES384, .EdDSA: return false
            }
        default:
            return false
        }
    }
}
