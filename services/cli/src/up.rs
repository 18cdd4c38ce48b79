//! `bosun up`: etcd as a child process, then the broker and every other service in this
//! process, until Ctrl-C (SIGINT) or SIGTERM; etcd is stopped on the way out. With `-f` the
//! manifests are decoded before anything starts (a bad one stops `up` at once) and applied
//! once the broker answers. Beside the broker run the garbage collector, the scheduler (with
//! the node lifecycle controller), the Job controller (unless `--no-job-controller`), the
//! CronJob controller (unless `--no-cronjob-controller`), the DaemonSet controller (unless
//! `--no-daemonset-controller`) and
//! `--nodes` local node agents (`node-1`..), each with its data under
//! `<data-dir>/nodes/<name>` and its own logs port.
//!
//! Each service's configuration is that service's own defaults ([`Services::new`]) with the
//! few settings `up` decides, all validated before any port is bound. Nothing `up` started
//! outlives it, however it ends: etcd and the pods of its nodes are tied to it by lifelines
//! (`bosun_runtime::lifeline`), and the data folder is locked ([`lock`]) so that a second
//! `up` on it either says which one runs and how to stop it, or, when that one died, stops
//! whatever it left behind and takes over.

mod lock;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use bosun_api::codec::Manifest;
use bosun_api::v1::{Kind, ListRequest};
use bosun_api::vocab::DEFAULT_BROKER_LISTEN;
use bosun_runtime::config::InvalidConfig;
use bosun_runtime::etcd_process::{EtcdConfig, EtcdProcess};
use clap::Args;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Ctx;
use crate::apply::{self, DryRun, Mode};

/// `bosun up` flags.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Where etcd and the local nodes keep their data, and `up.lock` says which `bosun up`
    /// runs on it (one at a time).
    #[arg(long, env = "BOSUN_DATA_DIR", default_value = ".bosun")]
    pub data_dir: PathBuf,
    /// The broker's gRPC address.
    #[arg(long, env = "BOSUN_LISTEN", default_value = DEFAULT_BROKER_LISTEN)]
    pub listen: SocketAddr,
    /// etcd's client address.
    #[arg(long, env = "BOSUN_ETCD_CLIENT", default_value = "127.0.0.1:2379")]
    pub etcd_client: SocketAddr,
    /// etcd's peer address.
    #[arg(long, env = "BOSUN_ETCD_PEER", default_value = "127.0.0.1:2380")]
    pub etcd_peer: SocketAddr,
    /// Where the broker serves Prometheus metrics.
    #[arg(long, env = "BOSUN_METRICS_LISTEN", default_value = "127.0.0.1:9440")]
    pub metrics_listen: SocketAddr,
    /// The etcd binary (default: BOSUN_ETCD_BIN, `etcd` on PATH, /usr/bin/etcd).
    #[arg(long)]
    pub etcd_bin: Option<PathBuf>,
    /// Manifests to apply once the plane is up: files or folders, as for `bosun apply -f`
    /// (repeatable).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Descend into subfolders of folders given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// How many local node agents to run (`node-1`..`node-N`); 0 for none.
    #[arg(long, env = "BOSUN_UP_NODES", default_value_t = 3)]
    pub nodes: u32,
    /// The container runtime of the local nodes.
    #[arg(
        long,
        env = "BOSUN_UP_NODE_RUNTIME",
        value_enum,
        default_value = "process"
    )]
    pub node_runtime: bosun_node_agent::RuntimeKind,
    /// Do not run the Job controller in this process (Jobs are then stored but create no
    /// pods, e.g. while a `bosun-job-controller` runs elsewhere).
    #[arg(long, env = "BOSUN_UP_NO_JOB_CONTROLLER")]
    pub no_job_controller: bool,
    /// Do not run the CronJob controller in this process (CronJobs are then stored but
    /// start no Jobs, e.g. while a `bosun-cronjob-controller` runs elsewhere).
    #[arg(long, env = "BOSUN_UP_NO_CRONJOB_CONTROLLER")]
    pub no_cronjob_controller: bool,
    /// Do not run the DaemonSet controller in this process (DaemonSets are then stored but
    /// create no pods, e.g. while a `bosun-daemonset-controller` runs elsewhere).
    #[arg(long, env = "BOSUN_UP_NO_DAEMONSET_CONTROLLER")]
    pub no_daemonset_controller: bool,
}

