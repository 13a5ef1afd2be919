public import Foundation
public import TesseraCore
public import TesseraStore

/// How long human sessions live (DESIGN.md: bound to tenant and identity; idle and absolute limits).
public struct SessionSettings: Sendable {
    public var idleTimeout: TimeInterval = 30 * 60
    public var absoluteLifetime: TimeInterval = 8 * 3600
    /// Set the cookie's `Secure` attribute: when the broker is served over https.
    public var secureCookies: Bool

    public static let cookieName = "tessera_session"

    public init(secureCookies: Bool) { self.secureCookies = secureCookies }
}

/// What every sign-in protocol (OIDC now, SAML next) does once it has a verified identity:
/// provision the user just in time, refuse a disabled one, open a session and audit the outcome.
/// Also answers `GET /session` and ends sessions.
public struct SignInService: Sendable {
    private let store: any TesseraStore
    public let settings: SessionSettings

    public init(store: any TesseraStore, settings: SessionSettings) {
        self.store = store
        self.settings = settings
    }

    /// A finished browser sign-in of any protocol: the session opened and where the browser goes.
    public struct Completed: Sendable {
        public let opened: OpenedSession
        public let returnTo: ReturnTo
    }

    public struct OpenedSession: Sendable {
        /// The cookie value: shown to the browser once, stored only as a hash.
        public let cookie: String
        public let session: HumanSession
    }

    /// `notAfter`: the upstream's own bound on the session (SAML's SessionNotOnOrAfter), when
    /// sooner than the absolute lifetime.
    public func complete(
        _ identity: NormalizedIdentity, via method: String, now: Date, traceID: String, notAfter: Date? = nil
    ) async throws(OAuthError)
        -> OpenedSession
    {
        let tenant = identity.tenantID.rawValue
        let user: User
        do {
            user = try await store.users.upsert(
                identity, at: now,
                audit: AuditEvent(
                    ts: now, tenant: tenant, actor: AuditEvent.Actor(type: .user, id: identity.subject), action: "user.provisioned",
                    outcome: .success, reason: "\(method) sign-in", traceID: traceID))
        } catch {
            throw .unavailable(reason: "user provisioning failed: \(error)")
        }
        guard !user.isDisabled else {
            throw await failed(
                OAuthError(.accessDenied, "this user is disabled in the tenant", reason: "UserEnabled: the user is disabled"),
                tenant: identity.tenantID, subject: identity.subject, via: method, now: now, traceID: traceID)
        }
        let cookie = Secrets.randomToken()
        let session = HumanSession(
            hash: Secrets.sha256(cookie), tenantID: identity.tenantID, userID: user.id, identity: identity, createdAt: now,
            lastSeenAt: now, expiresAt: min(now.addingTimeInterval(settings.absoluteLifetime), notAfter ?? .distantFuture))
        do {
            try await store.sessions.create(
                session,
                audit: AuditEvent(
                    ts: now, tenant: tenant, actor: AuditEvent.Actor(type: .user, id: identity.subject), action: "signin.succeeded",
                    outcome: .success, reason: "\(method) via \(identity.idpID)", traceID: traceID))
        } catch {
            throw .unavailable(reason: "session creation failed: \(error)")
        }
        return OpenedSession(cookie: cookie, session: session)
    }

    /// Audits a refused sign-in and hands the error back to throw.
    public func failed(
        _ error: OAuthError, tenant: TenantID?, subject: String? = nil, via method: String, now: Date, traceID: String
    ) async -> OAuthError {
        let event = AuditEvent(
            ts: now, tenant: tenant?.rawValue, actor: AuditEvent.Actor(type: subject == nil ? .anonymous : .user, id: subject),
            action: "signin.failed", outcome: error.code == .temporarilyUnavailable ? .failure : .denied,
            reason: "\(method): \(error.code.rawValue): \(error.reason)", traceID: traceID)
        do {
            try await store.audit.append(event)
            return error
        } catch {
            return .unavailable(reason: "audit append failed: \(error)")
        }
    }

    /// The live session of a cookie, nil when there is none.
    public func session(cookie: String, now: Date) async throws(OAuthError) -> HumanSession? {
        guard cookie.utf8.count <= 128 else { return nil }
        do {
            return try await store.sessions.touch(hash: Secrets.sha256(cookie), now: now, idleTimeout: settings.idleTimeout)
        } catch {
            throw .unavailable(reason: "session read failed: \(error)")
        }
    }

    public func end(cookie: String, now: Date, traceID: String) async throws(OAuthError) {
        guard cookie.utf8.count <= 128, let session = try await session(cookie: cookie, now: now) else { return }
        do {
            _ = try await store.sessions.delete(
                hash: session.hash,
                audit: AuditEvent(
                    ts: now, tenant: session.tenantID.rawValue, actor: AuditEvent.Actor(type: .user, id: session.identity.subject),
                    action: "session.ended", outcome: .success, reason: "logout", traceID: traceID))
        } catch {
            throw .unavailable(reason: "session end failed: \(error)")
        }
    }
}
