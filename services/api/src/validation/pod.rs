//! The pod spec: containers, volumes, resources, probes, tolerations, affinity.

use std::collections::HashSet;

use super::Errs;
use super::meta::{validate_dns_label, validate_label_key, validate_labels};
use crate::units::parse_quantity;
use crate::v1::{self, PodSpec};

pub(crate) const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

const QUANTITY_MSG: &str = "must match the regex '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// `ValidatePodSpec` (the parts bosun runs).
pub(crate) fn validate_pod_spec(e: &mut Errs, spec: &PodSpec, path: &str) {
    let volumes = validate_volumes(e, &spec.volumes, &format!("{path}.volumes"));
    if spec.containers.is_empty() {
        e.required(format!("{path}.containers"), "");
    }
    let mut names = HashSet::new();
    for (i, c) in spec.init_containers.iter().enumerate() {
        let p = format!("{path}.initContainers[{i}]");
        validate_container(e, c, &p, &volumes, &mut names);
        if !c.restart_policy.is_empty() {
            e.one_of(
                &format!("{p}.restartPolicy"),
                &c.restart_policy,
                &["Always"],
            );
        }
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let p = format!("{path}.containers[{i}]");
        validate_container(e, c, &p, &volumes, &mut names);
        if !c.restart_policy.is_empty() {
            e.forbidden(
                format!("{p}.restartPolicy"),
                "may not be set for non-init containers",
            );
        }
    }
    e.one_of(
        &format!("{path}.restartPolicy"),
        &spec.restart_policy,
        &["Always", "OnFailure", "Never"],
    );
    if !spec.dns_policy.is_empty() {
        e.one_of(
            &format!("{path}.dnsPolicy"),
            &spec.dns_policy,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        );
    }
    e.non_negative(
        &format!("{path}.terminationGracePeriodSeconds"),
        spec.termination_grace_period_seconds,
    );
    if let Some(a) = spec.active_deadline_seconds.filter(|a| *a <= 0) {
        e.invalid(
            format!("{path}.activeDeadlineSeconds"),
            a,
            "must be between 1 and 2147483647, inclusive",
        );
    }
    validate_labels(e, &format!("{path}.nodeSelector"), &spec.node_selector);
    for (i, t) in spec.tolerations.iter().enumerate() {
        validate_toleration(e, t, &format!("{path}.tolerations[{i}]"));
    }
    if let Some(na) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
    {
        let p = format!("{path}.affinity.nodeAffinity");
        if let Some(sel) = &na.required_during_scheduling_ignored_during_execution {
            let rp = format!("{p}.requiredDuringSchedulingIgnoredDuringExecution");
            if sel.node_selector_terms.is_empty() {
                e.required(
                    format!("{rp}.nodeSelectorTerms"),
                    "must have at least one node selector term",
                );
            }
            for (i, term) in sel.node_selector_terms.iter().enumerate() {
                validate_node_selector_term(e, term, &format!("{rp}.nodeSelectorTerms[{i}]"));
            }
        }
        for (i, pref) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            let pp = format!("{p}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            if !(1..=100).contains(&pref.weight) {
                e.invalid(
                    format!("{pp}.weight"),
                    pref.weight,
                    "must be in the range 1-100",
                );
            }
            if let Some(term) = &pref.preference {
                validate_node_selector_term(e, term, &format!("{pp}.preference"));
            }
        }
    }
}

