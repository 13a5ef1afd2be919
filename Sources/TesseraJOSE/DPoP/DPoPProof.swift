/// An unverified DPoP proof (RFC 9449 §4.2), as received in the `DPoP` request header.
///
/// Nothing in it is trusted and nothing of it is readable: the only use of a value of this type
/// is to hand it to ``DPoPProofVerifier/verify(_:_:)``, which returns a ``VerifiedDPoPProof``.
public struct DPoPProof: Sendable {
    /// Longer header values are refused before any decoding. A proof is a small header, five or
    /// six short claims and a signature; with an 8192-bit RSA key, the largest ``JWK`` accepts,
    /// it still stays under 3.5 KiB.
    public static let maxLength = 4096

    let jws: CompactJWS

    /// Parses the value of the request's one `DPoP` header (RFC 9449 §4.3 items 1–2).
    ///
    /// The caller passes the single field value and refuses a request with several `DPoP`
    /// fields. The value is taken as is: two proofs joined by a comma, surrounding whitespace or
    /// anything that is not exactly one compact JWS fails here, as do the refusals of
    /// ``CompactJWS/init(parsing:maxLength:understoodCritical:)`` — more than ``maxLength``
    /// bytes, non-canonical base64url, duplicate header members, an `alg` outside
    /// ``JWSAlgorithm`` (so `none` and HS* never get further), an unknown `crit`, and a `jwk`
    /// that is not a valid public key (one with private members included).
    ///
    /// - Throws: ``DPoPError/invalidProof(_:)`` with a reason starting with `Syntax`.
    public init(parsing header: String) throws(DPoPError) {
        do throws(JOSEError) {
            jws = try CompactJWS(parsing: header, maxLength: Self.maxLength)
        } catch {
            throw .invalidProof("Syntax: \(error.logReason)")
        }
    }
}
