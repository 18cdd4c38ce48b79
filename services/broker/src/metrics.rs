//! The broker's metrics, named once here: requests by method and code, request latency,
//! watch subscribers, events received from etcd and fanned out.

use bosun_runtime::metrics::{Gauge, Metrics};

/// The broker's view of the shared registry.
#[derive(Clone, Default)]
pub struct BrokerMetrics {
    registry: Metrics,
}

/// Keeps the subscriber gauge up while alive.
pub struct SubscriberGuard(Gauge);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl BrokerMetrics {
    /// Metrics recorded into `registry`.
    pub fn new(registry: Metrics) -> BrokerMetrics {
        BrokerMetrics { registry }
    }

    /// The registry (served on `--metrics-listen`).
    pub fn registry(&self) -> &Metrics {
        &self.registry
    }

    /// One finished request.
    pub fn request(&self, method: &str, code: tonic::Code, seconds: f64) {
        let code = format!("{code:?}");
        self.registry
            .counter(
                "bosun_broker_requests_total",
                "gRPC requests by method and status code",
                &[("method", method), ("code", &code)],
            )
            .inc();
        self.registry
            .histogram(
                "bosun_broker_request_duration_seconds",
                "gRPC request latency (watch: time to open the stream)",
                &[("method", method)],
            )
            .observe(seconds);
    }

    /// A watch subscriber of `kind` is open until the guard drops.
    pub fn subscriber(&self, kind: &str) -> SubscriberGuard {
        let g = self.registry.gauge(
            "bosun_broker_watch_subscribers",
            "open watch streams",
            &[("kind", kind)],
        );
        g.inc();
        SubscriberGuard(g)
    }

    /// Events handed to subscribers.
    pub fn events_sent(&self, kind: &str, n: usize) {
        self.registry
            .counter(
                "bosun_broker_events_fanned_out_total",
                "watch events delivered to subscribers",
                &[("kind", kind)],
            )
            .add(n as u64);
    }

    /// Events received from etcd.
    pub fn events_received(&self, kind: &str, n: usize) {
        self.registry
            .counter(
                "bosun_broker_etcd_events_total",
                "events received from etcd watches",
                &[("kind", kind)],
            )
            .add(n as u64);
    }
}
