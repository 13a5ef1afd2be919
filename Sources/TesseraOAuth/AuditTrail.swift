public import Foundation
public import TesseraCore
public import TesseraStore

/// Appends events that stand alone (refusals, failed authentications, introspections). An event
/// that cannot be written fails the request with 503: the broker never answers a security-relevant
/// request it could not record.
public struct AuditTrail: Sendable {
    private let store: any AuditStore

    public init(store: any AuditStore) { self.store = store }

    public func record(_ event: AuditEvent) async throws(OAuthError) {
        do {
            try await store.append(event)
        } catch {
            throw .unavailable(reason: "audit append failed: \(error)")
        }
    }

    /// Records a refusal and hands the original error back for the caller to throw.
    public func refusal(
        _ error: OAuthError, action: String, tenant: String?, clientID: String?, requestedScopes: [String] = [],
        traceID: String, now: Date
    ) async -> OAuthError {
        let event = AuditEvent(
            ts: now, tenant: tenant, actor: .client(clientID), clientID: clientID, action: action,
            outcome: error.code == .invalidClient || error.code == .slowDown ? .failure : .denied,
            reason: "\(error.code.rawValue): \(error.reason)",
            scopes: requestedScopes.isEmpty ? nil : .init(requested: requestedScopes, granted: []), traceID: traceID,
            decision: error.decision)
        do {
            try await record(event)
            return error
        } catch {
            return error
        }
    }
}
