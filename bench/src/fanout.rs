//! Broker fan-out: how many watch events per second the broker delivers to 1, 10 and 100
//! subscribers, how much latency it adds over a direct etcd watch on the same keys, and
//! whether etcd's load stays flat as subscribers grow (it should: one etcd watch per kind).
//!
//! Each run writes `events` encoded Pods straight into etcd (64 puts in flight, so the writes
//! are not throttled by the broker's own API), with S broker subscribers and one direct etcd
//! watch open on the same namespace. A delivery's added latency is the time the subscriber
//! saw revision R minus the time the direct etcd watch saw R.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bosun_api::v1::{self, Kind, Object, WatchRequest};
use futures::StreamExt;
use prost::Message;
use tokio::sync::mpsc;

use crate::stats::{median_min_max, quantile};
use crate::support;

/// Flags of `bosun-bench fanout`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Subscriber counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    subscribers: Vec<usize>,
    /// Events written per run.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Runs per subscriber count (median, min and max are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Puts in flight on the writer's etcd connection.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Events per second in the latency runs (steady writes, so the added latency is the
    /// broker's, not the queueing of a saturated machine).
    #[arg(long, default_value_t = 1000.0)]
    latency_rate: f64,
    /// Events written per latency run.
    #[arg(long, default_value_t = 5_000)]
    latency_events: usize,
    /// A tiny run proving the benchmark still works (CI): 1 and 10 subscribers, 300 events, 1 run.
    #[arg(long)]
    smoke: bool,
}

/// The figures of one run.
struct RunResult {
    /// Live: events written to etcd while the subscribers watch.
    deliveries_per_sec: f64,
    /// Replay: the same events served again from the broker's window.
    replay_per_sec: f64,
    writes_per_sec: f64,
    p50: Duration,
    p99: Duration,
    etcd_cpu_ms_per_1k_events: f64,
    broker_cpu_ms_per_1k_deliveries: f64,
}

