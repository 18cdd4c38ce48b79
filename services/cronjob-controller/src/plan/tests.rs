//! Table tests of the plan's steps and of whole plans (named rows; time is a parameter).

use super::*;

/// 2026-01-01T00:00:00Z plus `m` minutes.
fn at(m: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::minutes(m)
}

/// `at(m)` plus `s` seconds.
fn at_s(m: i64, s: i64) -> DateTime<Utc> {
    at(m) + chrono::Duration::seconds(s)
}

/// Every `n` minutes, on the minute.
fn every(n: i64) -> impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>> {
    move |t: DateTime<Utc>| {
        let step = n * 60;
        let s = t.timestamp();
        DateTime::from_timestamp((s.div_euclid(step) + 1) * step, 0)
    }
}

fn never(_: DateTime<Utc>) -> Option<DateTime<Utc>> {
    None
}

fn cronjob(change: impl FnOnce(&mut v1::CronJobSpec, &mut v1::CronJobStatus)) -> v1::CronJob {
    let mut spec = v1::CronJobSpec {
        schedule: "*/1 * * * *".into(),
        concurrency_policy: words::ALLOW.into(),
        job_template: Some(v1::JobTemplateSpec {
            metadata: Some(v1::ObjectMeta {
                labels: [("app".to_string(), "hello".to_string())].into(),
                annotations: [("note".to_string(), "kept".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(v1::JobSpec::default()),
        }),
        ..Default::default()
    };
    let mut status = v1::CronJobStatus::default();
    change(&mut spec, &mut status);
    v1::CronJob {
        metadata: Some(v1::ObjectMeta {
            name: "hello".into(),
            namespace: "ns".into(),
            uid: "cj-uid".into(),
            creation_timestamp: format_time(at(0)),
            ..Default::default()
        }),
        spec: Some(spec),
        status: Some(status),
        ..Default::default()
    }
}

fn job(slot: DateTime<Utc>, finished: Option<Finished>) -> JobFacts {
    let name = job_name("hello", slot);
    JobFacts {
        uid: format!("uid-{name}"),
        name,
        finished,
        start_time: Some(slot),
        completion_time: finished.map(|_| slot + chrono::Duration::seconds(5)),
        deleting: false,
        manual: false,
    }
}

fn active_ref(slot: DateTime<Utc>) -> v1::ObjectReference {
    let j = job(slot, None);
    job_ref("ns", &j.name, &j.uid)
}

fn reasons(p: &Plan) -> Vec<&'static str> {
    p.events.iter().map(|e| e.reason).collect()
}

fn run(cj: &v1::CronJob, jobs: &[JobFacts], now: DateTime<Utc>) -> Plan {
    let schedule = every(1);
    plan(&Inputs {
        cronjob: cj,
        jobs,
        now,
        schedule: Ok(&schedule),
    })
}

fn last(status: &mut v1::CronJobStatus, m: i64) {
    status.last_schedule_time = format_time(at(m));
}

#[test]
fn whole_plans() {
    type Change = fn(&mut v1::CronJobSpec, &mut v1::CronJobStatus);
    struct Row {
        name: &'static str,
        change: Change,
        jobs: Vec<JobFacts>,
        now: DateTime<Utc>,
        create: Vec<DateTime<Utc>>,
        delete: Vec<&'static str>,
        events: Vec<&'static str>,
        last_schedule: Option<DateTime<Utc>>,
    }
    let ms = |m: &[i64]| m.iter().map(|m| at(*m)).collect::<Vec<_>>();
    let table = vec![
        Row {
            name: "a slot just passed runs",
            change: |_, st| last(st, 4),
            jobs: vec![],
            now: at_s(5, 0) + chrono::Duration::milliseconds(100),
            create: ms(&[5]),
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(5)),
        },
        Row {
            name: "between slots nothing runs",
            change: |_, st| last(st, 5),
            jobs: vec![],
            now: at_s(5, 30),
            create: vec![],
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(5)),
        },
        Row {
            name: "a clock stepped back never runs a slot twice",
            change: |_, st| last(st, 5),
            jobs: vec![],
            now: at_s(3, 10),
            create: vec![],
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(5)),
        },
        Row {
            name: "a slot whose Job exists is done, and lastScheduleTime catches up (status lost after a create)",
            change: |_, st| last(st, 4),
            jobs: vec![job(at(5), Some(Finished::Complete))],
            now: at_s(5, 1),
            create: vec![],
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(5)),
        },
        Row {
            name: "latest (the default) after downtime runs only the most recent slot",
            change: |_, st| last(st, 2),
            jobs: vec![],
            now: at_s(6, 20),
            create: ms(&[6]),
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(6)),
        },
        Row {
            name: "all after downtime runs every missed slot oldest first",
            change: |sp, st| {
                last(st, 2);
                sp.catch_up = Some(v1::CatchUp {
                    policy: words::ALL.into(),
                    max_runs: None,
                });
            },
            jobs: vec![],
            now: at_s(6, 20),
            create: ms(&[3, 4, 5, 6]),
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(6)),
        },
        Row {
            name: "all runs at most maxRuns, the most recent",
            change: |sp, st| {
                last(st, 2);
                sp.catch_up = Some(v1::CatchUp {
                    policy: words::ALL.into(),
                    max_runs: Some(2),
                });
            },
            jobs: vec![],
            now: at_s(6, 20),
            create: ms(&[5, 6]),
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(6)),
        },
        Row {
            name: "none after downtime skips the missed slots",
            change: |sp, st| {
                last(st, 2);
                sp.catch_up = Some(v1::CatchUp {
                    policy: words::NONE.into(),
                    max_runs: None,
                });
            },
            jobs: vec![],
            now: at_s(6, 20),
            create: vec![],
            delete: vec![],
            events: vec!["MissSchedule"],
            last_schedule: Some(at(2)),
        },
        Row {
            name: "none runs a slot that is on time",
            change: |sp, st| {
                last(st, 2);
                sp.catch_up = Some(v1::CatchUp {
                    policy: words::NONE.into(),
                    max_runs: None,
                });
            },
            jobs: vec![],
            now: at_s(6, 1),
            create: ms(&[6]),
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(6)),
        },
        Row {
            name: "forbid skips while a run is active",
            change: |sp, st| {
                last(st, 4);
                sp.concurrency_policy = words::FORBID.into();
                st.active = vec![active_ref(at(4))];
            },
            jobs: vec![job(at(4), None)],
            now: at_s(5, 0),
            create: vec![],
            delete: vec![],
            events: vec!["JobAlreadyActive"],
            last_schedule: Some(at(4)),
        },
        Row {
            name: "forbid starts the latest missed slot when the active run ends",
            change: |sp, st| {
                last(st, 4);
                sp.concurrency_policy = words::FORBID.into();
                st.active = vec![active_ref(at(4))];
            },
            jobs: vec![job(at(4), Some(Finished::Complete))],
            now: at_s(6, 30),
            create: ms(&[6]),
            delete: vec![],
            events: vec!["SawCompletedJob"],
            last_schedule: Some(at(6)),
        },
        Row {
            name: "forbid with all runs the missed slots one at a time, oldest first",
            change: |sp, st| {
                last(st, 2);
                sp.concurrency_policy = words::FORBID.into();
                sp.catch_up = Some(v1::CatchUp {
                    policy: words::ALL.into(),
                    max_runs: None,
                });
            },
            jobs: vec![],
            now: at_s(5, 10),
            create: ms(&[3]),
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(3)),
        },
        Row {
            name: "replace with all runs only the newest missed slot",
            change: |sp, st| {
                last(st, 2);
                sp.concurrency_policy = words::REPLACE.into();
                sp.catch_up = Some(v1::CatchUp {
                    policy: words::ALL.into(),
                    max_runs: None,
                });
            },
            jobs: vec![],
            now: at_s(5, 10),
            create: ms(&[5]),
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(5)),
        },
        Row {
            name: "replace deletes the active run then starts the new one",
            change: |sp, st| {
                last(st, 4);
                sp.concurrency_policy = words::REPLACE.into();
                st.active = vec![active_ref(at(4))];
            },
            jobs: vec![job(at(4), None)],
            now: at_s(5, 0),
            create: ms(&[5]),
            delete: vec!["hello-29453764"],
            events: vec![],
            last_schedule: Some(at(5)),
        },
        Row {
            name: "allow overlaps",
            change: |_, st| {
                last(st, 4);
                st.active = vec![active_ref(at(4))];
            },
            jobs: vec![job(at(4), None)],
            now: at_s(5, 0),
            create: ms(&[5]),
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(5)),
        },
        Row {
            name: "suspended runs nothing but still cleans up",
            change: |sp, st| {
                last(st, 0);
                sp.suspend = Some(true);
                sp.successful_jobs_history_limit = Some(0);
            },
            jobs: vec![job(at(0), Some(Finished::Complete))],
            now: at_s(5, 0),
            create: vec![],
            delete: vec!["hello-29453760"],
            events: vec![],
            last_schedule: Some(at(0)),
        },
        Row {
            name: "a starting deadline skips slots older than it",
            change: |sp, st| {
                last(st, 0);
                sp.starting_deadline_seconds = Some(30);
            },
            jobs: vec![],
            now: at_s(5, 40),
            create: vec![],
            delete: vec![],
            events: vec!["MissSchedule"],
            last_schedule: Some(at(0)),
        },
        Row {
            name: "a never-run CronJob counts from its creation",
            change: |_, _| {},
            jobs: vec![],
            now: at_s(3, 5),
            create: ms(&[3]),
            delete: vec![],
            events: vec![],
            last_schedule: Some(at(3)),
        },
        Row {
            name: "more than 100 missed slots warn and still run the latest",
            change: |_, st| last(st, 0),
            jobs: vec![],
            now: at_s(300, 5),
            create: ms(&[300]),
            delete: vec![],
            events: vec!["TooManyMissedTimes"],
            last_schedule: Some(at(300)),
        },
    ];
    for row in table {
        let cj = cronjob(row.change);
        let p = run(&cj, &row.jobs, row.now);
        assert_eq!(p.create, row.create, "{}: create", row.name);
        let deleted: Vec<&str> = p.delete.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(deleted, row.delete, "{}: delete", row.name);
        assert_eq!(reasons(&p), row.events, "{}: events", row.name);
        assert_eq!(
            parse_time(&p.status.last_schedule_time),
            row.last_schedule,
            "{}: lastScheduleTime",
            row.name
        );
    }
}

