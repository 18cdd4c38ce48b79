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

fn term(exprs: Vec<v1::NodeSelectorRequirement>) -> v1::NodeSelectorTerm {
    v1::NodeSelectorTerm {
        match_expressions: exprs,
        match_fields: vec![],
    }
}

#[test]
fn every_match_expression_operator_behaves_like_kubernetes() {
    let l = labels(&[("zone", "a"), ("cores", "8")]);
    // (requirement, matches)
    let table = [
        (req("zone", "In", &["a", "b"]), true),
        (req("zone", "In", &["b"]), false),
        (req("missing", "In", &["a"]), false),
        (req("zone", "NotIn", &["b"]), true),
        (req("zone", "NotIn", &["a"]), false),
        (req("missing", "NotIn", &["a"]), true),
        (req("zone", "Exists", &[]), true),
        (req("missing", "Exists", &[]), false),
        (req("missing", "DoesNotExist", &[]), true),
        (req("zone", "DoesNotExist", &[]), false),
        (req("cores", "Gt", &["4"]), true),
        (req("cores", "Gt", &["8"]), false),
        (req("cores", "Lt", &["16"]), true),
        (req("cores", "Lt", &["8"]), false),
        (req("zone", "Gt", &["1"]), false),
        (req("missing", "Lt", &["1"]), false),
        (req("cores", "Gt", &["1", "2"]), false),
        (req("zone", "Bogus", &["a"]), false),
    ];
    for (r, want) in table {
        assert_eq!(
            term_matches(&term(vec![r.clone()]), &l, "n1"),
            want,
            "{r:?}"
        );
    }
}

#[test]
fn terms_and_expressions_and_fields_combine_as_kubernetes_says() {
    let l = labels(&[("zone", "a"), ("disk", "ssd")]);
    let both = term(vec![req("zone", "In", &["a"]), req("disk", "In", &["ssd"])]);
    let one_wrong = term(vec![req("zone", "In", &["a"]), req("disk", "In", &["hdd"])]);
    let by_name = v1::NodeSelectorTerm {
        match_expressions: vec![],
        match_fields: vec![req("metadata.name", "In", &["n1"])],
    };
    let other_field = v1::NodeSelectorTerm {
        match_expressions: vec![],
        match_fields: vec![req("metadata.uid", "In", &["n1"])],
    };
    // (term, matches on node n1)
    let table = [
        (both, true),
        (one_wrong.clone(), false),
        (by_name, true),
        (other_field, false),
        (v1::NodeSelectorTerm::default(), false),
    ];
    for (t, want) in table {
        assert_eq!(term_matches(&t, &l, "n1"), want, "{t:?}");
    }
    // Terms are ORed; no terms at all match nothing.
    let required = |terms: Vec<v1::NodeSelectorTerm>| v1::NodeSelector {
        node_selector_terms: terms,
    };
    let none = BTreeMap::new();
    let either = required(vec![
        one_wrong.clone(),
        term(vec![req("zone", "Exists", &[])]),
    ]);
    assert!(node_selector_matches(&none, Some(&either), &l, "n1"));
    let wrong = required(vec![one_wrong]);
    assert!(!node_selector_matches(&none, Some(&wrong), &l, "n1"));
    let empty = required(vec![]);
    assert!(
        !node_selector_matches(&none, Some(&empty), &l, "n1"),
        "no terms match nothing"
    );
}

