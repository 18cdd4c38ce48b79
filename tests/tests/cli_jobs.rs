//! The real `bosun` binary on Jobs, against a real etcd and the real broker binary: `scale
//! job` (seed 003's `kubectl scale job`), `describe job` with bosun's dependency and retry
//! fields, and `get jobs` STATUS. No Job controller runs here: statuses are written directly,
//! as the controller would write them.

use bosun_tests::{manifests_dir, v1};

bosun_tests::file_plane! {
    /// The shared plane (etcd, the broker binary, `bosun` in `tests/manifests`), with this file's helpers.
}

async fn plane() -> Plane {
    Plane(
        bosun_tests::Plane::builder("cli-jobs")
            .broker_process()
            .cli_in(manifests_dir())
            .start()
            .await,
    )
}

impl Plane {
    async fn apply(&self, text: &str) {
        let out = self
            .bosun()
            .run_with_stdin(&["apply", "-f", "-"], Some(text))
            .await;
        assert_eq!(out.code, 0, "{out:#?}");
    }

    async fn parallelism(&self, ns: &str, name: &str) -> Option<i32> {
        self.client()
            .get(v1::Kind::Job, ns, name)
            .await
            .expect("job")
            .into_job()
            .and_then(|j| j.spec)
            .and_then(|s| s.parallelism)
    }

    /// Writes `conditions` (type, status, reason, message) into Job `name`'s status, as the
    /// controller would.
    async fn set_status(&self, name: &str, f: impl FnOnce(&mut v1::JobStatus)) {
        let mut obj = self
            .client()
            .get(v1::Kind::Job, "default", name)
            .await
            .expect("job");
        if let Some(v1::object::Object::Job(j)) = obj.object.as_mut() {
            f(j.status.get_or_insert_default());
        }
        self.client()
            .update_status(obj)
            .await
            .expect("update status");
    }
}

fn condition(t: &str, reason: &str, message: &str) -> v1::Condition {
    v1::Condition {
        r#type: t.into(),
        status: "True".into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: "2024-01-01T00:00:00Z".into(),
        last_probe_time: "2024-01-01T00:00:00Z".into(),
        ..Default::default()
    }
}

fn job_yaml(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{extra_spec}  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: [\"true\"]
"
    )
}

#[tokio::test]
async fn scale_job_sets_parallelism_like_kubectl_scale_job_in_seed_003() {
    let p = plane().await;
    p.ok(&["apply", "-f", "seeds/003-batch-job.yaml"]).await;
    assert_eq!(p.parallelism("default", "batch-job").await, Some(1));

    assert_eq!(
        p.ok(&["scale", "job", "batch-job", "--replicas", "3"])
            .await,
        "job.batch/batch-job scaled\n"
    );
    assert_eq!(p.parallelism("default", "batch-job").await, Some(3));
    let shown = p
        .ok(&[
            "get",
            "job",
            "batch-job",
            "-o",
            "jsonpath={.spec.parallelism}",
        ])
        .await;
    assert_eq!(shown.trim(), "3");

    // kubectl's other spellings: job/NAME, --replicas=N, and 0 to let no pod run.
    assert_eq!(
        p.ok(&["scale", "job/batch-job", "--replicas=0"]).await,
        "job.batch/batch-job scaled\n"
    );
    assert_eq!(p.parallelism("default", "batch-job").await, Some(0));
    // The same size again is fine and writes nothing.
    assert_eq!(
        p.ok(&["scale", "jobs", "batch-job", "--replicas", "0"])
            .await,
        "job.batch/batch-job scaled\n"
    );

    // A negative count is refused before anything is written.
    for args in [
        &["scale", "job", "batch-job", "--replicas", "-1"][..],
        &["scale", "job", "batch-job", "--replicas=-2"],
    ] {
        let out = p.run(args).await;
        assert_eq!((out.code, out.stdout.as_str()), (1, ""), "{out:#?}");
        assert!(
            out.stderr.starts_with("error: --replicas=-")
                && out.stderr.contains("must be 0 or more")
                && out.stderr.contains("nothing was changed"),
            "{out:#?}"
        );
    }
    assert_eq!(p.parallelism("default", "batch-job").await, Some(0));

    // --current-replicas is a precondition, as in kubectl.
    let out = p
        .run(&[
            "scale",
            "job",
            "batch-job",
            "--replicas",
            "2",
            "--current-replicas",
            "5",
        ])
        .await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .starts_with("error: Expected replicas to be 5, was 0"),
        "{out:#?}"
    );
    assert_eq!(p.parallelism("default", "batch-job").await, Some(0));
    p.ok(&[
        "scale",
        "job",
        "batch-job",
        "--replicas",
        "2",
        "--current-replicas",
        "0",
    ])
    .await;
    assert_eq!(p.parallelism("default", "batch-job").await, Some(2));

    // Another namespace, another kind, no name.
    let out = p
        .run(&["scale", "job", "batch-job", "-n", "team", "--replicas", "1"])
        .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Error from server (NotFound): jobs.batch \"batch-job\" not found\n"
        ),
        "{out:#?}"
    );
    let out = p.run(&["scale", "ds", "x", "--replicas", "1"]).await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains("cannot scale daemonsets: only jobs"),
        "{out:#?}"
    );
    let out = p.run(&["scale", "job", "--replicas", "1"]).await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("no name was specified"), "{out:#?}");
}

