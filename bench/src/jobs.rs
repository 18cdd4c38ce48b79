//! Job throughput: how many Job pod lifecycles per second the whole plane carries (created
//! by the Job controller → bound by the scheduler → Running → Succeeded on a sim node →
//! counted by the controller and released), against the etcd-bound limit measured in the
//! same run, and the Job controller's memory per cached pod.
//!
//! Each run starts a fresh plane, all real processes: etcd, `bosun-broker`,
//! `bosun-scheduler`, `bosun-gc`, one `bosun-node-agent --runtime sim --sim-nodes N` and
//! `bosun-job-controller`. Then:
//!
//! 1. **etcd-bound limit**: raw puts of pod-sized values straight into etcd (64 in flight,
//!    outside bosun's keys) → etcd writes/s on this machine, right now;
//! 2. the controller's RSS once its caches are loaded (its Pod informer listed, seen on its
//!    metrics endpoint);
//! 3. one NonIndexed Job of `--pods` completions at `--parallelism`, its pods running for
//!    `--sim-duration`; lifecycles/s = pods ÷ (Job created → Complete seen through a watch);
//! 4. etcd writes per pod lifecycle = keys written under `/bosun/` during the Job (counted
//!    by a direct etcd watch) ÷ pods; the limit = writes/s ÷ writes per pod; ratio =
//!    achieved ÷ limit. (The etcd revision delta ÷ pods is reported too, but it is not the
//!    write count: the broker sends writes that wait together as one txn, one revision.)
//! 5. the controller's RSS at the end, every pod still in its cache (nothing is deleted):
//!    (end − start) ÷ pods = bytes per cached pod; CPU of every process from /proc.

use std::collections::BTreeMap;
use std::path::Path;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bosun_api::v1::{self, Kind, Object};
use bosun_runtime::client::{Broker, Selector, WatchEvent};
use futures::StreamExt;
use prost::Message;

use crate::stats::median_min_max;
use crate::support::{self, ChildGuard, load_average, rss_kb, scrape};

/// PERF.md's goals.
const GOAL_RATE: f64 = 1000.0;
const GOAL_RATIO: f64 = 0.5;
const GOAL_RSS_BYTES_PER_POD: f64 = 2048.0;
/// The processes whose CPU is reported, in this order.
const PROCESSES: [&str; 6] = [
    "etcd",
    "broker",
    "scheduler",
    "node agent",
    "job controller",
    "gc",
];

/// Flags of `bosun-bench jobs`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Completions of the Job (pod lifecycles per run).
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Sim nodes (all in one `bosun-node-agent` process).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// The Job's parallelism.
    #[arg(long, default_value_t = 500)]
    parallelism: usize,
    /// How long each pod "runs" (its `bosun.dev/sim-duration`).
    #[arg(long, default_value = "0s")]
    sim_duration: String,
    /// Runs (median, min and max are reported); each on a fresh plane.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Raw etcd puts per run for the etcd-bound limit.
    #[arg(long, default_value_t = 20_000)]
    raw_writes: usize,
    /// Raw puts in flight.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// A tiny run proving the benchmark still works: 5 nodes, 200 pods, parallelism 50, 1 run.
    #[arg(long)]
    smoke: bool,
}

/// The figures of one run.
struct RunResult {
    /// Pod lifecycles per second (pods ÷ create → Complete).
    rate: f64,
    create_to_complete: Duration,
    /// Raw etcd puts per second (64 in flight).
    etcd_writes_per_sec: f64,
    /// Keys written (put or deleted) in etcd per pod lifecycle, counted by a direct watch.
    writes_per_pod: f64,
    /// The same by resource (`pods`, `events`, `jobs`...).
    writes_by_resource: Vec<(String, f64)>,
    /// etcd revisions per pod lifecycle (fewer than writes: the broker batches writes into
    /// one txn).
    revisions_per_pod: f64,
    /// Broker calls per pod lifecycle, by method (every client of the plane).
    calls_per_pod: Vec<(String, f64)>,
    /// The etcd-bound limit, pods/s.
    limit: f64,
    ratio: f64,
    /// The Job controller's RSS growth per cached pod, bytes.
    rss_per_pod: f64,
    rss_start_kb: u64,
    rss_end_kb: u64,
    /// One finished pod as stored in etcd, bytes.
    stored_pod_bytes: usize,
    /// CPU seconds per 1,000 pods, per process ([`PROCESSES`]).
    cpu_per_1k: [f64; 6],
    load_before: String,
}

