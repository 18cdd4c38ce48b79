//! The CronJob controller end to end: real etcd, the real broker, the scheduler, the gc, the
//! Job controller, the CronJob controller and a process-runtime node, all in-process.
//!
//! Schedules fire once a minute at most; rather than waiting for real minutes, each test
//! holds the controller's [`Clock`] (its test hook) and moves it to just before the slot it
//! wants (`fire`): the controller requeues every CronJob on a move, then its own timer fires
//! the slot. Everything else (Jobs, pods, their logs) runs at real speed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bosun_api::v1::{self, Kind, Object};
use bosun_cronjob_controller::Clock;
use bosun_runtime::client::Selector;
use bosun_tests::{free_addr, job_condition_true, metric, wait_for};
use chrono::{DateTime, Timelike, Utc};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

bosun_tests::file_plane! {
    /// etcd, a broker, the scheduler, the gc, the Job controller and one process-runtime
    /// node; the CronJob controller runs beside it ([`Plane::start_cronjobs`]) on `clock`.
}

impl Plane {
    async fn start(label: &str) -> Plane {
        let plane = bosun_tests::Plane::builder(&format!("cronjob-{label}"))
            .controllers()
            .nodes(&["node-1"])
            .start()
            .await;
        Plane(plane)
    }

    /// Starts a CronJob controller on `clock`, serving metrics on a port of its own.
    fn start_cronjobs(&self, clock: &Clock) -> Running {
        let stop = self.shutdown_token().child_token();
        let mut config = bosun_cronjob_controller::Config::for_server(self.url());
        config.clock = clock.clone();
        let metrics = free_addr();
        config.metrics.metrics_listen = Some(metrics);
        let task = tokio::spawn(bosun_cronjob_controller::run(config, stop.clone()));
        Running {
            stop,
            task,
            metrics,
        }
    }

    /// Creates a `*/1` CronJob `name` whose pods run `command`, with `spec_extra` (indented
    /// YAML lines) added to its spec.
    async fn cronjob(&self, name: &str, command: &str, spec_extra: &str) {
        self.apply(&format!(
            r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
spec:
  schedule: "*/1 * * * *"
{spec_extra}
  jobTemplate:
    metadata:
      labels:
        from: {name}
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox
            command: ["sh", "-c", "{command}"]
"#
        ))
        .await;
    }

    /// Changes CronJob `name` with `change` (re-read and retried when the controller wrote
    /// first); the resourceVersion written.
    async fn update_cronjob(&self, name: &str, change: impl Fn(&mut v1::CronJob)) -> i64 {
        loop {
            let mut cj = self
                .client()
                .get(Kind::CronJob, "default", name)
                .await
                .expect("get cronjob")
                .into_cron_job()
                .expect("a cronjob");
            change(&mut cj);
            match self.client().update(cj.into()).await {
                Ok(written) => return written.resource_version(),
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("update cronjob {name}: {e}"),
            }
        }
    }

    /// Changes the CronJob's schedule.
    async fn set_schedule(&self, name: &str, schedule: &str) {
        self.update_cronjob(name, |cj| {
            cj.spec.as_mut().expect("spec").schedule = schedule.into();
        })
        .await;
    }

