//! The compose stack at scale, under faults (issue 12): several replicas of one controller
//! kind split its shards; one replica is killed (`docker kill`), one paused past its lease
//! (`docker pause`, later resumed) and one cut off the network (`docker network
//! disconnect`, later reconnected), and the work is still done exactly once.
//!
//! Real everything: the images from deploy/build-images.sh, docker-compose with the sim-node
//! overlay (deploy/docker-compose.sim.yml: 20 sim nodes in one agent), etcd, the broker, the
//! scheduler, the gc and the controllers in their own containers. Run by `deploy/chaos.sh`
//! (which builds the images and names them in `BOSUN_IMAGE`); ignored by a plain `cargo
//! test`, since it needs Docker and takes minutes.
//!
//! Checked from a pod watch ([`PodLedger`]) over the whole run: each Job's `succeeded` ends at
//! exactly its completions, no index counted twice, never two pods running for one index,
//! never more pods running than parallelism, no pod name used twice; and from the broker's
//! metrics: the paused and the disconnected replicas' stale writes were refused by the fence.
//! The handoff times (fault → the live replicas hold every shard) are printed.
//!
//! The negative control runs the same faults with the broker's fence check switched off
//! (`--unsafe-skip-fence-check`, for tests only) and expects a violation: the test can fail.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bosun_api::shard::SHARDS;
use bosun_api::v1::{self, Kind, shards_client::ShardsClient};
use bosun_runtime::client::{Broker as Client, Selector};
use bosun_tests::ledger::PodLedger;
use bosun_tests::{metric_sum, wait_for, workspace_binary};
use tokio::sync::watch;

const NS: &str = "default";
const COMPLETIONS: usize = 2000;
const PARALLELISM: usize = 50;
const SIM_DURATION: &str = "100ms";
const JOB_DEADLINE: Duration = Duration::from_secs(600);

