use super::*;

fn req(key: &str, op: &str, values: &[&str]) -> v1::NodeSelectorRequirement {
    v1::NodeSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: values.iter().map(|s| s.to_string()).collect(),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn taint(key: &str, value: &str, effect: &str) -> v1::Taint {
    v1::Taint {
        key: key.into(),
        value: value.into(),
        effect: effect.into(),
        ..Default::default()
    }
}

fn toleration(key: &str, op: &str, value: &str, effect: &str) -> v1::Toleration {
    v1::Toleration {
        key: key.into(),
        operator: op.into(),
        value: value.into(),
        effect: effect.into(),
        toleration_seconds: None,
    }
}

fn node(name: &str) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        labels: BTreeMap::new(),
        taints: vec![],
        unschedulable: false,
        readiness: Readiness::Ready,
        cpu_milli: Some(4000),
        memory: Some(8 << 30),
        pods: Some(110),
    }
}

fn term(exprs: Vec<v1::NodeSelectorRequirement>) -> v1::NodeSelectorTerm {
    v1::NodeSelectorTerm {
        match_expressions: exprs,
        match_fields: vec![],
    }
}

fn untolerated(key: &str, value: &str) -> Reason {
    Reason::UntoleratedTaint {
        key: key.into(),
        value: value.into(),
    }
}

#[test]
fn each_filter_rejects_with_kubernetes_reason() {
    let plain = PodFacts::default();
    let selecting = PodFacts {
        node_selector: labels(&[("disk", "ssd")]),
        ..Default::default()
    };
    let tolerating_all = PodFacts {
        tolerations: vec![toleration("", "Exists", "", "")],
        ..Default::default()
    };
    let big = PodFacts {
        requests: Resources {
            cpu_milli: 3000,
            memory: 6 << 30,
        },
        ..Default::default()
    };
    let mut cordoned = node("c");
    cordoned.unschedulable = true;
    let mut master = node("m");
    master.taints = vec![taint("node-role.kubernetes.io/master", "", "NoSchedule")];
    let mut evicting = node("e");
    evicting.taints = vec![taint("dedicated", "db", "NoExecute")];
    let mut soft = node("s");
    soft.taints = vec![taint("cheap", "", "PreferNoSchedule")];
    let mut lost = node("l");
    lost.readiness = Readiness::Unknown;
    let mut sick = node("k");
    sick.readiness = Readiness::NotReady;
    let mut ssd = node("d");
    ssd.labels = labels(&[("disk", "ssd")]);
    let mut full = Usage::default();
    full.add(
        Resources {
            cpu_milli: 2000,
            memory: 4 << 30,
        },
        None,
    );
    let mut crowded = Usage::default();
    for _ in 0..110 {
        crowded.add(Resources::default(), None);
    }
    let mut unlimited = node("u");
    (unlimited.cpu_milli, unlimited.memory, unlimited.pods) = (None, None, None);
    let none = Usage::default();
    let n = node("n");

    // (what, pod, node, usage, expected)
    type Row<'a> = (
        &'a str,
        &'a PodFacts,
        &'a NodeFacts,
        &'a Usage,
        Result<(), Vec<Reason>>,
    );
    let table: Vec<Row> = vec![
        ("a plain pod fits", &plain, &n, &none, Ok(())),
        (
            "cordoned",
            &plain,
            &cordoned,
            &none,
            Err(vec![Reason::Unschedulable]),
        ),
        (
            "cordon tolerated",
            &tolerating_all,
            &cordoned,
            &none,
            Ok(()),
        ),
        (
            "NoSchedule taint",
            &plain,
            &master,
            &none,
            Err(vec![untolerated("node-role.kubernetes.io/master", "")]),
        ),
        (
            "NoSchedule tolerated",
            &tolerating_all,
            &master,
            &none,
            Ok(()),
        ),
        (
            "NoExecute taint",
            &plain,
            &evicting,
            &none,
            Err(vec![untolerated("dedicated", "db")]),
        ),
        ("PreferNoSchedule only scores", &plain, &soft, &none, Ok(())),
        (
            "unreachable node",
            &plain,
            &lost,
            &none,
            Err(vec![untolerated(taint::UNREACHABLE, "")]),
        ),
        (
            "not-ready node",
            &plain,
            &sick,
            &none,
            Err(vec![untolerated(taint::NOT_READY, "")]),
        ),
        ("not-ready tolerated", &tolerating_all, &sick, &none, Ok(())),
        (
            "selector mismatch",
            &selecting,
            &n,
            &none,
            Err(vec![Reason::NodeAffinity]),
        ),
        ("selector match", &selecting, &ssd, &none, Ok(())),
        ("big pod on an empty node", &big, &n, &none, Ok(())),
        (
            "big pod on a half-full node",
            &big,
            &n,
            &full,
            Err(vec![Reason::InsufficientCpu, Reason::InsufficientMemory]),
        ),
        ("zero requests always fit", &plain, &n, &full, Ok(())),
        (
            "too many pods",
            &plain,
            &n,
            &crowded,
            Err(vec![Reason::TooManyPods]),
        ),
        (
            "no allocatable: no limit",
            &big,
            &unlimited,
            &crowded,
            Ok(()),
        ),
        // Order: cordon before taints before affinity before resources.
        (
            "first failing filter wins",
            &selecting,
            &cordoned,
            &full,
            Err(vec![Reason::Unschedulable]),
        ),
    ];
    for (what, pod, target, usage, want) in table {
        assert_eq!(filter(pod, target, usage), want, "{what}");
    }
}

