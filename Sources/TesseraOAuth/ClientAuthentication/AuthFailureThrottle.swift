public import Foundation
import Synchronization
public import TesseraCore

/// Slows down guessing: after too many failed client authentications within a window, further
/// attempts for that client id, or from that source address, are refused before any credential is
/// checked (so the answer does not tell whether the guess was right) until the window passes.
public final class AuthFailureThrottle: Sendable {
    public struct Limits: Sendable {
        public var window: TimeInterval
        public var perClient: Int
        public var perAddress: Int
        public init(window: TimeInterval = 60, perClient: Int = 10, perAddress: Int = 50) {
            self.window = window
            self.perClient = perClient
            self.perAddress = perAddress
        }
    }

    private struct Window {
        var start: Date
        var failures: Int
    }

    /// Bounded memory: past this many tracked keys the oldest windows are dropped.
    private static let maximumTracked = 100_000

    private let limits: Limits
    private let state = Mutex<[String: Window]>([:])

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Throws `slow_down` (429 with `Retry-After`) when either key is over its limit.
    public func check(clientID: String?, address: String?, now: Date) throws(OAuthError) {
        let keys = Self.keys(clientID: clientID, address: address)
        let retry: Int? = state.withLock { windows in
            for (key, limit) in [(keys.client, limits.perClient), (keys.address, limits.perAddress)] {
                guard let key, let window = windows[key], now.timeIntervalSince(window.start) < limits.window else { continue }
                if window.failures >= limit {
                    return max(1, Int((limits.window - now.timeIntervalSince(window.start)).rounded(.up)))
                }
            }
            return nil
        }
        if let retry {
            throw OAuthError(
                .slowDown, "too many failed authentication attempts; retry later",
                reason: "client authentication throttled", retryAfter: retry)
        }
    }

    public func recordFailure(clientID: String?, address: String?, now: Date) {
        let keys = Self.keys(clientID: clientID, address: address)
        state.withLock { windows in
            if windows.count >= Self.maximumTracked {
                windows = windows.filter { now.timeIntervalSince($0.value.start) < limits.window }
                if windows.count >= Self.maximumTracked { windows.removeAll(keepingCapacity: true) }
            }
            for key in [keys.client, keys.address].compactMap({ $0 }) {
                if var window = windows[key], now.timeIntervalSince(window.start) < limits.window {
                    window.failures += 1
                    windows[key] = window
                } else {
                    windows[key] = Window(start: now, failures: 1)
                }
            }
        }
    }

    private static func keys(clientID: String?, address: String?) -> (client: String?, address: String?) {
        (clientID.map { "c:" + String($0.prefix(128)) }, address.map { "a:" + $0 })
    }
}
