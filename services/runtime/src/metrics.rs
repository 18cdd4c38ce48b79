//! Prometheus text metrics: a small registry of counters, gauges and histograms (with
//! labels), rendered in the text exposition format and served over HTTP at `/metrics`.
//!
//! Handles are cheap atomics: look one up once (`metrics.counter(..)`) and keep it, then
//! updating it takes no lock. The registry lock is taken only to create a series and to
//! render.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Histogram bucket upper bounds in seconds (+Inf is implied): 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A registry shared by a service's components (cheap to clone).
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<BTreeMap<String, Family>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// All series of one metric name.
struct Family {
    help: String,
    series: Series,
}

/// The series of a family by their rendered label set (`{a="b"}` or empty).
enum Series {
    Counter(BTreeMap<String, Counter>),
    Gauge(BTreeMap<String, Gauge>),
    Histogram(BTreeMap<String, Histogram>),
}

/// A monotonically increasing counter (one label set).
#[derive(Clone, Default, Debug)]
pub struct Counter {
    value: Arc<AtomicU64>,
}
impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (one label set).
#[derive(Clone, Default, Debug)]
pub struct Gauge {
    value: Arc<AtomicI64>,
}
impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.value.store(v, Ordering::Relaxed);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.value.fetch_sub(1, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct HistogramInner {
    /// Per-bucket (non-cumulative) counts; the last one is +Inf.
    buckets: Vec<AtomicU64>,
    /// The sum of observations, as f64 bits.
    sum: AtomicU64,
    count: AtomicU64,
}

impl Default for HistogramInner {
    fn default() -> Self {
        HistogramInner {
            buckets: (0..=LATENCY_BUCKETS.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }
}

/// A latency histogram in seconds (one label set).
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
        self.inner.count.fetch_add(1, Ordering::Relaxed);
    }
    /// Records the time elapsed since `start`.
    pub fn observe_since(&self, start: std::time::Instant) {
        self.observe(start.elapsed().as_secs_f64());
    }
    /// How many observations were made.
    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Escapes HELP text: backslash and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

/// `{a="1",b="2"}` (sorted by label name), or empty for no labels.
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut sorted: Vec<_> = labels.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let inner: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Adds `extra` (already rendered, `le="0.5"`) to a rendered label set.
fn with_label(set: &str, extra: &str) -> String {
    match set.strip_suffix('}') {
        Some(open) => format!("{open},{extra}}}"),
        None => format!("{{{extra}}}"),
    }
}

/// Renders a float the way Prometheus reads it.
fn float(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Finds or creates a series; `None` when `name` is already a metric of another type
    /// (a programming error, logged; the caller gets a detached handle).
    fn series<T: Clone + Default>(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        empty: fn() -> Series,
        pick: fn(&mut Series) -> Option<&mut BTreeMap<String, T>>,
    ) -> T {
        let Ok(mut families) = self.inner.lock() else {
            return T::default();
        };
        let family = families.entry(name.to_string()).or_insert_with(|| Family {
            help: help.to_string(),
            series: empty(),
        });
        match pick(&mut family.series) {
            Some(map) => map.entry(label_set(labels)).or_default().clone(),
            None => {
                tracing::warn!(
                    metric = name,
                    "metric registered twice with different types"
                );
                T::default()
            }
        }
    }

    /// The counter `name{labels}`, created on first use.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        self.series(
            name,
            help,
            labels,
            || Series::Counter(BTreeMap::new()),
            |s| match s {
                Series::Counter(m) => Some(m),
                _ => None,
            },
        )
    }

    /// The gauge `name{labels}`, created on first use.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        self.series(
            name,
            help,
            labels,
            || Series::Gauge(BTreeMap::new()),
            |s| match s {
                Series::Gauge(m) => Some(m),
                _ => None,
            },
        )
    }

    /// The histogram `name{labels}` (latency buckets 0.5 ms .. 10 s), created on first use.
    pub fn histogram(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Histogram {
        self.series(
            name,
            help,
            labels,
            || Series::Histogram(BTreeMap::new()),
            |s| match s {
                Series::Histogram(m) => Some(m),
                _ => None,
            },
        )
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let Ok(families) = self.inner.lock() else {
            return String::new();
        };
        let mut out = String::new();
        for (name, family) in families.iter() {
            let kind = match family.series {
                Series::Counter(_) => "counter",
                Series::Gauge(_) => "gauge",
                Series::Histogram(_) => "histogram",
            };
            // `write!` into a String cannot fail.
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {kind}");
            match &family.series {
                Series::Counter(m) => {
                    for (labels, c) in m {
                        let _ = writeln!(out, "{name}{labels} {}", c.get());
                    }
                }
                Series::Gauge(m) => {
                    for (labels, g) in m {
                        let _ = writeln!(out, "{name}{labels} {}", g.get());
                    }
                }
                Series::Histogram(m) => {
                    for (labels, h) in m {
                        render_histogram(&mut out, name, labels, h);
                    }
                }
            }
        }
        out
    }
}

