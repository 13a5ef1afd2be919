extension DPoPProofVerifier {
    /// RFC 9449 §4.3 items 6–7: the header carries the signer's key in `jwk`, and that key is
    /// public. The key is never looked up by `kid`, `jku` or `x5u`.
    struct EmbeddedKeyPolicy: DPoPProofPolicy {
        func check(_ jws: CompactJWS) -> DPoPPolicyResult {
            guard jws.header.jwk != nil, case .object(let members)? = jws.header.raw["jwk"] else {
                return .fails("EmbeddedKey: jwk header missing")
            }
            // Already refused when the header was parsed (JWK(json:)); checked again on the raw
            // member because a private key in a proof is a leak, not a detail of JWK parsing.
            guard JWK.privateMemberNames.allSatisfy({ members[$0] == nil }) else {
                return .fails("EmbeddedKey: jwk carries private key material")
            }
            return .meets
        }
    }
}
