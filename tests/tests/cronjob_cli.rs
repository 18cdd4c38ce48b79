//! CronJobs from the command line and the broker's trigger verb, end to end: the real
//! `bosun` binary and the real broker binary over a real etcd. No CronJob controller runs
//! here: the test writes the status a controller would (active, lastScheduleTime,
//! nextScheduleTime) and checks what `get` and `describe` show of it; manual runs
//! (`create job --from`, `TriggerCronJob`) need no controller at all.

use bosun_api::Kind;
use bosun_api::cronjob::{
    IDEMPOTENCY_KEY_ANNOTATION, INSTANTIATE_ANNOTATION, INSTANTIATE_MANUAL, manual_job_name,
};
use bosun_api::v1;
use bosun_runtime::client::Selector;
use bosun_tests::Plane;

/// etcd, the broker binary, a `bosun` for it and a typed client.
async fn plane() -> Plane {
    Plane::builder("cronjob-cli").broker_process().start().await
}

/// A CronJob `name` running busybox every minute, its template labelled `app=<name>` and
/// annotated `team=batch`, with `extra` spec lines.
fn cronjob_yaml(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
spec:
  schedule: \"*/1 * * * *\"
{extra}  jobTemplate:
    metadata:
      labels: {{app: {name}}}
      annotations: {{team: batch}}
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: hello
            image: busybox
            command: [echo, hi]
"
    )
}

async fn apply(p: &Plane, text: &str) -> bosun_tests::Output {
    p.bosun()
        .run_with_stdin(&["apply", "-f", "-"], Some(text))
        .await
}

async fn cronjob(p: &Plane, name: &str) -> v1::CronJob {
    match p
        .client()
        .get(Kind::CronJob, "default", name)
        .await
        .expect("get cronjob")
        .object
    {
        Some(v1::object::Object::CronJob(c)) => *c,
        other => panic!("not a cronjob: {other:?}"),
    }
}

async fn jobs(p: &Plane) -> Vec<v1::Job> {
    p.client()
        .list(Kind::Job, &Selector::namespace("default"))
        .await
        .expect("list jobs")
        .items
        .into_iter()
        .filter_map(|o| match o.object {
            Some(v1::object::Object::Job(j)) => Some(*j),
            _ => None,
        })
        .collect()
}

/// A change that makes a CronJob spec invalid.
type Breaks = fn(&mut v1::CronJobSpec);

/// A table line's cells: kubectl's columns are apart by at least two spaces.
fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn meta(job: &v1::Job) -> &v1::ObjectMeta {
    job.metadata.as_ref().expect("metadata")
}

/// Checks `job` is a manual run of `cj` as kubectl makes one.
fn assert_manual_run_of(job: &v1::Job, cj: &v1::CronJob) {
    let m = meta(job);
    assert_eq!(
        m.annotations
            .get(INSTANTIATE_ANNOTATION)
            .map(String::as_str),
        Some(INSTANTIATE_MANUAL),
        "{m:#?}"
    );
    assert_eq!(m.annotations.get("team").map(String::as_str), Some("batch"));
    assert_eq!(m.labels.get("app").map(String::as_str), Some("hello"));
    let cj_meta = cj.metadata.as_ref().unwrap();
    let owner = &m.owner_references[..];
    assert_eq!(owner.len(), 1, "{owner:#?}");
    assert_eq!(owner[0].kind, "CronJob");
    assert_eq!(owner[0].name, cj_meta.name);
    assert_eq!(owner[0].uid, cj_meta.uid);
    assert_eq!(owner[0].controller, Some(true));
    assert_eq!(
        owner[0].block_owner_deletion, None,
        "kubectl leaves it unset"
    );
    let containers = &job
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .unwrap()
        .containers;
    assert_eq!(containers[0].command, vec!["echo", "hi"]);
}

