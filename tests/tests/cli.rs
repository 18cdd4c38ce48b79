//! The real `bosun` binary, as a child process, against a real etcd and the real broker
//! binary: what kubectl users type, what they see, and what ends up stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bosun_tests::{Bosun, Plane, manifests_dir, temp_dir};
use tokio::io::AsyncBufReadExt as _;

/// etcd, the broker binary, and a `bosun` that talks to it from `tests/manifests`.
async fn plane() -> Plane {
    Plane::builder("cli")
        .broker_process()
        .cli_in(manifests_dir())
        .start()
        .await
}

/// Every (file, kind word, namespace, name) of the seed manifests that Kubernetes accepts.
const VALID_SEEDS: &[(&str, &str, &str, &str)] = &[
    (
        "seeds/001-fluentd-elasticsearch.yaml",
        "daemonset.apps",
        "kube-system",
        "fluentd-elasticsearch",
    ),
    (
        "seeds/001-hello-cronjob.yaml",
        "cronjob.batch",
        "default",
        "hello",
    ),
    (
        "seeds/003-batch-job-every-fifteen-minutes.yaml",
        "cronjob.batch",
        "default",
        "batch-job-every-fifteen-minutes",
    ),
    (
        "seeds/003-batch-job.yaml",
        "job.batch",
        "default",
        "batch-job",
    ),
    (
        "seeds/003-job-test.yaml",
        "job.batch",
        "default",
        "batch-job",
    ),
    (
        "seeds/003-ssd-monitor-daemonset.yaml",
        "daemonset.apps",
        "default",
        "ssd-monitor",
    ),
];

/// Every broken seed manifest, with the exact diagnostics it must print (a subset of them).
const BROKEN_SEEDS: &[(&str, &[&str])] = &[
    ("seeds/000-pod-list.yaml", &[]),
    (
        "seeds/001-deamonset-example.yaml",
        &[
            "error: seeds/001-deamonset-example.yaml:11: spec.selector.name: unknown field \"name\"; \"name\" is not a field of spec.selector, and matchLabels just above it is empty: indent name under matchLabels",
        ],
    ),
    (
        "seeds/001-pi-job.yaml",
        &[
            "error: seeds/001-pi-job.yaml:7: spec.restartPolicy: unknown field \"restartPolicy\"; did you mean spec.template.spec.restartPolicy?",
            "error: seeds/001-pi-job.yaml:18: spec.backoffLimit: duplicate key \"backoffLimit\" (first at line 8); remove one of them",
        ],
    ),
    (
        "seeds/003-batch-job-every-fifteen-minutes-deadline.yaml",
        &[
            "error: seeds/003-batch-job-every-fifteen-minutes-deadline.yaml:9: spec.startingDeadlineSecond: unknown field \"startingDeadlineSecond\"; did you mean spec.startingDeadlineSeconds?",
        ],
    ),
    ("seeds/003-parallel-completions-fragment.yaml", &[]),
    ("seeds/003-serial-completions-fragment.yaml", &[]),
];

const KIND_WORDS: &[&str] = &[
    "pods",
    "jobs",
    "cronjobs",
    "daemonsets",
    "nodes",
    "events",
    "controllerrevisions",
];

/// Asserts that no object of any kind exists in any namespace.
async fn assert_nothing_stored(p: &Plane) {
    for kind in KIND_WORDS {
        let out = p.run(&["get", kind, "-A"]).await;
        assert_eq!(out.code, 0, "{out:#?}");
        assert_eq!(out.stdout, "", "{kind} were written: {out:#?}");
        assert!(out.stderr.starts_with("No resources found"), "{out:#?}");
    }
}

#[tokio::test]
async fn the_valid_seed_manifests_are_created_and_shown_by_get() {
    let p = plane().await;
    for (file, word, ns, name) in VALID_SEEDS {
        let out = p.run(&["apply", "-f", file]).await;
        assert_eq!(out.code, 0, "{file}: {out:#?}");
        assert_eq!(out.stdout, format!("{word}/{name} created\n"), "{file}");
        let shown = p.ok(&["get", word, name, "-n", ns, "-o", "name"]).await;
        assert_eq!(shown, format!("{word}/{name}\n"), "{file}");
        // Two seeds share the name batch-job: remove each before the next.
        let gone = p.ok(&["delete", "-f", file]).await;
        assert_eq!(gone, format!("{word} \"{name}\" deleted\n"), "{file}");
    }
}

