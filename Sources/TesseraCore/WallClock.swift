public import Foundation

/// The source of "now". Injected everywhere time matters so tests can pin it.
/// (Named to stay clear of the standard library's `Clock`.)
public protocol WallClock: Sendable {
    var now: Date { get }
}

public struct SystemWallClock: WallClock {
    public init() {}
    public var now: Date { Date() }
}

/// Allowed difference between our clock and a peer's for `iat`/`nbf`/`exp` checks.
public enum ClockSkew {
    public static let allowed: TimeInterval = 60
}
