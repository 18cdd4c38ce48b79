//! The Job controller under fault: 1,000 completions while the controller is SIGKILLed and
//! restarted again and again, and every pod is deleted the moment it is seen Succeeded.
//!
//! Real etcd, the broker, the scheduler and the gc in-process; ONE real `bosun-node-agent`
//! process playing 20 sim nodes; the Job controller as the real `bosun-job-controller`
//! binary, so it can be killed without a chance to finish what it was doing. The kills are
//! paced by progress (after 150, 300, ... pods seen Succeeded, one of them twice in quick
//! succession, before the restarted controller has even synced), so every run kills it in
//! the middle of creating, counting and releasing, however fast the machine is.
//!
//! A watch over the Job's pods records, at every etcd revision, how many pods are running
//! (not finished, not being deleted), and which pods reached Succeeded. At the end: the Job
//! is Complete, counted exactly (`succeeded` = 1,000, Indexed: `completedIndexes` = `0-999`),
//! no revision ever had more than `parallelism` pods running, no completion index succeeded
//! twice (Indexed) / no pod beyond the 1,000th succeeded (NonIndexed), and no pod is left
//! holding the tracking finalizer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bosun_api::v1::{self, Kind};
use bosun_runtime::client::{Broker as Client, DeleteOptions, Selector, WatchEvent};
use bosun_tests::{phase, wait_for};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const NS: &str = "default";
const COMPLETIONS: usize = 1000;
/// The Job of the overlap test (two controllers fight over every pod: a smaller Job keeps
/// it short).
const OVERLAP_COMPLETIONS: usize = 300;
const PARALLELISM: usize = 20;
const SIM_NODES: usize = 20;
/// How long each pod "runs" on its sim node.
const SIM_DURATION: &str = "50ms";
/// The kill schedule: after this many pods were seen Succeeded, SIGKILL the controller.
const KILL_AFTER: [usize; 6] = [150, 300, 450, 600, 750, 900];
/// At this threshold the restarted controller is killed again right away (before its
/// caches are loaded), then restarted once more.
const DOUBLE_KILL_AT: usize = 450;
/// How long the doubly killed controller is given before its second kill (fault pacing,
/// not a wait for a condition).
const DOUBLE_KILL_GAP: Duration = Duration::from_millis(150);
/// The whole Job must finish within this.
const JOB_DEADLINE: Duration = Duration::from_secs(180);
const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

bosun_tests::file_plane! {
    /// etcd, an in-process broker, scheduler and gc, one sim node agent process, and the Job
    /// controller binary (restartable).
}

impl Plane {
    async fn start(label: &str) -> Plane {
        let plane = bosun_tests::Plane::builder(&format!("job-fault-{label}"))
            // Room for every pod event of the run, so the test's watch never has to relist.
            .broker_config(|c| c.window_events = 100_000)
            .scheduler()
            .gc()
            .node_agent_process(SIM_NODES, |cmd| {
                cmd.env("RUST_LOG", "warn")
                    .args(["--runtime", "sim", "--name", "sim"])
                    .args(["--sim-nodes", &SIM_NODES.to_string(), "--max-pods", "1000"]);
            })
            .start()
            .await;
        Plane(plane)
    }

    /// Starts the real `bosun-job-controller` (its log goes to `controller-<n>.log`).
    fn controller(&self, n: usize) -> tokio::process::Child {
        self.command("bosun-job-controller", &format!("controller-{n}"))
            .env("RUST_LOG", "info")
            .spawn()
            .expect("bosun-job-controller runs")
    }

    async fn job(&self, name: &str) -> v1::Job {
        self.client()
            .get(Kind::Job, NS, name)
            .await
            .expect("get job")
            .into_job()
            .expect("a job")
    }
}

fn job_yaml(name: &str, indexed: bool, completions: usize) -> String {
    format!(
        r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  namespace: {NS}
spec:
  completionMode: {mode}
  completions: {completions}
  parallelism: {PARALLELISM}
  template:
    metadata:
      annotations:
        bosun.dev/sim-duration: {SIM_DURATION}
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["true"]
"#,
        mode = if indexed { "Indexed" } else { "NonIndexed" },
    )
}

/// A pod as the watcher last saw it.
struct PodState {
    name: String,
    finished: bool,
    deleting: bool,
}

