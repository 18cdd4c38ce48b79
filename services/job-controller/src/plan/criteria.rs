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
mod rule {
    pub const FAIL_JOB: &str = "FailJob";
    pub const FAIL_INDEX: &str = "FailIndex";
    pub const IGNORE: &str = "Ignore";
    pub const COUNT: &str = "Count";
    pub const IN: &str = "In";
    pub const NOT_IN: &str = "NotIn";
}

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
