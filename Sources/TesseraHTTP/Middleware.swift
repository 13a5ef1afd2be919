public import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
public import TesseraCore

/// Gives every request an id (logged as `request_id`, returned as `X-Request-Id`, recorded as the
/// audit `trace_id`), writes one access-log line, and counts and times the request.
/// A caller-supplied `X-Request-Id` is kept only when it is short and plain, so it cannot inject
/// into logs.
public struct RequestObservationMiddleware: RouterMiddleware {
    public typealias Context = TesseraRequestContext
    let metrics: BrokerMetrics

    public init(metrics: BrokerMetrics) { self.metrics = metrics }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID = Self.acceptableID(request.headers[.xRequestID]) ?? Secrets.base64URL(Secrets.randomBytes(12))
        context.logger[metadataKey: "request_id"] = .string(requestID)
        let started = ContinuousClock.now
        var status = 500
        defer {
            let route = context.endpointPath ?? "unmatched"
            let elapsed = ContinuousClock.now - started
            metrics.requests(route: route, method: request.method.rawValue, status: status).increment()
            metrics.latency(route: route).record(elapsed)
            context.logger.info(
                "request",
                metadata: [
                    "method": .string(request.method.rawValue), "route": .string(route), "status": .stringConvertible(status),
                    "duration_ms": .stringConvertible(
                        (Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000).rounded()),
                    "peer": .string(context.remoteAddress ?? "-"),
                ])
        }
        do {
            var response = try await next(request, context)
            response.headers[.xRequestID] = requestID
            status = response.status.code
            return response
        } catch let error as HTTPResponseError {
            var response = try error.response(from: request, context: context)
            response.headers[.xRequestID] = requestID
            status = response.status.code
            return response
        } catch {
            // Never let an unexpected error become a stack trace or a crash on the wire.
            context.logger.error("unhandled error", metadata: ["error_type": .string("\(type(of: error))")])
            var response = OAuthErrorResponse.response(for: OAuthError(.serverError, "internal error"))
            response.headers[.xRequestID] = requestID
            status = response.status.code
            return response
        }
    }

    static func acceptableID(_ value: String?) -> String? {
        guard let value, (1...64).contains(value.utf8.count),
            value.utf8.allSatisfy({
                $0 < 0x7F
                    && ($0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || ($0 >= 0x30 && $0 <= 0x39)
                        || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A))
            })
        else { return nil }
        return value
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
    static let pragma = Self("Pragma")!
    static let allow = Self("Allow")!
    static let dpop = Self("DPoP")!
    static let dpopNonce = Self("DPoP-Nonce")!
}