/// A compose project of the stack and the sim-node overlay; taken down (with its volumes)
/// when dropped.
struct Compose {
    project: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl Compose {
    fn new(label: &str, env: &[(&str, &str)]) -> Compose {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        Compose {
            project: format!("bosun-chaos-{label}-{}", std::process::id()),
            files: vec![
                root.join("deploy/docker-compose.yml"),
                root.join("deploy/docker-compose.sim.yml"),
            ],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// `docker-compose -p <project> -f <file>… <args>` with the project's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("-p").arg(&self.project);
        for f in &self.files {
            cmd.arg("-f").arg(f);
        }
        cmd.args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let mut cmd = self.command(args);
        let out = cmd.output().expect("docker-compose runs");
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Container ids of `service`'s replicas.
    fn containers(&self, service: &str) -> Vec<String> {
        self.run(&["ps", "-q", service])
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The host address of replica `index` (1-based) of `service`'s `port`.
    fn port(&self, service: &str, index: usize, port: u16) -> String {
        self.run(&[
            "port",
            &format!("--index={index}"),
            service,
            &port.to_string(),
        ])
        .trim()
        .to_string()
    }

    fn network(&self) -> String {
        format!("{}_default", self.project.replace('.', ""))
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.command(&["logs", "--tail=40"]).status();
        }
        let _ = self.command(&["down", "-v", "--timeout", "2"]).output();
    }
}

fn docker(args: &[&str]) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The replicas of `controller` that hold shards, by replica name, and how many each holds.
async fn holders(
    shards: &mut ShardsClient<tonic::transport::Channel>,
    controller: &str,
) -> Vec<(String, usize)> {
    let Ok(resp) = shards.list_controllers(v1::ListControllersRequest {}).await else {
        return Vec::new();
    };
    let Some(m) = resp
        .into_inner()
        .controllers
        .into_iter()
        .find(|m| m.controller == controller)
    else {
        return Vec::new();
    };
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    for o in &m.owners {
        *by.entry(o.replica.clone()).or_default() += 1;
    }
    by.into_iter().collect()
}

/// The name of the replica running in container `id` (names are `<hostname>-<pid>`, and a
/// container's hostname is its short id), once it holds shards.
async fn replica_in(
    shards: &mut ShardsClient<tonic::transport::Channel>,
    controller: &str,
    id: &str,
) -> String {
    let start = Instant::now();
    loop {
        if let Some((name, _)) = holders(shards, controller)
            .await
            .into_iter()
            .find(|(r, _)| r.starts_with(&id[..12]))
        {
            return name;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the {controller} controller in container {id} holds no shard after a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every shard of `controller` is held, and held by `replica` or not, as
/// `holding` says; returns how long that took (a handoff, or a rejoin).
async fn settled(
    shards: &mut ShardsClient<tonic::transport::Channel>,
    controller: &str,
    replica: &str,
    holding: bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let h = holders(shards, controller).await;
        let total: usize = h.iter().map(|(_, n)| n).sum();
        let holds = h.iter().any(|(r, _)| r == replica);
        if total == SHARDS as usize && holds == holding {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the shards of the {controller} controller did not settle (replica {replica} holding: {holding}) within a minute: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn job_yaml(name: &str, indexed: bool) -> String {
    format!(
        r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  namespace: {NS}
spec:
  completionMode: {mode}
  completions: {COMPLETIONS}
  parallelism: {PARALLELISM}
  backoffLimit: 100
  template:
    metadata:
      annotations:
        bosun.dev/sim-duration: {SIM_DURATION}
    spec:
      restartPolicy: Never
      nodeSelector:
        pool: sim
      containers:
      - name: main
        image: busybox
        command: ["true"]
"#,
        mode = if indexed { "Indexed" } else { "NonIndexed" },
    )
}

/// The stack up, with `replicas` of `service` (the `controller` kind) holding its shards.
struct Stack {
    compose: Compose,
    server: String,
    metrics: String,
    client: Client,
    shards: ShardsClient<tonic::transport::Channel>,
    controller: &'static str,
    /// Container ids of the controller's replicas, and the replica name in each.
    replicas: Vec<(String, String)>,
    handoffs: Vec<(&'static str, Duration)>,
}

impl Stack {
    async fn up(
        label: &str,
        service: &str,
        controller: &'static str,
        replicas: usize,
        broker_env: &[(&str, &str)],
    ) -> Stack {
        let image = std::env::var("BOSUN_IMAGE")
            .expect("BOSUN_IMAGE names the images (deploy/chaos.sh builds them)");
        // broker-0, the one published on fixed host ports (the CLI's, and the metrics).
        let port = 17640 + (std::process::id() % 50) as u16 * 2;
        let ports = [port, port + 1].map(|p| p.to_string());
        let mut env = vec![
            ("BOSUN_IMAGE", image.as_str()),
            ("BOSUN_PORT", ports[0].as_str()),
            ("BOSUN_METRICS_PORT", ports[1].as_str()),
        ];
        env.extend_from_slice(broker_env);
        let compose = Compose::new(label, &env);
        compose.run(&["up", "-d", "--scale", &format!("{service}={replicas}")]);
        let server = format!("http://127.0.0.1:{}", ports[0]);
        let metrics = format!("127.0.0.1:{}", ports[1]);
        let client = wait_for("the broker answers", Duration::from_secs(90), || async {
            match Client::connect(&server).await {
                Ok(c) if c.list(Kind::Node, &Selector::all()).await.is_ok() => Some(c),
                _ => None,
            }
        })
        .await;
        let mut shards = ShardsClient::connect(server.clone())
            .await
            .expect("shards client");
        let ids = compose.containers(service);
        assert_eq!(ids.len(), replicas, "{replicas} replicas of {service}");
        let mut named = Vec::new();
        for id in ids {
            let name = replica_in(&mut shards, controller, &id).await;
            named.push((id, name));
        }
        wait_for("20 sim nodes Ready", Duration::from_secs(90), || async {
            let nodes = client.list(Kind::Node, &Selector::all()).await.ok()?;
            let ready = nodes
                .items
                .iter()
                .filter_map(|n| n.as_node())
                .filter(|n| bosun_tests::node_ready(n))
                .filter(|n| {
                    n.metadata
                        .as_ref()
                        .is_some_and(|m| m.name.starts_with("sim-"))
                })
                .count();
            (ready >= 20).then_some(())
        })
        .await;
        Stack {
            compose,
            server,
            metrics,
            client,
            shards,
            controller,
            replicas: named,
            handoffs: Vec::new(),
        }
    }

    /// `bosun apply -f -` of `yaml`, with the real CLI.
    fn apply(&self, yaml: &str) {
        use std::io::Write;
        let mut child = Command::new(workspace_binary("bosun"))
            .args(["--server", &self.server, "apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("bosun runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(yaml.as_bytes())
            .expect("write the manifest");
        let out = child.wait_with_output().expect("bosun apply");
        assert!(
            out.status.success(),
            "bosun apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn settled(&mut self, what: &'static str, replica: usize, holding: bool) {
        let name = self.replicas[replica].1.clone();
        let took = settled(&mut self.shards, self.controller, &name, holding).await;
        eprintln!("{what}: {took:?}");
        self.handoffs.push((what, took));
    }

    /// `docker kill` (SIGKILL) replica `i`; waits for the others to take its shards.
    async fn kill(&mut self, i: usize) {
        docker(&["kill", &self.replicas[i].0]);
        self.settled("docker kill → shards taken over", i, false)
            .await;
    }

    /// `docker pause` replica `i` until the others hold its shards, then `docker unpause`
    /// it and wait until it holds shards again.
    async fn pause_past_its_lease(&mut self, i: usize) {
        docker(&["pause", &self.replicas[i].0]);
        self.settled("docker pause → shards taken over", i, false)
            .await;
        docker(&["unpause", &self.replicas[i].0]);
        self.settled("docker unpause → rejoined", i, true).await;
    }

    /// Cuts replica `i` off the network until the others hold its shards, then reconnects
    /// it and waits until it holds shards again.
    async fn partition_past_its_lease(&mut self, i: usize) {
        let network = self.compose.network();
        docker(&["network", "disconnect", &network, &self.replicas[i].0]);
        self.settled("network disconnect → shards taken over", i, false)
            .await;
        docker(&["network", "connect", &network, &self.replicas[i].0]);
        self.settled("network reconnect → rejoined", i, true).await;
    }

    /// Writes the brokers refused as fenced (broker-0 and every `broker` replica).
    async fn fenced(&self) -> f64 {
        let name = "bosun_broker_fenced_writes_total";
        let mut total = metric_sum(&self.metrics, name).await;
        for i in 1..=self.compose.containers("broker").len() {
            total += metric_sum(&self.compose.port("broker", i, 9440), name).await;
        }
        total
    }

    /// Watches the namespace's pods into a [`PodLedger`] until the returned token is
    /// cancelled; the channel says how many pods of `count` (owner names) were seen
    /// Succeeded and the revision the ledger is complete up to.
    async fn pod_ledger(
        &self,
        count: &'static [&'static str],
    ) -> (
        watch::Receiver<(usize, i64)>,
        tokio_util::sync::CancellationToken,
        tokio::task::JoinHandle<PodLedger>,
    ) {
        let selector = Selector::namespace(NS);
        let listed = self
            .client
            .list(Kind::Pod, &selector)
            .await
            .expect("list pods");
        let mut stream = self
            .client
            .watch(Kind::Pod, &selector, listed.revision)
            .await
            .expect("watch pods");
        let (tx, rx) = watch::channel((0usize, listed.revision));
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn({
            let (client, stop) = (self.client.clone(), stop.clone());
            async move {
                let mut ledger = PodLedger::new(&listed.items, listed.revision);
                loop {
                    let ev = tokio::select! {
                        _ = stop.cancelled() => break,
                        ev = stream.next() => ev,
                    };
                    match ev {
                        Ok(Some(ev)) => {
                            ledger.apply(&ev);
                            let done = count.iter().map(|j| ledger.job(j).succeeded_total()).sum();
                            tx.send_replace((done, ledger.revision()));
                        }
                        Ok(None) | Err(_) => {
                            // Resume where the ledger is (the broker's window holds the rest).
                            stream = client
                                .watch(Kind::Pod, &selector, ledger.revision())
                                .await
                                .expect("resume the pod watch");
                        }
                    }
                }
                ledger.finish();
                ledger
            }
        });
        (rx, stop, task)
    }

    /// Stops the ledger once it has every pod event up to now.
    async fn close_ledger(
        &self,
        mut progress: watch::Receiver<(usize, i64)>,
        stop: tokio_util::sync::CancellationToken,
        task: tokio::task::JoinHandle<PodLedger>,
    ) -> PodLedger {
        let rev = self
            .client
            .list(Kind::Pod, &Selector::namespace(NS))
            .await
            .expect("list")
            .revision;
        tokio::time::timeout(
            Duration::from_secs(30),
            progress.wait_for(|(_, r)| *r >= rev),
        )
        .await
        .expect("the pod watch caught up within 30 s (bookmarks carry it)")
        .expect("the pod watch runs");
        stop.cancel();
        task.await.expect("the pod watch")
    }
}

/// Waits until `progress` says at least `n` pods were seen Succeeded.
async fn until(progress: &watch::Receiver<(usize, i64)>, n: usize) {
    let mut p = progress.clone();
    let _ = tokio::time::timeout(JOB_DEADLINE, p.wait_for(|(d, _)| *d >= n)).await;
}

const JOBS: &[&str] = &["chaos-indexed", "chaos-plain"];

/// What one run of the Job controller under faults saw.
struct Run {
    ledger: PodLedger,
    jobs: Vec<v1::Job>,
    fenced: f64,
}

async fn jobs_under_faults(label: &str, broker_env: &[(&str, &str)]) -> Run {
    let mut stack = Stack::up(label, "job-controller", "job", 3, broker_env).await;
    let (progress, stop, task) = stack.pod_ledger(JOBS).await;
    stack.apply(&job_yaml("chaos-indexed", true));
    stack.apply(&job_yaml("chaos-plain", false));
    let total = COMPLETIONS * JOBS.len();
    until(&progress, total / 10).await;
    stack.kill(0).await;
    until(&progress, total * 3 / 10).await;
    stack.pause_past_its_lease(1).await;
    until(&progress, total / 2).await;
    stack.partition_past_its_lease(2).await;
    let client = stack.client.clone();
    let jobs = wait_for("both Jobs Complete", JOB_DEADLINE, || async {
        let mut jobs = Vec::new();
        for name in JOBS {
            let job = client.get(Kind::Job, NS, name).await.ok()?.into_job()?;
            if !bosun_tests::job_condition_true(&job, "Complete") {
                return None;
            }
            jobs.push(job);
        }
        Some(jobs)
    })
    .await;
    let ledger = stack.close_ledger(progress, stop, task).await;
    for (what, took) in &stack.handoffs {
        eprintln!("handoff, {what}: {took:?}");
    }
    Run {
        ledger,
        jobs,
        fenced: stack.fenced().await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker, docker-compose and the images: run deploy/chaos.sh"]
async fn three_job_controller_replicas_count_exactly_through_kill_pause_and_partition() {
    let run = jobs_under_faults("jobs", &[]).await;
    eprintln!("stale writes refused by the fence: {}", run.fenced);
    for job in &run.jobs {
        let name = job.metadata.as_ref().expect("metadata").name.clone();
        let status = bosun_tests::job_status(job);
        assert_eq!(status.succeeded as usize, COMPLETIONS, "{name}: succeeded");
        let l = run.ledger.job(&name);
        assert_eq!(
            l.succeeded_total(),
            COMPLETIONS,
            "{name}: pods seen Succeeded"
        );
        assert!(
            l.indexes_counted_twice().is_empty(),
            "{name}: indexes counted twice: {:?}",
            l.indexes_counted_twice()
        );
        assert!(
            l.max_running <= PARALLELISM,
            "{name}: {} pods running at once",
            l.max_running
        );
        assert!(
            l.max_running_per_index <= 1,
            "{name}: two pods running for one index"
        );
        eprintln!(
            "{name}: succeeded {}, {} pods seen, at most {} running, at most {} per index",
            status.succeeded, l.pods_seen, l.max_running, l.max_running_per_index
        );
        if name == "chaos-indexed" {
            assert_eq!(status.completed_indexes, format!("0-{}", COMPLETIONS - 1));
        }
    }
    assert!(
        run.ledger.names_used_twice().is_empty(),
        "pod names reused: {:?}",
        run.ledger.names_used_twice()
    );
    assert!(run.fenced > 0.0, "no stale write was refused by the fence");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker, docker-compose and the images: run deploy/chaos.sh"]
async fn without_the_fence_check_the_same_faults_break_the_count() {
    let run = jobs_under_faults("nofence", &[("BOSUN_UNSAFE_SKIP_FENCE_CHECK", "true")]).await;
    let broken: Vec<String> = run
        .jobs
        .iter()
        .filter_map(|job| {
            let name = job.metadata.as_ref()?.name.clone();
            let l = run.ledger.job(&name);
            let status = bosun_tests::job_status(job);
            (status.succeeded as usize != COMPLETIONS
                || l.succeeded_total() != COMPLETIONS
                || !l.indexes_counted_twice().is_empty()
                || l.max_running > PARALLELISM
                || l.max_running_per_index > 1)
                .then(|| {
                    format!(
                        "{name}: succeeded {}, pods Succeeded {}, indexes twice {}, max running {}, per index {}",
                        status.succeeded,
                        l.succeeded_total(),
                        l.indexes_counted_twice().len(),
                        l.max_running,
                        l.max_running_per_index
                    )
                })
        })
        .collect();
    eprintln!("without the fence: {broken:?}");
    assert!(
        !broken.is_empty(),
        "the faults did no harm without the fence check: the fault test proves nothing"
    );
}

const CRONJOBS: usize = 20;

fn cronjob_yaml(i: usize) -> String {
    format!(
        r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: chaos-cj-{i}
  namespace: {NS}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            bosun.dev/sim-duration: 1s
        spec:
          restartPolicy: Never
          nodeSelector:
            pool: sim
          containers:
          - name: main
            image: busybox
            command: ["true"]
"#
    )
}

fn unix_minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        / 60
}

/// Sleeps until `second` past the next minute boundary... or this minute's, if still ahead.
async fn at_second(second: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let into = now.as_secs() % 60;
    let wait = if into < second {
        second - into
    } else {
        60 - into + second
    };
    tokio::time::sleep(Duration::from_secs(wait)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker, docker-compose and the images: run deploy/chaos.sh"]
async fn two_cronjob_controller_replicas_make_exactly_one_job_per_minute_through_faults() {
    let mut stack = Stack::up("cronjobs", "cronjob-controller", "cronjob", 2, &[]).await;
    for i in 0..CRONJOBS {
        stack.apply(&cronjob_yaml(i));
    }
    // Slots from the first boundary after every CronJob exists. The faults fall inside
    // minutes, one in each, a replica always left to fire at each boundary.
    let first = unix_minute() + 1;
    at_second(20).await;
    stack.pause_past_its_lease(0).await;
    at_second(20).await;
    stack.partition_past_its_lease(1).await;
    at_second(20).await;
    stack.kill(0).await;
    at_second(15).await;
    let last = unix_minute();
    let jobs = stack
        .client
        .list(Kind::Job, &Selector::namespace(NS))
        .await
        .expect("list jobs");
    let mut per: std::collections::BTreeMap<(String, u64), usize> = Default::default();
    for job in &jobs.items {
        let Some((cj, minute)) = job.name().rsplit_once('-') else {
            continue;
        };
        if let Ok(minute) = minute.parse::<u64>() {
            *per.entry((cj.to_string(), minute)).or_default() += 1;
        }
    }
    for i in 0..CRONJOBS {
        for minute in first..=last {
            let n = per
                .get(&(format!("chaos-cj-{i}"), minute))
                .copied()
                .unwrap_or(0);
            assert_eq!(n, 1, "chaos-cj-{i} at minute {minute}: {n} Jobs");
        }
    }
    eprintln!(
        "{CRONJOBS} CronJobs × {} minutes: one Job each; fenced writes {}",
        last - first + 1,
        stack.fenced().await
    );
}

const DS: &str = "chaos-ds";

fn daemonset_yaml(version: usize) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {DS}
  namespace: {NS}
spec:
  selector:
    matchLabels:
      app: {DS}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 2
  template:
    metadata:
      labels:
        app: {DS}
      annotations:
        bosun.dev/sim-duration: 24h
    spec:
      nodeSelector:
        pool: sim
      containers:
      - name: main
        image: busybox
        command: ["sleep", "86400"]
        env:
        - name: VERSION
          value: "{version}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker, docker-compose and the images: run deploy/chaos.sh"]
async fn two_daemonset_controller_replicas_never_run_two_pods_on_one_node_through_faults() {
    let mut stack = Stack::up("daemonsets", "daemonset-controller", "daemonset", 2, &[]).await;
    let (progress, stop, task) = stack.pod_ledger(&[]).await;
    let client = stack.client.clone();
    let rolled_to = |version: usize| {
        let client = client.clone();
        async move {
            wait_for(
                &format!("every sim node runs version {version}"),
                Duration::from_secs(180),
                || async {
                    let ds = client
                        .get(Kind::DaemonSet, NS, DS)
                        .await
                        .ok()?
                        .into_daemon_set()?;
                    let st = ds.status.unwrap_or_default();
                    let generation = ds.metadata.map(|m| m.generation).unwrap_or_default();
                    (st.observed_generation == generation
                        && st.desired_number_scheduled == 20
                        && st.updated_number_scheduled == 20
                        && st.number_available == 20)
                        .then_some(())
                },
            )
            .await
        }
    };
    stack.apply(&daemonset_yaml(0));
    rolled_to(0).await;
    stack.apply(&daemonset_yaml(1));
    stack.pause_past_its_lease(0).await;
    rolled_to(1).await;
    stack.apply(&daemonset_yaml(2));
    stack.partition_past_its_lease(1).await;
    rolled_to(2).await;
    stack.apply(&daemonset_yaml(3));
    stack.kill(0).await;
    rolled_to(3).await;
    let ledger = stack.close_ledger(progress, stop, task).await;
    let l = ledger.job(DS);
    assert_eq!(
        l.max_running_per_node, 1,
        "two pods of the DaemonSet ran on one node at once"
    );
    eprintln!(
        "DaemonSet: 3 rollouts over 20 nodes, {} pods seen, fenced writes {}",
        l.pods_seen,
        stack.fenced().await
    );
}
