public import Foundation
import TesseraCore
public import TesseraJOSE
public import TesseraStore

extension VerifiedDPoPProof {
    /// The proof's `jti` (per key) as a one-time value, kept until no clock could still accept its
    /// `iat`. Each place that accepts proofs uses its own namespace, so a proof made for the token
    /// endpoint and one for a resource never collide.
    public func oneTimeUse(namespace: String, iatWindow: TimeInterval) -> OneTimeValue {
        OneTimeValue(namespace: namespace, id: "\(jkt) \(jti)", expiresAt: issuedAt.addingTimeInterval(iatWindow + ClockSkew.allowed))
    }
}

extension ReplayStore {
    /// Records a verified proof's `jti`; true on first use.
    public func consumeDPoPProof(_ proof: VerifiedDPoPProof, namespace: String, iatWindow: TimeInterval, now: Date) async throws -> Bool {
        let entry = proof.oneTimeUse(namespace: namespace, iatWindow: iatWindow)
        return try await consume(namespace: entry.namespace, id: entry.id, expiresAt: entry.expiresAt, now: now)
    }
}
