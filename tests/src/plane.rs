//! One control plane for an end-to-end test, put together by [`Plane::builder`]: a real etcd,
//! the broker (in-process or the real binary), and whichever services the test needs — the
//! scheduler, the gc and the Job controller in-process, node agents in-process or as the
//! real binary — all stopped when the [`Plane`] is dropped. Each in-process service serves
//! metrics on a port of its own ([`Plane::broker_metrics`], [`Plane::node_metrics`], ...);
//! the in-process broker can be stopped and restarted ([`Plane::broker_mut`]), a node agent
//! stopped and started again on the same data ([`Plane::start_node`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bosun_api::v1::logs_client::LogsClient;
use bosun_api::v1::{self, Kind, LogsRequest};
use bosun_runtime::client::{Broker as Client, Selector};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use bosun_api::vocab::{condition, status};

use crate::{Bosun, Broker, Etcd, free_addr, temp_dir, try_wait_for, wait_for, workspace_binary};

/// How long [`PlaneBuilder::start`] and [`Plane::add_nodes`] wait for nodes to be Ready.
const READY_WAIT: Duration = Duration::from_secs(30);

/// How long [`Plane::wait_job`] waits.
const JOB_WAIT: Duration = Duration::from_secs(30);

type Tweak<C> = Box<dyn FnOnce(&mut C) + Send>;

/// What [`Plane::builder`] will start; see each method.
pub struct PlaneBuilder {
    label: String,
    broker_process: bool,
    broker_config: Option<Tweak<bosun_broker::Config>>,
    scheduler: Option<Tweak<bosun_scheduler::Config>>,
    gc: Option<Tweak<bosun_gc::Config>>,
    job_controller: Option<Tweak<bosun_job_controller::Config>>,
    cronjob_controller: Option<Tweak<bosun_cronjob_controller::Config>>,
    daemonset_controller: Option<Tweak<bosun_daemonset_controller::Config>>,
    nodes: Vec<String>,
    agent_config: Option<AgentTweak>,
    agent_processes: Vec<(usize, AgentCommand)>,
    cli_dir: Option<PathBuf>,
}

type AgentTweak = std::sync::Arc<dyn Fn(&mut bosun_node_agent::Config) + Send + Sync>;
type AgentCommand = Box<dyn FnOnce(&mut tokio::process::Command) + Send>;

impl PlaneBuilder {
    /// Runs the real `bosun-broker` binary instead of the in-process broker.
    pub fn broker_process(mut self) -> Self {
        self.broker_process = true;
        self
    }

    /// Changes the in-process broker's config (after [`Broker::config`]'s test defaults and a
    /// metrics address of its own, [`Plane::broker_metrics`]).
    pub fn broker_config(
        mut self,
        tweak: impl FnOnce(&mut bosun_broker::Config) + Send + 'static,
    ) -> Self {
        self.broker_config = Some(Box::new(tweak));
        self
    }

    /// Runs the scheduler (with the node lifecycle controller) in-process.
    pub fn scheduler(self) -> Self {
        self.scheduler_with(|_| {})
    }

    /// Runs the scheduler in-process with its config changed by `tweak`.
    pub fn scheduler_with(
        mut self,
        tweak: impl FnOnce(&mut bosun_scheduler::Config) + Send + 'static,
    ) -> Self {
        self.scheduler = Some(Box::new(tweak));
        self
    }

    /// Runs the garbage collector (and TTL-after-finished) in-process.
    pub fn gc(self) -> Self {
        self.gc_with(|_| {})
    }

    /// Runs the gc in-process with its config changed by `tweak`.
    pub fn gc_with(mut self, tweak: impl FnOnce(&mut bosun_gc::Config) + Send + 'static) -> Self {
        self.gc = Some(Box::new(tweak));
        self
    }

    /// Runs the scheduler, the gc, the Job controller and the DaemonSet controller
    /// in-process: what a Job or a DaemonSet needs to run (with nodes) and be cleaned up after.
    pub fn controllers(self) -> Self {
        self.scheduler()
            .gc()
            .job_controller()
            .daemonset_controller()
    }

    /// Runs the Job controller in-process.
    pub fn job_controller(self) -> Self {
        self.job_controller_with(|_| {})
    }

    /// Runs the Job controller in-process with its config changed by `tweak`.
    pub fn job_controller_with(
        mut self,
        tweak: impl FnOnce(&mut bosun_job_controller::Config) + Send + 'static,
    ) -> Self {
        self.job_controller = Some(Box::new(tweak));
        self
    }

