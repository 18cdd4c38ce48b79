//! Prometheus metrics: a registry of counters, gauges and histograms (with labels) kept by
//! the `prometheus-client` crate, which also renders them, and an HTTP server (axum over
//! hyper) that serves them at `/metrics` — in the Prometheus text format 0.0.4, or in
//! OpenMetrics text when the scraper asks for it (`Accept: application/openmetrics-text`).
//!
//! Handles are cheap atomics: look one up once (`metrics.counter(..)`) and keep it, then
//! updating it takes no lock. The registry's lock is taken only to create a series and to
//! render.
//!
//! Names follow Prometheus conventions and are given whole: a counter's name ends in
//! `_total`, a name ends in its base unit (`_seconds`, `_bytes`). The crate adds `_total` to
//! counters and the unit to unit-suffixed names itself, so this module strips both before
//! registering: a family is rendered under exactly the name its users wrote (a counter
//! named without `_total` gets one).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::family::Family as Series;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

/// Histogram bucket upper bounds in seconds (+Inf is implied): 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `Content-Type` of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The `Content-Type` of OpenMetrics text, served when the scraper accepts it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A series' labels, sorted by name (so the order a caller lists them in does not matter).
type Labels = Vec<(String, String)>;

/// A registry shared by a service's components (cheap to clone).
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<RwLock<Inner>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The crate's registry, and our index of its families by the name callers use.
#[derive(Default)]
struct Inner {
    registry: Registry,
    families: HashMap<String, Family>,
}

/// All series of one metric name (cheap to clone: the crate's families share their map).
#[derive(Clone)]
enum Family {
    Counter(Series<Labels, prometheus_client::metrics::counter::Counter>),
    Gauge(Series<Labels, prometheus_client::metrics::gauge::Gauge>),
    Histogram(Series<Labels, Histogram>),
}

/// A monotonically increasing counter (one label set).
#[derive(Clone, Default, Debug)]
pub struct Counter(prometheus_client::metrics::counter::Counter);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down (one label set).
#[derive(Clone, Default, Debug)]
pub struct Gauge(prometheus_client::metrics::gauge::Gauge);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.set(v);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.0.dec();
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

/// The counts of a [`Histogram`].
#[derive(Debug)]
struct HistogramInner {
    /// Per-bucket (non-cumulative) counts, one per [`LATENCY_BUCKETS`] bound, then +Inf.
    buckets: Vec<AtomicU64>,
    /// The sum of observations, as f64 bits.
    sum: AtomicU64,
}

impl Default for HistogramInner {
    fn default() -> Self {
        HistogramInner {
            buckets: (0..=LATENCY_BUCKETS.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }
}

/// A latency histogram in seconds (one label set), over [`LATENCY_BUCKETS`].
///
/// Ours rather than the crate's: the crate's histogram takes a mutex on every observation,
/// this one only updates atomics; the crate encodes it like its own.
#[derive(Clone, Default, Debug)]
pub struct Histogram {
    inner: Arc<HistogramInner>,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, seconds: f64) {
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.inner.buckets[i].fetch_add(1, Ordering::Relaxed);
        // A CAS loop: there is no atomic f64 add.
        let _ = self
            .inner
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + seconds).to_bits())
            });
    }
    /// Records the time elapsed since `start`.
    pub fn observe_since(&self, start: std::time::Instant) {
        self.observe(start.elapsed().as_secs_f64());
    }
    /// How many observations were made.
    pub fn count(&self) -> u64 {
        self.inner
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.inner.buckets)
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' total, so the two agree even while observations race the
        // render.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = f64::from_bits(self.inner.sum.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// `labels` owned and sorted by name.
fn label_set(labels: &[(&str, &str)]) -> Labels {
    let mut set: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    set.sort_by(|a, b| a.0.cmp(&b.0));
    set
}

/// The name and unit a family is registered under, so that the crate's encoding (which
/// appends the unit, then `_total` to counters) renders `name` as given.
fn registered_name(name: &str, kind: MetricType) -> (&str, Option<Unit>) {
    let base = match kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    for (suffix, unit) in [("_seconds", Unit::Seconds), ("_bytes", Unit::Bytes)] {
        if let Some(stem) = base.strip_suffix(suffix).filter(|s| !s.is_empty()) {
            return (stem, Some(unit));
        }
    }
    (base, None)
}

