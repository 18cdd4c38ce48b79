//! The end-to-end test harness: a real etcd per test ([`Etcd`]), the broker in-process
//! ([`Broker::start`], stoppable and restartable) or as the real binary
//! ([`Broker::spawn_process`]), the real `bosun` CLI as a child process ([`Bosun`]),
//! connected clients, valid objects of every kind ([`object_of`]), [`wait_for`] for waiting
//! on a condition with a deadline instead of sleeping (it returns what it waited for and says
//! what it saw on timeout), [`Plane::builder`] for a whole control plane: etcd, the
//! broker and the services a test needs, and [`Recording`] for every change the API stored
//! to some objects, from before the test changed them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bosun_broker::Config;
use bosun_runtime::client::BrokerClient;
use bosun_runtime::etcd_process::EtcdProcess;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use bosun_api::v1;
pub use plane::{Agent, Plane, PlaneBuilder, node_ready};
pub use watch::Recording;

pub mod daemonset;
pub mod ledger;
mod plane;
mod watch;

/// A free loopback address, never handed out before in this process.
pub fn free_addr() -> SocketAddr {
    bosun_runtime::ports::free_loopback_addr().expect("a free loopback port")
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(label: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "bosun-{label}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A throwaway etcd: its own data dir and ports; killed and removed on drop.
pub struct Etcd {
    process: Option<EtcdProcess>,
    dir: PathBuf,
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Etcd {
        let dir = temp_dir("etcd");
        let process =
            EtcdProcess::start_on_free_ports(&dir.join("data"), Some(dir.join("etcd.log")))
                .await
                .unwrap_or_else(|e| panic!("etcd: {e}"));
        Etcd {
            process: Some(process),
            dir,
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        self.process
            .as_ref()
            .map(|p| p.endpoint())
            .unwrap_or_default()
    }

    /// A direct etcd client (for compaction and other things only tests do).
    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint()], None)
            .await
            .expect("etcd client")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        drop(self.process.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A broker under test: in-process (stoppable, restartable on the same address) or the real
/// binary as a child process.
pub struct Broker {
    addr: SocketAddr,
    config: Config,
    running: Option<Running>,
}

enum Running {
    Task {
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<bosun_broker::Result<()>>,
    },
    Process(tokio::process::Child),
}

impl Broker {
    /// The default test config for `etcd` (short bookmark interval).
    pub fn config(etcd: &Etcd) -> Config {
        let mut c = Config::for_etcd(&etcd.endpoint());
        c.bookmark_interval = Duration::from_millis(200);
        c.etcd_max_txn_ops = bosun_runtime::etcd_process::MAX_TXN_OPS;
        c
    }

    /// Starts an in-process broker on `127.0.0.1:0`.
    pub async fn start(etcd: &Etcd) -> Broker {
        Broker::start_with(Broker::config(etcd)).await
    }

    /// Starts an in-process broker with `config` (its `listen` is replaced by a free port).
    pub async fn start_with(config: Config) -> Broker {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut broker = Broker {
            addr,
            config,
            running: None,
        };
        broker.launch(listener);
        broker
    }

    fn launch(&mut self, listener: TcpListener) {
        let shutdown = CancellationToken::new();
        let mut config = self.config.clone();
        config.listen = self.addr;
        let task = tokio::spawn(bosun_broker::run_with_listener(
            config,
            listener,
            shutdown.clone(),
        ));
        self.running = Some(Running::Task { shutdown, task });
    }

    /// Runs the real `bosun-broker` binary (built next to the test executable).
    pub async fn spawn_process(etcd: &Etcd) -> Broker {
        Broker::spawn_process_with(etcd, &[], &[]).await
    }

    /// Runs the real `bosun-broker` binary with extra flags and environment variables, and
    /// waits until it accepts connections.
    pub async fn spawn_process_with(etcd: &Etcd, args: &[&str], envs: &[(&str, &str)]) -> Broker {
        let addr = free_addr();
        let config = Broker::config(etcd);
        let child = tokio::process::Command::new(broker_binary())
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--etcd-endpoints")
            .arg(etcd.endpoint())
            .arg("--bookmark-interval")
            .arg("200ms")
            .arg("--etcd-max-txn-ops")
            .arg(config.etcd_max_txn_ops.to_string())
            .args(args)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("bosun-broker runs");
        let broker = Broker {
            addr,
            config,
            running: Some(Running::Process(child)),
        };
        let url = broker.url();
        let what = format!("bosun-broker to accept connections at {url}");
        wait_for(&what, Duration::from_secs(20), || async {
            bosun_runtime::client::connect(&url).await.map(drop)
        })
        .await;
        broker
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> BrokerClient {
        bosun_runtime::client::connect(&self.url())
            .await
            .expect("connect to the broker")
    }

    /// Stops the broker (graceful for the in-process one) and waits for it.
    pub async fn stop(&mut self) {
        match self.running.take() {
            Some(Running::Task { shutdown, task }) => {
                shutdown.cancel();
                match task.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => panic!("broker failed: {e}"),
                    Err(e) => panic!("broker task: {e}"),
                }
            }
            Some(Running::Process(mut child)) => {
                let _ = child.kill().await;
            }
            None => {}
        }
    }

    /// Stops and starts again on the same address (in-process).
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.launch(listener);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(Running::Task { shutdown, .. }) = &self.running {
            shutdown.cancel();
        }
    }
}

/// `target/<profile>/<name>`: a workspace binary, next to the directory of the test
/// executable (`target/<profile>/deps`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --workspace --bins` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// The real `bosun-broker` binary.
pub fn broker_binary() -> PathBuf {
    workspace_binary("bosun-broker")
}

/// The real `bosun` CLI binary.
pub fn bosun_binary() -> PathBuf {
    workspace_binary("bosun")
}

/// `tests/manifests` in the source tree.
pub fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// What one run of the `bosun` binary did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

/// A `bosun` command line to run as a child process against one broker.
#[derive(Debug, Clone)]
pub struct Bosun {
    server: String,
    envs: Vec<(String, String)>,
    dir: Option<PathBuf>,
}

impl Bosun {
    /// `bosun --server <server> ...`, with no `BOSUN_*`, `OTEL_*` or `RUST_LOG` inherited.
    pub fn new(server: &str) -> Bosun {
        Bosun {
            server: server.to_string(),
            envs: Vec::new(),
            dir: None,
        }
    }

    /// Runs in `dir` (so relative `-f` paths and the file names in messages are short).
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Bosun {
        self.dir = Some(dir.into());
        self
    }

    /// Adds an environment variable to every run.
    pub fn env(mut self, key: &str, value: &str) -> Bosun {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The command, ready to spawn (stdio not yet configured).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(bosun_binary());
        for var in [
            "BOSUN_SERVER",
            "BOSUN_NAMESPACE",
            "BOSUN_ALL_NAMESPACES",
            "BOSUN_OUTPUT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)))
            .arg("--server")
            .arg(&self.server)
            .args(args)
            .kill_on_drop(true);
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs `bosun ARGS` to completion (at most 30 s).
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None).await
    }

    /// Runs `bosun ARGS`, asserts it exits 0, and returns its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(out.code, 0, "bosun {args:?} failed:\n{out:#?}");
        out.stdout
    }

    /// Runs `bosun ARGS` with `stdin` piped in, to completion (at most 30 s).
    pub async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::process::Stdio;
        use tokio::io::AsyncWriteExt as _;
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("bosun runs");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin piped");
            pipe.write_all(text.as_bytes()).await.expect("write stdin");
            drop(pipe);
        }
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("bosun {args:?} did not finish within 30 s"))
            .expect("bosun output");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The Prometheus text page served at `addr` (`host:port`), if it answers.
