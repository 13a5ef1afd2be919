extension DPoPProofVerifier {
    /// RFC 9449 §4.3 item 8: `htm` is the request's method, compared exactly.
    struct HTMPolicy: DPoPClaimPolicy {
        func check(_ claims: [String: JSONValue], _ context: DPoPRequestContext) -> DPoPPolicyResult {
            guard case .string(let htm)? = claims["htm"] else { return .fails("HTM: htm missing or not a string") }
            return htm == context.method ? .meets : .fails("HTM: htm is not the request method")
        }
    }
}
