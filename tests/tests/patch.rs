//! `bosun patch` end to end: the real `bosun` binary and the real broker binary over a real
//! etcd. The patch is applied in the broker, so what is checked here is what got stored:
//! the change and nothing else, nothing at all when the patch fails, and no write lost
//! when many patches race.

use std::time::Duration;

use bosun_api::Kind;
use bosun_api::v1::PatchType;
use bosun_runtime::client::PatchTarget;
use bosun_tests::{Plane, job};

/// etcd, the broker binary, a `bosun` for it and a typed client.
async fn plane() -> Plane {
    Plane::builder("patch").broker_process().start().await
}

/// Creates the Job `name` (one pod running `true`; it and its pods labelled `app=<name>`).
async fn create_job(p: &Plane, name: &str) {
    let mut obj = job("default", name);
    obj.meta_mut().labels.insert("app".into(), name.into());
    p.client().create(obj).await.expect("create job");
}

/// `bosun get job NAME -o jsonpath=TEMPLATE`.
async fn jsonpath(p: &Plane, name: &str, template: &str) -> String {
    p.ok(&["get", "job", name, "-o", &format!("jsonpath={template}")])
        .await
}

async fn resource_version(p: &Plane, name: &str) -> String {
    jsonpath(p, name, "{.metadata.resourceVersion}").await
}

#[tokio::test]
async fn a_merge_patch_changes_labels_and_a_jobs_parallelism_and_a_repeat_changes_nothing() {
    let p = plane().await;
    create_job(&p, "pi").await;
    let patch = r#"{"metadata":{"labels":{"tier":"batch"}},"spec":{"parallelism":3}}"#;
    let out = p
        .ok(&["patch", "job", "pi", "--type", "merge", "-p", patch])
        .await;
    assert_eq!(out, "job.batch/pi patched\n");
    assert_eq!(jsonpath(&p, "pi", "{.spec.parallelism}").await, "3");
    assert_eq!(jsonpath(&p, "pi", "{.metadata.labels.tier}").await, "batch");
    assert_eq!(jsonpath(&p, "pi", "{.metadata.generation}").await, "2");

    let before = resource_version(&p, "pi").await;
    let out = p
        .ok(&["patch", "job/pi", "--type=merge", "-p", patch])
        .await;
    assert_eq!(out, "job.batch/pi patched (no change)\n");
    assert_eq!(
        resource_version(&p, "pi").await,
        before,
        "an unchanged object is not written"
    );

    // A label removed with null; -o name and -o json print the object as kubectl does.
    let out = p
        .ok(&[
            "patch",
            "job",
            "pi",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"tier":null}}}"#,
            "-o",
            "name",
        ])
        .await;
    assert_eq!(out, "job.batch/pi\n");
    let json = p
        .ok(&[
            "patch",
            "job",
            "pi",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"parallelism":2}}"#,
            "-o",
            "json",
        ])
        .await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["spec"]["parallelism"], 2);
    assert!(v["metadata"]["labels"].get("tier").is_none(), "{v}");

    // A YAML patch, as kubectl takes it, on a server dry run: checked, not written.
    let before = resource_version(&p, "pi").await;
    let out = p
        .ok(&[
            "patch",
            "job",
            "pi",
            "--type",
            "merge",
            "-p",
            "spec:\n  parallelism: 7\n",
            "--dry-run=server",
        ])
        .await;
    assert_eq!(out, "job.batch/pi patched (server dry run)\n");
    assert_eq!(jsonpath(&p, "pi", "{.spec.parallelism}").await, "2");
    assert_eq!(resource_version(&p, "pi").await, before);
    let out = p
        .run(&[
            "patch",
            "job",
            "pi",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"parallelism":-7}}"#,
            "--dry-run=server",
        ])
        .await;
    assert_eq!(out.code, 1, "a dry run validates: {out:#?}");
}

