//! Success and failure criteria of a running Job, in Kubernetes' precedence: a
//! podFailurePolicy FailJob rule, the backoffLimit (with OnFailure's container restarts),
//! activeDeadlineSeconds, maxFailedIndexes, failed indexes; then a successPolicy rule,
//! then completions. A criterion met sets the interim condition (FailureTarget or
//! SuccessCriteriaMet); [`super::finish`] turns it into Failed or Complete later.

use std::time::Duration;

use bosun_api::v1;
use bosun_api::vocab::status;
use chrono::{DateTime, Utc};

use super::count::Counts;
use super::gates::Stage;
use super::{Draft, FAILURE_TARGET, SUCCESS_CRITERIA_MET, Settings, parse_time};
use crate::indexes::Indexes;
use crate::pods::PodFacts;

/// What the podFailurePolicy says about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureAction {
    /// No rule matched, or `Count`: count it against backoffLimit.
    Count,
    /// Fail the Job, with the message Kubernetes writes.
    FailJob(String),
    FailIndex,
    Ignore,
}

/// The podFailurePolicy's words.
use bosun_api::vocab::job::rule;

/// Evaluates the rules in order; the first match wins (KUBERNETES.md A.1).
pub fn failure_action(
    policy: Option<&v1::PodFailurePolicy>,
    namespace: &str,
    pod: &PodFacts,
) -> FailureAction {
    let Some(policy) = policy else {
        return FailureAction::Count;
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        let matched: Option<String> = if let Some(req) = &rule.on_exit_codes {
            pod.exit_codes
                .iter()
                .filter(|e| req.container_name.as_ref().is_none_or(|c| *c == e.container))
                .find(|e| match req.operator.as_str() {
                    rule::IN => req.values.contains(&e.code),
                    rule::NOT_IN => !req.values.contains(&e.code),
                    _ => false,
                })
                .map(|e| {
                    format!(
                        "Container {} for pod {namespace}/{} failed with exit code {} matching {} rule at index {i}",
                        e.container, pod.name, e.code, rule.action
                    )
                })
        } else {
            rule.on_pod_conditions
                .iter()
                .find(|p| {
                    let want = if p.status.is_empty() {
                        status::TRUE
                    } else {
                        &p.status
                    };
                    pod.conditions
                        .iter()
                        .any(|(t, s)| *t == p.r#type && s == want)
                })
                .map(|p| {
                    format!(
                        "Pod {namespace}/{} has condition {} matching {} rule at index {i}",
                        pod.name, p.r#type, rule.action
                    )
                })
        };
        let Some(message) = matched else { continue };
        match rule.action.as_str() {
            rule::FAIL_JOB => return FailureAction::FailJob(message),
            rule::FAIL_INDEX => return FailureAction::FailIndex,
            rule::IGNORE => return FailureAction::Ignore,
            rule::COUNT => return FailureAction::Count,
            // An action this version does not know: clients skip the rule.
            _ => continue,
        }
    }
    FailureAction::Count
}

/// Whether a success policy rule holds; returns the index of the first that does.
pub fn success_rule_met(
    policy: Option<&v1::SuccessPolicy>,
    completed: &Indexes,
    completions: i32,
) -> Option<usize> {
    let policy = policy?;
    policy.rules.iter().position(|rule| {
        let set = rule
            .succeeded_indexes
            .as_deref()
            .map(|s| Indexes::parse(s, completions));
        match (&set, rule.succeeded_count) {
            (Some(set), Some(n)) => {
                set.iter().filter(|i| completed.contains(*i)).count() >= n as usize
            }
            (Some(set), None) => set.iter().all(|i| completed.contains(i)),
            (None, Some(n)) => completed.len() >= n as usize,
            (None, None) => false,
        }
    })
}

/// Why the Job fails: the FailureTarget reason (and event reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// A FailJob rule matched, with Kubernetes' message.
    PodFailurePolicy(String),
    BackoffLimitExceeded,
    DeadlineExceeded,
    MaxFailedIndexesExceeded,
    /// Every index is done and some failed.
    FailedIndexes,
}

