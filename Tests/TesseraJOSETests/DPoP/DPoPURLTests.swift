import TesseraJOSE
import XCTest

final class DPoPURLTests: XCTestCase {
    private func assertNormalizes(
        _ cases: [(String, String)], file: StaticString = #filePath, line: UInt = #line
    ) {
        for (input, expected) in cases {
            XCTAssertEqual(DPoPURL.normalized(input), expected, input, file: file, line: line)
        }
    }

    func testKeepsAnAlreadyNormalURL() {
        assertNormalizes([
            ("https://server.example.com/token", "https://server.example.com/token"),
            ("http://127.0.0.1:8080/oauth2/token", "http://127.0.0.1:8080/oauth2/token"),
        ])
    }

    func testLowercasesSchemeAndHostButNotThePath() {
        assertNormalizes([
            ("HTTPS://Server.EXAMPLE.com/Token", "https://server.example.com/Token"),
            ("HtTp://A.B/C", "http://a.b/C"),
        ])
    }

    func testRemovesTheDefaultAndEmptyPortsOnly() {
        assertNormalizes([
            ("https://a.example:443/x", "https://a.example/x"),
            ("http://a.example:80/x", "http://a.example/x"),
            ("https://a.example:/x", "https://a.example/x"),
            ("https://a.example:80/x", "https://a.example:80/x"),
            ("http://a.example:443/x", "http://a.example:443/x"),
            ("https://a.example:8443/x", "https://a.example:8443/x"),
            ("https://a.example:0443/x", "https://a.example/x"),
            ("https://a.example:08443/x", "https://a.example:8443/x"),
        ])
    }

    func testMakesAnEmptyPathSlash() {
        assertNormalizes([
            ("https://a.example", "https://a.example/"),
            ("https://a.example:443", "https://a.example/"),
            ("https://a.example?x=1", "https://a.example/"),
        ])
    }

    func testDecodesPercentEncodedUnreservedCharactersOnly() {
        assertNormalizes([
            ("https://a.example/%7Euser/%41%62%2D%2E%5F", "https://a.example/~user/Ab-._"),
            ("https://a.example/a%2fb", "https://a.example/a%2Fb"),
            ("https://a.example/a%2Fb", "https://a.example/a%2Fb"),
            ("https://a.example/%3a%40%20%e2%82%ac", "https://a.example/%3A%40%20%E2%82%AC"),
        ])
        XCTAssertNotEqual(DPoPURL.normalized("https://a.example/a%2Fb"), DPoPURL.normalized("https://a.example/a/b"))
    }

    func testRemovesDotSegments() {
        // RFC 3986 §5.2.4 and §5.4.1 examples, in absolute form.
        assertNormalizes([
            ("https://a.example/a/b/c/./../../g", "https://a.example/a/g"),
            ("https://a.example/mid/content=5/../6", "https://a.example/mid/6"),
            ("https://a.example/b/c/.", "https://a.example/b/c/"),
            ("https://a.example/b/c/..", "https://a.example/b/"),
            ("https://a.example/../../g", "https://a.example/g"),
            ("https://a.example/..", "https://a.example/"),
            ("https://a.example/./g/.", "https://a.example/g/"),
            ("https://a.example/b//../g", "https://a.example/b/g"),
            ("https://a.example/b/g..", "https://a.example/b/g.."),
            ("https://a.example/b/.g", "https://a.example/b/.g"),
            // Percent-encoded dots are unreserved: decoded first, then removed.
            ("https://a.example/b/%2E%2E/g", "https://a.example/g"),
        ])
    }

    func testDropsQueryAndFragment() {
        assertNormalizes([
            ("https://a.example/token?x=1&y=2", "https://a.example/token"),
            ("https://a.example/token#frag", "https://a.example/token"),
            ("https://a.example/token#frag?not-a-query", "https://a.example/token"),
            ("https://a.example/token?q=a%zz b", "https://a.example/token"),
        ])
    }

    func testAcceptsIPv6Literals() {
        assertNormalizes([
            ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
            ("http://[::1]:8080", "http://[::1]:8080/"),
        ])
    }

    func testRefusesWhatIsNotAnAbsoluteHTTPURL() {
        let refused = [
            "", "/token", "//a.example/token", "a.example/token", "https:a.example/token", "https:/a.example",
            "ftp://a.example/token", "file:///etc/passwd", "javascript://a.example/%0Aalert(1)", "https://",
            "https:///token", "https://:443/token",
            "https://user@a.example/token", "https://user:pass@a.example/token", "https://a.example@b.example/",
            "https://a.example:https/", "https://a.example:65536/", "https://a.example:123456/",
            "https://a.example:-1/",
            "https://a%2Eexample/", "https://a example/", "https://exämple.com/", "https://a.example\\@b.example/",
            "https://[::1/", "https://[]/", "https://[v1.x]/", "https://[::1]x/", "https://[::1]:x/",
            "https://a.example/a b", "https://a.example/a\\b", "https://a.example/é", "https://a.example/a\"b",
            "https://a.example/%", "https://a.example/%2", "https://a.example/%zz", "https://a.example/<x>",
        ]
        for url in refused {
            XCTAssertNil(DPoPURL.normalized(url), url)
        }
    }
}
