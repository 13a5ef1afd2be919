public import Foundation

/// The request a DPoP proof must match (RFC 9449 §4.3), as the server sees it.
public struct DPoPRequestContext: Sendable {
    /// The HTTP method, compared with `htm` exactly (methods are case-sensitive, RFC 9110 §9.1).
    public let method: String
    /// The absolute request URL as the server sees it (its own scheme and authority, not what a
    /// proxy header claims); compared with `htu` after ``DPoPURL/normalized(_:)``.
    public let url: String
    public let now: Date
    /// The access token presented with the request (`Authorization: DPoP ...`), if any. When
    /// set, the proof's `ath` must be its hash; when `nil`, the proof must carry no `ath`.
    public let accessToken: String?
    /// `nil` when this server does not require nonces; otherwise the proof must carry a nonce
    /// that this function accepts, or verification fails with ``DPoPError/useNonce``. Usually
    /// ``DPoPNonceSource/isAcceptable(_:now:)`` with the same `now`.
    public let expectedNonce: (@Sendable (String) -> Bool)?

    public init(
        method: String, url: String, now: Date, accessToken: String? = nil,
        expectedNonce: (@Sendable (String) -> Bool)? = nil
    ) {
        self.method = method
        self.url = url
        self.now = now
        self.accessToken = accessToken
        self.expectedNonce = expectedNonce
    }
}
