//! The act half in-process: the CronJob controller's reconcile against the runtime's
//! recording fake and an empty Job cache, with the clock set by the test.

use super::*;
use bosun_runtime::cache::store;
use bosun_runtime::client::ClientError;
use bosun_runtime::writer::{RecordingWriter, Verb};

fn ctx(writer: Arc<RecordingWriter>, clock: Clock) -> Arc<Ctx> {
    let registry = Metrics::new();
    Arc::new(Ctx {
        recorder: EventRecorder::with_writer(writer.clone(), COMPONENT, "", 64),
        writer,
        jobs: store::<Object>().0,
        clock,
        metrics: CronMetrics::new(&registry),
        creations: burst::Creations::default(),
    })
}

fn t(s: &str) -> DateTime<Utc> {
    plan::parse_time(s).expect("a time")
}

/// A `*/1` CronJob created at 10:00 that last ran at 10:04, stored in the fake.
fn seeded(w: &RecordingWriter, policy: &str, active: Vec<v1::ObjectReference>) -> Arc<Object> {
    let cj = v1::CronJob {
        metadata: Some(v1::ObjectMeta {
            name: "hello".into(),
            namespace: "ns".into(),
            creation_timestamp: "2026-01-01T10:00:00Z".into(),
            ..Default::default()
        }),
        spec: Some(v1::CronJobSpec {
            schedule: "*/1 * * * *".into(),
            concurrency_policy: policy.into(),
            job_template: Some(v1::JobTemplateSpec::default()),
            ..Default::default()
        }),
        status: Some(v1::CronJobStatus {
            active,
            last_schedule_time: "2026-01-01T10:04:00Z".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    Arc::new(w.seed(cj.into()))
}

fn clock_at(s: &str) -> Clock {
    let c = Clock::default();
    c.jump_to(t(s));
    c
}

fn status(w: &RecordingWriter) -> v1::CronJobStatus {
    w.object(Kind::CronJob, "ns/hello")
        .and_then(|o| o.into_cron_job())
        .and_then(|c| c.status)
        .expect("a status")
}

fn job_calls(w: &RecordingWriter, verb: Verb) -> Vec<String> {
    w.calls_of(verb)
        .into_iter()
        .filter(|c| c.kind == Kind::Job)
        .map(|c| c.key)
        .collect()
}

#[tokio::test]
async fn a_due_slot_creates_its_job_records_it_as_active_and_requeues_for_the_next() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone(), clock_at("2026-01-01T10:05:00.100Z"));
    let obj = seeded(&w, plan::words::ALLOW, vec![]);
    let action = reconcile(obj, ctx.clone()).await.expect("reconciled");
    // 10:05 is minute 29_454_365 since the epoch.
    assert_eq!(job_calls(&w, Verb::Create), ["ns/hello-29454365"]);
    let st = status(&w);
    assert_eq!(st.last_schedule_time, "2026-01-01T10:05:00Z");
    assert_eq!(st.next_schedule_time, "2026-01-01T10:06:00Z");
    assert_eq!(
        st.active
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["hello-29454365"]
    );
    let Action::Requeue(after) = action else {
        panic!("{action:?}")
    };
    assert!(
        after > Duration::from_secs(59) && after <= Duration::from_secs(60),
        "{after:?}"
    );
    assert_eq!(ctx.metrics.skew.count(), 1);
    assert_eq!(ctx.metrics.jobs_created.get(), 1);
}

#[tokio::test]
async fn a_slot_further_than_the_prepare_window_wakes_the_cronjob_ahead_of_it() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone(), clock_at("2026-01-01T10:04:30Z"));
    let obj = seeded(&w, plan::words::ALLOW, vec![]);
    let action = reconcile(obj, ctx).await.expect("reconciled");
    assert!(job_calls(&w, Verb::Create).is_empty());
    let Action::Requeue(after) = action else {
        panic!("{action:?}")
    };
    // 30 s to 10:05, plus the 1 ms pad, minus the 250 ms of preparation.
    let want = Duration::from_secs(30) + plan::NEXT_SCHEDULE_DELTA - PREPARE_AHEAD;
    assert!(
        after <= want && after > want - Duration::from_millis(100),
        "{after:?}, want about {want:?}"
    );
}

#[tokio::test]
async fn a_slot_within_the_prepare_window_is_planned_ahead_and_created_at_its_time() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone(), clock_at("2026-01-01T10:04:59.850Z"));
    let obj = seeded(&w, plan::words::ALLOW, vec![]);
    let action = reconcile(obj, ctx.clone()).await.expect("reconciled");
    assert!(
        ctx.clock.now() >= t("2026-01-01T10:05:00Z"),
        "returned before the slot: {}",
        ctx.clock.now()
    );
    assert_eq!(job_calls(&w, Verb::Create), ["ns/hello-29454365"]);
    let st = status(&w);
    assert_eq!(st.last_schedule_time, "2026-01-01T10:05:00Z");
    assert_eq!(st.next_schedule_time, "2026-01-01T10:06:00Z");
    assert!(matches!(action, Action::Requeue(_)), "{action:?}");
    assert_eq!(ctx.metrics.skew.count(), 1);
}