#[test]
fn the_requeue_and_next_schedule_time_are_the_next_slot() {
    let cj = cronjob(|_, st| last(st, 5));
    let p = run(&cj, &[], at_s(5, 30));
    assert_eq!(p.status.next_schedule_time, format_time(at(6)));
    assert_eq!(
        p.requeue_after,
        Some(Duration::from_secs(30) + NEXT_SCHEDULE_DELTA)
    );
    let suspended = cronjob(|sp, _| sp.suspend = Some(true));
    let p = run(&suspended, &[], at_s(5, 30));
    assert_eq!(p.status.next_schedule_time, "");
    assert_eq!(p.requeue_after, None);
}

#[test]
fn an_unusable_schedule_records_its_reason_and_runs_nothing() {
    let cj = cronjob(|_, _| {});
    let table: [(&str, Result<&dyn FireTimes, Unschedulable>, &str); 2] = [
        (
            "unknown zone",
            Err(Unschedulable {
                reason: "UnknownTimeZone",
                message: "invalid timeZone: \"Mars/Olympus\"".into(),
            }),
            "UnknownTimeZone",
        ),
        ("a schedule that never fires", Ok(&never), "InvalidSchedule"),
    ];
    for (name, schedule, reason) in table {
        let p = plan(&Inputs {
            cronjob: &cj,
            jobs: &[],
            now: at(10),
            schedule,
        });
        assert!(p.create.is_empty(), "{name}");
        assert_eq!(reasons(&p), [reason], "{name}");
        assert!(p.events[0].warning, "{name}");
        assert_eq!(p.requeue_after, None, "{name}");
    }
}

