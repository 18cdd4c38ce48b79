//! The seed manifests (our first users' lecture notes) decode as Kubernetes would treat
//! them, and every known mistake is reported with its exact line, path and fix.

use bosun_api::codec::{Diagnostic, Manifest, decode_manifests};

fn manifests_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/manifests").to_string()
}

fn decode(rel: &str) -> Result<Vec<Manifest>, Vec<Diagnostic>> {
    let text =
        std::fs::read_to_string(format!("{}/{rel}", manifests_dir())).expect("manifest exists");
    decode_manifests(rel, &text).map_err(|e| e.diagnostics)
}

fn errors(rel: &str) -> Vec<Diagnostic> {
    match decode(rel) {
        Ok(m) => panic!("{rel} should be rejected, decoded {} objects", m.len()),
        Err(d) => d,
    }
}

fn find<'a>(diags: &'a [Diagnostic], path: &str) -> &'a Diagnostic {
    diags
        .iter()
        .find(|d| d.path == path)
        .unwrap_or_else(|| panic!("no diagnostic at {path}: {diags:#?}"))
}

#[test]
fn the_pi_job_reports_its_duplicate_key_and_misplaced_restart_policy() {
    let d = errors("seeds/001-pi-job.yaml");
    let misplaced = find(&d, "spec.restartPolicy");
    assert_eq!(misplaced.line, 7);
    assert_eq!(misplaced.message, "unknown field \"restartPolicy\"");
    assert_eq!(
        misplaced.hint.as_deref(),
        Some("did you mean spec.template.spec.restartPolicy?")
    );
    let dup = find(&d, "spec.backoffLimit");
    assert_eq!(dup.line, 18);
    assert_eq!(
        dup.to_string(),
        "seeds/001-pi-job.yaml:18: spec.backoffLimit: duplicate key \"backoffLimit\" (first at line 8); remove one of them"
    );
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(
        d.windows(2).all(|w| w[0].line <= w[1].line),
        "ordered by line"
    );
}

#[test]
fn the_cron_job_typo_suggests_starting_deadline_seconds() {
    let d = errors("seeds/003-batch-job-every-fifteen-minutes-deadline.yaml");
    let typo = find(&d, "spec.startingDeadlineSecond");
    assert_eq!(typo.line, 9);
    assert_eq!(
        typo.hint.as_deref(),
        Some("did you mean spec.startingDeadlineSeconds?")
    );
    // The fragment also has no jobTemplate, which Kubernetes requires.
    assert_eq!(find(&d, "spec.jobTemplate").message, "Required value");
}

#[test]
fn the_daemon_set_with_lost_indentation_is_told_to_indent_under_match_labels() {
    let d = errors("seeds/001-deamonset-example.yaml");
    let lost = find(&d, "spec.selector.name");
    assert_eq!(lost.line, 11);
    assert_eq!(
        lost.hint.as_deref(),
        Some(
            "\"name\" is not a field of spec.selector, and matchLabels just above it is empty: indent name under matchLabels"
        )
    );
    let empty = find(&d, "spec.selector");
    assert_eq!(empty.line, 9);
    assert!(
        empty
            .message
            .contains("empty selector is invalid for daemonset")
    );
    assert!(
        empty
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("name=deamonset-example"),
        "{empty:?}"
    );
}

#[test]
fn deprecated_api_versions_are_accepted_with_a_warning() {
    let table = [
        (
            "seeds/003-ssd-monitor-daemonset.yaml",
            "apps/v1beta2 DaemonSet is deprecated; stored as apps/v1",
            "apps/v1",
        ),
        (
            "seeds/001-hello-cronjob.yaml",
            "batch/v1beta1 CronJob is deprecated; stored as batch/v1",
            "batch/v1",
        ),
        (
            "seeds/003-batch-job-every-fifteen-minutes.yaml",
            "batch/v1beta1 CronJob is deprecated; stored as batch/v1",
            "batch/v1",
        ),
    ];
    for (rel, warning, stored) in table {
        let m = decode(rel).unwrap_or_else(|d| panic!("{rel}: {d:#?}"));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].warnings, vec![warning.to_string()], "{rel}");
        assert_eq!(m[0].object.type_meta().0, stored);
    }
}

#[test]
fn the_kubectl_get_pod_output_is_rejected_because_the_pod_has_no_containers() {
    let d = errors("seeds/000-pod-list.yaml");
    let kind = find(&d, "kind");
    assert_eq!(kind.line, 2);
    assert!(kind.hint.as_deref().unwrap_or("").contains("kind: List"));
    let containers = find(&d, "spec.containers");
    assert_eq!(containers.message, "Required value");
    assert_eq!(containers.line, 4, "the pod item starts on line 4");
}

#[test]
fn the_correct_seed_manifests_decode_cleanly() {
    for rel in [
        "seeds/001-fluentd-elasticsearch.yaml",
        "seeds/003-batch-job.yaml",
        "seeds/003-job-test.yaml",
    ] {
        let m = decode(rel).unwrap_or_else(|d| panic!("{rel}: {d:#?}"));
        assert_eq!(m.len(), 1);
        assert!(m[0].warnings.is_empty());
    }
}

#[test]
fn fragments_without_kind_are_rejected() {
    for rel in [
        "seeds/003-serial-completions-fragment.yaml",
        "seeds/003-parallel-completions-fragment.yaml",
    ] {
        let d = errors(rel);
        assert!(find(&d, "kind").message.contains("kind not set"));
    }
}

#[test]
fn every_example_decodes_and_round_trips_through_yaml_and_json() {
    let mut files: Vec<_> = std::fs::read_dir(format!("{}/examples", manifests_dir()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8);
    for f in files {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        let m = decode_manifests(&name, &text).unwrap_or_else(|e| panic!("{e}"));
        for man in m {
            assert!(man.warnings.is_empty(), "{name}: {:?}", man.warnings);
            let yaml = bosun_api::codec::to_yaml(&man.object);
            let back = decode_manifests("yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
            assert_eq!(back[0].object, man.object, "{name} via YAML:\n{yaml}");
            let json = bosun_api::codec::to_json_value(&man.object).to_string();
            let back = decode_manifests("json", &json).unwrap_or_else(|e| panic!("{e}\n{json}"));
            assert_eq!(back[0].object, man.object, "{name} via JSON");
        }
    }
}
