public import Foundation
public import TesseraCore
public import TesseraJOSE

/// A tenant's policy document: for now its token-exchange rules (docs/token-exchange.md).
/// Parsed strictly: an unknown member, a duplicate, a wrong type or a value out of range refuses
/// the whole document, so what is stored is exactly what was meant.
public struct PolicyDocument: Sendable, Hashable {
    public static let maximumSize = 256 * 1024
    public static let maximumRules = 256

    public let exchange: [ExchangeRule]

    public init(exchange: [ExchangeRule]) { self.exchange = exchange }

    public static let empty = PolicyDocument(exchange: [])

    public init(parsing bytes: some Collection<UInt8>) throws(PolicySyntaxError) {
        guard bytes.count <= Self.maximumSize else { throw PolicySyntaxError("the document is larger than 256 KiB") }
        let json: JSONValue
        do {
            json = try StrictJSON.parse(bytes)
        } catch {
            throw PolicySyntaxError("not valid JSON (\(error))")
        }
        guard let members = json.objectValue else { throw PolicySyntaxError("the document must be a JSON object") }
        try Self.refuseUnknown(members, allowed: ["exchange"], at: "document")
        guard let rules = members["exchange"].map({ $0.arrayValue }) ?? [] else {
            throw PolicySyntaxError("exchange must be an array")
        }
        guard rules.count <= Self.maximumRules else { throw PolicySyntaxError("more than \(Self.maximumRules) exchange rules") }
        var parsed: [ExchangeRule] = []
        var ids: Set<String> = []
        for (index, rule) in rules.enumerated() {
            let rule = try ExchangeRule(json: rule, at: "exchange[\(index)]")
            guard ids.insert(rule.id).inserted else { throw PolicySyntaxError("exchange[\(index)]: duplicate rule id '\(rule.id)'") }
            parsed.append(rule)
        }
        self.exchange = parsed
    }

    /// Canonical JSON text (sorted members, no whitespace): what the store keeps.
    public var canonicalJSON: String { String(decoding: StrictJSON.serialize(json), as: UTF8.self) }

    public var json: JSONValue { .object(["exchange": .array(exchange.map(\.json))]) }

    static func refuseUnknown(_ members: [String: JSONValue], allowed: Set<String>, at path: String) throws(PolicySyntaxError) {
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw PolicySyntaxError("\(path): unknown member '\(String(unknown.prefix(64)))'")
        }
    }
}

public struct PolicySyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "invalid policy: \(reason)" }
}

/// One token-exchange rule. Absent optional conditions do not restrict.
public struct ExchangeRule: Sendable, Hashable {
    public enum Effect: String, Sendable { case allow, deny }
    /// Whether the request must present an actor token (delegation) or may go without (impersonation).
    public enum ActorRequirement: String, Sendable { case required, optional, forbidden }

    public static let anyClient = "*"

    public let id: String
    public let effect: Effect
    public let clients: [String]
    public let subjectTokenTypes: [TokenTypeIdentifier]
    public let subjectIssuers: [String]?
    public let subjects: [Glob]?
    public let audiences: [String]?
    public let resources: [String]?
    public let scopes: ScopeSet?
    public let wildcards: Bool
    public let actor: ActorRequirement
    public let actors: [Glob]?
    public let maxLifetime: TimeInterval?
    public let dpopRequired: Bool
    public let refreshTokens: Bool
    public let refreshLifetime: TimeInterval

    public static let defaultRefreshLifetime: TimeInterval = 3600
    static let members: Set<String> = [
        "id", "effect", "clients", "subject_token_types", "subject_issuers", "subjects", "audiences", "resources", "scopes",
        "wildcards", "actor", "actors", "max_lifetime", "dpop", "refresh_tokens", "refresh_lifetime",
    ]