async fn scrape(addr: impl tokio::net::ToSocketAddrs) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bosun\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok()?;
    Some(body)
}

/// The value of the unlabelled metric `name` on the Prometheus endpoint at `addr`, if served
/// yet.
pub async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    scrape(addr)
        .await?
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The sum of every sample of metric `name` (all its label sets) at `addr` (`host:port`);
/// 0 when the endpoint does not answer or has none.
pub async fn metric_sum(addr: &str, name: &str) -> f64 {
    let Some(body) = scrape(addr).await else {
        return 0.0;
    };
    body.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |total, v| total + v)
}

/// What a [`wait_for`] probe saw: done with a value, or not yet (with what it saw instead).
pub trait Probe {
    /// The value waited for.
    type Value;
    /// `Ok(value)` when done, else `Err(what was seen instead)`.
    fn seen(self) -> Result<Self::Value, String>;
}

impl Probe for bool {
    type Value = ();
    fn seen(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Probe for Option<T> {
    type Value = T;
    fn seen(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet (None)".into())
    }
}

impl<T, E: std::fmt::Display> Probe for Result<T, E> {
    type Value = T;
    fn seen(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Polls `probe` with a short backoff until it returns a value (`true`, `Some(v)`, `Ok(v)`),
/// and returns that value. At the deadline it panics saying `what` it waited for and what the
/// probe last saw (`Err(..)`'s message: make it say what was there instead).
pub async fn wait_for<F, Fut, P>(what: &str, deadline: Duration, probe: F) -> P::Value
where
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
    P: Probe,
{
    try_wait_for(what, deadline, probe)
        .await
        .unwrap_or_else(|message| panic!("{message}"))
}

/// [`wait_for`], but a timeout is returned as `Err(message)` (saying what was waited for and
/// last seen), for a caller that adds more to it before it panics.
pub async fn try_wait_for<F, Fut, P>(
    what: &str,
    deadline: Duration,
    mut probe: F,
) -> Result<P::Value, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
    P: Probe,
{
    let end = tokio::time::Instant::now() + deadline;
    let mut pause = Duration::from_millis(5);
    loop {
        let last = match probe().await.seen() {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if tokio::time::Instant::now() >= end {
            return Err(format!("waited {deadline:?} for {what}; last seen: {last}"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn meta(namespace: &str, name: &str) -> Option<v1::ObjectMeta> {
    Some(v1::ObjectMeta {
        name: name.into(),
        namespace: namespace.into(),
        ..Default::default()
    })
}

/// A one-container pod spec running `busybox true` with `restart_policy`.
pub fn pod_spec(restart_policy: &str) -> v1::PodSpec {
    v1::PodSpec {
        containers: vec![v1::Container {
            name: "main".into(),
            image: "busybox".into(),
            command: vec!["true".into()],
            ..Default::default()
        }],
        restart_policy: restart_policy.into(),
        ..Default::default()
    }
}

/// A pod template labelled `app=<app>` with [`pod_spec`].
pub fn pod_template(app: &str, restart_policy: &str) -> v1::PodTemplateSpec {
    v1::PodTemplateSpec {
        metadata: Some(v1::ObjectMeta {
            labels: [("app".to_string(), app.to_string())].into(),
            ..Default::default()
        }),
        spec: Some(pod_spec(restart_policy)),
    }
}

/// A minimal valid Pod in `namespace`.
pub fn pod(namespace: &str, name: &str) -> v1::Object {
    v1::Pod {
        metadata: meta(namespace, name),
        spec: Some(Box::new(pod_spec("Never"))),
        ..Default::default()
    }
    .into()
}

/// A minimal valid Node (cluster-scoped).
pub fn node(name: &str) -> v1::Object {
    v1::Node {
        metadata: meta("", name),
        ..Default::default()
    }
    .into()
}

/// A minimal valid Job: one pod that runs `true`, never restarted.
pub fn job(namespace: &str, name: &str) -> v1::Object {
    v1::Job {
        metadata: meta(namespace, name),
        spec: Some(v1::JobSpec {
            template: Some(pod_template(name, "Never")),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into()
}

/// A minimal valid CronJob: every minute, a [`job`]-like template.
pub fn cron_job(namespace: &str, name: &str) -> v1::Object {
    v1::CronJob {
        metadata: meta(namespace, name),
        spec: Some(v1::CronJobSpec {
            schedule: "*/1 * * * *".into(),
            job_template: Some(v1::JobTemplateSpec {
                metadata: None,
                spec: Some(v1::JobSpec {
                    template: Some(pod_template(name, "OnFailure")),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into()
}

/// A minimal valid DaemonSet selecting `app=<name>`.
pub fn daemon_set(namespace: &str, name: &str) -> v1::Object {
    v1::DaemonSet {
        metadata: meta(namespace, name),
        spec: Some(v1::DaemonSetSpec {
            selector: Some(v1::LabelSelector {
                match_labels: [("app".to_string(), name.to_string())].into(),
                ..Default::default()
            }),
            template: Some(pod_template(name, "Always")),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into()
}

/// A minimal valid ControllerRevision (revision 1, no data).
pub fn controller_revision(namespace: &str, name: &str) -> v1::Object {
    v1::ControllerRevision {
        metadata: meta(namespace, name),
        revision: 1,
        ..Default::default()
    }
    .into()
}

/// A minimal valid Event about the pod `name` in `namespace`.
pub fn event(namespace: &str, name: &str) -> v1::Object {
    v1::Event {
        metadata: meta(namespace, name),
        involved_object: Some(v1::ObjectReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        }),
        reason: "Test".into(),
        r#type: "Normal".into(),
        ..Default::default()
    }
    .into()
}

/// A node-heartbeat-style Lease.
pub fn lease(namespace: &str, name: &str) -> v1::Object {
    v1::Lease {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: namespace.into(),
            ..Default::default()
        }),
        spec: Some(v1::LeaseSpec {
            holder_identity: Some(name.into()),
            lease_duration_seconds: Some(40),
            renew_time: "2026-01-01T00:00:00.000000Z".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into()
}

/// A minimal valid object of `kind` (`namespace` is ignored for cluster-scoped kinds).
pub fn object_of(kind: v1::Kind, namespace: &str, name: &str) -> v1::Object {
    match kind {
        v1::Kind::Pod => pod(namespace, name),
        v1::Kind::Node => node(name),
        v1::Kind::Job => job(namespace, name),
        v1::Kind::CronJob => cron_job(namespace, name),
        v1::Kind::DaemonSet => daemon_set(namespace, name),
        v1::Kind::ControllerRevision => controller_revision(namespace, name),
        v1::Kind::Event => event(namespace, name),
        v1::Kind::Lease => lease(namespace, name),
        v1::Kind::Unspecified => panic!("no object of kind Unspecified"),
    }
}

/// Sets a label on an object.
pub fn with_label(mut obj: v1::Object, key: &str, value: &str) -> v1::Object {
    obj.meta_mut().labels.insert(key.into(), value.into());
    obj
}

/// Creates `obj`, panicking with the status on failure.
pub async fn create(client: &mut BrokerClient, obj: v1::Object) -> v1::Object {
    client
        .create(v1::CreateRequest {
            object: Some(obj),
            dry_run: false,
        })
        .await
        .unwrap_or_else(|s| panic!("create: {s}"))
        .into_inner()
        .object
        .expect("object")
}

/// Receives the next response of a watch within `deadline`, panicking on timeout.
pub async fn next_events(
    stream: &mut tonic::Streaming<v1::WatchResponse>,
    deadline: Duration,
) -> Result<Option<Vec<v1::WatchEvent>>, tonic::Status> {
    match tokio::time::timeout(deadline, stream.message()).await {
        Ok(r) => r.map(|o| o.map(|resp| resp.events)),
        Err(_) => panic!("no watch response within {deadline:?}"),
    }
}

/// Collects watch events until `n` non-bookmark events arrived.
pub async fn collect_events(
    stream: &mut tonic::Streaming<v1::WatchResponse>,
    n: usize,
    deadline: Duration,
) -> Vec<v1::WatchEvent> {
    let end = tokio::time::Instant::now() + deadline;
    let mut out = Vec::new();
    while out.len() < n {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        match next_events(stream, left).await {
            Ok(Some(evs)) => out.extend(
                evs.into_iter()
                    .filter(|e| e.r#type != v1::EventType::Bookmark as i32),
            ),
            Ok(None) => panic!("watch ended after {} of {n} events", out.len()),
            Err(s) => panic!("watch failed after {} of {n} events: {s}", out.len()),
        }
    }
    out
}

/// A pod's phase (`""` before anyone set one).
pub fn phase(pod: &v1::Pod) -> &str {
    pod.status.as_ref().map_or("", |s| s.phase.as_str())
}

/// A Job's status (empty before the controller wrote one).
pub fn job_status(job: &v1::Job) -> v1::JobStatus {
    job.status.clone().unwrap_or_default()
}

/// Whether the Job has condition `ty` with status True.
pub fn job_condition_true(job: &v1::Job, ty: &str) -> bool {
    job.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == ty && c.status == bosun_api::vocab::status::TRUE)
    })
}

/// The selector of Job `job`'s pods in namespace `default` (its `job-name` label).
pub fn pods_of_job(job: &str) -> bosun_runtime::client::Selector {
    bosun_runtime::client::Selector::namespace("default").labels(format!("job-name={job}"))
}

/// Declares a test file's own `Plane`: a wrapper of the shared [`Plane`] that dereferences to
/// it, so the file can add its own helpers as methods (`plane.wait_condition(..)`) and still
/// call every shared one. Doc comments given to the macro document the wrapper.
#[macro_export]
macro_rules! file_plane {
    ($(#[$doc:meta])*) => {
        $(#[$doc])*
        struct Plane($crate::Plane);

        impl std::ops::Deref for Plane {
            type Target = $crate::Plane;
            fn deref(&self) -> &$crate::Plane {
                &self.0
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::{try_wait_for, wait_for};

    #[tokio::test]
    async fn wait_for_returns_the_value_it_waited_for() {
        let polls = Cell::new(0);
        let value = wait_for("the third poll", Duration::from_secs(5), || async {
            polls.set(polls.get() + 1);
            if polls.get() == 3 {
                Ok(polls.get() * 10)
            } else {
                Err(format!("poll {}", polls.get()))
            }
        })
        .await;
        assert_eq!(value, 30);
        let some = wait_for("Some", Duration::from_secs(5), || async { Some("x") }).await;
        assert_eq!(some, "x");
        wait_for("true", Duration::from_secs(5), || async { true }).await;
    }

    #[tokio::test]
    async fn a_timeout_says_what_was_waited_for_and_what_was_last_seen() {
        let polls = Cell::new(0);
        let timeout = try_wait_for("the answer", Duration::from_millis(50), || async {
            polls.set(polls.get() + 1);
            Err::<(), _>(format!("{} wrong answers", polls.get()))
        })
        .await
        .expect_err("never answered");
        let last = polls.get();
        assert!(last > 1, "polled {last} times");
        assert_eq!(
            timeout,
            format!("waited 50ms for the answer; last seen: {last} wrong answers")
        );
        let none = try_wait_for("Some", Duration::ZERO, || async { None::<()> }).await;
        assert_eq!(
            none,
            Err("waited 0ns for Some; last seen: nothing yet (None)".into())
        );
    }

    #[tokio::test]
    #[should_panic(expected = "waited 10ms for the flag; last seen: false")]
    async fn wait_for_panics_at_its_deadline_saying_what_it_waited_for() {
        wait_for("the flag", Duration::from_millis(10), || async { false }).await;
    }
}
