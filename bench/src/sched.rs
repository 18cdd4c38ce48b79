//! Scheduler throughput: how many pods per second `bosun-scheduler` binds onto 1,000 nodes.
//!
//! etcd, the real `bosun-broker` and the real `bosun-scheduler` run as processes. 1,000 Ready
//! Node objects are written straight into etcd (encoded as the broker stores them). Each run
//! writes N unbound pods straight into etcd (64 puts in flight) in a fresh namespace and
//! watches that namespace through the broker; binds/s is counted from the first bind seen to
//! the last.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bosun_api::v1::{self, Kind, Object};
use bosun_runtime::client::{Broker, Selector, WatchEvent};
use futures::StreamExt;
use prost::Message;

use crate::stats::median_min_max;
use crate::support;

/// Flags of `bosun-bench sched`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Pods created (and bound) per run.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Runs (median, min and max are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The scheduler's --workers.
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Puts in flight while writing pods into etcd.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// A tiny run proving the benchmark still works: 50 nodes, 300 pods, 1 run.
    #[arg(long)]
    smoke: bool,
}

/// The figures of one run.
struct RunResult {
    binds_per_sec: f64,
    /// From the first pod written to the last bind seen.
    end_to_end: Duration,
    scheduler_cpu_ms_per_1k: f64,
    broker_cpu_ms_per_1k: f64,
    etcd_cpu_ms_per_1k: f64,
}

fn meta(ns: &str, name: &str, uid: String) -> Option<v1::ObjectMeta> {
    Some(v1::ObjectMeta {
        name: name.into(),
        namespace: ns.into(),
        uid,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        ..Default::default()
    })
}

