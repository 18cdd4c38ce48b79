//! bosun's benchmarks. Each is one command against real etcd and real bosun processes,
//! release builds only; the figures are printed as a markdown table for bench/RESULTS.md.
//!
//! `cargo run --release -p bosun-bench -- fanout` — broker fan-out to 1, 10 and 100
//! subscribers against a direct etcd watch.
//!
//! `cargo run --release -p bosun-bench -- sched` — scheduler binds/s onto 1,000 nodes.
//!
//! `cargo run --release -p bosun-bench -- startup` — pod startup latency (create → Running)
//! at a steady 100 pods/s churn on 100 sim nodes.
//!
//! `cargo run --release -p bosun-bench -- jobs` — Job pod lifecycles/s (10,000 completions on
//! 100 sim nodes) against the etcd-bound limit, and the Job controller's memory per cached pod.
//!
//! `cargo run --release -p bosun-bench -- cronjobs` — CronJob creation skew (10,000 CronJobs,
//! 1,000 firing each minute) beside Debian's cron daemon, and the CronJob controller's memory
//! per CronJob.
//!
//! `cargo run --release -p bosun-bench -- daemonsets` — a DaemonSet on 1,000 sim nodes:
//! create → every pod Running, RollingUpdate (maxUnavailable 10%) → every pod updated, the
//! most nodes left unavailable during the update, and the controller's memory per node.
//!
//! `cargo run --release -p bosun-bench -- handoff` — shard handoff times of a scaled-out
//! controller after `kill -9` and after SIGTERM of one of its replicas.

mod cronjobs;
mod daemonsets;
mod fanout;
mod handoff;
mod jobs;
mod sched;
mod startup;
mod stats;
mod support;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc (why: `bosun_runtime::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "bosun-bench",
    about = "bosun's benchmarks (release builds only)"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Broker watch fan-out: deliveries/s, added latency over a direct etcd watch, etcd CPU.
    Fanout(fanout::Args),
    /// Scheduler throughput: binds/s of N pending pods onto 1,000 nodes.
    Sched(sched::Args),
    /// Pod startup latency p50/p99 (create → Running) at a steady churn on sim nodes.
    Startup(startup::Args),
    /// Job pod lifecycles/s vs the etcd-bound limit; Job controller memory per cached pod.
    Jobs(jobs::Args),
    /// CronJob creation skew p50/p99/max beside Debian's cron; controller memory per CronJob.
    Cronjobs(cronjobs::Args),
    /// DaemonSet create → every pod Running and RollingUpdate (10%) → every pod updated, on
    /// sim nodes; the most nodes unavailable during the update; controller memory per node.
    Daemonsets(daemonsets::Args),
    /// Shard handoff p50/max after `kill -9` and after SIGTERM of a controller replica.
    Handoff(handoff::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Fanout(args) => fanout::run(args).await,
        Bench::Sched(args) => sched::run(args).await,
        Bench::Startup(args) => startup::run(args).await,
        Bench::Jobs(args) => jobs::run(args).await,
        Bench::Cronjobs(args) => cronjobs::run(args).await,
        Bench::Daemonsets(args) => daemonsets::run(args).await,
        Bench::Handoff(args) => handoff::run(args).await,
    }
}
