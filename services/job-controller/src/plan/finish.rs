//! Finishing: a Job whose interim condition holds (FailureTarget, SuccessCriteriaMet) turns
//! Failed / Complete once every pod is gone or released and every uid is counted, so the
//! final condition never comes before the final counts. Then the status counters: active,
//! ready, terminating, the uncounted lists and the indexes.

use bosun_api::v1;
use bosun_api::vocab::status;

use super::changes::Changes;
use super::count::Counts;
use super::{
    COMPLETE, Draft, FAILED, FAILURE_TARGET, Plan, SUCCESS_CRITERIA_MET, Settings, finished,
    true_condition,
};
use crate::pods::PodFacts;

/// A finished Job only lets go of its pods: it releases every tracked one, runs none, and
/// counts the ones still terminating.
pub(super) fn let_go(stored: &v1::JobStatus, pods: &[PodFacts]) -> Plan {
    let mut status = stored.clone();
    status.active = 0;
    status.ready = Some(0);
    status.terminating = Some(pods.iter().filter(|p| p.deleting && !p.finished()).count() as i32);
    Plan {
        status,
        release: pods
            .iter()
            .filter(|p| p.tracked)
            .map(|p| p.name.clone())
            .collect(),
        ..Plan::default()
    }
}

/// Whether nothing is left to wait for: no pod runs, terminates or is deleted now, no uid
/// waits in the uncounted lists, and no pod still carries the tracking finalizer.
pub(super) fn settled(counts: &Counts<'_>, changes: &Changes<'_>, pods: &[PodFacts]) -> bool {
    counts.active.is_empty()
        && changes.delete.is_empty()
        && counts.terminating.is_empty()
        && counts.uncounted.succeeded.is_empty()
        && counts.uncounted.failed.is_empty()
        && counts.release.is_empty()
        && !pods.iter().any(|p| p.tracked)
}

/// How a settled, finishing Job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ending {
    /// SuccessCriteriaMet holds: Complete with its reason and message.
    Complete { reason: String, message: String },
    /// FailureTarget holds: Failed with its reason and message.
    Fail { reason: String, message: String },
}