    /// Runs the CronJob controller in-process (a test that moves its clock passes a clone of
    /// one in `tweak`: `c.clock = clock.clone()`).
    pub fn cronjob_controller_with(
        mut self,
        tweak: impl FnOnce(&mut bosun_cronjob_controller::Config) + Send + 'static,
    ) -> Self {
        self.cronjob_controller = Some(Box::new(tweak));
        self
    }

    /// Runs the CronJob controller in-process.
    pub fn cronjob_controller(self) -> Self {
        self.cronjob_controller_with(|_| {})
    }

    /// Runs the DaemonSet controller in-process with its config changed by `tweak`.
    pub fn daemonset_controller_with(
        mut self,
        tweak: impl FnOnce(&mut bosun_daemonset_controller::Config) + Send + 'static,
    ) -> Self {
        self.daemonset_controller = Some(Box::new(tweak));
        self
    }

    /// Runs the DaemonSet controller in-process.
    pub fn daemonset_controller(self) -> Self {
        self.daemonset_controller_with(|_| {})
    }

    /// Runs an in-process node agent for each of `names` ([`Plane::agent_config`]); `start`
    /// returns once their Nodes are Ready.
    pub fn nodes(mut self, names: &[&str]) -> Self {
        self.nodes.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Changes every in-process node agent's config (the runtime, back-offs, labels...),
    /// after [`Plane::agent_config`]'s defaults.
    pub fn agent_config(
        mut self,
        tweak: impl Fn(&mut bosun_node_agent::Config) + Send + Sync + 'static,
    ) -> Self {
        self.agent_config = Some(std::sync::Arc::new(tweak));
        self
    }

    /// Runs the real `bosun-node-agent` binary ([`Plane::command`], with `--data-dir` in the
    /// plane's directory) with the flags and environment `args` adds; it plays `nodes` nodes,
    /// and `start` returns once they are Ready.
    pub fn node_agent_process(
        mut self,
        nodes: usize,
        args: impl FnOnce(&mut tokio::process::Command) + Send + 'static,
    ) -> Self {
        self.agent_processes.push((nodes, Box::new(args)));
        self
    }

    /// Runs the `bosun` CLI ([`Plane::bosun`]) in `dir`.
    pub fn cli_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cli_dir = Some(dir.into());
        self
    }

    /// Starts etcd, the broker and every service asked for; returns once the broker answers
    /// and every node is Ready.
    pub async fn start(self) -> Plane {
        let etcd = Etcd::start().await;
        let (broker, broker_metrics) = if self.broker_process {
            (Broker::spawn_process(&etcd).await, None)
        } else {
            let mut config = Broker::config(&etcd);
            config.metrics.metrics_listen = Some(free_addr());
            if let Some(tweak) = self.broker_config {
                tweak(&mut config);
            }
            let metrics = config.metrics.metrics_listen;
            (Broker::start_with(config).await, metrics)
        };
        let url = broker.url();
        let client = Client::connect(&url).await.expect("connect to the broker");
        let mut bosun = Bosun::new(&url);
        if let Some(dir) = self.cli_dir {
            bosun = bosun.in_dir(dir);
        }
        let mut plane = Plane {
            shutdown: CancellationToken::new(),
            children: Vec::new(),
            client,
            bosun,
            url,
            dir: temp_dir(&self.label),
            nodes: Vec::new(),
            agent_tweak: self.agent_config,
            broker_metrics,
            node_metrics: HashMap::new(),
            scheduler_metrics: None,
            gc_metrics: None,
            job_controller_metrics: None,
            broker,
            _etcd: etcd,
        };
        if let Some(tweak) = self.scheduler {
            plane.add_scheduler_with(tweak);
        }
        if let Some(tweak) = self.gc {
            let mut c = bosun_gc::Config::for_server(&plane.url);
            c.metrics.metrics_listen = Some(free_addr());
            tweak(&mut c);
            plane.gc_metrics = c.metrics.metrics_listen;
            plane.spawn("gc", bosun_gc::run(c, plane.shutdown.clone()));
        }
        if let Some(tweak) = self.job_controller {
            let mut c = bosun_job_controller::Config::for_server(&plane.url);
            c.metrics.metrics_listen = Some(free_addr());
            tweak(&mut c);
            plane.job_controller_metrics = c.metrics.metrics_listen;
            plane.spawn(
                "job controller",
                bosun_job_controller::run(c, plane.shutdown.clone()),
            );
        }
        if let Some(tweak) = self.cronjob_controller {
            let mut c = bosun_cronjob_controller::Config::for_server(&plane.url);
            tweak(&mut c);
            plane.spawn(
                "cronjob controller",
                bosun_cronjob_controller::run(c, plane.shutdown.clone()),
            );
        }
        if let Some(tweak) = self.daemonset_controller {
            let mut c = bosun_daemonset_controller::Config::for_server(&plane.url);
            tweak(&mut c);
            plane.spawn(
                "daemonset controller",
                bosun_daemonset_controller::run(c, plane.shutdown.clone()),
            );
        }
        let mut process_nodes = 0;
        for (i, (nodes, args)) in self.agent_processes.into_iter().enumerate() {
            let mut cmd = plane.command("bosun-node-agent", &format!("node-agent-{i}"));
            cmd.arg("--data-dir")
                .arg(plane.dir.join(format!("node-agent-{i}")));
            args(&mut cmd);
            plane
                .children
                .push(cmd.spawn().expect("bosun-node-agent runs"));
            process_nodes += nodes;
        }
        if process_nodes > 0 {
            plane.wait_ready_count(process_nodes).await;
        }
        let names: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        plane.add_nodes(&names).await;
        plane
    }
}

