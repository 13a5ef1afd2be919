import Crypto

/// The `ath` claim of a DPoP proof: the base64url SHA-256 hash of the ASCII access token
/// (RFC 9449 §4.2).
public enum DPoPAccessTokenHash {
    public static func of(_ token: String) -> String {
        // Access tokens are ASCII (RFC 6750 §2.1 b64token), where UTF-8 and ASCII coincide.
        Base64URL.encode(SHA256.hash(data: Array(token.utf8)))
    }
}