/// Decides how a settled Job ends, from its interim condition (success first).
pub(super) fn ending(status: &v1::JobStatus) -> Option<Ending> {
    if let Some(c) = true_condition(status, SUCCESS_CRITERIA_MET) {
        Some(Ending::Complete {
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
    } else {
        true_condition(status, FAILURE_TARGET).map(|c| Ending::Fail {
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
    }
}

/// Writes the final condition of a settled, finishing Job into `draft`.
pub(super) fn finish(draft: &mut Draft) {
    match ending(&draft.status) {
        Some(Ending::Complete { reason, message }) => {
            draft.condition(COMPLETE, status::TRUE, &reason, &message);
            draft.status.completion_time = draft.now_s.clone();
            draft.event(false, "Completed", "Job completed");
        }
        Some(Ending::Fail { reason, message }) => {
            draft.condition(FAILED, status::TRUE, &reason, &message);
        }
        None => {}
    }
}

/// Writes what was counted and what the pods become into `status`.
pub(super) fn write_counters(
    status: &mut v1::JobStatus,
    job: &Settings<'_>,
    counts: Counts<'_>,
    changes: &Changes<'_>,
) {
    // `changes.delete` is sorted: a binary search per running pod.
    let (mut kept, mut ready) = (0, 0);
    for p in counts
        .active
        .iter()
        .filter(|p| changes.delete.binary_search(&p.name.as_str()).is_err())
    {
        kept += 1;
        ready += i32::from(p.ready);
    }
    status.succeeded = counts.succeeded;
    status.failed = counts.failed;
    status.consecutive_failures = counts.consecutive_failures;
    if let Some(t) = counts.last_failure_time {
        status.last_failure_time = t;
    }
    status.active = kept + changes.create.len() as i32;
    status.ready = Some(ready);
    status.terminating = Some((counts.terminating.len() + changes.delete.len()) as i32);
    status.uncounted_terminated_pods = Some(counts.uncounted);
    if job.indexed {
        status.completed_indexes = counts.completed.format();
    }
    if job.per_index.is_some() {
        status.failed_indexes = Some(counts.failed_indexes.format());
    }
    if finished(status).is_some() {
        status.active = 0;
        status.ready = Some(0);
        status.terminating = Some(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{now, pod};
    use crate::plan::{Settings, ts};
    use crate::pods::Phase;

    fn condition(ty: &str, value: &str, reason: &str) -> v1::Condition {
        v1::Condition {
            r#type: ty.into(),
            status: value.into(),
            reason: reason.into(),
            message: format!("{reason} message"),
            ..Default::default()
        }
    }

    /// Leaves something behind in the counts, the changes or the pods of a settled Job.
    type Leave<'p> = Box<dyn Fn(&mut Counts<'p>, &mut Changes<'p>, &mut Vec<PodFacts>) + 'p>;

    #[test]
    fn a_finishing_job_ends_only_when_nothing_is_left() {
        let running = pod("a", Phase::Running);
        let terminating = PodFacts {
            deleting: true,
            ..pod("t", Phase::Running)
        };
        let rows: Vec<(&str, Leave, bool)> = vec![
            ("nothing", Box::new(|_, _, _| {}), true),
            (
                "released pods only",
                Box::new(|_, _, pods| {
                    pods.push(PodFacts {
                        tracked: false,
                        ..pod("r", Phase::Succeeded)
                    })
                }),
                true,
            ),
            (
                "a pod still tracked",
                Box::new(|_, _, pods| pods.push(pod("s", Phase::Succeeded))),
                false,
            ),
            (
                "a pod to release",
                Box::new(|c, _, _| c.release = vec!["s"]),
                false,
            ),
            (
                "a success not counted yet",
                Box::new(|c, _, _| c.uncounted.succeeded = vec!["uid".into()]),
                false,
            ),
            (
                "a failure not counted yet",
                Box::new(|c, _, _| c.uncounted.failed = vec!["uid".into()]),
                false,
            ),
            (
                "a pod running",
                Box::new(|c, _, _| c.active = vec![&running]),
                false,
            ),
            (
                "a pod terminating",
                Box::new(|c, _, _| c.terminating = vec![&terminating]),
                false,
            ),
            (
                "a pod deleted now",
                Box::new(|_, d, _| d.delete = vec!["a"]),
                false,
            ),
        ];
        for (name, leave, want) in rows {
            let (mut counts, mut changes, mut pods) =
                (Counts::default(), Changes::default(), Vec::new());
            leave(&mut counts, &mut changes, &mut pods);
            assert_eq!(settled(&counts, &changes, &pods), want, "{name}");
        }
    }

    #[test]
    fn the_interim_condition_decides_the_ending() {
        let ending_of = |conditions: Vec<v1::Condition>| {
            ending(&v1::JobStatus {
                conditions,
                ..Default::default()
            })
        };
        let complete = |r: &str| {
            Some(Ending::Complete {
                reason: r.into(),
                message: format!("{r} message"),
            })
        };
        let fail = |r: &str| {
            Some(Ending::Fail {
                reason: r.into(),
                message: format!("{r} message"),
            })
        };
        let rows = [
            ("no interim condition", vec![], None),
            (
                "SuccessCriteriaMet",
                vec![condition(
                    SUCCESS_CRITERIA_MET,
                    status::TRUE,
                    "SuccessPolicy",
                )],
                complete("SuccessPolicy"),
            ),
            (
                "FailureTarget",
                vec![condition(FAILURE_TARGET, status::TRUE, "DeadlineExceeded")],
                fail("DeadlineExceeded"),
            ),
            (
                "a False interim condition does not count",
                vec![condition(FAILURE_TARGET, status::FALSE, "DeadlineExceeded")],
                None,
            ),
            (
                "success first",
                vec![
                    condition(FAILURE_TARGET, status::TRUE, "BackoffLimitExceeded"),
                    condition(SUCCESS_CRITERIA_MET, status::TRUE, "CompletionsReached"),
                ],
                complete("CompletionsReached"),
            ),
        ];
        for (name, conditions, want) in rows {
            assert_eq!(ending_of(conditions), want, "{name}");
        }
    }

    #[test]
    fn complete_records_the_time_and_an_event_failed_does_not() {
        let rows = [
            (
                condition(SUCCESS_CRITERIA_MET, status::TRUE, "CompletionsReached"),
                COMPLETE,
                true,
            ),
            (
                condition(FAILURE_TARGET, status::TRUE, "BackoffLimitExceeded"),
                FAILED,
                false,
            ),
        ];
        for (interim, ty, completed) in rows {
            let mut draft = Draft {
                status: v1::JobStatus {
                    conditions: vec![interim.clone()],
                    ..Default::default()
                },
                events: Vec::new(),
                now: now(),
                now_s: ts(now()),
            };
            finish(&mut draft);
            let last = draft.status.conditions.last().unwrap();
            assert_eq!(
                (
                    last.r#type.as_str(),
                    last.status.as_str(),
                    &last.reason,
                    &last.message
                ),
                (ty, status::TRUE, &interim.reason, &interim.message),
                "{ty}"
            );
            assert_eq!(!draft.status.completion_time.is_empty(), completed, "{ty}");
            assert_eq!(
                draft.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
                if completed { vec!["Completed"] } else { vec![] },
                "{ty}"
            );
        }
    }

    #[test]
    fn the_counters_say_what_the_pods_become() {
        let ready = PodFacts {
            ready: true,
            ..pod("ready", Phase::Running)
        };
        let pods = [
            ready.clone(),
            pod("a", Phase::Running),
            PodFacts {
                ready: true,
                ..pod("gone", Phase::Running)
            },
            PodFacts {
                deleting: true,
                ..pod("t", Phase::Running)
            },
        ];
        // (name, conditions, deleted, created) → (active, ready, terminating)
        let rows = [
            ("nothing changes", vec![], vec![], 0, (3, 2, Some(1))),
            ("one deleted", vec![], vec!["gone"], 0, (2, 1, Some(2))),
            ("two created", vec![], vec![], 2, (5, 2, Some(1))),
            (
                "finished: zero",
                vec![condition(COMPLETE, status::TRUE, "CompletionsReached")],
                vec![],
                0,
                (0, 0, Some(0)),
            ),
        ];
        let spec = v1::JobSpec::default();
        let job = Settings::of(&spec, "ns");
        for (name, conditions, delete, created, want) in rows {
            let counts = Counts {
                active: pods[..3].iter().collect(),
                terminating: vec![&pods[3]],
                ..Counts::default()
            };
            let changes = Changes {
                delete,
                create: vec![
                    crate::plan::NewPod {
                        index: None,
                        failures: Default::default()
                    };
                    created
                ],
                retry_wait: None,
            };
            let mut status = v1::JobStatus {
                conditions,
                ..Default::default()
            };
            write_counters(&mut status, &job, counts, &changes);
            assert_eq!(
                (status.active, status.ready.unwrap(), status.terminating),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn counted_pods_and_indexes_are_written_only_where_they_apply() {
        let rows = [
            ("not Indexed", "", None, ("stored", None)),
            ("Indexed", "Indexed", None, ("0,1", None)),
            ("Indexed, per index", "Indexed", Some(1), ("0,1", Some("2"))),
        ];
        for (name, mode, per_index, want) in rows {
            let spec = v1::JobSpec {
                completion_mode: mode.into(),
                completions: Some(4),
                backoff_limit_per_index: per_index,
                ..Default::default()
            };
            let job = Settings::of(&spec, "ns");
            let counts = Counts {
                succeeded: 2,
                failed: 3,
                consecutive_failures: 1,
                last_failure_time: Some("then".into()),
                completed: crate::indexes::Indexes::parse("0,1", 4),
                failed_indexes: crate::indexes::Indexes::parse("2", 4),
                uncounted: v1::UncountedTerminatedPods {
                    succeeded: vec!["s".into()],
                    failed: vec![],
                },
                ..Counts::default()
            };
            let mut status = v1::JobStatus {
                completed_indexes: "stored".into(),
                ..Default::default()
            };
            write_counters(&mut status, &job, counts, &Changes::default());
            assert_eq!(
                (status.succeeded, status.failed, status.consecutive_failures),
                (2, 3, 1)
            );
            assert_eq!(status.last_failure_time, "then");
            assert_eq!(
                status.uncounted_terminated_pods.unwrap().succeeded,
                ["s"],
                "{name}"
            );
            assert_eq!(
                (
                    status.completed_indexes.as_str(),
                    status.failed_indexes.as_deref()
                ),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn a_finished_job_releases_every_tracked_pod_and_counts_the_terminating() {
        let pods = [
            pod("tracked", Phase::Running),
            PodFacts {
                tracked: false,
                ..pod("released", Phase::Succeeded)
            },
            PodFacts {
                deleting: true,
                ..pod("terminating", Phase::Running)
            },
            PodFacts {
                deleting: true,
                ..pod("failed", Phase::Failed)
            },
        ];
        let stored = v1::JobStatus {
            active: 2,
            ready: Some(1),
            succeeded: 1,
            ..Default::default()
        };
        let plan = let_go(&stored, &pods);
        assert_eq!(plan.release, ["tracked", "terminating", "failed"]);
        assert!(plan.create.is_empty() && plan.delete.is_empty() && plan.events.is_empty());
        assert_eq!(
            (
                plan.status.active,
                plan.status.ready,
                plan.status.terminating,
                plan.status.succeeded
            ),
            (0, Some(0), Some(1), 1)
        );
    }
}
