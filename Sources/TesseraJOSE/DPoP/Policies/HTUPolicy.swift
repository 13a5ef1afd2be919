extension DPoPProofVerifier {
    /// RFC 9449 §4.3 item 9: `htu` is the request URL, both without query and fragment and
    /// both normalised (``DPoPURL/normalized(_:)``).
    struct HTUPolicy: DPoPClaimPolicy {
        func check(_ claims: [String: JSONValue], _ context: DPoPRequestContext) -> DPoPPolicyResult {
            guard case .string(let htu)? = claims["htu"] else { return .fails("HTU: htu missing or not a string") }
            guard let request = DPoPURL.normalized(context.url) else {
                return .fails("HTU: request URL is not an absolute http(s) URL")
            }
            guard let claimed = DPoPURL.normalized(htu) else {
                return .fails("HTU: htu is not an absolute http(s) URL")
            }
            return claimed == request ? .meets : .fails("HTU: htu is not the request URL")
        }
    }
}
