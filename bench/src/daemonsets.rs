//! DaemonSet rollout on sim nodes: how long one DaemonSet takes to put a Running pod on
//! every node, how long a RollingUpdate (`maxUnavailable: 10%`) takes to replace them all,
//! whether the update ever left more than 10% of the nodes without an available pod, and
//! the DaemonSet controller's memory per node.
//!
//! Each run starts a fresh plane, all real processes: etcd, `bosun-broker`,
//! `bosun-daemonset-controller`, `bosun-scheduler`, `bosun-gc`, then one
//! `bosun-node-agent --runtime sim --sim-nodes N` (or `--agents K` of them, N ÷ K nodes
//! each). Then:
//!
//! 1. the controller's RSS with its caches loaded and no node yet (started before the
//!    agent);
//! 2. the N sim nodes registered and Ready, and their Leases created (the agent's first
//!    Lease round is not in the measured window; later rounds, every 10 s, may be);
//! 3. **create**: one DaemonSet (no node selector, one readiness-less container that "runs"
//!    for a day, `maxUnavailable: 10%`); time from the create call to the moment a broker
//!    watch shows a Running pod on every node; the run goes on until the DaemonSet's status
//!    says `numberAvailable == desiredNumberScheduled == N` (that moment is reported too);
//! 4. the controller's RSS again: (after − before) ÷ N = bytes per node (a node, its daemon
//!    pod and their share of the DaemonSet cached);
//! 5. **update**: an env var of the template changed; time from the update call until every
//!    pod carries the new `controller-revision-hash` (no pod of the old one left), one
//!    available pod per node, and the status says `updatedNumberScheduled ==
//!    numberAvailable == desiredNumberScheduled == N` for the new generation. At each pod
//!    event seen during the update, the nodes without an available pod (Running, Ready, not
//!    terminating) are counted; the maximum is reported against `ceil(10% × N)`.
//!
//! Each step fails the run (non-zero exit, with the state reached) past `--deadline`.
//! CPU of every process, the controller's reconciles and the broker's calls are reported
//! per step, to say where the time goes.
//!
//! `--smoke` (for scripts/test.sh): 20 nodes, one run; it also fails when the update broke
//! the 10% bound.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bosun_api::v1::{self, Kind, Object};
use bosun_api::vocab::daemonset::{REVISION_HASH_LABEL, ROLLING_UPDATE};
use bosun_runtime::client::{Broker, Selector, WatchEvent};
use tokio::sync::mpsc;

use crate::stats::median_min_max;
use crate::support::{self, ChildGuard, load_average, metric_sum, rss_kb, scrape};

/// The goals.
const GOAL_CREATE: Duration = Duration::from_secs(2);
const GOAL_UPDATE: Duration = Duration::from_secs(5);
/// The rollout's `maxUnavailable`, in percent of the nodes.
const MAX_UNAVAILABLE_PERCENT: usize = 10;
/// The namespace and name of the DaemonSet.
const NS: &str = "ds-bench";
const NAME: &str = "bench";
/// The env var whose value the update changes.
const REVISION_ENV: &str = "BENCH_REVISION";
/// The processes whose CPU is reported, in this order.
const PROCESSES: [&str; 6] = [
    "etcd",
    "broker",
    "scheduler",
    "node agent",
    "daemonset controller",
    "gc",
];
const CONTROLLER: usize = 4;

/// Flags of `bosun-bench daemonsets`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Sim nodes (in `--agents` `bosun-node-agent` processes).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Runs (median, min and max are reported); each on a fresh plane.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Node agent processes the sim nodes are split across (`sim0-0`.., `sim1-0`..). One
    /// is how the other benchmarks run; at 5,000 nodes one agent's connection is closed by
    /// the broker (bench/RESULTS.md).
    #[arg(long, default_value_t = 1)]
    agents: usize,
    /// The DaemonSet controller's `--workers` (unset: its default).
    #[arg(long)]
    workers: Option<usize>,
    /// How long each step (nodes Ready, create, update) may take before the run fails, in
    /// seconds (unset: 60 + 30 ms per node).
    #[arg(long)]
    deadline: Option<u64>,
    /// A tiny run proving the benchmark still works: 20 nodes, one run.
    #[arg(long)]
    smoke: bool,
}

impl Args {
    fn deadline(&self) -> Duration {
        self.deadline.map_or(
            Duration::from_secs(60) + Duration::from_millis(30) * self.nodes as u32,
            Duration::from_secs,
        )
    }
}

/// `ceil(percent% × nodes)`: Kubernetes rounds a percentage of maxUnavailable up.
fn allowed_unavailable(nodes: usize, percent: usize) -> usize {
    (nodes * percent).div_ceil(100)
}

