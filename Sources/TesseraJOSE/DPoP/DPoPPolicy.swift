/// The outcome of one DPoP policy.
enum DPoPPolicyResult: Sendable, Equatable {
    case meets
    /// `invalid_dpop_proof`; the reason starts with the policy's name.
    case fails(String)
    /// `use_dpop_nonce` (RFC 9449 §8): the proof is otherwise fine but lacks a nonce we accept.
    case needsNonce
}

/// One rule about the proof as a JWS: its header and its signature. These run before any claim
/// is read, so that claims are only ever read once the signature covering them is known good.
protocol DPoPProofPolicy: Sendable {
    func check(_ jws: CompactJWS) -> DPoPPolicyResult
}

/// One rule about the signed claims and the request they must match.
protocol DPoPClaimPolicy: Sendable {
    func check(_ claims: [String: JSONValue], _ context: DPoPRequestContext) -> DPoPPolicyResult
}
