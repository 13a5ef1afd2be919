public import Foundation

/// Verifies a DPoP proof against the request it came with (RFC 9449 §4.3). Pure: no I/O, no
/// store, no clock of its own (`now` comes in the ``DPoPRequestContext``).
///
/// Order of checks, refusing on the first failure (the reason starts with the name in bold):
/// 0. **Syntax**, in ``DPoPProof/init(parsing:)``: one strict compact JWS of at most 4 KiB;
///    `none` and HS* never parse, nor does a `jwk` with private members;
/// 1. **Typ**: header `typ` is exactly `dpop+jwt`;
/// 2. **Algorithm**: `alg` is in ``allowedAlgorithms``;
/// 3. **EmbeddedKey**: header `jwk` present and public only;
/// 4. **KeyType**: the `jwk` fits `alg` (key type, curve; its `alg` and `use` if present);
/// 5. **Signature**: the signature verifies with that `jwk`;
/// 6. **Claims**: the payload, read only now, is a strict JSON object;
/// 7. **JTI**: `jti` is a non-empty string of at most 256 bytes;
/// 8. **HTM**: `htm` equals the request method exactly;
/// 9. **HTU**: `htu` equals the request URL, both normalised by ``DPoPURL/normalized(_:)``
///    (query and fragment ignored);
/// 10. **IAT**: `iat` is a number within ±``iatWindow`` of now;
/// 11. **ATH**: with an access token, `ath` is its hash; without one, no `ath`;
/// 12. **Nonce**: a `nonce`, if present, is a string; when the context expects nonces, one it
///     accepts — else ``DPoPError/useNonce``, which is therefore only ever returned for a
///     proof that passed every other check.
///
/// **Replay is not checked here.** The caller must consume ``VerifiedDPoPProof/jti`` exactly
/// once with an atomic insert-if-absent in its replay store (RFC 9449 §11.1), keyed by
/// ``VerifiedDPoPProof/jkt`` and `jti` so that one client cannot spend another's identifiers,
/// and keep it until ``VerifiedDPoPProof/issuedAt`` + ``iatWindow``, after which check 10
/// refuses the proof anyway. Binding to a token (`cnf.jkt` equal to ``VerifiedDPoPProof/jkt``,
/// RFC 9449 §7.1) is also the caller's.
public struct DPoPProofVerifier: Sendable {
    /// RFC 9449 §4.2 asks for asymmetric algorithms; these are the ones clients use. `none` and
    /// HS* are not ``JWSAlgorithm`` cases at all.
    public static let allowedAlgorithms: Set<JWSAlgorithm> = [.ES256, .EdDSA, .RS256, .PS256]

    /// How far `iat` may be from now, either way (RFC 9449 §4.3 item 11 leaves it to the server).
    public static let defaultIATWindow: TimeInterval = 60

    /// Accepted `|now - iat|`, in seconds.
    public var iatWindow: TimeInterval

    public init(iatWindow: TimeInterval = DPoPProofVerifier.defaultIATWindow) {
        self.iatWindow = iatWindow
    }

    static let proofPolicies: [any DPoPProofPolicy] = [
        TypPolicy(), AlgorithmPolicy(allowed: allowedAlgorithms), EmbeddedKeyPolicy(), KeyTypePolicy(),
        SignaturePolicy(),
    ]

    var claimPolicies: [any DPoPClaimPolicy] {
        [JTIPolicy(), HTMPolicy(), HTUPolicy(), IATPolicy(window: iatWindow), ATHPolicy(), NoncePolicy()]
    }

    /// Runs the checks listed above, in that order.
    ///
    /// - Throws: ``DPoPError/invalidProof(_:)`` naming the first check that failed, or
    ///   ``DPoPError/useNonce``.
    public func verify(_ proof: DPoPProof, _ context: DPoPRequestContext) throws(DPoPError) -> VerifiedDPoPProof {
        let jws = proof.jws
        for policy in Self.proofPolicies {
            try Self.enforce(policy.check(jws))
        }
        let payload: JSONValue
        do throws(JOSEError) {
            payload = try StrictJSON.parse(jws.payload)
        } catch {
            throw .invalidProof("Claims: \(error.logReason)")
        }
        guard case .object(let claims) = payload else { throw .invalidProof("Claims: payload is not a JSON object") }
        for policy in claimPolicies {
            try Self.enforce(policy.check(claims, context))
        }
        // The policies above have established all of these; this only unwraps them.
        guard let jwk = jws.header.jwk, case .string(let jti)? = claims["jti"], case .number(let iat)? = claims["iat"]
        else { throw .invalidProof("Claims: jwk, jti or iat missing") }
        return VerifiedDPoPProof(
            jkt: jwk.thumbprint(), jti: jti, issuedAt: Date(timeIntervalSince1970: iat),
            nonce: claims["nonce"]?.stringValue, publicKey: jwk)
    }

    private static func enforce(_ result: DPoPPolicyResult) throws(DPoPError) {
        switch result {
        case .meets: return
        case .fails(let reason): throw .invalidProof(reason)
        case .needsNonce: throw .useNonce
        }
    }
}
