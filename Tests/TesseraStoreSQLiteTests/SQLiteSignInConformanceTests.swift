import TesseraStore
import TesseraStoreConformance
import TesseraStoreSQLite
import XCTest

/// The sign-in conformance suite, one test per check, each on a fresh database file.
final class SQLiteSignInConformanceTests: XCTestCase {
    private var databases: TemporaryDatabases!

    override func setUpWithError() throws {
        databases = try TemporaryDatabases()
    }

    override func tearDown() {
        databases?.remove()
    }

    /// Runs the check named like the calling test method (`testSessionDeleteOnce` runs
    /// `sessionDeleteOnce`).
    private func check(_ function: String = #function) async throws {
        var name = String(function.prefix { $0 != "(" }.dropFirst("test".count))
        name = name.prefix(1).lowercased() + name.dropFirst()
        guard let check = SignInConformance.checks.first(where: { $0.name == name }) else {
            return XCTFail("no sign-in conformance check named \(name)")
        }
        let databases = self.databases!
        let conformance = SignInConformance { try await databases.open(databases.newPath()) }
        do {
            try await check.run(conformance)
        } catch let failure as ConformanceFailure {
            XCTFail(failure.description)
        }
    }

    static let checksWithTests: Set<String> = [
        "userUpsertCreatesThenUpdates", "userUpsertIsTenantScoped", "userUpsertOfUnknownTenantIsNotFound",
        "userUpsertOfDisabledUserWritesNothing", "userDisableKeepsFirstDate", "userDisableUnknownIsNotFound",
        "userDisableKillsTheirSessions", "sessionCreateTouchRoundTrips", "sessionTouchAfterAbsoluteExpiryIsNil",
        "sessionTouchAfterIdleTimeoutIsNil", "sessionTouchUnknownIsNil", "sessionDeleteOnce", "sessionDuplicateHashIsAlreadyExists",
        "sessionPurgeExpired", "oidcProviderAddGetRoundTrips", "oidcProviderSecondForTenantIsAlreadyExists",
        "oidcProviderOfUnknownTenantIsNotFound", "oidcProviderGetIsTenantScoped",
    ]

    func testEverySignInConformanceCheckHasATest() {
        XCTAssertEqual(Set(SignInConformance.checks.map(\.name)), Self.checksWithTests)
    }

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
}