/// How long the local nodes may take to register once the broker answers.
const NODES_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the broker may take to answer its first call after it was started.
const BROKER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Says what to do when a port `up` needs is taken: which process holds it, when it can be
/// seen (`/proc`), and the flag that picks another address.
pub fn check_port_free(addr: SocketAddr, what: &str, flag: &str) -> anyhow::Result<()> {
    std::net::TcpListener::bind(addr).map(drop).map_err(|e| {
        let holder = match port_holder(addr) {
            Some((pid, name)) => {
                format!("it is held by pid {pid} ({name}): stop it with `kill {pid}`")
            }
            None => "stop whatever listens there".to_string(),
        };
        anyhow::anyhow!(
            "{addr} ({what}) is not free: {e}; {holder}, or choose another address with {flag}"
        )
    })
}

/// The process listening on `addr` (pid and command name), read from `/proc/net/tcp*` and
/// the processes' open sockets; `None` when not visible (another user's process, no /proc).
pub fn port_holder(addr: SocketAddr) -> Option<(u32, String)> {
    let table = if addr.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let text = std::fs::read_to_string(table).ok()?;
    let inode = text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        let listening = *state == "0A";
        let bound = proc_net_addr(local)?;
        // A listener on 0.0.0.0 (or ::) holds the port on every address.
        let covers = bound == addr || (bound.ip().is_unspecified() && bound.port() == addr.port());
        (listening && covers).then(|| inode.to_string())
    })?;
    let socket = format!("socket:[{inode}]");
    for pid in bosun_runtime::procfs::pids() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == socket.as_str())
        });
        if holds {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            return Some((pid, name.trim().to_string()));
        }
    }
    None
}

/// A `/proc/net/tcp` address (`0100007F:0927`: the address as the kernel's words print
/// in this machine's byte order, then the port) as a socket address.
fn proc_net_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for i in (0..ip.len()).step_by(8) {
        let word = u32::from_str_radix(ip.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip: std::net::IpAddr = match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok()?.into(),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The configuration of every service `up` runs: each starts from that service's own
/// defaults, with only what `up` decides changed.
#[derive(Debug, Clone)]
pub struct Services {
    pub broker: bosun_broker::Config,
    pub gc: bosun_gc::Config,
    pub scheduler: bosun_scheduler::Config,
    /// `None` with `--no-job-controller`.
    pub job_controller: Option<bosun_job_controller::Config>,
    /// `None` with `--no-cronjob-controller`.
    pub cronjob_controller: Option<bosun_cronjob_controller::Config>,
    /// `None` with `--no-daemonset-controller`.
    pub daemonset_controller: Option<bosun_daemonset_controller::Config>,
    pub nodes: Vec<bosun_node_agent::Config>,
}

impl Services {
    /// The services for `args`, talking to the broker at `--listen` and etcd at
    /// `--etcd-client`.
    pub fn new(args: &UpArgs) -> Services {
        let broker_url = format!("http://{}", args.listen);
        let mut broker = bosun_broker::Config::for_etcd(&format!("http://{}", args.etcd_client));
        broker.listen = args.listen;
        // The etcd `bosun up` starts batches up to its own limit.
        broker.etcd_max_txn_ops = bosun_runtime::etcd_process::MAX_TXN_OPS;
        broker.metrics.metrics_listen = Some(args.metrics_listen);
        let nodes = node_names(args.nodes)
            .iter()
            .map(|name| {
                let mut config = bosun_node_agent::Config::new(&broker_url, name);
                config.runtime = args.node_runtime;
                config.data_dir = Some(args.data_dir.join("nodes").join(name));
                // Pods are part of the plane: they stop with it, even after `kill -9`.
                config.pods_die_with_agent = true;
                config
            })
            .collect();
        Services {
            broker,
            gc: bosun_gc::Config::for_server(&broker_url),
            scheduler: bosun_scheduler::Config::for_server(&broker_url),
            job_controller: (!args.no_job_controller)
                .then(|| bosun_job_controller::Config::for_server(&broker_url)),
            cronjob_controller: (!args.no_cronjob_controller)
                .then(|| bosun_cronjob_controller::Config::for_server(&broker_url)),
            daemonset_controller: (!args.no_daemonset_controller)
                .then(|| bosun_daemonset_controller::Config::for_server(&broker_url)),
            nodes,
        }
    }

    /// Points every service at the broker at `url` (once it listens: `--listen` may name
    /// port 0).
    fn point_at(&mut self, url: &str) {
        url.clone_into(&mut self.gc.broker.server);
        url.clone_into(&mut self.scheduler.broker.server);
        if let Some(jobs) = &mut self.job_controller {
            url.clone_into(&mut jobs.broker.server);
        }
        if let Some(cronjobs) = &mut self.cronjob_controller {
            url.clone_into(&mut cronjobs.broker.server);
        }
        if let Some(daemonsets) = &mut self.daemonset_controller {
            url.clone_into(&mut daemonsets.broker.server);
        }
        for node in &mut self.nodes {
            url.clone_into(&mut node.broker.server);
        }
    }

    /// Every service's own checks.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.broker.validate()?;
        self.gc.validate()?;
        self.scheduler.validate()?;
        if let Some(jobs) = &self.job_controller {
            jobs.validate()?;
        }
        if let Some(cronjobs) = &self.cronjob_controller {
            cronjobs.validate()?;
        }
        if let Some(daemonsets) = &self.daemonset_controller {
            daemonsets.validate()?;
        }
        self.nodes.iter().try_for_each(|n| n.validate())
    }
}

impl UpArgs {
    /// Refuses flags `up` cannot run with: the same address for two of its listeners.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let addrs = [
            ("--listen", self.listen),
            ("--etcd-client", self.etcd_client),
            ("--etcd-peer", self.etcd_peer),
            ("--metrics-listen", self.metrics_listen),
        ];
        for (i, (flag, addr)) in addrs.iter().enumerate() {
            if let Some((other, _)) = addrs[..i]
                .iter()
                .find(|(_, a)| a == addr && addr.port() != 0)
            {
                return Err(InvalidConfig::new(
                    flag,
                    addr,
                    format!("is also {other}; give each its own port"),
                ));
            }
        }
        Ok(())
    }
}

