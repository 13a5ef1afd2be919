import XCTest
@testable import TesseraSAML

/// The strict parser: no DTD of any kind, no entity, no network, and the whole text of a value.
final class XMLHardeningTests: XCTestCase {
    func testTheLibraryStartsAndItsStructLayoutsMatchOurs() throws {
        XCTAssertNoThrow(try XMLSecurity.ready())
    }

    func testEveryKindOfDOCTYPEIsRefusedAsDOCTYPE() {
        let documents = [
            "<!DOCTYPE r><r/>",
            "<!DOCTYPE r [<!ENTITY x \"y\">]><r>&x;</r>",
            "<!DOCTYPE r SYSTEM \"file:///etc/passwd\"><r/>",
            "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
            "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><r>&c;</r>",
            "<?xml version=\"1.0\"?>\n<!DOCTYPE r PUBLIC \"-//x//y\" \"http://127.0.0.1:9/dtd\"><r/>",
        ]
        for document in documents {
            XCTAssertThrowsError(try XMLTree(parsing: Array(document.utf8)), document) { error in
                XCTAssertEqual(error as? XMLReadFailure, .doctype, document)
            }
        }
    }

    func testAnUndeclaredEntityOrBrokenMarkupIsNotWellFormed() {
        for document in ["<r>&x;</r>", "<r>", "", "not xml", "<r></s>", "<r a='1' a='2'/>"] {
            XCTAssertThrowsError(try XMLTree(parsing: Array(document.utf8)), document) { error in
                XCTAssertEqual(error as? XMLReadFailure, .notWellFormed, document)
            }
        }
    }

    func testTextIsTheWholeContentEvenWithACommentInside() throws {
        let tree = try XMLTree(parsing: Array("<r>victim@example.test<!-- cut -->.evil.test</r>".utf8))
        XCTAssertEqual(tree.root?.text, "victim@example.test.evil.test")
    }

    func testTheResponseVerifierRefusesADOCTYPEBeforeReadingAnything() {
        let xml = SAMLFixtures.response(prolog: "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>")
        XCTAssertEqual(refusal(xml)?.check, .doctype)
    }

    private func refusal(_ xml: String) -> SAMLRefusal? {
        let verifier = SAMLResponseVerifier(serviceProvider: SAMLFixtures.sp, decryptionKey: nil)
        do {
            _ = try verifier.verify(
                encodedResponse: SAMLFixtures.encoded(xml), idp: SAMLFixtures.trust, pendingRequestID: "_req", allowUnsolicited: false,
                now: SAMLFixtures.now)
            return nil
        } catch {
            return error
        }
    }
}
