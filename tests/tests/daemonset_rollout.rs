//! DaemonSet rollouts end to end: real etcd, the real broker, the scheduler (with the node
//! lifecycle controller), the gc, the Job and DaemonSet controllers and three process-runtime
//! node agents in-process, the real `bosun` binary for `rollout undo|pause|resume|status`.
//!
//! The bounds a rollout must keep (maxUnavailable, maxSurge) are checked at every change:
//! a [`Recording`] of the pods (and nodes) from before the template changed until the rollout
//! is done, replayed event by event. Waits are on conditions with deadlines.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bosun_api::daemonset::{pod_node, ready_since};
use bosun_api::v1::{self, Kind};
use bosun_api::vocab::daemonset::REVISION_HASH_LABEL;
use bosun_runtime::client::{DeleteOptions, Selector, WatchEvent};
use bosun_tests::daemonset::uid;
use bosun_tests::{Recording, node_ready, phase, wait_for};

/// How long a rollout (three nodes, minReadySeconds of a few seconds) may take.
const WAIT: Duration = Duration::from_secs(60);

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
const NS: &str = "default";
const DS: &str = "roll";
const SELECTOR: &str = "app=roll";

bosun_tests::file_plane! {
    /// etcd, a broker, the scheduler, the gc, the Job and DaemonSet controllers and
    /// process-runtime nodes, with this file's helpers.
}

/// The DaemonSet `roll`: image `roll:v1` (the process runtime runs the command), a readiness
/// probe that passes, `minReadySeconds` and the `updateStrategy` given (a YAML flow mapping).
fn roll_yaml(strategy: &str, min_ready_seconds: i32) -> String {
    format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {DS}
spec:
  selector:
    matchLabels: {{app: roll}}
  minReadySeconds: {min_ready_seconds}
  updateStrategy: {strategy}
  template:
    metadata:
      labels: {{app: roll}}
    spec:
      containers:
      - name: roll
        image: roll:v1
        command: [sleep, \"3600\"]
        readinessProbe:
          exec: {{command: [\"true\"]}}
          periodSeconds: 1
"
    )
}

fn meta(pod: &v1::Pod) -> &v1::ObjectMeta {
    pod.metadata.as_ref().expect("metadata")
}

fn hash(pod: &v1::Pod) -> &str {
    meta(pod)
        .labels
        .get(REVISION_HASH_LABEL)
        .map_or("", String::as_str)
}

fn deleting(pod: &v1::Pod) -> bool {
    !meta(pod).deletion_timestamp.is_empty()
}

/// Ready (its own condition) and not being deleted.
fn serving(pod: &v1::Pod) -> bool {
    !deleting(pod) && ready_since(pod).is_some()
}

fn image(ds: &v1::DaemonSet) -> String {
    ds.spec
        .as_ref()
        .expect("spec")
        .template
        .as_ref()
        .expect("template")
        .spec
        .as_ref()
        .expect("pod spec")
        .containers[0]
        .image
        .clone()
}

fn set_image(image: &'static str) -> impl Fn(&mut v1::DaemonSet) {
    move |ds| {
        let template = ds.spec.as_mut().unwrap().template.as_mut().unwrap();
        template.spec.as_mut().unwrap().containers[0].image = image.into();
    }
}

fn generation(ds: &v1::DaemonSet) -> i64 {
    ds.metadata.as_ref().map_or(0, |m| m.generation)
}

/// The stored pods (by uid), after each change a recording saw, starting with its initial
/// state: `check` is called on each; the first `Err` panics naming the event.
fn replay(
    rec: &Recording,
    mut check: impl FnMut(&BTreeMap<String, v1::Pod>) -> Result<(), String>,
) -> usize {
    let mut pods: BTreeMap<String, v1::Pod> = rec
        .initial()
        .iter()
        .filter_map(|o| o.as_pod().map(|p| (o.uid().to_string(), p.clone())))
        .collect();
    if let Err(e) = check(&pods) {
        panic!("before the first change: {e}");
    }
    let events = rec.events();
    for (i, ev) in events.iter().enumerate() {
        match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                if let Some(p) = o.as_pod() {
                    pods.insert(o.uid().to_string(), p.clone());
                }
            }
            WatchEvent::Deleted(o) => {
                pods.remove(o.uid());
            }
            WatchEvent::Bookmark(_) => {}
        }
        if let Err(e) = check(&pods) {
            let summary: Vec<String> = pods.values().map(describe).collect();
            panic!(
                "after event {i} of {}: {e}\npods: {summary:#?}",
                events.len()
            );
        }
    }
    events.len()
}

/// One line about a pod: name, node, hash, phase, ready, deleting.
fn describe(p: &v1::Pod) -> String {
    format!(
        "{} on {:?} hash {} {} ready={} deleting={}",
        meta(p).name,
        pod_node(p),
        hash(p),
        phase(p),
        ready_since(p).is_some(),
        deleting(p)
    )
}

/// The stored pods grouped by the node they are pinned or bound to.
fn by_node(pods: &BTreeMap<String, v1::Pod>) -> BTreeMap<String, Vec<&v1::Pod>> {
    let mut out: BTreeMap<String, Vec<&v1::Pod>> = BTreeMap::new();
    for p in pods.values() {
        out.entry(pod_node(p).unwrap_or("").to_string())
            .or_default()
            .push(p);
    }
    out
}

/// The nodes of `nodes` with no serving pod.
fn without_serving_pod<'a>(pods: &BTreeMap<String, v1::Pod>, nodes: &[&'a str]) -> Vec<&'a str> {
    let grouped = by_node(pods);
    nodes
        .iter()
        .filter(|n| {
            !grouped
                .get(**n)
                .is_some_and(|ps| ps.iter().any(|p| serving(p)))
        })
        .copied()
        .collect()
}

