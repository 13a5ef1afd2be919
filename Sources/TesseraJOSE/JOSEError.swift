/// Why a JOSE object, key or JSON text was refused.
///
/// Every associated string is a short, generic reason meant for logs. It never carries key
/// material, token content or member names taken from the input, so an error can be logged or
/// audited without leaking what an attacker sent or what a key holds.
public enum JOSEError: Error, Sendable, Equatable {
    /// The input does not follow the grammar of JSON, base64url, compact JWS or JWK.
    case malformed(String)
    /// An algorithm, key type or curve this module does not implement (including `none` and HS*).
    case unsupportedAlgorithm(String)
    /// A supported algorithm that the caller did not allow for this verification.
    case algorithmNotAllowed(String)
    /// The key cannot be used with the requested algorithm, or private and public parts disagree.
    case keyMismatch(String)
    /// The signature does not verify.
    case badSignature
    /// RFC 7515 §4.1.11: a `crit` header names an extension the caller does not understand.
    case unknownCriticalHeader(String)
    /// RFC 7515 §4 and RFC 8259 §4: the same member name appears twice in one object.
    case duplicateMember(String)
    /// Private or symmetric key material appeared where only a public key is acceptable.
    case privateKeyMaterial
    /// No usable key was found.
    case unknownKey
}
