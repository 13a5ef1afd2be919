public import Foundation
import Logging
import Synchronization
public import TesseraCore
public import TesseraJOSE

/// The broker's signing keys as the server sees them: one active key that signs, and every key
/// whose tokens may still be live (the pre-published next key, recently retired ones) for JWKS
/// and verification. Reads are lock-protected snapshots: the token endpoint never waits on I/O.
public final class KeyRing: Sendable {
    struct Snapshot: Sendable {
        let active: JWSSigningKey
        let verification: [String: JWSVerificationKey]
        /// Kids in publication order with the date each stops being published (nil: no end yet).
        let published: [(kid: String, until: Date?)]
        let fingerprint: String
    }

    private let directory: KeyDirectory
    private let clock: any WallClock
    private let snapshot: Mutex<Snapshot>

    public init(directory: KeyDirectory, clock: any WallClock) throws {
        self.directory = directory
        self.clock = clock
        snapshot = Mutex(try Self.read(directory))
    }

    /// The key that signs new tokens.
    public var activeKey: JWSSigningKey { snapshot.withLock { $0.active } }

    /// A key that may verify a token signed by this broker, by `kid`; nil once no longer published.
    public func verificationKey(kid: String) -> JWSVerificationKey? {
        let now = clock.now
        return snapshot.withLock { state in
            guard let entry = state.published.first(where: { $0.kid == kid }) else { return nil }
            if let until = entry.until, until <= now { return nil }
            return state.verification[kid]
        }
    }

    /// RFC 7517 JWKS of every key that may still verify a live token.
    public var jwks: JWKS {
        let now = clock.now
        return snapshot.withLock { state in
            JWKS(
                keys: state.published.compactMap { entry in
                    if let until = entry.until, until <= now { return nil }
                    return state.verification[entry.kid]?.jwk
                })
        }
    }

    /// Re-reads the key folder when it changed (a `tessera keys rotate` from another process).
    /// Returns true when a new set of keys was loaded.
    @discardableResult
    public func reloadIfChanged() throws -> Bool {
        let fingerprint = directory.fingerprint()
        guard fingerprint != snapshot.withLock({ $0.fingerprint }) else { return false }
        let fresh = try Self.read(directory)
        snapshot.withLock { $0 = fresh }
        return true
    }

    private static func read(_ directory: KeyDirectory) throws -> Snapshot {
        let fingerprint = directory.fingerprint()
        let stored = try directory.load()
        guard
            let activeStored = stored.filter({ $0.state == .active }).max(by: {
                ($0.activatedAt ?? $0.createdAt) < ($1.activatedAt ?? $1.createdAt)
            })
        else { throw KeyRingError.noActiveKey }
        let active = try directory.signingKey(for: activeStored)
        var verification: [String: JWSVerificationKey] = [:]
        var published: [(kid: String, until: Date?)] = []
        let order: [SigningKeyState: Int] = [.active: 0, .next: 1, .retired: 2]
        for key in stored.sorted(by: { (order[$0.state]!, $0.createdAt) < (order[$1.state]!, $1.createdAt) }) {
            // Only the active key's private half is unsealed; the others need their public half.
            verification[key.kid] = try JWSVerificationKey(jwk: try directory.publicKey(for: key))
            published.append((key.kid, key.state == .retired ? key.publishUntil : nil))
        }
        return Snapshot(active: active, verification: verification, published: published, fingerprint: fingerprint)
    }
}
