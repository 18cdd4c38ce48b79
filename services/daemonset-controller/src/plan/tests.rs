//! Table tests of every decision: manage, both rolling algorithms, revisions, status.

use std::collections::BTreeMap;
use std::time::Duration;

use bosun_api::daemonset::Placement;
use bosun_api::v1;
use bosun_api::vocab::daemonset::{ON_DELETE, PAUSED_ANNOTATION};
use chrono::{DateTime, Utc};

use super::history::{Current, cleanup, current};
use super::manage::{BACKOFF_INITIAL, BACKOFF_MAX, BackoffEntry, ManageInputs, manage};
use super::*;

pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).expect("a valid time")
}

/// The time every table runs at.
fn now() -> DateTime<Utc> {
    t(1000)
}

const RUN: Placement = Placement {
    should_run: true,
    should_continue_running: true,
};
const KEEP: Placement = Placement {
    should_run: false,
    should_continue_running: true,
};
const NO: Placement = Placement {
    should_run: false,
    should_continue_running: false,
};

fn node(name: &str, placement: Placement) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        placement,
        ready: true,
    }
}

fn not_ready(name: &str) -> NodeFacts {
    NodeFacts {
        ready: false,
        ..node(name, RUN)
    }
}

/// A running, available pod `name` on `node` of revision `hash`, created at `t(created)`.
fn pod(name: &str, node: &str, hash: &str, created: i64) -> PodFacts {
    PodFacts {
        name: name.into(),
        uid: format!("uid-{name}"),
        node: Some(node.into()),
        hash: hash.into(),
        phase: "Running".into(),
        scheduled: true,
        deleting: false,
        created: Some(t(created)),
        ready_since: Some(t(created + 1)),
    }
}

fn unready(mut p: PodFacts) -> PodFacts {
    p.ready_since = None;
    p
}

fn phase(mut p: PodFacts, phase: &str) -> PodFacts {
    p.phase = phase.into();
    p.ready_since = None;
    p
}

fn deleting(mut p: PodFacts) -> PodFacts {
    p.deleting = true;
    p
}

fn names(d: &[Deletion]) -> Vec<&str> {
    d.iter().map(|d| d.name.as_str()).collect()
}

// ---- manage ----

