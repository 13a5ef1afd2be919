extension DPoPProofVerifier {
    /// RFC 9449 §4.3 item 5: an asymmetric `alg` this server accepts for proofs. `none` and
    /// HS* do not even parse (``JWSAlgorithm``); this narrows the rest to the allow-list.
    struct AlgorithmPolicy: DPoPProofPolicy {
        let allowed: Set<JWSAlgorithm>

        func check(_ jws: CompactJWS) -> DPoPPolicyResult {
            allowed.contains(jws.header.alg) ? .meets : .fails("Algorithm: alg not allowed for DPoP proofs")
        }
    }
}
