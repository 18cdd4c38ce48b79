use super::*;
use crate::pods::ExitCode;
use bosun_api::vocab::{condition, policy, status};

pub(super) fn now() -> DateTime<Utc> {
    parse_time("2026-01-01T00:01:00Z").unwrap()
}

pub(super) fn job(f: impl FnOnce(&mut v1::JobSpec)) -> v1::Job {
    let mut spec = v1::JobSpec {
        parallelism: Some(1),
        completions: Some(1),
        backoff_limit: Some(6),
        template: Some(v1::PodTemplateSpec {
            metadata: None,
            spec: Some(v1::PodSpec {
                restart_policy: policy::NEVER.into(),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    f(&mut spec);
    v1::Job {
        metadata: Some(v1::ObjectMeta {
            name: "j".into(),
            namespace: "ns".into(),
            uid: "ju".into(),
            ..Default::default()
        }),
        spec: Some(spec),
        status: Some(v1::JobStatus {
            start_time: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn with_status(mut j: v1::Job, f: impl FnOnce(&mut v1::JobStatus)) -> v1::Job {
    f(j.status.get_or_insert_with(Default::default));
    j
}

pub(super) fn pod(name: &str, phase: Phase) -> PodFacts {
    PodFacts {
        name: name.into(),
        uid: format!("uid-{name}"),
        index: None,
        phase,
        deleting: false,
        tracked: true,
        ready: false,
        scheduled: true,
        restarts: 0,
        finished_at: matches!(phase, Phase::Succeeded | Phase::Failed)
            .then(|| parse_time("2026-01-01T00:00:50Z").unwrap()),
        created_at: parse_time("2026-01-01T00:00:01Z"),
        exit_codes: Vec::new(),
        conditions: Default::default(),
        index_failures: 0,
        index_ignored_failures: 0,
    }
}

pub(super) fn indexed(name: &str, i: i32, phase: Phase) -> PodFacts {
    PodFacts {
        index: Some(i),
        ..pod(name, phase)
    }
}

fn run(job: &v1::Job, pods: &[PodFacts]) -> Plan {
    plan(&Inputs {
        job,
        pods,
        dependencies: &[],
        now: now(),
    })
}

fn cond<'a>(p: &'a Plan, ty: &str) -> Option<&'a v1::Condition> {
    p.status.conditions.iter().find(|c| c.r#type == ty)
}

fn uncounted(p: &Plan) -> (Vec<String>, Vec<String>) {
    let u = p
        .status
        .uncounted_terminated_pods
        .clone()
        .unwrap_or_default();
    (u.succeeded, u.failed)
}

#[test]
fn active_pods_never_exceed_min_of_parallelism_and_remaining_completions() {
    // (completions, parallelism, succeeded so far, active pods) → pods to create
    let table = [
        (Some(5), 2, 0, 0, 2),
        (Some(5), 2, 0, 1, 1),
        (Some(5), 2, 4, 0, 1),
        (Some(5), 2, 5, 0, 0),
        (Some(8), 2, 6, 2, 0),
        (Some(1), 1, 0, 0, 1),
        (None, 3, 0, 0, 3),
        (None, 3, 1, 1, 0),
        (Some(5), 0, 0, 0, 0),
    ];
    for (completions, parallelism, succeeded, active, want) in table {
        let j = with_status(
            job(|s| {
                s.completions = completions;
                s.parallelism = Some(parallelism);
            }),
            |st| st.succeeded = succeeded,
        );
        let pods: Vec<PodFacts> = (0..active)
            .map(|i| pod(&format!("a{i}"), Phase::Running))
            .collect();
        let p = run(&j, &pods);
        assert_eq!(
            p.create.len(),
            want,
            "completions {completions:?} parallelism {parallelism} succeeded {succeeded} active {active}"
        );
        assert_eq!(p.status.active as usize, active + want);
    }
}

#[test]
fn a_finished_pod_is_recorded_as_uncounted_then_released_then_counted() {
    let j = job(|_| {});
    let done = pod("p", Phase::Succeeded);
    // 1: recorded in uncountedTerminatedPods and released after the status write.
    let first = run(&j, std::slice::from_ref(&done));
    assert_eq!(uncounted(&first).0, vec!["uid-p".to_string()]);
    assert_eq!(first.status.succeeded, 0);
    assert_eq!(first.release, vec!["p".to_string()]);
    assert!(cond(&first, SUCCESS_CRITERIA_MET).is_some());
    assert!(
        cond(&first, COMPLETE).is_none(),
        "not before the pod is released"
    );
    // 1 again (the release failed, or the controller restarted): nothing counted twice.
    let stored = with_status(j.clone(), |s| *s = first.status.clone());
    let again = run(&stored, std::slice::from_ref(&done));
    assert_eq!(uncounted(&again).0, vec!["uid-p".to_string()]);
    assert_eq!(again.release, vec!["p".to_string()]);
    assert_eq!(again.status.succeeded, 0);
    // 3: the pod is released: moved into the counter, and the Job completes.
    let released = PodFacts {
        tracked: false,
        ..done.clone()
    };
    let third = run(&stored, std::slice::from_ref(&released));
    assert_eq!(uncounted(&third), (vec![], vec![]));
    assert_eq!(third.status.succeeded, 1);
    assert!(third.release.is_empty());
    assert_eq!(cond(&third, COMPLETE).unwrap().reason, "CompletionsReached");
    assert!(!third.status.completion_time.is_empty());
    assert_eq!(third.events.last().unwrap().reason, "Completed");
    // A released pod that disappears is not counted again.
    let final_job = with_status(j, |s| *s = third.status.clone());
    let fourth = run(&final_job, &[]);
    assert_eq!(fourth.status.succeeded, 1);
}

#[test]
fn a_released_pod_that_is_gone_is_still_counted_once() {
    let j = with_status(job(|s| s.completions = Some(3)), |st| {
        st.uncounted_terminated_pods = Some(v1::UncountedTerminatedPods {
            succeeded: vec!["uid-gone".into()],
            failed: vec!["uid-failed".into()],
        });
        st.succeeded = 1;
        st.failed = 2;
    });
    let p = run(&j, &[]);
    assert_eq!((p.status.succeeded, p.status.failed), (2, 3));
    assert_eq!(uncounted(&p), (vec![], vec![]));
}

#[test]
fn failures_past_the_backoff_limit_fail_the_job_in_two_phases() {
    let j = with_status(job(|s| s.backoff_limit = Some(2)), |st| st.failed = 2);
    let p = run(&j, &[pod("f", Phase::Failed)]);
    let ft = cond(&p, FAILURE_TARGET).expect("FailureTarget");
    assert_eq!(ft.reason, "BackoffLimitExceeded");
    assert!(
        cond(&p, FAILED).is_none(),
        "Failed waits until the pod is released"
    );
    assert!(p.create.is_empty());
    assert_eq!(p.events[0].reason, "BackoffLimitExceeded");
    let stored = with_status(j, |s| *s = p.status.clone());
    let released = PodFacts {
        tracked: false,
        ..pod("f", Phase::Failed)
    };
    let p = run(&stored, &[released]);
    assert_eq!(p.status.failed, 3);
    assert_eq!(cond(&p, FAILED).unwrap().reason, "BackoffLimitExceeded");
}

#[test]
fn on_failure_counts_container_restarts_against_the_backoff_limit() {
    let j = job(|s| {
        s.backoff_limit = Some(3);
        s.template
            .as_mut()
            .unwrap()
            .spec
            .as_mut()
            .unwrap()
            .restart_policy = policy::ON_FAILURE.into();
    });
    for (restarts, fails) in [(2, false), (3, true)] {
        let running = PodFacts {
            restarts,
            ..pod("r", Phase::Running)
        };
        let p = run(&j, &[running]);
        assert_eq!(
            cond(&p, FAILURE_TARGET).is_some(),
            fails,
            "{restarts} restarts"
        );
        if fails {
            assert_eq!(p.delete, vec!["r".to_string()], "the pod is killed");
        }
    }
}

#[test]
fn the_retry_delay_grows_per_job_and_caps() {
    let spec = |initial: Option<i64>, max: Option<i64>, factor: Option<i32>| v1::JobSpec {
        pod_backoff: Some(v1::PodBackoff {
            initial_seconds: initial,
            max_seconds: max,
            factor,
        }),
        ..Default::default()
    };
    let s = Duration::from_secs;
    let table = [
        (v1::JobSpec::default(), 0, s(0)),
        (v1::JobSpec::default(), 1, s(10)),
        (v1::JobSpec::default(), 2, s(20)),
        (v1::JobSpec::default(), 7, s(600)),
        (v1::JobSpec::default(), 40, s(600)),
        (spec(Some(1), Some(4), None), 1, s(1)),
        (spec(Some(1), Some(4), None), 3, s(4)),
        (spec(Some(1), Some(100), Some(3)), 3, s(9)),
    ];
    for (spec, failures, want) in table {
        assert_eq!(retry_delay(&spec, failures), want, "{failures} failures");
    }
}

#[test]
fn a_replacement_waits_for_the_retry_delay_kept_in_status() {
    // One failure 5 s ago with a 10 s delay: nothing yet, look again in 5 s.
    let j = with_status(job(|_| {}), |st| {
        st.failed = 1;
        st.consecutive_failures = 1;
        st.last_failure_time = "2026-01-01T00:00:55Z".into();
    });
    let p = run(&j, &[]);
    assert!(p.create.is_empty());
    let wait = p.requeue.expect("a requeue at the end of the delay");
    assert!(
        wait > Duration::from_secs(4) && wait <= Duration::from_secs(6),
        "{wait:?}"
    );
    // 15 s ago: the replacement is created.
    let j = with_status(j, |st| st.last_failure_time = "2026-01-01T00:00:45Z".into());
    assert_eq!(run(&j, &[]).create.len(), 1);
    // A new failure is recorded in status, feeding the next delay.
    let p = run(&j, &[pod("f", Phase::Failed)]);
    assert_eq!(p.status.consecutive_failures, 2);
    assert_eq!(p.status.last_failure_time, "2026-01-01T00:00:50.000000Z");
    // A success after the failures resets the count.
    let j2 = with_status(job(|s| s.completions = Some(3)), |st| {
        st.consecutive_failures = 3;
        st.last_failure_time = "2026-01-01T00:00:10Z".into();
    });
    assert_eq!(
        run(&j2, &[pod("ok", Phase::Succeeded)])
            .status
            .consecutive_failures,
        0
    );
}

#[test]
fn the_deadline_wins_over_the_backoff_and_requeues_exactly() {
    let j = job(|s| s.active_deadline_seconds = Some(90));
    let p = run(&j, &[pod("r", Phase::Running)]);
    assert!(cond(&p, FAILURE_TARGET).is_none());
    let wait = p.requeue.expect("requeued at the deadline");
    assert!(
        wait > Duration::from_secs(29) && wait <= Duration::from_secs(31),
        "{wait:?}"
    );
    let j = job(|s| s.active_deadline_seconds = Some(60));
    let p = run(&j, &[pod("r", Phase::Running)]);
    assert_eq!(cond(&p, FAILURE_TARGET).unwrap().reason, "DeadlineExceeded");
    assert_eq!(p.delete, vec!["r".to_string()]);
    assert!(p.create.is_empty());
}

#[test]
fn pod_failure_policy_actions() {
    let rule = |action: &str, codes: Vec<i32>| v1::PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: Some(v1::PodFailurePolicyOnExitCodesRequirement {
            container_name: None,
            operator: "In".into(),
            values: codes,
        }),
        on_pod_conditions: vec![],
    };
    let failed_42 = PodFacts {
        exit_codes: vec![ExitCode {
            container: "main".into(),
            code: 42,
        }],
        ..pod("f", Phase::Failed)
    };
    // (rules, → failed in uncounted, FailureTarget reason, consecutive failures)
    let table: Vec<(Vec<v1::PodFailurePolicyRule>, usize, Option<&str>, i32)> = vec![
        (
            vec![rule("FailJob", vec![42])],
            1,
            Some("PodFailurePolicy"),
            1,
        ),
        (vec![rule("Ignore", vec![42])], 0, None, 0),
        (vec![rule("Count", vec![42])], 1, None, 1),
        (vec![rule("FailJob", vec![1])], 1, None, 1),
        (
            vec![rule("Ignore", vec![1, 42]), rule("FailJob", vec![42])],
            0,
            None,
            0,
        ),
        (
            vec![rule("Unknown", vec![42]), rule("FailJob", vec![42])],
            1,
            Some("PodFailurePolicy"),
            1,
        ),
    ];
    for (rules, failed, target, consecutive) in table {
        let what = format!("{:?}", rules.iter().map(|r| &r.action).collect::<Vec<_>>());
        let j = job(|s| {
            s.pod_failure_policy = Some(v1::PodFailurePolicy { rules });
        });
        let p = run(&j, std::slice::from_ref(&failed_42));
        assert_eq!(uncounted(&p).1.len(), failed, "{what}");
        assert_eq!(
            cond(&p, FAILURE_TARGET).map(|c| c.reason.as_str()),
            target,
            "{what}"
        );
        assert_eq!(
            p.status.consecutive_failures, consecutive,
            "{what}: Ignore never feeds the retry delay"
        );
        assert_eq!(p.release, vec!["f".to_string()], "{what}");
        if target.is_some() {
            assert!(
                cond(&p, FAILURE_TARGET)
                    .unwrap()
                    .message
                    .contains("exit code 42")
            );
        }
    }
}

#[test]
fn pod_failure_policy_matches_pod_conditions() {
    let j = job(|s| {
        s.pod_failure_policy = Some(v1::PodFailurePolicy {
            rules: vec![v1::PodFailurePolicyRule {
                action: "Ignore".into(),
                on_exit_codes: None,
                on_pod_conditions: vec![v1::PodFailurePolicyOnPodConditionsPattern {
                    r#type: condition::DISRUPTION_TARGET.into(),
                    status: String::new(),
                }],
            }],
        });
    });
    let evicted = PodFacts {
        conditions: vec![(condition::DISRUPTION_TARGET.into(), status::TRUE.into())].into(),
        ..pod("e", Phase::Failed)
    };
    let p = run(&j, &[evicted]);
    assert!(uncounted(&p).1.is_empty());
    assert_eq!(p.create.len(), 1, "a replacement at once: no retry delay");
}

#[test]
fn indexed_jobs_count_indexes_once_and_create_the_missing_ones() {
    let j = job(|s| {
        s.completion_mode = "Indexed".into();
        s.completions = Some(4);
        s.parallelism = Some(2);
    });
    let pods = [
        indexed("a", 0, Phase::Succeeded),
        indexed("b", 0, Phase::Succeeded), // a duplicate success: index 0 once
        indexed("c", 1, Phase::Running),
        indexed("d", 1, Phase::Running), // a duplicate active pod: deleted
        indexed("e", 9, Phase::Running), // out of range: deleted
    ];
    let p = run(&j, &pods);
    assert_eq!(p.status.completed_indexes, "0");
    assert_eq!(p.status.succeeded, 1);
    assert_eq!(p.delete, vec!["d".to_string(), "e".to_string()]);
    assert_eq!(
        p.create.iter().map(|n| n.index).collect::<Vec<_>>(),
        vec![Some(2)],
        "one slot left (parallelism 2, index 1 running): the lowest missing index"
    );
    assert_eq!(
        uncounted(&p),
        (vec![], vec![]),
        "Indexed successes need no uids"
    );
}

#[test]
fn backoff_limit_per_index_fails_the_index_then_the_job() {
    let j = job(|s| {
        s.completion_mode = "Indexed".into();
        s.completions = Some(2);
        s.parallelism = Some(2);
        s.backoff_limit_per_index = Some(1);
        s.backoff_limit = Some(i32::MAX);
    });
    let second_failure = PodFacts {
        index_failures: 1,
        ..indexed("f", 1, Phase::Failed)
    };
    let p = run(&j, &[indexed("ok", 0, Phase::Succeeded), second_failure]);
    assert_eq!(p.status.failed_indexes.as_deref(), Some("1"));
    assert_eq!(cond(&p, FAILURE_TARGET).unwrap().reason, "FailedIndexes");
    // A first failure of an index is retried with its count carried on.
    let p = run(&j, &[indexed("f", 1, Phase::Failed)]);
    assert_eq!(p.status.failed_indexes.as_deref(), Some(""));
    let stored = with_status(j, |s| *s = p.status.clone());
    let released = PodFacts {
        tracked: false,
        index_failures: 0,
        ..indexed("f", 1, Phase::Failed)
    };
    let p = run(
        &with_status(stored, |s| {
            s.consecutive_failures = 0;
        }),
        &[released],
    );
    let replacement = p
        .create
        .iter()
        .find(|n| n.index == Some(1))
        .expect("index 1 again");
    assert_eq!(replacement.failures.failures, 1);
}

#[test]
fn a_success_policy_completes_an_indexed_job_early() {
    let j = job(|s| {
        s.completion_mode = "Indexed".into();
        s.completions = Some(5);
        s.parallelism = Some(5);
        s.success_policy = Some(v1::SuccessPolicy {
            rules: vec![v1::SuccessPolicyRule {
                succeeded_indexes: Some("0-1".into()),
                succeeded_count: None,
            }],
        });
    });
    let p = run(
        &j,
        &[
            indexed("a", 0, Phase::Succeeded),
            indexed("b", 1, Phase::Succeeded),
            indexed("c", 2, Phase::Running),
        ],
    );
    assert_eq!(
        cond(&p, SUCCESS_CRITERIA_MET).unwrap().reason,
        "SuccessPolicy"
    );
    assert_eq!(
        p.delete,
        vec!["c".to_string()],
        "lingering pods are terminated"
    );
    assert!(p.create.is_empty());
}

#[test]
fn suspend_deletes_pods_uncounted_and_resume_restarts_the_clock() {
    let j = job(|s| {
        s.suspend = Some(true);
        s.parallelism = Some(2);
        s.completions = Some(4);
    });
    let p = run(&j, &[pod("a", Phase::Running), pod("b", Phase::Pending)]);
    assert_eq!(cond(&p, SUSPENDED).unwrap().status, status::TRUE);
    assert_eq!(p.delete, vec!["a".to_string(), "b".to_string()]);
    assert!(p.create.is_empty());
    assert!(p.status.start_time.is_empty());
    assert_eq!(p.status.failed, 0);
    assert_eq!(p.events[0].reason, "Suspended");
    // Resumed.
    let mut resumed = with_status(j, |s| *s = p.status.clone());
    resumed.spec.as_mut().unwrap().suspend = Some(false);
    let p = run(&resumed, &[]);
    assert_eq!(cond(&p, SUSPENDED).unwrap().status, status::FALSE);
    assert_eq!(cond(&p, SUSPENDED).unwrap().reason, "JobResumed");
    assert_eq!(p.status.start_time, "2026-01-01T00:01:00Z");
    assert_eq!(p.create.len(), 2);
    assert_eq!(p.events[0].reason, "Resumed");
}

#[test]
fn a_job_waits_for_its_dependencies_and_fails_with_a_failed_one() {
    let mut j = job(|s| s.depends_on = vec!["a".into(), "b".into()]);
    j.status = None;
    let deps = |a: DependencyState, b: DependencyState| {
        vec![
            Dependency {
                name: "a".into(),
                state: a,
            },
            Dependency {
                name: "b".into(),
                state: b,
            },
        ]
    };
    let go = |deps: &[Dependency]| {
        plan(&Inputs {
            job: &j,
            pods: &[],
            dependencies: deps,
            now: now(),
        })
    };
    let p = go(&deps(
        DependencyState::Complete,
        DependencyState::Pending("Running".into()),
    ));
    let w = cond(&p, WAITING).unwrap();
    assert_eq!(
        (w.status.as_str(), w.reason.as_str()),
        (status::TRUE, "WaitingForDependencies")
    );
    assert_eq!(w.message, "waiting for job(s) b (Running)");
    assert!(p.create.is_empty());
    assert!(p.status.start_time.is_empty());
    let p = go(&deps(DependencyState::Complete, DependencyState::Complete));
    assert_eq!(p.create.len(), 1);
    assert!(!p.status.start_time.is_empty());
    let p = go(&deps(
        DependencyState::Failed("BackoffLimitExceeded".into()),
        DependencyState::Complete,
    ));
    assert_eq!(cond(&p, FAILED).unwrap().reason, "DependencyFailed");
    assert_eq!(
        cond(&p, FAILED).unwrap().message,
        "job a failed (BackoffLimitExceeded)"
    );
    assert!(p.create.is_empty());
}

#[test]
fn a_deleted_running_pod_counts_as_failed_unless_replacement_waits_for_failed() {
    let deleting = PodFacts {
        deleting: true,
        ..pod("d", Phase::Running)
    };
    let p = run(&job(|_| {}), std::slice::from_ref(&deleting));
    assert_eq!(uncounted(&p).1, vec!["uid-d".to_string()]);
    assert_eq!(p.status.terminating, Some(1));
    let p = run(
        &job(|s| s.pod_replacement_policy = "Failed".into()),
        std::slice::from_ref(&deleting),
    );
    assert!(uncounted(&p).1.is_empty());
    assert!(
        p.create.is_empty(),
        "Failed: no replacement while it terminates"
    );
}

#[test]
fn a_finished_job_only_releases_its_pods() {
    let j = with_status(job(|_| {}), |st| {
        st.conditions.push(v1::Condition {
            r#type: COMPLETE.into(),
            status: status::TRUE.into(),
            ..Default::default()
        });
        st.succeeded = 1;
    });
    let p = run(&j, &[pod("late", Phase::Running)]);
    assert_eq!(p.release, vec!["late".to_string()]);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(p.status.succeeded, 1);
}