/// What the pod watch saw over the whole run.
#[derive(Default)]
struct Observed {
    /// The most pods running (not finished, not being deleted) at any one etcd revision.
    max_running: usize,
    /// Uids of the pods seen Succeeded, by completion index (`-1`: no index).
    succeeded: BTreeMap<i64, HashSet<String>>,
    /// Every pod seen at all.
    pods_seen: usize,
    /// The last revision the watch is complete up to (events or bookmarks).
    revision: i64,
}

impl Observed {
    fn succeeded_total(&self) -> usize {
        self.succeeded.values().map(HashSet::len).sum()
    }
}

fn completion_index(meta: &v1::ObjectMeta) -> i64 {
    meta.annotations
        .get("batch.kubernetes.io/job-completion-index")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// Watches the namespace's pods until `stop`: keeps [`Observed`] up to date (published on
/// `progress` as the number of pods seen Succeeded) and deletes every pod once it is seen
/// Succeeded, as a user cleaning up finished pods would.
async fn watch_pods(
    client: Client,
    progress: watch::Sender<usize>,
    revision_seen: watch::Sender<i64>,
    stop: CancellationToken,
) -> Observed {
    let selector = Selector::namespace(NS);
    let listed = client.list(Kind::Pod, &selector).await.expect("list pods");
    assert!(listed.items.is_empty(), "pods before the Job was created");
    let mut obs = Observed {
        revision: listed.revision,
        ..Default::default()
    };
    let mut pods: HashMap<String, PodState> = HashMap::new();
    let mut stream = client
        .watch(Kind::Pod, &selector, obs.revision)
        .await
        .expect("watch pods");
    let mut deletes = tokio::task::JoinSet::new();
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => break,
            ev = stream.next() => ev,
        };
        let event = match event {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                stream = client
                    .watch(Kind::Pod, &selector, obs.revision)
                    .await
                    .expect("resume the pod watch");
                continue;
            }
            Err(e) => panic!("the pod watch failed at revision {}: {e}", obs.revision),
        };
        let rev = event.revision();
        if rev > obs.revision {
            // Every event of revisions up to `obs.revision` is applied: count that state
            // (one revision may carry many pods' changes; never count half of one).
            let running = pods.values().filter(|p| !p.finished && !p.deleting).count();
            obs.max_running = obs.max_running.max(running);
        }
        let (obj, gone) = match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => (o, false),
            WatchEvent::Deleted(o) => (o, true),
            WatchEvent::Bookmark(_) => {
                obs.revision = obs.revision.max(rev);
                revision_seen.send_replace(obs.revision);
                continue;
            }
        };
        let uid = obj.uid().to_string();
        if gone {
            pods.remove(&uid);
        } else {
            let pod = obj.as_pod().expect("a pod");
            let meta = pod.metadata.as_ref().expect("metadata");
            let finished = matches!(phase(pod), "Succeeded" | "Failed");
            if !pods.contains_key(&uid) {
                obs.pods_seen += 1;
            }
            let state = pods.entry(uid.clone()).or_insert(PodState {
                name: meta.name.clone(),
                finished,
                deleting: false,
            });
            state.finished = finished;
            state.deleting = !meta.deletion_timestamp.is_empty();
            if phase(pod) == "Succeeded"
                && obs
                    .succeeded
                    .entry(completion_index(meta))
                    .or_default()
                    .insert(uid.clone())
            {
                progress.send_replace(obs.succeeded_total());
                if !state.deleting {
                    let (client, name) = (client.clone(), state.name.clone());
                    deletes.spawn(async move {
                        let opts = DeleteOptions {
                            uid: Some(uid),
                            ..Default::default()
                        };
                        match client.delete(Kind::Pod, NS, &name, opts).await {
                            Ok(_) => {}
                            Err(e) if e.is_not_found() || e.is_conflict() => {}
                            Err(e) => panic!("deleting the finished pod {name}: {e}"),
                        }
                    });
                }
            }
        }
        obs.revision = obs.revision.max(rev);
        revision_seen.send_replace(obs.revision);
        while let Some(done) = deletes.try_join_next() {
            done.expect("delete task");
        }
    }
    while let Some(done) = deletes.join_next().await {
        done.expect("delete task");
    }
    obs
}

