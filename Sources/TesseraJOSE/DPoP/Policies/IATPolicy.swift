import Foundation

extension DPoPProofVerifier {
    /// RFC 9449 §4.3 item 11: `iat` is a number within `window` seconds of now, either way (a
    /// client's clock may run ahead of ours).
    struct IATPolicy: DPoPClaimPolicy {
        let window: TimeInterval

        func check(_ claims: [String: JSONValue], _ context: DPoPRequestContext) -> DPoPPolicyResult {
            guard case .number(let iat)? = claims["iat"] else { return .fails("IAT: iat missing or not a number") }
            let now = context.now.timeIntervalSince1970
            guard iat >= now - window else { return .fails("IAT: proof issued too long ago") }
            guard iat <= now + window else { return .fails("IAT: proof issued in the future") }
            return .meets
        }
    }
}
