import Foundation
import TesseraCore
import TesseraOAuth
import XCTest

final class FormParametersTests: XCTestCase {
    func parse(_ text: String) throws -> FormParameters { try FormParameters(parsing: Array(text.utf8)) }

    func testDecodesPercentEscapesAndPlus() throws {
        let form = try parse("scope=crm%3Acontacts.read+crm%3Adeals.read&client_id=a%2Bb")
        XCTAssertEqual(form["scope"], "crm:contacts.read crm:deals.read")
        XCTAssertEqual(form["client_id"], "a+b")
    }

    func testRefusesRepeatedParametersExceptThoseAnRFCLetsRepeat() throws {
        XCTAssertThrowsError(try parse("grant_type=a&grant_type=a")) { error in
            XCTAssertEqual((error as? OAuthError)?.code, .invalidRequest)
        }
        let form = try parse("resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&audience=x&audience=y")
        XCTAssertEqual(form.all("resource"), ["https://a", "https://b"])
        XCTAssertEqual(form.all("audience"), ["x", "y"])
    }

    func testEmptyValueCountsAsAbsentButStillCannotRepeat() throws {
        let form = try parse("scope=&grant_type=client_credentials")
        XCTAssertNil(form["scope"])
        XCTAssertThrowsError(try parse("scope=&scope=x"))
    }

    func testRefusesMalformedBodies() {
        for body in ["a", "=x", "a=%", "a=%4", "a=%zz", "a=%ff", "a=%c3%28", "%zz=1"] {
            XCTAssertThrowsError(try parse(body), body)
        }
        XCTAssertThrowsError(try parse((0..<65).map { "p\($0)=1" }.joined(separator: "&")))
    }

    func testPresentedCredentialsRefuseTwoMethodsInOneRequest() throws {
        let form = try parse("client_id=a&client_secret=b")
        XCTAssertThrowsError(try PresentedClientCredentials(authorization: "Basic YTpi", form: form)) { error in
            XCTAssertEqual((error as? OAuthError)?.code, .invalidRequest)
        }
    }

    func testBasicCredentialsAreFormDecodedPerRFC6749() throws {
        // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
        let header = "Basic " + Array("my%3Aclient:s%2Bcret".utf8).base64()
        let presented = try PresentedClientCredentials(authorization: header, form: try parse("grant_type=x"))
        guard case .secretBasic(let id, let secret) = presented.method else { return XCTFail("not basic") }
        XCTAssertEqual(id, "my:client")
        XCTAssertEqual(secret, "s+cret")
    }
}

extension Array where Element == UInt8 {
    func base64() -> String { Data(self).base64EncodedString() }
}