impl Failure {
    fn reason(&self) -> &'static str {
        match self {
            Failure::PodFailurePolicy(_) => "PodFailurePolicy",
            Failure::BackoffLimitExceeded => "BackoffLimitExceeded",
            Failure::DeadlineExceeded => "DeadlineExceeded",
            Failure::MaxFailedIndexesExceeded => "MaxFailedIndexesExceeded",
            Failure::FailedIndexes => "FailedIndexes",
        }
    }

    fn message(self) -> String {
        match self {
            Failure::PodFailurePolicy(message) => message,
            Failure::BackoffLimitExceeded => "Job has reached the specified backoff limit".into(),
            Failure::DeadlineExceeded => "Job was active longer than specified deadline".into(),
            Failure::MaxFailedIndexesExceeded => {
                "Job has exceeded the specified maximal number of failed indexes".into()
            }
            Failure::FailedIndexes => "Job has failed indexes".into(),
        }
    }
}

/// Why the Job succeeds: the SuccessCriteriaMet reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Success {
    /// The successPolicy rule at this index holds.
    SuccessPolicy(usize),
    CompletionsReached,
}

impl Success {
    fn reason(self) -> &'static str {
        match self {
            Success::SuccessPolicy(_) => "SuccessPolicy",
            Success::CompletionsReached => "CompletionsReached",
        }
    }

    fn message(self) -> String {
        match self {
            Success::SuccessPolicy(rule) => format!("Matched rules at index {rule}"),
            Success::CompletionsReached => "Reached expected number of succeeded pods".into(),
        }
    }
}

/// What the criteria say about a running Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    Fail(Failure),
    Succeed(Success),
    /// Neither yet; look again at the deadline, if there is one.
    Continue {
        deadline: Option<DateTime<Utc>>,
    },
}

/// When activeDeadlineSeconds runs out, counted from `start_time`.
pub(super) fn deadline(spec: &v1::JobSpec, start_time: &str) -> Option<DateTime<Utc>> {
    spec.active_deadline_seconds
        .zip(parse_time(start_time))
        .map(|(s, start)| start + chrono::Duration::seconds(s))
}

