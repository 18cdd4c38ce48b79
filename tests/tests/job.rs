//! The Job controller end to end: real etcd, the real broker, the scheduler, the gc, the
//! Job controller and node agents with the process runtime, all in-process; Jobs are written
//! from YAML as a user would apply them.
//!
//! Pods are watched from before their Job exists ([`PodWatch`]), so "never more than N at
//! once" and "no pod was ever created" are checked on every change the API saw, not on
//! samples. Pods that must wait for the test wait for a file in the plane's directory (and
//! give up after 30 s, so a failed test leaves nothing running).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bosun_api::v1::{self, Kind, Object};
use bosun_runtime::client::{DeleteOptions, Selector, WatchEvent};
use bosun_tests::{
    Bosun, Recording, job_condition_true as is_true, job_status as status, phase,
    pods_of_job as job_pods, wait_for,
};

const WAIT: Duration = Duration::from_secs(30);

bosun_tests::file_plane! {
    /// etcd, a broker, the scheduler, the gc, the Job controller and two process-runtime nodes.
}

impl Plane {
    async fn start(label: &str) -> Plane {
        let plane = bosun_tests::Plane::builder(&format!("job-{label}"))
            .controllers()
            .nodes(&["node-1", "node-2"])
            .start()
            .await;
        Plane(plane)
    }

    /// Waits until the Job has condition `ty` True; returns it.
    async fn wait_condition(&self, name: &str, ty: &str) -> v1::Job {
        self.wait_job(name, |j| is_true(j, ty)).await
    }

    /// Changes the Job's spec (re-read and retried when the controller wrote in between).
    async fn update_spec(&self, name: &str, change: impl Fn(&mut v1::JobSpec)) {
        loop {
            let mut job = self.job(name).await;
            change(job.spec.as_mut().expect("spec"));
            match self.client().update(job.into()).await {
                Ok(_) => return,
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("update job {name}: {e}"),
            }
        }
    }

    /// The events stored about `job` (by uid).
    async fn events_of(&self, job: &v1::Job) -> Vec<v1::Event> {
        let uid = &job.metadata.as_ref().expect("meta").uid;
        self.client()
            .list(Kind::Event, &Selector::namespace("default"))
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter_map(Object::into_event)
            .filter(|e| e.involved_object.as_ref().is_some_and(|o| o.uid == *uid))
            .collect()
    }
}

fn condition<'a>(job: &'a v1::Job, ty: &str) -> &'a v1::Condition {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == ty))
        .unwrap_or_else(|| panic!("no {ty} condition in {:#?}", job.status))
}