    init(json: JSONValue, at path: String) throws(PolicySyntaxError) {
        guard let object = json.objectValue else { throw PolicySyntaxError("\(path) must be an object") }
        try PolicyDocument.refuseUnknown(object, allowed: Self.members, at: path)
        let reader = MemberReader(object: object, path: path)

        let id = try reader.requiredString("id")
        guard !id.isEmpty, id.utf8.count <= 64,
            id.utf8.allSatisfy({ byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
                    || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            })
        else { throw PolicySyntaxError("\(path).id must match [A-Za-z0-9._-]{1,64}") }
        self.id = id
        guard let effect = Effect(rawValue: try reader.requiredString("effect")) else {
            throw PolicySyntaxError("\(path).effect must be allow or deny")
        }
        self.effect = effect
        self.clients = try reader.stringList("clients", required: true, limit: 256)!
        var types: [TokenTypeIdentifier] = []
        for name in try reader.stringList("subject_token_types", required: true, limit: 8)! {
            guard let type = TokenTypeIdentifier(naming: name), type != .refreshToken else {
                throw PolicySyntaxError("\(path).subject_token_types: unknown token type '\(String(name.prefix(80)))'")
            }
            types.append(type)
        }
        self.subjectTokenTypes = types
        self.subjectIssuers = try reader.stringList("subject_issuers", required: false, limit: 64)
        self.subjects = try reader.globList("subjects")
        self.audiences = try reader.stringList("audiences", required: false, limit: 64)
        let resources = try reader.stringList("resources", required: false, limit: 64)
        for resource in resources ?? [] where !ResourceIndicator.isValid(resource) {
            throw PolicySyntaxError("\(path).resources: '\(String(resource.prefix(80)))' is not an absolute URI without a fragment")
        }
        self.resources = resources
        if let text = try reader.optionalString("scopes") {
            do {
                self.scopes = try ScopeSet(parsing: text)
            } catch {
                throw PolicySyntaxError("\(path).scopes: \(error.description)")
            }
        } else {
            self.scopes = nil
        }
        if effect == .allow, scopes == nil { throw PolicySyntaxError("\(path).scopes is required for an allow rule") }
        self.wildcards = try reader.optionalBool("wildcards") ?? false
        if effect == .deny, wildcards { throw PolicySyntaxError("\(path).wildcards only applies to allow rules") }
        if effect == .allow, !wildcards, let wildcard = scopes?.scopes.first(where: \.hasWildcard) {
            throw PolicySyntaxError("\(path).scopes: \(wildcard) has a wildcard; set \"wildcards\": true to grant wildcards")
        }
        // An allow rule delegates only unless it says otherwise; a deny rule without `actor`
        // applies with or without one.
        let actorText = try reader.optionalString("actor") ?? (effect == .allow ? ActorRequirement.required : .optional).rawValue
        guard let actor = ActorRequirement(rawValue: actorText) else {
            throw PolicySyntaxError("\(path).actor must be required, optional or forbidden")
        }
        self.actor = actor
        self.actors = try reader.globList("actors")
        if actor == .forbidden, actors != nil { throw PolicySyntaxError("\(path).actors makes no sense with actor forbidden") }
        self.maxLifetime = try reader.optionalSeconds("max_lifetime", in: 1...900)
        let dpopText = try reader.optionalString("dpop") ?? "required"
        guard dpopText == "required" || dpopText == "optional" else {
            throw PolicySyntaxError("\(path).dpop must be required or optional")
        }
        self.dpopRequired = dpopText == "required"
        self.refreshTokens = try reader.optionalBool("refresh_tokens") ?? false
        let refreshLifetime = try reader.optionalSeconds("refresh_lifetime", in: 60...86_400)
        if refreshLifetime != nil, !refreshTokens {
            throw PolicySyntaxError("\(path).refresh_lifetime needs \"refresh_tokens\": true")
        }
        self.refreshLifetime = refreshLifetime ?? Self.defaultRefreshLifetime
        if effect == .deny, maxLifetime != nil || refreshTokens || object["dpop"] != nil {
            throw PolicySyntaxError("\(path): max_lifetime, dpop and refresh_tokens only apply to allow rules")
        }
    }

