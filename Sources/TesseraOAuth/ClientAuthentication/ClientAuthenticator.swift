public import Foundation
public import TesseraCore
public import TesseraStore

/// Authenticates the client of a token, introspection or revocation request (RFC 6749 §2.3).
///
/// The client must exist, be enabled, and use exactly the method it registered: a client
/// registered for `private_key_jwt` cannot fall back to a secret. Every failure is `invalid_client`
/// with a generic public text; the precise reason is returned to the caller for the audit record.
public struct ClientAuthenticator: Sendable {
    private let clients: any ClientStore
    private let assertions: ClientAssertionVerifier
    private let throttle: AuthFailureThrottle
    private let assertionAudiences: Set<String>

    public init(clients: any ClientStore, replay: any ReplayStore, throttle: AuthFailureThrottle, assertionAudiences: Set<String>) {
        self.clients = clients
        self.assertions = ClientAssertionVerifier(replay: replay)
        self.throttle = throttle
        self.assertionAudiences = assertionAudiences
    }

    public func authenticate(
        _ presented: PresentedClientCredentials, sourceAddress: String?, now: Date
    ) async throws(OAuthError) -> OAuthClient {
        let claimed = presented.claimedClientID
        try throttle.check(clientID: claimed, address: sourceAddress, now: now)
        do throws(OAuthError) {
            return try await verify(presented, now: now)
        } catch {
            if error.code == .invalidClient {
                throttle.recordFailure(clientID: claimed, address: sourceAddress, now: now)
            }
            throw error
        }
    }

    /// Authenticates the client of a token, introspection or revocation request; a failure is
    /// audited as `client.auth_failed` with its precise reason before it is thrown. An unavailable
    /// store is thrown as is: there is nothing to record it in.
    public func authenticatedCaller(of request: TokenRequest, audit: AuditTrail, now: Date) async throws(OAuthError) -> OAuthClient {
        var claimed: String?
        do throws(OAuthError) {
            let presented = try PresentedClientCredentials(authorization: request.authorization, form: request.form)
            claimed = presented.claimedClientID.map { String($0.prefix(128)) }
            return try await authenticate(presented, sourceAddress: request.sourceAddress, now: now)
        } catch {
            guard error.code != .temporarilyUnavailable else { throw error }
            throw await audit.refusal(
                error, action: "client.auth_failed", tenant: nil, clientID: claimed, traceID: request.traceID, now: now)
        }
    }

    private func verify(_ presented: PresentedClientCredentials, now: Date) async throws(OAuthError) -> OAuthClient {
        switch presented.method {
        case .none:
            throw .invalidClient(reason: "no client authentication presented")
        case .secretBasic(let id, let secret), .secretPost(let id, let secret):
            let client = try await registered(id)
            let method: ClientAuthMethod = if case .secretBasic = presented.method { .clientSecretBasic } else { .clientSecretPost }
            guard client.authMethod == method else {
                throw .invalidClient(reason: "client is registered for \(client.authMethod.rawValue), not \(method.rawValue)")
            }
            guard let stored = client.secretHash, Secrets.constantTimeEquals(Secrets.sha256(secret), stored) else {
                throw .invalidClient(reason: "wrong client secret")
            }
            return client
        case .privateKeyJWT(let assertion, _):
            guard let id = presented.claimedClientID else { throw .invalidClient(reason: "client assertion names no client") }
            let client = try await registered(id)
            guard client.authMethod == .privateKeyJWT else {
                throw .invalidClient(reason: "client is registered for \(client.authMethod.rawValue), not private_key_jwt")
            }
            try await assertions.verify(
                assertion, registeredJWKS: client.jwks,
                context: .init(clientID: client.clientID, audiences: assertionAudiences, now: now))
            return client
        }
    }

    private func registered(_ clientID: String) async throws(OAuthError) -> OAuthClient {
        let found: OAuthClient?
        do {
            found = try await clients.get(clientID: clientID)
        } catch {
            throw .unavailable(reason: "client store: \(error)")
        }
        guard let client = found else { throw .invalidClient(reason: "unknown client") }
        guard !client.isDisabled else { throw .invalidClient(reason: "client is disabled") }
        return client
    }
}