#[test]
fn the_active_list_follows_the_owned_jobs() {
    struct Row {
        name: &'static str,
        listed: Vec<v1::ObjectReference>,
        jobs: Vec<JobFacts>,
        active: Vec<&'static str>,
        events: Vec<&'static str>,
    }
    let table = vec![
        Row {
            name: "a running listed job stays",
            listed: vec![active_ref(at(1))],
            jobs: vec![job(at(1), None)],
            active: vec!["hello-29453761"],
            events: vec![],
        },
        Row {
            name: "a finished listed job leaves",
            listed: vec![active_ref(at(1))],
            jobs: vec![job(at(1), Some(Finished::Failed))],
            active: vec![],
            events: vec!["SawCompletedJob"],
        },
        Row {
            name: "a deleted listed job leaves",
            listed: vec![active_ref(at(1))],
            jobs: vec![],
            active: vec![],
            events: vec!["MissingJob"],
        },
        Row {
            name: "a running job started by hand is not added",
            listed: vec![],
            jobs: vec![JobFacts {
                manual: true,
                ..job(at(2), None)
            }],
            active: vec![],
            events: vec![],
        },
        Row {
            name: "an unlisted running job is added",
            listed: vec![],
            jobs: vec![job(at(2), None), job(at(1), Some(Finished::Complete))],
            active: vec!["hello-29453762"],
            events: vec!["UnexpectedJob"],
        },
    ];
    for row in table {
        let (active, events) = active("ns", &row.listed, &row.jobs);
        let names: Vec<&str> = active.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, row.active, "{}", row.name);
        let reasons: Vec<&str> = events.iter().map(|e| e.reason).collect();
        assert_eq!(reasons, row.events, "{}", row.name);
    }
}

