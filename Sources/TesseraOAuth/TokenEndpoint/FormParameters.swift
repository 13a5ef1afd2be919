public import TesseraCore

/// An `application/x-www-form-urlencoded` body parsed strictly (RFC 6749 §3.2, Appendix B).
///
/// RFC 6749 §3.2 says request parameters must not be included more than once; the exceptions are
/// the ones a newer RFC lets repeat (`resource` in RFC 8707, `audience` in RFC 8693). A duplicate,
/// a malformed percent-escape, invalid UTF-8 or a parameter without `=` is `invalid_request`;
/// an empty value counts as absent (RFC 6749 §3.1).
public struct FormParameters: Sendable {
    public static let repeatable: Set<String> = ["resource", "audience"]
    public static let maximumParameters = 64

    private let values: [String: [String]]

    public init(parsing body: [UInt8]) throws(OAuthError) {
        var values: [String: [String]] = [:]
        var count = 0
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            count += 1
            guard count <= Self.maximumParameters else { throw .invalidRequest("too many parameters") }
            guard let equals = pair.firstIndex(of: UInt8(ascii: "=")) else {
                throw .invalidRequest("malformed form body", reason: "parameter without '='")
            }
            guard let name = Self.decode(pair[pair.startIndex..<equals]),
                let value = Self.decode(pair[pair.index(after: equals)...])
            else { throw .invalidRequest("malformed form body", reason: "bad percent-encoding or UTF-8") }
            guard !name.isEmpty else { throw .invalidRequest("malformed form body", reason: "empty parameter name") }
            if values[name] != nil, !Self.repeatable.contains(name) {
                throw .invalidRequest("parameter '\(Self.printable(name))' is repeated")
            }
            if !value.isEmpty { values[name, default: []].append(value) } else if values[name] == nil { values[name] = [] }
        }
        self.values = values
    }

    public init(_ values: [String: String]) { self.values = values.mapValues { [$0] } }

    /// The single value of a non-repeatable parameter, nil when absent or empty.
    public subscript(name: String) -> String? { values[name]?.first }

    public func all(_ name: String) -> [String] { values[name] ?? [] }

    public func contains(_ name: String) -> Bool { values[name] != nil }

    /// Percent-decodes `+`-for-space form encoding; nil on a bad escape or invalid UTF-8.
    static func decode(_ bytes: ArraySlice<UInt8>) -> String? {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "+"):
                output.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard bytes.distance(from: index, to: bytes.endIndex) >= 3,
                    let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
                else { return nil }
                output.append(high << 4 | low)
                index += 2
            default:
                output.append(byte)
            }
            index += 1
        }
        return String(validating: output, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// A parameter name echoed in an error: printable ASCII only, bounded.
    static func printable(_ name: String) -> String {
        String(name.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F && $0 != "'" }.prefix(40))
    }
}
