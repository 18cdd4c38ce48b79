//! Pod startup latency: from the create call to the pod seen `Running` through a watch, at a
//! steady churn of pods created, run, finished and deleted.
//!
//! etcd, the real `bosun-broker`, `bosun-scheduler`, `bosun-gc` and one `bosun-node-agent
//! --runtime sim --sim-nodes N` run as processes. Each run creates pods through the broker at
//! a steady rate in a fresh namespace; every pod carries `bosun.dev/sim-duration`, so the sim
//! nodes "run" it for that long and mark it Succeeded; the benchmark then deletes it (with
//! the default grace period: the node agent finishes the delete), as a Job's TTL would. A
//! run ends once every pod it created was seen Running and then gone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bosun_api::v1::{self, Kind, Object};
use bosun_runtime::client::{Broker, DeleteOptions, Selector, WatchEvent};

use crate::stats::{median_min_max, quantile};
use crate::support::{self, ChildGuard};

/// The goal of issue 3: p99 startup latency at 100 pods/s churn.
const GOAL_P99_MS: f64 = 100.0;

/// Flags of `bosun-bench startup`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Sim nodes (all in one `bosun-node-agent` process).
    #[arg(long, default_value_t = 100)]
    nodes: u32,
    /// Pods created per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of creating per run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// How long each pod "runs" (its `bosun.dev/sim-duration`).
    #[arg(long, default_value = "1s")]
    sim_duration: String,
    /// Runs (median, min and max are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A tiny run proving the benchmark still works: 5 nodes, 20 pods/s for 2 s, 1 run.
    #[arg(long)]
    smoke: bool,
}

/// The figures of one run.
struct RunResult {
    pods: usize,
    /// Pods created per second, as achieved.
    create_rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// p99 of create → bound (spec.nodeName seen) and of bound → Running.
    p99_bind: Duration,
    p99_run: Duration,
    /// CPU used during the run, in cores (scheduler, node agent, broker, etcd).
    cpu_cores: [f64; 4],
}

/// The processes of the plane, killed on drop (etcd by its own guard).
struct Plane {
    broker: Broker,
    /// scheduler, node agent, broker, etcd.
    pids: [u32; 4],
    _children: Vec<ChildGuard>,
}

/// A pod the sim runtime runs for `sim_duration`.
fn pod(ns: &str, name: &str, sim_duration: &str) -> Object {
    let pod = v1::Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: ns.into(),
            annotations: [("bosun.dev/sim-duration".to_string(), sim_duration.into())].into(),
            ..Default::default()
        }),
        spec: Some(Box::new(v1::PodSpec {
            containers: vec![v1::Container {
                name: "main".into(),
                image: "busybox".into(),
                command: vec!["true".into()],
                ..Default::default()
            }],
            restart_policy: "Never".into(),
            ..Default::default()
        })),
        status: None,
    };
    Object::from(pod)
}

