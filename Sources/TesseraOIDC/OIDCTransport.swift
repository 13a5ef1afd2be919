import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1

/// One answer of an upstream endpoint: status and body, bounded.
public struct UpstreamResponse: Sendable {
    public let status: Int
    public let body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// Why an upstream call failed: unreachable, timed out, or answered too much.
public struct UpstreamUnavailable: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Outbound HTTP to an OpenID Provider. One implementation talks to the network; the protocol
/// exists so the relying party never imports the HTTP client directly.
public protocol OIDCTransport: Sendable {
    /// `headers` carry only what the call needs (a bearer token for userinfo); never logged.
    func get(_ url: URL, accept: String, headers: [(String, String)]) async throws(UpstreamUnavailable) -> UpstreamResponse
    func postForm(_ url: URL, form: [(String, String)], headers: [(String, String)]) async throws(UpstreamUnavailable) -> UpstreamResponse
}

/// The network transport on async-http-client: no redirects followed (an endpoint that moves is a
/// configuration change, not something to chase), 5 s timeouts, bodies capped at 1 MiB.
public final class AsyncHTTPOIDCTransport: OIDCTransport {
    public static let maximumBody = 1 << 20
    private let client: HTTPClient
    private let timeout: TimeAmount

    public init(timeoutSeconds: Int64 = 5) {
        let timeout = TimeAmount.seconds(timeoutSeconds)
        self.timeout = timeout
        client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(
                redirectConfiguration: .disallow, timeout: .init(connect: timeout, read: timeout)))
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    public func get(_ url: URL, accept: String, headers: [(String, String)]) async throws(UpstreamUnavailable) -> UpstreamResponse {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        request.headers.add(name: "Accept", value: accept)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        return try await execute(request)
    }

    public func postForm(
        _ url: URL, form: [(String, String)], headers: [(String, String)]
    ) async throws(UpstreamUnavailable)
        -> UpstreamResponse
    {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: FormEncoding.encode(form)))
        return try await execute(request)
    }

    private func execute(_ request: HTTPClientRequest) async throws(UpstreamUnavailable) -> UpstreamResponse {
        do {
            let response = try await client.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: Self.maximumBody)
            return UpstreamResponse(status: Int(response.status.code), body: Array(body.readableBytesView))
        } catch {
            throw UpstreamUnavailable("\(type(of: error))")
        }
    }
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5.2), and query strings built the same way.
public enum FormEncoding {
    private static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    public static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }

    public static func escape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
