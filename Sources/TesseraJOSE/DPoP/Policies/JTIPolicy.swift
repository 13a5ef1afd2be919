extension DPoPProofVerifier {
    /// RFC 9449 §4.2, §4.3 item 3: a `jti` string, short enough to store in a replay store.
    struct JTIPolicy: DPoPClaimPolicy {
        /// Bytes of UTF-8; a random identifier of 96 bits or more (RFC 9449 §4.2) needs far less.
        static let maxLength = 256

        func check(_ claims: [String: JSONValue], _ context: DPoPRequestContext) -> DPoPPolicyResult {
            guard case .string(let jti)? = claims["jti"] else { return .fails("JTI: jti missing or not a string") }
            guard !jti.isEmpty, jti.utf8.count <= Self.maxLength else {
                return .fails("JTI: jti empty or longer than 256 bytes")
            }
            return .meets
        }
    }
}