/// `help` as registered: on one line (the crate's OpenMetrics encoder writes HELP text
/// unescaped, so a newline would break the exposition) and without its final full stop (the
/// crate adds one to every help text).
fn help_text(help: &str) -> String {
    let line = help.replace(['\r', '\n'], " ");
    match line.strip_suffix('.') {
        Some(stem) => stem.to_string(),
        None => line,
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// The family `name`, created (and registered with `help`) on first use by `make`; `None`
    /// when `name` is already a metric of another type.
    fn family(&self, name: &str, help: &str, make: fn() -> Family) -> Option<Family> {
        // Most lookups find the family: a read lock, so services creating handles at once
        // (the broker, per request) do not queue behind each other.
        if let Ok(inner) = self.inner.read()
            && let Some(f) = inner.families.get(name)
        {
            return Some(f.clone());
        }
        let mut inner = self.inner.write().ok()?;
        if let Some(f) = inner.families.get(name) {
            return Some(f.clone());
        }
        let family = make();
        let kind = match &family {
            Family::Counter(_) => MetricType::Counter,
            Family::Gauge(_) => MetricType::Gauge,
            Family::Histogram(_) => MetricType::Histogram,
        };
        let (base, unit) = registered_name(name, kind);
        let help = help_text(help);
        let registry = &mut inner.registry;
        match (family.clone(), unit) {
            (Family::Counter(s), None) => registry.register(base, help, s),
            (Family::Counter(s), Some(u)) => registry.register_with_unit(base, help, u, s),
            (Family::Gauge(s), None) => registry.register(base, help, s),
            (Family::Gauge(s), Some(u)) => registry.register_with_unit(base, help, u, s),
            (Family::Histogram(s), None) => registry.register(base, help, s),
            (Family::Histogram(s), Some(u)) => registry.register_with_unit(base, help, u, s),
        }
        inner.families.insert(name.to_string(), family.clone());
        Some(family)
    }

    /// Logs a name registered twice with different types (a programming error; the caller
    /// gets a detached handle that is never rendered).
    fn type_clash(name: &str) {
        tracing::warn!(
            metric = name,
            "metric registered twice with different types"
        );
    }

    /// The counter `name{labels}`, created on first use. `name` ends in `_total`.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        match self.family(name, help, || Family::Counter(Series::default())) {
            Some(Family::Counter(s)) => Counter(s.get_or_create_owned(&label_set(labels))),
            _ => {
                Self::type_clash(name);
                Counter::default()
            }
        }
    }

    /// The gauge `name{labels}`, created on first use.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.family(name, help, || Family::Gauge(Series::default())) {
            Some(Family::Gauge(s)) => Gauge(s.get_or_create_owned(&label_set(labels))),
            _ => {
                Self::type_clash(name);
                Gauge::default()
            }
        }
    }

    /// The histogram `name{labels}` (latency buckets 0.5 ms .. 10 s), created on first use.
    /// `name` ends in `_seconds`.
    pub fn histogram(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Histogram {
        match self.family(name, help, || Family::Histogram(Series::default())) {
            Some(Family::Histogram(s)) => s.get_or_create_owned(&label_set(labels)),
            _ => {
                Self::type_clash(name);
                Histogram::default()
            }
        }
    }

    /// Everything, in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        self.encode(prometheus_client::encoding::prometheus_text::encode)
    }

    /// Everything, in the OpenMetrics text format (ends with `# EOF`).
    pub fn render_openmetrics(&self) -> String {
        self.encode(prometheus_client::encoding::text::encode)
    }

    fn encode(&self, encode: fn(&mut String, &Registry) -> std::fmt::Result) -> String {
        let mut out = String::new();
        let Ok(inner) = self.inner.read() else {
            return out;
        };
        // Writing into a String cannot fail; the encoders fail only with their writer.
        if encode(&mut out, &inner.registry).is_err() {
            tracing::warn!("metrics could not be encoded");
        }
        out
    }
}

/// What every service does with its `--metrics-listen`: when set, binds it at once (so a taken
/// port fails at startup) and serves `metrics` there until `shutdown`; the task to await on
/// the way out.
pub async fn serve_on(
    addr: Option<SocketAddr>,
    metrics: &Metrics,
    shutdown: &tokio_util::sync::CancellationToken,
) -> std::io::Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    Ok(Some(tokio::spawn(serve(
        listener,
        metrics.clone(),
        shutdown.clone(),
    ))))
}