/// The plane of one run; every process is killed on drop.
struct Plane {
    broker: Broker,
    etcd: etcd_client::Client,
    /// In [`PROCESSES`] order.
    pids: [u32; 6],
    controller_metrics: std::net::SocketAddr,
    broker_metrics: std::net::SocketAddr,
    _children: Vec<ChildGuard>,
}

/// The pod template of the Job: one container, run for `sim_duration` by the sim runtime.
fn template(sim_duration: &str) -> v1::PodTemplateSpec {
    v1::PodTemplateSpec {
        metadata: Some(v1::ObjectMeta {
            labels: [("app".to_string(), "bench".to_string())].into(),
            annotations: [("bosun.dev/sim-duration".to_string(), sim_duration.into())].into(),
            ..Default::default()
        }),
        spec: Some(v1::PodSpec {
            containers: vec![v1::Container {
                name: "main".into(),
                image: "busybox".into(),
                command: vec!["true".into()],
                ..Default::default()
            }],
            restart_policy: "Never".into(),
            ..Default::default()
        }),
    }
}

fn job(ns: &str, args: &Args) -> Object {
    v1::Job {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        metadata: Some(v1::ObjectMeta {
            name: "bench".into(),
            namespace: ns.into(),
            ..Default::default()
        }),
        spec: Some(v1::JobSpec {
            completions: Some(args.pods as i32),
            parallelism: Some(args.parallelism as i32),
            completion_mode: "NonIndexed".into(),
            template: Some(template(&args.sim_duration)),
            ..Default::default()
        }),
        status: None,
    }
    .into()
}

/// A value the size of a stored pod of this Job (with the labels, ownerReference and
/// finalizer the controller adds, and a status), for the raw etcd writes.
fn pod_sized_value(sim_duration: &str) -> Vec<u8> {
    let t = template(sim_duration);
    let mut meta = t.metadata.unwrap_or_default();
    meta.name = "bench-x7k2p".into();
    meta.namespace = "jobs-0".into();
    meta.uid = "00000000-0000-4000-8000-000000000000".into();
    meta.creation_timestamp = "2026-01-01T00:00:00Z".into();
    meta.finalizers = vec!["batch.kubernetes.io/job-tracking".into()];
    for (k, v) in [
        ("job-name", "bench"),
        ("batch.kubernetes.io/job-name", "bench"),
        ("controller-uid", "00000000-0000-4000-9000-000000000000"),
        (
            "batch.kubernetes.io/controller-uid",
            "00000000-0000-4000-9000-000000000000",
        ),
    ] {
        meta.labels.insert(k.into(), v.into());
    }
    meta.owner_references = vec![v1::OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: "bench".into(),
        uid: "00000000-0000-4000-9000-000000000000".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }];
    let mut spec = t.spec.unwrap_or_default();
    spec.node_name = "sim-0".into();
    let pod = v1::Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: Some(meta),
        spec: Some(Box::new(spec)),
        status: Some(v1::PodStatus {
            phase: "Running".into(),
            ..Default::default()
        }),
    };
    let mut obj = Object::from(pod);
    bosun_api::defaults::apply_defaults(&mut obj);
    obj.encode_to_vec()
}