#[tokio::test]
async fn concurrent_scales_all_land_by_retrying_on_conflicts() {
    let p = plane().await;
    p.apply(&job_yaml("race", "")).await;
    // Each writer loses at most once to each other writer, fewer than the retries allowed,
    // so every one of them must succeed whatever the interleaving.
    let argv: Vec<[&str; 5]> = ["2", "3", "4", "5"]
        .into_iter()
        .map(|n| ["scale", "job", "race", "--replicas", n])
        .collect();
    let runs = argv.iter().map(|a| p.run(a));
    for out in futures::future::join_all(runs).await {
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, "job.batch/race scaled\n"),
            "{out:#?}"
        );
    }
    let last = p.parallelism("default", "race").await.expect("set");
    assert!((2..=5).contains(&last), "{last}");
}

#[tokio::test]
async fn describe_job_shows_dependencies_backoff_failures_conditions_and_events() {
    let p = plane().await;
    for name in ["prepare", "fetch", "paused", "broken"] {
        p.apply(&job_yaml(name, "")).await;
    }
    p.apply(&job_yaml(
        "main",
        "  dependsOn: [prepare, fetch, paused, broken, gone]\n  podBackoff:\n    initialSeconds: 10\n    factor: 2\n    maxSeconds: 600\n",
    ))
    .await;
    p.set_status("prepare", |s| {
        s.conditions = vec![
            condition("SuccessCriteriaMet", "CompletionsReached", ""),
            condition("Complete", "CompletionsReached", ""),
        ];
        s.succeeded = 1;
    })
    .await;
    p.set_status("paused", |s| {
        s.conditions = vec![condition("Suspended", "JobSuspended", "Job suspended")];
    })
    .await;
    p.set_status("broken", |s| {
        s.conditions = vec![
            condition("FailureTarget", "BackoffLimitExceeded", ""),
            condition(
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ),
        ];
        s.failed = 7;
    })
    .await;
    p.set_status("main", |s| {
        s.conditions = vec![condition(
            "Waiting",
            "WaitingForDependencies",
            "waiting for fetch (Running), paused (Suspended), broken (Failed), gone (not found)",
        )];
        s.consecutive_failures = 3;
        s.last_failure_time = "2024-01-01T00:00:00Z".into();
    })
    .await;
    let main = p
        .client()
        .get(v1::Kind::Job, "default", "main")
        .await
        .expect("main");
    p.client()
        .create(
            v1::Event {
                metadata: Some(v1::ObjectMeta {
                    name: "main.1".into(),
                    namespace: "default".into(),
                    ..Default::default()
                }),
                involved_object: Some(v1::ObjectReference {
                    api_version: "batch/v1".into(),
                    kind: "Job".into(),
                    namespace: "default".into(),
                    name: "main".into(),
                    uid: main.uid().to_string(),
                    ..Default::default()
                }),
                reason: "WaitingForDependencies".into(),
                message: "waiting for fetch, paused, broken, gone".into(),
                source: Some(v1::EventSource {
                    component: "job-controller".into(),
                    host: String::new(),
                }),
                first_timestamp: "2024-01-01T00:00:00Z".into(),
                last_timestamp: "2024-01-01T00:00:00Z".into(),
                count: 1,
                r#type: "Normal".into(),
                ..Default::default()
            }
            .into(),
        )
        .await
        .expect("event");

    let out = p.ok(&["describe", "job", "main"]).await;
    let field = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .map(|l| l[name.len() + 1..].trim().to_string())
            .unwrap_or_else(|| panic!("no {name}: line in\n{out}"))
    };
    assert_eq!(
        field("Depends On"),
        "prepare (Complete), fetch (Running), paused (Suspended), broken (Failed), gone (not found)"
    );
    assert_eq!(field("Pod Backoff"), "initial 10s, factor 2, max 600s");
    assert_eq!(field("Consecutive Failures"), "3");
    assert_eq!(
        field("Last Failure Time"),
        "Mon, 01 Jan 2024 00:00:00 +0000"
    );
    let lines: Vec<&str> = out.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in\n{out}"))
    };
    let conditions = at("Conditions:");
    let header: Vec<&str> = lines[conditions + 1].split_whitespace().collect();
    assert_eq!(
        header,
        ["Type", "Status", "LastTransitionTime", "Reason", "Message"],
        "{out}"
    );
    assert!(
        lines[conditions + 3].trim_start().starts_with("Waiting ")
            && lines[conditions + 3].contains(" True ")
            && lines[conditions + 3].contains(" WaitingForDependencies ")
            && lines[conditions + 3].ends_with("broken (Failed), gone (not found)"),
        "{out}"
    );
    let events = at("Events:");
    assert!(conditions < events, "{out}");
    let header: Vec<&str> = lines[events + 1].split_whitespace().collect();
    assert_eq!(
        header,
        ["Type", "Reason", "Age", "From", "Message"],
        "{out}"
    );
    let row: Vec<&str> = lines[events + 3].split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[3]),
        ("Normal", "WaitingForDependencies", "job-controller"),
        "{out}"
    );
    assert!(
        lines[events + 3].ends_with("waiting for fetch, paused, broken, gone"),
        "{out}"
    );

    // A Job without bosun's fields keeps kubectl's layout.
    let plain = p.ok(&["describe", "job", "fetch"]).await;
    for absent in [
        "Depends On:",
        "Pod Backoff:",
        "Consecutive Failures:",
        "Conditions:",
    ] {
        assert!(!plain.contains(absent), "{absent} in\n{plain}");
    }
    assert!(plain.contains("Events:  <none>"), "{plain}");
}

