//! A deleted pod whose container takes a few seconds to exit, end to end: real etcd, the
//! real broker, the scheduler, the Job controller and one node agent with the process
//! runtime, all in-process.
//!
//! The kubelet's order is what the tests check: the container gets SIGTERM, exits (here after
//! 5 s, with 143), the agent writes the pod's final status (phase Failed, the container
//! terminated with its exit code) and only then removes the pod. The Job controller counts
//! the pod as failed and, with `podReplacementPolicy: Failed`, starts its replacement only
//! once the old pod is terminal; with `TerminatingOrFailed`, at once.
//!
//! Every change to the Job's pods is watched from before the Job exists, so "the replacement
//! came after the old pod was terminal" is checked on the revisions the API stored, not on
//! samples.

use std::time::Duration;

use bosun_api::v1::{self, Kind};
use bosun_api::vocab::phase;
use bosun_runtime::client::{DeleteOptions, WatchEvent};
use bosun_tests::{Recording, phase as pod_phase, pods_of_job as job_pods, wait_for};

const WAIT: Duration = Duration::from_secs(30);

/// The issue's container: on SIGTERM it takes 5 s to exit, with 143. (Bounded to a minute,
/// so a failed test leaves nothing running for long.)
const SLOW_TO_EXIT: &str = "trap 'sleep 5; exit 143' TERM; for i in $(seq 60); do sleep 1; done";

bosun_tests::file_plane! {
    /// etcd, a broker, the scheduler, the Job controller and one process-runtime node.
}

impl Plane {
    async fn start(label: &str) -> Plane {
        let plane = bosun_tests::Plane::builder(&format!("terminating-{label}"))
            .scheduler()
            .job_controller()
            .nodes(&["node-1"])
            .start()
            .await;
        Plane(plane)
    }

    /// Creates a Job `name` running [`SLOW_TO_EXIT`] once, with `replacement` as its
    /// podReplacementPolicy and a 1 s retry delay (bosun's `podBackoff`; 10 s by default),
    /// so a replacement comes well within the old pod's 5 s of exiting when the policy allows.
    async fn slow_job(&self, name: &str, replacement: &str) {
        self.apply(&format!(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 3
  podBackoff: {{initialSeconds: 1}}
  podReplacementPolicy: {replacement}
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 30
      containers:
        - name: main
          image: busybox
          command: ["sh", "-c", "{SLOW_TO_EXIT}"]
"#
        ))
        .await;
    }

    async fn job_status(&self, name: &str) -> v1::JobStatus {
        self.job(name).await.status.unwrap_or_default()
    }

    /// Waits until the Job counts the old pod as failed and its replacement as active, with
    /// nothing terminating; returns that status.
    async fn wait_failed_and_replaced(&self, name: &str) -> v1::JobStatus {
        wait_for(
            &format!("job {name}: 1 failed, 1 active, 0 terminating"),
            WAIT,
            || async {
                let s = self.job_status(name).await;
                if s.failed == 1 && s.active == 1 && s.terminating == Some(0) {
                    Ok(s)
                } else {
                    Err(format!("{s:#?}"))
                }
            },
        )
        .await
    }

    /// Waits for the Job's first pod to run; returns its name and uid.
    async fn running_pod(&self, job: &str) -> (String, String) {
        wait_for(&format!("a Running pod of job {job}"), WAIT, || async {
            let pods = self.job_pods(job).await;
            let running = pods.iter().find(|p| pod_phase(p) == phase::RUNNING);
            match running.and_then(|p| p.metadata.as_ref()) {
                Some(m) => Ok((m.name.clone(), m.uid.clone())),
                None => Err(format!(
                    "phases {:?}",
                    pods.iter().map(pod_phase).collect::<Vec<_>>()
                )),
            }
        })
        .await
    }
}

/// Every change to one Job's pods as the API stored them, from before the Job existed.
struct PodWatch(Recording);

impl PodWatch {
    async fn start(plane: &Plane, job: &str) -> PodWatch {
        PodWatch(Recording::start(plane.client(), Kind::Pod, &job_pods(job)).await)
    }

    fn events(&self) -> Vec<WatchEvent> {
        self.0.events()
    }