/// Raw etcd puts with `in_flight` outstanding; returns puts per second.
async fn etcd_writes_per_sec(
    etcd: &etcd_client::Client,
    n: usize,
    in_flight: usize,
    value: &[u8],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let results: Vec<Result<_, etcd_client::Error>> = futures::stream::iter(0..n)
        .map(|i| {
            let mut kv = etcd.kv_client();
            let value = value.to_vec();
            async move { kv.put(format!("/bench-raw/{i:08}"), value, None).await }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    for r in results {
        r.context("raw etcd put")?;
    }
    Ok(n as f64 / secs)
}

/// etcd's current revision.
async fn etcd_revision(etcd: &etcd_client::Client) -> anyhow::Result<i64> {
    let resp = etcd
        .kv_client()
        .get("/bench-revision", None)
        .await
        .context("reading etcd's revision")?;
    Ok(resp.header().map_or(0, |h| h.revision()))
}

/// Waits until the controller's Pod informer has loaded its first list.
async fn controller_synced(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(body) = scrape(addr).await {
            let listed = body
                .lines()
                .filter(|l| l.starts_with("bosun_informer_relists_total{kind=\"Pod\"}"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .any(|v| v >= 1.0);
            if listed {
                return Ok(());
            }
        }
        if Instant::now() > until {
            bail!("the Job controller's pod cache was not loaded within a minute");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counts every key change under `/bosun/` after `from` (a direct etcd watch), by resource
/// (`pods`, `events`, ...), until `stop` says which revision is the last one wanted.
fn count_writes(
    etcd: &etcd_client::Client,
    from: i64,
    mut stop: tokio::sync::watch::Receiver<i64>,
) -> tokio::task::JoinHandle<anyhow::Result<BTreeMap<String, usize>>> {
    let etcd = etcd.clone();
    tokio::spawn(async move {
        let opts = etcd_client::WatchOptions::new()
            .with_prefix()
            .with_start_revision(from + 1);
        let mut stream = etcd.clone().watch("/bosun/", Some(opts)).await?;
        let mut writes: BTreeMap<String, usize> = BTreeMap::new();
        let mut seen_up_to = from;
        loop {
            let last = *stop.borrow();
            if seen_up_to >= last {
                return Ok(writes);
            }
            let resp = tokio::select! {
                r = stream.message() => r?,
                changed = stop.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => bail!("the run ended before the writes were counted"),
                },
            };
            let Some(resp) = resp else {
                bail!("the etcd watch ended")
            };
            // One response never splits a revision: count it whole or not at all.
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                seen_up_to = seen_up_to.max(kv.mod_revision());
                if kv.mod_revision() > *stop.borrow() {
                    continue;
                }
                let resource = kv
                    .key_str()
                    .ok()
                    .and_then(|k| k.split('/').nth(2))
                    .unwrap_or("?");
                *writes.entry(resource.to_string()).or_default() += 1;
            }
        }
    })
}

async fn start_plane(
    args: &Args,
    dir: &Path,
    etcd_endpoint: &str,
    etcd_pid: u32,
) -> anyhow::Result<Plane> {
    // The broker as users run it: its default watch window (a window holding every event of
    // a run would cost ~10 KB of broker memory per pod, and memory first touched costs CPU).
    let support::MeteredBroker {
        child: broker,
        url: addr,
        client: broker_client,
        metrics: broker_metrics,
    } = support::spawn_metered_broker(etcd_endpoint).await?;
    let etcd = etcd_client::Client::connect([etcd_endpoint], None)
        .await
        .context("connecting to etcd")?;
    let agent = support::spawn_sim_agent(&addr, args.nodes, &dir.join("node"))?;
    let scheduler = support::spawn(
        "bosun-scheduler",
        "BOSUN_BENCH_SCHEDULER_LOG",
        &["--server", &addr, "--workers", "32"],
    )?;
    let gc = support::spawn("bosun-gc", "BOSUN_BENCH_GC_LOG", &["--server", &addr])?;
    let metrics = support::free_addr()?;
    let controller = support::spawn(
        "bosun-job-controller",
        "BOSUN_BENCH_JOB_LOG",
        &["--server", &addr, "--metrics-listen", &metrics.to_string()],
    )?;

    // Every sim node registered and Ready before the Job.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = broker_client.list(Kind::Node, &Selector::all()).await?;
        let ready = nodes
            .items
            .iter()
            .filter(|n| support::node_ready(n))
            .count();
        if ready >= args.nodes {
            break;
        }
        if Instant::now() > until {
            bail!("{ready} of {} sim nodes Ready after a minute", args.nodes);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    controller_synced(metrics).await?;
    Ok(Plane {
        broker: broker_client,
        etcd,
        pids: [
            etcd_pid,
            broker.0.id(),
            scheduler.0.id(),
            agent.0.id(),
            controller.0.id(),
            gc.0.id(),
        ],
        controller_metrics: metrics,
        broker_metrics,
        _children: vec![controller, gc, scheduler, agent, broker],
    })
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.smoke {
        (
            args.nodes,
            args.pods,
            args.parallelism,
            args.runs,
            args.raw_writes,
        ) = (5, 200, 50, 1, 2000);
    }
    println!(
        "Job pod lifecycles/s: one NonIndexed Job of {} completions, parallelism {}, sim-duration {}, {} sim nodes, {} runs (fresh plane each), {} raw etcd puts ({} in flight) for the limit, machine: {}, load average at start: {}",
        args.pods,
        args.parallelism,
        args.sim_duration,
        args.nodes,
        args.runs,
        args.raw_writes,
        args.in_flight,
        support::machine(),
        load_average()
    );
    println!();
    let mut results = Vec::new();
    for run in 0..args.runs {
        let r = one_run(&args, run)
            .await
            .with_context(|| format!("run {run}"))?;
        eprintln!(
            "run {run}: {:.0} pods/s ({:.2} s), etcd {:.0} writes/s, {:.2} writes/pod in {:.2} revisions/pod, limit {:.0}/s, ratio {:.2}, controller RSS {} → {} KiB ({:.0} B/pod; a stored pod is {} B), load before {}",
            r.rate,
            r.create_to_complete.as_secs_f64(),
            r.etcd_writes_per_sec,
            r.writes_per_pod,
            r.revisions_per_pod,
            r.limit,
            r.ratio,
            r.rss_start_kb,
            r.rss_end_kb,
            r.rss_per_pod,
            r.stored_pod_bytes,
            r.load_before
        );
        results.push(r);
    }
    report(&args, &results);
    println!("load average at the end: {}", load_average());
    Ok(())
}

/// Prints the tables for bench/RESULTS.md.
fn report(args: &Args, results: &[RunResult]) {
    let pick =
        |f: &dyn Fn(&RunResult) -> f64| median_min_max(&results.iter().map(f).collect::<Vec<_>>());
    let (rate, rate_min, rate_max) = pick(&|r| r.rate);
    let (secs, _, _) = pick(&|r| r.create_to_complete.as_secs_f64());
    let (writes, writes_min, writes_max) = pick(&|r| r.etcd_writes_per_sec);
    let (per_pod, _, _) = pick(&|r| r.writes_per_pod);
    let (revs_per_pod, _, _) = pick(&|r| r.revisions_per_pod);
    let (limit, _, _) = pick(&|r| r.limit);
    let (ratio, ratio_min, ratio_max) = pick(&|r| r.ratio);
    let (rss, rss_min, rss_max) = pick(&|r| r.rss_per_pod);
    println!(
        "| pods/run | parallelism | sim nodes | lifecycles/s median (min–max) | create → Complete median | etcd writes/s, 64 in flight, median (min–max) | etcd writes / pod (revisions / pod) | etcd-bound limit pods/s | ratio median (min–max) | controller RSS B / cached pod median (min–max) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {rate:.0} ({rate_min:.0}–{rate_max:.0}) | {secs:.2} s | {writes:.0} ({writes_min:.0}–{writes_max:.0}) | {per_pod:.2} ({revs_per_pod:.2}) | {limit:.0} | {ratio:.2} ({ratio_min:.2}–{ratio_max:.2}) | {rss:.0} ({rss_min:.0}–{rss_max:.0}) |",
        args.pods, args.parallelism, args.nodes
    );
    println!();
    let verdict = |met: bool| if met { "met" } else { "missed" };
    println!("| goal (PERF.md) | measured (median) | verdict |");
    println!("|---|---|---|");
    println!(
        "| ≥ {GOAL_RATE:.0} Job pod lifecycles/s | {rate:.0}/s | {} |",
        verdict(rate >= GOAL_RATE)
    );
    println!(
        "| ≥ {GOAL_RATIO} × etcd-bound limit | {ratio:.2} × {limit:.0}/s | {} |",
        verdict(ratio >= GOAL_RATIO)
    );
    println!(
        "| ≤ 2 KB memory per cached pod (Job controller) | {rss:.0} B | {} |",
        verdict(rss <= GOAL_RSS_BYTES_PER_POD)
    );
    println!();
    println!("CPU seconds per 1,000 pod lifecycles, median:");
    println!();
    println!("| {} | total |", PROCESSES.join(" | "));
    println!("|{}---|", "---|".repeat(PROCESSES.len()));
    let cpu: Vec<f64> = (0..PROCESSES.len())
        .map(|i| pick(&|r| r.cpu_per_1k[i]).0)
        .collect();
    let cells: Vec<String> = cpu.iter().map(|c| format!("{c:.2}")).collect();
    println!("| {} | {:.2} |", cells.join(" | "), cpu.iter().sum::<f64>());
    println!();
    let per_pod = |label: &str, get: fn(&RunResult) -> &Vec<(String, f64)>| {
        let names: std::collections::BTreeSet<String> = results
            .iter()
            .flat_map(|r| get(r).iter().map(|(m, _)| m.clone()))
            .collect();
        let cells: Vec<String> = names
            .into_iter()
            .map(|m| {
                let values: Vec<f64> = results
                    .iter()
                    .map(|r| {
                        get(r)
                            .iter()
                            .find(|(n, _)| *n == m)
                            .map_or(0.0, |(_, v)| *v)
                    })
                    .collect();
                format!("{m} {:.2}", median_min_max(&values).0)
            })
            .collect();
        println!("{label}, median: {}", cells.join(", "));
    };
    per_pod("etcd writes per pod lifecycle, by resource", |r| {
        &r.writes_by_resource
    });
    println!();
    per_pod("broker calls per pod lifecycle (every client)", |r| {
        &r.calls_per_pod
    });
    println!();
}

/// One run on a fresh plane.
async fn one_run(args: &Args, run: usize) -> anyhow::Result<RunResult> {
    let (etcd, dir) = support::start_etcd(&format!("jobs-{run}")).await?;
    let etcd_pid = etcd.pid().context("etcd has no pid")?;
    let result = async {
        let plane = start_plane(args, &dir, &etcd.endpoint(), etcd_pid).await?;
        measure(args, &plane, run).await
    }
    .await;
    etcd.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(args: &Args, plane: &Plane, run: usize) -> anyhow::Result<RunResult> {
    let load_before = load_average();
    let value = pod_sized_value(&args.sim_duration);
    let writes_per_sec =
        etcd_writes_per_sec(&plane.etcd, args.raw_writes, args.in_flight, &value).await?;

    let ns = format!("jobs-{run}");
    let broker = &plane.broker;
    let selector = Selector::namespace(&ns);
    let listed = broker.list(Kind::Job, &selector).await?;
    let mut watch = broker.watch(Kind::Job, &selector, listed.revision).await?;
    // Settled: the raw writes are done and the controller's caches are loaded.
    controller_synced(plane.controller_metrics).await?;
    let controller_pid = plane.pids[4];
    let rss_start_kb = rss_kb(controller_pid)?;
    let cpu = |pid| support::cpu_time(pid).unwrap_or_default();
    let cpu_before: Vec<Duration> = plane.pids.iter().map(|&p| cpu(p)).collect();
    let rev_before = etcd_revision(&plane.etcd).await?;
    let calls_before = support::broker_calls(plane.broker_metrics).await?;
    let (last_tx, last_rx) = tokio::sync::watch::channel(i64::MAX);
    let writes = count_writes(&plane.etcd, rev_before, last_rx);

    let started = Instant::now();
    broker
        .create(job(&ns, args))
        .await
        .context("creating the Job")?;
    let stall = Duration::from_secs(120);
    loop {
        let event = tokio::time::timeout(stall, watch.next())
            .await
            .with_context(|| format!("the Job did not change for {stall:?}"))??;
        let obj = match event {
            Some(WatchEvent::Added(o) | WatchEvent::Modified(o)) => o,
            Some(WatchEvent::Deleted(_)) => bail!("the Job was deleted"),
            Some(WatchEvent::Bookmark(_)) => continue,
            None => bail!("the broker ended the Job watch"),
        };
        let status = obj
            .as_job()
            .and_then(|j| j.status.clone())
            .unwrap_or_default();
        let condition = |ty: &str| {
            status
                .conditions
                .iter()
                .any(|c| c.r#type == ty && c.status == "True")
        };
        if condition("Failed") {
            bail!("the Job failed: {:?}", status.conditions);
        }
        if condition("Complete") {
            if status.succeeded as usize != args.pods {
                bail!(
                    "the Job completed with succeeded = {}, not {}",
                    status.succeeded,
                    args.pods
                );
            }
            break;
        }
    }
    let elapsed = started.elapsed();
    let rss_end_kb = rss_kb(controller_pid)?;
    // For scale: the size of one finished pod as stored in etcd.
    let sample = plane
        .etcd
        .kv_client()
        .get(
            format!("/bosun/pods/{ns}/"),
            Some(etcd_client::GetOptions::new().with_prefix().with_limit(1)),
        )
        .await
        .context("reading a stored pod")?;
    let stored_pod_bytes = sample.kvs().first().map_or(0, |kv| kv.value().len());
    let cpu_after: Vec<Duration> = plane.pids.iter().map(|&p| cpu(p)).collect();
    let rev_after = etcd_revision(&plane.etcd).await?;
    let calls_after = support::broker_calls(plane.broker_metrics).await?;
    last_tx.send_replace(rev_after);
    let writes = tokio::time::timeout(Duration::from_secs(60), writes)
        .await
        .context("the direct etcd watch did not catch up within a minute")???;

    let pods = args.pods as f64;
    let rate = pods / elapsed.as_secs_f64().max(1e-9);
    let revisions_per_pod = (rev_after - rev_before) as f64 / pods;
    let writes_per_pod = writes.values().sum::<usize>() as f64 / pods;
    let writes_by_resource = writes
        .into_iter()
        .map(|(r, n)| (r, n as f64 / pods))
        .collect();
    let limit = writes_per_sec / writes_per_pod.max(1e-9);
    let calls_per_pod = calls_after
        .iter()
        .filter(|(m, _)| *m != "Watch")
        .map(|(m, after)| {
            let before = calls_before.get(m).copied().unwrap_or(0.0);
            (m.clone(), (after - before) / pods)
        })
        .filter(|(_, per_pod)| *per_pod >= 0.005)
        .collect();
    let mut cpu_per_1k = [0.0; 6];
    for (i, slot) in cpu_per_1k.iter_mut().enumerate() {
        *slot = cpu_after[i].saturating_sub(cpu_before[i]).as_secs_f64() * 1000.0 / pods;
    }
    Ok(RunResult {
        rate,
        create_to_complete: elapsed,
        etcd_writes_per_sec: writes_per_sec,
        writes_per_pod,
        writes_by_resource,
        revisions_per_pod,
        calls_per_pod,
        limit,
        ratio: rate / limit,
        rss_per_pod: (rss_end_kb as f64 - rss_start_kb as f64) * 1024.0 / pods,
        rss_start_kb,
        rss_end_kb,
        stored_pod_bytes,
        cpu_per_1k,
        load_before,
    })
}
