import Foundation
import TesseraCore
public import TesseraStore

/// The sign-in side of the store contract: users, human sessions and upstream OpenID Providers,
/// written only against the store protocols. Apart from `StoreConformance` for as long as
/// `SignInStore` is apart from `TesseraStore`; the rules are the same: `makeStore` returns a new
/// store over an empty database on every call, each check opens one store and closes it, and
/// checks pin the clock to fixed dates.
public struct SignInConformance: Sendable {
    public let makeStore: @Sendable () async throws -> any TesseraStore & SignInStore

    public init(makeStore: @escaping @Sendable () async throws -> any TesseraStore & SignInStore) {
        self.makeStore = makeStore
    }

    /// Every check by name, for backends that run them from a list.
    public static let checks: [(name: String, run: @Sendable (SignInConformance) async throws -> Void)] = [
        ("userUpsertCreatesThenUpdates", { try await $0.userUpsertCreatesThenUpdates() }),
        ("userUpsertIsTenantScoped", { try await $0.userUpsertIsTenantScoped() }),
        ("userUpsertOfUnknownTenantIsNotFound", { try await $0.userUpsertOfUnknownTenantIsNotFound() }),
        ("userUpsertOfDisabledUserWritesNothing", { try await $0.userUpsertOfDisabledUserWritesNothing() }),
        ("userDisableKeepsFirstDate", { try await $0.userDisableKeepsFirstDate() }),
        ("userDisableUnknownIsNotFound", { try await $0.userDisableUnknownIsNotFound() }),
        ("userDisableKillsTheirSessions", { try await $0.userDisableKillsTheirSessions() }),
        ("sessionCreateTouchRoundTrips", { try await $0.sessionCreateTouchRoundTrips() }),
        ("sessionTouchAfterAbsoluteExpiryIsNil", { try await $0.sessionTouchAfterAbsoluteExpiryIsNil() }),
        ("sessionTouchAfterIdleTimeoutIsNil", { try await $0.sessionTouchAfterIdleTimeoutIsNil() }),
        ("sessionTouchUnknownIsNil", { try await $0.sessionTouchUnknownIsNil() }),
        ("sessionDeleteOnce", { try await $0.sessionDeleteOnce() }),
        ("sessionDuplicateHashIsAlreadyExists", { try await $0.sessionDuplicateHashIsAlreadyExists() }),
        ("sessionPurgeExpired", { try await $0.sessionPurgeExpired() }),
        ("oidcProviderAddGetRoundTrips", { try await $0.oidcProviderAddGetRoundTrips() }),
        ("oidcProviderSecondForTenantIsAlreadyExists", { try await $0.oidcProviderSecondForTenantIsAlreadyExists() }),
        ("oidcProviderOfUnknownTenantIsNotFound", { try await $0.oidcProviderOfUnknownTenantIsNotFound() }),
        ("oidcProviderGetIsTenantScoped", { try await $0.oidcProviderGetIsTenantScoped() }),
    ]

    /// Opens a store for one check, runs it, and closes the store whatever happened. The body gets
    /// the usual probe (whose store is the same store, seen as a `TesseraStore`) and the store with
    /// its sign-in side. Any error other than a `ConformanceFailure` is reported as one.
    func run(_ function: String = #function, _ body: (Probe, any TesseraStore & SignInStore) async throws -> Void) async throws {
        let check = String(function.prefix { $0 != "(" })
        let store: any TesseraStore & SignInStore
        do {
            store = try await makeStore()
        } catch {
            throw ConformanceFailure(check: check, message: "makeStore threw \(error)")
        }
        do {
            try await body(Probe(check: check, store: store), store)
        } catch let failure as ConformanceFailure {
            await store.close()
            throw failure
        } catch {
            await store.close()
            throw ConformanceFailure(check: check, message: "unexpected error: \(error)")
        }
        await store.close()
    }
}

extension Probe {
    /// Provisions the user of `identity` (audited) so sessions can refer to it.
    @discardableResult
    func signIn(_ identity: NormalizedIdentity, at date: Date = Fixtures.epoch, _ store: any SignInStore) async throws -> User {
        try await store.users.upsert(identity, at: date, audit: Fixtures.event("user.signed_in", tenant: identity.tenantID, at: date))
    }

    /// Creates `session` (audited).
    func createSession(_ session: HumanSession, _ store: any SignInStore) async throws {
        try await store.sessions.create(session, audit: Fixtures.event("session.created", tenant: session.tenantID, at: session.createdAt))
    }
}
