import TesseraStore
import TesseraStoreConformance
import TesseraStoreSQLite
import XCTest

/// The shared store conformance suite, one test per check, each on a fresh database file.
final class SQLiteConformanceTests: XCTestCase {
    private var databases: TemporaryDatabases!

    override func setUpWithError() throws {
        databases = try TemporaryDatabases()
    }

    override func tearDown() {
        databases?.remove()
    }

    /// Runs the conformance check named like the calling test method (`testTenantCreateGetList`
    /// runs `tenantCreateGetList`).
    private func check(_ function: String = #function) async throws {
        var name = String(function.prefix { $0 != "(" }.dropFirst("test".count))
        name = name.prefix(1).lowercased() + name.dropFirst()
        guard let check = StoreConformance.checks.first(where: { $0.name == name }) else {
            return XCTFail("no conformance check named \(name)")
        }
        let databases = self.databases!
        let conformance = StoreConformance { try await databases.open(databases.newPath()) }
        do {
            try await check.run(conformance)
        } catch let failure as ConformanceFailure {
            XCTFail(failure.description)
        }
    }

    static let checksWithTests: Set<String> = [
        "pingAnswers", "tenantCreateGetList", "tenantDuplicateIsAlreadyExists", "clientCreateGetRoundTrips",
        "clientListPerTenantAndAllInCreationOrder", "clientDuplicateIsAlreadyExists", "clientOfUnknownTenantIsNotFound",
        "clientDisableKeepsFirstDate", "clientDisableUnknownIsNotFound", "tokenRecordGet", "tokenDuplicateJTIIsAlreadyExists",
        "tokenRevokeRevokesDescendantsTwoLevelsDeep", "tokenRevokeOfMiddleTokenSparesItsAncestors",
        "tokenRevokeAcrossTenantsIsUnknown", "tokenRevokeTwiceIsAlreadyRevoked", "tokenChildOfRevokedParentIsRefused",
        "tokenPurgeExpired", "replayFirstUseThenReplay", "replayExpiredIDIsUsableAgain", "replayNamespacesAreIndependent",
        "replayConcurrentConsumesHaveOneWinner", "replayPurgeExpired", "auditEveryMutationWritesOneRecord",
        "auditFailedMutationsWriteNothing", "auditConcurrentAppendsFormOneChain", "auditConcurrentFailuresLeaveChainIntact",
        "auditRecordsPageInOrder", "auditHeadMatchesLastRecord", "auditTokenExchangeMutationsWriteOneRecordEach",
        "policyVersionsGrowAndCurrentIsNewest", "policyOfUnknownTenantIsNotFound", "policyTenantsAreSeparate",
        "workloadIssuerAddFindListRoundTrips", "workloadIssuerDuplicateIsAlreadyExists", "workloadIssuerOfUnknownTenantIsNotFound",
        "workloadIssuerFindIsTenantScoped", "refreshRecordLookupRoundTrips", "refreshRotateThenReuseRevokesFamily",
        "refreshRotateUnknownIsInactive", "refreshRotateAfterExpiryIsInactive", "refreshConcurrentRotationsHaveOneWinner",
        "refreshRevokingParentRevokesFamily", "refreshChildOfRevokedParentIsRefused", "refreshPurgeExpired",
        "userUpsertCreatesThenUpdates", "userUpsertIsTenantScoped", "userUpsertOfUnknownTenantIsNotFound",
        "userUpsertOfDisabledUserWritesNothing", "userDisableKeepsFirstDate", "userDisableUnknownIsNotFound",
        "userDisableKillsTheirSessions", "sessionCreateTouchRoundTrips", "sessionTouchAfterAbsoluteExpiryIsNil",
        "sessionTouchAfterIdleTimeoutIsNil", "sessionTouchUnknownIsNil", "sessionDeleteOnce", "sessionDuplicateHashIsAlreadyExists",
        "sessionPurgeExpired", "oidcProviderAddGetRoundTrips", "oidcProviderSecondForTenantIsAlreadyExists",
        "oidcProviderOfUnknownTenantIsNotFound", "oidcProviderGetIsTenantScoped",
        "samlProviderAddGetRoundTrips",
        "samlProviderAddAppendsItsAuditEvent",
        "samlProviderSecondForTenantIsAlreadyExists",
        "samlProviderOfUnknownTenantIsNotFound",
        "tokenRecordConsumingAOneTimeValueIsAllOrNothing",
        "samlProviderSameEntityIDInTwoTenantsIsAllowed",
        "samlProviderGetIsTenantScoped",
        "samlProviderListIsInCreationOrder",
        "samlProviderReplaceMetadataChangesOnlyMetadataEntityIDAndFetchedAt",
        "samlProviderReplaceMetadataOfUnknownIDIsNotFound",
        "samlProviderOversizeMetadataIsRefused",
        "revocationLogRecordsTokenRevocations",
        "revocationLogRecordsClientDisable",
        "revocationLogRecordsRefreshReuse",
        "revocationLogPagesInOrder",
        "revocationLogPurgeExpired",
        "revocationLogFollowerMissesNothingUnderConcurrentRevocations",
    ]