/// What one watcher saw: (revision, when) for every event, in order.
type Seen = Vec<(i64, Instant)>;

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.smoke {
        args.subscribers = vec![1, 10];
        args.events = 300;
        args.latency_events = 200;
        args.runs = 1;
    }
    let (etcd, dir) = support::start_etcd("fanout").await?;
    let endpoint = etcd.endpoint();
    let window = (args.events * 2).max(10_000).to_string();
    let (broker, broker_addr) = support::spawn_broker(&endpoint, &["--window-events", &window])?;
    let broker_pid = broker.0.id();
    let client = support::connect_with_deadline(&broker_addr, Duration::from_secs(30)).await?;
    let etcd_client = etcd_client::Client::connect([endpoint.as_str()], None)
        .await
        .context("connecting to etcd")?;
    let etcd_pid = etcd.pid().context("etcd has no pid")?;

    println!(
        "broker fan-out: {} events per run, {} runs, {} puts in flight, machine: {}",
        args.events,
        args.runs,
        args.in_flight,
        support::machine()
    );
    println!();
    println!(
        "Throughput: writes flat out ({} puts in flight).",
        args.in_flight
    );
    println!();
    println!(
        "| subscribers | live deliveries/s median (min–max) | etcd writes/s | replay deliveries/s median (min–max) | added latency p50 / p99 (saturated) | etcd CPU ms / 1k events | broker CPU ms / 1k deliveries |"
    );
    println!("|---|---|---|---|---|---|---|");
    let plane = Plane {
        client: &client,
        etcd: &etcd_client,
        etcd_pid,
        broker_pid,
    };
    let mut latency_rows = Vec::new();
    for &subs in &args.subscribers {
        let mut flat = Vec::new();
        let mut paced = Vec::new();
        for run in 0..args.runs {
            let ns = format!("fan-{subs}-{run}");
            let r = one_run(&args, &plane, subs, &ns, args.events, None)
                .await
                .with_context(|| format!("{subs} subscribers, run {run}"))?;
            flat.push(r);
            let ns = format!("lat-{subs}-{run}");
            let rate = Some(args.latency_rate);
            let r = one_run(&args, &plane, subs, &ns, args.latency_events, rate)
                .await
                .with_context(|| format!("{subs} subscribers, paced run {run}"))?;
            paced.push(r);
        }
        let pick = |rs: &[RunResult], f: &dyn Fn(&RunResult) -> f64| {
            median_min_max(&rs.iter().map(f).collect::<Vec<_>>())
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (d_med, d_min, d_max) = pick(&flat, &|r| r.deliveries_per_sec);
        let (w_med, _, _) = pick(&flat, &|r| r.writes_per_sec);
        let (r_med, r_min, r_max) = pick(&flat, &|r| r.replay_per_sec);
        let (sp50, _, _) = pick(&flat, &|r| ms(r.p50));
        let (sp99, _, _) = pick(&flat, &|r| ms(r.p99));
        let (cpu, _, _) = pick(&flat, &|r| r.etcd_cpu_ms_per_1k_events);
        let (bcpu, _, _) = pick(&flat, &|r| r.broker_cpu_ms_per_1k_deliveries);
        println!(
            "| {subs} | {d_med:.0} ({d_min:.0}–{d_max:.0}) | {w_med:.0} | {r_med:.0} ({r_min:.0}–{r_max:.0}) | {sp50:.2} / {sp99:.2} ms | {cpu:.0} | {bcpu:.0} |"
        );
        let (p50, _, _) = pick(&paced, &|r| ms(r.p50));
        let (p99, p99_min, p99_max) = pick(&paced, &|r| ms(r.p99));
        let (pcpu, _, _) = pick(&paced, &|r| r.etcd_cpu_ms_per_1k_events);
        latency_rows.push(format!(
            "| {subs} | {:.0} | {p50:.2} ms | {p99:.2} ms ({p99_min:.2}–{p99_max:.2}) | {pcpu:.0} |",
            args.latency_rate
        ));
    }
    println!();
    println!(
        "Added latency: writes at a steady {:.0} events/s, {} events per run.",
        args.latency_rate, args.latency_events
    );
    println!();
    println!(
        "| subscribers | events/s | added latency p50 median | added latency p99 median (min–max) | etcd CPU ms / 1k events |"
    );
    println!("|---|---|---|---|---|");
    for row in latency_rows {
        println!("{row}");
    }
    drop(broker);
    etcd.stop().await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// An encoded Pod as the broker would store it.
fn pod_bytes(ns: &str, name: &str) -> Vec<u8> {
    let pod = v1::Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: ns.into(),
            uid: format!("00000000-0000-4000-8000-{name:0>12}"),
            labels: [("app".to_string(), "fanout".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(Box::new(v1::PodSpec {
            containers: vec![v1::Container {
                name: "main".into(),
                image: "busybox".into(),
                command: vec!["sh".into(), "-c".into(), "echo hello".into()],
                ..Default::default()
            }],
            restart_policy: "Never".into(),
            ..Default::default()
        })),
        status: None,
    };
    Object::from(pod).encode_to_vec()
}

/// One broker subscriber on the run's namespace, from revision `from` (0: now), until it has
/// seen the revision `last` announces. Signals `ready` on its first event.
fn spawn_subscriber(
    mut client: bosun_runtime::client::BrokerClient,
    ns: &str,
    from: i64,
    capacity: usize,
    mut last: tokio::sync::watch::Receiver<i64>,
    ready: Option<mpsc::Sender<()>>,
) -> tokio::task::JoinHandle<anyhow::Result<Seen>> {
    let req = WatchRequest {
        kind: Kind::Pod as i32,
        namespace: ns.to_string(),
        resource_version: from,
        ..Default::default()
    };
    tokio::spawn(async move {
        let mut stream = client.watch(req).await?.into_inner();
        let mut seen: Seen = Vec::with_capacity(capacity);
        while !seen_up_to(&seen, *last.borrow()) {
            let resp = tokio::select! {
                r = stream.next() => r,
                _ = last.changed() => continue,
            };
            let Some(resp) = resp else {
                bail!("broker stream ended after {} events", seen.len())
            };
            let resp = resp.context("broker watch")?;
            let now = Instant::now();
            for ev in resp.events {
                if ev.r#type == v1::EventType::Bookmark as i32 {
                    continue;
                }
                if seen.is_empty()
                    && let Some(ready) = &ready
                {
                    let _ = ready.send(()).await;
                }
                seen.push((ev.revision, now));
            }
        }
        anyhow::Ok(seen)
    })
}

/// Whether a watcher has seen revision `last` (events arrive in revision order).
fn seen_up_to(seen: &Seen, last: i64) -> bool {
    seen.last().is_some_and(|&(rev, _)| rev >= last)
}

/// What one run talks to and watches.
struct Plane<'a> {
    client: &'a bosun_runtime::client::BrokerClient,
    etcd: &'a etcd_client::Client,
    etcd_pid: u32,
    broker_pid: u32,
}