/// Serves `GET /metrics` on `listener` until `shutdown` is cancelled (then finishes the
/// scrapes under way).
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .fallback(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                "not found: try /metrics\n",
            )
        })
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Whether an `Accept` header asks for OpenMetrics text (Prometheus lists it first, with the
/// 0.0.4 text format as its fallback).
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut params = range.split(';').map(str::trim);
            let accepted = params.next() == Some("application/openmetrics-text");
            // `q=0` means "not this one".
            let refused = params.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            accepted && !refused
        })
}

/// One scrape: the registry in the format the scraper accepts.
async fn scrape(State(metrics): State<Metrics>, headers: HeaderMap) -> Response {
    let (content_type, body) = if wants_openmetrics(&headers) {
        (OPENMETRICS_CONTENT_TYPE, metrics.render_openmetrics())
    } else {
        (TEXT_CONTENT_TYPE, metrics.render())
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// Binds `addr` for [`serve`]; a taken port is a clear error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!("cannot serve metrics on {addr}: {err} (is another service using that port? pick another with --metrics-listen)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[test]
    fn counters_and_gauges_render_with_help_type_and_sorted_labels() {
        let m = Metrics::new();
        m.counter(
            "bosun_adds_total",
            "Keys added.",
            &[("queue", "job"), ("a", "x")],
        )
        .add(3);
        let g = m.gauge("bosun_depth", "Queue depth", &[]);
        g.set(5);
        g.dec();
        assert_eq!(
            m.render(),
            "# HELP bosun_adds_total Keys added.\n\
             # TYPE bosun_adds_total counter\n\
             bosun_adds_total{a=\"x\",queue=\"job\"} 3\n\
             # HELP bosun_depth Queue depth.\n\
             # TYPE bosun_depth gauge\n\
             bosun_depth 4\n"
        );
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let m = Metrics::new();
        m.counter("bosun_adds_total", "Keys added.", &[("queue", "job")])
            .inc();
        m.histogram("bosun_wait_seconds", "Wait.", &[]).observe(0.1);
        let text = m.render_openmetrics();
        for line in [
            "# TYPE bosun_adds counter",
            "bosun_adds_total{queue=\"job\"} 1",
            "# TYPE bosun_wait_seconds histogram",
            "# UNIT bosun_wait_seconds seconds",
            "bosun_wait_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn names_render_as_given_whatever_their_suffixes() {
        let table: &[(&str, MetricType, &str)] = &[
            ("a counter keeps its _total", MetricType::Counter, "x_total"),
            (
                "a counter in seconds",
                MetricType::Counter,
                "cpu_seconds_total",
            ),
            ("a gauge in bytes", MetricType::Gauge, "mem_bytes"),
            ("a plain gauge", MetricType::Gauge, "depth"),
            (
                "a histogram in seconds",
                MetricType::Histogram,
                "lat_seconds",
            ),
            ("a bare unit is a name", MetricType::Gauge, "seconds"),
        ];
        for (row, kind, name) in table {
            let m = Metrics::new();
            match kind {
                MetricType::Counter => m.counter(name, "h", &[]).inc(),
                MetricType::Gauge => m.gauge(name, "h", &[]).set(1),
                _ => m.histogram(name, "h", &[]).observe(1.0),
            }
            let text = m.render();
            let want = format!("# TYPE {name} ");
            assert!(text.contains(&want), "{row}: no {want:?} in\n{text}");
        }
        // A counter named without `_total` gets one.
        let m = Metrics::new();
        m.counter("starts", "h", &[]).inc();
        assert!(m.render().contains("\nstarts_total 1\n"), "{}", m.render());
    }

    #[test]
    fn the_same_name_and_labels_give_the_same_series() {
        let m = Metrics::new();
        m.counter("c_total", "h", &[("k", "v")]).inc();
        m.counter("c_total", "h", &[("k", "v")]).inc();
        m.counter("c_total", "h", &[("k", "w")]).inc();
        assert_eq!(m.counter("c_total", "h", &[("k", "v")]).get(), 2);
        // Label order does not make another series.
        m.counter("d_total", "h", &[("a", "1"), ("b", "2")]).inc();
        m.counter("d_total", "h", &[("b", "2"), ("a", "1")]).inc();
        let text = m.render();
        assert!(text.contains("c_total{k=\"w\"} 1\n"), "{text}");
        assert!(text.contains("d_total{a=\"1\",b=\"2\"} 2\n"), "{text}");
    }

    #[test]
    fn a_name_reused_with_another_type_gets_a_detached_handle() {
        let m = Metrics::new();
        m.counter("x_total", "h", &[]).inc();
        let g = m.gauge("x_total", "h", &[]);
        g.set(9);
        assert_eq!(g.get(), 9);
        let text = m.render();
        assert!(text.contains("\nx_total 1\n"), "{text}");
        assert!(text.contains("# TYPE x_total counter"), "{text}");
        assert!(!text.contains(" 9\n"), "{text}");
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let m = Metrics::new();
        let h = m.histogram("lat_seconds", "Latency.", &[("op", "get")]);
        for v in [0.0001, 0.0005, 0.003, 0.2, 50.0] {
            h.observe(v);
        }
        assert_eq!(h.count(), 5);
        let text = m.render();
        let expect = [
            "# HELP lat_seconds Latency.",
            "# TYPE lat_seconds histogram",
            "lat_seconds_bucket{op=\"get\",le=\"0.0005\"} 2",
            "lat_seconds_bucket{op=\"get\",le=\"0.001\"} 2",
            "lat_seconds_bucket{op=\"get\",le=\"0.005\"} 3",
            "lat_seconds_bucket{op=\"get\",le=\"0.25\"} 4",
            "lat_seconds_bucket{op=\"get\",le=\"10\"} 4",
            "lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 5",
            "lat_seconds_count{op=\"get\"} 5",
        ];
        for line in expect {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        let sum = text
            .lines()
            .find_map(|l| l.strip_prefix("lat_seconds_sum{op=\"get\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!((sum - 50.2036).abs() < 1e-9, "{sum}");
        assert_eq!(text.matches("_bucket").count(), LATENCY_BUCKETS.len() + 1);
    }

    #[test]
    fn label_values_are_escaped_and_help_is_one_line() {
        let m = Metrics::new();
        m.gauge("g", "line1\nback\\slash", &[("v", "a\"b\\c\nd")])
            .set(1);
        let text = m.render();
        assert!(text.contains("# HELP g line1 back\\\\slash.\n"), "{text}");
        assert!(text.contains("g{v=\"a\\\"b\\\\c\\nd\"} 1\n"), "{text}");
        // (OpenMetrics help is written unescaped by the crate: only the newline is ours to
        // keep out.)
        let text = m.render_openmetrics();
        assert!(text.contains("# HELP g line1 back"), "{text}");
        assert!(text.contains("g{v=\"a\\\"b\\\\c\\nd\"} 1\n"), "{text}");
    }

    #[test]
    fn openmetrics_is_chosen_only_when_accepted() {
        let table: &[(&str, &str, bool)] = &[
            ("no header", "", false),
            ("plain text", "text/plain; version=0.0.4", false),
            (
                "what Prometheus sends",
                "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                true,
            ),
            (
                "refused with q=0",
                "application/openmetrics-text; q=0",
                false,
            ),
            ("anything", "*/*", false),
        ];
        for (row, accept, want) in table {
            let mut headers = HeaderMap::new();
            if !accept.is_empty() {
                headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            }
            assert_eq!(wants_openmetrics(&headers), *want, "{row}");
        }
    }

    async fn http_get(addr: SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn the_server_answers_a_scrape_in_either_format_and_stops_on_shutdown() {
        let m = Metrics::new();
        m.counter("bosun_up_total", "Starts.", &[]).inc();
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(serve(listener, m.clone(), shutdown.clone()));

        let ok = http_get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("content-type: text/plain; version=0.0.4"),
            "{ok}"
        );
        assert!(ok.ends_with("\r\n\r\n# HELP bosun_up_total Starts.\n# TYPE bosun_up_total counter\nbosun_up_total 1\n"), "{ok}");
        // The bench's scraper: HTTP/1.0, reads until the server closes.
        let old = http_get(addr, "GET /metrics HTTP/1.0\r\n\r\n").await;
        assert!(old.ends_with("bosun_up_total 1\n"), "{old}");
        let om = http_get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            om.contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{om}"
        );
        assert!(om.ends_with("bosun_up_total 1\n# EOF\n"), "{om}");
        let missing = http_get(addr, "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let post = http_get(addr, "POST /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn shutdown_is_not_held_up_by_an_idle_keep_alive_connection_or_a_silent_client() {
        let m = Metrics::new();
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(serve(listener, m, shutdown.clone()));

        // A client that connected and never sent a byte (accepted before the next one, whose
        // answer shows the accept loop got past it).
        let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        // One scrape answered, the connection kept open.
        let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        kept.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");

        shutdown.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("the server stops though connections are open")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn binding_a_taken_port_names_the_address() {
        let held = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = held.local_addr().unwrap();
        let err = bind(addr).await.unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(err.to_string().contains("--metrics-listen"), "{err}");
    }
}
