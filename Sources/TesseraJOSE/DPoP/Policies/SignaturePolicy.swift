extension DPoPProofVerifier {
    /// RFC 9449 §4.3 item 6: the signature verifies with the key in the `jwk` header.
    struct SignaturePolicy: DPoPProofPolicy {
        func check(_ jws: CompactJWS) -> DPoPPolicyResult {
            guard let jwk = jws.header.jwk else { return .fails("Signature: jwk header missing") }
            let key: JWSVerificationKey
            do {
                key = try JWSVerificationKey(jwk: jwk)
            } catch {
                return .fails("Signature: jwk is not a valid public key")
            }
            return key.isValidSignature(jws.signature, for: jws.signingInput, alg: jws.header.alg)
                ? .meets : .fails("Signature: signature does not verify with jwk")
        }
    }
}