impl Plane {
    async fn start(label: &str) -> Plane {
        Plane(
            bosun_tests::Plane::builder(&format!("ds-rollout-{label}"))
                .controllers()
                .nodes(&NODES)
                .start()
                .await,
        )
    }

    /// Applies `roll` with `strategy` and waits until it runs, ready, on every node.
    async fn roll_out(&self, strategy: &str, min_ready_seconds: i32) -> v1::DaemonSet {
        self.apply(&roll_yaml(strategy, min_ready_seconds)).await;
        self.wait_status(NS, DS, 3).await;
        self.daemon_set(NS, DS).await
    }

    /// Records every change to `roll`'s pods from now on.
    async fn record_pods(&self) -> Recording {
        Recording::start(
            self.client(),
            Kind::Pod,
            &Selector::namespace(NS).labels(SELECTOR),
        )
        .await
    }

    /// The hash of the ControllerRevision holding `roll`'s current template (waits for the
    /// controller to write it).
    async fn current_hash(&self) -> String {
        wait_for("the current revision of roll", WAIT, || async {
            let ds = self.daemon_set(NS, DS).await;
            let template = ds.spec.as_ref().and_then(|s| s.template.as_ref());
            let revisions = self.revisions().await;
            let found = revisions
                .iter()
                .filter(|r| r.data.as_ref().and_then(|d| d.template.as_ref()) == template)
                .max_by_key(|r| r.revision);
            match found {
                Some(r) => Ok(r.metadata.as_ref().unwrap().labels[REVISION_HASH_LABEL].clone()),
                None => Err(format!(
                    "{} revisions, none of the template",
                    revisions.len()
                )),
            }
        })
        .await
    }

    /// `roll`'s ControllerRevisions.
    async fn revisions(&self) -> Vec<v1::ControllerRevision> {
        self.client()
            .list(Kind::ControllerRevision, &Selector::namespace(NS))
            .await
            .expect("list revisions")
            .items
            .into_iter()
            .filter_map(v1::Object::into_controller_revision)
            .collect()
    }

