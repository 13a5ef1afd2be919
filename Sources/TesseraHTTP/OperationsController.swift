public import HTTPTypes
public import Hummingbird
import NIOCore
public import TesseraOAuth

/// `/healthz` (the process answers), `/readyz` (store reachable, keys loaded, revocations
/// current), `/metrics`.
public struct OperationsController: Sendable {
    let broker: Broker
    let metrics: BrokerMetrics

    public init(broker: Broker, metrics: BrokerMetrics) {
        self.broker = broker
        self.metrics = metrics
    }

    public func addRoutes(to router: Router<TesseraRequestContext>) {
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("/readyz") { _, context in
            var problems: [String] = []
            do {
                try await broker.store.ping()
            } catch {
                problems.append("store unreachable")
                context.logger.warning("readiness: store unreachable", metadata: ["error": "\(error)"])
            }
            if broker.keyRing.jwks.keys.isEmpty { problems.append("no signing keys") }
            // Tokens verify as unavailable meanwhile: take this instance out of rotation.
            if !broker.revocationFeed.isFresh { problems.append("revocation log not read recently") }
            let ready = problems.isEmpty
            return Response(
                status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain"],
                body: .init(byteBuffer: ByteBuffer(string: ready ? "ready\n" : problems.joined(separator: "\n") + "\n")))
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
        }
    }
}