/// Runs a Job of 1,000 completions while killing the controller on the schedule above (and,
/// with `overlap`, a second controller running beside it the whole time); returns the final
/// Job, what the pod watch saw, and how many times the controller was killed.
async fn run_under_faults(
    label: &str,
    indexed: bool,
    overlap: bool,
    completions: usize,
) -> (v1::Job, Observed, usize, Plane) {
    let plane = Plane::start(label).await;
    let (progress_tx, mut progress) = watch::channel(0usize);
    let (revision_tx, mut revision) = watch::channel(0i64);
    let stop = CancellationToken::new();
    let watcher = tokio::spawn(watch_pods(
        plane.client().clone(),
        progress_tx,
        revision_tx,
        stop.clone(),
    ));

    let mut started = 0usize;
    let mut controller = plane.controller(started);
    let mut second = overlap.then(|| plane.controller(1000));
    let name = label;
    for m in bosun_api::codec::decode_manifests("job.yaml", &job_yaml(name, indexed, completions))
        .expect("valid YAML")
    {
        plane
            .client()
            .create(m.object)
            .await
            .expect("create the Job");
    }

    // The fault schedule, paced by progress.
    let mut kills = 0usize;
    for threshold in KILL_AFTER.into_iter().filter(|t| *t < completions) {
        let reached = tokio::time::timeout(JOB_DEADLINE, progress.wait_for(|n| *n >= threshold))
            .await
            .map(|r| r.is_ok());
        assert!(
            reached.unwrap_or(false),
            "{threshold} pods not seen Succeeded within {JOB_DEADLINE:?} (only {}; logs in {})",
            *progress.borrow(),
            plane.dir().display()
        );
        let rounds = if threshold == DOUBLE_KILL_AT { 2 } else { 1 };
        for round in 0..rounds {
            if round > 0 {
                tokio::time::sleep(DOUBLE_KILL_GAP).await;
            }
            controller.start_kill().expect("SIGKILL the controller");
            controller.wait().await.expect("the controller exits");
            kills += 1;
            started += 1;
            controller = plane.controller(started);
        }
    }

    // Complete, then the watch caught up with the revision that made it Complete.
    let what = format!("job {name} Complete (logs in {})", plane.dir().display());
    let job = wait_for(&what, JOB_DEADLINE, || async {
        let job = plane.job(name).await;
        let complete = job.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "Complete" && c.status == "True")
        });
        if complete {
            Ok(job)
        } else {
            Err(format!("{:#?}", job.status))
        }
    })
    .await;
    let complete_at = job
        .metadata
        .as_ref()
        .map_or(0, |m| m.resource_version.parse::<i64>().unwrap_or(0));
    tokio::time::timeout(
        Duration::from_secs(30),
        revision.wait_for(|r| *r >= complete_at),
    )
    .await
    .expect("the pod watch caught up with the Job's completion")
    .expect("the pod watcher is running");
    // Complete means every pod was counted and let go: none holds the tracking finalizer.
    let left = plane
        .client()
        .list(Kind::Pod, &Selector::namespace(NS))
        .await
        .expect("list pods");
    let tracked: Vec<&str> = left
        .items
        .iter()
        .filter(|p| {
            p.meta()
                .is_some_and(|m| m.finalizers.iter().any(|f| f == TRACKING_FINALIZER))
        })
        .map(|p| p.name())
        .collect();
    assert!(
        tracked.is_empty(),
        "pods still tracked after Complete: {tracked:?}"
    );
    // And then deleted: none left behind Terminating.
    wait_for("every pod deleted", Duration::from_secs(30), || async {
        let left = plane
            .client()
            .list(Kind::Pod, &Selector::namespace(NS))
            .await
            .expect("list pods")
            .items
            .len();
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} pod(s)"))
        }
    })
    .await;
    stop.cancel();
    let observed = watcher.await.expect("pod watcher");
    for c in std::iter::once(&mut controller).chain(second.as_mut()) {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
    (job, observed, kills, plane)
}

