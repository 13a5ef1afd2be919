import TesseraCore
import XCTest

final class ScopeGrammarTests: XCTestCase {
    func testParsesBaseAndParametersIntoCanonicalForm() throws {
        let scope = try Scope(parsing: "crm:contacts.read:ids=456,123:fields=name,email")
        XCTAssertEqual(scope.base, "crm:contacts.read")
        XCTAssertEqual(scope.parameters, ["ids": ["123", "456"], "fields": ["email", "name"]])
        XCTAssertEqual(scope.description, "crm:contacts.read:fields=email,name:ids=123,456")
    }

    func testAcceptsDeeperResourcePaths() throws {
        XCTAssertEqual(try Scope(parsing: "erp:ledger.entries.read").base, "erp:ledger.entries.read")
    }

    func testRefusesMalformedScopes() {
        let malformed: [(String, String)] = [
            ("", "empty"),
            ("crm", "no resource"),
            ("crm:contacts", "no action"),
            ("CRM:contacts.read", "upper-case system"),
            ("crm:contacts.read:", "dangling separator"),
            ("crm:contacts.read:ids", "parameter without values"),
            ("crm:contacts.read:ids=", "empty value"),
            ("crm:contacts.read:ids=1,,2", "empty value in list"),
            ("crm:contacts.read:ids=1:ids=2", "duplicate parameter"),
            ("crm:contacts.read:ids=1,1", "duplicate value"),
            ("crm:contacts.read:ids=*,1", "wildcard with other values"),
            ("crm:contacts..read", "empty path segment"),
            ("crm:contacts.read:ids=a b", "space in value"),
            ("crm:contacts.read:ids=%00", "percent in value"),
            ("crm:contacts.read:ids=é", "non-ASCII value"),
            (String(repeating: "a", count: 600) + ":x.y", "too long"),
        ]
        for (text, why) in malformed {
            XCTAssertThrowsError(try Scope(parsing: text), why)
        }
    }

    func testScopeListRefusesDuplicatesAndStraySpaces() {
        XCTAssertThrowsError(try ScopeSet(parsing: "crm:a.read crm:a.read"))
        XCTAssertThrowsError(try ScopeSet(parsing: "crm:a.read  crm:b.read"))
        XCTAssertThrowsError(try ScopeSet(parsing: " crm:a.read"))
        XCTAssertThrowsError(try ScopeSet(parsing: "crm:a.read\tcrm:b.read"))
        XCTAssertThrowsError(
            try ScopeSet(
                parsing: Array(repeating: "crm:a.read", count: 65).enumerated().map { "crm:a\($0.offset).read" }.joined(separator: " ")))
    }

    func testCoversExamplesFromTheDesign() throws {
        let held = try Scope(parsing: "crm:contacts.read:ids=123,456")
        XCTAssertTrue(held.covers(try Scope(parsing: "crm:contacts.read:ids=123")))
        XCTAssertTrue(held.covers(try Scope(parsing: "crm:contacts.read:ids=123:fields=name")), "extra parameters only narrow")
        XCTAssertFalse(held.covers(try Scope(parsing: "crm:contacts.read")), "no ids parameter asks for every contact")
        XCTAssertFalse(held.covers(try Scope(parsing: "crm:contacts.read:ids=123,789")))
        XCTAssertFalse(held.covers(try Scope(parsing: "crm:contacts.write:ids=123")))
        XCTAssertTrue(try Scope(parsing: "crm:contacts.read").covers(try Scope(parsing: "crm:contacts.read:ids=1")))
    }

    func testWildcardValueCoversAnyValuesButRequiresTheParameter() throws {
        let held = try Scope(parsing: "crm:contacts.read:ids=*")
        XCTAssertTrue(held.hasWildcard)
        XCTAssertTrue(held.covers(try Scope(parsing: "crm:contacts.read:ids=9")))
        XCTAssertFalse(held.covers(try Scope(parsing: "crm:contacts.read")))
    }

    func testScopeSetReportsWhatIsNotCovered() throws {
        let held = try ScopeSet(parsing: "crm:contacts.read crm:deals.read:region=eu")
        let asked = try ScopeSet(parsing: "crm:contacts.read:ids=1 crm:deals.read:region=us")
        XCTAssertFalse(held.covers(asked))
        XCTAssertEqual(held.uncovered(asked).map(\.description), ["crm:deals.read:region=us"])
    }
}