/// The first failure criterion met, in Kubernetes' precedence.
pub(super) fn failure(
    job: &Settings<'_>,
    counts: &Counts<'_>,
    deadline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Failure> {
    let restarts: i32 = counts.active.iter().map(|p| p.restarts).sum();
    let failed = &counts.failed_indexes;
    if let Some(message) = &counts.fail_job {
        Some(Failure::PodFailurePolicy(message.clone()))
    } else if counts.failed_total() > job.backoff_limit
        || (job.on_failure && restarts > 0 && restarts >= job.backoff_limit.max(1))
    {
        Some(Failure::BackoffLimitExceeded)
    } else if deadline.is_some_and(|d| now >= d) {
        Some(Failure::DeadlineExceeded)
    } else if job.indexed
        && job
            .spec
            .max_failed_indexes
            .is_some_and(|m| failed.len() > m.max(0) as usize)
    {
        Some(Failure::MaxFailedIndexesExceeded)
    } else if job.indexed
        && !failed.is_empty()
        && (0..job.limit).all(|i| counts.completed.contains(i) || failed.contains(i))
    {
        Some(Failure::FailedIndexes)
    } else {
        None
    }
}

/// The first success criterion met: a successPolicy rule (Indexed), then completions.
pub(super) fn success(job: &Settings<'_>, counts: &Counts<'_>) -> Option<Success> {
    if job.indexed
        && let Some(rule) = success_rule_met(
            job.spec.success_policy.as_ref(),
            &counts.completed,
            job.limit,
        )
    {
        return Some(Success::SuccessPolicy(rule));
    }
    let succeeded = counts.succeeded_total(job);
    let reached = match job.completions {
        Some(c) if job.indexed => counts.completed.len() as i32 >= c,
        Some(c) => succeeded >= c,
        None => succeeded >= 1 && counts.active.is_empty(),
    };
    reached.then_some(Success::CompletionsReached)
}

/// Failure first, then success.
pub(super) fn verdict(
    job: &Settings<'_>,
    counts: &Counts<'_>,
    start_time: &str,
    now: DateTime<Utc>,
) -> Verdict {
    let deadline = deadline(job.spec, start_time);
    if let Some(f) = failure(job, counts, deadline, now) {
        Verdict::Fail(f)
    } else if let Some(s) = success(job, counts) {
        Verdict::Succeed(s)
    } else {
        Verdict::Continue { deadline }
    }
}

/// Writes the interim condition (and the failure's event) of `verdict` into `draft`; returns
/// where the Job then stands and when to look again (at the deadline).
pub(super) fn apply(verdict: Verdict, draft: &mut Draft) -> (Stage, Option<Duration>) {
    match verdict {
        Verdict::Fail(failure) => {
            let reason = failure.reason();
            let message = failure.message();
            draft.condition(FAILURE_TARGET, status::TRUE, reason, &message);
            draft.event(true, reason, message);
            (Stage::Finishing, None)
        }
        Verdict::Succeed(success) => {
            let message = success.message();
            draft.condition(
                SUCCESS_CRITERIA_MET,
                status::TRUE,
                success.reason(),
                &message,
            );
            (Stage::Finishing, None)
        }
        Verdict::Continue { deadline } => {
            let requeue = deadline
                .map(|d| (d - draft.now).to_std().unwrap_or_default() + Duration::from_millis(1));
            (Stage::Running, requeue)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::INDEXED;
    use crate::plan::tests::{now, pod};
    use crate::plan::ts;
    use crate::pods::{ExitCode, Phase};
    use bosun_api::vocab::condition;

    /// A change to the spec a row makes.
    type SpecEdit = fn(&mut v1::JobSpec);

    fn ago(s: i64) -> DateTime<Utc> {
        now() - chrono::Duration::seconds(s)
    }

    #[test]
    fn the_first_matching_failure_policy_rule_decides() {
        let exits = |req: Option<(&str, &str, Vec<i32>)>| {
            req.map(
                |(container, operator, values)| v1::PodFailurePolicyOnExitCodesRequirement {
                    container_name: (!container.is_empty()).then(|| container.to_string()),
                    operator: operator.into(),
                    values,
                },
            )
        };
        let on_exit = |action: &str, container: &str, operator: &str, values: Vec<i32>| {
            v1::PodFailurePolicyRule {
                action: action.into(),
                on_exit_codes: exits(Some((container, operator, values))),
                on_pod_conditions: vec![],
            }
        };
        let on_condition = |action: &str, ty: &str, value: &str| v1::PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: None,
            on_pod_conditions: vec![v1::PodFailurePolicyOnPodConditionsPattern {
                r#type: ty.into(),
                status: value.into(),
            }],
        };
        let fail_job = |m: &str| FailureAction::FailJob(m.into());
        let exit_msg =
            "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0";
        let rows: Vec<(&str, Option<Vec<v1::PodFailurePolicyRule>>, FailureAction)> = vec![
            ("no policy: count", None, FailureAction::Count),
            (
                "exit code In: FailJob with Kubernetes' message",
                Some(vec![on_exit("FailJob", "", "In", vec![42])]),
                fail_job(exit_msg),
            ),
            (
                "exit code NotIn",
                Some(vec![on_exit("Ignore", "", "NotIn", vec![1, 2])]),
                FailureAction::Ignore,
            ),
            (
                "exit code not matched: count",
                Some(vec![on_exit("FailJob", "", "In", vec![1])]),
                FailureAction::Count,
            ),
            (
                "another container's exit code: no match",
                Some(vec![on_exit("FailJob", "sidecar", "In", vec![42])]),
                FailureAction::Count,
            ),
            (
                "an unknown operator never matches",
                Some(vec![on_exit("FailJob", "", "Between", vec![42])]),
                FailureAction::Count,
            ),
            (
                "a pod condition, status defaulting to True",
                Some(vec![on_condition(
                    "FailIndex",
                    condition::DISRUPTION_TARGET,
                    "",
                )]),
                FailureAction::FailIndex,
            ),
            (
                "a pod condition with another status: no match",
                Some(vec![on_condition(
                    "Ignore",
                    condition::DISRUPTION_TARGET,
                    status::FALSE,
                )]),
                FailureAction::Count,
            ),
            (
                "the first match wins",
                Some(vec![
                    on_exit("Count", "", "In", vec![42]),
                    on_exit("FailJob", "", "In", vec![42]),
                ]),
                FailureAction::Count,
            ),
            (
                "an unknown action: the rule is skipped",
                Some(vec![
                    on_exit("Restart", "", "In", vec![42]),
                    on_condition("Ignore", condition::DISRUPTION_TARGET, status::TRUE),
                ]),
                FailureAction::Ignore,
            ),
        ];
        let failed = PodFacts {
            exit_codes: vec![ExitCode {
                container: "main".into(),
                code: 42,
            }],
            conditions: vec![(
                bosun_api::vocab::condition::DISRUPTION_TARGET.to_string(),
                status::TRUE.to_string(),
            )]
            .into(),
            ..pod("p", Phase::Failed)
        };
        for (name, rules, want) in rows {
            let policy = rules.map(|rules| v1::PodFailurePolicy { rules });
            assert_eq!(
                failure_action(policy.as_ref(), "ns", &failed),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn success_policy_rules_count_completed_indexes() {
        let rule = |indexes: Option<&str>, count: Option<i32>| v1::SuccessPolicyRule {
            succeeded_indexes: indexes.map(String::from),
            succeeded_count: count,
        };
        // completed "0-2,5" of 10
        let rows = [
            ("no rules", vec![], None),
            ("indexes all done", vec![rule(Some("0-2"), None)], Some(0)),
            ("indexes not all done", vec![rule(Some("2-3"), None)], None),
            (
                "enough of the indexes",
                vec![rule(Some("2-5"), Some(2))],
                Some(0),
            ),
            (
                "too few of the indexes",
                vec![rule(Some("3-6"), Some(2))],
                None,
            ),
            ("a count alone", vec![rule(None, Some(4))], Some(0)),
            ("an empty rule never holds", vec![rule(None, None)], None),
            (
                "the first rule that holds",
                vec![rule(None, Some(5)), rule(Some("5"), None)],
                Some(1),
            ),
        ];
        let completed = Indexes::parse("0-2,5", 10);
        for (name, rules, want) in rows {
            let policy = v1::SuccessPolicy { rules };
            assert_eq!(
                success_rule_met(Some(&policy), &completed, 10),
                want,
                "{name}"
            );
        }
    }

    fn spec(f: fn(&mut v1::JobSpec)) -> v1::JobSpec {
        let mut spec = v1::JobSpec {
            completions: Some(4),
            parallelism: Some(2),
            backoff_limit: Some(2),
            ..Default::default()
        };
        f(&mut spec);
        spec
    }

    fn on_failure(s: &mut v1::JobSpec) {
        s.template = Some(v1::PodTemplateSpec {
            metadata: None,
            spec: Some(v1::PodSpec {
                restart_policy: bosun_api::vocab::policy::ON_FAILURE.into(),
                ..Default::default()
            }),
        });
    }

    fn indexed(s: &mut v1::JobSpec) {
        s.completion_mode = INDEXED.into();
    }

    /// The facts a criterion reads, as a row of the tables below.
    #[derive(Default)]
    struct Facts {
        failed: i32,
        uncounted_failed: usize,
        succeeded: i32,
        restarts: Vec<i32>,
        fail_job: bool,
        completed: &'static str,
        failed_indexes: &'static str,
    }

    fn counts<'a>(f: &Facts, running: &'a [PodFacts]) -> Counts<'a> {
        Counts {
            failed: f.failed,
            succeeded: f.succeeded,
            uncounted: v1::UncountedTerminatedPods {
                succeeded: vec![],
                failed: vec!["uid".to_string(); f.uncounted_failed],
            },
            fail_job: f.fail_job.then(|| "rule 0".to_string()),
            completed: Indexes::parse(f.completed, 4),
            failed_indexes: Indexes::parse(f.failed_indexes, 4),
            active: running.iter().collect(),
            ..Counts::default()
        }
    }

    fn running(f: &Facts) -> Vec<PodFacts> {
        f.restarts
            .iter()
            .map(|&restarts| PodFacts {
                restarts,
                ..pod("r", Phase::Running)
            })
            .collect()
    }

    /// (name, spec, facts, deadline, failure)
    type FailureRow = (
        &'static str,
        SpecEdit,
        Facts,
        Option<DateTime<Utc>>,
        Option<Failure>,
    );

    #[test]
    fn failure_criteria_apply_in_kubernetes_precedence() {
        use Failure::*;
        let passed = Some(ago(1));
        let ahead = Some(now() + chrono::Duration::seconds(1));
        let rows: Vec<FailureRow> = vec![
            ("nothing failed", |_| {}, Facts::default(), None, None),
            (
                "a FailJob rule wins over everything",
                |_| {},
                Facts {
                    fail_job: true,
                    failed: 9,
                    ..Facts::default()
                },
                passed,
                Some(PodFailurePolicy("rule 0".into())),
            ),
            (
                "failures at the backoff limit: not yet",
                |_| {},
                Facts {
                    failed: 2,
                    ..Facts::default()
                },
                None,
                None,
            ),
            (
                "failures past the backoff limit",
                |_| {},
                Facts {
                    failed: 2,
                    uncounted_failed: 1,
                    ..Facts::default()
                },
                None,
                Some(BackoffLimitExceeded),
            ),
            (
                "restarts count only with OnFailure",
                |_| {},
                Facts {
                    restarts: vec![1, 2],
                    ..Facts::default()
                },
                None,
                None,
            ),
            (
                "OnFailure: restarts of running pods reach the limit",
                on_failure,
                Facts {
                    restarts: vec![1, 1],
                    ..Facts::default()
                },
                None,
                Some(BackoffLimitExceeded),
            ),
            (
                "OnFailure: restarts below the limit",
                on_failure,
                Facts {
                    restarts: vec![1, 0],
                    ..Facts::default()
                },
                None,
                None,
            ),
            (
                "OnFailure with backoffLimit 0: the first restart",
                |s| {
                    on_failure(s);
                    s.backoff_limit = Some(0);
                },
                Facts {
                    restarts: vec![1],
                    ..Facts::default()
                },
                None,
                Some(BackoffLimitExceeded),
            ),
            (
                "the backoff limit wins over the deadline",
                |_| {},
                Facts {
                    failed: 3,
                    ..Facts::default()
                },
                passed,
                Some(BackoffLimitExceeded),
            ),
            (
                "the deadline is now",
                |_| {},
                Facts::default(),
                Some(now()),
                Some(DeadlineExceeded),
            ),
            (
                "the deadline passed",
                |_| {},
                Facts::default(),
                passed,
                Some(DeadlineExceeded),
            ),
            ("the deadline ahead", |_| {}, Facts::default(), ahead, None),
            (
                "more failed indexes than maxFailedIndexes",
                |s| {
                    indexed(s);
                    s.max_failed_indexes = Some(1);
                },
                Facts {
                    failed_indexes: "0,1",
                    ..Facts::default()
                },
                None,
                Some(MaxFailedIndexesExceeded),
            ),
            (
                "as many failed indexes as maxFailedIndexes, others still to run",
                |s| {
                    indexed(s);
                    s.max_failed_indexes = Some(2);
                },
                Facts {
                    failed_indexes: "0,1",
                    ..Facts::default()
                },
                None,
                None,
            ),
            (
                "every index done, one failed",
                indexed,
                Facts {
                    completed: "0,2,3",
                    failed_indexes: "1",
                    ..Facts::default()
                },
                None,
                Some(FailedIndexes),
            ),
            (
                "every index done, none failed: no failure",
                indexed,
                Facts {
                    completed: "0-3",
                    ..Facts::default()
                },
                None,
                None,
            ),
        ];
        for (name, f, facts, deadline, want) in rows {
            let spec = spec(f);
            let job = Settings::of(&spec, "ns");
            let pods = running(&facts);
            assert_eq!(
                failure(&job, &counts(&facts, &pods), deadline, now()),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn success_criteria_policy_first_then_completions() {
        use Success::*;
        let rows: Vec<(&str, SpecEdit, Facts, Option<Success>)> = vec![
            (
                "none yet",
                |_| {},
                Facts {
                    succeeded: 3,
                    ..Facts::default()
                },
                None,
            ),
            (
                "completions reached",
                |_| {},
                Facts {
                    succeeded: 4,
                    ..Facts::default()
                },
                Some(CompletionsReached),
            ),
            (
                "a work queue: one success and nothing running",
                |s| s.completions = None,
                Facts {
                    succeeded: 1,
                    ..Facts::default()
                },
                Some(CompletionsReached),
            ),
            (
                "a work queue: one success, pods still running",
                |s| s.completions = None,
                Facts {
                    succeeded: 1,
                    restarts: vec![0],
                    ..Facts::default()
                },
                None,
            ),
            (
                "indexed: every index completed",
                indexed,
                Facts {
                    completed: "0-3",
                    ..Facts::default()
                },
                Some(CompletionsReached),
            ),
            (
                "indexed: the counter does not count, the indexes do",
                indexed,
                Facts {
                    succeeded: 4,
                    completed: "0-2",
                    ..Facts::default()
                },
                None,
            ),
            (
                "a success policy rule",
                |s| {
                    indexed(s);
                    s.success_policy = Some(v1::SuccessPolicy {
                        rules: vec![v1::SuccessPolicyRule {
                            succeeded_indexes: Some("1".into()),
                            succeeded_count: None,
                        }],
                    });
                },
                Facts {
                    completed: "1",
                    ..Facts::default()
                },
                Some(SuccessPolicy(0)),
            ),
            (
                "a success policy is for Indexed Jobs only",
                |s| {
                    s.success_policy = Some(v1::SuccessPolicy {
                        rules: vec![v1::SuccessPolicyRule {
                            succeeded_indexes: None,
                            succeeded_count: Some(1),
                        }],
                    });
                },
                Facts {
                    succeeded: 2,
                    completed: "1,2",
                    ..Facts::default()
                },
                None,
            ),
        ];
        for (name, f, facts, want) in rows {
            let spec = spec(f);
            let job = Settings::of(&spec, "ns");
            let pods = running(&facts);
            assert_eq!(success(&job, &counts(&facts, &pods)), want, "{name}");
        }
    }

    #[test]
    fn the_deadline_counts_from_the_start_time() {
        let rows = [
            ("no deadline", None, "2026-01-01T00:00:00Z", None),
            ("not started", Some(30), "", None),
            ("started", Some(30), "2026-01-01T00:00:00Z", Some(ago(30))),
        ];
        for (name, seconds, start, want) in rows {
            let spec = v1::JobSpec {
                active_deadline_seconds: seconds,
                ..Default::default()
            };
            assert_eq!(deadline(&spec, start), want, "{name}");
        }
    }

    #[test]
    fn a_verdict_sets_the_interim_condition_or_looks_again_at_the_deadline() {
        let ms = Duration::from_millis;
        // (name, verdict) → (stage, condition (type, reason), warning event, requeue)
        let rows = [
            (
                "a failure: FailureTarget and a warning",
                Verdict::Fail(Failure::DeadlineExceeded),
                Stage::Finishing,
                Some((FAILURE_TARGET, "DeadlineExceeded")),
                Some("DeadlineExceeded"),
                None,
            ),
            (
                "a success: SuccessCriteriaMet, no event yet",
                Verdict::Succeed(Success::SuccessPolicy(1)),
                Stage::Finishing,
                Some((SUCCESS_CRITERIA_MET, "SuccessPolicy")),
                None,
                None,
            ),
            (
                "neither: look again just after the deadline",
                Verdict::Continue {
                    deadline: Some(now() + chrono::Duration::seconds(2)),
                },
                Stage::Running,
                None,
                None,
                Some(ms(2001)),
            ),
            (
                "neither, no deadline: wait for a change",
                Verdict::Continue { deadline: None },
                Stage::Running,
                None,
                None,
                None,
            ),
        ];
        for (name, verdict, stage, condition, event, requeue) in rows {
            let mut draft = Draft {
                status: v1::JobStatus::default(),
                events: Vec::new(),
                now: now(),
                now_s: ts(now()),
            };
            assert_eq!(apply(verdict, &mut draft), (stage, requeue), "{name}");
            assert_eq!(
                draft
                    .status
                    .conditions
                    .iter()
                    .map(|c| (c.r#type.as_str(), c.reason.as_str()))
                    .next(),
                condition,
                "{name}"
            );
            assert!(
                draft
                    .status
                    .conditions
                    .iter()
                    .all(|c| c.status == status::TRUE),
                "{name}"
            );
            assert_eq!(
                draft.events.iter().map(|e| (e.warning, e.reason)).next(),
                event.map(|r| (true, r)),
                "{name}"
            );
        }
    }
}