fn validate_volumes(e: &mut Errs, volumes: &[v1::Volume], path: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if v.name.is_empty() {
            e.required(format!("{p}.name"), "");
        } else {
            validate_dns_label(e, &format!("{p}.name"), &v.name);
            if !names.insert(v.name.clone()) {
                e.duplicate(format!("{p}.name"), &v.name);
            }
        }
        let sources = [
            v.host_path.is_some(),
            v.empty_dir.is_some(),
            v.config_map.is_some(),
            v.secret.is_some(),
            v.persistent_volume_claim.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        match sources {
            0 => e.required(&p, "must specify a volume type"),
            1 => {}
            _ => e.forbidden(&p, "may not specify more than 1 volume type"),
        }
        if let Some(h) = &v.host_path {
            if h.path.is_empty() {
                e.required(format!("{p}.hostPath.path"), "");
            }
            const TYPES: &[&str] = &[
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ];
            e.one_of(&format!("{p}.hostPath.type"), &h.r#type, TYPES);
        }
        if let Some(d) = &v.empty_dir
            && !d.size_limit.is_empty()
            && parse_quantity(&d.size_limit).is_none()
        {
            e.invalid(
                format!("{p}.emptyDir.sizeLimit"),
                &d.size_limit,
                QUANTITY_MSG,
            );
        }
        if let Some(c) = &v.persistent_volume_claim
            && c.claim_name.is_empty()
        {
            e.required(format!("{p}.persistentVolumeClaim.claimName"), "");
        }
    }
    names
}

fn validate_container(
    e: &mut Errs,
    c: &v1::Container,
    p: &str,
    volumes: &HashSet<String>,
    names: &mut HashSet<String>,
) {
    if c.name.is_empty() {
        e.required(format!("{p}.name"), "");
    } else {
        validate_dns_label(e, &format!("{p}.name"), &c.name);
        if !names.insert(c.name.clone()) {
            e.duplicate(format!("{p}.name"), &c.name);
        }
    }
    if c.image.trim().is_empty() {
        e.required(format!("{p}.image"), "");
    }
    if !c.image_pull_policy.is_empty() {
        e.one_of(
            &format!("{p}.imagePullPolicy"),
            &c.image_pull_policy,
            &["Always", "IfNotPresent", "Never"],
        );
    }
    if !c.termination_message_policy.is_empty() {
        e.one_of(
            &format!("{p}.terminationMessagePolicy"),
            &c.termination_message_policy,
            &["File", "FallbackToLogsOnError"],
        );
    }
    for (i, port) in c.ports.iter().enumerate() {
        let pp = format!("{p}.ports[{i}]");
        if !(1..=65535).contains(&port.container_port) {
            e.invalid(
                format!("{pp}.containerPort"),
                port.container_port,
                "must be between 1 and 65535, inclusive",
            );
        }
        if port.host_port != 0 && !(1..=65535).contains(&port.host_port) {
            e.invalid(
                format!("{pp}.hostPort"),
                port.host_port,
                "must be between 1 and 65535, inclusive",
            );
        }
        if !port.protocol.is_empty() {
            e.one_of(
                &format!("{pp}.protocol"),
                &port.protocol,
                &["SCTP", "TCP", "UDP"],
            );
        }
    }
    for (i, env) in c.env.iter().enumerate() {
        let ep = format!("{p}.env[{i}].name");
        if env.name.is_empty() {
            e.required(ep, "");
        } else if env.name.contains('=') || env.name.chars().any(|ch| !(' '..='~').contains(&ch)) {
            e.invalid(ep, &env.name, "a valid environment variable name must consist only of printable ASCII characters other than '='");
        }
    }
    let mut mount_paths = HashSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mp = format!("{p}.volumeMounts[{i}]");
        if m.name.is_empty() {
            e.required(format!("{mp}.name"), "");
        } else if !volumes.contains(&m.name) {
            e.push(format!("{mp}.name"), format!("Not found: {:?}", m.name));
        }
        if m.mount_path.is_empty() {
            e.required(format!("{mp}.mountPath"), "");
        } else if !mount_paths.insert(m.mount_path.clone()) {
            e.invalid(format!("{mp}.mountPath"), &m.mount_path, "must be unique");
        }
    }
    if let Some(r) = &c.resources {
        validate_resources(e, r, &format!("{p}.resources"));
    }
    for (name, probe) in [
        ("readinessProbe", &c.readiness_probe),
        ("livenessProbe", &c.liveness_probe),
        ("startupProbe", &c.startup_probe),
    ] {
        if let Some(probe) = probe {
            validate_probe(e, probe, &format!("{p}.{name}"), name);
        }
    }
}

fn validate_resources(e: &mut Errs, r: &v1::ResourceRequirements, p: &str) {
    for (kind, map) in [("limits", &r.limits), ("requests", &r.requests)] {
        for (name, q) in map {
            let qp = format!("{p}.{kind}[{name}]");
            validate_label_key(e, &qp, name);
            match parse_quantity(q) {
                None => e.invalid(&qp, q, QUANTITY_MSG),
                Some(v) if v < 0.0 => e.invalid(&qp, q, "must be greater than or equal to 0"),
                Some(_) => {}
            }
        }
    }
    for (name, req) in &r.requests {
        let (Some(want), Some(limit)) = (
            parse_quantity(req),
            r.limits.get(name).and_then(|l| parse_quantity(l)),
        ) else {
            continue;
        };
        if want > limit {
            let limit_text = &r.limits[name];
            e.invalid(
                format!("{p}.requests[{name}]"),
                req,
                &format!("must be less than or equal to {name} limit of {limit_text}"),
            );
        }
    }
}