#[test]
fn history_keeps_the_newest_finished_jobs_per_outcome() {
    struct Row {
        name: &'static str,
        limits: (Option<i32>, Option<i32>),
        jobs: Vec<JobFacts>,
        delete: Vec<i64>,
    }
    let ok = |m| job(at(m), Some(Finished::Complete));
    let failed = |m| job(at(m), Some(Finished::Failed));
    let table = vec![
        Row {
            name: "defaults keep 3 successful and 1 failed",
            limits: (None, None),
            jobs: vec![
                ok(1),
                ok(2),
                ok(3),
                ok(4),
                failed(5),
                failed(6),
                job(at(7), None),
            ],
            delete: vec![1, 5],
        },
        Row {
            name: "zero keeps none",
            limits: (Some(0), Some(0)),
            jobs: vec![ok(2), failed(1)],
            delete: vec![2, 1],
        },
        Row {
            name: "within the limits nothing goes",
            limits: (Some(5), Some(5)),
            jobs: vec![ok(1), failed(2)],
            delete: vec![],
        },
        Row {
            name: "a job without a start time is the newest",
            limits: (Some(1), None),
            jobs: vec![
                JobFacts {
                    start_time: None,
                    ..ok(1)
                },
                ok(2),
            ],
            delete: vec![2],
        },
    ];
    for row in table {
        let spec = v1::CronJobSpec {
            successful_jobs_history_limit: row.limits.0,
            failed_jobs_history_limit: row.limits.1,
            ..Default::default()
        };
        let got: Vec<String> = history(&spec, &row.jobs)
            .into_iter()
            .map(|d| d.name)
            .collect();
        let want: Vec<String> = row
            .delete
            .iter()
            .map(|m| job_name("hello", at(*m)))
            .collect();
        assert_eq!(got, want, "{}", row.name);
    }
}

