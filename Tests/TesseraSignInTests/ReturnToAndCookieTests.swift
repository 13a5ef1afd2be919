import Foundation
import TesseraCore
import TesseraJOSE
import TesseraSignIn
import XCTest

final class ReturnToTests: XCTestCase {
    func testOnlyLocalPathsAreAccepted() {
        for good in ["/", "/session", "/admin/connectors?tab=consents", "/a/b#c", "/a/b?x=../y", "/a/..b/c.d"] {
            XCTAssertNotNil(ReturnTo(good), good)
        }
        let hostile = [
            "https://evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)", "evil.example",
            "/path\nLocation: https://evil.example", "/ space", "", "/\u{7F}", "/é", String(repeating: "/a", count: 600),
            "/\\/evil.example", "/a\\b",
            // dot segments step out of an allowed prefix once the browser resolves them
            "/admin/../session", "/admin/./../x", "/admin/..", "/admin/%2e%2e/session", "/admin/%2E%2E/x", "/admin%2f..%2fx",
            "/admin/.%2e/x", "/./x",
        ]
        for bad in hostile {
            XCTAssertNil(ReturnTo(bad), bad)
        }
    }
}

final class CookieSealerTests: XCTestCase {
    let sealer = CookieSealer(key: Array(repeating: 7, count: 32))

    func testASealedValueOpensOnlyForItsCookieAndKey() throws {
        let value: JSONValue = ["s": "state", "e": 1_800_000_000]
        let sealed = sealer.seal(value, cookie: "tessera_oidc_login")
        XCTAssertEqual(sealer.open(sealed, cookie: "tessera_oidc_login"), value)
        XCTAssertNil(sealer.open(sealed, cookie: "tessera_session"), "bound to the cookie name")
        XCTAssertNil(CookieSealer(key: Array(repeating: 8, count: 32)).open(sealed, cookie: "tessera_oidc_login"))
        var bytes = Array(sealed.utf8)
        bytes[bytes.count / 2] = bytes[bytes.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        XCTAssertNil(sealer.open(String(decoding: bytes, as: UTF8.self), cookie: "tessera_oidc_login"), "tampering is detected")
        XCTAssertNil(sealer.open("", cookie: "tessera_oidc_login"))
        XCTAssertNil(sealer.open(String(repeating: "A", count: 5000), cookie: "tessera_oidc_login"))
    }
}
