public import Foundation
public import TesseraCore
public import TesseraJOSE
public import TesseraStore

/// The token endpoint's side of DPoP (RFC 9449 §5): verifies the request's proof, asks for a
/// server nonce when nonces are on (§8), and enforces a client's DPoP requirement. The proof's
/// `jti` is consumed once in the replay store shared by every instance — by the token endpoint,
/// in the same commit as the grant it proves (or alone, when the request is refused).
///
/// Order: at most one `DPoP` header → no proof: refused if the client requires DPoP, else
/// unbound → the proof verifier's policies (`DPoPProofVerifier`).
public struct DPoPBinding: Sendable {
    private let verifier: DPoPProofVerifier
    /// Nil when the endpoint does not require server nonces.
    public let nonces: DPoPNonceSource?
    private let replay: any ReplayStore

    public init(nonces: DPoPNonceSource?, replay: any ReplayStore, verifier: DPoPProofVerifier = DPoPProofVerifier()) {
        self.nonces = nonces
        self.replay = replay
        self.verifier = verifier
    }

    /// The proof's key thumbprint for `cnf.jkt`, or nil when the request carries no proof and
    /// the client does not require one.
    public func confirm(
        proofs: [String], client: OAuthClient, method: String, url: String, now: Date
    ) async throws(OAuthError)
        -> VerifiedDPoPProof?
    {
        guard proofs.count <= 1 else { throw Self.invalid("more than one DPoP header") }
        guard let header = proofs.first else {
            if client.dpop == .required { throw Self.invalid("the client requires DPoP and the request has no proof") }
            return nil
        }
        let verified: VerifiedDPoPProof
        do {
            let nonces = self.nonces
            let context = DPoPRequestContext(
                method: method, url: url, now: now, accessToken: nil,
                expectedNonce: nonces.map { source in { @Sendable nonce in source.isAcceptable(nonce, now: now) } })
            verified = try verifier.verify(try DPoPProof(parsing: header), context)
        } catch {
            switch error {
            case .useNonce:
                var refusal = OAuthError(
                    .useDPoPNonce, "the authorization server requires a DPoP nonce", reason: "DPoP nonce missing or stale")
                refusal.dpopNonce = nonces?.current(now: now)
                throw refusal
            case .invalidProof(let why):
                throw Self.invalid(why)
            }
        }
        return verified
    }

    /// The replay-store entry of a verified proof: consumed by the caller, in the grant's own
    /// commit (`TokenStore.recordIssued(_:audit:consuming:now:)`) or alone (`consume`).
    public func oneTimeUse(of proof: VerifiedDPoPProof) -> OneTimeValue {
        proof.oneTimeUse(namespace: "dpop", iatWindow: verifier.iatWindow)
    }

    /// Consumes the proof's `jti` on its own (paths that do not record a plain access token:
    /// refusals, refresh families).
    public func consume(_ proof: VerifiedDPoPProof, now: Date) async throws(OAuthError) {
        let firstUse: Bool
        do {
            firstUse = try await replay.consumeDPoPProof(proof, namespace: "dpop", iatWindow: verifier.iatWindow, now: now)
        } catch {
            throw .unavailable(reason: "replay store: \(error)")
        }
        guard firstUse else { throw Self.replayed }
    }

    static let replayed = invalid("Replay: jti already used")

    static func invalid(_ reason: String) -> OAuthError {
        OAuthError(.invalidDPoPProof, "the DPoP proof is invalid", reason: "DPoP \(reason)")
    }
}