/// Where the plane listens, for the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub etcd: String,
    pub data_dir: PathBuf,
    pub broker: String,
    pub metrics: SocketAddr,
    /// The local nodes' names (empty: none).
    pub nodes: Vec<String>,
    /// Their container runtime, as `--node-runtime` spells it.
    pub node_runtime: String,
    /// Whether the Job controller runs in this process.
    pub job_controller: bool,
    /// Whether the CronJob controller runs in this process.
    pub cronjob_controller: bool,
    /// Whether the DaemonSet controller runs in this process.
    pub daemonset_controller: bool,
}

/// The names of the `count` local nodes.
pub fn node_names(count: u32) -> Vec<String> {
    (1..=count).map(|i| format!("node-{i}")).collect()
}

/// The lines `up` prints once everything answers: where each part listens and how to use it.
pub fn banner(e: &Endpoints) -> String {
    let data = e.data_dir.display();
    format!(
        "etcd      {etcd}   (data in {data}/etcd, log in {data}/etcd.log)\n\
         broker    {broker}\n\
         metrics   http://{metrics}/metrics\n\
         scheduler running (with the node lifecycle controller)\n\
         {jobs}\
         {cronjobs}\
         {daemonsets}\
         {nodes}\
         \n\
         bosun is up. From another terminal:\n\
         \x20 export BOSUN_SERVER={broker}\n\
         \x20 bosun get jobs\n\
         \x20 bosun apply -f my-job.yaml\n\
         Ctrl-C stops everything.\n",
        etcd = e.etcd,
        broker = e.broker,
        metrics = e.metrics,
        jobs = if e.job_controller {
            "jobs      the Job controller is running\n"
        } else {
            "jobs      no Job controller (--no-job-controller): Jobs are stored but create no pods\n"
        },
        cronjobs = if e.cronjob_controller {
            "cronjobs  the CronJob controller is running\n"
        } else {
            "cronjobs  no CronJob controller (--no-cronjob-controller): CronJobs start no Jobs\n"
        },
        daemonsets = if e.daemonset_controller {
            "daemonsets the DaemonSet controller is running\n"
        } else {
            "daemonsets no DaemonSet controller (--no-daemonset-controller): DaemonSets create no pods\n"
        },
        nodes = if e.nodes.is_empty() {
            "nodes     none (--nodes 0); start bosun-node-agent to run pods\n".to_string()
        } else {
            format!(
                "nodes     {} ({} runtime, data in {data}/nodes/<name>)\n",
                e.nodes.join(", "),
                e.node_runtime
            )
        },
    )
}

/// Runs `bosun up` until SIGINT or SIGTERM.
pub async fn up(ctx: &mut Ctx<'_>, args: UpArgs) -> anyhow::Result<i32> {
    let shutdown = bosun_runtime::shutdown::shutdown_signal();
    up_until(ctx, args, shutdown).await
}