    /// Returns once `controller` has run a reconcile of CronJob `name` that began after this
    /// call did, so on its clock as the test has moved it: the proof to take before checking
    /// that nothing happened (a check without it could run before the controller looked).
    ///
    /// The controller writes nothing when nothing is due, so the proof is its queue: this
    /// touches the CronJob (an annotation it does not read), waits until its CronJob cache
    /// holds the touch (the informer queues the key before it reports the revision), then
    /// until every key queued so far has been reconciled (`bosun_reconcile_total`, read
    /// before `bosun_queue_adds_total`, equals it: each counted add is one reconcile, as long
    /// as no CronJob is deleted, whose key would be dropped uncounted).
    async fn reconciled_since_now(&self, controller: &Running, name: &str) {
        static TOUCHES: AtomicU64 = AtomicU64::new(0);
        let touch = TOUCHES.fetch_add(1, Ordering::Relaxed).to_string();
        let revision = self
            .update_cronjob(name, |cj| {
                let meta = cj.metadata.get_or_insert_default();
                meta.annotations
                    .insert("test.bosun.dev/touch".into(), touch.clone());
            })
            .await;
        let what = format!("a reconcile of {name} after its touch (revision {revision})");
        wait_for(&what, WAIT, || async {
            let cached = controller.value(r#"bosun_informer_revision{kind="CronJob"}"#);
            let cached = cached.await?;
            if cached < revision as f64 {
                return Err(format!("the cache is at revision {cached}"));
            }
            let ok = controller.value(r#"bosun_reconcile_total{controller="cronjob",result="ok"}"#);
            let ok = ok.await?;
            let error =
                controller.value(r#"bosun_reconcile_total{controller="cronjob",result="error"}"#);
            let error = error.await?;
            let added = controller.value(r#"bosun_queue_adds_total{queue="cronjob"}"#);
            let added = added.await?;
            if ok + error == added {
                Ok(())
            } else {
                Err(format!("{} reconciles of {added} keys queued", ok + error))
            }
        })
        .await;
    }

    async fn cronjob_status(&self, name: &str) -> v1::CronJobStatus {
        self.client()
            .get(Kind::CronJob, "default", name)
            .await
            .expect("get cronjob")
            .into_cron_job()
            .and_then(|c| c.status)
            .unwrap_or_default()
    }

    /// The Jobs of CronJob `name` (by the template's label), by name.
    async fn jobs_of(&self, name: &str) -> Vec<v1::Job> {
        let mut jobs: Vec<v1::Job> = self
            .client()
            .list(
                Kind::Job,
                &Selector::namespace("default").labels(format!("from={name}")),
            )
            .await
            .expect("list jobs")
            .items
            .into_iter()
            .filter_map(Object::into_job)
            .filter(|j| {
                j.metadata
                    .as_ref()
                    .is_some_and(|m| m.deletion_timestamp.is_empty())
            })
            .collect();
        jobs.sort_by_key(|j| j.metadata.as_ref().map(|m| m.name.clone()));
        jobs
    }

    /// Waits until the CronJob's Jobs are exactly `want` (names).
    async fn wait_jobs(&self, name: &str, want: &[String]) {
        wait_for(&format!("the jobs of {name} = {want:?}"), WAIT, || async {
            let names: Vec<String> = self.jobs_of(name).await.iter().map(job_name).collect();
            if names == want {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            }
        })
        .await;
    }

    /// The reasons of the events about CronJob `name`.
    async fn event_reasons(&self, name: &str) -> Vec<String> {
        self.client()
            .list(Kind::Event, &Selector::namespace("default"))
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter_map(Object::into_event)
            .filter(|e| {
                e.involved_object
                    .as_ref()
                    .is_some_and(|o| o.kind == "CronJob" && o.name == name)
            })
            .map(|e| e.reason)
            .collect()
    }

    async fn wait_event(&self, name: &str, reason: &str) {
        wait_for(&format!("event {reason} on {name}"), WAIT, || async {
            let reasons = self.event_reasons(name).await;
            if reasons.iter().any(|r| r == reason) {
                Ok(())
            } else {
                Err(format!("{reasons:?}"))
            }
        })
        .await;
    }

    /// Waits until Job `job` exists and has condition `ty` True.
    async fn wait_condition(&self, job: &str, ty: &str) {
        wait_for(&format!("job {job} {ty}"), WAIT, || async {
            match self.client().get(Kind::Job, "default", job).await {
                Ok(o) if o.as_job().is_some_and(|j| job_condition_true(j, ty)) => Ok(()),
                Ok(o) => Err(format!("{:#?}", o.as_job().and_then(|j| j.status.clone()))),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
    }

    async fn wait_complete(&self, job: &str) -> v1::Job {
        self.wait_condition(job, "Complete").await;
        self.job(job).await
    }
}

/// A CronJob controller a test started.
struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<bosun_cronjob_controller::Result<()>>,
    metrics: std::net::SocketAddr,
}

impl Running {
    /// Stops the controller and waits until it has: its workers have finished and it will
    /// reconcile nothing more.
    async fn stop(self) {
        self.stop.cancel();
        let ended = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the controller stops");
        ended
            .expect("the controller's task")
            .expect("the controller ran");
    }

    /// The value of the series `series` it serves (`Err` while it has none: not listening).
    async fn value(&self, series: &str) -> Result<f64, String> {
        metric(self.metrics, series)
            .await
            .ok_or_else(|| format!("no {series} at {}", self.metrics))
    }
}

fn job_name(j: &v1::Job) -> String {
    j.metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default()
}

/// The name of CronJob `cj`'s Job for the slot at `slot`.
fn named(cj: &str, slot: DateTime<Utc>) -> String {
    format!("{cj}-{}", slot.timestamp() / 60)
}

/// The first whole minute at least 5 s after the controller's now.
///
/// Called just after making the test's CronJobs, on a [`test_clock`], it is the first slot
/// of each of them: they were made (the real clock) in the minute before it, `base`, and
/// the controller's clock is in that minute too. Panics when the real clock has reached the
/// slot: a CronJob made then would not run it (no slot at or before its creation runs).
fn next_slot(clock: &Clock) -> DateTime<Utc> {
    let slot = minute_of(clock.now() + chrono::Duration::seconds(5)) + minutes(1);
    let now = Utc::now();
    assert!(
        now < slot,
        "the real clock ({now}) has reached the first slot ({slot}) of the CronJobs made"
    );
    slot
}

/// `t` to the minute (down).
fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("a minute")
}

/// A clock for a test ([`to_test_time`]).
async fn test_clock() -> Clock {
    let clock = Clock::default();
    to_test_time(&clock).await;
    clock
}

/// Moves `clock` to 5 s past the minute `base` the real clock is in 10 s from now, after
/// waiting, when that is the next minute, for the real clock to reach it.
///
/// The broker stamps a CronJob's creationTimestamp from the real clock, and no slot at or
/// before it ever runs (Kubernetes), so the test's CronJobs must be made in the real minute
/// `base` for `base + 1 min` ([`next_slot`]) to be their first slot: made after it, they
/// would skip it; made before `base` (the test started in the last seconds of a minute),
/// `base` itself would be a slot of theirs, already passed on the moved clock. The margin
/// leaves the test at least 10 s to make them. On the controller's clock `base + 1 min` is
/// then 55 s away, so no slot passes on its own before the test's first move.
async fn to_test_time(clock: &Clock) {
    let base = minute_of(Utc::now() + chrono::Duration::seconds(10));
    let what = format!("the real clock to reach {base}");
    wait_for(&what, WAIT, || async { Utc::now() >= base }).await;
    clock.jump_to(base + chrono::Duration::seconds(5));
}

/// Moves `clock` to 300 ms before `slot`: the controller's timer fires it.
fn fire(clock: &Clock, slot: DateTime<Utc>) {
    clock.jump_to(slot - chrono::Duration::milliseconds(300));
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

#[tokio::test]
async fn a_minutely_cronjob_fires_at_its_slot_and_its_pod_output_is_in_the_logs() {
    let plane = Plane::start("fires").await;
    let clock = test_clock().await;
    let controller = plane.start_cronjobs(&clock);
    plane
        .cronjob("hello", "echo hello from the cronjob", "")
        .await;
    // Nothing before the first slot (10 s before it: time for the proof that the controller
    // has looked, before its clock reaches the slot).
    let slot = next_slot(&clock);
    fire(&clock, slot - chrono::Duration::seconds(10));
    plane.reconciled_since_now(&controller, "hello").await;
    let early = plane.jobs_of("hello").await;
    assert!(
        early.is_empty(),
        "slot {slot}, now {}, cronjob {:#?}, jobs {:#?}",
        clock.now(),
        plane
            .client()
            .get(Kind::CronJob, "default", "hello")
            .await
            .expect("get"),
        early.iter().map(|j| j.metadata.clone()).collect::<Vec<_>>()
    );

    fire(&clock, slot);
    let name = named("hello", slot);
    plane.wait_jobs("hello", std::slice::from_ref(&name)).await;
    let job = plane.wait_complete(&name).await;
    let meta = job.metadata.clone().expect("meta");
    assert_eq!(
        meta.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let owner = &meta.owner_references[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("CronJob", "hello")
    );
    assert_eq!(owner.controller, Some(true));
    let pod = plane.job_pods(&name).await.pop().expect("a pod");
    let pod_name = pod.metadata.expect("meta").name;
    let logs = plane.logs(&pod_name).await.expect("logs");
    assert_eq!(logs, "hello from the cronjob\n");
    wait_for(
        "status: lastScheduleTime, lastSuccessfulTime, next, no active",
        WAIT,
        || async {
            let s = plane.cronjob_status("hello").await;
            let want_last = slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let want_next = (slot + minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            if s.last_schedule_time == want_last
                && s.next_schedule_time == want_next
                && !s.last_successful_time.is_empty()
                && s.active.is_empty()
            {
                Ok(())
            } else {
                Err(format!("{s:#?}"))
            }
        },
    )
    .await;
    plane.wait_event("hello", "SuccessfulCreate").await;
    plane.wait_event("hello", "SawCompletedJob").await;
    // The creation skew was observed: one Job, under a second late (its timer fired it).
    let skew = "bosun_cronjob_job_creation_skew_seconds";
    let count = metric(controller.metrics, &format!("{skew}_count")).await;
    assert_eq!(count, Some(1.0));
    let under_a_second = metric(controller.metrics, &format!("{skew}_bucket{{le=\"1\"}}")).await;
    assert_eq!(under_a_second, Some(1.0));

    // The next slot fires too.
    fire(&clock, slot + minutes(1));
    plane
        .wait_jobs("hello", &[name, named("hello", slot + minutes(1))])
        .await;
}

#[tokio::test]
async fn forbid_skips_while_a_run_is_active_and_starts_the_latest_missed_slot_when_it_ends() {
    let plane = Plane::start("forbid").await;
    let clock = test_clock().await;
    let _controller = plane.start_cronjobs(&clock);
    let wait = plane.wait_for_file("go");
    plane
        .cronjob("lock", &wait, "  concurrencyPolicy: Forbid")
        .await;
    let slot = next_slot(&clock);
    fire(&clock, slot);
    let first = named("lock", slot);
    plane.wait_jobs("lock", std::slice::from_ref(&first)).await;
    // Two more slots pass while the first run is still going: skipped.
    fire(&clock, slot + minutes(1));
    plane.wait_event("lock", "JobAlreadyActive").await;
    fire(&clock, slot + minutes(2));
    // The controller has looked at slot + 2 (the next slot it writes is the one after), and
    // still only the first run is there.
    let after = (slot + minutes(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    wait_for("the slot after slot + 2 next", WAIT, || async {
        let next = plane.cronjob_status("lock").await.next_schedule_time;
        if next == after { Ok(()) } else { Err(next) }
    })
    .await;
    let names: Vec<String> = plane.jobs_of("lock").await.iter().map(job_name).collect();
    assert_eq!(names, std::slice::from_ref(&first));
    // The run ends: the latest missed slot starts at once.
    plane.touch("go");
    plane.wait_complete(&first).await;
    plane
        .wait_jobs("lock", &[first, named("lock", slot + minutes(2))])
        .await;
}

#[tokio::test]
async fn replace_deletes_the_running_job_before_starting_the_next() {
    let plane = Plane::start("replace").await;
    let clock = test_clock().await;
    let _controller = plane.start_cronjobs(&clock);
    plane
        .cronjob("swap", "sleep 60", "  concurrencyPolicy: Replace")
        .await;
    let slot = next_slot(&clock);
    fire(&clock, slot);
    let first = named("swap", slot);
    plane.wait_jobs("swap", std::slice::from_ref(&first)).await;
    fire(&clock, slot + minutes(1));
    let second = named("swap", slot + minutes(1));
    plane.wait_jobs("swap", std::slice::from_ref(&second)).await;
    plane.wait_event("swap", "SuccessfulDelete").await;
    let s = plane.cronjob_status("swap").await;
    let active: Vec<&str> = s.active.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(active, [second.as_str()]);
}

#[tokio::test]
async fn history_limits_keep_the_newest_successful_and_failed_jobs() {
    let plane = Plane::start("history").await;
    let clock = test_clock().await;
    let _controller = plane.start_cronjobs(&clock);
    plane
        .cronjob("tidy", "true", "  successfulJobsHistoryLimit: 1")
        .await;
    // failedJobsHistoryLimit is left at its default: 1.
    plane.cronjob("broken", "exit 3", "").await;
    let slot = next_slot(&clock);
    let mut tidy = Vec::new();
    let mut broken = Vec::new();
    for i in 0..3 {
        let t = slot + minutes(i);
        fire(&clock, t);
        tidy.push(named("tidy", t));
        broken.push(named("broken", t));
        plane.wait_complete(&tidy[i as usize]).await;
        plane.wait_condition(&broken[i as usize], "Failed").await;
    }
    // Each finished run wakes the controller, which deletes the older ones.
    plane.wait_jobs("tidy", &tidy[2..]).await;
    plane.wait_jobs("broken", &broken[2..]).await;
    plane.wait_event("tidy", "SuccessfulDelete").await;
}

#[tokio::test]
async fn suspend_stops_new_runs_and_resume_runs_the_latest_missed_slot() {
    let plane = Plane::start("suspend").await;
    let clock = test_clock().await;
    let controller = plane.start_cronjobs(&clock);
    plane.cronjob("nap", "true", "  suspend: true").await;
    let slot = next_slot(&clock);
    fire(&clock, slot);
    fire(&clock, slot + minutes(1) + chrono::Duration::seconds(20));
    plane.reconciled_since_now(&controller, "nap").await;
    assert!(plane.jobs_of("nap").await.is_empty(), "suspended: no Job");
    assert_eq!(plane.cronjob_status("nap").await.next_schedule_time, "");
    // Resume: Kubernetes' Latest policy runs the most recent missed slot at once.
    plane
        .update_cronjob("nap", |cj| {
            cj.spec.as_mut().expect("spec").suspend = Some(false);
        })
        .await;
    plane
        .wait_jobs("nap", &[named("nap", slot + minutes(1))])
        .await;
}

/// The controller stopped across three slots, then started again: `Latest` runs one Job
/// (the newest slot), `All` runs each missed slot.
#[tokio::test]
async fn a_controller_stopped_across_slots_catches_up_per_policy() {
    let plane = Plane::start("catch-up").await;
    let clock = test_clock().await;
    let controller = plane.start_cronjobs(&clock);
    plane.cronjob("latest", "true", "").await;
    plane
        .cronjob(
            "every",
            "true",
            "  successfulJobsHistoryLimit: 10\n  catchUp:\n    policy: All\n    maxRuns: 5",
        )
        .await;
    let slot = next_slot(&clock);
    fire(&clock, slot);
    plane.wait_jobs("latest", &[named("latest", slot)]).await;
    plane.wait_jobs("every", &[named("every", slot)]).await;

    controller.stop().await;
    clock.jump_to(slot + minutes(3) + chrono::Duration::seconds(10));
    let _controller = plane.start_cronjobs(&clock);
    plane
        .wait_jobs(
            "latest",
            &[named("latest", slot), named("latest", slot + minutes(3))],
        )
        .await;
    let every: Vec<String> = (0..4).map(|i| named("every", slot + minutes(i))).collect();
    plane.wait_jobs("every", &every).await;
}

#[tokio::test]
async fn the_plane_builder_runs_the_cronjob_controller() {
    let clock = Clock::default();
    let plane = Plane(
        bosun_tests::Plane::builder("cronjob-builder")
            .controllers()
            .cronjob_controller_with({
                let clock = clock.clone();
                move |c| c.clock = clock
            })
            .start()
            .await,
    );
    to_test_time(&clock).await;
    plane.cronjob("built", "true", "").await;
    let slot = next_slot(&clock);
    fire(&clock, slot);
    wait_for("nextScheduleTime written", WAIT, || async {
        let s = plane.cronjob_status("built").await;
        (s.last_schedule_time == slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn allow_lets_runs_overlap() {
    let plane = Plane::start("allow").await;
    let clock = test_clock().await;
    let _controller = plane.start_cronjobs(&clock);
    let wait = plane.wait_for_file("go");
    plane.cronjob("both", &wait, "").await;
    let slot = next_slot(&clock);
    fire(&clock, slot);
    plane.wait_jobs("both", &[named("both", slot)]).await;
    fire(&clock, slot + minutes(1));
    let both = [named("both", slot), named("both", slot + minutes(1))];
    plane.wait_jobs("both", &both).await;
    wait_for("two active runs", WAIT, || async {
        let s = plane.cronjob_status("both").await;
        let active: Vec<String> = s.active.iter().map(|r| r.name.clone()).collect();
        if active == both {
            Ok(())
        } else {
            Err(format!("{active:?}"))
        }
    })
    .await;
    plane.touch("go");
}

/// New York springs forward on 14 March 2027: 02:30 does not happen that day and does not
/// fire; it falls back on 7 November 2027: 01:30 happens twice (EDT, then EST) and fires
/// twice.
#[tokio::test]
async fn a_time_zone_with_daylight_saving_skips_a_missing_wall_time_and_fires_a_repeated_one_twice()
{
    let plane = Plane::start("dst").await;
    let clock = test_clock().await;
    let _controller = plane.start_cronjobs(&clock);
    // catchUp None: the slots between the CronJob's creation and the moved clock are skipped.
    plane
        .cronjob(
            "early",
            "true",
            "  timeZone: America/New_York\n  catchUp:\n    policy: None",
        )
        .await;
    plane.set_schedule("early", "30 2 * * *").await;
    let march = utc("2027-03-13T07:30:00Z");
    fire(&clock, march);
    plane.wait_jobs("early", &[named("early", march)]).await;
    wait_for("the next slot skips 14 March", WAIT, || async {
        let s = plane.cronjob_status("early").await;
        if s.next_schedule_time == "2027-03-15T06:30:00Z" {
            Ok(())
        } else {
            Err(s.next_schedule_time)
        }
    })
    .await;

    plane.set_schedule("early", "30 1 * * *").await;
    let edt = utc("2027-11-07T05:30:00Z");
    let est = utc("2027-11-07T06:30:00Z");
    fire(&clock, edt);
    plane
        .wait_jobs("early", &[named("early", march), named("early", edt)])
        .await;
    wait_for("the next slot is the repeated 01:30", WAIT, || async {
        let s = plane.cronjob_status("early").await;
        if s.next_schedule_time == "2027-11-07T06:30:00Z" {
            Ok(())
        } else {
            Err(s.next_schedule_time)
        }
    })
    .await;
    fire(&clock, est);
    let all = [
        named("early", march),
        named("early", edt),
        named("early", est),
    ];
    plane.wait_jobs("early", &all).await;
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

/// The seed CronJobs (`*/1` hello, `0,15,30,45` batch job) as the examples correct them (a
/// command for the process runtime): at the next quarter hour both fire, and hello's output
/// is in its pod's logs.
#[tokio::test]
async fn the_seed_cronjobs_fire_on_their_slots() {
    let plane = Plane::start("seeds").await;
    let clock = test_clock().await;
    let _controller = plane.start_cronjobs(&clock);
    let seeds = bosun_tests::manifests_dir().join("examples");
    for file in ["cronjob-hello.yaml", "cronjob-every-fifteen-minutes.yaml"] {
        let yaml = std::fs::read_to_string(seeds.join(file)).expect("seed manifest");
        plane.apply(&yaml).await;
    }
    let now = clock.now();
    let quarter = now
        .with_minute(now.minute() / 15 * 15)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .expect("a quarter")
        + minutes(15);
    fire(&clock, quarter);
    let batch = named("batch-job-every-fifteen-minutes", quarter);
    let hello = named("hello", quarter);
    for job in [&batch, &hello] {
        wait_for(&format!("job {job}"), WAIT, || async {
            plane.client().get(Kind::Job, "default", job).await.is_ok()
        })
        .await;
    }
    plane.wait_condition(&hello, "Complete").await;
    let pod = plane.job_pods(&hello).await.pop().expect("a pod");
    let logs = plane
        .logs(&pod.metadata.expect("meta").name)
        .await
        .expect("logs");
    assert!(
        logs.contains("Hello from the Kubernetes cluster"),
        "{logs:?}"
    );
}
