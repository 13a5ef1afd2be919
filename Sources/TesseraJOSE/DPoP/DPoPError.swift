/// Why a DPoP proof was refused, as the two error codes of RFC 9449 §7.1 and §8.
///
/// The reason of ``invalidProof(_:)`` is for logs and the audit trail: it starts with the name of
/// the check that failed and never carries proof content, key material or the access token, so
/// it can be recorded as is. The response to the client stays generic (DESIGN.md, Errors).
public enum DPoPError: Error, Sendable, Equatable {
    /// `invalid_dpop_proof` (RFC 9449 §5, §7.1).
    case invalidProof(String)
    /// `use_dpop_nonce` (RFC 9449 §8, §9): the server requires a nonce and the proof carries none,
    /// or one it does not accept; the caller answers with a fresh `DPoP-Nonce` header.
    case useNonce
}

extension JOSEError {
    /// The generic reason carried by the error (never input content, see ``JOSEError``).
    var logReason: String {
        switch self {
        case .malformed(let reason), .unsupportedAlgorithm(let reason), .algorithmNotAllowed(let reason),
            .keyMismatch(let reason), .unknownCriticalHeader(let reason), .duplicateMember(let reason):
            reason
        case .badSignature: "signature does not verify"
        case .privateKeyMaterial: "private or symmetric key material"
        case .unknownKey: "no usable key"
        }
    }
}
