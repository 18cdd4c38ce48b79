//! CronJob creation skew: 10,000 CronJobs of which 1,000 fire each minute, on sim nodes, and
//! Debian's `cron` daemon firing the same number of crontab entries each minute, side by
//! side; and the CronJob controller's memory per CronJob.
//!
//! A fresh plane, all real processes: etcd, `bosun-broker`, `bosun-scheduler`, `bosun-gc`,
//! one `bosun-node-agent --runtime sim --sim-nodes N`, `bosun-job-controller` and
//! `bosun-cronjob-controller`. Then:
//!
//! 1. the CronJob controller's RSS with nothing to cache (its metrics endpoint answers);
//! 2. `--cronjobs` CronJobs created (64 in flight): `--firing` of them `* * * * *`, the rest
//!    `0 0 1 1 *` (which does not fire during the run); once the controller has reconciled
//!    each of them at least once (`bosun_reconcile_total`), its RSS again:
//!    (after − before) ÷ CronJobs = bytes per CronJob;
//! 3. for the next `--minutes` minute boundaries, every Job seen through a broker watch:
//!    skew = the moment the watch delivered it − its scheduled time (the Unix minute in its
//!    name, `<cronjob>-<minutes>`); p50 / p99 / max over all fires, and fires missing;
//! 4. the plane stopped, Debian's `cron` (`cron -f`, its own daemon) with one file in
//!    /etc/cron.d of `--firing` entries `* * * * * root date +%s.%N >> FILE`, for as many
//!    minute boundaries: skew = each entry's start time − its minute boundary. The file is
//!    removed and the daemon killed afterwards. Needs root and the `cron` package
//!    (`scripts/deps.sh --bench`); `--no-cron` skips it.
//!
//! `--smoke` (for scripts/test.sh): 50 CronJobs of which 10 fire `@every 2s`, the first Job
//! of each measured (skew from its `batch.kubernetes.io/cronjob-scheduled-timestamp`, whole
//! seconds), no cron daemon: a minute boundary is too long a wait for CI's smoke step.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bosun_api::v1::{self, Kind, Object};
use bosun_runtime::client::{Broker, Selector, WatchEvent};
use futures::StreamExt;

use crate::stats::quantile;
use crate::support::{self, ChildGuard, load_average, rss_kb, scrape};

/// The goal for the creation skew's p99.
const GOAL_P99: Duration = Duration::from_millis(100);
/// The namespace of every CronJob.
const NS: &str = "cron-bench";
/// A schedule that does not fire during a run (midnight, January 1st).
const IDLE_SCHEDULE: &str = "0 0 1 1 *";
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Flags of `bosun-bench cronjobs`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// CronJobs created.
    #[arg(long, default_value_t = 10_000)]
    cronjobs: usize,
    /// How many of them fire each minute (`* * * * *`); the rest never fire in the run.
    #[arg(long, default_value_t = 1_000)]
    firing: usize,
    /// Minute boundaries measured (for the controller, then as many for the cron daemon).
    #[arg(long, default_value_t = 3)]
    minutes: usize,
    /// Sim nodes (all in one `bosun-node-agent` process).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// How long each Job's pod "runs" (its `bosun.dev/sim-duration`).
    #[arg(long, default_value = "1s")]
    sim_duration: String,
    /// The CronJob controller's `--workers` (unset: its default).
    #[arg(long)]
    workers: Option<usize>,
    /// Skip Debian's cron daemon.
    #[arg(long)]
    no_cron: bool,
    /// A tiny run: 50 CronJobs, 10 firing `@every 2s`, their first Jobs measured, no cron.
    #[arg(long)]
    smoke: bool,
}

/// Skews of one side, and how many fires were expected.
struct Skews {
    sorted: Vec<Duration>,
    expected: usize,
}

