public import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore

/// The per-request context: Hummingbird's core storage plus the peer address, which the
/// throttle and the audit trail need.
public struct TesseraRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address (no port), nil for non-IP transports.
    public let remoteAddress: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    /// OAuth endpoints take small forms; a larger body is refused before it is read in full.
    public var maxUploadSize: Int { HTTPLimits.maximumBodySize }
}

public enum HTTPLimits {
    public static let maximumBodySize = 64 * 1024
}
