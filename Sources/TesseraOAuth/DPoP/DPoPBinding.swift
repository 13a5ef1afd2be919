public import Foundation
public import TesseraCore
public import TesseraJOSE
public import TesseraStore

/// The token endpoint's side of DPoP (RFC 9449 §5): verifies the request's proof, consumes its
/// `jti` once in the replay store shared by every instance, asks for a server nonce when nonces
/// are on (§8), and enforces a client's DPoP requirement.
///
/// Order: at most one `DPoP` header → no proof: refused if the client requires DPoP, else
/// unbound → the proof verifier's policies (`DPoPProofVerifier`) → `jti` first use.
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
        let firstUse: Bool
        do {
            firstUse = try await replay.consumeDPoPProof(verified, namespace: "dpop", iatWindow: verifier.iatWindow, now: now)
        } catch {
            throw .unavailable(reason: "replay store: \(error)")
        }
        guard firstUse else { throw Self.invalid("Replay: jti already used") }
        return verified
    }

    static func invalid(_ reason: String) -> OAuthError {
        OAuthError(.invalidDPoPProof, "the DPoP proof is invalid", reason: "DPoP \(reason)")
    }
}
