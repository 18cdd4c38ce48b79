//! The CLI's commands run in-process against a real etcd and the real broker (started by
//! the `bosun-tests` harness): what gets sent, what gets printed, and what a bad manifest
//! leaves behind. (Runs of the `bosun` binary as a child process live in `tests/tests/cli.rs`.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_api::v1::{self, *};
use bosun_runtime::client::BrokerClient;
use bosun_tests::{Broker, Etcd};

/// A fresh etcd and an in-process broker on it; keep it alive for the test.
struct Plane {
    _etcd: Etcd,
    broker: Broker,
}

impl Plane {
    fn url(&self) -> String {
        self.broker.url()
    }

    async fn client(&self) -> BrokerClient {
        self.broker.client().await
    }

    /// Every job in `default`, read from the broker.
    async fn jobs(&self) -> Vec<Object> {
        self.client()
            .await
            .list(ListRequest {
                kind: Kind::Job as i32,
                namespace: "default".into(),
                ..Default::default()
            })
            .await
            .expect("list jobs")
            .into_inner()
            .items
    }
}

/// Starts etcd and a broker; returns the broker URL and the plane.
async fn broker() -> (String, Plane) {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let plane = Plane {
        _etcd: etcd,
        broker,
    };
    (plane.url(), plane)
}

/// Runs `bosun ARGS` against `server`; returns (exit code, stdout, stderr).
async fn bosun(server: &str, args: &[&str]) -> (i32, String, String) {
    let mut argv = vec!["bosun", "--server", server];
    argv.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = bosun_cli::run(argv, &mut out, &mut err).await;
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

const PI: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: pi
  labels:
    app: pi
spec:
  backoffLimit: 4
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: [perl, -Mbignum=bpi, -wle, print bpi(20)]
      restartPolicy: Never
";

fn manifest_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("bosun-cli-commands-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn apply_creates_then_reports_unchanged_then_configured() {
    let (server, plane) = broker().await;
    let f = manifest_file("pi1.yaml", PI);
    let (code, out, err) = bosun(&server, &["apply", "-f", &f]).await;
    assert_eq!((code, out.as_str()), (0, "job.batch/pi created\n"), "{err}");
    let uid = plane.jobs().await[0].uid().to_string();
    assert!(!uid.is_empty());
    let (code, out, _) = bosun(&server, &["apply", "-f", &f]).await;
    assert_eq!((code, out.as_str()), (0, "job.batch/pi unchanged\n"));
    let g = manifest_file(
        "pi2.yaml",
        &PI.replace("backoffLimit: 4", "backoffLimit: 6"),
    );
    let (code, out, _) = bosun(&server, &["apply", "-f", &g]).await;
    assert_eq!((code, out.as_str()), (0, "job.batch/pi configured\n"));
    let jobs = plane.jobs().await;
    assert_eq!(jobs.len(), 1);
    let job = jobs[0].as_job().unwrap();
    assert_eq!(job.spec.as_ref().unwrap().backoff_limit, Some(6));
    assert_eq!(job.metadata.as_ref().unwrap().uid, uid, "identity kept");
}

#[tokio::test]
async fn create_of_an_existing_object_is_an_error_like_kubectl() {
    let (server, _plane) = broker().await;
    let f = manifest_file("pi3.yaml", PI);
    assert_eq!(bosun(&server, &["create", "-f", &f]).await.0, 0);
    let (code, _, err) = bosun(&server, &["create", "-f", &f]).await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error from server (AlreadyExists): jobs.batch \"pi\" already exists\n"
    );
}

#[tokio::test]
async fn a_bad_document_anywhere_means_nothing_is_written() {
    let (server, plane) = broker().await;
    let good = manifest_file("good.yaml", PI);
    let bad = manifest_file(
        "bad.yaml",
        &PI.replace("name: pi\n", "name: bad\n").replace(
            "  backoffLimit: 4\n",
            "  backoffLimit: 4\n  backoffLimit: 5\n",
        ),
    );
    let (code, out, err) = bosun(&server, &["apply", "-f", &good, "-f", &bad]).await;
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(
        err.contains("bad.yaml:") && err.contains("backoffLimit"),
        "{err}"
    );
    assert!(err.contains("nothing was applied"), "{err}");
    assert!(plane.jobs().await.is_empty());
}

#[tokio::test]
async fn get_prints_tables_names_json_and_jsonpath() {
    let (server, _plane) = broker().await;
    let f = manifest_file("pi4.yaml", PI);
    bosun(&server, &["apply", "-f", &f]).await;
    let (code, out, _) = bosun(&server, &["get", "jobs"]).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME   STATUS    COMPLETIONS   DURATION   AGE"),
        "{out}"
    );
    assert!(lines[1].starts_with("pi     Running   0/1"), "{out}");
    let (_, out, _) = bosun(&server, &["get", "job/pi", "-o", "name"]).await;
    assert_eq!(out, "job.batch/pi\n");
    let (_, out, _) = bosun(&server, &["get", "job", "pi", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "Job");
    assert_eq!(v["metadata"]["name"], "pi");
    let (_, out, _) = bosun(&server, &["get", "jobs", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "List");
    let (_, out, _) = bosun(
        &server,
        &[
            "get",
            "jobs",
            "-o",
            "jsonpath={.items[*].metadata.labels.app}",
        ],
    )
    .await;
    assert_eq!(out, "pi");
    let (_, out, _) = bosun(&server, &["get", "jobs", "-o", "yaml"]).await;
    assert!(
        out.contains("kind: List") && out.contains("name: pi"),
        "{out}"
    );
}

#[tokio::test]
async fn missing_objects_and_empty_namespaces_are_reported_like_kubectl() {
    let (server, _plane) = broker().await;
    let (code, _, err) = bosun(&server, &["get", "job", "nope"]).await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error from server (NotFound): jobs.batch \"nope\" not found\n"
    );
    let (code, out, err) = bosun(&server, &["get", "cj", "-n", "team"]).await;
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(err, "No resources found in team namespace.\n");
}

