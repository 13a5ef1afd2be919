import Foundation
import XCTest
@testable import TesseraSAML

/// The checks that come before any signature, each refused under its own name, and the reading
/// of NameID and attributes. Signed documents are tested against a real IdP (Tests/Interop).
final class ResponseVerifierOrderTests: XCTestCase {
    private func refusal(_ encoded: String, pending: String? = "_req") -> SAMLRefusal? {
        let verifier = SAMLResponseVerifier(serviceProvider: SAMLFixtures.sp, decryptionKey: nil)
        do {
            _ = try verifier.verify(
                encodedResponse: encoded, idp: SAMLFixtures.trust, pendingRequestID: pending, allowUnsolicited: false, now: SAMLFixtures.now)
            return nil
        } catch {
            return error
        }
    }

    func testEachMalformedOrUntrustedShapeIsRefusedByItsCheck() {
        let two = SAMLFixtures.assertion(id: "_a1") + SAMLFixtures.assertion(id: "_a2")
        let nested = SAMLFixtures.assertion(id: "_a1", extra: "<saml:Advice>\(SAMLFixtures.assertion(id: "_a2"))</saml:Advice>")
        let cases: [(String, String, SAMLRefusal.Check)] = [
            ("too large", String(repeating: "A", count: SAMLResponseVerifier.maximumEncodedSize + 4), .size),
            ("decoded too large", Data(repeating: 0x20, count: SAMLResponseVerifier.maximumDecodedSize + 1).base64EncodedString(), .size),
            ("not base64", "%%%not-base64%%%", .form),
            ("empty", "", .form),
            ("not XML", SAMLFixtures.encoded("<samlp:Response"), .xml),
            ("not a Response", SAMLFixtures.encoded(SAMLFixtures.assertion()), .xml),
            ("failed status", SAMLFixtures.encoded(SAMLFixtures.response(status: "urn:oasis:names:tc:SAML:2.0:status:Requester")), .status),
            ("no destination", SAMLFixtures.encoded(SAMLFixtures.response(destination: nil)), .destination),
            ("other destination", SAMLFixtures.encoded(SAMLFixtures.response(destination: SAMLFixtures.sp.acsURL + "x")), .destination),
            ("destination prefix", SAMLFixtures.encoded(SAMLFixtures.response(destination: "http://127.0.0.1:8080/sso/acme/saml")), .destination),
            ("no assertion", SAMLFixtures.encoded(SAMLFixtures.response(body: "")), .assertionCount),
            ("two assertions", SAMLFixtures.encoded(SAMLFixtures.response(body: two)), .assertionCount),
            ("nested assertion", SAMLFixtures.encoded(SAMLFixtures.response(body: nested)), .assertionCount),
            ("unsigned assertion", SAMLFixtures.encoded(SAMLFixtures.response()), .signature),
            (
                "duplicate IDs", SAMLFixtures.encoded(SAMLFixtures.response(body: SAMLFixtures.assertion(id: "_r1"))),
                .signature
            ),
            (
                "encrypted without a key",
                SAMLFixtures.encoded(
                    SAMLFixtures.response(
                        body: "<saml:EncryptedAssertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"/>")), .decryption
            ),
        ]
        for (name, encoded, check) in cases {
            XCTAssertEqual(refusal(encoded)?.check, check, name)
        }
    }

    func testARefusalNeverQuotesTheDocument() {
        let secret = "victim-0f3a@example.test"
        let refused = refusal(SAMLFixtures.encoded(SAMLFixtures.response(body: SAMLFixtures.assertion(nameID: secret))))
        XCTAssertNotNil(refused)
        XCTAssertFalse(refused?.description.contains(secret) ?? true)
    }

    func testTheNameIDIsReadWholeThroughAComment() throws {
        let tree = try XMLTree(parsing: Array(SAMLFixtures.assertion(nameID: "victim@example.test<!---->.evil.test").utf8))
        let assertion = try XCTUnwrap(tree.root)
        let subject = try XCTUnwrap(assertion.child("Subject", in: Namespace.assertion))
        XCTAssertEqual(try SAMLResponseVerifier.claims(subject: subject, assertion: assertion).nameID, "victim@example.test.evil.test")
    }

    func testAttributesAreReadWithAllValuesAndFriendlyNames() throws {
        let statement = """
            <saml:AttributeStatement><saml:Attribute Name="urn:oid:0.9.2342.19200300.100.1.3" FriendlyName="mail">\
            <saml:AttributeValue>ada@<!-- x -->example.test</saml:AttributeValue></saml:Attribute>\
            <saml:Attribute Name="groups"><saml:AttributeValue>a</saml:AttributeValue><saml:AttributeValue>b</saml:AttributeValue>\
            </saml:Attribute></saml:AttributeStatement>
            """
        let tree = try XMLTree(parsing: Array(SAMLFixtures.assertion(extra: statement).utf8))
        let assertion = try XCTUnwrap(tree.root)
        let claims = try SAMLResponseVerifier.claims(subject: try XCTUnwrap(assertion.child("Subject", in: Namespace.assertion)), assertion: assertion)
        XCTAssertEqual(claims.values(["mail"]), ["ada@example.test"])
        XCTAssertEqual(claims.attributes["groups"], ["a", "b"])
    }

    func testANameIDWithElementsInsideIsRefused() throws {
        let tree = try XMLTree(parsing: Array(SAMLFixtures.assertion(nameID: "a<x/>b").utf8))
        let assertion = try XCTUnwrap(tree.root)
        XCTAssertThrowsError(
            try SAMLResponseVerifier.claims(subject: try XCTUnwrap(assertion.child("Subject", in: Namespace.assertion)), assertion: assertion))
    }
}