    func testEveryConformanceCheckHasATest() {
        XCTAssertEqual(Set(StoreConformance.checks.map(\.name)), Self.checksWithTests)
    }

    func testPingAnswers() async throws { try await check() }
    func testTenantCreateGetList() async throws { try await check() }
    func testTenantDuplicateIsAlreadyExists() async throws { try await check() }
    func testClientCreateGetRoundTrips() async throws { try await check() }
    func testClientListPerTenantAndAllInCreationOrder() async throws { try await check() }
    func testClientDuplicateIsAlreadyExists() async throws { try await check() }
    func testClientOfUnknownTenantIsNotFound() async throws { try await check() }
    func testClientDisableKeepsFirstDate() async throws { try await check() }
    func testClientDisableUnknownIsNotFound() async throws { try await check() }
    func testTokenRecordGet() async throws { try await check() }
    func testTokenDuplicateJTIIsAlreadyExists() async throws { try await check() }
    func testTokenRevokeRevokesDescendantsTwoLevelsDeep() async throws { try await check() }
    func testTokenRevokeOfMiddleTokenSparesItsAncestors() async throws { try await check() }
    func testTokenRevokeAcrossTenantsIsUnknown() async throws { try await check() }
    func testTokenRevokeTwiceIsAlreadyRevoked() async throws { try await check() }
    func testTokenChildOfRevokedParentIsRefused() async throws { try await check() }
    func testTokenPurgeExpired() async throws { try await check() }
    func testReplayFirstUseThenReplay() async throws { try await check() }
    func testReplayExpiredIDIsUsableAgain() async throws { try await check() }
    func testReplayNamespacesAreIndependent() async throws { try await check() }
    func testReplayConcurrentConsumesHaveOneWinner() async throws { try await check() }
    func testReplayPurgeExpired() async throws { try await check() }
    func testAuditEveryMutationWritesOneRecord() async throws { try await check() }
    func testAuditFailedMutationsWriteNothing() async throws { try await check() }
    func testAuditConcurrentAppendsFormOneChain() async throws { try await check() }
    func testAuditConcurrentFailuresLeaveChainIntact() async throws { try await check() }
    func testAuditRecordsPageInOrder() async throws { try await check() }
    func testAuditHeadMatchesLastRecord() async throws { try await check() }
    func testAuditTokenExchangeMutationsWriteOneRecordEach() async throws { try await check() }
    func testPolicyVersionsGrowAndCurrentIsNewest() async throws { try await check() }
    func testPolicyOfUnknownTenantIsNotFound() async throws { try await check() }
    func testPolicyTenantsAreSeparate() async throws { try await check() }
    func testWorkloadIssuerAddFindListRoundTrips() async throws { try await check() }
    func testWorkloadIssuerDuplicateIsAlreadyExists() async throws { try await check() }
    func testWorkloadIssuerOfUnknownTenantIsNotFound() async throws { try await check() }
    func testWorkloadIssuerFindIsTenantScoped() async throws { try await check() }
    func testRefreshRecordLookupRoundTrips() async throws { try await check() }
    func testRefreshRotateThenReuseRevokesFamily() async throws { try await check() }
    func testRefreshRotateUnknownIsInactive() async throws { try await check() }
    func testRefreshRotateAfterExpiryIsInactive() async throws { try await check() }
    func testRefreshConcurrentRotationsHaveOneWinner() async throws { try await check() }
    func testRefreshRevokingParentRevokesFamily() async throws { try await check() }
    func testRefreshChildOfRevokedParentIsRefused() async throws { try await check() }
    func testRefreshPurgeExpired() async throws { try await check() }
    func testUserUpsertCreatesThenUpdates() async throws { try await check() }
    func testUserUpsertIsTenantScoped() async throws { try await check() }
    func testUserUpsertOfUnknownTenantIsNotFound() async throws { try await check() }
    func testUserUpsertOfDisabledUserWritesNothing() async throws { try await check() }
    func testUserDisableKeepsFirstDate() async throws { try await check() }
    func testUserDisableUnknownIsNotFound() async throws { try await check() }
    func testUserDisableKillsTheirSessions() async throws { try await check() }
    func testSessionCreateTouchRoundTrips() async throws { try await check() }
    func testSessionTouchAfterAbsoluteExpiryIsNil() async throws { try await check() }
    func testSessionTouchAfterIdleTimeoutIsNil() async throws { try await check() }
    func testSessionTouchUnknownIsNil() async throws { try await check() }
    func testSessionDeleteOnce() async throws { try await check() }
    func testSessionDuplicateHashIsAlreadyExists() async throws { try await check() }
    func testSessionPurgeExpired() async throws { try await check() }
    func testOidcProviderAddGetRoundTrips() async throws { try await check() }
    func testOidcProviderSecondForTenantIsAlreadyExists() async throws { try await check() }
    func testOidcProviderOfUnknownTenantIsNotFound() async throws { try await check() }
    func testOidcProviderGetIsTenantScoped() async throws { try await check() }
    func testSamlProviderAddGetRoundTrips() async throws { try await check() }
    func testSamlProviderAddAppendsItsAuditEvent() async throws { try await check() }
    func testSamlProviderSecondForTenantIsAlreadyExists() async throws { try await check() }
    func testSamlProviderOfUnknownTenantIsNotFound() async throws { try await check() }
    func testTokenRecordConsumingAOneTimeValueIsAllOrNothing() async throws { try await check() }
    func testSamlProviderSameEntityIDInTwoTenantsIsAllowed() async throws { try await check() }
    func testSamlProviderGetIsTenantScoped() async throws { try await check() }
    func testSamlProviderListIsInCreationOrder() async throws { try await check() }
    func testSamlProviderReplaceMetadataChangesOnlyMetadataEntityIDAndFetchedAt() async throws { try await check() }
    func testSamlProviderReplaceMetadataOfUnknownIDIsNotFound() async throws { try await check() }
    func testSamlProviderOversizeMetadataIsRefused() async throws { try await check() }
    func testRevocationLogRecordsTokenRevocations() async throws { try await check() }
    func testRevocationLogRecordsClientDisable() async throws { try await check() }
    func testRevocationLogRecordsRefreshReuse() async throws { try await check() }
    func testRevocationLogPagesInOrder() async throws { try await check() }
    func testRevocationLogPurgeExpired() async throws { try await check() }
    func testRevocationLogFollowerMissesNothingUnderConcurrentRevocations() async throws { try await check() }
}
