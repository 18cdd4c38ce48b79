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
use bosun_runtime::client::{Broker as Client, Selector, WatchEvent};
use bosun_tests::ledger::PodLedger;
use bosun_tests::{wait_for, workspace_binary};
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

    fn run(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("-p").arg(&self.project);
        for f in &self.files {
            cmd.arg("-f").arg(f);
        }
        cmd.args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
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
            let _ = Command::new("docker-compose")
                .arg("-p")
                .arg(&self.project)
                .args(self.files.iter().flat_map(|f| ["-f".into(), f.clone()]))
                .args(["logs", "--tail=40"])
                .status();
        }
        let mut cmd = Command::new("docker-compose");
        cmd.arg("-p").arg(&self.project);
        for f in &self.files {
            cmd.arg("-f").arg(f);
        }
        let _ = cmd
            .args(["down", "-v", "--timeout", "2"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output();
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

/// Sums every sample of a metric (all label sets) from a Prometheus text endpoint.
async fn metric_sum(addr: &str, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return 0.0;
    };
    let _ = stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bosun\r\nConnection: close\r\n\r\n")
        .await;
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body).await;
    body.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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

/// What one run under faults saw.
struct Run {
    ledger: PodLedger,
    jobs: Vec<v1::Job>,
    fenced: f64,
    handoffs: Vec<(&'static str, Duration)>,
}

async fn run_under_faults(label: &str, broker_env: &[(&str, &str)]) -> Run {
    let image =
        std::env::var("BOSUN_IMAGE").expect("BOSUN_IMAGE names the images (deploy/chaos.sh)");
    let port = 17640 + (std::process::id() % 50) as u16 * 4;
    let mut env = vec![("BOSUN_IMAGE", image.as_str())];
    env.extend_from_slice(broker_env);
    let ports = [port, port + 1, port + 2, port + 3].map(|p| p.to_string());
    env.push(("BOSUN_PORT", &ports[0]));
    env.push(("BOSUN_PORT_LAST", &ports[0]));
    env.push(("BOSUN_METRICS_PORT", &ports[1]));
    env.push(("BOSUN_METRICS_PORT_LAST", &ports[1]));
    let compose = Compose::new(label, &env);
    compose.run(&["up", "-d", "--scale", "job-controller=3"]);
    let server = format!("http://{}", compose.port("broker", 1, 7440));
    let metrics = compose.port("broker", 1, 9440);
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
    let replicas = compose.containers("job-controller");
    assert_eq!(replicas.len(), 3, "three Job controller replicas");
    let mut names = Vec::new();
    for id in &replicas {
        names.push(replica_in(&mut shards, "job", id).await);
    }
    wait_for("20 sim nodes Ready", Duration::from_secs(90), || async {
        let nodes = client.list(Kind::Node, &Selector::all()).await.ok()?;
        let ready = nodes
            .items
            .iter()
            .filter_map(|n| n.as_node())
            .filter(|n| bosun_tests::node_ready(n))
            .count();
        (ready >= 20).then_some(())
    })
    .await;

    // The pod watch, from before the Jobs exist.
    let selector = Selector::namespace(NS);
    let listed = client.list(Kind::Pod, &selector).await.expect("list pods");
    let mut stream = client
        .watch(Kind::Pod, &selector, listed.revision)
        .await
        .expect("watch pods");
    // (pods of the two Jobs seen Succeeded, the revision the ledger is complete up to)
    let (progress_tx, progress) = watch::channel((0usize, 0i64));
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn({
        let (client, stop, selector) = (client.clone(), stop.clone(), selector.clone());
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
                        let done = if matches!(ev, WatchEvent::Bookmark(_)) {
                            progress_tx.borrow().0
                        } else {
                            ledger.job("chaos-indexed").succeeded_total()
                                + ledger.job("chaos-plain").succeeded_total()
                        };
                        progress_tx.send_replace((done, ledger.revision()));
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

    let bosun = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(workspace_binary("bosun"))
            .args(["--server", &server])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("bosun runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "bosun {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    bosun(&["apply", "-f", "-"], &job_yaml("chaos-indexed", true));
    bosun(&["apply", "-f", "-"], &job_yaml("chaos-plain", false));

    let until = |n: usize| {
        let mut p = progress.clone();
        async move {
            let _ = tokio::time::timeout(JOB_DEADLINE, p.wait_for(|(d, _)| *d >= n)).await;
        }
    };
    let mut handoffs = Vec::new();
    let network = compose.network();
    let (a, b, c) = (
        replicas[0].as_str(),
        replicas[1].as_str(),
        replicas[2].as_str(),
    );
    let (name_a, name_b, name_c) = (&names[0], &names[1], &names[2]);

    // 1. kill -9 one replica (its restart policy may bring a new process back: a new name).
    until(COMPLETIONS * 2 / 10).await;
    docker(&["kill", a]);
    handoffs.push((
        "docker kill",
        settled(&mut shards, "job", name_a, false).await,
    ));

    // 2. pause another past its lease, then resume it: the same process, which must find
    // out that it lost everything, and join again.
    until(COMPLETIONS * 6 / 10).await;
    docker(&["pause", b]);
    handoffs.push((
        "docker pause",
        settled(&mut shards, "job", name_b, false).await,
    ));
    docker(&["unpause", b]);
    handoffs.push((
        "rejoin after unpause",
        settled(&mut shards, "job", name_b, true).await,
    ));

    // 3. cut a third off the network past its lease, then reconnect it.
    until(COMPLETIONS * 10 / 10).await;
    docker(&["network", "disconnect", network.as_str(), c]);
    handoffs.push((
        "network disconnect",
        settled(&mut shards, "job", name_c, false).await,
    ));
    docker(&["network", "connect", network.as_str(), c]);
    handoffs.push((
        "rejoin after reconnect",
        settled(&mut shards, "job", name_c, true).await,
    ));

    // Both Jobs finish.
    let jobs = wait_for("both Jobs Complete", JOB_DEADLINE, || async {
        let mut jobs = Vec::new();
        for name in ["chaos-indexed", "chaos-plain"] {
            let job = client.get(Kind::Job, NS, name).await.ok()?.into_job()?;
            if !bosun_tests::job_condition_true(&job, "Complete") {
                return None;
            }
            jobs.push(job);
        }
        Some(jobs)
    })
    .await;
    // Every pod event up to now is in the ledger (bookmarks carry it past quiet spells).
    let rev = client
        .list(Kind::Pod, &selector)
        .await
        .expect("list")
        .revision;
    let mut p = progress.clone();
    tokio::time::timeout(Duration::from_secs(30), p.wait_for(|(_, r)| *r >= rev))
        .await
        .expect("the pod watch caught up within 30 s")
        .expect("the pod watch runs");
    stop.cancel();
    let ledger = watcher.await.expect("the pod watch");
    let fenced = metric_sum(&metrics, "bosun_broker_fenced_writes_total").await;
    Run {
        ledger,
        jobs,
        fenced,
        handoffs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker, docker-compose and the images: run deploy/chaos.sh"]
async fn three_job_controller_replicas_count_exactly_through_kill_pause_and_partition() {
    let run = run_under_faults("jobs", &[]).await;
    for (what, took) in &run.handoffs {
        eprintln!("handoff {what}: {took:?}");
    }
    for job in &run.jobs {
        let name = job.metadata.as_ref().unwrap().name.clone();
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
    let run = run_under_faults("nofence", &[("BOSUN_UNSAFE_SKIP_FENCE_CHECK", "true")]).await;
    let broken = run.jobs.iter().any(|job| {
        let name = job.metadata.as_ref().unwrap().name.clone();
        let l = run.ledger.job(&name);
        l.succeeded_total() != COMPLETIONS
            || !l.indexes_counted_twice().is_empty()
            || l.max_running > PARALLELISM
            || l.max_running_per_index > 1
    });
    assert!(
        broken,
        "the faults did no harm without the fence: the fault test proves nothing"
    );
}