/// etcd, a broker and the services a test asked for ([`Plane::builder`]). Dropping it stops
/// them all; its directory is removed unless the test failed (the logs stay for reading).
pub struct Plane {
    // Fields drop in this order: the service processes first, then the broker, then etcd.
    shutdown: CancellationToken,
    children: Vec<tokio::process::Child>,
    client: Client,
    bosun: Bosun,
    url: String,
    dir: PathBuf,
    nodes: Vec<String>,
    agent_tweak: Option<AgentTweak>,
    broker_metrics: Option<SocketAddr>,
    node_metrics: HashMap<String, SocketAddr>,
    scheduler_metrics: Option<SocketAddr>,
    gc_metrics: Option<SocketAddr>,
    job_controller_metrics: Option<SocketAddr>,
    broker: Broker,
    _etcd: Etcd,
}

impl Plane {
    /// A plane with only etcd and the in-process broker until more is asked for; `label`
    /// names its scratch directory.
    pub fn builder(label: &str) -> PlaneBuilder {
        PlaneBuilder {
            label: format!("plane-{label}"),
            broker_process: false,
            broker_config: None,
            scheduler: None,
            gc: None,
            job_controller: None,
            cronjob_controller: None,
            daemonset_controller: None,
            nodes: Vec::new(),
            agent_config: None,
            agent_processes: Vec::new(),
            cli_dir: None,
        }
    }

    /// A client connected to the broker.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The broker's address, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The broker under test.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The broker under test, to stop and restart ([`Broker::stop`], [`Broker::restart`]:
    /// the in-process one comes back on the same address, so [`Plane::client`] reconnects).
    pub fn broker_mut(&mut self) -> &mut Broker {
        &mut self.broker
    }

    /// The `bosun` CLI pointed at the broker.
    pub fn bosun(&self) -> &Bosun {
        &self.bosun
    }

    /// Runs `bosun ARGS` to completion.
    pub async fn run(&self, args: &[&str]) -> crate::Output {
        self.bosun.run(args).await
    }