async fn start_plane(args: &Args, dir: &std::path::Path, etcd: &str) -> anyhow::Result<Plane> {
    let (broker, addr) = support::spawn_broker(etcd, &["--window-events", "200000"])?;
    let client = support::connect_with_deadline(&addr, Duration::from_secs(30)).await?;
    let broker_client = Broker::new(client);
    let agent = support::spawn_sim_agent(&addr, args.nodes as usize, &dir.join("node"))?;
    let scheduler = support::spawn(
        "bosun-scheduler",
        "BOSUN_BENCH_SCHEDULER_LOG",
        &["--server", &addr],
    )?;
    let gc = support::spawn("bosun-gc", "BOSUN_BENCH_GC_LOG", &["--server", &addr])?;

    // Every sim node registered and Ready before the first pod.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = broker_client.list(Kind::Node, &Selector::all()).await?;
        let ready = nodes
            .items
            .iter()
            .filter(|n| support::node_ready(n))
            .count();
        if ready >= args.nodes as usize {
            break;
        }
        if Instant::now() > until {
            bail!("{ready} of {} sim nodes Ready after a minute", args.nodes);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Plane {
        broker: broker_client,
        pids: [scheduler.0.id(), agent.0.id(), broker.0.id(), 0],
        _children: vec![gc, scheduler, agent, broker],
    })
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.smoke {
        (args.nodes, args.rate, args.seconds, args.runs) = (5, 20.0, 2, 1);
    }
    let (etcd, dir) = support::start_etcd("startup").await?;
    let mut plane = start_plane(&args, &dir, &etcd.endpoint()).await?;
    plane.pids[3] = etcd.pid().context("etcd has no pid")?;

    println!(
        "pod startup latency (create → Running seen through a watch): {} sim nodes, {:.0} pods/s for {} s per run, sim-duration {}, {} runs, machine: {}, load average at start: {}",
        args.nodes,
        args.rate,
        args.seconds,
        args.sim_duration,
        args.runs,
        support::machine(),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_default()
    );
    println!();
    let mut results = Vec::new();
    for run in 0..args.runs {
        let ns = format!("startup-{run}");
        let r = one_run(&args, &plane, &ns)
            .await
            .with_context(|| format!("run {run}"))?;
        results.push(r);
    }
    let pick =
        |f: &dyn Fn(&RunResult) -> f64| median_min_max(&results.iter().map(f).collect::<Vec<_>>());
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (pods, _, _) = pick(&|r| r.pods as f64);
    let (rate, _, _) = pick(&|r| r.create_rate);
    let (p50, p50_min, p50_max) = pick(&|r| ms(r.p50));
    let (p99, p99_min, p99_max) = pick(&|r| ms(r.p99));
    let (max, _, _) = pick(&|r| ms(r.max));
    let (p99_bind, _, _) = pick(&|r| ms(r.p99_bind));
    let (p99_run, _, _) = pick(&|r| ms(r.p99_run));
    let cores: Vec<f64> = (0..4).map(|i| pick(&|r| r.cpu_cores[i]).0).collect();
    let verdict = if p99 <= GOAL_P99_MS { "met" } else { "missed" };
    println!(
        "| sim nodes | pods/s (achieved) | pods/run | p50 median (min–max) | p99 median (min–max) | goal p99 | max median | p99 create → bound / bound → Running | CPU cores: scheduler / node agent / broker / etcd |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.0} ({rate:.0}) | {pods:.0} | {p50:.1} ms ({p50_min:.1}–{p50_max:.1}) | {p99:.1} ms ({p99_min:.1}–{p99_max:.1}) | ≤ {GOAL_P99_MS:.0} ms: {verdict} | {max:.1} ms | {p99_bind:.1} / {p99_run:.1} ms | {:.2} / {:.2} / {:.2} / {:.2} |",
        args.nodes, args.rate, cores[0], cores[1], cores[2], cores[3]
    );
    drop(plane);
    etcd.stop().await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Creates pods at `args.rate` for `args.seconds` in `ns`, deletes each once it finished, and
/// measures create → Running.
async fn one_run(args: &Args, plane: &Plane, ns: &str) -> anyhow::Result<RunResult> {
    let broker = &plane.broker;
    let selector = Selector::namespace(ns);
    let listed = broker.list(Kind::Pod, &selector).await?;
    let mut watch = broker.watch(Kind::Pod, &selector, listed.revision).await?;
    let cpu = |pid| support::cpu_time(pid).unwrap_or_default();
    let cpu_before: Vec<Duration> = plane.pids.iter().map(|&p| cpu(p)).collect();
    let started = Instant::now();

    // Create time of every pod, written just before its create call.
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = (args.rate * args.seconds as f64).round().max(1.0) as usize;
    let creator = {
        let (broker, created, ns) = (broker.clone(), created.clone(), ns.to_string());
        let (period, sim) = (
            Duration::from_secs_f64(1.0 / args.rate),
            args.sim_duration.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut calls = Vec::with_capacity(total);
            for i in 0..total {
                tick.tick().await;
                let name = format!("p-{i:06}");
                let obj = pod(&ns, &name, &sim);
                if let Ok(mut m) = created.lock() {
                    m.insert(name, Instant::now());
                }
                let broker = broker.clone();
                // Each create on its own task: a slow call does not hold back the rate.
                calls.push(tokio::spawn(async move { broker.create(obj).await }));
            }
            let done = Instant::now();
            for call in calls {
                call.await?.context("creating a pod")?;
            }
            anyhow::Ok(done)
        })
    };

    let mut latencies = Vec::with_capacity(total);
    let mut running: HashSet<String> = HashSet::with_capacity(total);
    // When each pod was first seen bound, and the two legs of its startup.
    let mut bound: HashMap<String, Instant> = HashMap::with_capacity(total);
    let (mut to_bind, mut to_run) = (Vec::with_capacity(total), Vec::with_capacity(total));
    let mut deleting: HashSet<String> = HashSet::with_capacity(total);
    let mut gone = 0usize;
    let mut deletes = tokio::task::JoinSet::new();
    let stall = Duration::from_secs(60);
    while gone < total {
        let event = tokio::time::timeout(stall, watch.next())
            .await
            .with_context(|| {
                format!(
                    "no pod event for {stall:?}: {} of {total} pods seen Running, {gone} gone",
                    running.len()
                )
            })??;
        let (obj, deleted) = match event {
            Some(WatchEvent::Added(o) | WatchEvent::Modified(o)) => (o, false),
            Some(WatchEvent::Deleted(o)) => (o, true),
            Some(WatchEvent::Bookmark(_)) => continue,
            None => bail!("the broker ended the watch"),
        };
        let name = obj.name().to_string();
        if deleted {
            gone += 1;
            continue;
        }
        let phase = obj
            .as_pod()
            .and_then(|p| p.status.as_ref())
            .map(|s| s.phase.as_str())
            .unwrap_or_default();
        let on_node = obj
            .as_pod()
            .and_then(|p| p.spec.as_ref())
            .is_some_and(|s| !s.node_name.is_empty());
        let at = created.lock().ok().and_then(|m| m.get(&name).copied());
        if on_node && !bound.contains_key(&name) {
            let now = Instant::now();
            bound.insert(name.clone(), now);
            if let Some(at) = at {
                to_bind.push(now.duration_since(at));
            }
        }
        if phase == "Running" && !running.contains(&name) {
            if let Some(at) = at {
                latencies.push(at.elapsed());
            }
            if let Some(b) = bound.get(&name) {
                to_run.push(b.elapsed());
            }
            running.insert(name.clone());
        }
        if matches!(phase, "Succeeded" | "Failed") && deleting.insert(name.clone()) {
            if !running.contains(&name) {
                bail!("pod {name} finished ({phase}) without being seen Running");
            }
            let (broker, ns) = (broker.clone(), ns.to_string());
            deletes.spawn(async move {
                broker
                    .delete(Kind::Pod, &ns, &name, DeleteOptions::default())
                    .await
            });
        }
        while let Some(done) = deletes.try_join_next() {
            done?.context("deleting a finished pod")?;
        }
    }
    let created_by = creator.await??;
    while let Some(done) = deletes.join_next().await {
        done?.context("deleting a finished pod")?;
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-6);
    let cores: Vec<f64> = plane
        .pids
        .iter()
        .zip(&cpu_before)
        .map(|(&p, &before)| cpu(p).saturating_sub(before).as_secs_f64() / elapsed)
        .collect();
    latencies.sort();
    to_bind.sort();
    to_run.sort();
    Ok(RunResult {
        pods: total,
        create_rate: total as f64 / created_by.duration_since(started).as_secs_f64().max(1e-6),
        p50: quantile(&latencies, 0.5),
        p99: quantile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        p99_bind: quantile(&to_bind, 0.99),
        p99_run: quantile(&to_run, 0.99),
        cpu_cores: [cores[0], cores[1], cores[2], cores[3]],
    })
}
