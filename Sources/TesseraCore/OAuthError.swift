/// The error codes an OAuth endpoint may answer with, one set for the whole broker.
///
/// RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8693 §2.2.2, RFC 8707 §2, RFC 9449 §5 and §8,
/// RFC 8628 §3.5 (`slow_down`, used for throttled client authentication).
public enum OAuthErrorCode: String, Sendable, Codable, CaseIterable {
    case invalidRequest = "invalid_request"
    case invalidClient = "invalid_client"
    case invalidGrant = "invalid_grant"
    case unauthorizedClient = "unauthorized_client"
    case unsupportedGrantType = "unsupported_grant_type"
    case invalidScope = "invalid_scope"
    case invalidTarget = "invalid_target"
    case unsupportedTokenType = "unsupported_token_type"
    case invalidDPoPProof = "invalid_dpop_proof"
    case useDPoPNonce = "use_dpop_nonce"
    case slowDown = "slow_down"
    case accessDenied = "access_denied"
    /// OpenID Connect Core §3.1.2.6: no live session, for `GET /session`.
    case loginRequired = "login_required"
    case temporarilyUnavailable = "temporarily_unavailable"
    case serverError = "server_error"

    /// The HTTP status for each code; exhaustive so a new code cannot ship without one.
    public var httpStatus: Int {
        switch self {
        case .invalidClient, .loginRequired: 401
        case .accessDenied: 403
        case .slowDown: 429
        case .serverError: 500
        case .temporarilyUnavailable: 503
        case .invalidRequest, .invalidGrant, .unauthorizedClient, .unsupportedGrantType, .invalidScope,
            .invalidTarget, .unsupportedTokenType, .invalidDPoPProof, .useDPoPNonce:
            400
        }
    }
}

/// An OAuth error as a value: a code, a public description that is safe to send, and a private
/// reason that goes only to the log and the audit record (fosite's hint / debug split).
public struct OAuthError: Error, Sendable, CustomStringConvertible {
    public let code: OAuthErrorCode
    /// Sent to the caller. Generic on purpose: it must not help an attacker tell cases apart.
    public let publicDescription: String
    /// Why, precisely. Never sent; never contains a secret or a token.
    public let reason: String
    /// Seconds, for `Retry-After` on throttled or unavailable answers.
    public var retryAfter: Int?
    /// A fresh server nonce for the `DPoP-Nonce` header (RFC 9449 §8), with `use_dpop_nonce`.
    public var dpopNonce: String?
    /// The policy decision that refused, as JSON text, for the audit record only.
    public var decision: String?

    public init(_ code: OAuthErrorCode, _ publicDescription: String, reason: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.publicDescription = publicDescription
        self.reason = reason ?? publicDescription
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code.rawValue): \(reason)" }

    public static func invalidRequest(_ text: String, reason: String? = nil) -> OAuthError {
        OAuthError(.invalidRequest, text, reason: reason)
    }
    public static func invalidClient(reason: String) -> OAuthError {
        OAuthError(.invalidClient, "client authentication failed", reason: reason)
    }
    public static func invalidScope(reason: String) -> OAuthError {
        OAuthError(.invalidScope, "the requested scope is invalid, unknown or exceeds what the client may have", reason: reason)
    }
    public static func unauthorizedClient(reason: String) -> OAuthError {
        OAuthError(.unauthorizedClient, "the client is not allowed to use this grant type", reason: reason)
    }
    public static func unavailable(reason: String, retryAfter: Int = 1) -> OAuthError {
        OAuthError(.temporarilyUnavailable, "the service is temporarily unavailable", reason: reason, retryAfter: retryAfter)
    }
}
