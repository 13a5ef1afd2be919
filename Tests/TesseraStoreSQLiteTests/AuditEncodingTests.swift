import Foundation
import TesseraCore
import TesseraStore
import XCTest

/// The audit body is hashed byte for byte, so its encoding is part of the audit contract.
final class AuditEncodingTests: XCTestCase {
    func testBodyHasSortedKeysOmitsAbsentFieldsAndRoundTrips() throws {
        let event = AuditEvent(
            id: "e1", ts: Date(timeIntervalSince1970: 1_800_000_000.5), tenant: "acme", actor: .client("c1"), clientID: "c1",
            action: "token.issued", outcome: .success, reason: "quote \" backslash \\ newline \n tab \t bell \u{7} é",
            jti: "j1", scopes: .init(requested: ["crm:a.read"], granted: ["crm:a.read"]), traceID: "t1")
        let body = AuditChain.encode(event)
        let text = String(decoding: body, as: UTF8.self)
        XCTAssertEqual(
            text,
            #"{"action":"token.issued","actor":{"id":"c1","type":"client"},"client_id":"c1","id":"e1","jti":"j1","outcome":"success","reason":"quote \" backslash \\ newline \n tab \t bell \u0007 é","scopes":{"granted":["crm:a.read"],"requested":["crm:a.read"]},"tenant":"acme","trace_id":"t1","ts":"2027-01-15T08:00:00.500Z"}"#
        )
        // The body reads back as the same event.
        XCTAssertEqual(try AuditChain.decode(body), event)
        let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        XCTAssertNil(object?["resource"])
        XCTAssertNil(object?["decision"])
    }
}