#[test]
fn reasons_read_exactly_like_kubernetes() {
    let table = [
        (Reason::Unschedulable, "node(s) were unschedulable"),
        (
            untolerated("node-role.kubernetes.io/master", ""),
            "node(s) had untolerated taint {node-role.kubernetes.io/master: }",
        ),
        (
            untolerated("k", "v"),
            "node(s) had untolerated taint {k: v}",
        ),
        (
            Reason::NodeAffinity,
            "node(s) didn't match Pod's node affinity/selector",
        ),
        (Reason::InsufficientCpu, "Insufficient cpu"),
        (Reason::InsufficientMemory, "Insufficient memory"),
        (Reason::TooManyPods, "Too many pods"),
    ];
    for (reason, text) in table {
        assert_eq!(reason.to_string(), text);
    }
}

#[test]
fn the_unschedulable_message_counts_and_sorts_reasons() {
    let mut reasons = BTreeMap::new();
    reasons.insert(
        "node(s) didn't match Pod's node affinity/selector".to_string(),
        2,
    );
    reasons.insert(
        "node(s) had untolerated taint {node-role.kubernetes.io/master: }".to_string(),
        1,
    );
    assert_eq!(
        unschedulable_message(3, &reasons),
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 2 node(s) didn't match Pod's node affinity/selector."
    );
    assert_eq!(
        unschedulable_message(0, &BTreeMap::new()),
        "0/0 nodes are available."
    );
}

#[test]
fn requests_sum_containers_take_the_largest_init_container_and_default_to_limits() {
    let container = |req: &[(&str, &str)], lim: &[(&str, &str)]| v1::Container {
        resources: Some(v1::ResourceRequirements {
            requests: labels(req),
            limits: labels(lim),
        }),
        ..Default::default()
    };
    let pod = v1::Pod {
        spec: Some(Box::new(v1::PodSpec {
            containers: vec![
                container(&[("cpu", "250m"), ("memory", "64Mi")], &[]),
                container(&[], &[("cpu", "1"), ("memory", "1Gi")]),
            ],
            init_containers: vec![container(&[("cpu", "2")], &[])],
            ..Default::default()
        })),
        ..Default::default()
    };
    let facts = pod_facts(&pod);
    assert_eq!(
        facts.requests,
        Resources {
            cpu_milli: 2000,
            memory: (64 << 20) + (1 << 30)
        }
    );
}

