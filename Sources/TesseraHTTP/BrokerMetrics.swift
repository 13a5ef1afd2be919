public import Prometheus

/// The broker's Prometheus metrics, on a registry owned by the application (no global bootstrap,
/// so several applications can live in one test process).
public struct BrokerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    func requests(route: String, method: String, status: Int) -> Counter {
        registry.makeCounter(
            descriptor: .init(namespace: "tessera", metricName: "http_requests", unitName: "total", helpText: "HTTP requests by route and status"),
            labels: [("route", route), ("method", method), ("status", String(status))])
    }

    func latency(route: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "tessera", metricName: "http_request_duration", unitName: "seconds", helpText: "HTTP request latency"),
            labels: [("route", route)], buckets: Self.latencyBuckets)
    }

    func grants(outcome: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(namespace: "tessera", metricName: "token_grants", unitName: "total", helpText: "Token endpoint outcomes"),
            labels: [("outcome", outcome)])
    }
}