#[test]
fn manage_decides_per_node_like_kubernetes() {
    type Row = (
        &'static str,
        Vec<NodeFacts>,
        Vec<PodFacts>,
        bool,
        Vec<&'static str>,
        Vec<(&'static str, DeleteReason)>,
    );
    // (name, nodes, pods, surge allowed, create on, delete (pod, reason))
    let table: Vec<Row> = vec![
        (
            "a node without a pod gets one",
            vec![node("n1", RUN), node("n2", RUN)],
            vec![pod("a", "n1", "h", 0)],
            false,
            vec!["n2"],
            vec![],
        ),
        (
            "a node that should not run gets none",
            vec![node("n1", KEEP), node("n2", NO)],
            vec![],
            false,
            vec![],
            vec![],
        ),
        (
            "a NoSchedule node keeps its pod",
            vec![node("n1", KEEP)],
            vec![pod("a", "n1", "h", 0)],
            false,
            vec![],
            vec![],
        ),
        (
            "an ineligible node loses every pod",
            vec![node("n1", NO)],
            vec![pod("a", "n1", "h", 0), pod("b", "n1", "old", 1)],
            false,
            vec![],
            vec![
                ("a", DeleteReason::NodeIneligible),
                ("b", DeleteReason::NodeIneligible),
            ],
        ),
        (
            "a pod being deleted is waited for, not replaced",
            vec![node("n1", RUN)],
            vec![deleting(pod("a", "n1", "h", 0))],
            false,
            vec![],
            vec![],
        ),
        (
            "a succeeded pod is deleted",
            vec![node("n1", RUN)],
            vec![phase(pod("a", "n1", "h", 0), "Succeeded")],
            false,
            vec![],
            vec![("a", DeleteReason::Succeeded)],
        ),
        (
            "a failed pod is deleted",
            vec![node("n1", RUN)],
            vec![phase(pod("a", "n1", "h", 0), "Failed")],
            false,
            vec![],
            vec![("a", DeleteReason::Failed)],
        ),
        (
            "without surge the oldest of two stays",
            vec![node("n1", RUN)],
            vec![pod("young", "n1", "h", 5), pod("old", "n1", "h", 1)],
            false,
            vec![],
            vec![("young", DeleteReason::Surplus)],
        ),
        (
            "a bound pod counts as older than an unbound one",
            vec![node("n1", RUN)],
            vec![
                PodFacts {
                    scheduled: false,
                    ..pod("unbound", "n1", "h", 0)
                },
                pod("bound", "n1", "h", 5),
            ],
            false,
            vec![],
            vec![("unbound", DeleteReason::Surplus)],
        ),
        (
            "with surge one old and one new stay",
            vec![node("n1", RUN)],
            vec![
                pod("old1", "n1", "old", 1),
                pod("new1", "n1", "h", 2),
                pod("old2", "n1", "old", 3),
                pod("new2", "n1", "h", 4),
            ],
            true,
            vec![],
            vec![
                ("old2", DeleteReason::Surplus),
                ("new2", DeleteReason::Surplus),
            ],
        ),
        (
            "a pod on a node that is gone is deleted",
            vec![node("n1", RUN)],
            vec![pod("a", "n1", "h", 0), pod("b", "gone", "h", 0)],
            false,
            vec![],
            vec![("b", DeleteReason::NodeGone)],
        ),
        (
            "a pod pinned nowhere is deleted",
            vec![node("n1", RUN)],
            vec![
                pod("a", "n1", "h", 0),
                PodFacts {
                    node: None,
                    ..pod("b", "x", "h", 0)
                },
            ],
            false,
            vec![],
            vec![("b", DeleteReason::NodeGone)],
        ),
    ];
    let backoff = BTreeMap::new();
    for (name, nodes, pods, surge, want_create, want_delete) in table {
        let m = manage(&ManageInputs {
            nodes: &nodes,
            pods: &pods,
            hash: "h",
            surge_allowed: surge,
            backoff: &backoff,
            now: now(),
        });
        assert_eq!(m.create, want_create, "{name}: create");
        let got: Vec<(&str, DeleteReason)> = m
            .delete
            .iter()
            .map(|d| (d.name.as_str(), d.reason))
            .collect();
        assert_eq!(got, want_delete, "{name}: delete");
    }
}

#[test]
fn failed_pods_are_deleted_with_a_per_node_backoff_and_an_event() {
    let nodes = [node("n1", RUN)];
    let pods = [phase(pod("a", "n1", "h", 0), "Failed")];
    // (name, stored entry, deleted, stored delay, requeue after)
    type Row<'a> = (
        &'a str,
        Option<BackoffEntry>,
        bool,
        Option<u64>,
        Option<u64>,
    );
    let table: [Row; 5] = [
        ("first failure", None, true, Some(1), Some(1)),
        (
            "still backing off",
            Some(BackoffEntry {
                delay: Duration::from_secs(8),
                last_update: t(995),
            }),
            false,
            None,
            Some(3),
        ),
        (
            "back-off over: doubles",
            Some(BackoffEntry {
                delay: Duration::from_secs(8),
                last_update: t(990),
            }),
            true,
            Some(16),
            Some(16),
        ),
        (
            "capped at 15 minutes",
            Some(BackoffEntry {
                delay: BACKOFF_MAX,
                last_update: t(1000 - 900),
            }),
            true,
            Some(900),
            Some(900),
        ),
        (
            "forgotten after twice the cap",
            Some(BackoffEntry {
                delay: BACKOFF_MAX,
                last_update: t(1000 - 1801),
            }),
            true,
            Some(BACKOFF_INITIAL.as_secs()),
            Some(1),
        ),
    ];
    for (name, stored, deleted, delay, requeue) in table {
        let backoff: BTreeMap<String, BackoffEntry> =
            stored.into_iter().map(|e| ("n1".to_string(), e)).collect();
        let m = manage(&ManageInputs {
            nodes: &nodes,
            pods: &pods,
            hash: "h",
            surge_allowed: false,
            backoff: &backoff,
            now: now(),
        });
        assert_eq!(!m.delete.is_empty(), deleted, "{name}: deleted");
        assert_eq!(
            m.backoff.first().map(|(_, e)| e.delay.as_secs()),
            delay,
            "{name}: stored delay"
        );
        assert_eq!(
            m.requeue_after.map(|d| d.as_secs()),
            requeue,
            "{name}: requeue"
        );
        assert_eq!(
            m.events
                .iter()
                .any(|e| e.reason == "FailedDaemonPod" && e.warning),
            deleted,
            "{name}: event"
        );
        assert!(m.create.is_empty(), "{name}: a failed pod still exists");
    }
}