#[test]
fn node_facts_read_readiness_and_allocatable() {
    let cond = |status: &str| v1::Condition {
        r#type: "Ready".into(),
        status: status.into(),
        ..Default::default()
    };
    let n = |conds: Vec<v1::Condition>| v1::Node {
        status: Some(v1::NodeStatus {
            conditions: conds,
            allocatable: labels(&[("cpu", "2"), ("memory", "1Gi"), ("pods", "10")]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let table = [
        (vec![cond("True")], Readiness::Ready),
        (vec![cond("False")], Readiness::NotReady),
        (vec![cond("Unknown")], Readiness::Unknown),
        (vec![], Readiness::Unknown),
    ];
    for (conds, want) in table {
        assert_eq!(node_facts(&n(conds)).readiness, want);
    }
    let f = node_facts(&n(vec![]));
    assert_eq!(
        (f.cpu_milli, f.memory, f.pods),
        (Some(2000), Some(1 << 30), Some(10))
    );
}

#[test]
fn scores_prefer_free_nodes_spread_owners_soft_taints_and_preferred_affinity() {
    let owned = PodFacts {
        owner: Some("job-1".into()),
        requests: Resources {
            cpu_milli: 1000,
            memory: 2 << 30,
        },
        ..Default::default()
    };
    let empty = Usage::default();
    let mut busy = Usage::default();
    busy.add(
        Resources {
            cpu_milli: 2000,
            memory: 4 << 30,
        },
        Some("job-1"),
    );
    busy.add(Resources::default(), Some("job-1"));
    // Least allocated: (4000-1000)/4000 = 75, same for memory.
    assert_eq!(score_least_allocated(&owned, &node("n"), &empty), 75);
    assert_eq!(score_least_allocated(&owned, &node("n"), &busy), 25);
    let mut unlimited = node("u");
    (unlimited.cpu_milli, unlimited.memory) = (None, None);
    assert_eq!(score_least_allocated(&owned, &unlimited, &busy), 100);
    // Spread.
    assert_eq!(score_spread(&owned, &empty), 100);
    assert_eq!(score_spread(&owned, &busy), 33);
    assert_eq!(score_spread(&PodFacts::default(), &busy), 100);
    // PreferNoSchedule.
    let mut soft = node("s");
    assert_eq!(score_prefer_no_schedule(&owned, &soft), 100);
    soft.taints = vec![
        taint("a", "", "PreferNoSchedule"),
        taint("b", "", "NoSchedule"),
    ];
    assert_eq!(score_prefer_no_schedule(&owned, &soft), 50);
    let tolerant = PodFacts {
        tolerations: vec![toleration("a", "Exists", "", "")],
        ..Default::default()
    };
    assert_eq!(score_prefer_no_schedule(&tolerant, &soft), 100);
    // Preferred affinity: weights 80 (zone=a) and 20 (disk=ssd).
    let preferring = PodFacts {
        preferred: vec![
            v1::PreferredSchedulingTerm {
                weight: 80,
                preference: Some(term(vec![req("zone", "In", &["a"])])),
            },
            v1::PreferredSchedulingTerm {
                weight: 20,
                preference: Some(term(vec![req("disk", "In", &["ssd"])])),
            },
        ],
        ..Default::default()
    };
    let with = |pairs: &[(&str, &str)]| {
        let mut n = node("p");
        n.labels = labels(pairs);
        n
    };
    let table = [
        (with(&[]), 0),
        (with(&[("zone", "a")]), 80),
        (with(&[("disk", "ssd")]), 20),
        (with(&[("zone", "a"), ("disk", "ssd")]), 100),
    ];
    for (n, want) in table {
        assert_eq!(
            score_preferred_affinity(&preferring, &n),
            want,
            "{:?}",
            n.labels
        );
    }
    assert_eq!(score_preferred_affinity(&owned, &node("x")), 0);
}

#[test]
fn select_picks_the_best_feasible_node_or_counts_every_reason() {
    let mut nodes = vec![node("a"), node("b"), node("c")];
    nodes[0].taints = vec![taint("node-role.kubernetes.io/master", "", "NoSchedule")];
    nodes[2].labels = labels(&[("zone", "x")]);
    let mut usage: HashMap<String, Usage> = HashMap::new();
    usage.entry("b".into()).or_default().add(
        Resources {
            cpu_milli: 3000,
            memory: 0,
        },
        None,
    );
    let pod = PodFacts {
        requests: Resources {
            cpu_milli: 500,
            memory: 0,
        },
        ..Default::default()
    };
    // c is emptier than b.
    for start in 0..3 {
        assert_eq!(
            select(&pod, &nodes, None, |n| usage.get(n), start, 7),
            Placement::Node(2)
        );
    }
    let selecting = PodFacts {
        node_selector: labels(&[("zone", "y")]),
        ..Default::default()
    };
    let Placement::Unschedulable(reasons) =
        select(&selecting, &nodes, None, |n| usage.get(n), 0, 7)
    else {
        panic!("nothing should fit");
    };
    assert_eq!(
        unschedulable_message(nodes.len(), &reasons),
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 2 node(s) didn't match Pod's node affinity/selector."
    );
}

#[test]
fn ties_are_broken_differently_for_different_pods() {
    let nodes: Vec<NodeFacts> = (0..10).map(|i| node(&format!("n{i}"))).collect();
    let chosen: std::collections::HashSet<Placement> = (0..50)
        .map(|seed| select(&PodFacts::default(), &nodes, None, |_| None, 0, seed))
        .collect();
    assert!(
        chosen.len() > 3,
        "equal nodes should share the load: {chosen:?}"
    );
}

#[test]
fn large_clusters_score_a_sample_of_feasible_nodes() {
    let table = [
        (3, 3),
        (100, 100),
        (200, 100),
        (1000, 420),
        (5000, 500),
        (10_000, 500),
    ];
    for (nodes, want) in table {
        assert_eq!(feasible_nodes_to_find(nodes), want, "{nodes}");
    }
}

fn pinned_to(names: &[&str]) -> PodFacts {
    PodFacts {
        required: Some(v1::NodeSelector {
            node_selector_terms: vec![v1::NodeSelectorTerm {
                match_expressions: vec![],
                match_fields: vec![req("metadata.name", "In", names)],
            }],
        }),
        ..Default::default()
    }
}

#[test]
fn a_pod_pinned_by_name_has_only_its_nodes_as_candidates() {
    let index: HashMap<&str, usize> = [("a", 0), ("b", 1), ("c", 2)].into();
    let by_name = |n: &str| index.get(n).copied();
    // (row, pod, candidates)
    let table = [
        ("no affinity: every node", PodFacts::default(), None),
        ("a daemon pod: its node", pinned_to(&["b"]), Some(vec![1])),
        (
            "several names, sorted",
            pinned_to(&["c", "a"]),
            Some(vec![0, 2]),
        ),
        (
            "a node that does not exist",
            pinned_to(&["gone"]),
            Some(vec![]),
        ),
        (
            "a label selector term: every node",
            PodFacts {
                required: Some(v1::NodeSelector {
                    node_selector_terms: vec![term(vec![req("zone", "In", &["x"])])],
                }),
                ..Default::default()
            },
            None,
        ),
    ];
    for (row, pod, want) in table {
        assert_eq!(candidates(&pod, by_name), want, "{row}");
    }
}

#[test]
fn a_pinned_pod_goes_to_its_node_or_gets_every_nodes_reasons() {
    let mut nodes = vec![node("a"), node("b"), node("c")];
    nodes[0].taints = vec![taint("node-role.kubernetes.io/master", "", "NoSchedule")];
    let full = Usage {
        pods: 110,
        ..Default::default()
    };
    let usage: HashMap<String, Usage> = [("c".to_string(), full)].into();
    // (row, pinned to, candidates given, start, want)
    let table = [
        ("narrowed: its node", "b", Some(vec![1]), 0, Ok(1)),
        ("narrowed, any start", "b", Some(vec![1]), 2, Ok(1)),
        ("not narrowed: the same node", "b", None, 0, Ok(1)),
        (
            "its node is full: the usual reasons over every node",
            "c",
            Some(vec![2]),
            0,
            Err(
                "0/3 nodes are available: 1 Too many pods, 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }.",
            ),
        ),
        (
            "its node is tainted: the same reasons as without narrowing",
            "a",
            Some(vec![0]),
            1,
            Err(
                "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 2 node(s) didn't match Pod's node affinity/selector.",
            ),
        ),
        (
            "its node does not exist",
            "gone",
            Some(vec![]),
            0,
            Err(
                "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 2 node(s) didn't match Pod's node affinity/selector.",
            ),
        ),
    ];
    for (row, name, only, start, want) in table {
        let pod = pinned_to(&[name]);
        let got = match select(&pod, &nodes, only.as_deref(), |n| usage.get(n), start, 7) {
            Placement::Node(i) => Ok(i),
            Placement::Unschedulable(reasons) => Err(unschedulable_message(nodes.len(), &reasons)),
        };
        assert_eq!(got, want.map_err(str::to_string), "{row}");
    }
}
