import Foundation
import TesseraJOSE
import XCTest

final class StrictJSONTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue {
        try StrictJSON.parse(Array(text.utf8))
    }

    private func nested(_ depth: Int) -> String {
        String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
    }

    func testParsesEveryValueKind() throws {
        let value = try parse(#" { "a" : [1, -2.5, true, false, null, "x"], "b": {} , "c": [] } "#)
        XCTAssertEqual(value, ["a": [1, -2.5, true, false, nil, "x"], "b": .object([:]), "c": .array([])])
    }

    func testRefusesDuplicateMembersAtTopLevelAndAtDepth() {
        let documents = [
            #"{"a":1,"a":2}"#,
            #"{"a":1,"b":{"c":1,"c":1}}"#,
            #"{"x":[{"k":1},{"k":1,"k":2}]}"#,
            #"[[[[{"deep":{"d":1,"d":null}}]]]]"#,
            // The same name spelled with an escape is still the same name.
            #"{"alg":"ES256","\u0061lg":"none"}"#,
        ]
        for document in documents {
            assertThrowsJOSEErrorCase(.duplicateMember(""), try parse(document), document)
        }
    }

    func testAcceptsNestingOf32AndRefuses33() throws {
        XCTAssertNoThrow(try parse(nested(StrictJSON.maxDepth)))
        assertThrowsJOSEErrorCase(.malformed(""), try parse(nested(StrictJSON.maxDepth + 1)))
        let deepObjects = String(repeating: #"{"a":"#, count: 33) + "1" + String(repeating: "}", count: 33)
        assertThrowsJOSEErrorCase(.malformed(""), try parse(deepObjects))
        // Far beyond the limit must fail cleanly, not overflow the stack.
        assertThrowsJOSEErrorCase(.malformed(""), try parse(nested(100_000)))
    }

    func testRefusesInvalidEscapesAndLoneSurrogates() {
        let documents = [
            #""\x41""#, #""\u12""#, #""\u12G4""#, #""\'""#, #""\"#,
            #""\uD800""#, #""\uDC00""#, #""\uD800\u0041""#, #""\uD800x""#, #""\uDBFF\uDBFF""#,
        ]
        for document in documents {
            assertThrowsJOSEErrorCase(.malformed(""), try parse(document), document)
        }
    }

    func testDecodesValidEscapesAndSurrogatePairs() throws {
        XCTAssertEqual(try parse(#""\"\\\/\b\f\n\r\t""#), .string("\"\\/\u{08}\u{0C}\n\r\t"))
        XCTAssertEqual(try parse(#""\u00e9\u20AC\uD83D\uDE00""#), .string("é€😀"))
        XCTAssertEqual(try parse(#""a\u0000b""#), .string("a\u{0}b"))
    }

    func testRefusesInvalidUTF8() {
        let inputs: [[UInt8]] = [
            [0x22, 0xC3, 0x22],  // truncated sequence
            [0x22, 0xC0, 0xAF, 0x22],  // overlong "/"
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // surrogate encoded directly (CESU-8)
            [0x22, 0xFF, 0x22],
            [0x22, 0x5C, 0x6E, 0xC3, 0x22],  // invalid after an escape (slow path)
            [0xEF, 0xBB, 0xBF, 0x7B, 0x7D],  // byte order mark before "{}"
        ]
        for input in inputs {
            assertThrowsJOSEErrorCase(.malformed(""), try StrictJSON.parse(input), "\(input)")
        }
    }

    func testRefusesGrammarViolations() {
        let documents = [
            "", " ", "{", "}", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}",
            "[1 2]", "01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity",
            "tru", "nul", "True", "\"unterminated", "\"tab\there\"", "\"new\nline\"",
            "{} {}", "{}x", "1 2", "[1]]", "// comment\n1", "\u{00A0}1",
        ]
        for document in documents {
            assertThrowsJOSEErrorCase(.malformed(""), try parse(document), document.debugDescription)
        }
    }

    func testIntegersUpTo2Pow53AreExactAndLargerOnesAreRefused() throws {
        XCTAssertEqual(try parse("9007199254740992").int64Value, 9_007_199_254_740_992)
        XCTAssertEqual(try parse("-9007199254740992").int64Value, -9_007_199_254_740_992)
        XCTAssertEqual(try parse("1300819380").int64Value, 1_300_819_380)
        assertThrowsJOSEErrorCase(.malformed(""), try parse("9007199254740993"))
        assertThrowsJOSEErrorCase(.malformed(""), try parse("-9007199254740993"))
        assertThrowsJOSEErrorCase(.malformed(""), try parse("9999999999999999"))
        assertThrowsJOSEErrorCase(.malformed(""), try parse("12345678901234567890"))
        assertThrowsJOSEErrorCase(.malformed(""), try parse("1e400"))
        assertThrowsJOSEErrorCase(.malformed(""), try parse("-1e400"))
        XCTAssertEqual(try parse("1.5e3"), 1500)
        XCTAssertEqual(try parse("-0"), .number(0))
        XCTAssertEqual(try parse("1E-2"), 0.01)
    }

    func testSerializesWithSortedKeysAndNoWhitespace() {
        let value: JSONValue = ["b": [true, nil], "a": "x", "C": 1, "é": 2, "aa": ["z": 1, "y": 2]]
        XCTAssertEqual(
            String(decoding: StrictJSON.serialize(value), as: UTF8.self),
            #"{"C":1,"a":"x","aa":{"y":2,"z":1},"b":[true,null],"é":2}"#)
    }

    func testFormatsNumbers() {
        let cases: [(Double, String)] = [
            (0, "0"), (-0.0, "0"), (1, "1"), (-42, "-42"), (1_300_819_380, "1300819380"),
            (9_007_199_254_740_991, "9007199254740991"), (0.5, "0.5"), (-2.25, "-2.25"), (0.1, "0.1"),
            (1e-7, "1e-07"), (9_007_199_254_740_992, "9007199254740992.0"), (1e21, "1e+21"),
            (.infinity, "null"), (.nan, "null"),
        ]
        for (number, expected) in cases {
            XCTAssertEqual(String(decoding: StrictJSON.serialize(.number(number)), as: UTF8.self), expected)
        }
    }

    func testEscapesStringsPerRFC8259() {
        let value: JSONValue = "q\"b\\s/n\nt\tc\u{01}\u{1F}é😀\u{7F}"
        XCTAssertEqual(
            String(decoding: StrictJSON.serialize(value), as: UTF8.self),
            #""q\"b\\s/n\nt\tc\u0001\u001fé😀"# + "\u{7F}\"")
    }

    func testSerializeThenParseRoundTrips() throws {
        let values: [JSONValue] = [
            [
                "iss": "https://issuer.example", "aud": ["a", "b"], "exp": 1_900_000_000,
                "nested": ["k": [1.5, -3, nil]],
            ],
            "control \u{0} \u{1F} \"quotes\" \\ é 😀",
            [["x": ["y": ["z": []]]]],
            0.1, -1e-300, 123_456.789, true, nil,
        ]
        for value in values {
            XCTAssertEqual(try StrictJSON.parse(StrictJSON.serialize(value)), value)
        }
    }

    func testParsesFromAnyByteCollection() throws {
        let text = #"{"a":[1,2]}"#
        XCTAssertEqual(try StrictJSON.parse(text.utf8), ["a": [1, 2]])
        XCTAssertEqual(try StrictJSON.parse(Array(text.utf8)[...]), ["a": [1, 2]])
        XCTAssertEqual(try StrictJSON.parse(Data(text.utf8)), ["a": [1, 2]])
    }
}
