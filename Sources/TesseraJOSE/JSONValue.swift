/// A JSON value (RFC 8259 §3) as produced by ``StrictJSON``.
///
/// Numbers are `Double`, as in I-JSON (RFC 7493 §2.2); ``StrictJSON/parse(_:)`` refuses integer
/// literals that a `Double` cannot hold exactly, so ``int64Value`` never returns a rounded value.
public enum JSONValue: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue {
    /// The largest magnitude at which every integer is exactly representable as a `Double`.
    static let maxExactInteger: Double = 9_007_199_254_740_992  // 2^53

    /// The member `key` when this is an object, otherwise `nil`.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }

    public var stringValue: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    public var doubleValue: Double? {
        guard case .number(let value) = self else { return nil }
        return value
    }

    /// The number as an integer, only when it is integral and within ±2^53, so that the
    /// conversion is exact (RFC 7493 §2.2). `1.5` and `1e300` give `nil`, never a rounded value.
    public var int64Value: Int64? {
        guard case .number(let value) = self, value.isFinite, value.rounded(.towardZero) == value,
            abs(value) <= Self.maxExactInteger
        else { return nil }
        return Int64(value)
    }

    public var boolValue: Bool? {
        guard case .bool(let value) = self else { return nil }
        return value
    }

    public var objectValue: [String: JSONValue]? {
        guard case .object(let value) = self else { return nil }
        return value
    }

    public var arrayValue: [JSONValue]? {
        guard case .array(let value) = self else { return nil }
        return value
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }

    /// Traps on a repeated key, like a `Dictionary` literal: literals are written by programmers,
    /// and a repeated key there is a bug to surface, not input to refuse.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(uniqueKeysWithValues: elements))
    }
}
