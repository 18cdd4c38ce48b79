//! Decoder behaviour on small inline manifests: types, lists, JSON, multi-document files.

use bosun_api::codec::decode_manifests;

const JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: j
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
";

fn diags(text: &str) -> Vec<String> {
    match decode_manifests("m.yaml", text) {
        Ok(_) => vec![],
        Err(e) => e.diagnostics.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn wrong_types_are_reported_with_line_path_expected_and_got() {
    let table = [
        (
            JOB.replace(
                "spec:\n  template",
                "spec:\n  backoffLimit: six\n  template",
            ),
            "m.yaml:6: spec.backoffLimit: expected an integer, got a string (\"six\")",
        ),
        (
            JOB.replace("  name: j\n", "  name: j\n  labels:\n    v: 1\n"),
            "m.yaml:6: metadata.labels[v]: expected a string value for \"v\", got a number (1); quote it: v: \"1\"",
        ),
        (
            JOB.replace("      containers:\n", "      containers: {}\n")
                .replace("      - name: c\n        image: busybox\n", ""),
            "m.yaml:9: spec.template.spec.containers: expected a list, got an object",
        ),
    ];
    for (text, want) in table {
        let got = diags(&text);
        assert!(got.iter().any(|g| g == want), "want {want}\ngot {got:#?}");
    }
}

#[test]
fn quantities_accept_numbers_and_int_or_string_accepts_both() {
    let job = JOB.replace(
        "        image: busybox\n",
        "        image: busybox\n        resources:\n          limits:\n            cpu: 1\n",
    );
    let m = decode_manifests("m.yaml", &job).unwrap();
    let spec = m[0].object.as_job().unwrap().spec.clone().unwrap();
    let c = &spec.template.unwrap().spec.unwrap().containers[0];
    assert_eq!(c.resources.as_ref().unwrap().limits["cpu"], "1");
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  updateStrategy: {rollingUpdate: {maxUnavailable: \"10%\"}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: x}]}\n";
    let m = decode_manifests("ds.yaml", ds).unwrap();
    let ru = m[0]
        .object
        .as_daemon_set()
        .unwrap()
        .spec
        .clone()
        .unwrap()
        .update_strategy
        .unwrap()
        .rolling_update
        .unwrap();
    assert_eq!(ru.max_unavailable.unwrap().str_val, "10%");
}

#[test]
fn multi_document_files_lists_and_json_all_decode() {
    let two = format!(
        "---\n{JOB}---\n# empty\n---\n{}",
        JOB.replace("name: j", "name: k")
    );
    let m = decode_manifests("m.yaml", &two).unwrap();
    assert_eq!(
        m.iter().map(|m| m.object.name()).collect::<Vec<_>>(),
        ["j", "k"]
    );
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}",
        JOB.replace('\n', "\n  ")
    );
    assert_eq!(decode_manifests("l.yaml", &list).unwrap().len(), 1);
    let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let m = decode_manifests("p.json", json).unwrap();
    assert_eq!(
        m[0].object
            .as_pod()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .restart_policy,
        "Always"
    );
}

#[test]
fn unknown_kinds_and_wrong_api_versions_name_the_right_one() {
    let got = diags(&JOB.replace("batch/v1", "apps/v1"));
    assert!(
        got.iter()
            .any(|g| g.contains("apiVersion") && g.ends_with("use apiVersion: batch/v1")),
        "{got:#?}"
    );
    let got = diags(&JOB.replace("kind: Job", "kind: job"));
    assert!(
        got.iter().any(|g| g.ends_with("did you mean Job?")),
        "{got:#?}"
    );
}

#[test]
fn validation_errors_point_at_their_lines() {
    let got = diags(&JOB.replace("restartPolicy: Never", "restartPolicy: Always"));
    assert_eq!(got, vec!["m.yaml:8: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"".to_string()]);
}
