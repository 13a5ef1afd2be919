extension DPoPProofVerifier {
    /// RFC 9449 §4.3 item 10, §8: when the server requires nonces, the proof carries one it
    /// accepts; a missing or unaccepted nonce asks the client to retry (`use_dpop_nonce`).
    ///
    /// A `nonce` that is not a string is a malformed proof, whether or not nonces are required.
    struct NoncePolicy: DPoPClaimPolicy {
        func check(_ claims: [String: JSONValue], _ context: DPoPRequestContext) -> DPoPPolicyResult {
            let nonce: String?
            switch claims["nonce"] {
            case nil: nonce = nil
            case .string(let value)?: nonce = value
            case _?: return .fails("Nonce: nonce is not a string")
            }
            guard let accepts = context.expectedNonce else { return .meets }
            guard let nonce, accepts(nonce) else { return .needsNonce }
            return .meets
        }
    }
}
