extension DPoPProofVerifier {
    /// RFC 9449 §4.3 item 12, §7.1: with an access token, `ath` is its hash
    /// (``DPoPAccessTokenHash``).
    ///
    /// Without an access token an `ath` is refused: RFC 9449 does not say, but a proof made for a
    /// token-bearing request has no business at one that presents none, and accepting it would
    /// let a proof captured at a resource be spent at the token endpoint.
    struct ATHPolicy: DPoPClaimPolicy {
        func check(_ claims: [String: JSONValue], _ context: DPoPRequestContext) -> DPoPPolicyResult {
            switch (context.accessToken, claims["ath"]) {
            case (nil, nil):
                return .meets
            case (nil, _?):
                return .fails("ATH: ath present but no access token presented")
            case (_?, nil):
                return .fails("ATH: ath missing for the presented access token")
            case (let token?, let ath?):
                guard case .string(let hash) = ath else { return .fails("ATH: ath is not a string") }
                return hash == DPoPAccessTokenHash.of(token)
                    ? .meets : .fails("ATH: ath is not the access token's hash")
            }
        }
    }
}
