/// A glob over bytes where `*` matches any run of characters (including none) and every other
/// character matches itself: `repo:acme/*`, `system:serviceaccount:ci:*`. No `?`, no classes, no
/// escapes, so a pattern means what it reads like.
public struct Glob: Sendable, Hashable, CustomStringConvertible {
    public static let maximumLength = 256

    public let pattern: String
    private let pieces: [[UInt8]]

    /// Nil for an empty or too long pattern.
    public init?(_ pattern: String) {
        guard !pattern.isEmpty, pattern.utf8.count <= Self.maximumLength else { return nil }
        self.pattern = pattern
        self.pieces = pattern.utf8.split(separator: UInt8(ascii: "*"), omittingEmptySubsequences: false).map(Array.init)
    }

    /// Greedy matching of the literal pieces between stars: linear in the input, no backtracking
    /// blow-up whatever the pattern.
    public func matches(_ text: String) -> Bool {
        let input = Array(text.utf8)
        guard pieces.count > 1 else { return input == pieces[0] }
        let first = pieces[0]
        let last = pieces[pieces.count - 1]
        guard input.count >= first.count + last.count, input.starts(with: first), input.suffix(last.count).elementsEqual(last)
        else { return false }
        var position = first.count
        let end = input.count - last.count
        for piece in pieces.dropFirst().dropLast() where !piece.isEmpty {
            guard let found = Self.find(piece, in: input, from: position, before: end) else { return false }
            position = found + piece.count
        }
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int, before end: Int) -> Int? {
        guard end - start >= needle.count else { return nil }
        var index = start
        while index + needle.count <= end {
            if haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    public var description: String { pattern }
}
