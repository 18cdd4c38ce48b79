//! What every benchmark needs: a real etcd, real bosun processes found next to this
//! executable, free ports, and CPU time read from /proc.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bosun_runtime::etcd_process::EtcdProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A free port on 127.0.0.1, never handed out before in this process.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(bosun_runtime::ports::free_loopback_addr()?)
}

/// Starts a throwaway etcd with its own data dir.
pub async fn start_etcd(tag: &str) -> anyhow::Result<(EtcdProcess, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("bosun-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let etcd = EtcdProcess::start_on_free_ports(&dir.join("etcd"), None)
        .await
        .context("starting etcd")?;
    Ok((etcd, dir))
}

/// A bosun binary built alongside this one (`target/release/<name>`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no folder")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first (`cargo build --release --bins`)",
            path.display()
        );
    }
    Ok(path)
}

/// A child process killed on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real `bosun-broker` on a free port against `etcd_endpoint`.
pub fn spawn_broker(etcd_endpoint: &str, extra: &[&str]) -> anyhow::Result<(ChildGuard, String)> {
    let addr = free_addr()?;
    let child = Command::new(sibling_binary("bosun-broker")?)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--etcd-endpoints")
        .arg(etcd_endpoint)
        // The etcd `start_etcd` runs takes transactions that large.
        .arg("--etcd-max-txn-ops")
        .arg(bosun_runtime::etcd_process::MAX_TXN_OPS.to_string())
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .context("spawning bosun-broker")?;
    Ok((ChildGuard(child), format!("http://{addr}")))
}

/// A broker started by [`spawn_broker`] with its metrics served, and a client connected to it.
pub struct MeteredBroker {
    pub child: ChildGuard,
    /// Its `http://` address.
    pub url: String,
    pub client: bosun_runtime::client::Broker,
    pub metrics: SocketAddr,
}

/// Starts `bosun-broker` against `etcd_endpoint` with `--metrics-listen` on a free port and
/// connects to it (30 s at most).
pub async fn spawn_metered_broker(etcd_endpoint: &str) -> anyhow::Result<MeteredBroker> {
    let metrics = free_addr()?;
    let (child, addr) = spawn_broker(etcd_endpoint, &["--metrics-listen", &metrics.to_string()])?;
    let client = connect_with_deadline(&addr, Duration::from_secs(30)).await?;
    Ok(MeteredBroker {
        child,
        url: addr,
        client: bosun_runtime::client::Broker::new(client),
        metrics,
    })
}

/// Connects to the broker, retrying until `deadline` passes.
pub async fn connect_with_deadline(
    addr: &str,
    deadline: Duration,
) -> anyhow::Result<bosun_runtime::client::BrokerClient> {
    let until = Instant::now() + deadline;
    loop {
        match bosun_runtime::client::connect(addr).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= until => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// User + system CPU time a process has used so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the `(comm)` that may contain spaces; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Ok(Duration::from_millis(ticks * 10))
}

/// `nproc` and total memory, for the record.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!("{cpus} cores, {} GiB", mem_kb / 1024 / 1024)
}

/// Spawns a bosun binary with `args`, its log level from `log_var` (else warn), without an
/// OTLP exporter (benchmarks measure the plane, not the exporter).
pub fn spawn(name: &str, log_var: &str, args: &[&str]) -> anyhow::Result<ChildGuard> {
    let child = Command::new(sibling_binary(name)?)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var(log_var).unwrap_or_else(|_| "warn".into()),
        )
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("spawning {name}"))?;
    Ok(ChildGuard(child))
}

/// One `bosun-node-agent` simulating `nodes` nodes (1,000 pods each at most).
pub fn spawn_sim_agent(
    server: &str,
    nodes: usize,
    data_dir: &std::path::Path,
) -> anyhow::Result<ChildGuard> {
    spawn_named_sim_agent(server, "sim", nodes, data_dir)
}

/// One `bosun-node-agent` simulating `nodes` nodes named `<name>-0`.. (1,000 pods each at
/// most).
pub fn spawn_named_sim_agent(
    server: &str,
    name: &str,
    nodes: usize,
    data_dir: &std::path::Path,
) -> anyhow::Result<ChildGuard> {
    let data_dir = data_dir.to_str().context("temp dir is not UTF-8")?;
    let nodes = nodes.to_string();
    spawn(
        "bosun-node-agent",
        "BOSUN_BENCH_NODE_LOG",
        &[
            "--server",
            server,
            "--runtime",
            "sim",
            "--sim-nodes",
            &nodes,
            "--name",
            name,
            "--data-dir",
            data_dir,
            "--max-pods",
            "1000",
        ],
    )
}

/// Whether a node's Ready condition is True.
pub fn node_ready(obj: &bosun_api::v1::Object) -> bool {
    obj.as_node()
        .and_then(|n| n.status.as_ref())
        .is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "Ready" && c.status == "True")
        })
}

/// A process's resident set, in KiB.
pub fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

/// The load average line's first three numbers.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// GETs `/metrics` from `addr` (one HTTP/1.0 request; the server closes the connection).
pub async fn scrape(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

/// Broker requests answered so far, by method (and status code when not Ok), from its
/// metrics.
pub async fn broker_calls(
    addr: std::net::SocketAddr,
) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
    let body = scrape(addr)
        .await
        .context("scraping the broker's metrics")?;
    let mut calls = std::collections::BTreeMap::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("bosun_broker_requests_total{") else {
            continue;
        };
        let Some(method) = rest
            .split("method=\"")
            .nth(1)
            .and_then(|m| m.split('"').next())
        else {
            continue;
        };
        let code = rest
            .split("code=\"")
            .nth(1)
            .and_then(|c| c.split('"').next())
            .unwrap_or("Ok");
        let key = match code {
            "Ok" => method.to_string(),
            code => format!("{method} ({code})"),
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *calls.entry(key).or_insert(0.0) += value;
    }
    Ok(calls)
}

/// The sum of the samples of metric `name` (every label set) in a Prometheus text `body`
/// whose labels contain each of `labels` (`key="value"` strings).
pub fn metric_sum(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labelset, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            labels
                .iter()
                .all(|want| labelset.contains(want))
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_the_samples_of_one_name_whose_labels_match() {
        let body = "# HELP x\n\
bosun_reconcile_total{controller=\"daemonset\",result=\"ok\"} 7\n\
bosun_reconcile_total{controller=\"daemonset\",result=\"error\"} 2\n\
bosun_reconcile_total_other 100\n\
bosun_reconcile_duration_seconds_sum{controller=\"daemonset\"} 0.5\n\
bosun_up 1\n";
        let cases: &[(&str, &str, &[&str], f64)] = &[
            ("every label set", "bosun_reconcile_total", &[], 9.0),
            (
                "one label",
                "bosun_reconcile_total",
                &["result=\"ok\""],
                7.0,
            ),
            (
                "no label set matches",
                "bosun_reconcile_total",
                &["result=\"x\""],
                0.0,
            ),
            (
                "a histogram's sum",
                "bosun_reconcile_duration_seconds_sum",
                &[],
                0.5,
            ),
            ("without labels", "bosun_up", &[], 1.0),
            ("absent", "bosun_missing", &[], 0.0),
        ];
        for (name, metric, labels, want) in cases {
            assert_eq!(metric_sum(body, metric, labels), *want, "{name}");
        }
    }
}
