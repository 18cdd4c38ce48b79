use super::*;

const NOW: &str = "2026-03-01T12:00:00Z";
const GRACE: Duration = Duration::from_secs(40);

fn node(ready: Option<&str>, taints: Vec<v1::Taint>, unschedulable: bool) -> v1::Node {
    v1::Node {
        spec: Some(v1::NodeSpec {
            unschedulable,
            taints,
            ..Default::default()
        }),
        status: Some(v1::NodeStatus {
            conditions: ready
                .map(|s| v1::Condition {
                    r#type: "Ready".into(),
                    status: s.into(),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn taint(key: &str, effect: &str, added: &str) -> v1::Taint {
    v1::Taint {
        key: key.into(),
        value: String::new(),
        effect: effect.into(),
        time_added: added.into(),
    }
}

fn keys(plan: &NodePlan) -> Option<Vec<String>> {
    plan.taints.as_ref().map(|ts| {
        ts.iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect()
    })
}

#[test]
fn node_plans_follow_lease_age_readiness_and_cordon() {
    let fresh = Duration::from_secs(1);
    let stale = Duration::from_secs(41);
    let unreachable = taint(taint::UNREACHABLE, "NoExecute", "2026-03-01T11:00:00Z");
    let not_ready = taint(taint::NOT_READY, "NoExecute", "2026-03-01T11:00:00Z");
    let user = taint("dedicated", "NoSchedule", "");
    // (what, node, lease age, condition written?, new taints or None if unchanged)
    type Row<'a> = (&'a str, v1::Node, Duration, bool, Option<Vec<&'a str>>);
    let table: Vec<Row> = vec![
        (
            "a ready node is left alone",
            node(Some("True"), vec![], false),
            fresh,
            false,
            None,
        ),
        (
            "a stale lease: Unknown and unreachable",
            node(Some("True"), vec![user.clone()], false),
            stale,
            true,
            Some(vec![
                "dedicated:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute",
            ]),
        ),
        (
            "already Unknown and tainted: nothing more",
            node(Some("Unknown"), vec![unreachable.clone()], false),
            stale,
            false,
            None,
        ),
        (
            "back and reporting Ready: the taint goes",
            node(Some("True"), vec![unreachable.clone(), user.clone()], false),
            fresh,
            false,
            Some(vec!["dedicated:NoSchedule"]),
        ),
        (
            "lease fresh but Ready still Unknown: the taint stays until the agent reports",
            node(Some("Unknown"), vec![unreachable.clone()], false),
            fresh,
            false,
            None,
        ),
        (
            "the agent reports Ready=False: not-ready",
            node(Some("False"), vec![], false),
            fresh,
            false,
            Some(vec!["node.kubernetes.io/not-ready:NoExecute"]),
        ),
        (
            "not-ready turning unreachable swaps the taints",
            node(Some("False"), vec![not_ready.clone()], false),
            stale,
            true,
            Some(vec!["node.kubernetes.io/unreachable:NoExecute"]),
        ),
        (
            "a new node without conditions and a fresh lease is not tainted",
            node(None, vec![], false),
            fresh,
            false,
            None,
        ),
        (
            "cordoned: unschedulable taint",
            node(Some("True"), vec![], true),
            fresh,
            false,
            Some(vec!["node.kubernetes.io/unschedulable:NoSchedule"]),
        ),
        (
            "uncordoned: the taint goes",
            node(
                Some("True"),
                vec![taint(taint::UNSCHEDULABLE, "NoSchedule", "")],
                false,
            ),
            fresh,
            false,
            Some(vec![]),
        ),
    ];
    for (what, n, age, condition, want) in table {
        let plan = plan_node(&n, age, GRACE, NOW);
        assert_eq!(plan.ready_condition.is_some(), condition, "{what}");
        let want: Option<Vec<String>> = want.map(|v| v.iter().map(|s| s.to_string()).collect());
        assert_eq!(keys(&plan), want, "{what}");
    }
}

#[test]
fn the_stale_condition_and_new_taints_carry_kubernetes_wording_and_time() {
    let plan = plan_node(&node(Some("True"), vec![], false), GRACE * 2, GRACE, NOW);
    let cond = plan.ready_condition.expect("condition");
    assert_eq!(
        (
            cond.status.as_str(),
            cond.reason.as_str(),
            cond.message.as_str()
        ),
        (
            "Unknown",
            "NodeStatusUnknown",
            "Kubelet stopped posting node status."
        )
    );
    assert_eq!(cond.last_transition_time, NOW);
    assert_eq!(plan.taints.expect("taints")[0].time_added, NOW);
    // An existing taint keeps its timeAdded.
    let old = taint(taint::UNREACHABLE, "NoExecute", "2026-03-01T11:00:00Z");
    let plan = plan_node(
        &node(Some("Unknown"), vec![old.clone()], true),
        GRACE * 2,
        GRACE,
        NOW,
    );
    assert_eq!(plan.taints.expect("taints")[0], old);
}

fn tol(key: &str, op: &str, effect: &str, seconds: Option<i64>) -> v1::Toleration {
    v1::Toleration {
        key: key.into(),
        operator: op.into(),
        value: String::new(),
        effect: effect.into(),
        toleration_seconds: seconds,
    }
}

#[test]
fn evictions_follow_the_pods_own_tolerations() {
    let now: DateTime<Utc> = NOW.parse().unwrap();
    let added = "2026-03-01T11:59:00Z"; // one minute ago
    let unreachable = vec![taint(taint::UNREACHABLE, "NoExecute", added)];
    let both = vec![
        taint(taint::UNREACHABLE, "NoExecute", added),
        taint("maintenance", "NoExecute", added),
    ];
    let soft = vec![taint("x", "NoSchedule", added)];
    let at = |s: &str| Eviction::At(s.parse().unwrap());
    // (what, taints, tolerations, expected)
    let table = vec![
        (
            "no tolerations: now",
            unreachable.clone(),
            vec![],
            Eviction::Now,
        ),
        ("no NoExecute taint: never", soft, vec![], Eviction::Never),
        ("no taints: never", vec![], vec![], Eviction::Never),
        (
            "tolerated forever",
            unreachable.clone(),
            vec![tol(taint::UNREACHABLE, "Exists", "NoExecute", None)],
            Eviction::Never,
        ),
        (
            "tolerated by an all-tolerating toleration",
            both.clone(),
            vec![tol("", "Exists", "", None)],
            Eviction::Never,
        ),
        (
            "300 s from timeAdded",
            unreachable.clone(),
            vec![tol(taint::UNREACHABLE, "Exists", "NoExecute", Some(300))],
            at("2026-03-01T12:04:00Z"),
        ),
        (
            "30 s from timeAdded is already past",
            unreachable.clone(),
            vec![tol(taint::UNREACHABLE, "Exists", "NoExecute", Some(30))],
            Eviction::Now,
        ),
        (
            "one of two taints untolerated: now",
            both.clone(),
            vec![tol(taint::UNREACHABLE, "Exists", "NoExecute", None)],
            Eviction::Now,
        ),
        (
            "the shortest toleration wins",
            both,
            vec![
                tol(taint::UNREACHABLE, "Exists", "NoExecute", Some(600)),
                tol("maintenance", "Exists", "", Some(120)),
            ],
            at("2026-03-01T12:01:00Z"),
        ),
        (
            "a NoSchedule toleration does not count",
            unreachable,
            vec![tol(taint::UNREACHABLE, "Exists", "NoSchedule", None)],
            Eviction::Now,
        ),
    ];
    for (what, taints, tolerations, want) in table {
        assert_eq!(eviction(&taints, &tolerations, now), want, "{what}");
    }
}

#[test]
fn finished_and_deleting_pods_are_not_evicted() {
    let pod = |phase: &str, deleting: bool| v1::Pod {
        metadata: Some(v1::ObjectMeta {
            deletion_timestamp: if deleting { NOW.into() } else { String::new() },
            ..Default::default()
        }),
        status: Some(v1::PodStatus {
            phase: phase.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let table = [
        (pod("Running", false), true),
        (pod("Pending", false), true),
        (pod("Succeeded", false), false),
        (pod("Failed", false), false),
        (pod("Running", true), false),
    ];
    for (p, want) in table {
        assert_eq!(evictable(&p), want, "{p:?}");
    }
}

#[test]
fn the_pods_of_an_unknown_node_lose_ready() {
    let cond = |ty: &str, status: &str, at: &str| v1::Condition {
        r#type: ty.into(),
        status: status.into(),
        last_transition_time: at.into(),
        ..Default::default()
    };
    let earlier = "2026-03-01T11:00:00Z";
    let pod = |ready: Option<&str>| v1::Pod {
        status: Some(v1::PodStatus {
            phase: "Running".into(),
            conditions: [cond("Initialized", "True", earlier)]
                .into_iter()
                .chain(ready.map(|s| cond("Ready", s, earlier)))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let marked = Some(vec![
        cond("Initialized", "True", earlier),
        cond("Ready", "False", NOW),
    ]);
    // (what, node's Ready, pod's Ready, conditions written)
    let table = [
        (
            "unknown node, ready pod: marked",
            Some("Unknown"),
            Some("True"),
            marked,
        ),
        (
            "unknown node, pod not ready: left",
            Some("Unknown"),
            Some("False"),
            None,
        ),
        (
            "unknown node, no Ready yet: left",
            Some("Unknown"),
            None,
            None,
        ),
        ("ready node: left", Some("True"), Some("True"), None),
        (
            "not ready node: left to its agent",
            Some("False"),
            Some("True"),
            None,
        ),
        ("node without a condition: left", None, Some("True"), None),
    ];
    for (what, node_ready, pod_ready, want) in table {
        let got = not_ready_conditions(&node(node_ready, vec![], false), &pod(pod_ready), NOW);
        assert_eq!(got, want, "{what}");
    }
}
