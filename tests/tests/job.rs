//! The Job controller end to end: real etcd, the real broker, the scheduler, the gc, the
//! Job controller and node agents with the process runtime, all in-process; Jobs are written
//! from YAML as a user would apply them.

use std::path::PathBuf;
use std::time::Duration;

use bosun_api::v1::{self, Kind, Object};
use bosun_runtime::client::{Broker as Client, Selector};
use bosun_tests::{Broker, Etcd, eventually, temp_dir};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// etcd, a broker, the scheduler, the gc, the Job controller and two process-runtime nodes.
struct Plane {
    _etcd: Etcd,
    _broker: Broker,
    client: Client,
    _dir: PathBuf,
    shutdown: CancellationToken,
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Plane {
    async fn start(label: &str) -> Plane {
        let etcd = Etcd::start().await;
        let broker = Broker::start(&etcd).await;
        let client = Client::connect(&broker.url()).await.expect("client");
        let shutdown = CancellationToken::new();
        let url = broker.url();
        tokio::spawn(bosun_scheduler::run(
            bosun_scheduler::Config::for_server(&url),
            shutdown.clone(),
        ));
        tokio::spawn(bosun_gc::run(
            bosun_gc::Config::for_server(&url),
            shutdown.clone(),
        ));
        tokio::spawn(bosun_job_controller::run(
            bosun_job_controller::Config::for_server(&url),
            shutdown.clone(),
        ));
        let dir = temp_dir(&format!("job-{label}"));
        for name in ["node-1", "node-2"] {
            let mut c = bosun_node_agent::Config::new(&url, name);
            c.data_dir = Some(dir.join(name));
            c.heartbeat_interval = Duration::from_millis(200);
            c.backoff_base = Duration::from_millis(200);
            c.backoff_cap = Duration::from_secs(2);
            tokio::spawn(bosun_node_agent::run(c, shutdown.child_token()));
        }
        Plane {
            _etcd: etcd,
            _broker: broker,
            client,
            _dir: dir,
            shutdown,
        }
    }

    async fn apply(&self, yaml: &str) {
        for m in bosun_api::codec::decode_manifests("test.yaml", yaml).expect("valid YAML") {
            self.client.create(m.object).await.expect("create");
        }
    }

    async fn job(&self, name: &str) -> v1::Job {
        self.client
            .get(Kind::Job, "default", name)
            .await
            .expect("get job")
            .into_job()
            .expect("a job")
    }

    async fn pods_of(&self, job: &str) -> Vec<v1::Pod> {
        self.client
            .list(
                Kind::Pod,
                &Selector::namespace("default").labels(format!("job-name={job}")),
            )
            .await
            .expect("list pods")
            .items
            .into_iter()
            .filter_map(Object::into_pod)
            .collect()
    }

    /// Waits until the Job has condition `ty` True; returns it.
    async fn wait_condition(&self, name: &str, ty: &str) -> v1::Job {
        eventually(WAIT, || async {
            self.job(name).await.status.is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.r#type == ty && c.status == "True")
            })
        })
        .await;
        self.job(name).await
    }
}

fn condition<'a>(job: &'a v1::Job, ty: &str) -> &'a v1::Condition {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == ty))
        .unwrap_or_else(|| panic!("no {ty} condition"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_5_with_parallelism_2_never_runs_more_than_2_and_completes() {
    let plane = Plane::start("par").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: par
spec:
  completions: 5
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "sleep 0.2; echo done"]
"#,
        )
        .await;
    let max_active = std::sync::atomic::AtomicUsize::new(0);
    eventually(WAIT, || async {
        let pods = plane.pods_of("par").await;
        let active = pods
            .iter()
            .filter(|p| {
                let phase = p.status.as_ref().map_or("", |s| s.phase.as_str());
                phase != "Succeeded" && phase != "Failed"
            })
            .count();
        max_active.fetch_max(active, std::sync::atomic::Ordering::Relaxed);
        plane
            .job("par")
            .await
            .status
            .is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Complete"))
    })
    .await;
    let job = plane.job("par").await;
    let status = job.status.clone().unwrap();
    assert_eq!(status.succeeded, 5);
    assert_eq!(status.failed, 0);
    assert_eq!(status.active, 0);
    assert!(!status.completion_time.is_empty());
    assert_eq!(condition(&job, "Complete").reason, "CompletionsReached");
    let max_active = max_active.into_inner();
    assert!(max_active <= 2, "saw {max_active} pods active at once");
    let pods = plane.pods_of("par").await;
    assert_eq!(pods.len(), 5);
    assert!(
        pods.iter()
            .all(|p| p.metadata.as_ref().unwrap().finalizers.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pod_with_backoff_limit_2_fails_the_job_after_3_pods() {
    let plane = Plane::start("fail").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: fail
spec:
  backoffLimit: 2
  podBackoff: {initialSeconds: 1, maxSeconds: 4}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "exit 3"]
"#,
        )
        .await;
    let job = plane.wait_condition("fail", "Failed").await;
    assert_eq!(condition(&job, "Failed").reason, "BackoffLimitExceeded");
    let status = job.status.clone().unwrap();
    assert_eq!(status.failed, 3);
    assert_eq!(plane.pods_of("fail").await.len(), 3);
}
