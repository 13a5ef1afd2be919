public import Foundation

/// A DPoP proof that passed every check of ``DPoPProofVerifier`` for one request.
///
/// Only the verifier makes one (the initializer is internal), so code that takes this type can
/// rely on the checks having run. Replay is the exception: the caller still has to consume
/// ``jti`` once, see ``DPoPProofVerifier``.
public struct VerifiedDPoPProof: Sendable {
    /// The RFC 7638 SHA-256 thumbprint of ``publicKey``: the `cnf.jkt` a bound token carries
    /// and is compared with (RFC 9449 §6.1).
    public let jkt: String
    /// The proof's identifier, to be consumed once in a replay store (RFC 9449 §11.1).
    public let jti: String
    public let issuedAt: Date
    /// The server-provided nonce the proof carries, if any (RFC 9449 §8).
    public let nonce: String?
    /// The public key from the proof's `jwk` header, which signed the proof.
    public let publicKey: JWK

    init(jkt: String, jti: String, issuedAt: Date, nonce: String?, publicKey: JWK) {
        self.jkt = jkt
        self.jti = jti
        self.issuedAt = issuedAt
        self.nonce = nonce
        self.publicKey = publicKey
    }
}
