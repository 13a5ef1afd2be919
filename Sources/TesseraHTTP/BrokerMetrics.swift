public import Prometheus
import Synchronization

/// The broker's Prometheus metrics, on a registry owned by the application (no global bootstrap,
/// so several applications can live in one test process).
public final class BrokerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Handles by label values: the registry's own lookup builds names and takes a lock per call,
    /// too slow to do on every request.
    private let counters = Mutex<[String: Counter]>([:])
    private let histograms = Mutex<[String: DurationHistogram]>([:])

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    private func counter(_ key: String, _ make: () -> Counter) -> Counter {
        counters.withLock { cache in
            if let found = cache[key] { return found }
            let made = make()
            cache[key] = made
            return made
        }
    }

    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    func requests(route: String, method: String, status: Int) -> Counter {
        counter("r|\(route)|\(method)|\(status)") {
            registry.makeCounter(
                descriptor: .init(
                    namespace: "tessera", metricName: "http_requests", unitName: "total", helpText: "HTTP requests by route and status"),
                labels: [("route", route), ("method", method), ("status", String(status))])
        }
    }

    func latency(route: String) -> DurationHistogram {
        histograms.withLock { cache in
            if let found = cache[route] { return found }
            let made = registry.makeDurationHistogram(
                descriptor: .init(
                    namespace: "tessera", metricName: "http_request_duration", unitName: "seconds", helpText: "HTTP request latency"),
                labels: [("route", route)], buckets: Self.latencyBuckets)
            cache[route] = made
            return made
        }
    }

    func grants(outcome: String) -> Counter {
        counter("g|\(outcome)") {
            registry.makeCounter(
                descriptor: .init(namespace: "tessera", metricName: "token_grants", unitName: "total", helpText: "Token endpoint outcomes"),
                labels: [("outcome", outcome)])
        }
    }
}
