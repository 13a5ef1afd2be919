public import Foundation
public import TesseraCore

/// One committed revocation, as every broker instance learns of it.
public struct RevocationEntry: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// `id` is an access token's `jti` (or a refresh family's id, a node of the same lineage).
        case token
        /// `id` is a `client_id`: the client was disabled and every token issued to it is inactive.
        case client
    }

    /// Increasing in commit order: an entry with a higher `seq` never becomes visible before one
    /// with a lower `seq`, so a reader that has seen `seq` has seen everything before it.
    public let seq: Int64
    public let kind: Kind
    public let id: String
    public let tenantID: TenantID
    public let at: Date
    /// The token's `exp`, after which the entry is no longer needed (and may be purged); nil for
    /// a client, whose entry is kept for good.
    public let expiresAt: Date?

    public init(seq: Int64, kind: Kind, id: String, tenantID: TenantID, at: Date, expiresAt: Date?) {
        self.seq = seq
        self.kind = kind
        self.id = id
        self.tenantID = tenantID
        self.at = at
        self.expiresAt = expiresAt
    }
}

/// The revocation bus as a log: every revocation (`TokenStore.revoke`, a refresh reuse in
/// `RefreshTokenStore.rotate`, `ClientStore.disable`) appends its entries in the transaction that
/// makes the change, so an entry exists exactly for what was committed. Instances follow the log
/// by sequence number; notifications (`RevocationNotifications`) only tell them to look sooner.
public protocol RevocationLog: Sendable {
    /// Entries with `seq > after`, in `seq` order, at most `limit`.
    func entries(after seq: Int64, limit: Int) async throws -> [RevocationEntry]
    /// Forgets token entries whose token expired before `before`; client entries stay.
    func purgeExpired(before: Date) async throws -> Int
}

/// What a listener hears from the backend.
public enum RevocationSignal: Sendable, Equatable {
    /// The subscription is in place. Whatever was committed before it may not have been
    /// announced, so the listener re-reads the log (this is also what happens after a reconnect).
    case listening
    /// Revocations were committed, up to `seq` when the payload says so.
    case committed(seq: Int64?)
}

/// Push notifications of committed revocations (PostgreSQL `LISTEN`/`NOTIFY`). A hint that makes
/// instances look at the log sooner, never the record itself: a notification lost with a dropped
/// connection costs latency, not correctness, since readers also poll the log.
public protocol RevocationNotifications: Sendable {
    /// Subscribes and calls `onSignal` (first `.listening`, then once per notification) until the
    /// task is cancelled, when it returns, or until the connection fails, when it throws; the
    /// caller subscribes again after a pause.
    func listen(_ onSignal: @escaping @Sendable (RevocationSignal) async -> Void) async throws
}
