import Crypto
public import Foundation

/// Server-provided DPoP nonces (RFC 9449 §8, §9): stateless, rotating, shared by every instance
/// that holds the same key.
///
/// A nonce is `base64url(version ‖ start ‖ HMAC-SHA256(key, label ‖ version ‖ start))`, where
/// `start` is the beginning, in whole seconds since 1970 as a big-endian `Int64`, of the
/// rotation period in which it was handed out. The same nonce is handed out for the whole
/// period (``rotationPeriod``), so instances agree and clients are not made to retry on every
/// request; it is accepted until ``lifetime`` after the end of that period, so a client always
/// has at least ``lifetime`` to use the nonce it was last given. Nothing is stored: replay
/// protection is the `jti` store's job, a nonce only bounds how early a proof can be made.
public struct DPoPNonceSource: Sendable {
    public static let defaultLifetime: TimeInterval = 300
    public static let defaultRotationPeriod: TimeInterval = 60
    /// How far ahead of this instance's clock another instance's may run: a nonce whose period
    /// starts up to this far in the future is still accepted.
    public static let allowedFutureSkew: TimeInterval = 60
    /// HMAC-SHA256 keys shorter than the hash give less than its strength (RFC 2104 §3).
    public static let minimumKeyLength = 32

    public let lifetime: TimeInterval
    public let rotationPeriod: TimeInterval
    private let key: SymmetricKey

    private static let version: UInt8 = 1
    /// Separates these MACs from any other use of the key.
    private static let label = Array("tessera DPoP-Nonce".utf8)
    private static let byteCount = 1 + 8 + SHA256.byteCount
    private static let textLength = (byteCount * 4 + 2) / 3
    /// Keeps the arithmetic on `Date` far from `Int64` overflow, whatever the clock says.
    private static let maxSeconds: TimeInterval = 1e15

    /// - Parameters:
    ///   - key: the HMAC key, the same on every instance; at least ``minimumKeyLength`` bytes.
    ///   - lifetime: how long a nonce is accepted after it was last handed out.
    ///   - rotationPeriod: how long the same nonce is handed out; at least one second.
    /// - Precondition: the key and durations are as above. They are configuration, not input,
    ///   so a wrong value is a programming error.
    public init(
        key: [UInt8], lifetime: TimeInterval = DPoPNonceSource.defaultLifetime,
        rotationPeriod: TimeInterval = DPoPNonceSource.defaultRotationPeriod
    ) {
        precondition(key.count >= Self.minimumKeyLength, "DPoP nonce key shorter than \(Self.minimumKeyLength) bytes")
        precondition(lifetime > 0 && lifetime.isFinite, "DPoP nonce lifetime must be positive")
        precondition(rotationPeriod >= 1 && rotationPeriod.isFinite, "DPoP nonce rotation period below one second")
        self.key = SymmetricKey(data: key)
        self.lifetime = lifetime
        self.rotationPeriod = rotationPeriod
    }

    /// The nonce to send in the `DPoP-Nonce` header now.
    public func current(now: Date) -> String {
        let seconds = Self.clamped(now.timeIntervalSince1970)
        let start = Int64(((seconds / rotationPeriod).rounded(.down) * rotationPeriod).rounded(.down))
        var bytes = Self.prefix(start)
        bytes.append(contentsOf: HMAC<SHA256>.authenticationCode(for: Self.label + bytes, using: key))
        return Base64URL.encode(bytes)
    }

    /// Whether `nonce` was made with this key and is still within its lifetime at `now`.
    public func isAcceptable(_ nonce: String, now: Date) -> Bool {
        guard nonce.utf8.count == Self.textLength, let bytes = Base64URL.decode(nonce), bytes.count == Self.byteCount,
            bytes[0] == Self.version
        else { return false }
        let prefix = Array(bytes[..<9])
        // Constant-time comparison, inside swift-crypto.
        guard HMAC<SHA256>.isValidAuthenticationCode(bytes[9...], authenticating: Self.label + prefix, using: key)
        else { return false }
        let start = TimeInterval(prefix[1...].reduce(Int64(0)) { $0 << 8 | Int64($1) })
        let seconds = Self.clamped(now.timeIntervalSince1970)
        return start <= seconds + Self.allowedFutureSkew && seconds < start + rotationPeriod + lifetime
    }

    private static func prefix(_ start: Int64) -> [UInt8] {
        var bytes: [UInt8] = [version]
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: start >> shift))
        }
        return bytes
    }

    private static func clamped(_ seconds: TimeInterval) -> TimeInterval {
        guard seconds.isFinite else { return seconds > 0 ? maxSeconds : -maxSeconds }
        return min(max(seconds, -maxSeconds), maxSeconds)
    }
}