// ---- rolling ----

fn strategy(surge: i32, unavailable: i32) -> v1::DaemonSetUpdateStrategy {
    let int = |n| v1::IntOrString {
        is_string: false,
        int_val: n,
        str_val: String::new(),
    };
    v1::DaemonSetUpdateStrategy {
        r#type: "RollingUpdate".into(),
        rolling_update: Some(v1::RollingUpdateDaemonSet {
            max_surge: Some(int(surge)),
            max_unavailable: Some(int(unavailable)),
        }),
    }
}

fn rolling_of(
    surge: i32,
    unavailable: i32,
    nodes: &[NodeFacts],
    pods: &[PodFacts],
) -> rolling::Rolling {
    let s = strategy(surge, unavailable);
    rolling::rolling(&rolling::RollingInputs {
        strategy: Some(&s),
        min_ready_seconds: 0,
        nodes,
        pods,
        hash: "new",
        now: now(),
    })
}

fn three_nodes() -> Vec<NodeFacts> {
    vec![node("n1", RUN), node("n2", RUN), node("n3", RUN)]
}

#[test]
fn delete_first_replaces_within_max_unavailable() {
    type Row = (
        &'static str,
        i32,
        Vec<NodeFacts>,
        Vec<PodFacts>,
        Vec<&'static str>,
    );
    // (name, maxUnavailable, nodes, pods, deleted)
    let table: Vec<Row> = vec![
        (
            "all old and available: one at a time",
            1,
            three_nodes(),
            vec![
                pod("a", "n1", "old", 0),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec!["a"],
        ),
        (
            "a budget of two",
            2,
            three_nodes(),
            vec![
                pod("a", "n1", "old", 0),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec!["a", "b"],
        ),
        (
            "a new pod not yet available uses the budget",
            1,
            three_nodes(),
            vec![
                unready(pod("a", "n1", "new", 0)),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec![],
        ),
        (
            "a node without a pod uses the budget",
            1,
            three_nodes(),
            vec![pod("b", "n2", "old", 0), pod("c", "n3", "old", 0)],
            vec![],
        ),
        (
            "a node whose old pod is going uses the budget",
            1,
            three_nodes(),
            vec![
                deleting(pod("a", "n1", "old", 0)),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec![],
        ),
        (
            "a new available pod frees the budget",
            1,
            three_nodes(),
            vec![
                pod("a", "n1", "new", 0),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec!["b"],
        ),
        (
            "old unavailable pods are always replaced",
            1,
            three_nodes(),
            vec![
                unready(pod("a", "n1", "new", 0)),
                unready(pod("b", "n2", "old", 0)),
                unready(pod("c", "n3", "old", 0)),
            ],
            vec!["b", "c"],
        ),
        (
            "unavailable old pods go besides the budget's pick",
            1,
            three_nodes(),
            vec![
                pod("a", "n1", "old", 0),
                unready(pod("b", "n2", "old", 0)),
                pod("c", "n3", "old", 0),
            ],
            vec!["b", "a"],
        ),
        (
            "done: nothing to do",
            1,
            three_nodes(),
            vec![
                pod("a", "n1", "new", 0),
                pod("b", "n2", "new", 0),
                pod("c", "n3", "new", 0),
            ],
            vec![],
        ),
        (
            "NotReady node: its stale pod is replaced outside the budget",
            1,
            vec![not_ready("n1"), node("n2", RUN), node("n3", RUN)],
            vec![
                pod("a", "n1", "old", 0),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec!["a", "b"],
        ),
        (
            "NotReady node: its pending slot does not stall the rollout",
            1,
            vec![not_ready("n1"), node("n2", RUN), node("n3", RUN)],
            vec![
                deleting(pod("a", "n1", "old", 0)),
                pod("b", "n2", "new", 0),
                pod("c", "n3", "old", 0),
            ],
            vec!["c"],
        ),
        (
            "NotReady node never adds to the available pods taken down",
            1,
            vec![not_ready("n1"), node("n2", RUN), node("n3", RUN)],
            vec![
                unready(pod("a", "n1", "new", 0)),
                unready(pod("b", "n2", "new", 0)),
                pod("c", "n3", "old", 0),
            ],
            vec![],
        ),
    ];
    for (name, max_unavailable, nodes, pods, want) in table {
        let r = rolling_of(0, max_unavailable, &nodes, &pods);
        assert_eq!(names(&r.delete), want, "{name}");
        assert!(r.create.is_empty(), "{name}: delete first creates nothing");
        assert!(
            r.delete.iter().all(|d| d.reason == DeleteReason::Update),
            "{name}"
        );
    }
}

#[test]
fn create_first_surges_within_max_surge() {
    type Row = (
        &'static str,
        i32,
        Vec<NodeFacts>,
        Vec<PodFacts>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    // (name, maxSurge, nodes, pods, created on, deleted)
    let table: Vec<Row> = vec![
        (
            "all old and available: surge one",
            1,
            three_nodes(),
            vec![
                pod("a", "n1", "old", 0),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec!["n1"],
            vec![],
        ),
        (
            "a surge of two",
            2,
            three_nodes(),
            vec![
                pod("a", "n1", "old", 0),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec!["n1", "n2"],
            vec![],
        ),
        (
            "a new pod not yet available holds the surge",
            1,
            three_nodes(),
            vec![
                pod("a", "n1", "old", 0),
                unready(pod("a2", "n1", "new", 0)),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec![],
            vec![],
        ),
        (
            "an available new pod retires the old one",
            1,
            three_nodes(),
            vec![
                pod("a", "n1", "old", 0),
                pod("a2", "n1", "new", 0),
                pod("b", "n2", "old", 0),
                pod("c", "n3", "old", 0),
            ],
            vec!["n2"],
            vec!["a"],
        ),
        (
            "an unavailable old pod gets its new pod at once, beyond the surge",
            1,
            three_nodes(),
            vec![
                unready(pod("a", "n1", "old", 0)),
                unready(pod("b", "n2", "old", 0)),
                pod("c", "n3", "old", 0),
            ],
            vec!["n1", "n2", "n3"],
            vec![],
        ),
        (
            "an unavailable old pod on a node that should not run it goes",
            1,
            vec![node("n1", KEEP), node("n2", RUN)],
            vec![unready(pod("a", "n1", "old", 0)), pod("b", "n2", "new", 0)],
            vec![],
            vec!["a"],
        ),
        (
            "an available old pod off-constraints stays while nothing is spare",
            1,
            vec![node("n1", KEEP), node("n2", RUN)],
            vec![pod("a", "n1", "old", 0), unready(pod("b", "n2", "new", 0))],
            vec![],
            vec![],
        ),
        (
            "an available old pod off-constraints goes once more are available than desired",
            1,
            vec![node("n1", KEEP), node("n2", RUN)],
            vec![pod("a", "n1", "old", 0), pod("b", "n2", "new", 0)],
            vec![],
            vec!["a"],
        ),
        (
            "NotReady node: its old pod gets a new one at once",
            1,
            vec![not_ready("n1"), node("n2", RUN)],
            vec![pod("a", "n1", "old", 0), pod("b", "n2", "old", 0)],
            vec!["n1", "n2"],
            vec![],
        ),
    ];
    for (name, max_surge, nodes, pods, want_create, want_delete) in table {
        let r = rolling_of(max_surge, 0, &nodes, &pods);
        assert_eq!(r.create, want_create, "{name}: create");
        assert_eq!(names(&r.delete), want_delete, "{name}: delete");
    }
}

#[test]
fn create_first_looks_again_when_a_surged_pod_becomes_available() {
    // (name, pods, when to look again) at minReadySeconds 10, maxSurge 1, now = t(1000)
    let table: Vec<(&str, Vec<PodFacts>, Option<Duration>)> = vec![
        (
            "a surged pod Ready 4 s ago: in 6 s",
            vec![pod("a", "n1", "old", 0), pod("a2", "n1", "new", 995)],
            Some(Duration::from_secs(6)),
        ),
        (
            "a surged pod not Ready: its Ready change wakes us",
            vec![
                pod("a", "n1", "old", 0),
                unready(pod("a2", "n1", "new", 995)),
            ],
            None,
        ),
        (
            "a surged pod available: its old pod goes now",
            vec![pod("a", "n1", "old", 0), pod("a2", "n1", "new", 900)],
            None,
        ),
        ("no surge under way", vec![pod("a", "n1", "old", 0)], None),
    ];
    for (name, pods, want) in table {
        let s = strategy(1, 0);
        let r = rolling::rolling(&rolling::RollingInputs {
            strategy: Some(&s),
            min_ready_seconds: 10,
            nodes: &[node("n1", RUN)],
            pods: &pods,
            hash: "new",
            now: now(),
        });
        assert_eq!(r.requeue_after, want, "{name}");
    }
}

// ---- the whole plan ----

fn ds(change: impl FnOnce(&mut v1::DaemonSet)) -> v1::DaemonSet {
    let mut d = v1::DaemonSet {
        metadata: Some(v1::ObjectMeta {
            name: "agent".into(),
            namespace: "ns".into(),
            uid: "ds-uid".into(),
            generation: 3,
            ..Default::default()
        }),
        spec: Some(v1::DaemonSetSpec {
            template: Some(v1::PodTemplateSpec {
                metadata: Some(v1::ObjectMeta {
                    labels: [("app".to_string(), "agent".to_string())].into(),
                    ..Default::default()
                }),
                spec: Some(v1::PodSpec::default()),
            }),
            update_strategy: Some(strategy(0, 1)),
            revision_history_limit: Some(10),
            ..Default::default()
        }),
        status: None,
        ..Default::default()
    };
    change(&mut d);
    d
}

fn revision(name: &str, revision: i64, hash: &str, same: bool) -> RevisionFacts {
    RevisionFacts {
        name: name.into(),
        uid: format!("uid-{name}"),
        revision,
        hash: hash.into(),
        same_template: same,
    }
}

/// The current revision "agent-new" (hash "new") and an old one "agent-old".
fn revisions() -> Vec<RevisionFacts> {
    vec![
        revision("agent-old", 1, "old", false),
        revision("agent-new", 2, "new", true),
    ]
}

fn plan_of(
    ds: &v1::DaemonSet,
    nodes: &[NodeFacts],
    pods: &[PodFacts],
    revisions: &[RevisionFacts],
    satisfied: bool,
) -> Plan {
    plan(&Inputs {
        ds,
        nodes,
        pods,
        revisions,
        backoff: &BTreeMap::new(),
        expectations_satisfied: satisfied,
        now: now(),
    })
}

fn old_pods() -> Vec<PodFacts> {
    vec![
        pod("a", "n1", "old", 0),
        pod("b", "n2", "old", 0),
        pod("c", "n3", "old", 0),
    ]
}

#[test]
fn the_plan_runs_manage_then_the_rollout_unless_paused_or_on_delete() {
    type Change = fn(&mut v1::DaemonSet);
    // (name, change, nodes, pods, expectations satisfied, created on, deleted)
    type Row = (
        &'static str,
        Change,
        Vec<NodeFacts>,
        Vec<PodFacts>,
        bool,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let table: Vec<Row> = vec![
        (
            "rolling update replaces one",
            |_| {},
            three_nodes(),
            old_pods(),
            true,
            vec![],
            vec!["a"],
        ),
        (
            "manage first: a new node gets a pod, the rollout waits",
            |_| {},
            vec![
                node("n1", RUN),
                node("n2", RUN),
                node("n3", RUN),
                node("n4", RUN),
            ],
            old_pods(),
            true,
            vec!["n4"],
            vec![],
        ),
        (
            "paused: no update, placement still works",
            |d| {
                d.metadata
                    .as_mut()
                    .unwrap()
                    .annotations
                    .insert(PAUSED_ANNOTATION.into(), "true".into());
            },
            vec![
                node("n1", RUN),
                node("n2", RUN),
                node("n3", NO),
                node("n4", RUN),
            ],
            old_pods(),
            true,
            vec!["n4"],
            vec!["c"],
        ),
        (
            "paused: nothing to place, nothing updated",
            |d| {
                d.metadata
                    .as_mut()
                    .unwrap()
                    .annotations
                    .insert(PAUSED_ANNOTATION.into(), "true".into());
            },
            three_nodes(),
            old_pods(),
            true,
            vec![],
            vec![],
        ),
        (
            "OnDelete: old pods stay",
            |d| {
                d.spec.as_mut().unwrap().update_strategy = Some(v1::DaemonSetUpdateStrategy {
                    r#type: ON_DELETE.into(),
                    rolling_update: None,
                });
            },
            three_nodes(),
            old_pods(),
            true,
            vec![],
            vec![],
        ),
        (
            "OnDelete: a deleted pod comes back new (its node has none)",
            |d| {
                d.spec.as_mut().unwrap().update_strategy = Some(v1::DaemonSetUpdateStrategy {
                    r#type: ON_DELETE.into(),
                    rolling_update: None,
                });
            },
            three_nodes(),
            old_pods()[1..].to_vec(),
            true,
            vec!["n1"],
            vec![],
        ),
        (
            "expectations unsatisfied: nothing is touched",
            |_| {},
            vec![
                node("n1", RUN),
                node("n2", RUN),
                node("n3", RUN),
                node("n4", RUN),
            ],
            old_pods(),
            false,
            vec![],
            vec![],
        ),
    ];
    for (name, change, nodes, pods, satisfied, want_create, want_delete) in table {
        let d = ds(change);
        let p = plan_of(&d, &nodes, &pods, &revisions(), satisfied);
        assert_eq!(p.create, want_create, "{name}: create");
        assert_eq!(names(&p.delete), want_delete, "{name}: delete");
        assert_eq!(p.current.hash(), "new", "{name}");
        assert_eq!(
            p.status.observed_generation,
            if satisfied { 3 } else { 0 },
            "{name}: observedGeneration"
        );
    }
}

#[test]
fn creations_are_capped_at_the_burst() {
    let nodes: Vec<NodeFacts> = (0..BURST + 50)
        .map(|i| node(&format!("n{i:04}"), RUN))
        .collect();
    let p = plan_of(&ds(|_| {}), &nodes, &[], &revisions(), true);
    assert_eq!(p.create.len(), BURST);
    assert_eq!(p.create[0], "n0000");
}

// ---- revisions ----

#[test]
fn the_current_revision_is_found_created_renumbered_or_collides() {
    let d = ds(|_| {});
    let hash = bosun_api::daemonset::template_hash(
        d.spec.as_ref().unwrap().template.as_ref().unwrap(),
        None,
    );
    let name = format!("agent-{hash}");
    // (row, revisions, want)
    let table: Vec<(&str, Vec<RevisionFacts>, Current)> = vec![
        (
            "none yet: revision 1",
            vec![],
            Current::Create(NewRevision {
                name: name.clone(),
                hash: hash.clone(),
                revision: 1,
            }),
        ),
        (
            "only old ones: max + 1",
            vec![
                revision("agent-a", 4, "a", false),
                revision("agent-b", 7, "b", false),
            ],
            Current::Create(NewRevision {
                name: name.clone(),
                hash: hash.clone(),
                revision: 8,
            }),
        ),
        (
            "the newest matches",
            vec![
                revision("agent-a", 4, "a", false),
                revision("agent-b", 7, "b", true),
            ],
            Current::Existing {
                name: "agent-b".into(),
                hash: "b".into(),
                renumber: None,
            },
        ),
        (
            "an older one matches (undo): renumbered max + 1",
            vec![
                revision("agent-a", 4, "a", true),
                revision("agent-b", 7, "b", false),
            ],
            Current::Existing {
                name: "agent-a".into(),
                hash: "a".into(),
                renumber: Some(8),
            },
        ),
        (
            "duplicates: the newest is current",
            vec![
                revision("agent-a", 4, "a", true),
                revision("agent-b", 7, "b", true),
            ],
            Current::Existing {
                name: "agent-b".into(),
                hash: "b".into(),
                renumber: None,
            },
        ),
        (
            "the name is taken by another template: collision",
            vec![revision(&name, 1, &hash, false)],
            Current::Collision { name: name.clone() },
        ),
    ];
    for (row, revs, want) in table {
        assert_eq!(current(&d, &revs), want, "{row}");
    }
    // After a collision the count changes the name.
    let bumped = ds(|d| {
        d.status = Some(v1::DaemonSetStatus {
            collision_count: Some(1),
            ..Default::default()
        })
    });
    let Current::Create(n) = current(&bumped, &[revision(&name, 1, &hash, false)]) else {
        panic!("a bumped collision count names another revision");
    };
    assert_ne!(n.name, name);
    assert_eq!(n.revision, 2);
}

#[test]
fn a_collision_bumps_the_count_and_does_nothing_else() {
    let d = ds(|_| {});
    let hash = bosun_api::daemonset::template_hash(
        d.spec.as_ref().unwrap().template.as_ref().unwrap(),
        None,
    );
    let revs = [revision(&format!("agent-{hash}"), 1, &hash, false)];
    let p = plan_of(&d, &three_nodes(), &[], &revs, true);
    assert_eq!(p.status.collision_count, Some(1));
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(p.requeue_after, Some(Duration::ZERO));
}

#[test]
fn history_keeps_the_limit_and_every_revision_a_live_pod_uses() {
    let revs = vec![
        revision("r1", 1, "h1", false),
        revision("r2", 2, "h2", false),
        revision("r3", 3, "h3", false),
        revision("r4", 4, "h4", false),
        revision("cur", 5, "cur", true),
    ];
    let cur = Current::Existing {
        name: "cur".into(),
        hash: "cur".into(),
        renumber: None,
    };
    // (row, limit, live hashes, deleted)
    let table: [(&str, i32, &[&str], &[&str]); 5] = [
        ("within the limit", 4, &[], &[]),
        ("two too many: the oldest go", 2, &[], &["r1", "r2"]),
        ("a live pod keeps its revision", 2, &["h1"], &["r2", "r3"]),
        ("limit zero", 0, &["h4"], &["r1", "r2", "r3"]),
        (
            "the current one is never history",
            0,
            &["cur"],
            &["r1", "r2", "r3", "r4"],
        ),
    ];
    for (row, limit, live, want) in table {
        let pods: Vec<PodFacts> = live
            .iter()
            .enumerate()
            .map(|(i, h)| pod(&format!("p{i}"), "n1", h, 0))
            .collect();
        assert_eq!(cleanup(&revs, &cur, &pods, limit), want, "{row}");
    }
}

// ---- status ----

#[test]
fn status_counts_each_eligible_node_by_its_oldest_pod() {
    let nodes = vec![
        node("n1", RUN),
        node("n2", RUN),
        node("n3", RUN),
        node("n4", RUN),
        node("n5", NO),
        node("n6", KEEP),
    ];
    let pods = vec![
        pod("a", "n1", "new", 0),          // ready, available, updated
        pod("b", "n2", "old", 0),          // ready, available, old
        pod("b2", "n2", "new", 5),         // younger: not counted
        unready(pod("c", "n3", "new", 0)), // scheduled, not ready
        pod("e", "n5", "new", 0),          // misscheduled
        pod("f", "n6", "new", 0),          // misscheduled (should not run)
        pod("g", "n4", "new", 999),        // ready since t(1000): not yet available
    ];
    let (s, wait) = status::status(&nodes, &pods, "new", 30, now());
    assert_eq!(s.desired_number_scheduled, 4);
    assert_eq!(s.current_number_scheduled, 4);
    assert_eq!(s.number_misscheduled, 2);
    assert_eq!(s.number_ready, 3);
    assert_eq!(s.number_available, 2);
    assert_eq!(s.number_unavailable, 2);
    assert_eq!(s.updated_number_scheduled, 3);
    assert_eq!(
        wait,
        Some(Duration::from_secs(30)),
        "g becomes available in 30 s"
    );
    let (s0, wait0) = status::status(&nodes, &pods, "new", 0, now());
    assert_eq!((s0.number_available, wait0), (3, None));
}

#[test]
fn the_plan_requeues_when_a_pod_becomes_available() {
    let d = ds(|d| d.spec.as_mut().unwrap().min_ready_seconds = 10);
    let pods = vec![pod("a", "n1", "new", 995)];
    let p = plan_of(&d, &[node("n1", RUN)], &pods, &revisions(), true);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(6)));
    assert_eq!(p.status.number_ready, 1);
    assert_eq!(p.status.number_available, 0);

    // With surge, a new pod beside the (available) old one: the old goes when it is
    // available, and the status, counting the old pod, does not say when.
    let d = ds(|d| {
        let spec = d.spec.as_mut().unwrap();
        spec.min_ready_seconds = 10;
        spec.update_strategy = Some(strategy(1, 0));
    });
    let pods = vec![pod("a", "n1", "old", 0), pod("a2", "n1", "new", 995)];
    let p = plan_of(&d, &[node("n1", RUN)], &pods, &revisions(), true);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(6)));
    assert_eq!(p.status.number_available, 1);
}
