/// A strict RFC 8259 JSON parser and a deterministic serialiser, for JOSE headers, JWT claims
/// and JWKs.
///
/// The parser refuses everything RFC 8259 leaves to the implementation and attackers use to make
/// two parsers disagree (RFC 7515 §10.12, RFC 8725 §3.11):
/// - duplicate member names at any depth (RFC 8259 §4 says names "SHOULD be unique"; RFC 7515 §5.2
///   requires refusing them in a JOSE header),
/// - nesting deeper than ``maxDepth`` (RFC 8259 §9 allows a limit),
/// - invalid UTF-8, lone surrogates in `\u` escapes, a byte order mark (RFC 8259 §8.1),
/// - anything but whitespace after the value,
/// - integer literals beyond ±2^53, which a `Double` would round (RFC 7493 §2.2), and numbers
///   that overflow to infinity.
///
/// Member names are Swift `String`s, whose equality is Unicode canonical equivalence: two names
/// that differ only in normalisation are therefore refused as duplicates. That is stricter than
/// RFC 8259, on purpose: the two spellings would otherwise address the same claim.
public enum StrictJSON {
    /// The deepest nesting of arrays and objects accepted; the top-level container is depth 1.
    public static let maxDepth = 32

    /// Parses one RFC 8259 JSON text.
    public static func parse(_ data: some Collection<UInt8>) throws(JOSEError) -> JSONValue {
        let result =
            data.withContiguousStorageIfAvailable(parseBuffer)
            ?? Array(data).withUnsafeBufferPointer(parseBuffer)
        return try result.get()
    }

    /// Serialises with object members sorted by the UTF-8 bytes of their names (that is, by
    /// Unicode code point), no insignificant whitespace, integral numbers below 2^53 without a
    /// fraction, and strings escaped per RFC 8259 §7 (only `"`, `\` and controls are escaped).
    ///
    /// Non-finite numbers, which JSON cannot express, are written as `null`, as ECMAScript's
    /// `JSON.stringify` does; ``parse(_:)`` never produces them.
    public static func serialize(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out)
        return out
    }

    private static func parseBuffer(_ buffer: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, JOSEError> {
        Result { () throws(JOSEError) -> JSONValue in
            var parser = Parser(bytes: buffer)
            return try parser.parseDocument()
        }
    }
}

// MARK: - Parsing

private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
}

