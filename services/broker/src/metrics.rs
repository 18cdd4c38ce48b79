//! The broker's metrics, named once here: requests by method and code, request latency,
//! watch subscribers, events received from etcd and fanned out.
//!
//! These are recorded per request and per event batch, so the handles of each label set are
//! kept here once looked up: the hot path reads a small map, never the registry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bosun_runtime::metrics::{Counter, Gauge, Histogram, Metrics};

/// The broker's view of the shared registry.
#[derive(Clone, Default)]
pub struct BrokerMetrics {
    registry: Metrics,
    handles: Arc<Handles>,
}

/// Handles already looked up, by label value.
#[derive(Default)]
struct Handles {
    methods: RwLock<HashMap<String, MethodHandles>>,
    fanned_out: RwLock<HashMap<String, Counter>>,
    received: RwLock<HashMap<String, Counter>>,
}

/// One method's latency, and its count of successful requests (other codes are rare enough
/// to be looked up in the registry).
#[derive(Clone)]
struct MethodHandles {
    latency: Histogram,
    ok: Counter,
}

/// The handle cached under `key` in `map`, made by `make` the first time.
fn cached<T: Clone>(map: &RwLock<HashMap<String, T>>, key: &str, make: impl FnOnce() -> T) -> T {
    if let Some(found) = map.read().ok().and_then(|m| m.get(key).cloned()) {
        return found;
    }
    let made = make();
    match map.write() {
        Ok(mut m) => m.entry(key.to_string()).or_insert(made).clone(),
        Err(_) => made,
    }
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
        BrokerMetrics {
            registry,
            handles: Arc::default(),
        }
    }

    /// The registry (served on `--metrics-listen`).
    pub fn registry(&self) -> &Metrics {
        &self.registry
    }

    fn requests(&self, method: &str, code: tonic::Code) -> Counter {
        self.registry.counter(
            "bosun_broker_requests_total",
            "gRPC requests by method and status code",
            &[("method", method), ("code", &format!("{code:?}"))],
        )
    }

    /// One finished request.
    pub fn request(&self, method: &str, code: tonic::Code, seconds: f64) {
        let handles = cached(&self.handles.methods, method, || MethodHandles {
            latency: self.registry.histogram(
                "bosun_broker_request_duration_seconds",
                "gRPC request latency (watch: time to open the stream)",
                &[("method", method)],
            ),
            ok: self.requests(method, tonic::Code::Ok),
        });
        match code {
            tonic::Code::Ok => handles.ok.inc(),
            other => self.requests(method, other).inc(),
        }
        handles.latency.observe(seconds);
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
        cached(&self.handles.fanned_out, kind, || {
            self.registry.counter(
                "bosun_broker_events_fanned_out_total",
                "watch events delivered to subscribers",
                &[("kind", kind)],
            )
        })
        .add(n as u64);
    }

    /// A write refused because its `bosun-fence` no longer holds.
    pub fn fenced_write(&self, controller: &str) {
        self.registry
            .counter(
                "bosun_broker_fenced_writes_total",
                "writes refused because the replica no longer holds the shard named by their bosun-fence",
                &[("controller", controller)],
            )
            .inc();
    }

    /// Events received from etcd.
    pub fn events_received(&self, kind: &str, n: usize) {
        cached(&self.handles.received, kind, || {
            self.registry.counter(
                "bosun_broker_etcd_events_total",
                "events received from etcd watches",
                &[("kind", kind)],
            )
        })
        .add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_events_count_into_the_registry_by_their_labels() {
        let m = BrokerMetrics::new(Metrics::new());
        for code in [tonic::Code::Ok, tonic::Code::Ok, tonic::Code::Aborted] {
            m.request("Create", code, 0.001);
        }
        m.request("Get", tonic::Code::Ok, 0.001);
        m.events_sent("pods", 3);
        m.events_sent("pods", 2);
        m.events_received("pods", 4);
        let guard = m.subscriber("pods");
        let text = m.registry().render();
        for line in [
            "bosun_broker_requests_total{code=\"Ok\",method=\"Create\"} 2",
            "bosun_broker_requests_total{code=\"Aborted\",method=\"Create\"} 1",
            "bosun_broker_requests_total{code=\"Ok\",method=\"Get\"} 1",
            "bosun_broker_request_duration_seconds_count{method=\"Create\"} 3",
            "bosun_broker_events_fanned_out_total{kind=\"pods\"} 5",
            "bosun_broker_etcd_events_total{kind=\"pods\"} 4",
            "bosun_broker_watch_subscribers{kind=\"pods\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        drop(guard);
        assert!(
            m.registry()
                .render()
                .contains("bosun_broker_watch_subscribers{kind=\"pods\"} 0\n")
        );
    }
}
