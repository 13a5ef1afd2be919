/// The JWS signature algorithms this module implements (RFC 7518 §3.1, RFC 8037 §3.1).
///
/// `none` and the HMAC algorithms are deliberately absent: a header naming them fails to parse
/// with ``JOSEError/unsupportedAlgorithm(_:)``, so no code path can be tricked into accepting an
/// unsigned token or using a public key as an HMAC secret (RFC 8725 §2.1, §3.1).
public enum JWSAlgorithm: String, Sendable, Hashable, Codable, CaseIterable {
    /// ECDSA P-256 with SHA-256 (RFC 7518 §3.4).
    case ES256
    /// ECDSA P-384 with SHA-384 (RFC 7518 §3.4).
    case ES384
    /// Ed25519 (RFC 8037 §3.1).
    case EdDSA
    /// RSASSA-PKCS1-v1_5 with SHA-2 (RFC 7518 §3.3).
    case RS256, RS384, RS512
    /// RSASSA-PSS with SHA-2, MGF1 with the same hash, salt as long as the hash (RFC 7518 §3.5).
    case PS256, PS384, PS512

    var isRSA: Bool {
        switch self {
        case .RS256, .RS384, .RS512, .PS256, .PS384, .PS512: true
        case .ES256, .ES384, .EdDSA: false
        }
    }
}