/// Runs `bosun up` until `shutdown` is cancelled (what tests call).
pub async fn up_until(
    ctx: &mut Ctx<'_>,
    args: UpArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    // Everything that can be checked before a process starts is checked first.
    args.validate().context("bosun up: nothing was started")?;
    let services = Services::new(&args);
    services
        .validate()
        .context("bosun up: nothing was started")?;
    let manifests = if args.filenames.is_empty() {
        Vec::new()
    } else {
        apply::read_manifests(ctx, &args.filenames, args.recursive, Mode::Apply)
            .await
            .context("bosun up -f: nothing was started")?
    };

    // The data folder is ours; what a dead owner left running goes first.
    let me = lock::Record {
        pid: std::process::id(),
        started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ..lock::Record::default()
    };
    let (mut lock, previous) = lock::DataDirLock::take(&args.data_dir, me)?;
    if let Some(previous) = previous {
        take_over(ctx, &previous).await?;
    }

    check_port_free(args.listen, "the broker", "--listen")?;
    check_port_free(args.etcd_client, "etcd clients", "--etcd-client")?;
    check_port_free(args.etcd_peer, "etcd peers", "--etcd-peer")?;
    check_port_free(args.metrics_listen, "metrics", "--metrics-listen")?;

    let mut config = EtcdConfig::new(args.data_dir.join("etcd"), args.etcd_client, args.etcd_peer);
    config.binary = args.etcd_bin.clone();
    config.log_file = Some(args.data_dir.join("etcd.log"));
    let etcd = EtcdProcess::start(config)
        .await
        .context("cannot start etcd")?;
    lock.record_etcd(etcd.pid(), &etcd.config().data_dir)?;
    let result = serve(ctx, &args, services, &etcd, manifests, shutdown.clone()).await;
    // Whatever happened, nothing outlives `up`.
    shutdown.cancel();
    etcd.stop().await;
    lock.release();
    let code = result?;
    writeln!(ctx.err, "stopped: broker and etcd are down")?;
    Ok(code)
}

/// Stops what a previous `up` on this data folder, now gone, left running: its etcd, if its
/// lifeline missed it. (Its pods are re-adopted by the local nodes, and die with this `up`.)
async fn take_over(ctx: &mut Ctx<'_>, previous: &lock::Record) -> anyhow::Result<()> {
    if let (Some(pid), Some(dir)) = (previous.etcd_pid, &previous.etcd_data_dir)
        && bosun_runtime::etcd_process::kill_leftover(pid, dir)
            .await
            .context("cannot check for an etcd left by a previous bosun up")?
    {
        writeln!(
            ctx.err,
            "the previous bosun up on this data folder (pid {}, started {}) is gone; stopped the etcd it left running (pid {pid})",
            previous.pid, previous.started
        )?;
    }
    Ok(())
}

