/// A parameterized scope: `system:resource.action[:param=v1,v2]...` (DESIGN.md, "Scopes").
///
/// `crm:contacts.read:ids=123,456` grants reading the contacts 123 and 456 only. Parameter values
/// are sets: their order carries no meaning, so the canonical form sorts keys and values.
public struct Scope: Sendable, Hashable, CustomStringConvertible, Comparable {
    /// The longest scope string accepted; longer ones are refused rather than truncated.
    public static let maximumLength = 512
    /// A parameter value that stands for every value. Refused unless a policy names it.
    public static let wildcard = "*"

    /// `system:resource.action`, e.g. `crm:contacts.read`.
    public let base: String
    /// Parameter name to its set of allowed values; a missing name means "any".
    public let parameters: [String: Set<String>]

    public init(base: String, parameters: [String: Set<String>] = [:]) throws(ScopeSyntaxError) {
        guard Self.isValidBase(base) else { throw ScopeSyntaxError(reason: "base must be system:resource.action") }
        for (name, values) in parameters {
            guard Self.isValidName(name) else { throw ScopeSyntaxError(reason: "invalid parameter name") }
            guard !values.isEmpty else { throw ScopeSyntaxError(reason: "parameter without values") }
            for value in values where !Self.isValidValue(value) {
                throw ScopeSyntaxError(reason: "invalid parameter value")
            }
            if values.contains(Self.wildcard) && values.count > 1 {
                throw ScopeSyntaxError(reason: "a wildcard must be the only value")
            }
        }
        self.base = base
        self.parameters = parameters
    }

    /// Parses one scope token strictly: a duplicate parameter, an empty value or a stray separator
    /// is an error, never silently dropped, so what is granted is exactly what was asked for.
    public init(parsing input: some StringProtocol) throws(ScopeSyntaxError) {
        let text = String(input)
        guard !text.isEmpty, text.utf8.count <= Self.maximumLength else {
            throw ScopeSyntaxError(reason: "scope empty or too long")
        }
        var pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        guard pieces.count >= 2 else { throw ScopeSyntaxError(reason: "base must be system:resource.action") }
        let base = "\(pieces[0]):\(pieces[1])"
        pieces.removeFirst(2)
        var parameters: [String: Set<String>] = [:]
        for piece in pieces {
            let pair = piece.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { throw ScopeSyntaxError(reason: "parameter must be name=values") }
            let name = String(pair[0])
            guard parameters[name] == nil else { throw ScopeSyntaxError(reason: "duplicate parameter") }
            let values = pair[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard Set(values).count == values.count else { throw ScopeSyntaxError(reason: "duplicate parameter value") }
            parameters[name] = Set(values)
        }
        try self.init(base: base, parameters: parameters)
    }

    /// Whether holding `self` allows `requested`: same base, and every parameter this scope
    /// restricts is restricted at least as much in `requested` (a subset of the values).
    /// A parameter absent here is unrestricted; one absent from `requested` asks for everything.
    public func covers(_ requested: Scope) -> Bool {
        guard base == requested.base else { return false }
        for (name, allowed) in parameters {
            guard let asked = requested.parameters[name] else { return false }
            if allowed.contains(Self.wildcard) { continue }
            guard asked.isSubset(of: allowed) else { return false }
        }
        return true
    }

    public var hasWildcard: Bool { parameters.values.contains { $0.contains(Self.wildcard) } }

    /// The canonical text: parameters sorted by name, values sorted.
    public var description: String {
        var text = base
        for name in parameters.keys.sorted() {
            text += ":\(name)=" + parameters[name]!.sorted().joined(separator: ",")
        }
        return text
    }

    public static func < (lhs: Scope, rhs: Scope) -> Bool { lhs.description < rhs.description }

    private static func isValidBase(_ base: String) -> Bool {
        let halves = base.split(separator: ":", omittingEmptySubsequences: false)
        guard halves.count == 2, isValidName(halves[0]) else { return false }
        let path = halves[1].split(separator: ".", omittingEmptySubsequences: false)
        return path.count >= 2 && path.allSatisfy(isValidName)
    }

    /// Lower-case identifiers: `[a-z][a-z0-9_-]{0,63}`.
    private static func isValidName(_ name: some StringProtocol) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 64, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else {
            return false
        }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }

    /// Values are identifiers, emails or ids: `[A-Za-z0-9_.@+-]{1,128}`, or the wildcard.
    private static func isValidValue(_ value: String) -> Bool {
        if value == wildcard { return true }
        let bytes = Array(value.utf8)
        guard !bytes.isEmpty, bytes.count <= 128 else { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || [UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "@"), UInt8(ascii: "+"), UInt8(ascii: "-")].contains(byte)
        }
    }
}

public struct ScopeSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { "invalid scope: \(reason)" }
}

/// A set of scopes as carried by the space-separated `scope` parameter (RFC 6749 §3.3).
public struct ScopeSet: Sendable, Hashable, CustomStringConvertible {
    /// More scopes than this in one request is refused: the grammar makes each one cheap to check,
    /// but the coverage check is quadratic.
    public static let maximumCount = 64

    public let scopes: [Scope]

    public init(_ scopes: [Scope]) { self.scopes = Array(Set(scopes)).sorted() }

    /// RFC 6749 §3.3: scope tokens separated by single spaces. Tabs, repeated or leading spaces
    /// and duplicates are refused rather than normalised away.
    public init(parsing text: some StringProtocol) throws(ScopeSyntaxError) {
        let tokens = text.split(separator: " ", omittingEmptySubsequences: false)
        guard !text.isEmpty, tokens.count <= Self.maximumCount else {
            throw ScopeSyntaxError(reason: "empty scope list or too many scopes")
        }
        var parsed: [Scope] = []
        for token in tokens {
            parsed.append(try Scope(parsing: token))
        }
        guard Set(parsed).count == parsed.count else { throw ScopeSyntaxError(reason: "duplicate scope") }
        self.init(parsed)
    }

    /// Whether every scope of `requested` is covered by some scope of this set.
    public func covers(_ requested: ScopeSet) -> Bool {
        requested.scopes.allSatisfy { asked in scopes.contains { $0.covers(asked) } }
    }

    /// The requested scopes that no scope of this set covers.
    public func uncovered(_ requested: ScopeSet) -> [Scope] {
        requested.scopes.filter { asked in !scopes.contains { $0.covers(asked) } }
    }

    public var isEmpty: Bool { scopes.isEmpty }
    public var description: String { scopes.map(\.description).joined(separator: " ") }
    public var strings: [String] { scopes.map(\.description) }
}
