extension DPoPProofVerifier {
    /// RFC 9449 §4.3 item 5 with RFC 7518 §3.1: the `jwk` is of the type and curve that `alg`
    /// needs, and its own `alg` and `use` members, when present, allow it (``JWK/canVerify(_:)``).
    struct KeyTypePolicy: DPoPProofPolicy {
        func check(_ jws: CompactJWS) -> DPoPPolicyResult {
            guard let jwk = jws.header.jwk else { return .fails("KeyType: jwk header missing") }
            return jwk.canVerify(jws.header.alg) ? .meets : .fails("KeyType: jwk cannot verify alg")
        }
    }
}
