//! Every service's `/metrics` parses with the standard Prometheus parsers: the Python
//! `prometheus_client` package's text-format parser (`prometheus_client.parser`) for the
//! default scrape, and its OpenMetrics parser (`prometheus_client.openmetrics.parser`) for a
//! scrape that asks for OpenMetrics. The plane is the real thing, in-process: etcd, the
//! broker, the scheduler, the gc, the Job controller and a process-runtime node agent, each
//! serving metrics on its own port; one Job runs to completion first, so the families that
//! appear on first use (labelled by method, controller, kind...) are there to check.
//!
//! Needs `python3` with `prometheus_client` (`scripts/deps.sh --test` installs it; `BOSUN_PYTHON`
//! names another interpreter).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bosun_api::v1::Kind;
use bosun_tests::{Plane, job, wait_for};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const WAIT: Duration = Duration::from_secs(30);

/// Parses each scrape with the parser for its format; prints, per scrape, its families
/// (name, type, unit, sample names) or the parser's error.
const PARSE: &str = r#"
import json, sys
try:
    from prometheus_client.parser import text_string_to_metric_families as parse_text
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
except ImportError as e:
    print(f"python package prometheus_client is missing ({e}): run scripts/deps.sh --test, or pip install prometheus-client", file=sys.stderr)
    sys.exit(3)
out = {}
for scrape in json.load(sys.stdin):
    parse = parse_om if scrape["format"] == "openmetrics" else parse_text
    try:
        out[scrape["key"]] = {"families": {
            f.name: {"type": f.type, "unit": f.unit, "samples": sorted({s.name for s in f.samples})}
            for f in parse(scrape["text"])
        }}
    except Exception as e:
        out[scrape["key"]] = {"error": f"{type(e).__name__}: {e}"}
print(json.dumps(out))
"#;

/// The families every scrape of a service must hold, as the parsers name them (a counter
/// without its `_total`), with their types.
fn expected(service: &str) -> Vec<(&'static str, &'static str)> {
    const INFORMER: &[(&str, &str)] = &[
        ("bosun_informer_events", "counter"),
        ("bosun_informer_relists", "counter"),
        ("bosun_informer_objects", "gauge"),
        ("bosun_informer_revision", "gauge"),
    ];
    let own: &[(&str, &str)] = match service {
        "broker" => &[
            ("bosun_broker_requests", "counter"),
            ("bosun_broker_request_duration_seconds", "histogram"),
            ("bosun_broker_watch_subscribers", "gauge"),
            ("bosun_broker_etcd_events", "counter"),
            ("bosun_broker_events_fanned_out", "counter"),
        ],
        "scheduler" => &[
            ("bosun_scheduler_binds", "counter"),
            ("bosun_scheduler_bind_errors", "counter"),
            ("bosun_scheduler_bind_duration_seconds", "histogram"),
            ("bosun_node_lifecycle_evictions", "counter"),
            ("bosun_reconcile", "counter"),
            ("bosun_reconcile_duration_seconds", "histogram"),
            ("bosun_queue_depth", "gauge"),
            ("bosun_queue_adds", "counter"),
        ],
        "gc" => &[
            ("bosun_gc_deletes", "counter"),
            ("bosun_gc_orphanings", "counter"),
            ("bosun_gc_ttl_deletes", "counter"),
            ("bosun_queue_depth", "gauge"),
        ],
        "job-controller" => &[
            ("bosun_job_pods_created", "counter"),
            ("bosun_job_status_conflicts", "counter"),
            ("bosun_reconcile", "counter"),
            ("bosun_reconcile_duration_seconds", "histogram"),
            ("bosun_queue_depth", "gauge"),
            ("bosun_queue_adds", "counter"),
        ],
        "node-agent" => &[
            ("bosun_node_agent_pods_running", "gauge"),
            ("bosun_node_agent_status_writes", "counter"),
            ("bosun_node_agent_container_starts", "counter"),
        ],
        other => panic!("no expectations for {other}"),
    };
    // Every service but the broker watches through informers.
    let informer = if service == "broker" {
        &[][..]
    } else {
        INFORMER
    };
    [own, informer].concat()
}

/// `GET /metrics` with `accept` (if any); the response's content type and body.
async fn scrape(addr: SocketAddr, accept: Option<&str>) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to metrics at {addr}: {e}"));
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: test\r\n{accept}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head from {addr}: {response:?}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{addr}: {head}");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (content_type, body.to_string())
}