async fn one_run(
    args: &Args,
    plane: &Plane<'_>,
    subs: usize,
    ns: &str,
    events: usize,
    pace: Option<f64>,
) -> anyhow::Result<RunResult> {
    let Plane {
        client,
        etcd,
        etcd_pid,
        broker_pid,
    } = *plane;
    let prefix = format!("/bosun/pods/{ns}/");
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(subs + 1);
    // The last revision written: every watcher stops once it has seen it.
    let (last_tx, last_rx) = tokio::sync::watch::channel(i64::MAX);
    let capacity = events + 16;

    // The baseline: a direct etcd watch on the same keys.
    let mut stream = etcd
        .clone()
        .watch(
            prefix.as_str(),
            Some(etcd_client::WatchOptions::new().with_prefix()),
        )
        .await?;
    let ready = ready_tx.clone();
    let mut last = last_rx.clone();
    let direct = tokio::spawn(async move {
        let mut seen: Seen = Vec::with_capacity(capacity);
        while !seen_up_to(&seen, *last.borrow()) {
            let resp = tokio::select! {
                r = stream.message() => r?,
                _ = last.changed() => continue,
            };
            let Some(resp) = resp else {
                bail!("etcd watch ended")
            };
            let now = Instant::now();
            for ev in resp.events() {
                let rev = ev.kv().map_or(0, |kv| kv.mod_revision());
                if seen.is_empty() {
                    let _ = ready.send(()).await;
                }
                seen.push((rev, now));
            }
        }
        Ok(seen)
    });

    // The subscribers.
    let tasks: Vec<_> = (0..subs)
        .map(|_| {
            spawn_subscriber(
                client.clone(),
                ns,
                0,
                capacity,
                last_rx.clone(),
                Some(ready_tx.clone()),
            )
        })
        .collect();
    drop(ready_tx);

    // The sentinel proves every watcher is established before the clock starts.
    let mut kv = etcd.kv_client();
    let sentinel = format!("{prefix}sentinel");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ready_count = 0;
    while ready_count < subs + 1 {
        kv.put(sentinel.as_str(), pod_bytes(ns, "sentinel"), None)
            .await?;
        let wait = tokio::time::timeout(Duration::from_millis(500), ready_rx.recv()).await;
        if let Ok(Some(())) = wait {
            ready_count += 1;
            while let Ok(()) = ready_rx.try_recv() {
                ready_count += 1;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "only {ready_count} of {} watchers ready after 30s",
                subs + 1
            );
        }
        // Watchers that joined late missed this sentinel; the next put reaches them, and
        // only revisions after the last sentinel are counted below.
    }
    let sentinel_rev = kv
        .get(sentinel.as_str(), None)
        .await?
        .kvs()
        .first()
        .map_or(0, |k| k.mod_revision());

    let etcd_cpu0 = support::cpu_time(etcd_pid)?;
    let broker_cpu0 = support::cpu_time(broker_pid)?;
    let start = Instant::now();
    // Flat out (throughput) or at a steady rate (latency, without the queueing a saturated
    // 2-core machine adds everywhere).
    let pace = pace.map(|rate| {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        tick
    });
    let pace = std::sync::Arc::new(tokio::sync::Mutex::new(pace));
    let writes = futures::stream::iter(0..events)
        .map(|i| {
            let mut kv = kv.clone();
            let key = format!("{prefix}p-{i}");
            let value = pod_bytes(ns, &format!("p-{i}"));
            let pace = pace.clone();
            async move {
                if let Some(tick) = pace.lock().await.as_mut() {
                    tick.tick().await;
                }
                kv.put(key, value, None).await
            }
        })
        .buffer_unordered(args.in_flight);
    let results: Vec<_> = writes.collect().await;
    let mut last_rev = 0;
    for r in results {
        last_rev = last_rev.max(r?.header().map_or(0, |h| h.revision()));
    }
    let write_secs = start.elapsed().as_secs_f64();
    last_tx.send_replace(last_rev);

    // Every watcher must see every event; a watcher stuck at the sentinel count would hang, so
    // the whole wait has a deadline.
    let wait = async {
        let direct = direct.await??;
        let mut subs_seen = Vec::new();
        for t in tasks {
            subs_seen.push(t.await??);
        }
        anyhow::Ok((direct, subs_seen))
    };
    let (direct, subs_seen) = tokio::time::timeout(Duration::from_secs(300), wait)
        .await
        .context("watchers did not see every event within 300s")??;
    let etcd_cpu = support::cpu_time(etcd_pid)? - etcd_cpu0;
    let broker_cpu = support::cpu_time(broker_pid)? - broker_cpu0;

    let etcd_at: HashMap<i64, Instant> = direct.into_iter().collect();
    let mut added = Vec::new();
    let mut last = start;
    let mut deliveries = 0usize;
    for seen in &subs_seen {
        for &(rev, at) in seen {
            if rev <= sentinel_rev {
                continue;
            }
            deliveries += 1;
            last = last.max(at);
            if let Some(&base) = etcd_at.get(&rev) {
                added.push(at.saturating_duration_since(base));
            }
        }
    }
    added.sort();
    let secs = last.duration_since(start).as_secs_f64().max(1e-9);

    // Replay: the same events again, now from the broker's window, to fresh subscribers. No
    // etcd in the path, so this is the broker's own fan-out rate.
    let (_replay_tx, replay_rx) = tokio::sync::watch::channel(last_rev);
    let replay_start = Instant::now();
    let replays: Vec<_> = (0..subs)
        .map(|_| {
            spawn_subscriber(
                client.clone(),
                ns,
                sentinel_rev,
                capacity,
                replay_rx.clone(),
                None,
            )
        })
        .collect();
    let mut replayed = 0usize;
    for t in replays {
        let seen = tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .context("replay subscribers did not finish within 300s")???;
        replayed += seen.iter().filter(|(rev, _)| *rev > sentinel_rev).count();
    }
    let replay_secs = replay_start.elapsed().as_secs_f64().max(1e-9);

    // Leave etcd as small as we found it.
    kv.delete(
        prefix.as_str(),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;

    Ok(RunResult {
        deliveries_per_sec: deliveries as f64 / secs,
        replay_per_sec: replayed as f64 / replay_secs,
        writes_per_sec: events as f64 / write_secs,
        p50: quantile(&added, 0.5),
        p99: quantile(&added, 0.99),
        etcd_cpu_ms_per_1k_events: etcd_cpu.as_secs_f64() * 1000.0 * 1000.0 / events as f64,
        broker_cpu_ms_per_1k_deliveries: broker_cpu.as_secs_f64() * 1000.0 * 1000.0
            / deliveries.max(1) as f64,
    })
}
