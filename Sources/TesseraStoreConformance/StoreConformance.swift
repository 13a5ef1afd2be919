import Foundation
import TesseraCore
public import TesseraStore

/// A violation of the store contract found by one check.
public struct ConformanceFailure: Error, Sendable, CustomStringConvertible {
    public let check: String
    public let message: String

    public init(check: String, message: String) {
        self.check = check
        self.message = message
    }

    public var description: String { "\(check): \(message)" }
}

/// The one suite every store backend must pass (STYLE.md rule 9), written only against the store
/// protocols. A backend's test target runs each check, typically one test method per check.
///
/// `makeStore` must return a new store over an empty database on every call; each check opens one
/// store, uses it and closes it. Checks pin the clock to fixed dates and never assert a duration.
public struct StoreConformance: Sendable {
    public let makeStore: @Sendable () async throws -> any TesseraStore

    public init(makeStore: @escaping @Sendable () async throws -> any TesseraStore) {
        self.makeStore = makeStore
    }

    /// Every check by name, for backends that run them from a list.
    public static let checks: [(name: String, run: @Sendable (StoreConformance) async throws -> Void)] = [
        ("pingAnswers", { try await $0.pingAnswers() }),
        ("tenantCreateGetList", { try await $0.tenantCreateGetList() }),
        ("tenantDuplicateIsAlreadyExists", { try await $0.tenantDuplicateIsAlreadyExists() }),
        ("clientCreateGetRoundTrips", { try await $0.clientCreateGetRoundTrips() }),
        ("clientListPerTenantAndAllInCreationOrder", { try await $0.clientListPerTenantAndAllInCreationOrder() }),
        ("clientDuplicateIsAlreadyExists", { try await $0.clientDuplicateIsAlreadyExists() }),
        ("clientOfUnknownTenantIsNotFound", { try await $0.clientOfUnknownTenantIsNotFound() }),
        ("clientDisableKeepsFirstDate", { try await $0.clientDisableKeepsFirstDate() }),
        ("clientDisableUnknownIsNotFound", { try await $0.clientDisableUnknownIsNotFound() }),
        ("tokenRecordGet", { try await $0.tokenRecordGet() }),
        ("tokenDuplicateJTIIsAlreadyExists", { try await $0.tokenDuplicateJTIIsAlreadyExists() }),
        ("tokenRevokeRevokesDescendantsTwoLevelsDeep", { try await $0.tokenRevokeRevokesDescendantsTwoLevelsDeep() }),
        ("tokenRevokeOfMiddleTokenSparesItsAncestors", { try await $0.tokenRevokeOfMiddleTokenSparesItsAncestors() }),
        ("tokenRevokeAcrossTenantsIsUnknown", { try await $0.tokenRevokeAcrossTenantsIsUnknown() }),
        ("tokenRevokeTwiceIsAlreadyRevoked", { try await $0.tokenRevokeTwiceIsAlreadyRevoked() }),
        ("tokenChildOfRevokedParentIsRefused", { try await $0.tokenChildOfRevokedParentIsRefused() }),
        ("tokenPurgeExpired", { try await $0.tokenPurgeExpired() }),
        ("replayFirstUseThenReplay", { try await $0.replayFirstUseThenReplay() }),
        ("replayExpiredIDIsUsableAgain", { try await $0.replayExpiredIDIsUsableAgain() }),
        ("replayNamespacesAreIndependent", { try await $0.replayNamespacesAreIndependent() }),
        ("replayConcurrentConsumesHaveOneWinner", { try await $0.replayConcurrentConsumesHaveOneWinner() }),
        ("replayPurgeExpired", { try await $0.replayPurgeExpired() }),
        ("auditEveryMutationWritesOneRecord", { try await $0.auditEveryMutationWritesOneRecord() }),
        ("auditFailedMutationsWriteNothing", { try await $0.auditFailedMutationsWriteNothing() }),
        ("auditConcurrentAppendsFormOneChain", { try await $0.auditConcurrentAppendsFormOneChain() }),
        ("auditConcurrentFailuresLeaveChainIntact", { try await $0.auditConcurrentFailuresLeaveChainIntact() }),
        ("auditRecordsPageInOrder", { try await $0.auditRecordsPageInOrder() }),
        ("auditHeadMatchesLastRecord", { try await $0.auditHeadMatchesLastRecord() }),
        ("auditTokenExchangeMutationsWriteOneRecordEach", { try await $0.auditTokenExchangeMutationsWriteOneRecordEach() }),
        ("policyVersionsGrowAndCurrentIsNewest", { try await $0.policyVersionsGrowAndCurrentIsNewest() }),
        ("policyOfUnknownTenantIsNotFound", { try await $0.policyOfUnknownTenantIsNotFound() }),
        ("policyTenantsAreSeparate", { try await $0.policyTenantsAreSeparate() }),
        ("workloadIssuerAddFindListRoundTrips", { try await $0.workloadIssuerAddFindListRoundTrips() }),
        ("workloadIssuerDuplicateIsAlreadyExists", { try await $0.workloadIssuerDuplicateIsAlreadyExists() }),
        ("workloadIssuerOfUnknownTenantIsNotFound", { try await $0.workloadIssuerOfUnknownTenantIsNotFound() }),
        ("workloadIssuerFindIsTenantScoped", { try await $0.workloadIssuerFindIsTenantScoped() }),
        ("refreshRecordLookupRoundTrips", { try await $0.refreshRecordLookupRoundTrips() }),
        ("refreshRotateThenReuseRevokesFamily", { try await $0.refreshRotateThenReuseRevokesFamily() }),
        ("refreshRotateUnknownIsInactive", { try await $0.refreshRotateUnknownIsInactive() }),
        ("refreshRotateAfterExpiryIsInactive", { try await $0.refreshRotateAfterExpiryIsInactive() }),
        ("refreshConcurrentRotationsHaveOneWinner", { try await $0.refreshConcurrentRotationsHaveOneWinner() }),
        ("refreshRevokingParentRevokesFamily", { try await $0.refreshRevokingParentRevokesFamily() }),
        ("refreshChildOfRevokedParentIsRefused", { try await $0.refreshChildOfRevokedParentIsRefused() }),
        ("refreshPurgeExpired", { try await $0.refreshPurgeExpired() }),
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
        ("samlProviderAddGetRoundTrips", { try await $0.samlProviderAddGetRoundTrips() }),
        ("samlProviderAddAppendsItsAuditEvent", { try await $0.samlProviderAddAppendsItsAuditEvent() }),
        ("samlProviderSecondForTenantIsAlreadyExists", { try await $0.samlProviderSecondForTenantIsAlreadyExists() }),
        ("samlProviderOfUnknownTenantIsNotFound", { try await $0.samlProviderOfUnknownTenantIsNotFound() }),
        ("tokenRecordConsumingAOneTimeValueIsAllOrNothing", { try await $0.tokenRecordConsumingAOneTimeValueIsAllOrNothing() }),
        ("samlProviderSameEntityIDInTwoTenantsIsAllowed", { try await $0.samlProviderSameEntityIDInTwoTenantsIsAllowed() }),
        ("samlProviderGetIsTenantScoped", { try await $0.samlProviderGetIsTenantScoped() }),
        ("samlProviderListIsInCreationOrder", { try await $0.samlProviderListIsInCreationOrder() }),
        (
            "samlProviderReplaceMetadataChangesOnlyMetadataEntityIDAndFetchedAt",
            { try await $0.samlProviderReplaceMetadataChangesOnlyMetadataEntityIDAndFetchedAt() }
        ),
        ("samlProviderReplaceMetadataOfUnknownIDIsNotFound", { try await $0.samlProviderReplaceMetadataOfUnknownIDIsNotFound() }),
        ("samlProviderOversizeMetadataIsRefused", { try await $0.samlProviderOversizeMetadataIsRefused() }),
        ("revocationLogRecordsTokenRevocations", { try await $0.revocationLogRecordsTokenRevocations() }),
        ("revocationLogRecordsClientDisable", { try await $0.revocationLogRecordsClientDisable() }),
        ("revocationLogRecordsRefreshReuse", { try await $0.revocationLogRecordsRefreshReuse() }),
        ("revocationLogPagesInOrder", { try await $0.revocationLogPagesInOrder() }),
        ("revocationLogPurgeExpired", { try await $0.revocationLogPurgeExpired() }),
        (
            "revocationLogFollowerMissesNothingUnderConcurrentRevocations",
            { try await $0.revocationLogFollowerMissesNothingUnderConcurrentRevocations() }
        ),
    ]