/// Runs [`PARSE`] over `scrapes` (`key`, `format`, `text` each).
async fn parse(scrapes: &[Value]) -> Value {
    let python = std::env::var("BOSUN_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = tokio::process::Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} ({e}): run scripts/deps.sh --test"));
    let input = serde_json::to_vec(scrapes).expect("json");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&input).await.expect("write to python");
    drop(stdin);
    let out = child.wait_with_output().await.expect("python runs");
    assert!(
        out.status.success(),
        "{python} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the parser script prints JSON")
}

/// The plane: every service in-process, each serving metrics on its own port.
async fn plane() -> Plane {
    Plane::builder("metrics")
        .controllers()
        .nodes(&["node-1"])
        .start()
        .await
}

/// Every service's metrics address, by service.
fn metrics(plane: &Plane) -> BTreeMap<&'static str, SocketAddr> {
    [
        ("broker", plane.broker_metrics()),
        ("scheduler", plane.scheduler_metrics()),
        ("gc", plane.gc_metrics()),
        ("job-controller", plane.job_controller_metrics()),
        ("node-agent", plane.node_metrics("node-1")),
    ]
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_services_metrics_parse_with_the_prometheus_text_and_openmetrics_parsers() {
    let plane = plane().await;
    plane
        .client()
        .create(job("default", "pi"))
        .await
        .expect("create job");
    wait_for("job pi succeeded once", WAIT, || async {
        let status = plane
            .client()
            .get_opt(Kind::Job, "default", "pi")
            .await
            .expect("get job")
            .and_then(|o| o.into_job())
            .and_then(|j| j.status)
            .unwrap_or_default();
        if status.succeeded == 1 {
            Ok(())
        } else {
            Err(format!("{status:#?}"))
        }
    })
    .await;

    let mut scrapes = Vec::new();
    for (service, addr) in &metrics(&plane) {
        let (text_type, text) = scrape(*addr, None).await;
        assert_eq!(
            text_type, "text/plain; version=0.0.4; charset=utf-8",
            "{service}"
        );
        scrapes.push(json!({"key": format!("{service} text"), "format": "text", "text": text}));
        let (om_type, om) = scrape(
            *addr,
            Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"),
        )
        .await;
        assert_eq!(
            om_type, "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "{service}"
        );
        scrapes.push(
            json!({"key": format!("{service} openmetrics"), "format": "openmetrics", "text": om}),
        );
    }
    let parsed = parse(&scrapes).await;

    for scrape in &scrapes {
        let key = scrape["key"].as_str().expect("key");
        let service = key.split(' ').next().expect("service");
        let result = &parsed[key];
        assert!(
            result.get("error").is_none(),
            "{key} does not parse: {}\n{}",
            result["error"],
            scrape["text"].as_str().unwrap_or_default()
        );
        let families = result["families"].as_object().expect("families");
        // A sample the parser could not tie to its family's TYPE (a counter's `_total`
        // missing, a histogram series misnamed) comes back untyped.
        for (name, family) in families {
            let kind = family["type"].as_str().unwrap_or_default();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "{key}: {name} parsed as {kind}: {family}"
            );
            if name.ends_with("_seconds") && kind == "histogram" {
                let samples = family["samples"].to_string();
                for suffix in ["_bucket", "_sum", "_count"] {
                    assert!(
                        samples.contains(&format!("{name}{suffix}")),
                        "{key}: {name}: {samples}"
                    );
                }
            }
            if kind == "counter" {
                assert_eq!(
                    family["samples"],
                    json!([format!("{name}_total")]),
                    "{key}: {name}"
                );
            }
        }
        for (name, kind) in expected(service) {
            let family = families
                .get(name)
                .unwrap_or_else(|| panic!("{key}: no family {name} in {:?}", families.keys()));
            assert_eq!(family["type"], kind, "{key}: {name}");
        }
        // OpenMetrics carries the unit of `_seconds` families.
        if key.ends_with("openmetrics") {
            for (name, family) in families {
                if name.ends_with("_seconds") {
                    assert_eq!(family["unit"], "seconds", "{key}: {name}");
                }
            }
        }
    }
    let job_text = scrapes
        .iter()
        .find(|s| s["key"] == "job-controller text")
        .and_then(|s| s["text"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        job_text
            .lines()
            .any(|l| l == "bosun_job_pods_created_total 1"),
        "one pod created for the one Job:\n{job_text}"
    );
}
