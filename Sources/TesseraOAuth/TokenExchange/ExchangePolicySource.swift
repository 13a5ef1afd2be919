public import Foundation
import Synchronization
public import TesseraCore
public import TesseraPolicy
public import TesseraStore

/// The current exchange policy of a tenant, read from the store on every decision (so an edit
/// made on any instance decides the next request) and parsed once per version.
public final class ExchangePolicySource: Sendable {
    private let store: any PolicyStore
    private let parsed = Mutex<[TenantID: ExchangePolicyEvaluator]>([:])

    public init(store: any PolicyStore) { self.store = store }

    public func evaluator(for tenant: TenantID) async throws(OAuthError) -> ExchangePolicyEvaluator {
        let stored: StoredPolicy?
        do {
            stored = try await store.current(tenant: tenant)
        } catch {
            throw .unavailable(reason: "policy read failed: \(error)")
        }
        guard let stored else { return ExchangePolicyEvaluator(document: .empty, version: nil) }
        if let cached = parsed.withLock({ $0[tenant] }), cached.version == stored.version { return cached }
        let document: PolicyDocument
        do {
            document = try PolicyDocument(parsing: Array(stored.document.utf8))
        } catch {
            // Validated when it was put: a document that no longer parses was altered outside the
            // broker. Deciding nothing is the only safe answer.
            throw OAuthError(.serverError, "the exchange policy cannot be read", reason: "stored policy v\(stored.version): \(error)")
        }
        let evaluator = ExchangePolicyEvaluator(document: document, version: stored.version)
        parsed.withLock { $0[tenant] = evaluator }
        return evaluator
    }
}
