public import Foundation
import TesseraCore
public import TesseraJOSE
public import TesseraStore

/// What a resource server embedding the broker's library checks on each request
/// (RFC 6750 §2.1, RFC 9449 §7).
///
/// Order: the `Authorization` scheme is `DPoP` or `Bearer` → the access token is one of this
/// broker's, unexpired, unrevoked, its client enabled (`AccessTokenVerifier`) → a DPoP-bound token
/// (`cnf.jkt`) came with the `DPoP` scheme, never as `Bearer` (§7.2: no downgrade) → exactly one
/// proof, valid for this method and URL, with `ath` of this token (§4.3) → signed by the key the
/// token is bound to → its `jti` not seen before.
public struct ProtectedResourceVerifier: Sendable {
    public enum Refusal: Error, Sendable, Equatable {
        /// RFC 6750 §3.1 `invalid_token` (401).
        case invalidToken(String)
        /// RFC 9449 §7.1 `invalid_dpop_proof` (401).
        case invalidDPoPProof(String)
        /// The token store could not be read: answer 503, never "valid".
        case unavailable(String)
    }

    private let accessTokens: AccessTokenVerifier
    private let replay: any ReplayStore
    private let proofVerifier: DPoPProofVerifier

    public init(accessTokens: AccessTokenVerifier, replay: any ReplayStore, proofVerifier: DPoPProofVerifier = DPoPProofVerifier()) {
        self.accessTokens = accessTokens
        self.replay = replay
        self.proofVerifier = proofVerifier
    }

    public func verify(
        authorization: String?, dpopProofs: [String], method: String, url: String, now: Date
    ) async throws(Refusal)
        -> VerifiedAccessToken
    {
        guard let authorization else { throw .invalidToken("no Authorization header") }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { throw .invalidToken("malformed Authorization header") }
        let scheme = parts[0].lowercased()
        let token = String(parts[1])
        guard scheme == "dpop" || scheme == "bearer" else { throw .invalidToken("unsupported scheme") }

        let verified: VerifiedAccessToken
        do {
            verified = try await accessTokens.verify(token, now: now)
        } catch let failure as AccessTokenVerifier.Failure {
            switch failure {
            case .invalid(let why), .inactive(let why): throw .invalidToken(why)
            }
        } catch {
            throw .unavailable("\(error)")
        }
        let boundTo = verified.claims["cnf"]?["jkt"]?.stringValue

        guard scheme == "dpop" else {
            if boundTo != nil { throw .invalidToken("a DPoP-bound token presented as Bearer") }
            guard dpopProofs.isEmpty else { throw .invalidDPoPProof("a DPoP proof with a Bearer token") }
            return verified
        }
        guard let boundTo else { throw .invalidToken("DPoP scheme with a token that is not DPoP-bound") }
        guard dpopProofs.count == 1 else { throw .invalidDPoPProof(dpopProofs.isEmpty ? "no DPoP proof" : "more than one DPoP header") }
        let proof: VerifiedDPoPProof
        do {
            proof = try proofVerifier.verify(
                try DPoPProof(parsing: dpopProofs[0]), DPoPRequestContext(method: method, url: url, now: now, accessToken: token))
        } catch {
            switch error {
            case .invalidProof(let why): throw .invalidDPoPProof(why)
            case .useNonce: throw .invalidDPoPProof("nonce")
            }
        }
        guard proof.jkt == boundTo else { throw .invalidDPoPProof("Binding: proof signed by another key than the token's cnf.jkt") }
        let firstUse: Bool
        do {
            firstUse = try await replay.consumeDPoPProof(proof, namespace: "dpop-resource", iatWindow: proofVerifier.iatWindow, now: now)
        } catch {
            throw .unavailable("replay store: \(error)")
        }
        guard firstUse else { throw .invalidDPoPProof("Replay: jti already used") }
        return verified
    }
}
