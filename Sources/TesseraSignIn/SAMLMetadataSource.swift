public import Foundation
import Synchronization
public import TesseraCore
public import TesseraOIDC
public import TesseraSAML
public import TesseraStore

/// Where a SAML IdP's metadata comes from, and its refresh (issue 3: the whole document, on a
/// schedule; a failed or unparseable refresh keeps the last good copy and is audited).
public final class SAMLMetadataSource: Sendable {
    public static let minimumRefreshInterval = 5
    public static let defaultRefreshInterval = 3600

    private let store: any TesseraStore
    private let transport: any OIDCTransport
    /// The last attempt per IdP id: a failing source is retried once per interval, not per tick.
    private let attempts = Mutex<[String: Date]>([:])

    public init(store: any TesseraStore, transport: any OIDCTransport) {
        self.store = store
        self.transport = transport
    }

    /// A URL source must be https, or http on a loopback host (tests and local IdPs only).
    public static func checkedURL(_ text: String) -> URL? {
        guard let url = URL(string: text), url.user == nil, DiscoveryDocument.isAcceptable(url) else { return nil }
        return url
    }

    public enum FetchError: Error, CustomStringConvertible {
        case unreachable(String)
        case unusable(String)
        public var description: String {
            switch self {
            case .unreachable(let why): "metadata fetch failed: \(why)"
            case .unusable(let why): "metadata unusable: \(why)"
            }
        }
    }

    /// Fetches and parses the document at `url`.
    public static func fetch(_ url: URL, transport: any OIDCTransport, now: Date) async throws(FetchError) -> (text: String, metadata: IdPMetadata) {
        let response: UpstreamResponse
        do {
            response = try await transport.get(url, accept: "application/samlmetadata+xml, application/xml;q=0.9", headers: [])
        } catch {
            throw .unreachable("\(error)")
        }
        guard response.status == 200 else { throw .unreachable("HTTP \(response.status)") }
        return try Self.parse(response.body, now: now)
    }

    public static func parse(_ bytes: [UInt8], now: Date) throws(FetchError) -> (text: String, metadata: IdPMetadata) {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .unusable("the document is not UTF-8") }
        do {
            return (text, try IdPMetadata(xml: bytes, now: now))
        } catch {
            throw .unusable(error.reason)
        }
    }

    /// Refreshes every URL-sourced IdP whose copy is older than its interval; returns how many
    /// were refreshed and how many failed. Each outcome is audited; failures keep the last copy.
    @discardableResult
    public func refreshDue(now: Date) async throws -> (refreshed: Int, failed: Int) {
        var refreshed = 0
        var failed = 0
        for record in try await store.samlProviders.list() {
            let config = record.config
            guard let url = Self.checkedURL(config.metadataSource) else { continue }
            let interval = TimeInterval(max(config.refreshInterval ?? Self.defaultRefreshInterval, Self.minimumRefreshInterval))
            let lastAttempt = max(record.metadataFetchedAt, attempts.withLock { $0[config.id] } ?? .distantPast)
            guard now.timeIntervalSince(lastAttempt) >= interval else { continue }
            attempts.withLock { $0[config.id] = now }
            let actor = AuditEvent.Actor.system
            do {
                let (text, metadata) = try await Self.fetch(url, transport: transport, now: now)
                try await store.samlProviders.replaceMetadata(
                    id: config.id, entityID: metadata.entityID, metadata: text, fetchedAt: now,
                    audit: AuditEvent(
                        ts: now, tenant: config.tenantID.rawValue, actor: actor, action: "idp.metadata_refreshed", outcome: .success,
                        reason: "saml \(config.id): \(metadata.signingCertificates.count) signing certificate(s)"
                            + (metadata.entityID == config.entityID ? "" : "; entityID changed")))
                refreshed += 1
            } catch let problem as FetchError {
                failed += 1
                try await store.audit.append(
                    AuditEvent(
                        ts: now, tenant: config.tenantID.rawValue, actor: actor, action: "idp.metadata_refresh_failed", outcome: .failure,
                        reason: "saml \(config.id): \(problem); keeping the copy of \(RFC3339.format(record.metadataFetchedAt))"))
            }
        }
        return (refreshed, failed)
    }
}
