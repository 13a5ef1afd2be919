/// The form in which `htu` and the request URL are compared (RFC 9449 §4.3 item 9): the URL
/// without query and fragment, after the syntax-based normalisation of RFC 3986 §6.2.2 and the
/// scheme-based normalisation of §6.2.3 for `http` and `https`.
///
/// - scheme and host lower-case (§6.2.2.1);
/// - percent-encoded unreserved characters decoded, other percent-encodings with upper-case
///   hex digits (§6.2.2.1–2); `%2F` stays encoded, it is not a `/`;
/// - dot segments removed (§6.2.2.3, the algorithm of §5.2.4);
/// - the default port (80, 443) and an empty port removed, an empty path made `/` (§6.2.3).
///
/// Anything outside that grammar gives `nil`, and the caller refuses it: a scheme other than
/// `http` or `https`, a relative reference, userinfo (a client has no reason to send it, and it
/// is a classic way to make two parsers see different hosts), an empty host, a host with
/// characters other than ASCII letters, digits, `-`, `.`, `_`, `~` (so no percent-encoded or
/// Unicode host: clients send the A-label), a bad port, and a path character that RFC 3986
/// would have percent-encoded (space, `\`, `"`, non-ASCII…). Query and fragment are cut at
/// the first `?` or `#` and not examined.
public enum DPoPURL {
    public static func normalized(_ url: String) -> String? {
        var input = Array(url.utf8)
        if let end = input.firstIndex(where: { $0 == ASCII.question || $0 == ASCII.hash }) {
            input.removeSubrange(end...)
        }
        guard let colon = input.firstIndex(of: ASCII.colon) else { return nil }
        let scheme = String(decoding: input[..<colon].map(lowercased), as: UTF8.self)
        let defaultPort: Int
        switch scheme {
        case "http": defaultPort = 80
        case "https": defaultPort = 443
        default: return nil
        }
        let authorityStart = colon + 3
        guard input.count >= authorityStart, input[colon + 1] == ASCII.slash, input[colon + 2] == ASCII.slash else {
            return nil
        }
        let authorityEnd = input[authorityStart...].firstIndex(of: ASCII.slash) ?? input.endIndex
        guard let authority = normalizedAuthority(input[authorityStart..<authorityEnd], defaultPort: defaultPort),
            let path = normalizedPath(input[authorityEnd...])
        else { return nil }
        return scheme + "://" + authority + String(decoding: path, as: UTF8.self)
    }

    private static func normalizedAuthority(_ bytes: ArraySlice<UInt8>, defaultPort: Int) -> String? {
        let host: ArraySlice<UInt8>
        let port: ArraySlice<UInt8>?
        if bytes.first == ASCII.openBracket {
            // IP-literal (RFC 3986 §3.2.2): IPv6 only; IPvFuture is refused with the rest.
            guard let close = bytes.firstIndex(of: ASCII.closeBracket) else { return nil }
            let address = bytes[(bytes.startIndex + 1)..<close]
            guard !address.isEmpty, address.allSatisfy({ isHexDigit($0) || $0 == ASCII.colon || $0 == ASCII.dot })
            else { return nil }
            host = bytes[bytes.startIndex...close]
            let rest = bytes[(close + 1)...]
            guard rest.isEmpty || rest.first == ASCII.colon else { return nil }
            port = rest.isEmpty ? nil : rest.dropFirst()
        } else {
            if let colon = bytes.lastIndex(of: ASCII.colon) {
                host = bytes[..<colon]
                port = bytes[(colon + 1)...]
            } else {
                host = bytes
                port = nil
            }
            // Also refuses "@" (userinfo) and "%" (percent-encoded reg-names).
            guard !host.isEmpty, host.allSatisfy(isUnreserved) else { return nil }
        }
        var authority = String(decoding: host.map(lowercased), as: UTF8.self)
        if let port, !port.isEmpty {
            guard port.count <= 5, port.allSatisfy(isDigit) else { return nil }
            let number = port.reduce(0) { $0 * 10 + Int($1 - ASCII.zero) }
            guard number <= 65_535 else { return nil }
            // Written without leading zeros, so that ":0443" and ":443" are the same port.
            if number != defaultPort { authority += ":\(number)" }
        }
        return authority
    }

    private static func normalizedPath(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var path: [UInt8] = []
        path.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == ASCII.percent {
                guard bytes.endIndex - index >= 3, let high = hexValue(bytes[index + 1]),
                    let low = hexValue(bytes[index + 2])
                else { return nil }
                let decoded = high << 4 | low
                if isUnreserved(decoded) {
                    path.append(decoded)
                } else {
                    path.append(contentsOf: [ASCII.percent, upperHexDigits[Int(high)], upperHexDigits[Int(low)]])
                }
                index += 3
            } else {
                guard
                    isUnreserved(byte) || isSubDelimiter(byte) || byte == ASCII.colon || byte == ASCII.at
                        || byte == ASCII.slash
                else { return nil }
                path.append(byte)
                index += 1
            }
        }
        return removingDotSegments(path)
    }

    /// RFC 3986 §5.2.4 for a path that is empty or starts with "/" (path-abempty), which is the
    /// only kind an absolute URL with an authority has. An empty result is "/" (§6.2.3).
    private static func removingDotSegments(_ path: [UInt8]) -> [UInt8] {
        guard !path.isEmpty else { return [ASCII.slash] }
        let segments = path.dropFirst().split(separator: ASCII.slash, omittingEmptySubsequences: false)
        var output: [ArraySlice<UInt8>] = []
        for (position, segment) in segments.enumerated() {
            let isLast = position == segments.count - 1
            if segment.elementsEqual([ASCII.dot]) {
                // "/a/." is "/a/": the dot segment goes, its leading slash stays.
                if isLast { output.append([]) }
            } else if segment.elementsEqual([ASCII.dot, ASCII.dot]) {
                _ = output.popLast()
                if isLast { output.append([]) }
            } else {
                output.append(segment)
            }
        }
        var result: [UInt8] = []
        result.reserveCapacity(path.count)
        for segment in output {
            result.append(ASCII.slash)
            result.append(contentsOf: segment)
        }
        return result.isEmpty ? [ASCII.slash] : result
    }

    // MARK: Character classes (RFC 3986 §2)

    private static let upperHexDigits = Array("0123456789ABCDEF".utf8)

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (ASCII.zero...ASCII.nine).contains(byte) }

    private static func isHexDigit(_ byte: UInt8) -> Bool { hexValue(byte) != nil }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case ASCII.zero...ASCII.nine: byte - ASCII.zero
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// ALPHA / DIGIT / "-" / "." / "_" / "~"
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), ASCII.zero...ASCII.nine,
            UInt8(ascii: "-"), ASCII.dot, UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
    private static func isSubDelimiter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
            UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
            UInt8(ascii: "="):
            true
        default:
            false
        }
    }

    private enum ASCII {
        static let question = UInt8(ascii: "?")
        static let hash = UInt8(ascii: "#")
        static let colon = UInt8(ascii: ":")
        static let slash = UInt8(ascii: "/")
        static let dot = UInt8(ascii: ".")
        static let at = UInt8(ascii: "@")
        static let percent = UInt8(ascii: "%")
        static let openBracket = UInt8(ascii: "[")
        static let closeBracket = UInt8(ascii: "]")
        static let zero = UInt8(ascii: "0")
        static let nine = UInt8(ascii: "9")
    }
}