    /// Runs `bosun ARGS`, asserts it exits 0, and returns its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        self.bosun.ok(args).await
    }

    /// A token cancelled when the plane is dropped, for a test's own background tasks.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    /// The plane's scratch directory (node data, logs, marker files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The names of the in-process nodes started so far.
    pub fn node_names(&self) -> &[String] {
        &self.nodes
    }

    /// Where the in-process broker serves its metrics.
    pub fn broker_metrics(&self) -> SocketAddr {
        self.broker_metrics
            .expect("the broker binary serves no metrics in the plane")
    }

    /// Where the in-process node agent of node `name` (started by [`PlaneBuilder::nodes`] or
    /// [`Plane::add_nodes`]) serves its metrics.
    pub fn node_metrics(&self, name: &str) -> SocketAddr {
        *self
            .node_metrics
            .get(name)
            .unwrap_or_else(|| panic!("the plane runs no node agent for {name}"))
    }

    /// Where the in-process scheduler serves its metrics.
    pub fn scheduler_metrics(&self) -> SocketAddr {
        self.scheduler_metrics.expect("the plane runs no scheduler")
    }

    /// Where the in-process gc serves its metrics.
    pub fn gc_metrics(&self) -> SocketAddr {
        self.gc_metrics.expect("the plane runs no gc")
    }

    /// Where the in-process Job controller serves its metrics.
    pub fn job_controller_metrics(&self) -> SocketAddr {
        self.job_controller_metrics
            .expect("the plane runs no job controller")
    }

    /// The config of an in-process node agent for node `name`: data under the plane's
    /// directory ([`Plane::node_dir`]), 200 ms heartbeats, back-offs from 200 ms to 2 s, metrics
    /// on a free port, then the builder's [`PlaneBuilder::agent_config`] changes.
    pub fn agent_config(&self, name: &str) -> bosun_node_agent::Config {
        let mut c = bosun_node_agent::Config::new(&self.url, name);
        c.data_dir = Some(self.node_dir(name));
        c.metrics.metrics_listen = Some(free_addr());
        c.heartbeat_interval = Duration::from_millis(200);
        c.backoff_base = Duration::from_millis(200);
        c.backoff_cap = Duration::from_secs(2);
        if let Some(tweak) = &self.agent_tweak {
            tweak(&mut c);
        }
        c
    }

    /// Runs node agents for `names` in-process (until the plane is dropped) and waits until
    /// their Nodes are Ready.
    pub async fn add_nodes(&mut self, names: &[&str]) {
        for name in names {
            let config = self.agent_config(name);
            if let Some(metrics) = config.metrics.metrics_listen {
                self.node_metrics.insert(name.to_string(), metrics);
            }
            self.spawn(
                "node agent",
                bosun_node_agent::run(config, self.shutdown.child_token()),
            );
            self.nodes.push(name.to_string());
        }
        for name in names {
            self.wait_ready(name).await;
        }
    }

    /// Starts the in-process node agent of node `name` ([`Plane::agent_config`]) and waits
    /// until its Node is Ready; it runs until [`Agent::stop`] (or the plane's end), and can be
    /// started again on the same data.
    pub async fn start_node(&self, name: &str) -> Agent {
        let agent = self.start_agent(self.agent_config(name));
        self.wait_ready(name).await;
        agent
    }

    /// Starts a node agent in-process with `config`, stopped by [`Agent::stop`] (or with the
    /// plane).
    pub fn start_agent(&self, config: bosun_node_agent::Config) -> Agent {
        let shutdown = self.shutdown.child_token();
        let task = tokio::spawn(bosun_node_agent::run(config, shutdown.clone()));
        Agent { shutdown, task }
    }

    /// The real `binary` (a workspace binary) with `--server <broker>`, no inherited
    /// `RUST_LOG` or OTLP endpoint, stdout discarded, stderr appended to `<log>.log` in the
    /// plane's directory, killed when dropped.
    pub fn command(&self, binary: &str, log: &str) -> tokio::process::Command {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{log}.log")))
            .expect("log file");
        let mut cmd = tokio::process::Command::new(workspace_binary(binary));
        cmd.env_remove("RUST_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .args(["--server", &self.url])
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true);
        cmd
    }

    /// Runs the scheduler in-process from now on (for a test that looks at the plane
    /// before any scheduler ran; else [`PlaneBuilder::scheduler`]).
    pub fn add_scheduler(&mut self) {
        self.add_scheduler_with(|_| {});
    }

    fn add_scheduler_with(&mut self, tweak: impl FnOnce(&mut bosun_scheduler::Config)) {
        let mut c = bosun_scheduler::Config::for_server(&self.url);
        c.metrics.metrics_listen = Some(free_addr());
        tweak(&mut c);
        self.scheduler_metrics = c.metrics.metrics_listen;
        self.spawn("scheduler", bosun_scheduler::run(c, self.shutdown.clone()));
    }

    /// The data directory of node `name`'s in-process agent.
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A file in the plane's directory (for pods to wait on or leave behind).
    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Creates the file `name` in the plane's directory (a pod waiting for it goes on).
    pub fn touch(&self, name: &str) {
        std::fs::write(self.dir.join(name), b"").expect("touch");
    }

    /// A shell command that waits (at most 30 s) for the file `name` ([`Plane::touch`]),
    /// then exits 0 (or 1 when it never came).
    pub fn wait_for_file(&self, name: &str) -> String {
        let file = self.file(name);
        format!("for i in $(seq 300); do [ -f {file} ] && exit 0; sleep 0.1; done; exit 1")
    }

    /// Creates every object of the YAML manifests `yaml`, as `bosun apply` would.
    pub async fn apply(&self, yaml: &str) {
        for m in bosun_api::codec::decode_manifests("test.yaml", yaml).expect("valid YAML") {
            self.client.create(m.object).await.expect("create");
        }
    }

    /// The Job `name` in `default` (panics when there is none).
    pub async fn job(&self, name: &str) -> v1::Job {
        self.client
            .get(Kind::Job, "default", name)
            .await
            .unwrap_or_else(|e| panic!("get job {name}: {e}"))
            .into_job()
            .expect("a job")
    }

    /// The pods of Job `job` in `default` (by its `job-name` label).
    pub async fn job_pods(&self, job: &str) -> Vec<v1::Pod> {
        let selector = Selector::namespace("default").labels(format!("job-name={job}"));
        self.client
            .list(Kind::Pod, &selector)
            .await
            .unwrap_or_else(|e| panic!("list the pods of job {job}: {e}"))
            .items
            .into_iter()
            .filter_map(v1::Object::into_pod)
            .collect()
    }

    /// Waits (30 s) until `ok` holds for the Job `name`; returns it. At the deadline, panics
    /// showing the Job's status and its pods as they were.
    pub async fn wait_job(&self, name: &str, ok: impl Fn(&v1::Job) -> bool) -> v1::Job {
        let waited = try_wait_for(&format!("job {name} as expected"), JOB_WAIT, || async {
            let job = self.job(name).await;
            if ok(&job) {
                Ok(job)
            } else {
                Err(format!("{:#?}", job.status))
            }
        })
        .await;
        match waited {
            Ok(job) => job,
            Err(message) => {
                let pods: Vec<(String, String)> = self
                    .job_pods(name)
                    .await
                    .into_iter()
                    .map(|p| {
                        let phase = p.status.map(|s| s.phase).unwrap_or_default();
                        (p.metadata.unwrap_or_default().name, phase)
                    })
                    .collect();
                panic!("{message}\npods: {pods:?}");
            }
        }
    }

    /// What pod `pod` in `default` printed, through the broker's Logs service (what
    /// `bosun logs` calls).
    pub async fn logs(&self, pod: &str) -> Result<String, tonic::Status> {
        let mut client = LogsClient::connect(self.url.clone())
            .await
            .expect("logs client");
        let mut stream = client
            .pod_logs(LogsRequest {
                namespace: "default".into(),
                pod: pod.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream.message().await? {
            out.extend(chunk.data);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Waits until node `name` is Ready; returns it.
    pub async fn wait_ready(&self, name: &str) -> v1::Node {
        wait_for(&format!("node {name} Ready"), READY_WAIT, || async {
            let node = self
                .client
                .get_opt(Kind::Node, "", name)
                .await
                .map_err(|e| e.to_string())?
                .and_then(|o| o.into_node());
            match node {
                Some(n) if node_ready(&n) => Ok(n),
                other => Err(format!("{other:#?}")),
            }
        })
        .await
    }

    /// Waits until `n` Nodes are Ready.
    async fn wait_ready_count(&self, n: usize) {
        wait_for(&format!("{n} nodes Ready"), READY_WAIT, || async {
            let nodes = self
                .client
                .list(Kind::Node, &Selector::all())
                .await
                .map_err(|e| e.to_string())?;
            let ready = nodes
                .items
                .iter()
                .filter(|o| o.as_node().is_some_and(node_ready))
                .count();
            if ready >= n {
                Ok(())
            } else {
                Err(format!("{ready} Ready"))
            }
        })
        .await
    }

    /// Runs `service` until the plane's shutdown; a failure is printed (the test then fails
    /// on what the service did not do).
    fn spawn<E: std::fmt::Display>(
        &self,
        what: &'static str,
        service: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        tokio::spawn(async move {
            if let Err(e) = service.await {
                eprintln!("{what} failed: {e}");
            }
        });
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether the node's Ready condition is True.
pub fn node_ready(node: &v1::Node) -> bool {
    node.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == condition::READY && c.status == status::TRUE)
    })
}

/// An in-process node agent started by [`Plane::start_agent`].
pub struct Agent {
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), bosun_node_agent::Error>>,
}

impl Agent {
    /// Stops the agent and asserts it ran cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let r = self.task.await.expect("agent task");
        r.expect("agent ran cleanly");
    }
}