fn terminal(pod: &v1::Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Asserts a finished Job's bookkeeping: nothing active, nothing left uncounted, and no
/// pod still holding the tracking finalizer.
async fn assert_settled(plane: &Plane, job: &v1::Job) {
    let name = &job.metadata.as_ref().expect("meta").name;
    let s = status(job);
    assert_eq!((s.active, s.terminating), (0, Some(0)), "{name}: {s:#?}");
    let unc = s.uncounted_terminated_pods.clone().unwrap_or_default();
    assert!(
        unc.succeeded.is_empty() && unc.failed.is_empty(),
        "{name}: {s:#?}"
    );
    // Releases follow the status write: give them a moment.
    wait_for(&format!("{name}'s pods released"), WAIT, || async {
        let held: Vec<String> = plane
            .job_pods(name)
            .await
            .into_iter()
            .filter_map(|p| p.metadata)
            .filter(|m| m.finalizers.iter().any(|f| f.ends_with("job-tracking")))
            .map(|m| m.name)
            .collect();
        if held.is_empty() {
            Ok(())
        } else {
            Err(format!("still holding the tracking finalizer: {held:?}"))
        }
    })
    .await;
}

/// Every change to one Job's pods as the API saw them, from before the Job existed, with
/// the instant each change arrived.
struct PodWatch(Recording);

impl PodWatch {
    async fn start(plane: &Plane, job: &str) -> PodWatch {
        PodWatch(Recording::start(plane.client(), Kind::Pod, &job_pods(job)).await)
    }

    fn events(&self) -> Vec<(Instant, WatchEvent)> {
        self.0.timed_events()
    }

    /// Each pod's name and when its creation arrived, oldest first.
    fn created(&self) -> Vec<(Instant, String)> {
        self.events()
            .into_iter()
            .filter_map(|(at, ev)| match ev {
                WatchEvent::Added(o) => Some((at, o.name().to_string())),
                _ => None,
            })
            .collect()
    }

    /// The number of pods that existed and were not Succeeded/Failed after each revision.
    fn active_over_time(&self) -> Vec<usize> {
        let mut pods: HashMap<String, bool> = HashMap::new();
        let mut by_revision: BTreeMap<i64, Vec<WatchEvent>> = BTreeMap::new();
        for (_, ev) in self.events() {
            by_revision.entry(ev.revision()).or_default().push(ev);
        }
        let mut counts = Vec::new();
        for events in by_revision.into_values() {
            for ev in events {
                match ev {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                        let active = o.as_pod().is_some_and(|p| !terminal(p));
                        pods.insert(o.uid().to_string(), active);
                    }
                    WatchEvent::Deleted(o) => {
                        pods.remove(o.uid());
                    }
                    WatchEvent::Bookmark(_) => {}
                }
            }
            counts.push(pods.values().filter(|a| **a).count());
        }
        counts
    }

    fn max_active(&self) -> usize {
        self.active_over_time().into_iter().max().unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_pi_job_completes_with_kubernetes_pod_identity_and_events() {
    let plane = Plane::start("pi").await;
    // tests/manifests/seeds/001-pi-job.yaml, minus its two stray keys (a second
    // `backoffLimit`, `restartPolicy` under `spec`: both refused by the strict codec), with
    // `sh` instead of perl (the process runtime runs the command on the host).
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  backoffLimit: 5
  activeDeadlineSeconds: 100
  ttlSecondsAfterFinished: 100
  template:
    spec:
      containers:
        - name: pi
          image: perl
          command: ["sh", "-c", "echo 3.14159"]
      restartPolicy: Never
"#,
        )
        .await;
    let job = plane.wait_condition("pi", "Complete").await;
    let uid = job.metadata.as_ref().expect("meta").uid.clone();
    let s = status(&job);
    assert_eq!((s.succeeded, s.failed), (1, 0), "{s:#?}");
    assert!(!s.start_time.is_empty() && !s.completion_time.is_empty());
    assert!(s.completion_time >= s.start_time, "{s:#?}");
    assert_eq!(condition(&job, "Complete").reason, "CompletionsReached");
    assert_eq!(condition(&job, "SuccessCriteriaMet").status, "True");
    assert!(!is_true(&job, "Failed"));
    assert_settled(&plane, &job).await;

    let pods = plane.job_pods("pi").await;
    assert_eq!(pods.len(), 1, "{pods:#?}");
    let pod = &pods[0];
    assert_eq!(phase(pod), "Succeeded");
    let meta = pod.metadata.as_ref().expect("meta");
    assert!(meta.name.starts_with("pi-") && meta.name.len() == "pi-".len() + 5);
    for (key, want) in [
        ("job-name", "pi"),
        ("batch.kubernetes.io/job-name", "pi"),
        ("controller-uid", uid.as_str()),
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
    ] {
        assert_eq!(
            meta.labels.get(key).map(String::as_str),
            Some(want),
            "{key}"
        );
    }
    assert_eq!(meta.owner_references.len(), 1);
    let owner = &meta.owner_references[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str()
        ),
        ("batch/v1", "Job", "pi", uid.as_str())
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    assert!(meta.finalizers.is_empty(), "{:?}", meta.finalizers);
    assert_eq!(plane.logs(&meta.name).await.expect("logs"), "3.14159\n");

    // Events are written in the background: wait for both.
    let created = format!("Created pod: {}", meta.name);
    wait_for(
        "the SuccessfulCreate and Completed events",
        WAIT,
        || async {
            let events = plane.events_of(&job).await;
            let has = |reason: &str, message: &str| {
                events
                    .iter()
                    .any(|e| e.reason == reason && e.message == message && e.r#type == "Normal")
            };
            if has("SuccessfulCreate", &created) && has("Completed", "Job completed") {
                Ok(())
            } else {
                Err(format!("{events:#?}"))
            }
        },
    )
    .await;
    let event = plane
        .events_of(&job)
        .await
        .into_iter()
        .find(|e| e.reason == "Completed")
        .expect("Completed event");
    let about = event.involved_object.expect("involvedObject");
    assert_eq!(
        (
            about.kind.as_str(),
            about.api_version.as_str(),
            about.namespace.as_str(),
            about.name.as_str()
        ),
        ("Job", "batch/v1", "default", "pi")
    );
    assert_eq!(
        event.source.expect("source").component,
        bosun_job_controller::COMPONENT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_5_with_parallelism_1_runs_one_pod_at_a_time() {
    let plane = Plane::start("serial").await;
    let watch = PodWatch::start(&plane, "serial").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: serial
spec:
  completions: 5
  parallelism: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "sleep 0.1"]
"#,
        )
        .await;
    let job = plane.wait_condition("serial", "Complete").await;
    let s = status(&job);
    assert_eq!((s.succeeded, s.failed), (5, 0), "{s:#?}");
    assert_settled(&plane, &job).await;
    assert_eq!(watch.created().len(), 5);
    assert_eq!(watch.max_active(), 1, "{:?}", watch.active_over_time());
    let pods = plane.job_pods("serial").await;
    assert_eq!(pods.len(), 5);
    assert!(pods.iter().all(|p| phase(p) == "Succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_8_with_parallelism_2_never_runs_more_than_2_and_completes() {
    let plane = Plane::start("par").await;
    let watch = PodWatch::start(&plane, "par").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: par
spec:
  completions: 8
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
    let job = plane.wait_condition("par", "Complete").await;
    let s = status(&job);
    assert_eq!((s.succeeded, s.failed, s.active), (8, 0, 0), "{s:#?}");
    assert!(!s.completion_time.is_empty());
    assert_eq!(condition(&job, "Complete").reason, "CompletionsReached");
    assert_settled(&plane, &job).await;
    // Two at a time, and really two: the controller used its parallelism.
    let counts = watch.active_over_time();
    assert_eq!(watch.max_active(), 2, "{counts:?}");
    assert_eq!(counts.last(), Some(&0), "{counts:?}");
    assert_eq!(watch.created().len(), 8);
    let pods = plane.job_pods("par").await;
    assert_eq!(pods.len(), 8);
    assert!(pods.iter().all(|p| phase(p) == "Succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pod_with_backoff_limit_2_fails_the_job_after_3_pods_with_growing_delays() {
    let plane = Plane::start("fail").await;
    let watch = PodWatch::start(&plane, "fail").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: fail
spec:
  backoffLimit: 2
  podBackoff: {initialSeconds: 1, factor: 2}
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
    assert!(!is_true(&job, "Complete"));
    let s = status(&job);
    assert_eq!((s.failed, s.succeeded), (3, 0), "{s:#?}");
    assert!(s.completion_time.is_empty(), "only a Complete Job has one");
    assert_settled(&plane, &job).await;
    assert_eq!(plane.job_pods("fail").await.len(), 3);

    // The retry delay after the 1st failure is 1 s, after the 2nd 2 s: each gap between
    // creations is at least that, and the second is longer.
    let created = watch.created();
    assert_eq!(created.len(), 3, "{created:?}");
    let first = created[1].0 - created[0].0;
    let second = created[2].0 - created[1].0;
    assert!(first >= Duration::from_secs(1), "first gap {first:?}");
    assert!(second >= Duration::from_secs(2), "second gap {second:?}");
    assert!(second > first, "gaps {first:?} then {second:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_seconds_fails_the_job_before_the_retry_delay_is_over() {
    let plane = Plane::start("deadline").await;
    let watch = PodWatch::start(&plane, "deadline").await;
    let started = Instant::now();
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: deadline
spec:
  backoffLimit: 6
  activeDeadlineSeconds: 2
  podBackoff: {initialSeconds: 5}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "exit 1"]
"#,
        )
        .await;
    let job = plane.wait_condition("deadline", "Failed").await;
    let took = started.elapsed();
    assert_eq!(condition(&job, "Failed").reason, "DeadlineExceeded");
    assert_eq!(
        condition(&job, "Failed").message,
        "Job was active longer than specified deadline"
    );
    // Woken at the deadline, not at the next retry (5 s after the failure).
    assert!(took < Duration::from_millis(4500), "failed after {took:?}");
    let s = status(&job);
    assert_eq!(s.failed, 1, "{s:#?}");
    assert_settled(&plane, &job).await;
    assert_eq!(watch.created().len(), 1, "no retry before the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexed_job_gives_each_pod_its_index_and_hostname() {
    let plane = Plane::start("indexed").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: idx
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX host=$HOSTNAME"]
"#,
        )
        .await;
    let job = plane.wait_condition("idx", "Complete").await;
    let s = status(&job);
    assert_eq!(s.completed_indexes, "0-2", "{s:#?}");
    assert_eq!((s.succeeded, s.failed), (3, 0), "{s:#?}");
    assert_settled(&plane, &job).await;
    let pods = plane.job_pods("idx").await;
    assert_eq!(pods.len(), 3);
    let mut seen = Vec::new();
    for pod in &pods {
        let meta = pod.metadata.as_ref().expect("meta");
        let index = meta.annotations["batch.kubernetes.io/job-completion-index"].clone();
        assert_eq!(
            meta.labels.get("batch.kubernetes.io/job-completion-index"),
            Some(&index)
        );
        assert!(
            meta.name.starts_with(&format!("idx-{index}-")),
            "{}",
            meta.name
        );
        let hostname = format!("idx-{index}");
        assert_eq!(pod.spec.as_ref().expect("spec").hostname, hostname);
        assert_eq!(
            plane.logs(&meta.name).await.expect("logs"),
            format!("index={index} host={hostname}\n")
        );
        seen.push(index);
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_failure_policy_fail_job_fails_the_job_at_the_first_matching_failure() {
    let plane = Plane::start("pfp-failjob").await;
    let watch = PodWatch::start(&plane, "failjob").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: failjob
spec:
  backoffLimit: 6
  podBackoff: {initialSeconds: 1}
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {containerName: main, operator: In, values: [42]}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "exit 42"]
"#,
        )
        .await;
    let job = plane.wait_condition("failjob", "Failed").await;
    let failed = condition(&job, "Failed");
    assert_eq!(failed.reason, "PodFailurePolicy");
    assert!(
        failed
            .message
            .contains("failed with exit code 42 matching FailJob rule at index 0"),
        "{}",
        failed.message
    );
    assert_eq!(status(&job).failed, 1);
    assert_settled(&plane, &job).await;
    assert_eq!(watch.created().len(), 1, "no retry after a FailJob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_failure_policy_ignore_and_count_decide_whether_a_failure_counts() {
    let plane = Plane::start("pfp-ignore").await;
    // Each fails with 42 the first time (leaving a marker), then succeeds.
    let once = |marker: &str| {
        let m = plane.file(marker);
        format!("if [ -f {m} ]; then exit 0; else touch {m}; exit 42; fi")
    };
    for (name, action) in [("ignore", "Ignore"), ("count", "Count")] {
        plane
            .apply(&format!(
                r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 6
  podBackoff: {{initialSeconds: 1}}
  podFailurePolicy:
    rules:
    - action: {action}
      onExitCodes: {{operator: In, values: [42]}}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "{}"]
"#,
                once(name)
            ))
            .await;
    }
    for (name, failed) in [("ignore", 0), ("count", 1)] {
        let job = plane.wait_condition(name, "Complete").await;
        let s = status(&job);
        assert_eq!((s.succeeded, s.failed), (1, failed), "{name}: {s:#?}");
        assert_settled(&plane, &job).await;
        let pods = plane.job_pods(name).await;
        let mut phases: Vec<&str> = pods.iter().map(phase).collect();
        phases.sort();
        assert_eq!(phases, ["Failed", "Succeeded"], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_failure_policy_fail_index_fails_that_index_and_the_job_once_all_are_done() {
    let plane = Plane::start("pfp-failindex").await;
    let watch = PodWatch::start(&plane, "perindex").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: perindex
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  backoffLimitPerIndex: 2
  podBackoff: {initialSeconds: 1}
  podFailurePolicy:
    rules:
    - action: FailIndex
      onExitCodes: {operator: In, values: [42]}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "if [ $JOB_COMPLETION_INDEX = 1 ]; then exit 42; fi; sleep 0.5"]
"#,
        )
        .await;
    let job = plane.wait_condition("perindex", "Failed").await;
    let s = status(&job);
    assert_eq!(condition(&job, "Failed").reason, "FailedIndexes");
    // Failed only once the other indexes were done.
    assert_eq!(s.completed_indexes, "0,2", "{s:#?}");
    assert_eq!(s.failed_indexes.as_deref(), Some("1"), "{s:#?}");
    assert_eq!((s.succeeded, s.failed), (2, 1), "{s:#?}");
    assert_settled(&plane, &job).await;
    // FailIndex: index 1 was not retried, despite its per-index budget of 2.
    assert_eq!(watch.created().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_created_suspended_creates_no_pods_until_resumed() {
    let plane = Plane::start("suspended").await;
    let watch = PodWatch::start(&plane, "later").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: later
spec:
  suspend: true
  completions: 2
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "true"]
"#,
        )
        .await;
    let job = plane.wait_condition("later", "Suspended").await;
    assert_eq!(condition(&job, "Suspended").reason, "JobSuspended");
    let s = status(&job);
    assert!(s.start_time.is_empty(), "{s:#?}");
    assert_eq!(s.active, 0);
    assert!(plane.job_pods("later").await.is_empty());
    assert!(watch.created().is_empty(), "a suspended Job created pods");

    plane
        .update_spec("later", |s| s.suspend = Some(false))
        .await;
    let job = plane.wait_condition("later", "Complete").await;
    let resumed = condition(&job, "Suspended");
    assert_eq!(
        (resumed.status.as_str(), resumed.reason.as_str()),
        ("False", "JobResumed")
    );
    let s = status(&job);
    assert_eq!((s.succeeded, s.failed), (2, 0), "{s:#?}");
    assert!(!s.start_time.is_empty());
    assert_settled(&plane, &job).await;
    assert_eq!(watch.created().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspending_a_running_job_deletes_its_pods_without_counting_them_and_resume_restarts_the_clock()
 {
    let plane = Plane::start("suspend").await;
    let watch = PodWatch::start(&plane, "pausable").await;
    plane
        .apply(&format!(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: pausable
spec:
  completions: 2
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "{}"]
"#,
            plane.wait_for_file("go")
        ))
        .await;
    wait_for("2 pods of pausable Running", WAIT, || async {
        let pods = plane.job_pods("pausable").await;
        let phases: Vec<&str> = pods.iter().map(phase).collect();
        if phases == ["Running", "Running"] {
            Ok(())
        } else {
            Err(format!("phases {phases:?}"))
        }
    })
    .await;
    let first_start = status(&plane.job("pausable").await).start_time;
    assert!(!first_start.is_empty());

    plane
        .update_spec("pausable", |s| s.suspend = Some(true))
        .await;
    let job = plane.wait_condition("pausable", "Suspended").await;
    assert_eq!(condition(&job, "Suspended").reason, "JobSuspended");
    // Its pods go away (released, then deleted), and none counts as a failure.
    wait_for("every pod of pausable gone", WAIT, || async {
        plane.job_pods("pausable").await.is_empty()
    })
    .await;
    let job = plane
        .wait_job("pausable", |j| {
            status(j).active == 0 && status(j).terminating == Some(0)
        })
        .await;
    let s = status(&job);
    assert_eq!((s.failed, s.succeeded), (0, 0), "{s:#?}");
    assert!(
        s.start_time.is_empty(),
        "startTime is cleared on suspension: {s:#?}"
    );

    // startTime has a one-second resolution: resume in a later second than the first start.
    wait_for("a second later than the first start", WAIT, || async {
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) > first_start
    })
    .await;
    plane
        .update_spec("pausable", |s| s.suspend = Some(false))
        .await;
    let job = plane
        .wait_job("pausable", |j| {
            !status(j).start_time.is_empty() && status(j).active == 2
        })
        .await;
    let restarted = status(&job).start_time;
    assert!(restarted > first_start, "{restarted} after {first_start}");
    let resumed = condition(&job, "Suspended");
    assert_eq!(
        (resumed.status.as_str(), resumed.reason.as_str()),
        ("False", "JobResumed")
    );

    plane.touch("go");
    let job = plane.wait_condition("pausable", "Complete").await;
    let s = status(&job);
    assert_eq!((s.succeeded, s.failed), (2, 0), "{s:#?}");
    assert_settled(&plane, &job).await;
    assert_eq!(
        watch.created().len(),
        4,
        "2 pods before the suspension, 2 after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_job_waits_for_its_dependency_to_complete() {
    let plane = Plane::start("deps").await;
    let watch_b = PodWatch::start(&plane, "b").await;
    plane
        .apply(&format!(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: b
spec:
  dependsOn: [a]
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "true"]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: a
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "{}"]
"#,
            plane.wait_for_file("a-done")
        ))
        .await;
    let b = plane.wait_condition("b", "Waiting").await;
    let waiting = condition(&b, "Waiting");
    assert_eq!(waiting.reason, "WaitingForDependencies");
    assert!(waiting.message.contains("a ("), "{}", waiting.message);
    assert!(status(&b).start_time.is_empty());
    // A really runs meanwhile; B still has nothing.
    wait_for("a pod of a Running", WAIT, || async {
        let pods = plane.job_pods("a").await;
        if pods.iter().any(|p| phase(p) == "Running") {
            Ok(())
        } else {
            Err(format!(
                "phases {:?}",
                pods.iter().map(phase).collect::<Vec<_>>()
            ))
        }
    })
    .await;
    assert!(
        plane.job_pods("b").await.is_empty(),
        "b ran before a finished"
    );
    assert!(watch_b.created().is_empty(), "b ran before a finished");

    let released = Instant::now();
    plane.touch("a-done");
    let a = plane.wait_condition("a", "Complete").await;
    let b = plane.wait_condition("b", "Complete").await;
    let done = condition(&b, "Waiting");
    assert_eq!(
        (done.status.as_str(), done.reason.as_str()),
        ("False", "DependenciesComplete")
    );
    assert_eq!(status(&b).succeeded, 1);
    let created = watch_b.created();
    assert_eq!(created.len(), 1);
    assert!(
        created[0].0 > released,
        "b's pod came before a could finish"
    );
    assert!(status(&b).start_time >= status(&a).completion_time);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_dependency_fails_fails_without_creating_a_pod() {
    let plane = Plane::start("depfail").await;
    let watch_c = PodWatch::start(&plane, "c").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: c
spec:
  dependsOn: [d]
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "true"]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: d
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "exit 1"]
"#,
        )
        .await;
    let d = plane.wait_condition("d", "Failed").await;
    assert_eq!(condition(&d, "Failed").reason, "BackoffLimitExceeded");
    let c = plane.wait_condition("c", "Failed").await;
    let failed = condition(&c, "Failed");
    assert_eq!(failed.reason, "DependencyFailed");
    assert!(
        failed.message.contains("job d failed"),
        "{}",
        failed.message
    );
    assert_eq!(condition(&c, "Waiting").status, "False");
    let s = status(&c);
    assert_eq!((s.succeeded, s.failed, s.active), (0, 0, 0), "{s:#?}");
    assert!(watch_c.created().is_empty(), "c created a pod");
    assert!(plane.job_pods("c").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_queue_job_completes_once_a_pod_succeeded_and_none_is_active() {
    let plane = Plane::start("queue").await;
    let watch = PodWatch::start(&plane, "queue").await;
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: queue
spec:
  parallelism: 3
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "sleep 0.3"]
"#,
        )
        .await;
    let job = plane.wait_condition("queue", "Complete").await;
    let s = status(&job);
    // Every worker started before the first success, and none after it.
    let created = watch.created();
    assert_eq!(created.len(), 3, "{created:?}");
    assert_eq!(watch.max_active(), 3);
    assert_eq!((s.succeeded, s.failed, s.active), (3, 0, 0), "{s:#?}");
    assert_eq!(job.spec.as_ref().expect("spec").completions, None);
    assert_settled(&plane, &job).await;
    assert!(
        plane
            .job_pods("queue")
            .await
            .iter()
            .all(|p| phase(p) == "Succeeded")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bosun_wait_for_condition_complete_returns_once_the_job_completes() {
    let plane = Plane::start("cli-wait").await;
    plane
        .apply(&format!(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: waited
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "{}"]
"#,
            plane.wait_for_file("go")
        ))
        .await;
    let bosun = Bosun::new(plane.url());
    // Not complete yet: the wait times out.
    let early = bosun
        .run(&[
            "wait",
            "--for=condition=complete",
            "job/waited",
            "--timeout=0s",
        ])
        .await;
    assert_eq!(early.code, 1, "{early:#?}");
    let waiter = tokio::spawn(async move {
        bosun
            .run(&[
                "wait",
                "--for=condition=complete",
                "job/waited",
                "--timeout=30s",
            ])
            .await
    });
    plane.touch("go");
    let out = waiter.await.expect("wait ran");
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "job.batch/waited condition met\n", "")
    );
    assert!(is_true(&plane.job("waited").await, "Complete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_deleted_as_soon_as_they_succeed_are_counted_exactly_once() {
    let plane = Plane::start("eager-delete").await;
    // A user (or a pod GC) deleting every pod the moment it succeeds.
    let deleter = {
        let client = plane.client().clone();
        let selector = job_pods("eager");
        let revision = client
            .list(Kind::Pod, &selector)
            .await
            .expect("list")
            .revision;
        let mut stream = client
            .watch(Kind::Pod, &selector, revision)
            .await
            .expect("watch");
        tokio::spawn(async move {
            let mut deleted = std::collections::HashSet::new();
            while let Ok(Some(ev)) = stream.next().await {
                let WatchEvent::Modified(o) = ev else {
                    continue;
                };
                let Some(pod) = o.as_pod() else { continue };
                let meta = pod.metadata.as_ref().expect("meta");
                if phase(pod) == "Succeeded" && meta.deletion_timestamp.is_empty() {
                    let opts = DeleteOptions {
                        uid: Some(meta.uid.clone()),
                        ..Default::default()
                    };
                    match client.delete(Kind::Pod, "default", &meta.name, opts).await {
                        Ok(_) => {
                            deleted.insert(meta.uid.clone());
                        }
                        Err(e) if e.is_not_found() => {}
                        Err(e) => panic!("delete {}: {e}", meta.name),
                    }
                }
                if deleted.len() == 4 {
                    break;
                }
            }
            deleted.len()
        })
    };
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: eager
spec:
  completions: 4
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "true"]
"#,
        )
        .await;
    let job = plane.wait_condition("eager", "Complete").await;
    let s = status(&job);
    assert_eq!((s.succeeded, s.failed), (4, 0), "{s:#?}");
    assert_settled(&plane, &job).await;
    let deleted = tokio::time::timeout(WAIT, deleter)
        .await
        .expect("every pod deleted")
        .expect("deleter");
    assert_eq!(deleted, 4);
    // Released after counting, the deleted pods are really gone.
    wait_for("every pod of eager gone", WAIT, || async {
        plane.job_pods("eager").await.is_empty()
    })
    .await;
    // And nothing recounts them later.
    let job = plane.job("eager").await;
    assert_eq!((status(&job).succeeded, status(&job).failed), (4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_managed_by_another_controller_is_left_alone() {
    let plane = Plane::start("managed").await;
    let watch = PodWatch::start(&plane, "theirs").await;
    // The other controller's Job first, then one of ours: once ours has completed, the
    // controller has had every chance to act on theirs.
    plane
        .apply(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: theirs
spec:
  managedBy: example.com/other-controller
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "true"]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: ours
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "true"]
"#,
        )
        .await;
    plane.wait_condition("ours", "Complete").await;
    let theirs = plane.job("theirs").await;
    assert!(watch.created().is_empty(), "a pod was created for theirs");
    let s = theirs.status.unwrap_or_default();
    assert!(
        s.start_time.is_empty() && s.conditions.is_empty() && s.active == 0,
        "the status of theirs was written: {s:#?}"
    );
}