fn validate_probe(e: &mut Errs, probe: &v1::Probe, p: &str, which: &str) {
    let handlers = [
        probe.exec.is_some(),
        probe.http_get.is_some(),
        probe.tcp_socket.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    match handlers {
        0 => e.required(p, "must specify a handler type"),
        1 => {}
        _ => e.forbidden(p, "may not specify more than 1 handler type"),
    }
    for (name, v) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        e.non_negative(&format!("{p}.{name}"), Some(i64::from(v)));
    }
    if which != "readinessProbe" && probe.success_threshold > 1 {
        e.invalid(
            format!("{p}.successThreshold"),
            probe.success_threshold,
            "must be 1",
        );
    }
    if let Some(g) = &probe.http_get {
        validate_port(e, g.port.as_ref(), &format!("{p}.httpGet.port"));
    }
    if let Some(t) = &probe.tcp_socket {
        validate_port(e, t.port.as_ref(), &format!("{p}.tcpSocket.port"));
    }
}

fn validate_port(e: &mut Errs, port: Option<&v1::IntOrString>, p: &str) {
    match port {
        Some(v1::IntOrString {
            is_string: false,
            int_val,
            ..
        }) if (1..=65535).contains(int_val) => {}
        Some(v1::IntOrString {
            is_string: true,
            str_val,
            ..
        }) if !str_val.is_empty() && str_val.len() <= 15 => {}
        Some(v) if v.is_string => e.invalid(
            p,
            &v.str_val,
            "must contain at least one letter (a-z) and be at most 15 characters",
        ),
        Some(v) => e.invalid(p, v.int_val, "must be between 1 and 65535, inclusive"),
        None => e.required(p, ""),
    }
}

fn validate_toleration(e: &mut Errs, t: &v1::Toleration, p: &str) {
    if !t.key.is_empty() {
        validate_label_key(e, &format!("{p}.key"), &t.key);
    }
    if t.key.is_empty() && t.operator != "Exists" {
        e.invalid(format!("{p}.operator"), &t.operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\"");
    }
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        e.invalid(
            format!("{p}.effect"),
            &t.effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        );
    }
    match t.operator.as_str() {
        "" | "Equal" => {
            if !crate::validation::is_valid_label_value(&t.value) {
                e.invalid(format!("{p}.value"), &t.value, "a valid label value");
            }
        }
        "Exists" => {
            if !t.value.is_empty() {
                e.invalid(
                    format!("{p}.operator"),
                    &t.value,
                    "value must be empty when `operator` is 'Exists'",
                );
            }
        }
        other => e.unsupported(format!("{p}.operator"), other, &["Equal", "Exists"]),
    }
    if !t.effect.is_empty() {
        e.one_of(&format!("{p}.effect"), &t.effect, TAINT_EFFECTS);
    }
}

fn validate_node_selector_term(e: &mut Errs, term: &v1::NodeSelectorTerm, p: &str) {
    for (i, r) in term.match_expressions.iter().enumerate() {
        let rp = format!("{p}.matchExpressions[{i}]");
        validate_label_key(e, &format!("{rp}.key"), &r.key);
        validate_node_selector_requirement(e, r, &rp);
    }
    for (i, r) in term.match_fields.iter().enumerate() {
        let rp = format!("{p}.matchFields[{i}]");
        if r.key != "metadata.name" {
            e.unsupported(format!("{rp}.key"), &r.key, &["metadata.name"]);
        }
        validate_node_selector_requirement(e, r, &rp);
    }
}

