public import Foundation

/// A tenant identifier: `[a-z0-9][a-z0-9-]{0,62}`, used in URLs (`/sso/{tenant}/...`) and tokens (`tid`).
public struct TenantID: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: String

    public init?(_ rawValue: String) {
        let bytes = Array(rawValue.utf8)
        guard let first = bytes.first, bytes.count <= 63, Self.isAlphanumeric(first),
            bytes.allSatisfy({ Self.isAlphanumeric($0) || $0 == UInt8(ascii: "-") })
        else { return nil }
        self.rawValue = rawValue
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    public var description: String { rawValue }
    public static func < (lhs: TenantID, rhs: TenantID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = TenantID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid tenant id"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

public struct Tenant: Sendable, Hashable, Codable {
    public let id: TenantID
    public var name: String
    /// Verified e-mail domains of the organisation.
    public var domains: [String]
    public let createdAt: Date

    public init(id: TenantID, name: String, domains: [String] = [], createdAt: Date) {
        self.id = id
        self.name = name
        self.domains = domains
        self.createdAt = createdAt
    }
}