private struct Parser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws(JOSEError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw .malformed("trailing data after JSON value") }
        return value
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private func isDigit(at position: Int) -> Bool {
        position < bytes.count && bytes[position] >= ASCII.zero && bytes[position] <= ASCII.nine
    }

    /// `depth` is the number of containers enclosing the value.
    private mutating func parseValue(depth: Int) throws(JOSEError) -> JSONValue {
        guard index < bytes.count else { throw .malformed("unexpected end of JSON") }
        switch bytes[index] {
        case ASCII.openBrace:
            return try parseObject(depth: depth + 1)
        case ASCII.openBracket:
            return try parseArray(depth: depth + 1)
        case ASCII.quote:
            index += 1
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case ASCII.minus, ASCII.zero...ASCII.nine:
            return .number(try parseNumber())
        default:
            throw .malformed("unexpected character in JSON")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JOSEError) {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw .malformed("invalid JSON literal") }
        let expected = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        for offset in 0..<count where bytes[index + offset] != expected[offset] {
            throw .malformed("invalid JSON literal")
        }
        index += count
    }

    private mutating func parseObject(depth: Int) throws(JOSEError) -> JSONValue {
        guard depth <= StrictJSON.maxDepth else { throw .malformed("JSON nested too deeply") }
        index += 1  // "{"
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == ASCII.closeBrace {
            index += 1
            return .object(members)
        }
        while true {
            guard index < bytes.count, bytes[index] == ASCII.quote else {
                throw .malformed("expected a member name")
            }
            index += 1
            let name = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == ASCII.colon else { throw .malformed("expected ':'") }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            // Refusing (rather than keeping the first or last) is what RFC 7515 §5.2 asks of a
            // JOSE header, and the only choice on which every other parser agrees with us.
            guard members.updateValue(value, forKey: name) == nil else {
                throw .duplicateMember("duplicate member name")
            }
            skipWhitespace()
            guard index < bytes.count else { throw .malformed("unexpected end of JSON") }
            let separator = bytes[index]
            index += 1
            if separator == ASCII.comma {
                skipWhitespace()
            } else if separator == ASCII.closeBrace {
                return .object(members)
            } else {
                throw .malformed("expected ',' or '}'")
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(JOSEError) -> JSONValue {
        guard depth <= StrictJSON.maxDepth else { throw .malformed("JSON nested too deeply") }
        index += 1  // "["
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == ASCII.closeBracket {
            index += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw .malformed("unexpected end of JSON") }
            let separator = bytes[index]
            index += 1
            if separator == ASCII.comma {
                skipWhitespace()
            } else if separator == ASCII.closeBracket {
                return .array(elements)
            } else {
                throw .malformed("expected ',' or ']'")
            }
        }
    }

    /// Parses the rest of a string whose opening quote has been consumed.
    private mutating func parseString() throws(JOSEError) -> String {
        let start = index
        // Fast path: most JOSE strings (base64url, URLs, claim names) contain no escape.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == ASCII.quote {
                let string = try Self.validatedString(UnsafeBufferPointer(rebasing: bytes[start..<index]))
                index += 1
                return string
            }
            if byte == ASCII.backslash || byte < 0x20 { break }
            index += 1
        }
        var buffer = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case ASCII.quote:
                index += 1
                // Escapes always append whole UTF-8 sequences, so validating the concatenation
                // is the same as validating each raw run on its own.
                return try buffer.withUnsafeBufferPointer { (raw) throws(JOSEError) -> String in
                    try Self.validatedString(raw)
                }
            case ASCII.backslash:
                index += 1
                try parseEscape(into: &buffer)
            case 0x00..<0x20:
                throw .malformed("control character in JSON string")
            default:
                buffer.append(byte)
                index += 1
            }
        }
        throw .malformed("unterminated JSON string")
    }

    private static func validatedString(_ raw: UnsafeBufferPointer<UInt8>) throws(JOSEError) -> String {
        // Rejects overlong forms, surrogates encoded directly (CESU-8) and truncated sequences.
        guard let string = String(validating: raw, as: UTF8.self) else {
            throw .malformed("invalid UTF-8 in JSON string")
        }
        return string
    }

    private mutating func parseEscape(into buffer: inout [UInt8]) throws(JOSEError) {
        guard index < bytes.count else { throw .malformed("unterminated JSON string") }
        let escape = bytes[index]
        index += 1
        switch escape {
        case ASCII.quote: buffer.append(ASCII.quote)
        case ASCII.backslash: buffer.append(ASCII.backslash)
        case ASCII.slash: buffer.append(ASCII.slash)
        case UInt8(ascii: "b"): buffer.append(0x08)
        case UInt8(ascii: "f"): buffer.append(0x0C)
        case UInt8(ascii: "n"): buffer.append(0x0A)
        case UInt8(ascii: "r"): buffer.append(0x0D)
        case UInt8(ascii: "t"): buffer.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try parseHex4()
            let scalarValue: UInt32
            switch unit {
            case 0xD800...0xDBFF:
                guard bytes.count - index >= 2, bytes[index] == ASCII.backslash, bytes[index + 1] == UInt8(ascii: "u")
                else { throw .malformed("lone surrogate in JSON string") }
                index += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw .malformed("lone surrogate in JSON string") }
                scalarValue = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            case 0xDC00...0xDFFF:
                throw .malformed("lone surrogate in JSON string")
            default:
                scalarValue = unit
            }
            guard let scalar = Unicode.Scalar(scalarValue) else { throw .malformed("invalid JSON escape") }
            appendUTF8(scalar, to: &buffer)
        default:
            throw .malformed("invalid JSON escape")
        }
    }

    private mutating func parseHex4() throws(JOSEError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw .malformed("invalid JSON escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .malformed("invalid JSON escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private func appendUTF8(_ scalar: Unicode.Scalar, to buffer: inout [UInt8]) {
        let value = scalar.value
        switch value {
        case 0..<0x80:
            buffer.append(UInt8(value))
        case 0x80..<0x800:
            buffer.append(UInt8(0xC0 | (value >> 6)))
            buffer.append(UInt8(0x80 | (value & 0x3F)))
        case 0x800..<0x10000:
            buffer.append(UInt8(0xE0 | (value >> 12)))
            buffer.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            buffer.append(UInt8(0x80 | (value & 0x3F)))
        default:
            buffer.append(UInt8(0xF0 | (value >> 18)))
            buffer.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
            buffer.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            buffer.append(UInt8(0x80 | (value & 0x3F)))
        }
    }

    /// RFC 8259 §6 grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func parseNumber() throws(JOSEError) -> Double {
        let start = index
        let negative = bytes[index] == ASCII.minus
        if negative { index += 1 }
        guard isDigit(at: index) else { throw .malformed("invalid JSON number") }
        let integerStart = index
        if bytes[index] == ASCII.zero {
            index += 1  // a leading zero stands alone; "01" fails on the "1" that follows
        } else {
            while isDigit(at: index) { index += 1 }
        }
        let integerEnd = index
        var isInteger = true
        if index < bytes.count, bytes[index] == ASCII.dot {
            isInteger = false
            index += 1
            guard isDigit(at: index) else { throw .malformed("invalid JSON number") }
            while isDigit(at: index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == ASCII.lowerE || bytes[index] == ASCII.upperE {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == ASCII.plus || bytes[index] == ASCII.minus { index += 1 }
            guard isDigit(at: index) else { throw .malformed("invalid JSON number") }
            while isDigit(at: index) { index += 1 }
        }

        if isInteger {
            // 2^53 has 16 digits; a longer literal cannot be exact, and rounding it silently
            // would let two different claim values compare equal.
            guard integerEnd - integerStart <= 16 else { throw .malformed("JSON integer out of range") }
            var magnitude: Int64 = 0
            for position in integerStart..<integerEnd {
                magnitude = magnitude * 10 + Int64(bytes[position] - ASCII.zero)
            }
            // Compared as an integer: converting first would round 2^53 + 1 down to 2^53.
            guard magnitude <= 1 << 53 else {
                throw .malformed("JSON integer out of range")
            }
            let value = Double(magnitude)
            return negative ? -value : value
        }

        let literal = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(literal), value.isFinite else { throw .malformed("JSON number out of range") }
        return value
    }
}

// MARK: - Serialisation

extension StrictJSON {
    private static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let flag):
            out.append(contentsOf: flag ? "true".utf8 : "false".utf8)
        case .number(let number):
            writeNumber(number, into: &out)
        case .string(let string):
            writeString(string, into: &out)
        case .array(let elements):
            out.append(ASCII.openBracket)
            for (position, element) in elements.enumerated() {
                if position > 0 { out.append(ASCII.comma) }
                write(element, into: &out)
            }
            out.append(ASCII.closeBracket)
        case .object(let members):
            out.append(ASCII.openBrace)
            let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (position, member) in sorted.enumerated() {
                if position > 0 { out.append(ASCII.comma) }
                writeString(member.key, into: &out)
                out.append(ASCII.colon)
                write(member.value, into: &out)
            }
            out.append(ASCII.closeBrace)
        }
    }

    private static func writeNumber(_ number: Double, into out: inout [UInt8]) {
        guard number.isFinite else {
            out.append(contentsOf: "null".utf8)
            return
        }
        if number.rounded(.towardZero) == number, abs(number) < JSONValue.maxExactInteger {
            out.append(contentsOf: String(Int64(number)).utf8)
        } else {
            // Swift prints the shortest text that round-trips ("0.1", "1e-07", "1e+16"), and
            // every such text is valid RFC 8259 number syntax.
            out.append(contentsOf: number.description.utf8)
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func writeString(_ string: String, into out: inout [UInt8]) {
        out.append(ASCII.quote)
        // Most strings here (ids, scopes, base64url) need no escaping: copy them whole.
        if string.utf8.allSatisfy({ $0 >= 0x20 && $0 != ASCII.quote && $0 != ASCII.backslash }) {
            out.append(contentsOf: string.utf8)
            out.append(ASCII.quote)
            return
        }
        for byte in string.utf8 {
            switch byte {
            case ASCII.quote:
                out.append(ASCII.backslash)
                out.append(ASCII.quote)
            case ASCII.backslash:
                out.append(ASCII.backslash)
                out.append(ASCII.backslash)
            case 0x08:
                out.append(ASCII.backslash)
                out.append(UInt8(ascii: "b"))
            case 0x0C:
                out.append(ASCII.backslash)
                out.append(UInt8(ascii: "f"))
            case 0x0A:
                out.append(ASCII.backslash)
                out.append(UInt8(ascii: "n"))
            case 0x0D:
                out.append(ASCII.backslash)
                out.append(UInt8(ascii: "r"))
            case 0x09:
                out.append(ASCII.backslash)
                out.append(UInt8(ascii: "t"))
            case 0x00..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            default:
                out.append(byte)
            }
        }
        out.append(ASCII.quote)
    }
}