/// The DaemonSet: every node, one container running for a day, no readiness probe.
fn daemon_set(revision: &str) -> Object {
    let labels: BTreeMap<String, String> = [("app".to_string(), "ds-bench".to_string())].into();
    let template = v1::PodTemplateSpec {
        metadata: Some(v1::ObjectMeta {
            labels: labels.clone(),
            annotations: [("bosun.dev/sim-duration".to_string(), "24h".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(v1::PodSpec {
            containers: vec![v1::Container {
                name: "main".into(),
                image: "busybox".into(),
                command: vec!["sleep".into(), "infinity".into()],
                env: vec![v1::EnvVar {
                    name: REVISION_ENV.into(),
                    value: revision.into(),
                    value_from: None,
                }],
                ..Default::default()
            }],
            restart_policy: "Always".into(),
            ..Default::default()
        }),
    };
    v1::DaemonSet {
        api_version: "apps/v1".into(),
        kind: "DaemonSet".into(),
        metadata: Some(v1::ObjectMeta {
            name: NAME.into(),
            namespace: NS.into(),
            ..Default::default()
        }),
        spec: Some(v1::DaemonSetSpec {
            selector: Some(v1::LabelSelector {
                match_labels: labels,
                match_expressions: vec![],
            }),
            template: Some(template),
            update_strategy: Some(v1::DaemonSetUpdateStrategy {
                r#type: ROLLING_UPDATE.into(),
                rolling_update: Some(v1::RollingUpdateDaemonSet {
                    max_unavailable: Some(v1::IntOrString {
                        is_string: true,
                        int_val: 0,
                        str_val: format!("{MAX_UNAVAILABLE_PERCENT}%"),
                    }),
                    max_surge: None,
                }),
            }),
            ..Default::default()
        }),
        status: None,
    }
    .into()
}

/// A daemon pod as the benchmark sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodView {
    node: String,
    hash: String,
    running: bool,
    /// Running, Ready and not terminating (minReadySeconds is 0).
    available: bool,
    terminating: bool,
}

impl PodView {
    fn of(obj: &Object) -> Option<(String, PodView)> {
        let pod = obj.as_pod()?;
        let meta = pod.metadata.as_ref()?;
        let status = pod.status.clone().unwrap_or_default();
        let running = status.phase == "Running";
        let ready = status
            .conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True");
        let terminating = !meta.deletion_timestamp.is_empty();
        Some((
            meta.name.clone(),
            PodView {
                node: pod
                    .spec
                    .as_ref()
                    .map(|s| s.node_name.clone())
                    .unwrap_or_default(),
                hash: meta
                    .labels
                    .get(REVISION_HASH_LABEL)
                    .cloned()
                    .unwrap_or_default(),
                running: running && !terminating,
                available: running && ready && !terminating,
                terminating,
            },
        ))
    }
}

/// Every daemon pod seen through the watch and not yet deleted, by name.
#[derive(Debug, Default)]
struct Pods(HashMap<String, PodView>);

impl Pods {
    fn apply(&mut self, event: &WatchEvent) {
        match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                if let Some((name, view)) = PodView::of(o) {
                    self.0.insert(name, view);
                }
            }
            WatchEvent::Deleted(o) => {
                if let Some((name, _)) = PodView::of(o) {
                    self.0.remove(&name);
                }
            }
            WatchEvent::Bookmark(_) => {}
        }
    }

    /// Distinct nodes with at least one pod for which `pick` holds.
    fn nodes_where(&self, pick: impl Fn(&PodView) -> bool) -> usize {
        self.0
            .values()
            .filter(|p| !p.node.is_empty() && pick(p))
            .map(|p| p.node.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Pods by `controller-revision-hash`.
    fn hashes(&self) -> BTreeMap<String, usize> {
        let mut by = BTreeMap::new();
        for p in self.0.values() {
            *by.entry(p.hash.clone()).or_default() += 1;
        }
        by
    }

    /// Create is done when every node shows a Running pod.
    fn all_running(&self, nodes: usize) -> bool {
        self.nodes_where(|p| p.running) >= nodes
    }

    /// The update is done when every pod left carries a hash other than `old`, and every
    /// node has an available pod.
    fn all_updated(&self, nodes: usize, old: &str) -> bool {
        self.0.values().all(|p| p.hash != old) && self.nodes_where(|p| p.available) >= nodes
    }

    /// Nodes without an available pod.
    fn unavailable_nodes(&self, nodes: usize) -> usize {
        nodes.saturating_sub(self.nodes_where(|p| p.available))
    }

    fn describe(&self, nodes: usize) -> String {
        format!(
            "{} pods seen on {} nodes; nodes with a Running pod {}, with an available pod {} (of {nodes}); pods by revision hash {:?}; terminating {}",
            self.0.len(),
            self.nodes_where(|_| true),
            self.nodes_where(|p| p.running),
            self.nodes_where(|p| p.available),
            self.hashes(),
            self.0.values().filter(|p| p.terminating).count(),
        )
    }
}

/// The DaemonSet's last seen generation and status.
#[derive(Debug, Default, Clone)]
struct DsView {
    generation: i64,
    status: v1::DaemonSetStatus,
}

impl DsView {
    fn of(obj: &Object) -> Option<DsView> {
        let ds = obj.as_daemon_set()?;
        Some(DsView {
            generation: ds.metadata.as_ref().map_or(0, |m| m.generation),
            status: ds.status.clone().unwrap_or_default(),
        })
    }

    /// The status of `generation` or later says every one of `nodes` nodes is available
    /// (and, when `updated`, runs the current template).
    fn converged(&self, nodes: usize, generation: i64, updated: bool) -> bool {
        let s = &self.status;
        let n = nodes as i32;
        s.observed_generation >= generation
            && s.desired_number_scheduled == n
            && s.number_available == n
            && (!updated || s.updated_number_scheduled == n)
    }

    fn describe(&self) -> String {
        let s = &self.status;
        format!(
            "generation {} observed {}: desired {}, current {}, ready {}, available {}, updated {}, unavailable {}, misscheduled {}",
            self.generation,
            s.observed_generation,
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_ready,
            s.number_available,
            s.updated_number_scheduled,
            s.number_unavailable,
            s.number_misscheduled
        )
    }
}

/// One event of either watch, with the moment it arrived.
enum Seen {
    Pod(WatchEvent),
    Ds(WatchEvent),
    Ended(String),
}

/// Forwards a watch's events into `tx` until it ends or the receiver goes away.
fn forward(
    mut watch: bosun_runtime::client::WatchStream,
    tx: mpsc::UnboundedSender<(Instant, Seen)>,
    wrap: fn(WatchEvent) -> Seen,
    what: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let seen = match watch.next().await {
                Ok(Some(ev)) => wrap(ev),
                Ok(None) => Seen::Ended(format!("the broker ended the {what} watch")),
                Err(e) => Seen::Ended(format!("the {what} watch failed: {e}")),
            };
            let end = matches!(seen, Seen::Ended(_));
            if tx.send((Instant::now(), seen)).is_err() || end {
                return;
            }
        }
    })
}