/// In/NotIn need values, Exists/DoesNotExist none, Gt/Lt exactly one integer.
fn validate_node_selector_requirement(e: &mut Errs, r: &v1::NodeSelectorRequirement, rp: &str) {
    let vp = format!("{rp}.values");
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if r.values.is_empty() {
                e.required(vp, "must be specified when `operator` is 'In' or 'NotIn'");
            }
        }
        "Exists" | "DoesNotExist" => {
            if !r.values.is_empty() {
                e.forbidden(
                    vp,
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                );
            }
        }
        "Gt" | "Lt" => {
            if r.values.len() != 1 {
                e.required(
                    vp,
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                );
            } else if r.values[0].parse::<i64>().is_err() {
                e.invalid(format!("{vp}[0]"), &r.values[0], "must be an integer");
            }
        }
        other => e.unsupported(
            format!("{rp}.operator"),
            other,
            &["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PodSpec {
        PodSpec {
            restart_policy: "Always".into(),
            containers: vec![v1::Container {
                name: "c".into(),
                image: "busybox".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn errors(spec: &PodSpec) -> Vec<String> {
        let mut e = Errs::default();
        validate_pod_spec(&mut e, spec, "spec");
        e.0.into_iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        let table = [
            ("100m", Some(0.1)),
            ("1", Some(1.0)),
            ("1Ki", Some(1024.0)),
            ("2e3", Some(2000.0)),
            ("1.5G", Some(1.5e9)),
            ("abc", None),
            ("1x", None),
            ("", None),
        ];
        for (q, want) in table {
            assert_eq!(parse_quantity(q), want, "{q}");
        }
    }

    #[test]
    fn pod_spec_rules_report_kubernetes_messages() {
        type Edit = fn(&mut PodSpec);
        let table: Vec<(Edit, &str)> = vec![
            (|s| s.containers.clear(), "spec.containers: Required value"),
            (
                |s| s.containers[0].image.clear(),
                "spec.containers[0].image: Required value",
            ),
            (
                |s| s.containers.push(s.containers[0].clone()),
                "spec.containers[1].name: Duplicate value: \"c\"",
            ),
            (
                |s| s.containers[0].name = "C_1".into(),
                "spec.containers[0].name: Invalid value: \"C_1\"",
            ),
            (
                |s| s.restart_policy = "Sometimes".into(),
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ),
            (
                |s| {
                    s.containers[0].volume_mounts.push(v1::VolumeMount {
                        name: "data".into(),
                        mount_path: "/d".into(),
                        ..Default::default()
                    })
                },
                "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
            ),
            (
                |s| {
                    s.volumes.push(v1::Volume {
                        name: "v".into(),
                        ..Default::default()
                    })
                },
                "spec.volumes[0]: Required value: must specify a volume type",
            ),
            (
                |s| {
                    s.volumes.push(v1::Volume {
                        name: "v".into(),
                        host_path: Some(Default::default()),
                        ..Default::default()
                    })
                },
                "spec.volumes[0].hostPath.path: Required value",
            ),
            (
                |s| {
                    let r = s.containers[0]
                        .resources
                        .get_or_insert_with(Default::default);
                    r.limits.insert("cpu".into(), "100m".into());
                    r.requests.insert("cpu".into(), "1".into());
                },
                "spec.containers[0].resources.requests[cpu]: Invalid value: \"1\": must be less than or equal to cpu limit of 100m",
            ),
            (
                |s| {
                    s.containers[0]
                        .resources
                        .get_or_insert_with(Default::default)
                        .limits
                        .insert("memory".into(), "lots".into());
                },
                "spec.containers[0].resources.limits[memory]: Invalid value: \"lots\"",
            ),
            (
                |s| s.containers[0].liveness_probe = Some(Default::default()),
                "spec.containers[0].livenessProbe: Required value: must specify a handler type",
            ),
            (
                |s| s.containers[0].env.push(v1::EnvVar::default()),
                "spec.containers[0].env[0].name: Required value",
            ),
            (
                |s| {
                    s.tolerations.push(v1::Toleration {
                        key: "k".into(),
                        operator: "Exists".into(),
                        value: "v".into(),
                        ..Default::default()
                    })
                },
                "spec.tolerations[0].operator: Invalid value: \"v\": value must be empty",
            ),
            (
                |s| {
                    s.tolerations.push(v1::Toleration {
                        key: "k".into(),
                        effect: "Sometimes".into(),
                        ..Default::default()
                    })
                },
                "spec.tolerations[0].effect: Unsupported value: \"Sometimes\"",
            ),
            (
                |s| {
                    s.affinity = Some(Box::new(v1::Affinity {
                        node_affinity: Some(v1::NodeAffinity {
                            required_during_scheduling_ignored_during_execution: Some(
                                v1::NodeSelector {
                                    node_selector_terms: vec![v1::NodeSelectorTerm {
                                        match_expressions: vec![v1::NodeSelectorRequirement {
                                            key: "cpu".into(),
                                            operator: "Gt".into(),
                                            values: vec!["x".into()],
                                        }],
                                        ..Default::default()
                                    }],
                                },
                            ),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }));
                },
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]: Invalid value: \"x\": must be an integer",
            ),
        ];
        assert!(errors(&spec()).is_empty(), "{:?}", errors(&spec()));
        for (edit, want) in table {
            let mut s = spec();
            edit(&mut s);
            let got = errors(&s);
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "want {want:?}, got {got:?}"
            );
        }
    }
}
