extension DPoPProofVerifier {
    /// RFC 9449 §4.3 item 4: `typ` is exactly `dpop+jwt`, so that no other JWT signed by the
    /// same key (an assertion, an ID token) can pass as a proof (RFC 8725 §3.11).
    struct TypPolicy: DPoPProofPolicy {
        static let type = "dpop+jwt"

        func check(_ jws: CompactJWS) -> DPoPPolicyResult {
            jws.header.typ == Self.type ? .meets : .fails("Typ: typ is not dpop+jwt")
        }
    }
}