#[tokio::test]
async fn deprecated_api_versions_in_seeds_are_applied_with_a_warning() {
    let p = plane().await;
    let out = p
        .run(&["apply", "-f", "seeds/001-hello-cronjob.yaml"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr
            .contains("Warning: batch/v1beta1 CronJob is deprecated; stored as batch/v1"),
        "{out:#?}"
    );
    let json = p.ok(&["get", "cronjob", "hello", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["apiVersion"], "batch/v1");
}

#[tokio::test]
async fn the_broken_seed_manifests_are_rejected_with_file_line_path_and_hint_and_nothing_is_written()
 {
    let p = plane().await;
    for (file, expected) in BROKEN_SEEDS {
        let out = p.run(&["apply", "-f", file]).await;
        assert_ne!(out.code, 0, "{file} was accepted: {out:#?}");
        assert_eq!(out.stdout, "", "{file}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        for want in *expected {
            assert!(
                lines.contains(want),
                "{file}: missing line\n  {want}\nin\n{}",
                out.stderr
            );
        }
        assert!(
            out.stderr.contains("nothing was applied"),
            "{file}: {}",
            out.stderr
        );
    }
    assert_nothing_stored(&p).await;
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifests_dir().join("examples"))
        .expect("examples")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    files
}

/// The manifest with an annotation added under `metadata:` (indented like its neighbours).
fn annotated(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "metadata:")
        .expect("a top-level metadata");
    let indent: String = lines[at + 1].chars().take_while(|c| *c == ' ').collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out.insert(at + 1, format!("{indent}annotations:"));
    out.insert(
        at + 2,
        format!("{indent}{indent}bosun.dev/touched: \"yes\""),
    );
    out.join("\n") + "\n"
}

#[tokio::test]
async fn every_example_applies_then_is_unchanged_then_a_changed_file_is_configured() {
    let p = plane().await;
    let dir = temp_dir("cli-examples");
    for file in example_files() {
        let path = file.display().to_string();
        let first = p.ok(&["apply", "-f", &path]).await;
        assert!(first.ends_with(" created\n"), "{path}: {first}");
        let object = first.trim_end().trim_end_matches(" created").to_string();
        let again = p.ok(&["apply", "-f", &path]).await;
        assert_eq!(again, format!("{object} unchanged\n"), "{path}");
        let text = std::fs::read_to_string(&file).expect("read");
        let changed = dir.join(file.file_name().expect("name"));
        std::fs::write(&changed, annotated(&text)).expect("write");
        let third = p.ok(&["apply", "-f", &changed.display().to_string()]).await;
        assert_eq!(third, format!("{object} configured\n"), "{path}");
        // Found across namespaces by name (one example lives in kube-system).
        let (word, name) = object.split_once('/').expect("kind/name");
        let selector = format!("metadata.name={name}");
        let annotation = p
            .ok(&[
                "get",
                word,
                "-A",
                "--field-selector",
                &selector,
                "-o",
                "jsonpath={.items[0].metadata.annotations.bosun\\.dev/touched}",
            ])
            .await;
        assert_eq!(annotation, "yes", "{path}");
    }
}

const PI: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: pi
  labels:
    app: pi
spec:
  backoffLimit: 4
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: [perl, -Mbignum=bpi, -wle, print bpi(20)]
      restartPolicy: Never
";

fn job_named(name: &str, app: &str) -> String {
    PI.replace("name: pi\n", &format!("name: {name}\n"))
        .replace("app: pi", &format!("app: {app}"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write manifest");
    path.display().to_string()
}

#[tokio::test]
async fn a_folder_and_stdin_apply_and_one_bad_document_in_a_file_writes_nothing() {
    let p = plane().await;
    let out = p.ok(&["apply", "-f", "examples"]).await;
    assert_eq!(out.lines().count(), example_files().len(), "{out}");
    assert!(out.lines().all(|l| l.ends_with(" created")), "{out}");
    assert!(out.contains("job.batch/pi created"), "{out}");

    let out = p
        .bosun()
        .run_with_stdin(&["apply", "-f", "-"], Some(&job_named("from-stdin", "x")))
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "job.batch/from-stdin created\n"),
        "{out:#?}"
    );

    let dir = temp_dir("cli-multi");
    let bad = job_named("bad", "x").replace(
        "  backoffLimit: 4\n",
        "  backoffLimit: 4\n  backoffLimit: 5\n",
    );
    let multi = write(
        &dir,
        "multi.yaml",
        &format!("{}---\n{bad}", job_named("good", "x")),
    );
    let out = p.run(&["apply", "-f", &multi]).await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("multi.yaml:") && out.stderr.contains("duplicate key"),
        "{out:#?}"
    );
    for name in ["good", "bad"] {
        let out = p.run(&["get", "job", name]).await;
        assert_eq!(out.code, 1, "{name} was written: {out:#?}");
    }
}