/// An encoded Ready node with room for plenty of pods.
fn node_bytes(i: usize) -> Vec<u8> {
    let node = v1::Node {
        api_version: "v1".into(),
        kind: "Node".into(),
        metadata: meta(
            "",
            &format!("node-{i:04}"),
            format!("00000000-0000-4000-9000-{i:012}"),
        ),
        spec: Some(v1::NodeSpec::default()),
        status: Some(v1::NodeStatus {
            allocatable: [
                ("cpu".to_string(), "64".to_string()),
                ("memory".to_string(), "256Gi".to_string()),
                ("pods".to_string(), "1000".to_string()),
            ]
            .into(),
            conditions: vec![v1::Condition {
                r#type: "Ready".into(),
                status: "True".into(),
                reason: "KubeletReady".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    };
    Object::from(node).encode_to_vec()
}

/// An encoded unbound pod requesting a little cpu and memory.
fn pod_bytes(ns: &str, i: usize) -> Vec<u8> {
    let name = format!("p-{i:06}");
    let pod = v1::Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: meta(ns, &name, format!("00000000-0000-4000-8000-{i:012}")),
        spec: Some(Box::new(v1::PodSpec {
            containers: vec![v1::Container {
                name: "main".into(),
                image: "busybox".into(),
                command: vec!["true".into()],
                resources: Some(v1::ResourceRequirements {
                    requests: [
                        ("cpu".to_string(), "10m".to_string()),
                        ("memory".to_string(), "16Mi".to_string()),
                    ]
                    .into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            restart_policy: "Never".into(),
            scheduler_name: "default-scheduler".into(),
            ..Default::default()
        })),
        status: Some(v1::PodStatus {
            phase: "Pending".into(),
            ..Default::default()
        }),
    };
    let mut obj = Object::from(pod);
    bosun_api::defaults::apply_defaults(&mut obj);
    obj.encode_to_vec()
}

/// Puts `items` (key, value) into etcd with `in_flight` puts outstanding.
async fn put_all(
    etcd: &etcd_client::Client,
    items: impl Iterator<Item = (String, Vec<u8>)>,
    in_flight: usize,
) -> anyhow::Result<()> {
    let results: Vec<Result<_, etcd_client::Error>> = futures::stream::iter(items)
        .map(|(k, v)| {
            let mut kv = etcd.kv_client();
            async move { kv.put(k, v, None).await }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    for r in results {
        r.context("etcd put")?;
    }
    Ok(())
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.smoke {
        (args.nodes, args.pods, args.runs) = (50, 300, 1);
    }
    let (etcd, dir) = support::start_etcd("sched").await?;
    let endpoint = etcd.endpoint();
    let window = (args.pods * 4).max(10_000).to_string();
    let (broker, broker_addr) = support::spawn_broker(&endpoint, &["--window-events", &window])?;
    let client = support::connect_with_deadline(&broker_addr, Duration::from_secs(30)).await?;
    let broker_client = Broker::new(client);
    let etcd_client = etcd_client::Client::connect([endpoint.as_str()], None)
        .await
        .context("connecting to etcd")?;
    let pids = (etcd.pid().context("etcd has no pid")?, broker.0.id());

    let nodes = (0..args.nodes).map(|i| (format!("/bosun/nodes/_/node-{i:04}"), node_bytes(i)));
    put_all(&etcd_client, nodes, args.in_flight).await?;
    // The broker serves lists from its watch cache: start the scheduler once it has them all.
    let until = Instant::now() + Duration::from_secs(60);
    while broker_client
        .list(Kind::Node, &Selector::all())
        .await?
        .items
        .len()
        < args.nodes
    {
        if Instant::now() > until {
            bail!(
                "the broker did not see the {} nodes within a minute",
                args.nodes
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scheduler = support::ChildGuard(
        std::process::Command::new(support::sibling_binary("bosun-scheduler")?)
            .args([
                "--server",
                &broker_addr,
                "--workers",
                &args.workers.to_string(),
            ])
            // No leases here: keep the nodes from going stale during the runs.
            .args(["--node-monitor-grace-period", "1h"])
            .env(
                "RUST_LOG",
                std::env::var("BOSUN_BENCH_SCHEDULER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(std::process::Stdio::null())
            .spawn()
            .context("spawning bosun-scheduler")?,
    );
    let scheduler_pid = scheduler.0.id();

    println!(
        "scheduler throughput: {} nodes, {} pods per run, {} runs, {} workers, machine: {}",
        args.nodes,
        args.pods,
        args.runs,
        args.workers,
        support::machine()
    );
    println!();
    let mut results = Vec::new();
    for run in 0..args.runs {
        let ns = format!("sched-{run}");
        let r = one_run(
            &args,
            &broker_client,
            &etcd_client,
            &ns,
            (pids.0, pids.1, scheduler_pid),
        )
        .await
        .with_context(|| format!("run {run}"))?;
        results.push(r);
    }
    println!(
        "| nodes | pods/run | binds/s median (min–max) | first write → last bind median | scheduler CPU ms / 1k binds | broker CPU ms / 1k binds | etcd CPU ms / 1k binds |"
    );
    println!("|---|---|---|---|---|---|---|");
    let pick =
        |f: fn(&RunResult) -> f64| median_min_max(&results.iter().map(f).collect::<Vec<_>>());
    let (med, min, max) = pick(|r| r.binds_per_sec);
    let (e2e, _, _) = pick(|r| r.end_to_end.as_secs_f64());
    let (s_cpu, _, _) = pick(|r| r.scheduler_cpu_ms_per_1k);
    let (b_cpu, _, _) = pick(|r| r.broker_cpu_ms_per_1k);
    let (e_cpu, _, _) = pick(|r| r.etcd_cpu_ms_per_1k);
    println!(
        "| {} | {} | {med:.0} ({min:.0}–{max:.0}) | {e2e:.2} s | {s_cpu:.0} | {b_cpu:.0} | {e_cpu:.0} |",
        args.nodes, args.pods
    );
    drop(scheduler);
    drop(broker);
    drop(etcd);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

async fn one_run(
    args: &Args,
    broker: &Broker,
    etcd: &etcd_client::Client,
    ns: &str,
    (etcd_pid, broker_pid, scheduler_pid): (u32, u32, u32),
) -> anyhow::Result<RunResult> {
    let selector = Selector::namespace(ns);
    let listed = broker.list(Kind::Pod, &selector).await?;
    let mut watch = broker.watch(Kind::Pod, &selector, listed.revision).await?;
    let cpu = |pid| support::cpu_time(pid).unwrap_or_default();
    let cpu_before = (cpu(scheduler_pid), cpu(broker_pid), cpu(etcd_pid));

    let started = Instant::now();
    let writer = {
        let (etcd, ns, n, in_flight) = (etcd.clone(), ns.to_string(), args.pods, args.in_flight);
        tokio::spawn(async move {
            let pods = (0..n).map(|i| (format!("/bosun/pods/{ns}/p-{i:06}"), pod_bytes(&ns, i)));
            put_all(&etcd, pods, in_flight).await
        })
    };
    let mut bound: HashSet<String> = HashSet::with_capacity(args.pods);
    let mut first: Option<Instant> = None;
    let mut last = started;
    let deadline = Duration::from_secs(300);
    while bound.len() < args.pods {
        let event = tokio::time::timeout(deadline, watch.next())
            .await
            .context("no watch event for 5 minutes")??;
        let obj = match event {
            Some(WatchEvent::Added(o) | WatchEvent::Modified(o)) => o,
            Some(_) => continue,
            None => bail!("the broker ended the watch"),
        };
        let on_node = obj
            .as_pod()
            .and_then(|p| p.spec.as_ref())
            .is_some_and(|s| !s.node_name.is_empty());
        if on_node && bound.insert(obj.name().to_string()) {
            let now = Instant::now();
            first.get_or_insert(now);
            last = now;
        }
    }
    writer.await??;
    let first = first.unwrap_or(started);
    let span = last.duration_since(first).as_secs_f64().max(1e-6);
    let per_1k = |before: Duration, after: Duration| {
        after.saturating_sub(before).as_secs_f64() * 1000.0 * 1000.0 / args.pods as f64
    };
    Ok(RunResult {
        binds_per_sec: (args.pods.saturating_sub(1)) as f64 / span,
        end_to_end: last.duration_since(started),
        scheduler_cpu_ms_per_1k: per_1k(cpu_before.0, cpu(scheduler_pid)),
        broker_cpu_ms_per_1k: per_1k(cpu_before.1, cpu(broker_pid)),
        etcd_cpu_ms_per_1k: per_1k(cpu_before.2, cpu(etcd_pid)),
    })
}