    var json: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "effect": .string(effect.rawValue), "clients": .array(clients.map(JSONValue.string)),
            "subject_token_types": .array(subjectTokenTypes.map { .string($0.shortName) }), "actor": .string(actor.rawValue),
        ]
        if let subjectIssuers { object["subject_issuers"] = .array(subjectIssuers.map(JSONValue.string)) }
        if let subjects { object["subjects"] = .array(subjects.map { .string($0.pattern) }) }
        if let audiences { object["audiences"] = .array(audiences.map(JSONValue.string)) }
        if let resources { object["resources"] = .array(resources.map(JSONValue.string)) }
        if let scopes { object["scopes"] = .string(scopes.description) }
        if let actors { object["actors"] = .array(actors.map { .string($0.pattern) }) }
        if effect == .allow {
            object["wildcards"] = .bool(wildcards)
            object["dpop"] = .string(dpopRequired ? "required" : "optional")
            object["refresh_tokens"] = .bool(refreshTokens)
            if refreshTokens { object["refresh_lifetime"] = .number(refreshLifetime) }
            if let maxLifetime { object["max_lifetime"] = .number(maxLifetime) }
        }
        return .object(object)
    }
}

/// RFC 8707 §2: a resource indicator is an absolute URI without a fragment.
public enum ResourceIndicator {
    public static let maximumLength = 2048

    public static func isValid(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= maximumLength, !text.contains("#"),
            text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }),
            let components = URLComponents(string: text), let scheme = components.scheme, !scheme.isEmpty
        else { return false }
        // An absolute URI with a hierarchical part needs a host (`https:foo` is not one).
        if components.host == nil, text.dropFirst(scheme.count + 1).hasPrefix("//") { return false }
        return true
    }
}

/// Reads typed members of one rule object, naming the member in every error.
private struct MemberReader {
    let object: [String: JSONValue]
    let path: String

    func requiredString(_ name: String) throws(PolicySyntaxError) -> String {
        guard let value = try optionalString(name) else { throw PolicySyntaxError("\(path).\(name) is required") }
        return value
    }

    func optionalString(_ name: String) throws(PolicySyntaxError) -> String? {
        guard let value = object[name] else { return nil }
        guard let text = value.stringValue, text.utf8.count <= 4096 else {
            throw PolicySyntaxError("\(path).\(name) must be a string")
        }
        return text
    }

    func optionalBool(_ name: String) throws(PolicySyntaxError) -> Bool? {
        guard let value = object[name] else { return nil }
        guard let flag = value.boolValue else { throw PolicySyntaxError("\(path).\(name) must be true or false") }
        return flag
    }

    func optionalSeconds(_ name: String, in range: ClosedRange<Int64>) throws(PolicySyntaxError) -> TimeInterval? {
        guard let value = object[name] else { return nil }
        guard let seconds = value.int64Value, range.contains(seconds) else {
            throw PolicySyntaxError("\(path).\(name) must be a whole number of seconds in \(range.lowerBound)...\(range.upperBound)")
        }
        return TimeInterval(seconds)
    }

    func stringList(_ name: String, required: Bool, limit: Int) throws(PolicySyntaxError) -> [String]? {
        guard let value = object[name] else {
            if required { throw PolicySyntaxError("\(path).\(name) is required") }
            return nil
        }
        guard let items = value.arrayValue, !items.isEmpty, items.count <= limit else {
            throw PolicySyntaxError("\(path).\(name) must be a non-empty array of at most \(limit) strings")
        }
        var strings: [String] = []
        for item in items {
            guard let text = item.stringValue, !text.isEmpty, text.utf8.count <= 2048 else {
                throw PolicySyntaxError("\(path).\(name) must hold non-empty strings")
            }
            guard !strings.contains(text) else { throw PolicySyntaxError("\(path).\(name) repeats '\(String(text.prefix(80)))'") }
            strings.append(text)
        }
        return strings
    }

    func globList(_ name: String) throws(PolicySyntaxError) -> [Glob]? {
        guard let patterns = try stringList(name, required: false, limit: 64) else { return nil }
        var globs: [Glob] = []
        for pattern in patterns {
            guard let glob = Glob(pattern) else { throw PolicySyntaxError("\(path).\(name): pattern too long") }
            globs.append(glob)
        }
        return globs
    }
}