    /// Waits until `nodes` each run exactly one pod (none being deleted, none elsewhere),
    /// Running and Ready, of revision `want`; returns the pods by node.
    async fn wait_rolled(&self, nodes: &[&str], want: &str) -> BTreeMap<String, v1::Pod> {
        wait_for(&format!("{nodes:?} all on {want}"), WAIT, || async {
            let all: BTreeMap<String, v1::Pod> = self
                .client()
                .list(Kind::Pod, &Selector::namespace(NS).labels(SELECTOR))
                .await
                .expect("list pods")
                .items
                .into_iter()
                .filter_map(v1::Object::into_pod)
                .map(|p| (uid(&p), p))
                .collect();
            let grouped = by_node(&all);
            let done = grouped.keys().map(String::as_str).eq(nodes.iter().copied())
                && grouped.values().all(|ps| {
                    ps.len() == 1
                        && hash(ps[0]) == want
                        && serving(ps[0])
                        && phase(ps[0]) == "Running"
                });
            if done {
                Ok(grouped
                    .into_iter()
                    .map(|(n, ps)| (n, ps[0].clone()))
                    .collect::<BTreeMap<_, _>>())
            } else {
                Err(format!(
                    "{:#?}",
                    all.values().map(describe).collect::<Vec<_>>()
                ))
            }
        })
        .await
    }