#[tokio::test]
async fn get_and_describe_show_kubectls_columns_and_the_next_schedule() {
    let p = plane().await;
    let out = apply(
        &p,
        &cronjob_yaml(
            "hello",
            "  timeZone: Europe/London\n  catchUp: {policy: All}\n",
        ),
    )
    .await;
    assert_eq!(out.code, 0, "{out:#?}");

    // What a controller would write: one active run, the last and the next slot.
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut cj = cronjob(&p, "hello").await;
    cj.status = Some(v1::CronJobStatus {
        active: vec![v1::ObjectReference {
            kind: "Job".into(),
            namespace: "default".into(),
            name: "hello-29000000".into(),
            ..Default::default()
        }],
        last_schedule_time: fmt(now - chrono::Duration::seconds(30)),
        next_schedule_time: fmt(now + chrono::Duration::minutes(90)),
        last_successful_time: String::new(),
    });
    p.client()
        .update_status(cj.into())
        .await
        .expect("write status");

    let table = p.ok(&["get", "cronjobs"]).await;
    let rows: Vec<Vec<String>> = table.lines().map(cells).collect();
    assert_eq!(
        rows[0],
        [
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE"
        ],
        "{table}"
    );
    assert_eq!(
        rows[1][..5],
        ["hello", "*/1 * * * *", "Europe/London", "False", "1"],
        "{table}"
    );
    assert!(
        ["30s", "31s", "32s"].contains(&rows[1][5].as_str()),
        "{table}"
    );

    let wide = p.ok(&["get", "cronjob", "hello", "-o", "wide"]).await;
    let rows: Vec<Vec<String>> = wide.lines().map(cells).collect();
    assert_eq!(
        rows[0][7..],
        ["CONTAINERS", "IMAGES", "SELECTOR", "NEXT SCHEDULE"],
        "{wide}"
    );
    assert_eq!(rows[1][7..10], ["hello", "busybox", "<none>"], "{wide}");
    // 90 minutes ahead, read a moment later.
    assert!(
        ["in 89m", "in 90m"].contains(&rows[1][10].as_str()),
        "{wide}"
    );

    let text = p.ok(&["describe", "cronjob", "hello"]).await;
    for want in [
        "Name:                          hello\n",
        "Schedule:                      */1 * * * *\n",
        "Time Zone:                     Europe/London\n",
        "Concurrency Policy:            Allow\n",
        "Suspend:                       False\n",
        "Successful Job History Limit:  3\n",
        "Failed Job History Limit:      1\n",
        "Starting Deadline Seconds:     <unset>\n",
        "Catch Up:                      All (at most 100 runs)\n",
        "Selector:                      <unset>\n",
        "Parallelism:                   1\n",
        "Completions:                   1\n",
        "Pod Template:\n",
        "Active Jobs:                   hello-29000000\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(text.contains("Last Schedule Time:            "), "{text}");
    assert!(text.contains("Next Schedule Time:            "), "{text}");
    assert!(
        text.contains("(in 89m)\n") || text.contains("(in 90m)\n"),
        "{text}"
    );
}

#[tokio::test]
async fn create_job_from_a_cronjob_makes_kubectls_manual_run() {
    let p = plane().await;
    assert_eq!(apply(&p, &cronjob_yaml("hello", "")).await.code, 0);
    let cj = cronjob(&p, "hello").await;

    // A client dry run prints the Job and writes nothing.
    let yaml = p
        .ok(&[
            "create",
            "job",
            "by-hand",
            "--from=cronjob/hello",
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .await;
    assert!(yaml.contains("name: by-hand"), "{yaml}");
    assert!(
        yaml.contains("cronjob.kubernetes.io/instantiate: manual"),
        "{yaml}"
    );
    let out = p
        .ok(&[
            "create",
            "job",
            "by-hand",
            "--from=cronjob/hello",
            "--dry-run=server",
        ])
        .await;
    assert_eq!(out, "job.batch/by-hand created (server dry run)\n");
    assert!(jobs(&p).await.is_empty(), "a dry run wrote a Job");

    let out = p
        .ok(&["create", "job", "by-hand", "--from=cronjob/hello"])
        .await;
    assert_eq!(out, "job.batch/by-hand created\n");
    let made = jobs(&p).await;
    assert_eq!(made.len(), 1);
    assert_eq!(meta(&made[0]).name, "by-hand");
    assert_manual_run_of(&made[0], &cj);

    // As kubectl: the same name again is an error, and a missing CronJob is named.
    let again = p
        .run(&["create", "job", "by-hand", "--from=cronjob/hello"])
        .await;
    assert_eq!(again.code, 1, "{again:#?}");
    assert!(again.stderr.contains("already exists"), "{again:#?}");
    let missing = p.run(&["create", "job", "x", "--from=cronjob/nope"]).await;
    assert_eq!(missing.code, 1, "{missing:#?}");
    assert!(
        missing.stderr.contains("\"nope\" not found"),
        "{missing:#?}"
    );
    let wrong = p.run(&["create", "job", "x", "--from=job/by-hand"]).await;
    assert_eq!(wrong.code, 1, "{wrong:#?}");
    assert!(
        wrong.stderr.contains("only cronjob is supported"),
        "{wrong:#?}"
    );
    assert_eq!(jobs(&p).await.len(), 1, "a failed create wrote a Job");
}

#[tokio::test]
async fn a_trigger_retried_with_one_key_starts_one_run() {
    let p = plane().await;
    assert_eq!(apply(&p, &cronjob_yaml("hello", "")).await.code, 0);
    let cj = cronjob(&p, "hello").await;
    let name = manual_job_name("hello", "order-1234");

    // Eight callers racing with one key, then a retry: one Job, everyone told its name.
    let mut calls = Vec::new();
    for _ in 0..8 {
        let client = p.client().clone();
        calls.push(tokio::spawn(async move {
            client
                .trigger_cron_job("default", "hello", "order-1234", false)
                .await
        }));
    }
    let mut created = 0;
    for call in calls {
        let t = call.await.unwrap().expect("trigger");
        assert_eq!(meta(&t.job).name, name);
        created += usize::from(t.created);
    }
    assert_eq!(created, 1, "exactly one trigger made the Job");
    let retry = p
        .client()
        .trigger_cron_job("default", "hello", "order-1234", false)
        .await
        .expect("retry");
    assert!(!retry.created);
    let made = jobs(&p).await;
    assert_eq!(made.len(), 1, "{made:#?}");
    assert_manual_run_of(&made[0], &cj);
    assert_eq!(
        meta(&made[0])
            .annotations
            .get(IDEMPOTENCY_KEY_ANNOTATION)
            .map(String::as_str),
        Some("order-1234")
    );

    // The CLI's --idempotency-key goes through the same verb.
    let first = p
        .ok(&[
            "create",
            "job",
            "--from=cronjob/hello",
            "--idempotency-key",
            "cli-1",
        ])
        .await;
    let cli_name = manual_job_name("hello", "cli-1");
    assert_eq!(first, format!("job.batch/{cli_name} created\n"));
    let second = p
        .ok(&[
            "create",
            "job",
            "--from=cronjob/hello",
            "--idempotency-key",
            "cli-1",
        ])
        .await;
    assert_eq!(
        second,
        format!("job.batch/{cli_name} unchanged (already triggered with this idempotency key)\n")
    );
    assert_eq!(jobs(&p).await.len(), 2);

    // A dry run of a new key writes nothing; no key is refused.
    let dry = p
        .client()
        .trigger_cron_job("default", "hello", "order-9", true)
        .await
        .expect("dry run");
    assert!(dry.created);
    assert_eq!(jobs(&p).await.len(), 2, "a dry run wrote a Job");
    let err = p
        .client()
        .trigger_cron_job("default", "hello", "", false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("idempotency key is required"),
        "{err}"
    );
    let err = p
        .client()
        .trigger_cron_job("default", "nope", "k", false)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // A Job that is not this CronJob's under the key's name is reported, never taken over.
    let squatter = manual_job_name("hello", "taken");
    let mut other = bosun_tests::job("default", &squatter);
    other.meta_mut().labels.insert("app".into(), "other".into());
    p.client().create(other).await.expect("create squatter");
    let err = p
        .client()
        .trigger_cron_job("default", "hello", "taken", false)
        .await
        .unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    assert!(err.to_string().contains("not the run of cronjob"), "{err}");
}

#[tokio::test]
async fn bad_schedules_zones_and_catch_up_are_refused_at_apply_and_nothing_is_written() {
    let p = plane().await;
    let rows = [
        (
            "five fields wanted",
            cronjob_yaml("bad", "").replace("*/1 * * * *", "*/1 * * *"),
            "spec.schedule: Invalid value: \"*/1 * * *\": expected exactly 5 fields, found 4",
        ),
        (
            "TZ in the schedule",
            cronjob_yaml("bad", "").replace("*/1 * * * *", "TZ=UTC */1 * * * *"),
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ),
        (
            "unknown zone",
            cronjob_yaml("bad", "  timeZone: Mars/Olympus\n"),
            "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus",
        ),
        (
            "unknown catch-up policy",
            cronjob_yaml("bad", "  catchUp: {policy: Everything}\n"),
            "spec.catchUp.policy: Unsupported value: \"Everything\": supported values: \"Latest\", \"None\", \"All\"",
        ),
        (
            "maxRuns without All",
            cronjob_yaml("bad", "  catchUp: {policy: Latest, maxRuns: 3}\n"),
            "spec.catchUp.maxRuns: Forbidden: may only be set when spec.catchUp.policy is All",
        ),
    ];
    for (name, text, want) in &rows {
        let out = apply(&p, text).await;
        assert_eq!(out.code, 1, "{name}: {out:#?}");
        assert!(out.stderr.contains(want), "{name}: want {want:?}\n{out:#?}");
    }
    // The broker refuses the same objects when a client skips the CLI's checks.
    let broken: [(&str, Breaks, &str); 3] = [
        (
            "bad schedule",
            |s| s.schedule = "*/1 * * *".into(),
            "expected exactly 5 fields, found 4",
        ),
        (
            "unknown zone",
            |s| s.time_zone = Some("Mars/Olympus".into()),
            "unknown time zone Mars/Olympus",
        ),
        (
            "maxRuns zero",
            |s| {
                s.catch_up = Some(v1::CatchUp {
                    policy: "All".into(),
                    max_runs: Some(0),
                })
            },
            "spec.catchUp.maxRuns: Invalid value: 0: must be greater than or equal to 1",
        ),
    ];
    for (name, breaks, want) in broken {
        let mut obj = bosun_api::codec::decode_manifests("t", &cronjob_yaml("bad", ""))
            .expect("a valid manifest")
            .remove(0)
            .object;
        if let Some(v1::object::Object::CronJob(c)) = obj.object.as_mut() {
            breaks(c.spec.as_mut().unwrap());
        }
        let err = p.client().create(obj).await.unwrap_err();
        assert!(err.to_string().contains(want), "{name}: {err}");
    }
    // An update is checked the same way: a patch to a bad policy changes nothing.
    assert_eq!(apply(&p, &cronjob_yaml("good", "")).await.code, 0);
    let before = cronjob(&p, "good").await;
    let out = p
        .run(&[
            "patch",
            "cronjob",
            "good",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"catchUp":{"policy":"Sometimes"}}}"#,
        ])
        .await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .contains("spec.catchUp.policy: Unsupported value: \"Sometimes\""),
        "{out:#?}"
    );
    assert_eq!(cronjob(&p, "good").await, before, "a refused patch wrote");
    p.client()
        .delete(Kind::CronJob, "default", "good", Default::default())
        .await
        .expect("delete good");

    let out = p.run(&["get", "cronjob", "bad"]).await;
    assert_eq!(out.code, 1, "something was written: {out:#?}");
    assert!(
        p.client()
            .list(Kind::CronJob, &Selector::all())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
