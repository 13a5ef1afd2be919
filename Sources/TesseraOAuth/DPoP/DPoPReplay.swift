public import Foundation
import TesseraCore
public import TesseraJOSE
public import TesseraStore

extension ReplayStore {
    /// Records a verified proof's `jti` (per key) until no clock could still accept its `iat`.
    /// True on first use. Each place that accepts proofs uses its own namespace, so a proof made
    /// for the token endpoint and one for a resource never collide.
    public func consumeDPoPProof(_ proof: VerifiedDPoPProof, namespace: String, iatWindow: TimeInterval, now: Date) async throws -> Bool {
        try await consume(
            namespace: namespace, id: "\(proof.jkt) \(proof.jti)",
            expiresAt: proof.issuedAt.addingTimeInterval(iatWindow + ClockSkew.allowed), now: now)
    }
}
