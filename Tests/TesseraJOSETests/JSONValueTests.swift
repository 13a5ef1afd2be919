import TesseraJOSE
import XCTest

final class JSONValueTests: XCTestCase {
    func testAccessorsReturnValuesOnlyForTheMatchingCase() {
        let value: JSONValue = ["s": "text", "n": 42, "b": true, "a": [1], "o": ["k": nil]]
        XCTAssertEqual(value["s"]?.stringValue, "text")
        XCTAssertEqual(value["n"]?.doubleValue, 42)
        XCTAssertEqual(value["n"]?.int64Value, 42)
        XCTAssertEqual(value["b"]?.boolValue, true)
        XCTAssertEqual(value["a"]?.arrayValue, [1])
        XCTAssertEqual(value["o"]?.objectValue, ["k": .null])
        XCTAssertEqual(value["o"]?["k"]?.isNull, true)
        XCTAssertNil(value["missing"])
        XCTAssertNil(value["s"]?.doubleValue)
        XCTAssertNil(value["n"]?.stringValue)
        XCTAssertNil(value["s"]?["x"], "subscripting a non-object gives nil")
    }

    func testInt64ValueIsNilUnlessExact() {
        XCTAssertNil(JSONValue.number(1.5).int64Value)
        XCTAssertNil(JSONValue.number(1e300).int64Value)
        XCTAssertNil(JSONValue.number(9_007_199_254_740_994).int64Value)
        XCTAssertNil(JSONValue.number(.nan).int64Value)
        XCTAssertEqual(JSONValue.number(-7).int64Value, -7)
        XCTAssertEqual(JSONValue.number(9_007_199_254_740_992).int64Value, 9_007_199_254_740_992)
    }
}