impl Skews {
    fn new(mut skews: Vec<Duration>, expected: usize) -> Skews {
        skews.sort();
        Skews {
            sorted: skews,
            expected,
        }
    }
    fn p(&self, q: f64) -> Duration {
        quantile(&self.sorted, q)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn now_unix() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn cronjob(i: usize, schedule: &str, sim_duration: &str) -> Object {
    let template = v1::PodTemplateSpec {
        metadata: Some(v1::ObjectMeta {
            labels: [("app".to_string(), "cron-bench".to_string())].into(),
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
    };
    v1::CronJob {
        api_version: "batch/v1".into(),
        kind: "CronJob".into(),
        metadata: Some(v1::ObjectMeta {
            name: format!("cj-{i:05}"),
            namespace: NS.into(),
            ..Default::default()
        }),
        spec: Some(v1::CronJobSpec {
            schedule: schedule.into(),
            job_template: Some(v1::JobTemplateSpec {
                metadata: None,
                spec: Some(v1::JobSpec {
                    backoff_limit: Some(0),
                    template: Some(template),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    }
    .into()
}

/// CronJob reconciles so far (ok and error), from the controller's metrics.
async fn reconciles(addr: std::net::SocketAddr) -> anyhow::Result<f64> {
    let body = scrape(addr).await?;
    Ok(body
        .lines()
        .filter(|l| l.starts_with("bosun_reconcile_total{") && l.contains("controller=\"cronjob\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// The plane; every process is killed on drop.
struct Plane {
    broker: Broker,
    controller_pid: u32,
    controller_metrics: std::net::SocketAddr,
    _children: Vec<ChildGuard>,
}

async fn start_plane(args: &Args, dir: &Path, etcd_endpoint: &str) -> anyhow::Result<Plane> {
    let (broker, addr) = support::spawn_broker(etcd_endpoint, &[])?;
    let client = support::connect_with_deadline(&addr, Duration::from_secs(30)).await?;
    let broker_client = Broker::new(client);
    let agent = support::spawn_sim_agent(&addr, args.nodes, &dir.join("node"))?;
    let scheduler = support::spawn(
        "bosun-scheduler",
        "BOSUN_BENCH_SCHEDULER_LOG",
        &["--server", &addr, "--workers", "32"],
    )?;
    let gc = support::spawn("bosun-gc", "BOSUN_BENCH_GC_LOG", &["--server", &addr])?;
    let jobs = support::spawn(
        "bosun-job-controller",
        "BOSUN_BENCH_JOB_LOG",
        &["--server", &addr],
    )?;
    let metrics = support::free_addr()?;
    let metrics_arg = metrics.to_string();
    let workers = args.workers.map(|w| w.to_string());
    let mut flags = vec!["--server", &addr, "--metrics-listen", &metrics_arg];
    if let Some(w) = &workers {
        flags.extend(["--workers", w]);
    }
    let controller = support::spawn(
        "bosun-cronjob-controller",
        "BOSUN_BENCH_CRONJOB_LOG",
        &flags,
    )?;
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = broker_client.list(Kind::Node, &Selector::all()).await?;
        let ready = nodes
            .items
            .iter()
            .filter(|n| support::node_ready(n))
            .count();
        if ready >= args.nodes && scrape(metrics).await.is_ok() {
            break;
        }
        if Instant::now() > until {
            bail!(
                "{ready} of {} sim nodes Ready (or the CronJob controller's metrics silent) after a minute",
                args.nodes
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Plane {
        broker: broker_client,
        controller_pid: controller.0.id(),
        controller_metrics: metrics,
        _children: vec![controller, jobs, gc, scheduler, agent, broker],
    })
}

/// The controller side's figures.
struct ControllerResult {
    /// Each slot's skews (the Unix second it was scheduled for).
    by_slot: Vec<(u64, Skews)>,
    skews: Skews,
    rss_before_kb: u64,
    rss_after_kb: u64,
    rss_end_kb: u64,
    create_secs: f64,
    cpu_secs: f64,
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.smoke {
        (
            args.cronjobs,
            args.firing,
            args.minutes,
            args.nodes,
            args.no_cron,
        ) = (50, 10, 1, 5, true);
    }
    if args.firing > args.cronjobs {
        bail!("--firing {} > --cronjobs {}", args.firing, args.cronjobs);
    }
    println!(
        "CronJob creation skew: {} CronJobs, {} firing {} over {} minute(s), controller workers {}, pods on {} sim nodes (sim-duration {}); Debian cron: {}; machine: {}, load average at start: {}",
        args.cronjobs,
        args.firing,
        if args.smoke {
            "@every 2s (first Job each)"
        } else {
            "each minute"
        },
        args.minutes,
        args.workers
            .map_or("default".to_string(), |w| w.to_string()),
        args.nodes,
        args.sim_duration,
        if args.no_cron {
            "skipped".to_string()
        } else {
            format!(
                "{} entries each minute, after the plane is stopped",
                args.firing
            )
        },
        support::machine(),
        load_average()
    );
    println!();
    let (etcd, dir) = support::start_etcd("cronjobs").await?;
    let result = async {
        let plane = start_plane(&args, &dir, &etcd.endpoint()).await?;
        measure_controller(&args, &plane).await
    }
    .await;
    etcd.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let controller = result?;
    let cron = if args.no_cron {
        None
    } else {
        Some(measure_cron(&args).await.context("Debian's cron daemon")?)
    };
    report(&args, &controller, cron.as_ref());
    println!("load average at the end: {}", load_average());
    Ok(())
}

fn report(args: &Args, c: &ControllerResult, cron: Option<&Skews>) {
    println!("| fires by | fires seen / expected | skew p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, s: &Skews| {
        println!(
            "| {name} | {} / {} | {} | {} | {} |",
            s.sorted.len(),
            s.expected,
            ms(s.p(0.5)),
            ms(s.p(0.99)),
            ms(s.p(1.0))
        );
    };
    row(
        "bosun CronJob controller (Job seen through a watch − scheduled time)",
        &c.skews,
    );
    if let Some(cron) = cron {
        row("Debian cron (entry's start − minute boundary)", cron);
    }
    println!();
    for (slot, s) in &c.by_slot {
        println!(
            "slot {slot}: {} Jobs, skew p50 {} / p99 {} / max {}",
            s.sorted.len(),
            ms(s.p(0.5)),
            ms(s.p(0.99)),
            ms(s.p(1.0))
        );
    }
    println!();
    let per_cronjob =
        (c.rss_after_kb as f64 - c.rss_before_kb as f64) * 1024.0 / args.cronjobs as f64;
    println!(
        "CronJob controller: RSS {} KiB with nothing cached → {} KiB with {} CronJobs cached = {per_cronjob:.0} B per CronJob; {} KiB at the end; {} CronJobs created in {:.1} s; CPU {:.2} s over the measured minutes.",
        c.rss_before_kb,
        c.rss_after_kb,
        args.cronjobs,
        c.rss_end_kb,
        args.cronjobs,
        c.create_secs,
        c.cpu_secs
    );
    println!();
    let p99 = c.skews.p(0.99);
    let all = c.skews.sorted.len() == c.skews.expected;
    println!("| goal (issue 10) | measured | verdict |");
    println!("|---|---|---|");
    println!(
        "| creation skew p99 ≤ {} ms, every fire | {} ({} of {} fires) | {} |",
        GOAL_P99.as_millis(),
        ms(p99),
        c.skews.sorted.len(),
        c.skews.expected,
        if p99 <= GOAL_P99 && all {
            "met"
        } else {
            "missed"
        }
    );
    println!();
}

async fn measure_controller(args: &Args, plane: &Plane) -> anyhow::Result<ControllerResult> {
    let broker = &plane.broker;
    // Settled: no CronJob exists; the controller's informers have had time to list nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before_kb = rss_kb(plane.controller_pid)?;
    let base = reconciles(plane.controller_metrics).await?;

    let selector = Selector::namespace(NS);
    let listed = broker.list(Kind::Job, &selector).await?;
    let mut watch = broker.watch(Kind::Job, &selector, listed.revision).await?;

    let firing_schedule = if args.smoke { "@every 2s" } else { "* * * * *" };
    let started = Instant::now();
    let created: Vec<anyhow::Result<()>> = futures::stream::iter(0..args.cronjobs)
        .map(|i| {
            let schedule = if i < args.firing {
                firing_schedule
            } else {
                IDLE_SCHEDULE
            };
            let obj = cronjob(i, schedule, &args.sim_duration);
            async move {
                broker
                    .create(obj)
                    .await
                    .map(|_| ())
                    .with_context(|| format!("creating CronJob {i}"))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for r in created {
        r?;
    }
    let create_secs = started.elapsed().as_secs_f64();
    // Every CronJob reconciled at least once: all are in the controller's cache.
    let until = Instant::now() + Duration::from_secs(120);
    while reconciles(plane.controller_metrics).await? - base < args.cronjobs as f64 {
        if Instant::now() > until {
            bail!("the CronJob controller did not reconcile every CronJob within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after_kb = rss_kb(plane.controller_pid)?;
    let cpu_before = support::cpu_time(plane.controller_pid).unwrap_or_default();

    // The measured slots: the next `minutes` minute boundaries (smoke: any first fire).
    let first_minute = now_unix().as_secs() / 60 + 1;
    let last_minute = first_minute + args.minutes as u64 - 1;
    let expected = args.firing * if args.smoke { 1 } else { args.minutes };
    let deadline_unix = if args.smoke {
        now_unix() + Duration::from_secs(60)
    } else {
        Duration::from_secs((last_minute + 1) * 60 + 30)
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut skews = Vec::new();
    let mut by_slot: std::collections::BTreeMap<u64, Vec<Duration>> = Default::default();
    while skews.len() < expected {
        let left = deadline_unix.saturating_sub(now_unix());
        if left.is_zero() {
            break;
        }
        let event = match tokio::time::timeout(left, watch.next()).await {
            Err(_) => break,
            Ok(e) => e?,
        };
        let at = now_unix();
        let obj = match event {
            Some(WatchEvent::Added(o) | WatchEvent::Modified(o)) => o,
            Some(WatchEvent::Deleted(_) | WatchEvent::Bookmark(_)) => continue,
            None => bail!("the broker ended the Job watch"),
        };
        let Some(meta) = obj.as_job().and_then(|j| j.metadata.clone()) else {
            continue;
        };
        if !seen.insert(meta.name.clone()) {
            continue;
        }
        let (cronjob, minute) = meta
            .name
            .rsplit_once('-')
            .with_context(|| format!("Job {} is not named <cronjob>-<minute>", meta.name))?;
        let scheduled = if args.smoke {
            // One Job per CronJob: its first.
            if !seen.insert(format!("cronjob {cronjob}")) {
                continue;
            }
            let stamp = meta
                .annotations
                .get(SCHEDULED_TIMESTAMP)
                .with_context(|| format!("Job {} has no {SCHEDULED_TIMESTAMP}", meta.name))?;
            let t = chrono::DateTime::parse_from_rfc3339(stamp)
                .with_context(|| format!("{SCHEDULED_TIMESTAMP} {stamp:?}"))?;
            Duration::from_secs(t.timestamp() as u64)
        } else {
            let minute: u64 = minute
                .parse()
                .with_context(|| format!("Job {} is not named <cronjob>-<minute>", meta.name))?;
            if !(first_minute..=last_minute).contains(&minute) {
                continue;
            }
            Duration::from_secs(minute * 60)
        };
        skews.push(at.saturating_sub(scheduled));
        by_slot
            .entry(scheduled.as_secs())
            .or_default()
            .push(at.saturating_sub(scheduled));
    }
    let cpu_secs = support::cpu_time(plane.controller_pid)
        .unwrap_or_default()
        .saturating_sub(cpu_before)
        .as_secs_f64();
    let rss_end_kb = rss_kb(plane.controller_pid)?;
    Ok(ControllerResult {
        skews: Skews::new(skews, expected),
        by_slot: by_slot
            .into_iter()
            .map(|(slot, s)| (slot, Skews::new(s, 0)))
            .collect(),
        rss_before_kb,
        rss_after_kb,
        rss_end_kb,
        create_secs,
        cpu_secs,
    })
}

/// Removes the cron.d file (and the output file) on drop.
struct CronFiles(PathBuf, PathBuf);

impl Drop for CronFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(&self.1);
    }
}

/// Debian's cron daemon firing `--firing` entries each minute for `--minutes` boundaries.
async fn measure_cron(args: &Args) -> anyhow::Result<Skews> {
    let cron = ["/usr/sbin/cron", "/sbin/cron"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("no cron daemon: install Debian's `cron` package (scripts/deps.sh --bench), or pass --no-cron")?;
    let running = Command::new("pgrep")
        .args(["-x", "cron"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if running {
        bail!(
            "a cron daemon is already running: it would read this benchmark's /etc/cron.d file too; stop it or pass --no-cron"
        );
    }
    let pid = std::process::id();
    let out = std::env::temp_dir().join(format!("bosun-bench-cron-{pid}.out"));
    // Debian's cron reads only names of letters, digits, `-` and `_` in /etc/cron.d.
    let tab = PathBuf::from(format!("/etc/cron.d/bosun-bench-{pid}"));
    let files = CronFiles(tab.clone(), out.clone());
    let line = format!("* * * * * root date +\\%s.\\%N >> {}\n", out.display());
    std::fs::write(&tab, line.repeat(args.firing))
        .with_context(|| format!("writing {} (needs root)", tab.display()))?;
    let _daemon = ChildGuard(
        Command::new(&cron)
            .arg("-f")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", cron.display()))?,
    );
    // The boundaries after the daemon has read its tables.
    let first_minute = (now_unix() + Duration::from_secs(2)).as_secs() / 60 + 1;
    let last_minute = first_minute + args.minutes as u64 - 1;
    let expected = args.firing * args.minutes;
    let deadline = Duration::from_secs((last_minute + 1) * 60 + 30);
    let skews = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let skews = text
            .lines()
            .filter_map(|l| l.trim().parse::<f64>().ok())
            .map(Duration::from_secs_f64)
            .filter(|t| (first_minute..=last_minute).contains(&(t.as_secs() / 60)))
            .map(|t| t - Duration::from_secs(t.as_secs() / 60 * 60))
            .collect::<Vec<_>>();
        if skews.len() >= expected || now_unix() > deadline {
            break skews;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    drop(files);
    Ok(Skews::new(skews, expected))
}