#[tokio::test]
async fn get_jobs_shows_kubectls_status_for_each_kind_of_job() {
    let p = plane().await;
    for name in ["done", "failed", "paused", "running", "leaving"] {
        p.apply(&job_yaml(name, "")).await;
    }
    p.set_status("done", |s| {
        s.conditions = vec![condition("Complete", "CompletionsReached", "")];
    })
    .await;
    p.set_status("failed", |s| {
        s.conditions = vec![condition("Failed", "BackoffLimitExceeded", "")];
    })
    .await;
    p.set_status("paused", |s| {
        s.conditions = vec![condition("Suspended", "JobSuspended", "")];
    })
    .await;
    // A finalizer keeps the deleted Job around, Terminating.
    let mut leaving = p
        .client()
        .get(v1::Kind::Job, "default", "leaving")
        .await
        .expect("job");
    leaving.meta_mut().finalizers = vec!["example.com/keep".into()];
    p.client().update(leaving).await.expect("add finalizer");
    p.ok(&["delete", "job", "leaving", "--wait=false"]).await;

    let table = p.ok(&["get", "jobs"]).await;
    let status: Vec<(String, String)> = table
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells[0].to_string(), cells[1].to_string())
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("done", "Complete"),
        ("failed", "Failed"),
        ("leaving", "Terminating"),
        ("paused", "Suspended"),
        ("running", "Running"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(status, want, "{table}");
    assert!(table.starts_with("NAME "), "{table}");
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        "{table}"
    );
}