#[test]
fn a_node_selector_needs_every_pair_and_the_affinity_too() {
    let l = labels(&[("zone", "a"), ("disk", "ssd")]);
    let pin = v1::NodeSelector {
        node_selector_terms: vec![v1::NodeSelectorTerm {
            match_expressions: vec![],
            match_fields: vec![req("metadata.name", "In", &["n1"])],
        }],
    };
    // (name, nodeSelector, required affinity, node name, matches)
    let table = [
        ("nothing asked: any node", labels(&[]), None, "n1", true),
        (
            "one pair present",
            labels(&[("zone", "a")]),
            None,
            "n1",
            true,
        ),
        (
            "every pair present",
            labels(&[("zone", "a"), ("disk", "ssd")]),
            None,
            "n1",
            true,
        ),
        (
            "a pair with another value",
            labels(&[("zone", "b")]),
            None,
            "n1",
            false,
        ),
        (
            "a pair the node lacks",
            labels(&[("gpu", "yes")]),
            None,
            "n1",
            false,
        ),
        ("pinned to this node", labels(&[]), Some(&pin), "n1", true),
        (
            "pinned to another node",
            labels(&[]),
            Some(&pin),
            "n2",
            false,
        ),
        (
            "selector ok, pinned elsewhere",
            labels(&[("zone", "a")]),
            Some(&pin),
            "n2",
            false,
        ),
        (
            "pinned here, selector wrong",
            labels(&[("zone", "b")]),
            Some(&pin),
            "n1",
            false,
        ),
    ];
    for (name, selector, required, node, want) in table {
        assert_eq!(
            node_selector_matches(&selector, required, &l, node),
            want,
            "{name}"
        );
    }
}

#[test]
fn tolerations_match_taints_by_key_operator_value_and_effect() {
    let t = taint("gpu", "nvidia", "NoSchedule");
    // (toleration, tolerates)
    let table = [
        (toleration("gpu", "Equal", "nvidia", "NoSchedule"), true),
        (toleration("gpu", "", "nvidia", "NoSchedule"), true),
        (toleration("gpu", "Equal", "amd", "NoSchedule"), false),
        (toleration("gpu", "Exists", "", "NoSchedule"), true),
        (toleration("gpu", "Exists", "", ""), true),
        (toleration("gpu", "Exists", "", "NoExecute"), false),
        (toleration("other", "Exists", "", ""), false),
        (toleration("", "Exists", "", ""), true),
        (toleration("", "Exists", "", "NoExecute"), false),
        (toleration("gpu", "Bogus", "nvidia", ""), false),
    ];
    for (tol, want) in table {
        assert_eq!(tolerates(&tol, &t), want, "{tol:?}");
    }
}

#[test]
fn the_first_untolerated_taint_is_the_one_that_rejects() {
    let soft = taint("slow", "", "PreferNoSchedule");
    let gpu = taint("gpu", "x", "NoSchedule");
    let gone = taint("node.kubernetes.io/unreachable", "", "NoExecute");
    let taints = [soft.clone(), gpu.clone(), gone.clone()];
    let tol_gpu = toleration("gpu", "Exists", "", "");
    let tol_all = toleration("", "Exists", "", "");
    // (name, tolerations, first untolerated, first untolerated NoExecute)
    type Row<'a> = (
        &'a str,
        Vec<v1::Toleration>,
        Option<&'a v1::Taint>,
        Option<&'a v1::Taint>,
    );
    let table: [Row; 4] = [
        (
            "none tolerated: NoSchedule first",
            vec![],
            Some(&gpu),
            Some(&gone),
        ),
        (
            "gpu tolerated",
            vec![tol_gpu.clone()],
            Some(&gone),
            Some(&gone),
        ),
        ("everything tolerated", vec![tol_all], None, None),
        (
            "PreferNoSchedule never rejects",
            vec![
                tol_gpu,
                toleration("node.kubernetes.io/unreachable", "Exists", "", "NoExecute"),
            ],
            None,
            None,
        ),
    ];
    for (name, tols, first, no_execute) in table {
        assert_eq!(first_untolerated(&tols, &taints), first, "{name}");
        assert_eq!(
            first_untolerated_no_execute(&tols, &taints),
            no_execute,
            "{name}"
        );
    }
}