fn render_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let mut cumulative = 0;
    let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
    for (bound, bucket) in bounds.zip(&h.inner.buckets) {
        cumulative += bucket.load(Ordering::Relaxed);
        let le = with_label(labels, &format!("le=\"{}\"", float(bound)));
        let _ = writeln!(out, "{name}_bucket{le} {cumulative}");
    }
    let sum = f64::from_bits(h.inner.sum.load(Ordering::Relaxed));
    let _ = writeln!(out, "{name}_sum{labels} {}", float(sum));
    // The count is the +Inf bucket, so both agree even while observations race the render.
    let _ = writeln!(out, "{name}_count{labels} {cumulative}");
}

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read.
const MAX_REQUEST: usize = 8 * 1024;

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

/// Serves `GET /metrics` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // Usually fd exhaustion: back off instead of spinning.
                    tracing::warn!(%err, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(err) = handle(stream, &metrics).await {
                tracing::debug!(%err, %peer, "metrics request failed");
            }
        });
    }
}

/// Answers one HTTP/1.1 request and closes the connection.
async fn handle(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET is served\n".into(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Binds `addr` for [`serve`]; a taken port is a clear error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!("cannot serve metrics on {addr}: {err} (is another service using that port? pick one with --metrics-addr)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_render_with_help_type_and_sorted_labels() {
        let m = Metrics::new();
        m.counter(
            "bosun_adds_total",
            "Keys added.",
            &[("queue", "job"), ("a", "x")],
        )
        .add(3);
        let g = m.gauge("bosun_depth", "Queue depth.", &[]);
        g.set(5);
        g.dec();
        let text = m.render();
        assert_eq!(
            text,
            "# HELP bosun_adds_total Keys added.\n\
             # TYPE bosun_adds_total counter\n\
             bosun_adds_total{a=\"x\",queue=\"job\"} 3\n\
             # HELP bosun_depth Queue depth.\n\
             # TYPE bosun_depth gauge\n\
             bosun_depth 4\n"
        );
    }

    #[test]
    fn the_same_name_and_labels_give_the_same_series() {
        let m = Metrics::new();
        m.counter("c", "h", &[("k", "v")]).inc();
        m.counter("c", "h", &[("k", "v")]).inc();
        m.counter("c", "h", &[("k", "w")]).inc();
        assert_eq!(m.counter("c", "h", &[("k", "v")]).get(), 2);
        assert!(m.render().contains("c{k=\"w\"} 1\n"));
    }

    #[test]
    fn a_name_reused_with_another_type_gets_a_detached_handle() {
        let m = Metrics::new();
        m.counter("x", "h", &[]).inc();
        m.gauge("x", "h", &[]).set(9);
        assert!(m.render().contains("\nx 1\n"));
        assert!(m.render().contains("# TYPE x counter"));
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let m = Metrics::new();
        let h = m.histogram("lat_seconds", "Latency.", &[("op", "get")]);
        for v in [0.0001, 0.0005, 0.003, 0.2, 50.0] {
            h.observe(v);
        }
        let text = m.render();
        let expect = [
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
    fn label_values_and_help_are_escaped() {
        let m = Metrics::new();
        m.gauge("g", "line1\nback\\slash", &[("v", "a\"b\\c\nd")])
            .set(1);
        let text = m.render();
        assert!(text.contains("# HELP g line1\\nback\\\\slash\n"), "{text}");
        assert!(text.contains("g{v=\"a\\\"b\\\\c\\nd\"} 1\n"), "{text}");
    }

    async fn http_get(addr: SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn the_server_answers_a_scrape_and_stops_on_shutdown() {
        let m = Metrics::new();
        m.counter("bosun_up_total", "Starts.", &[]).inc();
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(serve(listener, m.clone(), shutdown.clone()));

        let ok = http_get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4"), "{ok}");
        assert!(ok.ends_with("\r\n\r\n# HELP bosun_up_total Starts.\n# TYPE bosun_up_total counter\nbosun_up_total 1\n"), "{ok}");
        let missing = http_get(addr, "GET /nope HTTP/1.1\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let post = http_get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn binding_a_taken_port_names_the_address() {
        let held = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = held.local_addr().unwrap();
        let err = bind(addr).await.unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