/// The figures of one run.
struct RunResult {
    /// Create call → a Running pod on every node (seen through the watch).
    create: Duration,
    /// Create call → the status says every node is available.
    create_status: Duration,
    /// Update call → every pod updated and available, and the status says so.
    update: Duration,
    /// Update call → every pod updated and available, as the pods show it.
    update_pods: Duration,
    /// The most nodes without an available pod at any pod event during the update.
    max_unavailable: usize,
    rss_before_kb: u64,
    rss_after_kb: u64,
    rss_end_kb: u64,
    /// CPU seconds per process (in [`PROCESSES`] order) during create and update.
    cpu_create: [f64; 6],
    cpu_update: [f64; 6],
    /// The controller's reconciles and reconcile seconds, during create and update.
    reconciles: [(f64, f64); 2],
    /// Broker calls by method during create and update.
    calls: [BTreeMap<String, f64>; 2],
    load_before: String,
}

/// The plane of one run; every process is killed on drop.
struct Plane {
    broker: Broker,
    /// In [`PROCESSES`] order (the node agent: every agent process).
    pids: [Vec<u32>; 6],
    controller_metrics: std::net::SocketAddr,
    broker_metrics: std::net::SocketAddr,
    rss_before_kb: u64,
    _children: Vec<ChildGuard>,
}

