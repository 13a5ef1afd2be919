import Foundation
import TesseraCore
import TesseraStore
import XCTest

@testable import TesseraStoreSQLite

private let epoch = Date(timeIntervalSince1970: 1_767_225_600)
private let acme = TenantID("acme")!
private let globex = TenantID("globex")!

private func event(_ action: String) -> AuditEvent {
    AuditEvent(ts: epoch, tenant: "acme", actor: .operator("test"), action: action, outcome: .success)
}

private let family = RefreshFamily(
    familyID: "family-1", tenantID: acme, clientID: "svc", subject: "svc", subjectType: "service",
    scopes: try! ScopeSet(parsing: "crm:contacts.read"), audience: ["crm"], actClaim: nil, jkt: nil, policyFacts: "{}",
    parentJTI: nil, issuedAt: epoch, expiresAt: epoch.addingTimeInterval(3600))

private func hash(_ label: String) -> [UInt8] { Secrets.sha256(label) }

private func accessToken(_ jti: String, parent: String? = "family-1", tenant: TenantID = acme) -> IssuedToken {
    IssuedToken(
        jti: jti, tenantID: tenant, clientID: "svc", subject: "svc", scopes: ["crm:contacts.read"], issuedAt: epoch,
        expiresAt: epoch.addingTimeInterval(300), parentJTI: parent)
}

private func refresh(_ label: String, family familyID: String = "family-1") -> RefreshTokenRecord {
    RefreshTokenRecord(hash: hash(label), familyID: familyID, issuedAt: epoch)
}

/// What the SQLite refresh-token store enforces beyond the conformance suite: records that do not
/// belong to their family are refused whole, and a family whose lineage row is gone is not trusted.
final class SQLiteRefreshTokenStoreTests: XCTestCase {
    private var databases: TemporaryDatabases!

    override func setUpWithError() throws {
        databases = try TemporaryDatabases()
    }

    override func tearDown() {
        databases?.remove()
    }

    func testRecordOfTokensNotBelongingToTheFamilyIsConflictAndWritesNothing() async throws {
        let path = databases.newPath()
        let store = try await databases.open(path)
        let cases: [(String, IssuedToken, RefreshTokenRecord)] = [
            ("access token without parent", accessToken("at-0", parent: nil), refresh("r-0")),
            ("access token of another parent", accessToken("at-0", parent: "other"), refresh("r-0")),
            ("access token of another tenant", accessToken("at-0", tenant: globex), refresh("r-0")),
            ("refresh token of another family", accessToken("at-0"), refresh("r-0", family: "family-2")),
        ]
        for (what, token, record) in cases {
            do {
                try await store.refreshTokens.recordIssued(token, family: family, refresh: record, audit: event("token.exchanged"))
                XCTFail("\(what): recorded")
            } catch let error as StoreError {
                guard case .conflict = error else { return XCTFail("\(what): expected conflict, got \(error)") }
            }
        }
        let counts = try withRawConnection(path) { connection in
            try connection.queryOne(
                """
                SELECT (SELECT COUNT(*) FROM issued_tokens), (SELECT COUNT(*) FROM refresh_families),
                    (SELECT COUNT(*) FROM refresh_tokens), (SELECT COUNT(*) FROM audit)
                """
            ) { [$0.int64(0), $0.int64(1), $0.int64(2), $0.int64(3)] }
        }
        XCTAssertEqual(counts, [0, 0, 0, 0])
        await store.close()
    }

    /// A rotation refused for a token that is not the family's rolls back whole: the presented
    /// refresh token stays unused and can still be rotated.
    func testRotationWithATokenNotOfTheFamilyIsConflictAndLeavesThePresentedTokenUnused() async throws {
        let store = try await databases.open(databases.newPath())
        try await store.refreshTokens.recordIssued(
            accessToken("at-0"), family: family, refresh: refresh("r-0"), audit: event("token.exchanged"))
        let before = try await store.audit.head()
        let refused: [(String, IssuedToken, RefreshTokenRecord)] = [
            ("access token of another parent", accessToken("at-1", parent: "other"), refresh("r-1")),
            ("next token of another family", accessToken("at-1"), refresh("r-1", family: "family-2")),
        ]
        for (what, token, next) in refused {
            do {
                _ = try await store.refreshTokens.rotate(
                    presented: hash("r-0"), next: next, token: token, at: epoch.addingTimeInterval(60),
                    audit: event("token.refreshed"), reuseAudit: event("token.refresh_reused"))
                XCTFail("\(what): rotated")
            } catch let error as StoreError {
                guard case .conflict = error else { return XCTFail("\(what): expected conflict, got \(error)") }
            }
        }
        let after = try await store.audit.head()
        XCTAssertEqual(after, before)
        let presented = try await store.refreshTokens.lookup(hash: hash("r-0"), now: epoch)
        XCTAssertEqual(presented?.used, false)
        let rotation = try await store.refreshTokens.rotate(
            presented: hash("r-0"), next: refresh("r-1"), token: accessToken("at-1"), at: epoch.addingTimeInterval(60),
            audit: event("token.refreshed"), reuseAudit: event("token.refresh_reused"))
        XCTAssertEqual(rotation, .rotated)
        await store.close()
    }

    /// Revocation reaches a family only through its row in `issued_tokens`; once that row is gone
    /// (purged with a date past the family's expiry) the family cannot be cut off, so it is
    /// treated as revoked rather than trusted.
    func testFamilyWithoutItsLineageRowIsRevoked() async throws {
        let store = try await databases.open(databases.newPath())
        try await store.refreshTokens.recordIssued(
            accessToken("at-0"), family: family, refresh: refresh("r-0"), audit: event("token.exchanged"))
        _ = try await store.tokens.purgeExpired(before: family.expiresAt.addingTimeInterval(1))
        let found = try await store.refreshTokens.lookup(hash: hash("r-0"), now: epoch)
        XCTAssertEqual(found?.familyRevoked, true)
        let rotation = try await store.refreshTokens.rotate(
            presented: hash("r-0"), next: refresh("r-1"), token: accessToken("at-1"), at: epoch.addingTimeInterval(60),
            audit: event("token.refreshed"), reuseAudit: event("token.refresh_reused"))
        XCTAssertEqual(rotation, .inactive)
        await store.close()
    }

    /// Only the hash of a refresh token reaches the file: the column is a 32-byte blob.
    func testOnlyTheHashIsStored() async throws {
        let path = databases.newPath()
        let store = try await databases.open(path)
        try await store.refreshTokens.recordIssued(
            accessToken("at-0"), family: family, refresh: refresh("r-0"), audit: event("token.exchanged"))
        await store.close()
        let stored = try withRawConnection(path) { connection in
            try connection.query("SELECT hash FROM refresh_tokens") { $0.blob(0) }
        }
        XCTAssertEqual(stored, [hash("r-0")])
    }
}