#[test]
fn due_slots_are_bounded_and_counted() {
    let s = every(1);
    let table = [
        ("none yet", at(0), at_s(0, 30), 1, vec![], 0),
        ("the latest of three", at(0), at_s(3, 0), 1, vec![at(3)], 3),
        (
            "the two latest",
            at(0),
            at_s(3, 0),
            2,
            vec![at(2), at(3)],
            3,
        ),
        (
            "a day of minutes: the latest",
            at(0),
            at(1440),
            1,
            vec![at(1440)],
            101,
        ),
    ];
    for (name, earliest, now, keep, slots, missed) in table {
        let d = due(&s, earliest, now, keep);
        assert_eq!(d.slots, slots, "{name}");
        if missed > TOO_MANY_MISSED {
            assert!(d.missed > TOO_MANY_MISSED, "{name}: {}", d.missed);
        } else {
            assert_eq!(d.missed, missed, "{name}");
        }
    }
    // An `@every 1s`-like schedule a year behind still answers, with its latest slot.
    let every_second = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp() + 1, 0);
    let d = due(&every_second, at(0), at(525_600), 1);
    assert_eq!(d.slots, vec![at(525_600)]);
    assert!(d.missed > TOO_MANY_MISSED);
}

#[test]
fn the_job_carries_its_name_owner_annotation_and_template_metadata() {
    let cj = cronjob(|_, _| {});
    let j = build_job(&cj, at(5));
    let meta = j.metadata.unwrap();
    assert_eq!(meta.name, "hello-29453765");
    assert_eq!(meta.namespace, "ns");
    assert_eq!(meta.labels["app"], "hello");
    assert_eq!(meta.annotations["note"], "kept");
    assert_eq!(
        meta.annotations[words::SCHEDULED_TIMESTAMP],
        "2026-01-01T00:05:00Z"
    );
    let owner = &meta.owner_references[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("CronJob", "hello", "cj-uid")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    assert!(j.spec.is_some());
}

#[test]
fn last_successful_time_is_the_newest_completion() {
    let jobs = [
        job(at(1), Some(Finished::Complete)),
        job(at(3), Some(Finished::Complete)),
        job(at(4), Some(Finished::Failed)),
    ];
    let got = last_successful("", &jobs);
    assert_eq!(got, format_time(at_s(3, 5)));
    let stored_newer = format_time(at(9));
    assert_eq!(last_successful(&stored_newer, &jobs), stored_newer);
}

#[test]
fn with_the_real_schedule_every_counts_from_the_last_run_and_zones_shift_the_slots() {
    use bosun_api::schedule::Schedule;
    // `@every 2m` last run at minute 1: slots at 3, 5, ...; the one at 3 is due.
    let every = Schedule::parse("@every 2m", None).expect("valid");
    let cj = cronjob(|sp, st| {
        sp.schedule = "@every 2m".into();
        last(st, 1);
    });
    let p = plan(&Inputs {
        cronjob: &cj,
        jobs: &[],
        now: at_s(3, 10),
        schedule: Ok(&every),
    });
    assert_eq!(p.create, [at(3)]);
    assert_eq!(p.status.next_schedule_time, format_time(at(5)));
    // 09:00 in New York (UTC-5 in January) is 14:00 UTC.
    let ny = Schedule::parse("0 9 * * *", Some("America/New_York")).expect("valid");
    let cj = cronjob(|_, st| last(st, 0));
    let p = plan(&Inputs {
        cronjob: &cj,
        jobs: &[],
        now: at_s(14 * 60, 1),
        schedule: Ok(&ny),
    });
    assert_eq!(p.create, [at(14 * 60)]);
    assert_eq!(p.status.next_schedule_time, format_time(at(38 * 60)));
}