#[tokio::test]
async fn a_json_patch_adds_removes_replaces_and_tests() {
    let p = plane().await;
    create_job(&p, "pi").await;
    // `~1` is the `/` of a label key in a JSON pointer.
    let patch = r#"[
        {"op": "test", "path": "/spec/parallelism", "value": 1},
        {"op": "add", "path": "/metadata/labels/example.com~1team", "value": "infra"},
        {"op": "replace", "path": "/spec/parallelism", "value": 4},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/a"]},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/b"},
        {"op": "copy", "from": "/spec/parallelism", "path": "/spec/activeDeadlineSeconds"}
    ]"#;
    let out = p
        .ok(&["patch", "job", "pi", "--type", "json", "-p", patch])
        .await;
    assert_eq!(out, "job.batch/pi patched\n");
    assert_eq!(jsonpath(&p, "pi", "{.spec.parallelism}").await, "4");
    assert_eq!(
        jsonpath(&p, "pi", "{.metadata.labels.example\\.com/team}").await,
        "infra"
    );
    let json = p.ok(&["get", "job", "pi", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        v["metadata"]["finalizers"],
        serde_json::json!(["example.com/a", "example.com/b"])
    );
    assert_eq!(v["spec"]["activeDeadlineSeconds"], 4);

    let patch = r#"[
        {"op": "remove", "path": "/metadata/labels/example.com~1team"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
        {"op": "move", "from": "/spec/activeDeadlineSeconds", "path": "/spec/ttlSecondsAfterFinished"}
    ]"#;
    p.ok(&["patch", "job", "pi", "--type", "json", "-p", patch])
        .await;
    let json = p.ok(&["get", "job", "pi", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(
        v["metadata"]["labels"].get("example.com/team").is_none(),
        "{v}"
    );
    assert_eq!(
        v["metadata"]["finalizers"],
        serde_json::json!(["example.com/b"])
    );
    assert!(v["spec"].get("activeDeadlineSeconds").is_none(), "{v}");
    assert_eq!(v["spec"]["ttlSecondsAfterFinished"], 4);
}

#[tokio::test]
async fn a_failing_test_operation_is_an_error_and_nothing_is_written() {
    let p = plane().await;
    create_job(&p, "pi").await;
    let before = resource_version(&p, "pi").await;
    let patch = r#"[
        {"op": "replace", "path": "/spec/parallelism", "value": 9},
        {"op": "test", "path": "/metadata/labels/app", "value": "other"}
    ]"#;
    let out = p
        .run(&["patch", "job", "pi", "--type", "json", "-p", patch])
        .await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains(
            "json patch operation 1 (test /metadata/labels/app) failed: test failed: the value is \"pi\", the patch expects \"other\""
        ),
        "{out:#?}"
    );
    assert_eq!(resource_version(&p, "pi").await, before);
    assert_eq!(jsonpath(&p, "pi", "{.spec.parallelism}").await, "1");
}

#[tokio::test]
async fn an_invalid_patch_result_is_rejected_with_what_is_wrong_and_nothing_is_written() {
    let p = plane().await;
    create_job(&p, "pi").await;
    let before = resource_version(&p, "pi").await;
    let table: [(&str, &str, &str, &str); 6] = [
        (
            "an immutable field",
            "merge",
            r#"{"spec":{"completionMode":"Indexed","completions":2}}"#,
            "spec.completionMode: Invalid value: \"Indexed\": field is immutable",
        ),
        (
            "a bad value",
            "merge",
            r#"{"spec":{"parallelism":-1}}"#,
            "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "an unknown field",
            "merge",
            r#"{"spec":{"paralelism":2}}"#,
            "spec.paralelism: unknown field \"paralelism\"",
        ),
        (
            "a renamed object",
            "merge",
            r#"{"metadata":{"name":"other"}}"#,
            "the name of the object (\"other\") does not match the name it was read by (\"pi\")",
        ),
        (
            "a stale resourceVersion precondition",
            "merge",
            r#"{"metadata":{"resourceVersion":"1"},"spec":{"parallelism":5}}"#,
            "Error from server (Conflict)",
        ),
        (
            "a path that is not there",
            "json",
            r#"[{"op":"replace","path":"/spec/nothing/here","value":1}]"#,
            "json patch operation 0 (replace /spec/nothing/here) failed: path is invalid",
        ),
    ];
    for (name, kind, patch, want) in table {
        let out = p
            .run(&["patch", "job", "pi", "--type", kind, "-p", patch])
            .await;
        assert_eq!(out.code, 1, "{name}: {out:#?}");
        assert!(out.stderr.contains(want), "{name}: {}", out.stderr);
        assert_eq!(resource_version(&p, "pi").await, before, "{name}: written");
    }
    // The whole message, as kubectl users read it.
    let out = p
        .run(&[
            "patch",
            "job",
            "pi",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"parallelism":-1}}"#,
        ])
        .await;
    assert_eq!(
        out.stderr,
        "Error from server (Invalid): jobs.batch \"pi\" is invalid: spec.parallelism: Invalid value: -1: must be greater than or equal to 0\n"
    );
    // A current resourceVersion is a precondition that holds.
    let patch =
        format!(r#"{{"metadata":{{"resourceVersion":"{before}"}},"spec":{{"parallelism":5}}}}"#);
    p.ok(&["patch", "job", "pi", "--type", "merge", "-p", &patch])
        .await;
    assert_eq!(jsonpath(&p, "pi", "{.spec.parallelism}").await, "5");
}