/// `replicas`: how many controllers ran at once (each may fill the parallelism).
fn assert_counted_exactly(
    job: &v1::Job,
    observed: &Observed,
    kills: usize,
    plane: &Plane,
    replicas: usize,
    completions: usize,
) {
    let logs = plane.dir().display();
    eprintln!(
        "{kills} kills; {} pods seen, {} Succeeded; at most {} running at once",
        observed.pods_seen,
        observed.succeeded_total(),
        observed.max_running
    );
    let status = job.status.clone().unwrap_or_default();
    let scheduled = KILL_AFTER.iter().filter(|t| **t < completions).count();
    assert!(
        kills >= scheduled,
        "the controller was killed only {kills} times"
    );
    assert_eq!(
        status.succeeded as usize, completions,
        "succeeded (logs in {logs})"
    );
    assert_eq!(status.failed, 0, "failed (logs in {logs})");
    assert_eq!(status.active, 0);
    let uncounted = status.uncounted_terminated_pods.unwrap_or_default();
    assert!(
        uncounted.succeeded.is_empty() && uncounted.failed.is_empty(),
        "uncountedTerminatedPods left: {uncounted:?}"
    );
    assert!(
        observed.max_running <= replicas * PARALLELISM,
        "{} pods were running at once (parallelism {PARALLELISM}, {replicas} controllers; logs in {logs})",
        observed.max_running
    );
    // The pace was kept: parallelism was actually used.
    assert!(
        observed.max_running >= PARALLELISM / 2,
        "at most {} pods ever ran at once",
        observed.max_running
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexed_job_of_1000_counts_each_index_once_while_its_controller_is_killed() {
    let (job, observed, kills, plane) = run_under_faults("indexed", true, false, COMPLETIONS).await;
    assert_counted_exactly(&job, &observed, kills, &plane, 1, COMPLETIONS);
    let status = job.status.clone().unwrap_or_default();
    assert_eq!(status.completed_indexes, format!("0-{}", COMPLETIONS - 1));
    let twice: Vec<(&i64, &HashSet<String>)> = observed
        .succeeded
        .iter()
        .filter(|(_, uids)| uids.len() > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "completion indexes done by two pods: {twice:?} (logs in {})",
        plane.dir().display()
    );
    let done: Vec<i64> = observed.succeeded.keys().copied().collect();
    let want: Vec<i64> = (0..COMPLETIONS as i64).collect();
    assert_eq!(done, want, "the indexes whose pods Succeeded");
    assert!(
        observed.pods_seen >= COMPLETIONS,
        "only {} pods seen",
        observed.pods_seen
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_indexed_job_of_1000_counts_exactly_1000_while_its_controller_is_killed() {
    let (job, observed, kills, plane) =
        run_under_faults("nonindexed", false, false, COMPLETIONS).await;
    assert_counted_exactly(&job, &observed, kills, &plane, 1, COMPLETIONS);
    assert_eq!(
        observed.succeeded_total(),
        COMPLETIONS,
        "pods seen Succeeded (logs in {})",
        plane.dir().display()
    );
}

/// Two controllers at once, as during a rolling update or beside an old replica cut off from
/// its peers (bosun has no leader election yet): one of them killed on the schedule above, the
/// other running throughout. Both create pods, so more than `parallelism` may run and an
/// index may be done by two pods; each index is still counted once, and nothing is left
/// uncounted or tracked.
///
/// Ignored in the default run: the two controllers fight over the index pods (each deletes
/// what it sees as the other's duplicates), and on a loaded machine the Job may take minutes
/// to finish (15 s alone, 72 s and over 180 s beside the other tests). The counts held in
/// every run that finished. `cargo nextest run -p bosun-tests --run-ignored all -E
/// 'test(two_controllers)'` runs it; leader election or shard leases would end the fight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "two controllers fight over index pods and may take minutes; run by hand"]
async fn two_controllers_at_once_count_each_index_once() {
    const N: usize = OVERLAP_COMPLETIONS;
    let (job, observed, kills, plane) = run_under_faults("overlap", true, true, N).await;
    assert_counted_exactly(&job, &observed, kills, &plane, 2, N);
    let status = job.status.clone().unwrap_or_default();
    assert_eq!(status.completed_indexes, format!("0-{}", N - 1));
    let done: Vec<i64> = observed.succeeded.keys().copied().collect();
    let want: Vec<i64> = (0..N as i64).collect();
    assert_eq!(done, want, "the indexes whose pods Succeeded");
    let twice = observed.succeeded.values().filter(|u| u.len() > 1).count();
    eprintln!("{twice} indexes done by two pods (counted once each)");
}