    /// `ping` answers on a working store.
    public func pingAnswers() async throws {
        try await run { probe in
            do { try await probe.store.ping() } catch { throw probe.fail("ping threw \(error)") }
        }
    }

    /// Opens a store for one check, runs it, and closes the store whatever happened. Any error
    /// other than a `ConformanceFailure` is reported as one, naming the check.
    func run(_ function: String = #function, _ body: (Probe) async throws -> Void) async throws {
        let check = String(function.prefix { $0 != "(" })
        let store: any TesseraStore
        do {
            store = try await makeStore()
        } catch {
            throw ConformanceFailure(check: check, message: "makeStore threw \(error)")
        }
        do {
            try await body(Probe(check: check, store: store))
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

/// One check's view of its store, with the expectations it needs.
struct Probe: Sendable {
    let check: String
    let store: any TesseraStore

    func fail(_ message: String) -> ConformanceFailure { ConformanceFailure(check: check, message: message) }

    func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw fail(message()) }
    }

    func expectEqual<T: Equatable>(_ actual: T, _ expected: T, _ what: String) throws {
        if actual != expected { throw fail("\(what): expected \(expected), got \(actual)") }
    }

    /// Runs `body`, which must throw `expected` (for `.conflict` and `.unavailable`, any reason).
    func expectError<T>(_ expected: StoreError, _ what: String, _ body: () async throws -> T) async throws {
        let result: T
        do {
            result = try await body()
        } catch let error as StoreError {
            switch (error, expected) {
            case (.conflict, .conflict), (.unavailable, .unavailable): return
            default:
                if error == expected { return }
                throw fail("\(what): expected \(expected), got \(error)")
            }
        } catch {
            throw fail("\(what): expected \(expected), got \(error)")
        }
        throw fail("\(what): expected \(expected), but it succeeded with \(result)")
    }

    /// The sequence number of the last audit record, 0 for an empty log.
    func auditSeq() async throws -> Int64 { try await store.audit.head()?.seq ?? 0 }

    /// Runs `body`, which must append exactly one audit record, and that record must hold `event`
    /// byte for byte as `AuditChain.encode` wrote it.
    @discardableResult
    func expectAudited<T>(_ event: AuditEvent, _ what: String, _ body: () async throws -> T) async throws -> T {
        let before = try await auditSeq()
        let result = try await body()
        let after = try await auditSeq()
        try expectEqual(after, before + 1, "\(what): audit records appended, counted by the head")
        let records = try await store.audit.records(after: before, limit: 10)
        try expectEqual(records.count, 1, "\(what): audit records after \(before)")
        try expect(
            records[0].body == AuditChain.encode(event),
            "\(what): the audit record is not the event passed in (action \(event.action))")
        return result
    }

    /// Runs `body`, which must not append any audit record.
    func expectNotAudited(_ what: String, _ body: () async throws -> Void) async throws {
        let before = try await auditSeq()
        try await body()
        let after = try await auditSeq()
        try expectEqual(after, before, "\(what): the audit head moved")
        let records = try await store.audit.records(after: before, limit: 10)
        try expect(records.isEmpty, "\(what): wrote \(records.count) audit record(s)")
    }

    func expectChainIntact(count expected: Int64, _ what: String) async throws {
        let finding = try await AuditChain.verify(store.audit)
        try expectEqual(finding, .intact(count: expected), what)
    }

    /// Creates a tenant (audited) so clients can refer to it.
    @discardableResult
    func createTenant(_ id: TenantID, at date: Date = Fixtures.epoch) async throws -> Tenant {
        let tenant = Tenant(id: id, name: "Tenant \(id)", domains: ["\(id).example"], createdAt: date)
        try await store.tenants.create(tenant, audit: Fixtures.event("tenant.created", tenant: id))
        return tenant
    }

    /// Provisions the user of `identity` (audited) so sessions can refer to it.
    @discardableResult
    func signIn(_ identity: NormalizedIdentity, at date: Date = Fixtures.epoch) async throws -> User {
        try await store.users.upsert(identity, at: date, audit: Fixtures.event("user.signed_in", tenant: identity.tenantID, at: date))
    }

    /// Creates `session` (audited).
    func createSession(_ session: HumanSession) async throws {
        try await store.sessions.create(session, audit: Fixtures.event("session.created", tenant: session.tenantID, at: session.createdAt))
    }
}