#[tokio::test]
async fn the_status_waits_for_other_creations_in_flight() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone(), clock_at("2026-01-01T10:05:00.100Z"));
    let obj = seeded(&w, plan::words::ALLOW, vec![]);
    // Another CronJob's creation is in flight.
    let other = Arc::new(ctx.creations.start());
    let task = tokio::spawn(reconcile(obj, ctx.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while job_calls(&w, Verb::Create).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no Job created");
        tokio::task::yield_now().await;
    }
    assert!(
        w.calls_of(Verb::UpdateStatus).is_empty(),
        "the status went out before the other creation returned"
    );
    assert_eq!(ctx.creations.in_flight(), 1);
    drop(other);
    task.await.expect("joined").expect("reconciled");
    assert_eq!(w.calls_of(Verb::UpdateStatus).len(), 1);
}

#[tokio::test]
async fn a_job_that_exists_already_is_done_and_kept_active_not_an_error() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone(), clock_at("2026-01-01T10:05:01Z"));
    let obj = seeded(&w, plan::words::ALLOW, vec![]);
    let cj = obj.as_cron_job().unwrap().clone();
    let mut existing = plan::build_job(&cj, t("2026-01-01T10:05:00Z"));
    existing.metadata.as_mut().unwrap().owner_references[0].uid = obj.uid().to_string();
    let existing = w.seed(existing.into());
    reconcile(obj, ctx.clone()).await.expect("no error");
    let creates = w.calls_of(Verb::Create);
    assert_eq!(creates.len(), 1);
    assert!(!creates[0].ok, "the create met AlreadyExists");
    let st = status(&w);
    assert_eq!(st.last_schedule_time, "2026-01-01T10:05:00Z");
    assert_eq!(st.active.len(), 1);
    assert_eq!(st.active[0].uid, existing.uid());
}

#[tokio::test]
async fn replace_deletes_the_active_job_before_creating_and_a_failed_delete_creates_nothing() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone(), clock_at("2026-01-01T10:05:00.100Z"));
    let old = w.seed(
        v1::Job {
            metadata: Some(v1::ObjectMeta {
                name: "hello-29454364".into(),
                namespace: "ns".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into(),
    );
    let active = vec![plan::job_ref("ns", old.name(), old.uid())];
    let obj = seeded(&w, plan::words::REPLACE, active);
    w.fail_next(
        Verb::Delete,
        ClientError::Unavailable("etcd is away".into()),
    );
    let err = reconcile(obj.clone(), ctx.clone())
        .await
        .expect_err("the delete failed");
    assert!(matches!(err, Error::Replace { .. }), "{err}");
    assert!(job_calls(&w, Verb::Create).is_empty());

    reconcile(obj, ctx.clone()).await.expect("retried");
    let order: Vec<(Verb, String)> = w
        .calls()
        .into_iter()
        .filter(|c| c.kind == Kind::Job && c.ok && matches!(c.verb, Verb::Delete | Verb::Create))
        .map(|c| (c.verb, c.key))
        .collect();
    assert_eq!(
        order,
        [
            (Verb::Delete, "ns/hello-29454364".to_string()),
            (Verb::Create, "ns/hello-29454365".to_string()),
        ]
    );
    let st = status(&w);
    assert_eq!(
        st.active
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["hello-29454365"]
    );
}

#[tokio::test]
async fn a_failed_create_leaves_last_schedule_time_so_the_slot_is_tried_again() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone(), clock_at("2026-01-01T10:05:00.100Z"));
    let obj = seeded(&w, plan::words::ALLOW, vec![]);
    w.fail_next(
        Verb::Create,
        ClientError::Unavailable("etcd is away".into()),
    );
    reconcile(obj.clone(), ctx.clone())
        .await
        .expect_err("the create failed");
    assert_eq!(status(&w).last_schedule_time, "2026-01-01T10:04:00Z");
    let fresh = Arc::new(w.object(Kind::CronJob, "ns/hello").unwrap());
    reconcile(fresh, ctx.clone()).await.expect("retried");
    assert_eq!(status(&w).last_schedule_time, "2026-01-01T10:05:00Z");
    assert!(w.object(Kind::Job, "ns/hello-29454365").is_some());
}

#[tokio::test]
async fn a_clock_stepped_back_after_a_run_creates_nothing() {
    let w = RecordingWriter::new();
    let clock = clock_at("2026-01-01T10:05:00.100Z");
    let ctx = ctx(w.clone(), clock.clone());
    let obj = seeded(&w, plan::words::ALLOW, vec![]);
    reconcile(obj, ctx.clone()).await.expect("ran");
    clock.jump_to(t("2026-01-01T10:04:30Z"));
    let fresh = Arc::new(w.object(Kind::CronJob, "ns/hello").unwrap());
    reconcile(fresh, ctx.clone()).await.expect("ran");
    clock.jump_to(t("2026-01-01T10:05:00.200Z"));
    let fresh = Arc::new(w.object(Kind::CronJob, "ns/hello").unwrap());
    reconcile(fresh, ctx).await.expect("ran");
    assert_eq!(job_calls(&w, Verb::Create), ["ns/hello-29454365"]);
}