/// Applies `text` as a manifest through stdin.
async fn apply_text(p: &Plane, text: &str) {
    let out = p
        .bosun()
        .run_with_stdin(&["apply", "-f", "-"], Some(text))
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
}

#[tokio::test]
async fn get_prints_kubectl_tables_wide_yaml_json_names_and_jsonpath() {
    let p = plane().await;
    apply_text(&p, &job_named("pi", "pi")).await;
    apply_text(&p, &job_named("e", "e")).await;

    let table = p.ok(&["get", "jobs"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        "{table}"
    );
    assert!(lines[1].starts_with("e "), "sorted by name: {table}");
    assert!(lines[2].starts_with("pi "), "{table}");
    assert!(lines[2].contains("0/1"), "{table}");

    let wide = p.ok(&["get", "jobs", "-o", "wide"]).await;
    let header = wide.lines().next().unwrap_or_default();
    for col in ["CONTAINERS", "IMAGES", "SELECTOR"] {
        assert!(header.contains(col), "{wide}");
    }
    assert!(wide.contains("perl:5.34.0"), "{wide}");

    let yaml = p.ok(&["get", "job", "pi", "-o", "yaml"]).await;
    assert!(yaml.starts_with("apiVersion: batch/v1\n"), "{yaml}");
    assert!(yaml.contains("kind: Job\n") && yaml.contains("name: pi\n"));
    assert!(yaml.contains("backoffLimit: 4"), "{yaml}");

    let json = p.ok(&["get", "jobs", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["kind"], "List");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["items"][1]["metadata"]["name"], "pi");
    assert!(
        v["items"][1]["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );

    assert_eq!(
        p.ok(&["get", "jobs", "-o", "name"]).await,
        "job.batch/e\njob.batch/pi\n"
    );
    assert_eq!(
        p.ok(&[
            "get",
            "jobs",
            "-o",
            "jsonpath={.items[*].metadata.labels.app}"
        ])
        .await,
        "e pi"
    );
    assert_eq!(
        p.ok(&["get", "jobs", "-l", "app=pi", "-o", "name"]).await,
        "job.batch/pi\n"
    );
    assert_eq!(
        p.ok(&[
            "get",
            "jobs",
            "--field-selector",
            "metadata.name!=pi",
            "-o",
            "name"
        ])
        .await,
        "job.batch/e\n"
    );
}

#[tokio::test]
async fn get_across_namespaces_adds_a_namespace_column() {
    let p = plane().await;
    apply_text(&p, &job_named("pi", "pi")).await;
    let out = p
        .bosun()
        .run_with_stdin(
            &["apply", "-n", "team", "-f", "-"],
            Some(&job_named("other", "pi")),
        )
        .await;
    assert_eq!(out.code, 0, "{out:#?}");

    let here = p.ok(&["get", "jobs", "-o", "name"]).await;
    assert_eq!(here, "job.batch/pi\n");
    let team = p.ok(&["get", "jobs", "-n", "team", "-o", "name"]).await;
    assert_eq!(team, "job.batch/other\n");
    let all = p.ok(&["get", "jobs", "-A"]).await;
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE "), "{all}");
    assert_eq!(lines.len(), 3, "{all}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("team ") && l.contains(" other ")),
        "{all}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("default ") && l.contains(" pi ")),
        "{all}"
    );
}

#[tokio::test]
async fn get_watch_shows_a_row_for_an_object_created_after_it_started() {
    let p = plane().await;
    apply_text(&p, &job_named("pi", "pi")).await;
    let mut child = p
        .bosun()
        .command(&["get", "jobs", "-w"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("bosun get -w runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("a line within 10 s")
            .expect("read stdout")
            .expect("bosun get -w is still running")
    };
    assert!(next_line().await.starts_with("NAME "));
    assert!(next_line().await.starts_with("pi "));

    apply_text(&p, &job_named("later", "x")).await;
    let row = next_line().await;
    assert!(row.starts_with("later "), "{row}");
    assert!(row.contains("0/1"), "{row}");
    child.kill().await.expect("stop the watch");
}

#[tokio::test]
async fn describe_job_shows_the_kubernetes_layout() {
    let p = plane().await;
    apply_text(&p, &job_named("pi", "pi")).await;
    let out = p.ok(&["describe", "job", "pi"]).await;
    let field = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .map(|l| l[name.len() + 1..].trim().to_string())
            .unwrap_or_else(|| panic!("no {name}: line in\n{out}"))
    };
    assert_eq!(field("Name"), "pi");
    assert_eq!(field("Namespace"), "default");
    assert!(field("Labels").contains("app=pi"), "{out}");
    assert_eq!(field("Backoff Limit"), "4");
    assert_eq!(field("Completions"), "1");
    assert_eq!(field("Parallelism"), "1");
    assert!(field("Pods Statuses").contains("Active"), "{out}");
    assert!(out.contains("Pod Template:"), "{out}");
    assert!(out.contains("perl:5.34.0"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("Events:")), "{out}");
}

#[tokio::test]
async fn delete_by_name_label_all_and_file_removes_exactly_those_objects() {
    let p = plane().await;
    let dir = temp_dir("cli-delete");
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db"), ("d", "db")] {
        apply_text(&p, &job_named(name, app)).await;
    }
    let file_e = write(&dir, "e.yaml", &job_named("e", "x"));
    p.ok(&["apply", "-f", &file_e]).await;

    assert_eq!(
        p.ok(&["delete", "job", "a"]).await,
        "job.batch \"a\" deleted\n"
    );
    assert_eq!(
        p.ok(&["delete", "jobs", "-l", "app=db"]).await,
        "job.batch \"c\" deleted\njob.batch \"d\" deleted\n"
    );
    assert_eq!(
        p.ok(&["delete", "-f", &file_e]).await,
        "job.batch \"e\" deleted\n"
    );
    assert_eq!(p.ok(&["get", "jobs", "-o", "name"]).await, "job.batch/b\n");
    assert_eq!(
        p.ok(&["delete", "jobs", "--all"]).await,
        "job.batch \"b\" deleted\n"
    );
    let out = p.run(&["get", "jobs"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""));
    assert_eq!(out.stderr, "No resources found in default namespace.\n");
}

#[tokio::test]
async fn cascading_deletes_record_their_finalizer_and_leave_the_object_terminating() {
    let p = plane().await;
    for (name, cascade, finalizer) in [
        ("fg", "foreground", "foregroundDeletion"),
        ("or", "orphan", "orphan"),
    ] {
        // Another finalizer keeps the object around after the delete.
        let text = job_named(name, "x").replace(
            "  labels:\n",
            "  finalizers:\n  - example.com/keep\n  labels:\n",
        );
        apply_text(&p, &text).await;
        let flag = format!("--cascade={cascade}");
        let out = p.run(&["delete", "job", name, &flag, "--wait=false"]).await;
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, format!("job.batch \"{name}\" deleted\n").as_str()),
            "{out:#?}"
        );
        let json = p.ok(&["get", "job", name, "-o", "json"]).await;
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        let finalizers: Vec<&str> = v["metadata"]["finalizers"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
            .unwrap_or_default();
        assert!(finalizers.contains(&"example.com/keep"), "{json}");
        assert!(finalizers.contains(&finalizer), "{json}");
        assert!(
            v["metadata"]["deletionTimestamp"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{json}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_broker_is_an_actionable_error_with_exit_code_one() {
    let server = format!("http://{}", bosun_tests::free_addr());
    let out = Bosun::new(&server).run(&["get", "jobs"]).await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with(&format!("cannot reach the broker at {server}")),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains("bosun up") && out.stderr.contains("BOSUN_SERVER"),
        "{out:#?}"
    );
}

#[tokio::test]
async fn a_missing_object_is_reported_like_kubectl() {
    let p = plane().await;
    for args in [
        &["get", "job", "nope"][..],
        &["describe", "job", "nope"],
        &["delete", "job", "nope"],
    ] {
        let out = p.run(args).await;
        assert_eq!(out.code, 1, "{args:?}: {out:#?}");
        assert_eq!(
            out.stderr, "Error from server (NotFound): jobs.batch \"nope\" not found\n",
            "{args:?}"
        );
    }
    let out = p.run(&["get", "pod", "nope", "-n", "team"]).await;
    assert_eq!(
        out.stderr,
        "Error from server (NotFound): pods \"nope\" not found\n"
    );
}
