//! Shard handoff times of a scaled-out controller (issue 12): how long the live replicas take
//! to hold every shard of a replica that stopped — after `kill -9` (its lease must lapse)
//! and after a graceful stop (SIGTERM: it revokes its lease and its shards are free at once).
//!
//! A fresh plane of real processes: etcd, `bosun-broker`, and `--replicas` replicas of the
//! controller (`bosun-job-controller` by default, each `--replica r<i>`). Once the replicas
//! hold all 256 shards between them, `--kills` rounds: SIGKILL one replica (round-robin),
//! time until no shard is held by it and every shard is held (polled through the broker's
//! `ListControllers` every 10 ms), restart it under the same name and wait until it holds
//! shards again; then `--stops` rounds of the same with SIGTERM. p50 and max of each are
//! reported against the goals (≤ 3 s after a kill, ≤ 1 s after a graceful stop).
//!
//! `--smoke` (for scripts/test.sh): 2 replicas, 1 kill, 1 stop.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bosun_api::shard::SHARDS;
use bosun_api::v1::{self, shards_client::ShardsClient};
use tonic::transport::Channel;

use crate::stats::quantile;
use crate::support::{self, ChildGuard, load_average};

const GOAL_KILL: Duration = Duration::from_secs(3);
const GOAL_STOP: Duration = Duration::from_secs(1);

/// Flags of `bosun-bench handoff`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The controller kind: job, cronjob or daemonset.
    #[arg(long, default_value = "job")]
    controller: String,
    /// Replicas running at once.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// SIGKILL rounds.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// SIGTERM rounds.
    #[arg(long, default_value_t = 10)]
    stops: usize,
    /// A tiny run for CI: 2 replicas, 1 kill, 1 stop.
    #[arg(long)]
    smoke: bool,
}

/// Shards held per replica name.
async fn holders(shards: &mut ShardsClient<Channel>, controller: &str) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    if let Ok(resp) = shards.list_controllers(v1::ListControllersRequest {}).await
        && let Some(m) = resp
            .into_inner()
            .controllers
            .into_iter()
            .find(|m| m.controller == controller)
    {
        for o in m.owners {
            *by.entry(o.replica).or_default() += 1;
        }
    }
    by
}

/// Waits (polling every 10 ms, 60 s at most) until every shard is held and `replica` holds
/// some (`holding`) or none; returns how long it took.
async fn settled(
    shards: &mut ShardsClient<Channel>,
    controller: &str,
    replica: &str,
    holding: bool,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let h = holders(shards, controller).await;
        let total: usize = h.values().sum();
        if total == SHARDS as usize && h.contains_key(replica) == holding {
            return Ok(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("shards not settled within 60 s ({replica} holding: {holding}): {h:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn binary(controller: &str) -> anyhow::Result<&'static str> {
    Ok(match controller {
        "job" => "bosun-job-controller",
        "cronjob" => "bosun-cronjob-controller",
        "daemonset" => "bosun-daemonset-controller",
        other => bail!("--controller {other:?}: want job, cronjob or daemonset"),
    })
}

fn start(name: &str, server: &str, replica: &str) -> anyhow::Result<ChildGuard> {
    support::spawn(
        name,
        "BOSUN_BENCH_CONTROLLER_LOG",
        &["--server", server, "--replica", replica],
    )
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.smoke {
        (args.replicas, args.kills, args.stops) = (2, 1, 1);
    }
    if args.replicas < 2 {
        bail!("--replicas {}: a handoff needs at least 2", args.replicas);
    }
    let bin = binary(&args.controller)?;
    println!(
        "Shard handoff: {} replicas of {bin}, {} kills, {} graceful stops; machine: {}, load average at start: {}",
        args.replicas,
        args.kills,
        args.stops,
        support::machine(),
        load_average()
    );
    let (etcd, dir) = support::start_etcd("handoff").await?;
    let (_broker, server) = support::spawn_broker(&etcd.endpoint(), &[])?;
    let mut shards = loop {
        match ShardsClient::connect(server.clone()).await {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let names: Vec<String> = (0..args.replicas).map(|i| format!("r{i}")).collect();
    let mut children: Vec<Option<ChildGuard>> = names
        .iter()
        .map(|n| start(bin, &server, n).map(Some))
        .collect::<anyhow::Result<_>>()?;
    for n in &names {
        settled(&mut shards, &args.controller, n, true)
            .await
            .with_context(|| format!("replica {n} never held a shard"))?;
    }
    let mut kills = Vec::new();
    let mut stops = Vec::new();
    for round in 0..args.kills + args.stops {
        let graceful = round >= args.kills;
        let i = round % args.replicas;
        let mut child = children[i].take().context("replica running")?;
        if graceful {
            let pid = child.0.id().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .context("kill -TERM")?;
        } else {
            child.0.kill().context("SIGKILL")?;
        }
        let took = settled(&mut shards, &args.controller, &names[i], false).await?;
        let _ = child.0.wait();
        drop(child);
        eprintln!(
            "{} r{i}: shards held by the others after {}",
            if graceful { "SIGTERM" } else { "SIGKILL" },
            ms(took)
        );
        if graceful { &mut stops } else { &mut kills }.push(took);
        children[i] = Some(start(bin, &server, &names[i])?);
        settled(&mut shards, &args.controller, &names[i], true).await?;
    }
    drop(children);
    drop(etcd);
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!("| stop | rounds | handoff p50 | max | goal | verdict |");
    println!("|---|---|---|---|---|---|");
    for (what, mut v, goal) in [("kill -9", kills, GOAL_KILL), ("SIGTERM", stops, GOAL_STOP)] {
        v.sort();
        let max = v.last().copied().unwrap_or_default();
        println!(
            "| {what} | {} | {} | {} | ≤ {} | {} |",
            v.len(),
            ms(quantile(&v, 0.5)),
            ms(max),
            ms(goal),
            if max <= goal { "met" } else { "missed" }
        );
    }
    Ok(())
}
