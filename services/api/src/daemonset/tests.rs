use super::*;

fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> v1::Node {
    v1::Node {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
        spec: Some(v1::NodeSpec {
            taints: taints
                .iter()
                .map(|(k, e)| v1::Taint {
                    key: k.to_string(),
                    effect: e.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        status: None,
        ..Default::default()
    }
}

fn template(change: impl FnOnce(&mut v1::PodSpec)) -> v1::PodTemplateSpec {
    let mut spec = v1::PodSpec {
        containers: vec![v1::Container {
            name: "c".into(),
            image: "nginx".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    change(&mut spec);
    v1::PodTemplateSpec {
        metadata: Some(v1::ObjectMeta {
            labels: [("app".to_string(), "d".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(spec),
    }
}

fn affinity_on(key: &str, op: &str, values: &[&str]) -> Option<Box<v1::Affinity>> {
    Some(Box::new(v1::Affinity {
        node_affinity: Some(v1::NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(v1::NodeSelector {
                node_selector_terms: vec![v1::NodeSelectorTerm {
                    match_expressions: vec![v1::NodeSelectorRequirement {
                        key: key.into(),
                        operator: op.into(),
                        values: values.iter().map(|s| s.to_string()).collect(),
                    }],
                    match_fields: vec![],
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

const RUN: Placement = Placement {
    should_run: true,
    should_continue_running: true,
};
const KEEP_ONLY: Placement = Placement {
    should_run: false,
    should_continue_running: true,
};
const NO: Placement = Placement {
    should_run: false,
    should_continue_running: false,
};

#[test]
fn placement_follows_node_name_selectors_affinity_and_taints() {
    type Spec = fn(&mut v1::PodSpec);
    let plain: Spec = |_| {};
    let ssd: Spec = |s| {
        s.node_selector = [("disk".to_string(), "ssd".to_string())].into();
    };
    let table: [(&str, Spec, v1::Node, Placement); 22] = [
        ("a plain node", plain, node("n1", &[], &[]), RUN),
        (
            "nodeName names this node",
            |s| s.node_name = "n1".into(),
            node("n1", &[], &[]),
            RUN,
        ),
        (
            "nodeName names another node",
            |s| s.node_name = "n2".into(),
            node("n1", &[], &[]),
            NO,
        ),
        (
            "nodeSelector matches",
            ssd,
            node("n1", &[("disk", "ssd")], &[]),
            RUN,
        ),
        (
            "nodeSelector does not match",
            ssd,
            node("n1", &[("disk", "hdd")], &[]),
            NO,
        ),
        ("nodeSelector label missing", ssd, node("n1", &[], &[]), NO),
        (
            "required affinity matches",
            |s| s.affinity = affinity_on("zone", "In", &["a"]),
            node("n1", &[("zone", "a")], &[]),
            RUN,
        ),
        (
            "required affinity does not match",
            |s| s.affinity = affinity_on("zone", "In", &["a"]),
            node("n1", &[("zone", "b")], &[]),
            NO,
        ),
        (
            "an untolerated NoSchedule taint keeps existing pods",
            plain,
            node("n1", &[], &[("dedicated", "NoSchedule")]),
            KEEP_ONLY,
        ),
        (
            "an untolerated NoExecute taint removes pods",
            plain,
            node("n1", &[], &[("dedicated", "NoExecute")]),
            NO,
        ),
        (
            "PreferNoSchedule never rejects",
            plain,
            node("n1", &[], &[("dedicated", "PreferNoSchedule")]),
            RUN,
        ),
        (
            "a tolerated NoExecute taint",
            |s| {
                s.tolerations = vec![v1::Toleration {
                    key: "dedicated".into(),
                    operator: "Exists".into(),
                    ..Default::default()
                }]
            },
            node("n1", &[], &[("dedicated", "NoExecute")]),
            RUN,
        ),
        (
            "daemon toleration: not-ready NoExecute",
            plain,
            node("n1", &[], &[(taint::NOT_READY, "NoExecute")]),
            RUN,
        ),
        (
            "daemon toleration: unreachable NoExecute",
            plain,
            node("n1", &[], &[(taint::UNREACHABLE, "NoExecute")]),
            RUN,
        ),
        (
            "daemon toleration: disk-pressure NoSchedule",
            plain,
            node("n1", &[], &[(taint::DISK_PRESSURE, "NoSchedule")]),
            RUN,
        ),
        (
            "daemon toleration: memory-pressure NoSchedule",
            plain,
            node("n1", &[], &[(taint::MEMORY_PRESSURE, "NoSchedule")]),
            RUN,
        ),
        (
            "daemon toleration: pid-pressure NoSchedule",
            plain,
            node("n1", &[], &[(taint::PID_PRESSURE, "NoSchedule")]),
            RUN,
        ),
        (
            "daemon toleration: unschedulable (cordoned) NoSchedule",
            plain,
            node("n1", &[], &[(taint::UNSCHEDULABLE, "NoSchedule")]),
            RUN,
        ),
        (
            "network-unavailable without hostNetwork is not tolerated",
            plain,
            node("n1", &[], &[(taint::NETWORK_UNAVAILABLE, "NoSchedule")]),
            KEEP_ONLY,
        ),
        (
            "network-unavailable with hostNetwork is tolerated",
            |s| s.host_network = true,
            node("n1", &[], &[(taint::NETWORK_UNAVAILABLE, "NoSchedule")]),
            RUN,
        ),
        (
            "the not-ready toleration covers NoExecute only",
            plain,
            node("n1", &[], &[(taint::NOT_READY, "NoSchedule")]),
            KEEP_ONLY,
        ),
        (
            "unschedulable alone (no taint) does not matter",
            plain,
            {
                let mut n = node("n1", &[], &[]);
                n.spec.as_mut().unwrap().unschedulable = true;
                n
            },
            RUN,
        ),
    ];
    for (name, change, node, want) in table {
        assert_eq!(placement(&template(change), &node), want, "{name}");
    }
}

#[test]
fn readiness_is_not_considered() {
    let mut n = node("n1", &[], &[]);
    n.status = Some(v1::NodeStatus {
        conditions: vec![v1::Condition {
            r#type: condition::READY.into(),
            status: status::FALSE.into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    assert_eq!(placement(&template(|_| {}), &n), RUN);
}

#[test]
fn daemon_tolerations_replace_ones_of_the_same_key_and_effect() {
    let own = vec![
        v1::Toleration {
            key: taint::NOT_READY.into(),
            operator: "Exists".into(),
            effect: effect::NO_EXECUTE.into(),
            toleration_seconds: Some(300),
            ..Default::default()
        },
        v1::Toleration {
            key: "mine".into(),
            operator: "Exists".into(),
            ..Default::default()
        },
    ];
    let all = with_daemon_tolerations(&own, false);
    assert_eq!(all.len(), 7, "{all:?}");
    assert!(all.iter().any(|t| t.key == "mine"));
    let not_ready: Vec<_> = all.iter().filter(|t| t.key == taint::NOT_READY).collect();
    assert_eq!(not_ready.len(), 1);
    assert_eq!(not_ready[0].toleration_seconds, None);
    assert_eq!(with_daemon_tolerations(&[], true).len(), 7);
    assert!(
        !daemon_tolerations(false)
            .iter()
            .any(|t| t.key == taint::NETWORK_UNAVAILABLE)
    );
}

fn ds() -> v1::DaemonSet {
    v1::DaemonSet {
        metadata: Some(v1::ObjectMeta {
            name: "agent".into(),
            namespace: "kube-system".into(),
            uid: "ds-uid".into(),
            ..Default::default()
        }),
        spec: Some(v1::DaemonSetSpec {
            template: Some(template(|s| {
                s.affinity = affinity_on("zone", "In", &["a"]);
                s.affinity
                    .as_mut()
                    .unwrap()
                    .node_affinity
                    .as_mut()
                    .unwrap()
                    .preferred_during_scheduling_ignored_during_execution =
                    vec![v1::PreferredSchedulingTerm::default()];
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn a_pod_for_a_node_is_pinned_labelled_owned_and_tolerant() {
    let pod = pod_for_node(&ds(), "n2", "abc");
    let meta = pod.metadata.as_ref().unwrap();
    assert_eq!(meta.generate_name, "agent-");
    assert_eq!(meta.name, "");
    assert_eq!(meta.namespace, "kube-system");
    assert_eq!(meta.labels.get("app").map(String::as_str), Some("d"));
    assert_eq!(
        meta.labels.get(REVISION_HASH_LABEL).map(String::as_str),
        Some("abc")
    );
    let owner = &meta.owner_references[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("DaemonSet", "ds-uid", Some(true))
    );
    let spec = pod.spec.as_deref().unwrap();
    assert_eq!(spec.node_name, "", "bound by the scheduler");
    let na = spec
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap();
    let required = na
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap();
    assert_eq!(required.node_selector_terms.len(), 1, "user terms replaced");
    let term = &required.node_selector_terms[0];
    assert!(term.match_expressions.is_empty());
    assert_eq!(term.match_fields[0].key, "metadata.name");
    assert_eq!(term.match_fields[0].values, ["n2"]);
    assert_eq!(
        na.preferred_during_scheduling_ignored_during_execution
            .len(),
        1,
        "preferred terms kept"
    );
    assert_eq!(spec.tolerations.len(), 6);
    assert_eq!(pod_node(&pod), Some("n2"));
}

#[test]
fn template_hashes_are_stable_safe_and_change_with_content_and_collisions() {
    let t = template(|_| {});
    let h = template_hash(&t, None);
    // Pinned: a change here renames every ControllerRevision and relabels every pod.
    assert_eq!(h, template_hash(&t, None));
    assert_eq!(h, GOLDEN_HASH, "the hash of the reference template changed");
    assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{h}");
    assert_ne!(template_hash(&t, Some(1)), h);
    assert_ne!(template_hash(&t, Some(1)), template_hash(&t, Some(2)));
    let other = template(|s| s.containers[0].image = "nginx:2".into());
    assert_ne!(template_hash(&other, None), h);
}

/// The hash of `template(|_| {})`.
const GOLDEN_HASH: &str = "7bf4cfb4f";

#[test]
fn the_hash_is_fnv1a_rendered_in_the_safe_alphabet() {
    // FNV-1a's published vectors.
    assert_eq!(fnv1a32(*b"", 0x811c_9dc5), 0x811c_9dc5);
    assert_eq!(fnv1a32(*b"a", 0x811c_9dc5), 0xe40c_292c);
    assert_eq!(fnv1a32(*b"foobar", 0x811c_9dc5), 0xbf9c_f968);
    // Kubernetes' SafeEncodeString of a decimal: '0' is 48, 48 % 27 = 21 -> '4'.
    assert_eq!(safe_encode("0123456789"), "456789bcdf");
}

fn ios(s: &str) -> Option<v1::IntOrString> {
    Some(match s.parse::<i32>() {
        Ok(n) => v1::IntOrString {
            is_string: false,
            int_val: n,
            str_val: String::new(),
        },
        Err(_) => v1::IntOrString {
            is_string: true,
            int_val: 0,
            str_val: s.into(),
        },
    })
}

#[test]
fn rolling_budgets_are_ints_or_percentages_rounded_up() {
    // (name, maxSurge, maxUnavailable, desired, want (surge, unavailable))
    type Row<'a> = (&'a str, Option<&'a str>, Option<&'a str>, i32, (i32, i32));
    let table: [Row; 11] = [
        ("the default", Some("0"), Some("1"), 5, (0, 1)),
        ("unset both", None, None, 5, (0, 1)),
        ("both zero falls back", Some("0"), Some("0"), 5, (0, 1)),
        ("int unavailable", Some("0"), Some("3"), 5, (0, 3)),
        (
            "percent unavailable rounds up",
            Some("0"),
            Some("10%"),
            5,
            (0, 1),
        ),
        ("25% of 10 is 3", Some("0"), Some("25%"), 10, (0, 3)),
        ("100%", Some("0"), Some("100%"), 7, (0, 7)),
        ("surge int", Some("2"), Some("0"), 5, (2, 0)),
        ("surge percent rounds up", Some("10%"), Some("0"), 5, (1, 0)),
        ("surge with unavailable unset", Some("1"), None, 5, (1, 0)),
        ("percent of nothing", Some("0"), Some("50%"), 0, (0, 1)),
    ];
    for (name, surge, unavailable, desired, want) in table {
        let strategy = v1::DaemonSetUpdateStrategy {
            r#type: "RollingUpdate".into(),
            rolling_update: Some(v1::RollingUpdateDaemonSet {
                max_surge: surge.and_then(ios),
                max_unavailable: unavailable.and_then(ios),
            }),
        };
        assert_eq!(resolve_rolling(Some(&strategy), desired), want, "{name}");
    }
    assert_eq!(resolve_rolling(None, 3), (0, 1), "no strategy");
}

fn pod_ready(ready: Option<(&str, &str)>) -> v1::Pod {
    v1::Pod {
        status: ready.map(|(status, at)| v1::PodStatus {
            conditions: vec![v1::Condition {
                r#type: condition::READY.into(),
                status: status.into(),
                last_transition_time: at.into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn a_pod_is_available_once_ready_for_min_ready_seconds() {
    let now = parse_time("2026-01-01T00:01:00Z").unwrap();
    // (name, ready condition, minReadySeconds, available, available in)
    type Row<'a> = (&'a str, Option<(&'a str, &'a str)>, i32, bool, Option<u64>);
    let table: [Row; 7] = [
        ("no status", None, 0, false, None),
        (
            "not ready",
            Some(("False", "2026-01-01T00:00:00Z")),
            0,
            false,
            None,
        ),
        (
            "ready, no minimum",
            Some(("True", "2026-01-01T00:00:59Z")),
            0,
            true,
            Some(0),
        ),
        (
            "ready long enough",
            Some(("True", "2026-01-01T00:00:00Z")),
            30,
            true,
            Some(0),
        ),
        (
            "ready exactly long enough",
            Some(("True", "2026-01-01T00:00:30Z")),
            30,
            true,
            Some(0),
        ),
        (
            "ready too briefly",
            Some(("True", "2026-01-01T00:00:50Z")),
            30,
            false,
            Some(20),
        ),
        (
            "ready, no transition time",
            Some(("True", "")),
            30,
            true,
            Some(0),
        ),
    ];
    for (name, ready, min, want, want_in) in table {
        let pod = pod_ready(ready);
        assert_eq!(pod_available(&pod, min, now), want, "{name}");
        assert_eq!(
            available_in(&pod, min, now).map(|d| d.as_secs()),
            want_in,
            "{name}"
        );
    }
    let mut going = pod_ready(Some(("True", "2026-01-01T00:00:00Z")));
    going.metadata = Some(v1::ObjectMeta {
        deletion_timestamp: "2026-01-01T00:00:59Z".into(),
        ..Default::default()
    });
    assert!(!pod_available(&going, 0, now), "a pod being deleted");
}

#[test]
fn strategy_and_pause_are_read_from_the_daemonset() {
    let mut d = ds();
    assert!(!is_on_delete(&d) && !is_paused(&d));
    d.spec.as_mut().unwrap().update_strategy = Some(v1::DaemonSetUpdateStrategy {
        r#type: ON_DELETE.into(),
        rolling_update: None,
    });
    d.metadata
        .as_mut()
        .unwrap()
        .annotations
        .insert(PAUSED_ANNOTATION.into(), "true".into());
    assert!(is_on_delete(&d) && is_paused(&d));
}