/// Starts the broker on a running etcd, applies `manifests`, prints the banner, and waits
/// for `shutdown` (or the broker failing).
async fn serve(
    ctx: &mut Ctx<'_>,
    args: &UpArgs,
    mut services: Services,
    etcd: &EtcdProcess,
    manifests: Vec<Manifest>,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (the broker); choose another address with --listen",
                args.listen
            )
        })?;
    let broker_url = format!("http://{}", listener.local_addr()?);
    services.point_at(&broker_url);
    let mut broker = tokio::spawn(bosun_broker::run_with_listener(
        services.broker,
        listener,
        shutdown.clone(),
    ));

    // The broker answering is what "up" means; it may also fail first (metrics port, etcd).
    tokio::select! {
        ready = wait_for_broker(&broker_url) => ready?,
        ended = &mut broker => return broker_ended(ended),
        () = shutdown.cancelled() => return broker_ended(broker.await),
    }

    // The garbage collector runs beside the broker, stopping with it.
    let gc_shutdown = shutdown.child_token();
    let gc = tokio::spawn(bosun_gc::run(services.gc, gc_shutdown.clone()));
    let _stop_gc = gc_shutdown.drop_guard();
    tokio::spawn(async move {
        match gc.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, "the garbage collector stopped"),
            Err(err) => tracing::error!(%err, "the garbage collector task failed"),
        }
    });

    // The scheduler (and node lifecycle controller), the Job controller, then the local nodes.
    spawn_service(
        "the scheduler",
        bosun_scheduler::run(services.scheduler, shutdown.child_token()),
    );
    if let Some(config) = services.job_controller {
        spawn_service(
            "the job controller",
            bosun_job_controller::run(config, shutdown.child_token()),
        );
    }
    if let Some(config) = services.cronjob_controller {
        spawn_service(
            "the cronjob controller",
            bosun_cronjob_controller::run(config, shutdown.child_token()),
        );
    }
    if let Some(config) = services.daemonset_controller {
        spawn_service(
            "the daemonset controller",
            bosun_daemonset_controller::run(config, shutdown.child_token()),
        );
    }
    let nodes = node_names(args.nodes);
    for config in services.nodes {
        spawn_service(
            "a node agent",
            bosun_node_agent::run(config, shutdown.child_token()),
        );
    }
    wait_for_nodes(&broker_url, &nodes).await?;

    let applied = if manifests.is_empty() {
        0
    } else {
        writeln!(
            ctx.out,
            "applying {} object(s) from {}:",
            manifests.len(),
            args.filenames.join(", ")
        )?;
        ctx.server.clone_from(&broker_url);
        ctx.client = None;
        match apply::apply_manifests(ctx, manifests, Mode::Apply, DryRun::None).await {
            Ok(code) => code,
            Err(e) => {
                crate::report(&mut *ctx.err, &e);
                1
            }
        }
    };
    if applied != 0 {
        writeln!(
            ctx.err,
            "some manifests were not applied (see above); the plane keeps running"
        )?;
    }
    let endpoints = Endpoints {
        etcd: etcd.endpoint(),
        data_dir: args.data_dir.clone(),
        broker: broker_url,
        metrics: args.metrics_listen,
        nodes,
        node_runtime: format!("{:?}", args.node_runtime).to_lowercase(),
        job_controller: !args.no_job_controller,
        cronjob_controller: !args.no_cronjob_controller,
        daemonset_controller: !args.no_daemonset_controller,
    };
    write!(ctx.out, "\n{}", banner(&endpoints))?;
    ctx.out.flush()?;

    // The broker returns when the shutdown fires, or early when it fails.
    broker_ended(broker.await)
}

/// Runs one of the plane's services beside the broker; its failure is logged (the plane
/// keeps running), and it stops with `up`'s shutdown.
fn spawn_service<F, E>(what: &'static str, service: F)
where
    F: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(err) = service.await {
            tracing::error!(%err, service = what, "a service of the plane stopped");
        }
    });
}

