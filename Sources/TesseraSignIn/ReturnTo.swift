/// Where a browser goes after signing in: a path on this site only, so the sign-in endpoints can
/// never be used as an open redirect (`//evil.example`, `/\evil.example`, `https:…`, `javascript:…`)
/// nor step out of an allowed prefix (`/admin/../x`, `/admin/%2e%2e/x`).
public struct ReturnTo: Sendable, Hashable, CustomStringConvertible {
    public static let maximumLength = 1024
    public static let `default` = ReturnTo(checked: "/session")

    public let path: String

    private init(checked path: String) { self.path = path }

    /// Nil unless `text` is an absolute path: one leading `/` not followed by `/` or `\`, no `\`
    /// anywhere (browsers read it as `/`), printable ASCII only, bounded.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= Self.maximumLength, bytes[0] == UInt8(ascii: "/") else { return nil }
        if bytes.count > 1, bytes[1] == UInt8(ascii: "/") || bytes[1] == UInt8(ascii: "\\") { return nil }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }) else { return nil }
        // No dot segments, plain or percent-encoded, and no encoded separators: a browser resolves
        // `/admin/../x` to `/x`, which would step out of a tenant's allowed prefix.
        let pathPart = text.prefix { $0 != "?" && $0 != "#" }
        let lowered = pathPart.lowercased()
        guard !lowered.contains("%2e"), !lowered.contains("%2f"), !lowered.contains("%5c") else { return nil }
        guard !pathPart.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == "." || $0 == ".." }) else {
            return nil
        }
        path = text
    }

    public var description: String { path }
}