/// Waits until the controller's metrics answer and each of its informers has listed once.
async fn controller_synced(addr: std::net::SocketAddr, deadline: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + deadline;
    loop {
        if let Ok(body) = scrape(addr).await {
            let relists: Vec<f64> = body
                .lines()
                .filter(|l| l.starts_with("bosun_informer_relists_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .collect();
            if !relists.is_empty() && relists.iter().all(|v| *v >= 1.0) {
                return Ok(());
            }
        }
        if Instant::now() > until {
            bail!(
                "the DaemonSet controller's caches were not loaded within {deadline:?} (no bosun_informer_relists_total ≥ 1 for every kind on {addr})"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_plane(
    args: &Args,
    dir: &Path,
    etcd_endpoint: &str,
    etcd_pid: u32,
) -> anyhow::Result<Plane> {
    let support::MeteredBroker {
        child: broker,
        url: addr,
        client: broker_client,
        metrics: broker_metrics,
    } = support::spawn_metered_broker(etcd_endpoint).await?;
    let metrics = support::free_addr()?;
    let metrics_arg = metrics.to_string();
    let workers = args.workers.map(|w| w.to_string());
    let mut flags = vec!["--server", &addr, "--metrics-listen", &metrics_arg];
    if let Some(w) = &workers {
        flags.extend(["--workers", w]);
    }
    let controller = support::spawn(
        "bosun-daemonset-controller",
        "BOSUN_BENCH_DAEMONSET_LOG",
        &flags,
    )?;
    let scheduler = support::spawn(
        "bosun-scheduler",
        "BOSUN_BENCH_SCHEDULER_LOG",
        &["--server", &addr, "--workers", "32"],
    )?;
    let gc = support::spawn("bosun-gc", "BOSUN_BENCH_GC_LOG", &["--server", &addr])?;
    // The controller's memory with its caches loaded and nothing in them.
    controller_synced(metrics, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kb = rss_kb(controller.0.id())?;

    let agents = args.agents.clamp(1, args.nodes.max(1));
    let mut agent_children = Vec::new();
    for i in 0..agents {
        // Nodes split as evenly as they go: the first `nodes % agents` agents one more.
        let nodes = args.nodes / agents + usize::from(i < args.nodes % agents);
        agent_children.push(if agents == 1 {
            support::spawn_sim_agent(&addr, nodes, &dir.join("node"))?
        } else {
            support::spawn_named_sim_agent(
                &addr,
                &format!("sim{i}"),
                nodes,
                &dir.join(format!("node-{i}")),
            )?
        });
    }
    let deadline = args.deadline();
    let until = Instant::now() + deadline;
    loop {
        let nodes = broker_client.list(Kind::Node, &Selector::all()).await?;
        let ready = nodes
            .items
            .iter()
            .filter(|n| support::node_ready(n))
            .count();
        // The agent's first Lease round (a read and a create per node, all at once) over
        // too: it would otherwise land inside the measured create.
        let leases = if ready >= args.nodes {
            broker_client
                .list(Kind::Lease, &Selector::all())
                .await?
                .items
                .len()
        } else {
            0
        };
        if ready >= args.nodes && leases >= args.nodes {
            break;
        }
        for (i, agent) in agent_children.iter_mut().enumerate() {
            if let Some(status) = agent.0.try_wait()? {
                bail!(
                    "node agent {i} of {agents} exited ({status}) with {ready} of {} sim nodes Ready (its error is printed above)",
                    args.nodes
                );
            }
        }
        if Instant::now() > until {
            bail!(
                "{ready} of {} sim nodes Ready ({leases} Leases) after {deadline:?}",
                args.nodes
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Plane {
        broker: broker_client,
        pids: [
            vec![etcd_pid],
            vec![broker.0.id()],
            vec![scheduler.0.id()],
            agent_children.iter().map(|a| a.0.id()).collect(),
            vec![controller.0.id()],
            vec![gc.0.id()],
        ],
        controller_metrics: metrics,
        broker_metrics,
        rss_before_kb,
        _children: [
            vec![controller, gc, scheduler],
            agent_children,
            vec![broker],
        ]
        .into_iter()
        .flatten()
        .collect(),
    })
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.smoke {
        (args.nodes, args.runs) = (20, 1);
    }
    println!(
        "DaemonSet rollout: one DaemonSet on {} sim nodes in {} node agent process(es) (create, then a RollingUpdate with maxUnavailable {MAX_UNAVAILABLE_PERCENT}% = {} nodes), controller workers {}, {} runs (fresh plane each), deadline {:?} a step, machine: {}, load average at start: {}",
        args.nodes,
        args.agents,
        allowed_unavailable(args.nodes, MAX_UNAVAILABLE_PERCENT),
        args.workers
            .map_or("default".to_string(), |w| w.to_string()),
        args.runs,
        args.deadline(),
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
            "run {run}: create {:.3} s (status {:.3} s), update {:.3} s (pods {:.3} s), max unavailable nodes {} of {} allowed, controller RSS {} → {} KiB ({:.0} B/node), {} KiB at the end, load before {}",
            r.create.as_secs_f64(),
            r.create_status.as_secs_f64(),
            r.update.as_secs_f64(),
            r.update_pods.as_secs_f64(),
            r.max_unavailable,
            allowed_unavailable(args.nodes, MAX_UNAVAILABLE_PERCENT),
            r.rss_before_kb,
            r.rss_after_kb,
            bytes_per_node(&r, args.nodes),
            r.rss_end_kb,
            r.load_before
        );
        results.push(r);
    }
    report(&args, &results);
    println!("load average at the end: {}", load_average());
    let allowed = allowed_unavailable(args.nodes, MAX_UNAVAILABLE_PERCENT);
    let worst = results.iter().map(|r| r.max_unavailable).max().unwrap_or(0);
    if args.smoke && worst > allowed {
        bail!(
            "the RollingUpdate left {worst} nodes without an available pod at once; maxUnavailable {MAX_UNAVAILABLE_PERCENT}% allows {allowed}"
        );
    }
    Ok(())
}

fn bytes_per_node(r: &RunResult, nodes: usize) -> f64 {
    (r.rss_after_kb as f64 - r.rss_before_kb as f64) * 1024.0 / nodes.max(1) as f64
}

/// Prints the tables for bench/RESULTS.md.
fn report(args: &Args, results: &[RunResult]) {
    let pick =
        |f: &dyn Fn(&RunResult) -> f64| median_min_max(&results.iter().map(f).collect::<Vec<_>>());
    let secs = |d: Duration| d.as_secs_f64();
    let (create, create_min, create_max) = pick(&|r| secs(r.create));
    let (create_status, _, _) = pick(&|r| secs(r.create_status));
    let (update, update_min, update_max) = pick(&|r| secs(r.update));
    let (update_pods, _, _) = pick(&|r| secs(r.update_pods));
    let (per_node, per_node_min, per_node_max) = pick(&|r| bytes_per_node(r, args.nodes));
    let allowed = allowed_unavailable(args.nodes, MAX_UNAVAILABLE_PERCENT);
    let worst = results.iter().map(|r| r.max_unavailable).max().unwrap_or(0);
    println!(
        "| sim nodes | runs | create → all Running, median (min–max) | create → status all available | update → all updated and available, median (min–max) | update → pods all updated | max nodes unavailable during update (allowed) | controller B / node, median (min–max) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {create:.3} s ({create_min:.3}–{create_max:.3}) | {create_status:.3} s | {update:.3} s ({update_min:.3}–{update_max:.3}) | {update_pods:.3} s | {worst} ({allowed}) | {per_node:.0} ({per_node_min:.0}–{per_node_max:.0}) |",
        args.nodes,
        results.len()
    );
    println!();
    let verdict = |met: bool| if met { "met" } else { "missed" };
    println!("| goal (issue 11) | measured (median) | verdict |");
    println!("|---|---|---|");
    println!(
        "| create → every daemon pod Running ≤ {} s ({} nodes) | {create:.3} s | {} |",
        GOAL_CREATE.as_secs(),
        args.nodes,
        verdict(create <= GOAL_CREATE.as_secs_f64())
    );
    println!(
        "| RollingUpdate maxUnavailable {MAX_UNAVAILABLE_PERCENT}% → every pod updated and available ≤ {} s | {update:.3} s | {} |",
        GOAL_UPDATE.as_secs(),
        verdict(update <= GOAL_UPDATE.as_secs_f64())
    );
    println!(
        "| never more than {MAX_UNAVAILABLE_PERCENT}% of nodes ({allowed}) without an available pod | at most {worst} (worst run) | {} |",
        if worst <= allowed { "held" } else { "broken" }
    );
    println!();
    println!("CPU seconds per step, median:");
    println!();
    println!("| step | {} | total |", PROCESSES.join(" | "));
    println!("|---|{}---|", "---|".repeat(PROCESSES.len()));
    for (step, get) in [
        (
            "create",
            (|r: &RunResult| r.cpu_create) as fn(&RunResult) -> [f64; 6],
        ),
        ("update", |r: &RunResult| r.cpu_update),
    ] {
        let cpu: Vec<f64> = (0..PROCESSES.len())
            .map(|i| pick(&|r| get(r)[i]).0)
            .collect();
        let cells: Vec<String> = cpu.iter().map(|c| format!("{c:.2}")).collect();
        println!(
            "| {step} | {} | {:.2} |",
            cells.join(" | "),
            cpu.iter().sum::<f64>()
        );
    }
    println!();
    for (i, step) in ["create", "update"].into_iter().enumerate() {
        let (n, _, _) = pick(&|r| r.reconciles[i].0);
        let (s, _, _) = pick(&|r| r.reconciles[i].1);
        let methods: BTreeSet<&String> = results.iter().flat_map(|r| r.calls[i].keys()).collect();
        let calls: Vec<String> = methods
            .into_iter()
            .filter(|m| m.as_str() != "Watch")
            .map(|m| {
                let (v, _, _) = pick(&|r| r.calls[i].get(m).copied().unwrap_or(0.0));
                format!("{m} {v:.0}")
            })
            .filter(|c| !c.ends_with(" 0"))
            .collect();
        println!(
            "{step}, median: controller reconciles {n:.0} taking {s:.3} s in all; broker calls {}",
            calls.join(", ")
        );
    }
    println!();
}

/// One run on a fresh plane.
async fn one_run(args: &Args, run: usize) -> anyhow::Result<RunResult> {
    let (etcd, dir) = support::start_etcd(&format!("daemonsets-{run}")).await?;
    let etcd_pid = etcd.pid().context("etcd has no pid")?;
    let result = async {
        let plane = start_plane(args, &dir, &etcd.endpoint(), etcd_pid).await?;
        measure(args, &plane).await
    }
    .await;
    etcd.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// CPU of every process, the controller's reconciles and the broker's calls, now.
struct Sample {
    cpu: Vec<Duration>,
    reconciles: (f64, f64),
    calls: BTreeMap<String, f64>,
}

async fn sample(plane: &Plane) -> anyhow::Result<Sample> {
    let body = scrape(plane.controller_metrics)
        .await
        .context("scraping the DaemonSet controller's metrics")?;
    Ok(Sample {
        cpu: plane
            .pids
            .iter()
            .map(|pids| {
                pids.iter()
                    .map(|&p| support::cpu_time(p).unwrap_or_default())
                    .sum()
            })
            .collect(),
        reconciles: (
            metric_sum(&body, "bosun_reconcile_total", &[]),
            metric_sum(&body, "bosun_reconcile_duration_seconds_sum", &[]),
        ),
        calls: support::broker_calls(plane.broker_metrics).await?,
    })
}

/// What happened between two samples.
fn delta(before: &Sample, after: &Sample) -> ([f64; 6], (f64, f64), BTreeMap<String, f64>) {
    let mut cpu = [0.0; 6];
    for (i, slot) in cpu.iter_mut().enumerate() {
        *slot = after.cpu[i].saturating_sub(before.cpu[i]).as_secs_f64();
    }
    let calls = after
        .calls
        .iter()
        .map(|(m, v)| (m.clone(), v - before.calls.get(m).copied().unwrap_or(0.0)))
        .collect();
    (
        cpu,
        (
            after.reconciles.0 - before.reconciles.0,
            after.reconciles.1 - before.reconciles.1,
        ),
        calls,
    )
}

async fn measure(args: &Args, plane: &Plane) -> anyhow::Result<RunResult> {
    let load_before = load_average();
    let broker = &plane.broker;
    let n = args.nodes;
    let deadline = args.deadline();
    let selector = Selector::namespace(NS);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let pods_listed = broker.list(Kind::Pod, &selector).await?;
    let ds_listed = broker.list(Kind::DaemonSet, &selector).await?;
    let _pod_watch = AbortOnDrop(forward(
        broker
            .watch(Kind::Pod, &selector, pods_listed.revision)
            .await?,
        tx.clone(),
        Seen::Pod,
        "pod",
    ));
    let _ds_watch = AbortOnDrop(forward(
        broker
            .watch(Kind::DaemonSet, &selector, ds_listed.revision)
            .await?,
        tx,
        Seen::Ds,
        "DaemonSet",
    ));
    let mut pods = Pods::default();
    let mut ds = DsView::default();

    // 1. Create.
    let before = sample(plane).await?;
    let started = Instant::now();
    let created = broker
        .create(daemon_set("1"))
        .await
        .context("creating the DaemonSet")?;
    let generation = DsView::of(&created).map_or(1, |d| d.generation);
    let until = started + deadline;
    let mut all_running: Option<Instant> = None;
    let mut status_done: Option<Instant> = None;
    while all_running.is_none() || status_done.is_none() {
        let (at, seen) = match tokio::time::timeout_at(until.into(), rx.recv()).await {
            Ok(Some(x)) => x,
            Ok(None) => bail!("both watches ended"),
            Err(_) => bail!(
                "the DaemonSet did not converge within {deadline:?} of its creation: {}; status: {}",
                pods.describe(n),
                ds.describe()
            ),
        };
        match seen {
            Seen::Pod(ev) => {
                pods.apply(&ev);
                if all_running.is_none() && pods.all_running(n) {
                    all_running = Some(at);
                }
            }
            Seen::Ds(ev) => {
                if let WatchEvent::Added(o) | WatchEvent::Modified(o) = &ev {
                    ds = DsView::of(o).unwrap_or_default();
                }
                if status_done.is_none() && ds.converged(n, generation, false) {
                    status_done = Some(at);
                }
            }
            Seen::Ended(why) => bail!("{why}"),
        }
    }
    let create = all_running.unwrap_or(started) - started;
    let create_status = status_done.unwrap_or(started) - started;
    let after_create = sample(plane).await?;
    // The controller's memory with the nodes, the pods and the DaemonSet in its caches.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after_kb = rss_kb(plane.pids[CONTROLLER][0])?;
    let hashes = pods.hashes();
    if hashes.len() != 1 || pods.0.len() != n {
        bail!(
            "after the create, expected {n} pods of one revision: {}",
            pods.describe(n)
        );
    }
    let old_hash = hashes.into_keys().next().unwrap_or_default();

    // 2. RollingUpdate: one env var of the template changed.
    let before_update = sample(plane).await?;
    let started = Instant::now();
    let mut current = broker
        .get(Kind::DaemonSet, NS, NAME)
        .await
        .context("reading the DaemonSet")?
        .into_daemon_set()
        .context("the broker answered a DaemonSet read with another kind")?;
    let container = current
        .spec
        .as_mut()
        .and_then(|s| s.template.as_mut())
        .and_then(|t| t.spec.as_mut())
        .and_then(|s| s.containers.first_mut())
        .context("the stored DaemonSet has no container")?;
    container.env = vec![v1::EnvVar {
        name: REVISION_ENV.into(),
        value: "2".into(),
        value_from: None,
    }];
    let updated = broker
        .update(current.into())
        .await
        .context("updating the DaemonSet's template")?;
    let generation = DsView::of(&updated).map_or(0, |d| d.generation);
    let until = started + deadline;
    let mut max_unavailable = pods.unavailable_nodes(n);
    let mut pods_done: Option<Instant> = None;
    let mut status_done: Option<Instant> = None;
    while pods_done.is_none() || status_done.is_none() {
        let (at, seen) = match tokio::time::timeout_at(until.into(), rx.recv()).await {
            Ok(Some(x)) => x,
            Ok(None) => bail!("both watches ended"),
            Err(_) => bail!(
                "the RollingUpdate did not complete within {deadline:?} of the update (old revision hash {old_hash}): {}; status: {}",
                pods.describe(n),
                ds.describe()
            ),
        };
        match seen {
            Seen::Pod(ev) => {
                pods.apply(&ev);
                max_unavailable = max_unavailable.max(pods.unavailable_nodes(n));
                // Done only while it holds: a pod deleted after it would undo it.
                pods_done = pods
                    .all_updated(n, &old_hash)
                    .then_some(pods_done.unwrap_or(at));
            }
            Seen::Ds(ev) => {
                if let WatchEvent::Added(o) | WatchEvent::Modified(o) = &ev {
                    ds = DsView::of(o).unwrap_or_default();
                }
                status_done = ds
                    .converged(n, generation, true)
                    .then_some(status_done.unwrap_or(at));
            }
            Seen::Ended(why) => bail!("{why}"),
        }
    }
    let update_pods = pods_done.unwrap_or(started) - started;
    let update = update_pods.max(status_done.unwrap_or(started) - started);
    let after_update = sample(plane).await?;
    let new_hashes = pods.hashes();
    if new_hashes.len() != 1 || pods.0.len() != n {
        bail!(
            "after the update, expected {n} pods of one new revision: {}",
            pods.describe(n)
        );
    }
    let rss_end_kb = rss_kb(plane.pids[CONTROLLER][0])?;
    let (cpu_create, reconciles_create, calls_create) = delta(&before, &after_create);
    let (cpu_update, reconciles_update, calls_update) = delta(&before_update, &after_update);
    Ok(RunResult {
        create,
        create_status,
        update,
        update_pods,
        max_unavailable,
        rss_before_kb: plane.rss_before_kb,
        rss_after_kb,
        rss_end_kb,
        cpu_create,
        cpu_update,
        reconciles: [reconciles_create, reconciles_update],
        calls: [calls_create, calls_update],
        load_before,
    })
}

/// Aborts a task on drop.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, hash: &str, phase: &str, ready: bool, deleting: bool) -> Object {
        v1::Pod {
            api_version: "v1".into(),
            kind: "Pod".into(),
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: NS.into(),
                labels: [(REVISION_HASH_LABEL.to_string(), hash.to_string())].into(),
                deletion_timestamp: if deleting {
                    "2026-01-01T00:00:00Z".into()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                node_name: node.into(),
                ..Default::default()
            })),
            status: Some(v1::PodStatus {
                phase: phase.into(),
                conditions: vec![v1::Condition {
                    r#type: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
        .into()
    }

    #[test]
    fn max_unavailable_percent_rounds_up() {
        for (nodes, want) in [(1000, 100), (5000, 500), (20, 2), (15, 2), (1, 1), (0, 0)] {
            assert_eq!(allowed_unavailable(nodes, 10), want, "{nodes} nodes");
        }
    }

    #[test]
    fn a_node_is_available_with_one_running_ready_pod_not_terminating() {
        // name, pods (name, node, hash, phase, ready, terminating), nodes, available nodes,
        // all running, all updated away from "a"
        type P = (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            bool,
            bool,
        );
        type Case = (&'static str, &'static [P], usize, usize, bool, bool);
        let cases: &[Case] = &[
            (
                "every node running and ready on the old hash",
                &[
                    ("p1", "n1", "a", "Running", true, false),
                    ("p2", "n2", "a", "Running", true, false),
                ],
                2,
                2,
                true,
                false,
            ),
            (
                "a pending pod and an unbound one",
                &[
                    ("p1", "n1", "a", "Running", true, false),
                    ("p2", "n2", "a", "Pending", false, false),
                    ("p3", "", "a", "Pending", false, false),
                ],
                2,
                1,
                false,
                false,
            ),
            (
                "running but not ready is running, not available",
                &[
                    ("p1", "n1", "b", "Running", false, false),
                    ("p2", "n2", "b", "Running", true, false),
                ],
                2,
                1,
                true,
                false,
            ),
            (
                "a terminating old pod is neither",
                &[
                    ("p1", "n1", "a", "Running", true, true),
                    ("p2", "n2", "b", "Running", true, false),
                ],
                2,
                1,
                false,
                false,
            ),
            (
                "every node on the new hash",
                &[
                    ("p1", "n1", "b", "Running", true, false),
                    ("p2", "n2", "b", "Running", true, false),
                ],
                2,
                2,
                true,
                true,
            ),
            (
                "two pods on one node count once",
                &[
                    ("p1", "n1", "b", "Running", true, false),
                    ("p2", "n1", "b", "Running", true, false),
                ],
                2,
                1,
                false,
                false,
            ),
        ];
        for (name, list, nodes, available, running, updated) in cases {
            let mut pods = Pods::default();
            for (p, node, hash, phase, ready, deleting) in *list {
                pods.apply(&WatchEvent::Added(pod(
                    p, node, hash, phase, *ready, *deleting,
                )));
            }
            assert_eq!(
                pods.unavailable_nodes(*nodes),
                nodes - available,
                "{name}: unavailable"
            );
            assert_eq!(pods.all_running(*nodes), *running, "{name}: all running");
            assert_eq!(pods.all_updated(*nodes, "a"), *updated, "{name}: updated");
        }
    }

    #[test]
    fn a_deleted_pod_is_forgotten() {
        let mut pods = Pods::default();
        let p = pod("p1", "n1", "a", "Running", true, false);
        pods.apply(&WatchEvent::Added(p.clone()));
        assert_eq!(pods.unavailable_nodes(1), 0);
        pods.apply(&WatchEvent::Deleted(p));
        assert_eq!(pods.unavailable_nodes(1), 1);
        assert!(pods.0.is_empty());
    }

    #[test]
    fn the_status_converges_for_the_generation_asked() {
        let status = |observed, desired, available, updated| DsView {
            generation: 2,
            status: v1::DaemonSetStatus {
                observed_generation: observed,
                desired_number_scheduled: desired,
                number_available: available,
                updated_number_scheduled: updated,
                ..Default::default()
            },
        };
        // name, view, generation, updated wanted, converged
        let cases = [
            ("all available", status(1, 10, 10, 10), 1, false, true),
            ("one unavailable", status(1, 10, 9, 10), 1, false, false),
            ("desired short", status(1, 9, 9, 9), 1, false, false),
            (
                "old generation observed",
                status(1, 10, 10, 10),
                2,
                true,
                false,
            ),
            ("updated short", status(2, 10, 10, 9), 2, true, false),
            ("updated, not asked", status(2, 10, 10, 9), 2, false, true),
            ("all updated", status(2, 10, 10, 10), 2, true, true),
        ];
        for (name, view, generation, updated, want) in cases {
            assert_eq!(view.converged(10, generation, updated), want, "{name}");
        }
    }
}