/// Waits until every local node is registered, up to [`NODES_READY_TIMEOUT`].
async fn wait_for_nodes(url: &str, nodes: &[String]) -> anyhow::Result<()> {
    if nodes.is_empty() {
        return Ok(());
    }
    let broker = bosun_runtime::client::Broker::connect(url).await?;
    let deadline = Instant::now() + NODES_READY_TIMEOUT;
    loop {
        let mut missing = Vec::new();
        for name in nodes {
            if broker.get_opt(Kind::Node, "", name).await?.is_none() {
                missing.push(name.as_str());
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the local nodes {} did not register within {NODES_READY_TIMEOUT:?}",
                missing.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Turns the broker task's end into `up`'s result.
fn broker_ended(
    ended: Result<bosun_broker::Result<()>, tokio::task::JoinError>,
) -> anyhow::Result<i32> {
    match ended {
        Ok(Ok(())) => Ok(0),
        Ok(Err(e)) => Err(anyhow::Error::new(e).context("the broker stopped")),
        Err(e) => anyhow::bail!("the broker task failed: {e}"),
    }
}

/// Waits until the broker at `url` answers a list, up to [`BROKER_READY_TIMEOUT`].
async fn wait_for_broker(url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + BROKER_READY_TIMEOUT;
    let mut pause = Duration::from_millis(20);
    loop {
        let attempt = async {
            let mut c = bosun_runtime::client::connect(url).await?;
            c.list(ListRequest {
                kind: Kind::Node as i32,
                ..Default::default()
            })
            .await?;
            anyhow::Ok(())
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!(
                    "the broker at {url} did not answer within {BROKER_READY_TIMEOUT:?}"
                )));
            }
            Err(e) => tracing::debug!(err = %e, "broker not ready yet"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_taken_port_is_a_clear_error_naming_the_flag() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = check_port_free(addr, "the broker", "--listen").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("not free") && msg.contains("--listen"),
            "{msg}"
        );
        drop(taken);
        assert!(check_port_free(addr, "the broker", "--listen").is_ok());
    }

    #[test]
    fn the_banner_says_where_everything_listens_and_how_to_use_it() {
        let text = banner(&Endpoints {
            etcd: "http://127.0.0.1:2379".into(),
            data_dir: ".bosun".into(),
            broker: "http://127.0.0.1:7440".into(),
            metrics: "127.0.0.1:9440".parse().unwrap(),
            nodes: node_names(3),
            node_runtime: "process".into(),
            job_controller: true,
            cronjob_controller: true,
            daemonset_controller: true,
        });
        for want in [
            "etcd      http://127.0.0.1:2379",
            ".bosun/etcd.log",
            "broker    http://127.0.0.1:7440",
            "metrics   http://127.0.0.1:9440/metrics",
            "export BOSUN_SERVER=http://127.0.0.1:7440",
            "bosun get jobs",
            "nodes     node-1, node-2, node-3 (process runtime",
            "scheduler",
            "jobs      the Job controller is running",
            "cronjobs  the CronJob controller is running",
            "daemonsets the DaemonSet controller is running",
            "Ctrl-C",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn without_the_job_controller_the_banner_says_jobs_create_no_pods() {
        let dir = std::path::Path::new(".bosun");
        let a = args(dir, &["--no-job-controller", "--nodes", "0"]);
        assert!(a.no_job_controller);
        assert!(!args(dir, &[]).no_job_controller);
        let text = banner(&Endpoints {
            etcd: "http://127.0.0.1:2379".into(),
            data_dir: dir.into(),
            broker: "http://127.0.0.1:7440".into(),
            metrics: "127.0.0.1:9440".parse().unwrap(),
            nodes: Vec::new(),
            node_runtime: "process".into(),
            job_controller: !a.no_job_controller,
            cronjob_controller: true,
            daemonset_controller: false,
        });
        assert!(
            text.contains("no Job controller (--no-job-controller)"),
            "{text}"
        );
        assert!(
            text.contains("no DaemonSet controller (--no-daemonset-controller)"),
            "{text}"
        );
    }

    #[test]
    fn each_service_starts_from_its_own_defaults() {
        let dir = std::path::Path::new(".bosun");
        let a = args(dir, &["--nodes", "2"]);
        let s = Services::new(&a);
        let url = format!("http://{}", a.listen);
        assert_eq!(
            s.scheduler.workers,
            bosun_scheduler::Config::default().workers
        );
        assert_eq!(s.gc.workers, bosun_gc::Config::default().workers);
        assert_eq!(
            s.broker.window_events,
            bosun_broker::Config::default().window_events
        );
        assert_eq!(
            (s.broker.listen, s.broker.metrics.metrics_listen),
            (a.listen, Some(a.metrics_listen))
        );
        assert_eq!(
            s.broker.etcd_endpoints,
            vec![format!("http://{}", a.etcd_client)]
        );
        assert_eq!(s.scheduler.broker.server, url);
        assert_eq!(
            s.job_controller.as_ref().map(|j| j.broker.server.as_str()),
            Some(url.as_str())
        );
        assert_eq!(
            s.cronjob_controller
                .as_ref()
                .map(|c| c.broker.server.as_str()),
            Some(url.as_str())
        );
        assert!(
            Services::new(&args(dir, &["--no-cronjob-controller"]))
                .cronjob_controller
                .is_none()
        );
        assert_eq!(
            s.daemonset_controller
                .as_ref()
                .map(|c| c.broker.server.as_str()),
            Some(url.as_str())
        );
        assert!(
            Services::new(&args(dir, &["--no-daemonset-controller"]))
                .daemonset_controller
                .is_none()
        );
        let defaults = bosun_node_agent::Config::default();
        for (node, name) in s.nodes.iter().zip(["node-1", "node-2"]) {
            assert_eq!(node.name.as_deref(), Some(name));
            assert_eq!(node.data_dir, Some(dir.join("nodes").join(name)));
            assert!(node.pods_die_with_agent, "pods are part of the plane");
            assert_eq!(node.heartbeat_interval, defaults.heartbeat_interval);
            assert_eq!(node.listen, defaults.listen);
        }
        assert!(s.validate().is_ok());
        let s = Services::new(&args(dir, &["--no-job-controller"]));
        assert!(s.job_controller.is_none());
        assert_eq!(s.nodes.len(), 3);
    }

    #[test]
    fn up_refuses_one_address_for_two_listeners() {
        let dir = std::path::Path::new(".bosun");
        let base = args(dir, &[]);
        type Change = fn(&mut UpArgs);
        let table: [(&str, Change, Option<&str>); 4] = [
            ("all different", |_| {}, None),
            (
                "etcd on the broker's port",
                |a| a.etcd_client = a.listen,
                Some("--etcd-client"),
            ),
            (
                "peers on the clients' port",
                |a| a.etcd_peer = a.etcd_client,
                Some("--etcd-peer"),
            ),
            (
                "metrics on the broker's port",
                |a| a.metrics_listen = a.listen,
                Some("--metrics-listen"),
            ),
        ];
        for (name, change, want) in table {
            let mut a = base.clone();
            change(&mut a);
            assert_eq!(a.validate().err().map(|e| e.flag), want, "{name}");
        }
    }

    #[tokio::test]
    async fn a_bad_setting_stops_up_before_anything_starts() {
        let dir = temp_dir("badconfig");
        let mut a = args(&dir.join("data"), &[]);
        a.metrics_listen = a.listen;
        let (result, _, _) = run_up(a, CancellationToken::new()).await;
        let msg = format!("{:#}", result.unwrap_err());
        assert!(
            msg.contains("nothing was started") && msg.contains("--metrics-listen"),
            "{msg}"
        );
        assert!(!dir.join("data").exists(), "the data folder was touched");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn proc_net_addresses_read_as_socket_addresses() {
        let table = [
            ("ipv4 loopback", "0100007F:0927", "127.0.0.1:2343"),
            ("ipv4 any", "00000000:1F90", "0.0.0.0:8080"),
            (
                "ipv6 loopback",
                "00000000000000000000000001000000:0050",
                "[::1]:80",
            ),
        ];
        for (name, text, want) in table {
            assert_eq!(
                proc_net_addr(text).map(|a| a.to_string()).as_deref(),
                Some(want),
                "{name}"
            );
        }
        assert_eq!(proc_net_addr("garbage"), None);
    }

    #[test]
    fn the_holder_of_a_port_is_named() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let (pid, _) = port_holder(addr).expect("our own listener is visible");
        assert_eq!(pid, std::process::id());
        let msg = check_port_free(addr, "the broker", "--listen")
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&format!("kill {pid}")), "{msg}");
    }

    /// A writer the test can read while `up` still holds it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn free_addr() -> SocketAddr {
        bosun_runtime::ports::free_loopback_addr().unwrap()
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bosun-up-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn args(data_dir: &std::path::Path, extra: &[&str]) -> UpArgs {
        let mut argv = vec![
            "bosun".to_string(),
            "up".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            free_addr().to_string(),
            "--etcd-client".into(),
            free_addr().to_string(),
            "--etcd-peer".into(),
            free_addr().to_string(),
            "--metrics-listen".into(),
            free_addr().to_string(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        match <crate::Cli as clap::Parser>::try_parse_from(argv)
            .unwrap()
            .command
        {
            crate::Command::Up(a) => a,
            other => panic!("parsed {other:?}"),
        }
    }

    async fn run_up(
        args: UpArgs,
        shutdown: CancellationToken,
    ) -> (anyhow::Result<i32>, Shared, Shared) {
        let (out, err) = (Shared::default(), Shared::default());
        let (mut o, mut e) = (out.clone(), err.clone());
        let mut ctx = Ctx {
            server: "http://127.0.0.1:1".into(),
            namespace_flag: None,
            all_namespaces: false,
            out: &mut o,
            err: &mut e,
            client: None,
        };
        let result = up_until(&mut ctx, args, shutdown).await;
        (result, out, err)
    }

    #[tokio::test]
    async fn a_missing_etcd_binary_says_how_to_install_it() {
        let dir = temp_dir("noetcd");
        let a = args(&dir, &["--etcd-bin", "/nonexistent/etcd"]);
        let (result, _, _) = run_up(a, CancellationToken::new()).await;
        let msg = format!("{:#}", result.unwrap_err());
        assert!(
            msg.contains("etcd not found") && msg.contains("apt-get install etcd-server"),
            "{msg}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_bad_manifest_stops_up_before_anything_starts() {
        let dir = temp_dir("badmanifest");
        let bad = dir.join("bad.yaml");
        std::fs::write(
            &bad,
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec: {bogus: 1}\n",
        )
        .unwrap();
        // The etcd binary is missing too: the manifest error must come first.
        let a = args(
            &dir,
            &[
                "--etcd-bin",
                "/nonexistent/etcd",
                "-f",
                &bad.display().to_string(),
            ],
        );
        let (result, _, err) = run_up(a, CancellationToken::new()).await;
        let msg = format!("{:#}", result.unwrap_err());
        assert!(msg.contains("nothing was started"), "{msg}");
        assert!(err.text().contains("bad.yaml"), "{}", err.text());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Whether the machine lacks etcd (the test then says so and passes).
    fn etcd_missing() -> bool {
        let missing = !std::path::Path::new("/usr/bin/etcd").exists()
            && std::env::var_os("BOSUN_ETCD_BIN").is_none();
        if missing {
            eprintln!("etcd not installed; skipping");
        }
        missing
    }

    /// Runs `up` with `a` in a task until `shutdown`, capturing what it prints.
    fn spawn_up(
        a: UpArgs,
        shutdown: CancellationToken,
    ) -> (tokio::task::JoinHandle<anyhow::Result<i32>>, Shared, Shared) {
        let (out, err) = (Shared::default(), Shared::default());
        let (mut o, mut e) = (out.clone(), err.clone());
        let task = tokio::spawn(async move {
            let mut ctx = Ctx {
                server: "http://127.0.0.1:1".into(),
                namespace_flag: None,
                all_namespaces: false,
                out: &mut o,
                err: &mut e,
                client: None,
            };
            up_until(&mut ctx, a, shutdown).await
        });
        (task, out, err)
    }

    #[tokio::test]
    async fn up_applies_the_examples_prints_how_to_use_it_and_stops_cleanly() {
        if etcd_missing() {
            return;
        }
        let dir = temp_dir("examples");
        let examples = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/manifests/examples"
        );
        let a = args(&dir, &["-f", examples]);
        let broker = format!("http://{}", a.listen);
        let shutdown = CancellationToken::new();
        let (task, out, err) = spawn_up(a, shutdown.clone());

        // The banner comes last, after every manifest was applied.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !out.text().contains("Ctrl-C stops") {
            assert!(
                Instant::now() < deadline && !task.is_finished(),
                "up never came up; out:\n{}\nerr:\n{}",
                out.text(),
                err.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut c = bosun_runtime::client::connect(&broker).await.unwrap();
        let job = c
            .get(bosun_api::v1::GetRequest {
                kind: Kind::Job as i32,
                namespace: "default".into(),
                name: "pi".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .object
            .unwrap();
        assert_eq!(job.name(), "pi");
        shutdown.cancel();
        let result = task.await.unwrap();
        assert_eq!(result.unwrap(), 0, "{}", err.text());
        let out = out.text();
        assert!(out.contains("job.batch/pi created"), "{out}");
        assert!(
            out.contains(&format!("export BOSUN_SERVER={broker}")),
            "{out}"
        );
        assert!(err.text().contains("stopped"), "{}", err.text());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn up_runs_the_example_pod_to_success_on_one_of_its_local_nodes() {
        if etcd_missing() {
            return;
        }
        let dir = temp_dir("pod");
        let pod_file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/manifests/examples/pod-hello.yaml"
        );
        let a = args(&dir, &["-f", pod_file]);
        let broker = format!("http://{}", a.listen);
        let shutdown = CancellationToken::new();
        let (task, out, err) = spawn_up(a, shutdown.clone());

        // The pod is scheduled onto a local node, runs `echo hello` and succeeds.
        let deadline = Instant::now() + Duration::from_secs(60);
        let pod = loop {
            assert!(
                Instant::now() < deadline && !task.is_finished(),
                "the pod never succeeded; out:\n{}\nerr:\n{}",
                out.text(),
                err.text()
            );
            if out.text().contains("Ctrl-C stops") {
                let c = bosun_runtime::client::Broker::connect(&broker)
                    .await
                    .unwrap();
                let pod = c
                    .get_opt(Kind::Pod, "default", "hello")
                    .await
                    .unwrap()
                    .and_then(|o| o.into_pod());
                if let Some(p) =
                    pod.filter(|p| p.status.as_ref().is_some_and(|s| s.phase == "Succeeded"))
                {
                    break p;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let node = pod.spec.unwrap().node_name;
        assert!(node_names(3).contains(&node), "ran on {node:?}");
        assert!(
            out.text().contains("nodes     node-1, node-2, node-3"),
            "{}",
            out.text()
        );
        assert!(dir.join("nodes").join(&node).exists());
        shutdown.cancel();
        assert_eq!(task.await.unwrap().unwrap(), 0, "{}", err.text());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