    /// The first stored state of pod `uid` in a terminal phase, with its revision.
    fn terminal(&self, uid: &str) -> Option<(i64, v1::Pod)> {
        self.events().into_iter().find_map(|ev| match &ev {
            WatchEvent::Modified(o) if o.uid() == uid => {
                let pod = o.as_pod()?;
                matches!(pod_phase(pod), phase::FAILED | phase::SUCCEEDED)
                    .then(|| (ev.revision(), pod.clone()))
            }
            _ => None,
        })
    }

    /// The revision at which pod `uid` was removed.
    fn removed(&self, uid: &str) -> Option<i64> {
        self.events().into_iter().find_map(|ev| match &ev {
            WatchEvent::Deleted(o) if o.uid() == uid => Some(ev.revision()),
            _ => None,
        })
    }

    /// The first pod created other than `uid`: its uid and the revision of its creation.
    fn replacement(&self, uid: &str) -> Option<(String, i64)> {
        self.events().into_iter().find_map(|ev| match &ev {
            WatchEvent::Added(o) if o.uid() != uid => Some((o.uid().to_string(), ev.revision())),
            _ => None,
        })
    }
}

/// Asserts that the old pod's first terminal state is the kubelet's final status: phase
/// Failed, the container terminated with 143, written after the deletion mark.
fn assert_final_status(pod: &v1::Pod) {
    let meta = pod.metadata.clone().unwrap_or_default();
    assert!(
        !meta.deletion_timestamp.is_empty(),
        "the final status follows the deletion mark: {meta:#?}"
    );
    let status = pod.status.clone().unwrap_or_default();
    assert_eq!(status.phase, phase::FAILED, "{status:#?}");
    let main = status
        .container_statuses
        .first()
        .expect("a container status");
    let terminated = main
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .unwrap_or_else(|| panic!("the container is not terminated: {main:#?}"));
    assert_eq!(terminated.exit_code, 143, "{terminated:#?}");
    assert_eq!(terminated.reason, "Error", "{terminated:#?}");
    assert!(!terminated.finished_at.is_empty(), "{terminated:#?}");
    assert!(!main.ready, "{main:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_slow_pod_ends_failed_then_goes_and_is_replaced_only_once_terminal() {
    let plane = Plane::start("failed").await;
    let watch = PodWatch::start(&plane, "slow").await;
    plane.slow_job("slow", "Failed").await;
    let (name, uid) = plane.running_pod("slow").await;

    // `bosun delete pod` waits until the pod is gone: it returns only once the agent wrote
    // the final status and the Job controller let go of the pod.
    plane
        .ok(&["delete", "pod", &name, "--timeout", "25s"])
        .await;

    let (terminal_at, terminal) = watch
        .terminal(&uid)
        .expect("the old pod reached a terminal phase");
    assert_final_status(&terminal);
    let removed_at = watch.removed(&uid).expect("the old pod was removed");
    assert!(terminal_at < removed_at, "{terminal_at} < {removed_at}");

    // The Job counts the failure and replaces the pod, after the old one was terminal.
    plane.wait_failed_and_replaced("slow").await;
    let (_, created_at) = watch.replacement(&uid).expect("a replacement pod");
    assert!(
        created_at > terminal_at,
        "the replacement (revision {created_at}) came before the old pod was terminal (revision {terminal_at})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_terminating_or_failed_a_deleted_slow_pod_is_replaced_at_once() {
    let plane = Plane::start("terminating").await;
    let watch = PodWatch::start(&plane, "slow").await;
    plane.slow_job("slow", "TerminatingOrFailed").await;
    let (name, uid) = plane.running_pod("slow").await;

    plane
        .client()
        .delete(Kind::Pod, "default", &name, DeleteOptions::default())
        .await
        .expect("delete pod");

    // Replaced while the old pod still takes its 5 s to exit.
    let (_, created_at) = wait_for("a replacement pod", WAIT, || async {
        watch.replacement(&uid)
    })
    .await;

    // The old pod still ends as the kubelet ends it, then goes.
    let removed_at = wait_for("the old pod removed", WAIT, || async {
        watch.removed(&uid)
    })
    .await;
    let (terminal_at, terminal) = watch
        .terminal(&uid)
        .expect("the old pod reached a terminal phase");
    assert_final_status(&terminal);
    assert!(
        created_at < terminal_at,
        "the replacement (revision {created_at}) waited for the old pod to be terminal (revision {terminal_at})"
    );
    assert!(terminal_at < removed_at, "{terminal_at} < {removed_at}");
    plane.wait_failed_and_replaced("slow").await;
}