#[tokio::test]
async fn kubectls_default_strategic_merge_is_refused_with_what_to_use() {
    let p = plane().await;
    create_job(&p, "pi").await;
    let out = p
        .run(&["patch", "job", "pi", "-p", r#"{"spec":{"parallelism":2}}"#])
        .await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .contains("strategic merge patch (kubectl's default --type) is not supported yet")
            && out.stderr.contains("use --type merge"),
        "{out:#?}"
    );
    assert_eq!(jsonpath(&p, "pi", "{.spec.parallelism}").await, "1");
    let out = p
        .run(&["patch", "job", "nope", "--type", "merge", "-p", "{}"])
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("Error from server (NotFound): jobs.batch \"nope\" not found"),
        "{out:#?}"
    );
}

#[tokio::test]
async fn many_concurrent_patches_each_adding_a_label_all_land() {
    const CLIENTS: usize = 40;
    const CLIS: usize = 6;
    let p = plane().await;
    create_job(&p, "pi").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CLIENTS {
        let client = p.client().clone();
        tasks.spawn(async move {
            let patch = format!(r#"{{"metadata":{{"labels":{{"c{i}":"v"}}}}}}"#);
            let target = PatchTarget {
                kind: Kind::Job,
                namespace: "default",
                name: "pi",
                patch_type: PatchType::Merge,
                status: false,
            };
            let done = client.patch(target, &patch).await.expect("patch lands");
            assert!(done.changed, "c{i}");
        });
    }
    for i in 0..CLIS {
        let bosun = p.bosun().clone();
        tasks.spawn(async move {
            let patch = format!(r#"[{{"op":"add","path":"/metadata/labels/cli{i}","value":"v"}}]"#);
            let out = bosun
                .ok(&["patch", "job", "pi", "--type", "json", "-p", &patch])
                .await;
            assert_eq!(out, "job.batch/pi patched\n");
        });
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(done) = tasks.join_next().await {
            done.expect("patch task");
        }
    })
    .await
    .expect("every patch finished within 60 s");
    let job = p
        .client()
        .get(Kind::Job, "default", "pi")
        .await
        .expect("get");
    let labels = &job.meta().expect("meta").labels;
    let missing: Vec<String> = (0..CLIENTS)
        .map(|i| format!("c{i}"))
        .chain((0..CLIS).map(|i| format!("cli{i}")))
        .filter(|k| !labels.contains_key(k))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?} of {labels:?}");
}

#[tokio::test]
async fn the_status_subresource_patches_the_status_and_the_object_patch_leaves_it() {
    let p = plane().await;
    p.client()
        .create(bosun_tests::pod("default", "web"))
        .await
        .expect("create pod");
    let get = |template: &'static str| {
        let bosun = p.bosun().clone();
        async move {
            bosun
                .ok(&["get", "pod", "web", "-o", &format!("jsonpath={template}")])
                .await
        }
    };
    // The object: a status change is ignored (as an update keeps the stored status).
    let out = p
        .ok(&[
            "patch",
            "pod",
            "web",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"message":"from the object"}}"#,
        ])
        .await;
    assert_eq!(out, "pod/web patched (no change)\n");
    assert_eq!(get("{.status.message}").await, "");
    // The status: only the status changes.
    let out = p
        .ok(&[
            "patch",
            "pod",
            "web",
            "--type",
            "merge",
            "--subresource",
            "status",
            "-p",
            r#"{"metadata":{"labels":{"ignored":"yes"}},"status":{"message":"from status"}}"#,
        ])
        .await;
    assert_eq!(out, "pod/web patched\n");
    assert_eq!(get("{.status.message}").await, "from status");
    assert_eq!(get("{.status.phase}").await, "Pending");
    assert_eq!(get("{.metadata.labels}").await, "");
}