#[tokio::test]
async fn delete_removes_the_object_and_says_so() {
    let (server, plane) = broker().await;
    let f = manifest_file("pi5.yaml", PI);
    bosun(&server, &["apply", "-f", &f]).await;
    let (code, out, _) = bosun(&server, &["delete", "job", "pi"]).await;
    assert_eq!((code, out.as_str()), (0, "job.batch \"pi\" deleted\n"));
    assert!(plane.jobs().await.is_empty());
    let (code, _, err) = bosun(&server, &["delete", "job", "pi"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("NotFound"), "{err}");
    let (code, _, _) = bosun(&server, &["delete", "job", "pi", "--ignore-not-found"]).await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn describe_shows_the_job_and_its_events() {
    let (server, plane) = broker().await;
    let f = manifest_file("pi6.yaml", PI);
    bosun(&server, &["apply", "-f", &f]).await;
    let job_uid = plane.jobs().await[0].uid().to_string();
    plane
        .client()
        .await
        .create(CreateRequest {
            object: Some(
                v1::Event {
                    metadata: Some(ObjectMeta {
                        name: "pi.1".into(),
                        namespace: "default".into(),
                        ..Default::default()
                    }),
                    involved_object: Some(ObjectReference {
                        api_version: "batch/v1".into(),
                        kind: "Job".into(),
                        name: "pi".into(),
                        namespace: "default".into(),
                        uid: job_uid,
                        ..Default::default()
                    }),
                    r#type: "Normal".into(),
                    reason: "SuccessfulCreate".into(),
                    message: "Created pod: pi-x".into(),
                    count: 1,
                    ..Default::default()
                }
                .into(),
            ),
            dry_run: false,
        })
        .await
        .expect("create the event");
    let (code, out, err) = bosun(&server, &["describe", "job", "pi"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Name:"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Backoff Limit:") && l.ends_with(" 4")),
        "{out}"
    );
    assert!(
        out.contains("SuccessfulCreate") && out.contains("Created pod: pi-x"),
        "{out}"
    );
}

/// A `Write` shared with a spawned command, to read what it printed so far.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
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

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn get_watch_prints_the_list_then_each_change() {
    let (server, _plane) = broker().await;
    let f = manifest_file("pi7.yaml", PI);
    bosun(&server, &["apply", "-f", &f]).await;
    let out = Shared::default();
    let watcher = {
        let (mut o, mut e, server) = (out.clone(), Shared::default(), server.clone());
        tokio::spawn(async move {
            bosun_cli::run(
                ["bosun", "--server", &server, "get", "jobs", "-w"],
                &mut o,
                &mut e,
            )
            .await
        })
    };
    eventually("the initial list", || out.text().contains("pi ")).await;
    let g = manifest_file("other.yaml", &PI.replace("name: pi\n", "name: other\n"));
    bosun(&server, &["apply", "-f", &g]).await;
    eventually("the new job's row", || {
        out.text().lines().any(|l| l.starts_with("other "))
    })
    .await;
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_controllers_prints_a_row_per_replica_with_its_shard_ranges() {
    use bosun_api::shard::Controller;
    use bosun_runtime::shards::{Membership, MembershipConfig, connect_lazy};
    let (server, _plane) = broker().await;
    let (code, _, err) = bosun(&server, &["get", "controllers"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("No controller replicas found"), "{err}");

    let start = |replica: &str| {
        let config = MembershipConfig {
            replica: replica.into(),
            report_every: Duration::from_millis(100),
            ..MembershipConfig::new(Controller::Job)
        };
        let client = connect_lazy(&server).expect("address");
        Membership::start(client, config, &bosun_runtime::metrics::Metrics::new())
    };
    let (a, b) = (start("replica-a"), start("replica-b"));
    a.set_queue_depth(4);
    let out = bosun_tests::wait_for(
        "both replicas settled and reported",
        Duration::from_secs(10),
        || async {
            let (code, out, err) = bosun(&server, &["get", "controllers"]).await;
            let settled = a.held().borrow().tokens.len() + b.held().borrow().tokens.len() == 256;
            if code == 0 && settled && out.matches(" ms)").count() == 2 && out.contains(" 4 ") {
                Ok(out)
            } else {
                Err(format!("exit {code}, {err}\n{out}"))
            }
        },
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("CONTROLLER"), "{out}");
    assert!(
        lines[0].contains("SHARDS") && lines[0].contains("LAST HANDOFF"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    let a_share = bosun_api::shard::assigned("replica-a", &["replica-a", "replica-b"], 256);
    assert!(
        lines[1].contains(&format!("{} ({}", a_share.len(), a_share[0])),
        "{out}"
    );
    let (code, json, err) = bosun(&server, &["get", "controllers", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2), "{json}");
    a.leave().await;
    b.leave().await;
}