#[test]
fn readiness_comes_from_the_ready_condition() {
    let node = |conds: &[(&str, &str)]| v1::Node {
        status: Some(v1::NodeStatus {
            conditions: conds
                .iter()
                .map(|(t, s)| v1::Condition {
                    r#type: t.to_string(),
                    status: s.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let table = [
        ("Ready=True", node(&[("Ready", "True")]), Readiness::Ready),
        (
            "Ready=False",
            node(&[("Ready", "False")]),
            Readiness::NotReady,
        ),
        (
            "Ready=Unknown",
            node(&[("Ready", "Unknown")]),
            Readiness::Unknown,
        ),
        (
            "no Ready condition",
            node(&[("MemoryPressure", "False")]),
            Readiness::Unknown,
        ),
        ("no status", v1::Node::default(), Readiness::Unknown),
    ];
    for (name, n, want) in table {
        assert_eq!(node_readiness(&n), want, "{name}");
    }
}

fn fields(reqs: Vec<v1::NodeSelectorRequirement>) -> v1::NodeSelectorTerm {
    v1::NodeSelectorTerm {
        match_expressions: vec![],
        match_fields: reqs,
    }
}

#[test]
fn pinned_node_names_narrow_only_when_every_term_names_nodes() {
    let name_in = |values: &[&str]| req("metadata.name", "In", values);
    let with_zone = |mut t: v1::NodeSelectorTerm| {
        t.match_expressions = vec![req("zone", "In", &["a"])];
        t
    };
    // (row, terms (`None`: no affinity), the candidates (`None`: every node))
    type Row = (
        &'static str,
        Option<Vec<v1::NodeSelectorTerm>>,
        Option<Vec<&'static str>>,
    );
    let table: Vec<Row> = vec![
        ("no affinity", None, None),
        ("no term", Some(vec![]), None),
        (
            "a daemon pod's pin",
            Some(vec![fields(vec![name_in(&["n1"])])]),
            Some(vec!["n1"]),
        ),
        (
            "a pin beside a label expression still narrows",
            Some(vec![with_zone(fields(vec![name_in(&["n1"])]))]),
            Some(vec!["n1"]),
        ),
        (
            "several names",
            Some(vec![fields(vec![name_in(&["n2", "n1"])])]),
            Some(vec!["n1", "n2"]),
        ),
        (
            "two requirements in a term intersect",
            Some(vec![fields(vec![
                name_in(&["n1", "n2"]),
                name_in(&["n2", "n3"]),
            ])]),
            Some(vec!["n2"]),
        ),
        (
            "conflicting requirements: no node",
            Some(vec![fields(vec![name_in(&["n1"]), name_in(&["n2"])])]),
            Some(vec![]),
        ),
        (
            "terms unite",
            Some(vec![
                fields(vec![name_in(&["n1"])]),
                fields(vec![name_in(&["n3"])]),
            ]),
            Some(vec!["n1", "n3"]),
        ),
        (
            "one term without names: every node",
            Some(vec![
                fields(vec![name_in(&["n1"])]),
                term(vec![req("zone", "In", &["a"])]),
            ]),
            None,
        ),
        (
            "NotIn does not narrow",
            Some(vec![fields(vec![req("metadata.name", "NotIn", &["n1"])])]),
            None,
        ),
        (
            "another field does not narrow",
            Some(vec![fields(vec![req("metadata.uid", "In", &["n1"])])]),
            None,
        ),
    ];
    for (row, terms, want) in table {
        let required = terms.map(|node_selector_terms| v1::NodeSelector {
            node_selector_terms,
        });
        let got = pinned_node_names(required.as_ref()).map(|s| s.into_iter().collect::<Vec<_>>());
        assert_eq!(got, want, "{row}");
    }
}

#[test]
fn a_node_outside_the_pinned_names_never_matches_the_affinity() {
    // What lets the scheduler look at the pinned nodes only.
    let terms = vec![
        fields(vec![req("metadata.name", "In", &["n1", "n2"])]),
        fields(vec![
            req("metadata.name", "In", &["n3"]),
            req("metadata.name", "In", &["n3", "n4"]),
        ]),
    ];
    let required = v1::NodeSelector {
        node_selector_terms: terms,
    };
    let pinned = pinned_node_names(Some(&required)).expect("every term names nodes");
    for name in ["n1", "n2", "n3", "n4", "n5"] {
        let matches =
            node_selector_matches(&BTreeMap::new(), Some(&required), &BTreeMap::new(), name);
        assert_eq!(matches, pinned.contains(name), "{name}");
    }
}