    /// Waits until the status, for the current generation, says `updated` of 3 nodes run the
    /// current revision and all 3 are available.
    async fn wait_settled(&self, updated: i32) -> v1::DaemonSetStatus {
        wait_for(
            &format!("roll settled with {updated} updated"),
            WAIT,
            || async {
                let ds = self.daemon_set(NS, DS).await;
                let s = ds.status.clone().unwrap_or_default();
                let have = (
                    s.observed_generation,
                    s.desired_number_scheduled,
                    s.current_number_scheduled,
                    s.number_available,
                    s.updated_number_scheduled,
                );
                if have == (generation(&ds), 3, 3, 3, updated) {
                    Ok(s)
                } else {
                    Err(format!("{s:?} (generation {})", generation(&ds)))
                }
            },
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_unavailable_1_never_leaves_two_nodes_without_a_ready_pod() {
    let plane = Plane::start("max-unavailable").await;
    plane
        .roll_out(
            "{type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}",
            1,
        )
        .await;
    let old_hash = plane.current_hash().await;
    let rec = plane.record_pods().await;
    let before = plane.wait_rolled(&NODES, &old_hash).await;

    plane.update_daemon_set(NS, DS, set_image("roll:v2")).await;
    let new_hash = plane.current_hash().await;
    assert_ne!(new_hash, old_hash);
    let after = plane.wait_rolled(&NODES, &new_hash).await;
    plane.wait_settled(3).await;

    for node in NODES {
        assert_ne!(uid(&after[node]), uid(&before[node]), "{node} replaced");
        assert_eq!(
            after[node].spec.as_ref().unwrap().containers[0].image,
            "roll:v2"
        );
    }
    let mut worst = 0;
    let events = replay(&rec, |pods| {
        let down = without_serving_pod(pods, &NODES);
        worst = worst.max(down.len());
        if down.len() > 1 {
            Err(format!("{down:?} have no ready pod"))
        } else {
            Ok(())
        }
    });
    assert_eq!(
        worst, 1,
        "every node was down once, one at a time ({events} events)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_surge_1_keeps_at_most_two_pods_per_node_and_every_node_serving() {
    let plane = Plane::start("max-surge").await;
    plane
        .roll_out(
            "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}",
            1,
        )
        .await;
    let rec = plane.record_pods().await;

    plane.update_daemon_set(NS, DS, set_image("roll:v2")).await;
    let new_hash = plane.current_hash().await;
    plane.wait_rolled(&NODES, &new_hash).await;
    plane.wait_settled(3).await;

    let mut most = 0;
    replay(&rec, |pods| {
        for (node, ps) in by_node(pods) {
            most = most.max(ps.len());
            if ps.len() > 2 {
                return Err(format!("{} pods on {node}", ps.len()));
            }
        }
        // maxUnavailable 0: the old pod goes only once the new one is available.
        let down = without_serving_pod(pods, &NODES);
        if down.is_empty() {
            Ok(())
        } else {
            Err(format!("{down:?} have no ready pod"))
        }
    });
    assert_eq!(most, 2, "the new pod surged beside the old one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollout_undo_brings_the_previous_template_back_as_a_new_revision() {
    let plane = Plane::start("undo").await;
    plane.roll_out("{type: RollingUpdate}", 0).await;
    let v1_hash = plane.current_hash().await;
    plane.update_daemon_set(NS, DS, set_image("roll:v2")).await;
    let v2_hash = plane.current_hash().await;
    plane.wait_rolled(&NODES, &v2_hash).await;
    plane.wait_settled(3).await;

    assert_eq!(
        plane.ok(&["rollout", "undo", "ds/roll"]).await,
        "daemonset.apps/roll rolled back\n"
    );
    assert_eq!(image(&plane.daemon_set(NS, DS).await), "roll:v1");
    assert_eq!(
        plane.current_hash().await,
        v1_hash,
        "the old revision is current again"
    );
    let pods = plane.wait_rolled(&NODES, &v1_hash).await;
    for pod in pods.values() {
        assert_eq!(pod.spec.as_ref().unwrap().containers[0].image, "roll:v1");
    }
    plane.wait_settled(3).await;

    // Revision 1 renumbered as 3: history lists 2 and 3, and 3 is the v1 template.
    let renumbered = wait_for("revision 1 renumbered as 3", WAIT, || async {
        let revisions = plane.revisions().await;
        let numbers: BTreeMap<String, i64> = revisions
            .iter()
            .map(|r| {
                (
                    r.metadata.as_ref().unwrap().labels[REVISION_HASH_LABEL].clone(),
                    r.revision,
                )
            })
            .collect();
        let want = BTreeMap::from([(v1_hash.clone(), 3), (v2_hash.clone(), 2)]);
        if numbers == want {
            Ok(())
        } else {
            Err(format!("{numbers:?}"))
        }
    });
    renumbered.await;
    let history = plane.ok(&["rollout", "history", "ds/roll"]).await;
    let rows: Vec<Vec<&str>> = history
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["daemonset.apps/roll"],
            vec!["REVISION", "CHANGE-CAUSE"],
            vec!["2", "<none>"],
            vec!["3", "<none>"],
            vec![],
        ],
        "{history}"
    );
    let three = plane
        .ok(&["rollout", "history", "ds/roll", "--revision=3"])
        .await;
    assert!(
        three.contains("roll:v1") && !three.contains("roll:v2"),
        "{three}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_rollout_stops_half_way_and_resume_finishes_it() {
    let plane = Plane::start("pause").await;
    // minReadySeconds 3: each node takes seconds, time to pause after the first.
    plane
        .roll_out(
            "{type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}",
            3,
        )
        .await;
    let old_hash = plane.current_hash().await;
    plane.update_daemon_set(NS, DS, set_image("roll:v2")).await;
    let new_hash = plane.current_hash().await;
    wait_for("one node updated", WAIT, || async {
        let pods = plane.live_pods(NS, SELECTOR).await;
        let new = pods.iter().filter(|p| hash(p) == new_hash).count();
        let old = pods.iter().filter(|p| hash(p) == old_hash).count();
        if new >= 1 && old >= 1 {
            Ok(())
        } else {
            Err(format!("{new} new, {old} old"))
        }
    })
    .await;
    assert_eq!(
        plane.ok(&["rollout", "pause", "ds/roll"]).await,
        "daemonset.apps/roll paused\n"
    );

    // A spec change after the pause: once its generation is observed, the controller has
    // reconciled with the pause. Whatever it had started goes on to all-available.
    let limit = |n: i32| {
        move |ds: &mut v1::DaemonSet| ds.spec.as_mut().unwrap().revision_history_limit = Some(n)
    };
    plane.update_daemon_set(NS, DS, limit(5)).await;
    let paused_at = wait_for("the paused rollout settled", WAIT, || async {
        let ds = plane.daemon_set(NS, DS).await;
        let s = ds.status.clone().unwrap_or_default();
        let settled = s.observed_generation == generation(&ds)
            && s.current_number_scheduled == 3
            && s.number_available == 3;
        if settled {
            Ok(s.updated_number_scheduled)
        } else {
            Err(format!("{s:?} (generation {})", generation(&ds)))
        }
    })
    .await;
    assert!(
        (1..3).contains(&paused_at),
        "paused half way: {paused_at} of 3 updated"
    );
    let held: BTreeSet<String> = plane
        .live_pods(NS, SELECTOR)
        .await
        .iter()
        .map(uid)
        .collect();
    let rec = plane.record_pods().await;
    // Every pod has been available for minReadySeconds: unpaused, the reconcile that saw it
    // would take the next old pod down. Make the controller look again, twice.
    for n in [6, 7] {
        plane.update_daemon_set(NS, DS, limit(n)).await;
        plane.wait_settled(paused_at).await;
    }
    let now: BTreeSet<String> = plane
        .live_pods(NS, SELECTOR)
        .await
        .iter()
        .map(uid)
        .collect();
    assert_eq!(now, held, "no pod replaced while paused");
    replay(&rec, |pods| match pods.values().find(|p| deleting(p)) {
        Some(p) => Err(format!("{} deleted while paused", meta(p).name)),
        None if pods.len() == 3 => Ok(()),
        None => Err(format!("{} pods while paused", pods.len())),
    });
    let old_left = plane
        .live_pods(NS, SELECTOR)
        .await
        .iter()
        .filter(|p| hash(p) == old_hash)
        .count();
    assert_eq!(old_left as i32, 3 - paused_at, "the old pods stay");

    assert_eq!(
        plane.ok(&["rollout", "resume", "ds/roll"]).await,
        "daemonset.apps/roll resumed\n"
    );
    let status = plane
        .ok(&["rollout", "status", "ds/roll", "--timeout=60s"])
        .await;
    assert!(
        status.ends_with("daemon set \"roll\" successfully rolled out\n"),
        "{status}"
    );
    plane.wait_rolled(&NODES, &new_hash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_delete_replaces_only_the_pod_deleted() {
    let plane = Plane::start("on-delete").await;
    plane.roll_out("{type: OnDelete}", 0).await;
    let old_hash = plane.current_hash().await;
    let before = plane.wait_rolled(&NODES, &old_hash).await;
    let rec = plane.record_pods().await;

    let ds = plane.update_daemon_set(NS, DS, set_image("roll:v2")).await;
    let new_hash = plane.current_hash().await;
    assert_ne!(new_hash, old_hash);
    // The controller saw the new template (the revision is its, the generation observed)...
    wait_for("the template change observed", WAIT, || async {
        let s = plane.daemon_set(NS, DS).await.status.unwrap_or_default();
        if s.observed_generation == generation(&ds) && s.updated_number_scheduled == 0 {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    // ...and changed no pod.
    replay(&rec, |pods| {
        let uids: BTreeSet<&String> = pods.keys().collect();
        let want: BTreeSet<String> = before.values().map(uid).collect();
        match pods.values().find(|p| deleting(p)) {
            Some(p) => Err(format!("{} deleted", meta(p).name)),
            None if uids == want.iter().collect() => Ok(()),
            None => Err("the pods changed".into()),
        }
    });

    let victim = &before["node-2"];
    plane
        .client()
        .delete(Kind::Pod, NS, &meta(victim).name, DeleteOptions::default())
        .await
        .expect("delete the pod on node-2");
    let after = wait_for("a new pod on node-2", WAIT, || async {
        let pods = plane.wait_running_on(NS, SELECTOR, &NODES).await;
        (uid(&pods["node-2"]) != uid(victim) && serving(&pods["node-2"])).then_some(pods)
    })
    .await;
    assert_eq!(hash(&after["node-2"]), new_hash);
    assert_eq!(
        after["node-2"].spec.as_ref().unwrap().containers[0].image,
        "roll:v2"
    );
    for node in ["node-1", "node-3"] {
        assert_eq!(uid(&after[node]), uid(&before[node]), "{node} kept its pod");
        assert_eq!(hash(&after[node]), old_hash, "{node}");
    }
    plane.wait_settled(1).await;
    // Nothing but the pod deleted here went.
    let deleted: Vec<String> = rec
        .events()
        .iter()
        .filter_map(|ev| match ev {
            WatchEvent::Deleted(o) => Some(o.name().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [meta(victim).name.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollout_does_not_stall_behind_a_node_whose_agent_stopped() {
    let plane = bosun_tests::Plane::builder("ds-rollout-not-ready")
        .controllers()
        .scheduler_with(|c| c.node_monitor_grace_period = Duration::from_secs(2))
        .nodes(&NODES[..2])
        .start()
        .await;
    let agent = plane.start_node("node-3").await;
    let plane = Plane(plane);
    plane
        .roll_out(
            "{type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}",
            1,
        )
        .await;
    let old_hash = plane.current_hash().await;
    let before = plane.wait_rolled(&NODES, &old_hash).await;

    agent.stop().await;
    wait_for("node-3 not Ready", WAIT, || async {
        let node = plane
            .client()
            .get(Kind::Node, "", "node-3")
            .await
            .expect("get node-3")
            .into_node()
            .expect("a Node");
        !node_ready(&node)
    })
    .await;
    // Its pod stays bound, and the DaemonSet counts it unavailable.
    wait_for("node-3's pod counted unavailable", WAIT, || async {
        let s = plane.daemon_set(NS, DS).await.status.unwrap_or_default();
        let have = (
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_ready,
            s.number_available,
            s.number_unavailable,
        );
        if have == (3, 3, 2, 2, 1) {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let pods = plane.live_pods(NS, SELECTOR).await;
    let on_3: Vec<&v1::Pod> = pods
        .iter()
        .filter(|p| pod_node(p) == Some("node-3"))
        .collect();
    assert_eq!(on_3.len(), 1, "{pods:#?}");
    assert_eq!(
        uid(on_3[0]),
        uid(&before["node-3"]),
        "still bound to node-3"
    );

    let rec = plane.record_pods().await;
    let nodes = Recording::start(plane.client(), Kind::Node, &Selector::all()).await;
    plane.update_daemon_set(NS, DS, set_image("roll:v2")).await;
    let new_hash = plane.current_hash().await;
    // The live nodes update; node-3 does not hold them back.
    wait_for("node-1 and node-2 updated", WAIT, || async {
        let pods = plane.live_pods(NS, SELECTOR).await;
        let updated: BTreeSet<&str> = pods
            .iter()
            .filter(|p| hash(p) == new_hash && serving(p) && phase(p) == "Running")
            .filter_map(|p| pod_node(p))
            .collect();
        let old_live: Vec<String> = pods
            .iter()
            .filter(|p| hash(p) == old_hash && pod_node(p) != Some("node-3"))
            .map(describe)
            .collect();
        if updated.contains("node-1") && updated.contains("node-2") && old_live.is_empty() {
            Ok(())
        } else {
            Err(format!("updated {updated:?}, old left {old_live:?}"))
        }
    })
    .await;
    // node-3 stayed NotReady throughout (the premise held)...
    for ev in nodes.events() {
        if let WatchEvent::Added(o) | WatchEvent::Modified(o) = ev
            && o.name() == "node-3"
        {
            assert!(!node_ready(o.as_node().unwrap()), "node-3 came back");
        }
    }
    // ...and the live nodes were taken down one at a time.
    replay(&rec, |pods| {
        let down = without_serving_pod(pods, &NODES[..2]);
        if down.len() > 1 {
            Err(format!("{down:?} have no ready pod"))
        } else {
            Ok(())
        }
    });
    // Back, node-3 gets the new revision too.
    let _agent = plane.start_node("node-3").await;
    plane.wait_rolled(&NODES, &new_hash).await;
    plane.wait_settled(3).await;
}
