//! Counting: what the pods and the stored status say, before anything is decided — steps 1
//! and 3 of the exact-counting protocol (module docs of [`super`]), the completed and failed
//! indexes, what a replacement for each index inherits, the retry delay's inputs, and which
//! pods still run. Everything here borrows from the inputs; only the uid lists are owned.

use std::collections::{BTreeMap, HashSet};

use bosun_api::v1;
use chrono::{DateTime, SecondsFormat, Utc};

use super::criteria::{FailureAction, failure_action};
use super::{Settings, parse_time};
use crate::indexes::Indexes;
use crate::pods::{IndexFailures, Phase, PodFacts};

/// What one pod means for the counters this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PodOutcome {
    /// Released already (counted before), or still running: nothing to record or release.
    Nothing,
    /// Its uid is in `uncountedTerminatedPods` already (step 1 is done): release it (step 2).
    Release,
    /// Succeeded: record it (step 1), then release it.
    Succeeded,
    /// Failed, or deleted before it finished where a deletion is a failure: record it as the
    /// podFailurePolicy says, then release it.
    Failed(FailureAction),
}

/// Decides what `pod` means for the counters; `recorded` holds the uids the stored status
/// lists as uncounted.
pub(super) fn pod_outcome(
    job: &Settings<'_>,
    recorded: &HashSet<&str>,
    pod: &PodFacts,
) -> PodOutcome {
    if !pod.tracked {
        return PodOutcome::Nothing;
    }
    if recorded.contains(pod.uid.as_str()) {
        return PodOutcome::Release;
    }
    match pod.phase {
        Phase::Succeeded => PodOutcome::Succeeded,
        Phase::Failed => PodOutcome::Failed(failure_action(job.failure_policy, job.namespace, pod)),
        // Deleted before it finished: a failure at once, unless replacements wait for
        // Failed (then it is counted when its phase says so).
        Phase::Pending | Phase::Running if pod.deleting && !job.only_failed => {
            PodOutcome::Failed(FailureAction::Count)
        }
        Phase::Pending | Phase::Running => PodOutcome::Nothing,
    }
}

/// What a replacement for `pod`'s index inherits from it (backoffLimitPerIndex): its counts,
/// plus its own failure when it failed. `None` for a pod without an index.
pub(super) fn inherited(job: &Settings<'_>, pod: &PodFacts) -> Option<(i32, IndexFailures)> {
    let index = pod.index?;
    let (mut failures, mut ignored) = (pod.index_failures, pod.index_ignored_failures);
    if pod.phase == Phase::Failed {
        match failure_action(job.failure_policy, job.namespace, pod) {
            FailureAction::Ignore => ignored += 1,
            _ => failures += 1,
        }
    }
    Some((index, IndexFailures { failures, ignored }))
}

/// What the pods and the stored status say.
#[derive(Debug, Default)]
pub(super) struct Counts<'a> {
    /// Pods to release (step 2), in the order of the inputs.
    pub release: Vec<&'a str>,
    /// `uncountedTerminatedPods` after this round: new uids in, settled uids out.
    pub uncounted: v1::UncountedTerminatedPods,
    /// `status.succeeded` after the settled uids moved in (Indexed: completed indexes).
    pub succeeded: i32,
    /// `status.failed` after the settled uids moved in.
    pub failed: i32,
    pub completed: Indexes,
    pub failed_indexes: Indexes,
    /// A podFailurePolicy FailJob rule matched this message.
    pub fail_job: Option<String>,
    /// Failed pods in a row (a newer success resets it): the retry delay's exponent.
    pub consecutive_failures: i32,
    /// The newest failure: the retry delay counts from it.
    pub last_failure: Option<DateTime<Utc>>,
    /// The new `lastFailureTime` when a failure newer than the stored one was seen.
    pub last_failure_time: Option<String>,
    /// What a replacement for each index inherits.
    pub index_failures: BTreeMap<i32, IndexFailures>,
    /// Pods not finished and not being deleted, oldest first.
    pub active: Vec<&'a PodFacts>,
    /// Pods not finished and being deleted.
    pub terminating: Vec<&'a PodFacts>,
}

impl Counts<'_> {
    /// Successes, counted or not (Indexed: completed indexes).
    pub fn succeeded_total(&self, job: &Settings<'_>) -> i32 {
        if job.indexed {
            self.completed.len() as i32
        } else {
            self.succeeded + self.uncounted.succeeded.len() as i32
        }
    }

    /// Failures, counted or not.
    pub fn failed_total(&self) -> i32 {
        self.failed + self.uncounted.failed.len() as i32
    }
}

/// Counts the pods against the stored status.
pub(super) fn count<'a>(
    job: &Settings<'_>,
    stored: &v1::JobStatus,
    pods: &'a [PodFacts],
    now: DateTime<Utc>,
) -> Counts<'a> {
    let mut counts = Counts {
        uncounted: stored.uncounted_terminated_pods.clone().unwrap_or_default(),
        succeeded: stored.succeeded,
        failed: stored.failed,
        completed: Indexes::parse(&stored.completed_indexes, job.limit),
        failed_indexes: Indexes::parse(stored.failed_indexes.as_deref().unwrap_or(""), job.limit),
        ..Counts::default()
    };
    let recorded: HashSet<&str> = stored
        .uncounted_terminated_pods
        .iter()
        .flat_map(|u| u.succeeded.iter().chain(u.failed.iter()))
        .map(String::as_str)
        .collect();
    // Step 1 (and 2 for pods recorded before), pod by pod: an index completed or failed by
    // an earlier pod decides what a later one of the same index adds.
    let mut news = News::default();
    for pod in pods {
        if let Some((i, inherit)) = inherited(job, pod) {
            let e = counts.index_failures.entry(i).or_default();
            e.failures = e.failures.max(inherit.failures);
            e.ignored = e.ignored.max(inherit.ignored);
        }
        let outcome = pod_outcome(job, &recorded, pod);
        record(&mut counts, &mut news, job, pod, outcome, now);
    }
    // Step 3.
    let (succeeded, failed) = settle(&mut counts.uncounted, &recorded, pods);
    if job.indexed {
        counts.succeeded = counts.completed.len() as i32;
    } else {
        counts.succeeded += succeeded;
    }
    counts.failed += failed;
    let stored_last = parse_time(&stored.last_failure_time);
    (counts.consecutive_failures, counts.last_failure) =
        failures_in_a_row(stored.consecutive_failures, stored_last, &news);
    if counts.last_failure != stored_last {
        // Microseconds: the retry delay counts from this, and a time cut to the second
        // would let the next pod start up to a second early.
        counts.last_failure_time = counts
            .last_failure
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true));
    }
    counts.active = pods
        .iter()
        .filter(|p| !p.finished() && !p.deleting)
        .collect();
    counts
        .active
        .sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
    counts.terminating = pods
        .iter()
        .filter(|p| !p.finished() && p.deleting)
        .collect();
    counts
}

/// What this round saw finish, for the retry delay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct News {
    pub newest_success: Option<DateTime<Utc>>,
    pub newest_failure: Option<DateTime<Utc>>,
    /// Failures recorded this round (ignored ones are not).
    pub failures: i32,
}

/// Carries out one pod's outcome: step 1 into the lists and indexes, step 2 into `release`.
fn record<'a>(
    counts: &mut Counts<'a>,
    news: &mut News,
    job: &Settings<'_>,
    pod: &'a PodFacts,
    outcome: PodOutcome,
    now: DateTime<Utc>,
) {
    let in_range = |i: &i32| *i < job.limit;
    match outcome {
        PodOutcome::Nothing => return,
        PodOutcome::Release => {}
        PodOutcome::Succeeded => {
            if !job.indexed {
                counts.uncounted.succeeded.push(pod.uid.clone());
            } else if let Some(i) = pod
                .index
                .filter(|i| in_range(i) && !counts.failed_indexes.contains(*i))
            {
                counts.completed.insert(i);
            }
            news.newest_success = news.newest_success.max(pod.finished_at.or(Some(now)));
        }
        PodOutcome::Failed(action) => {
            let counted = match action {
                FailureAction::Ignore => false,
                FailureAction::FailJob(message) => {
                    counts.fail_job.get_or_insert(message);
                    true
                }
                FailureAction::FailIndex => {
                    if let Some(i) = pod.index.filter(in_range) {
                        counts.failed_indexes.insert(i);
                    }
                    true
                }
                FailureAction::Count => {
                    // backoffLimitPerIndex: this failure may be one too many for its index.
                    if let (true, Some(max), Some(i)) = (job.indexed, job.per_index, pod.index)
                        && pod.index_failures + 1 > max
                        && in_range(&i)
                        && !counts.completed.contains(i)
                    {
                        counts.failed_indexes.insert(i);
                    }
                    true
                }
            };
            if counted {
                counts.uncounted.failed.push(pod.uid.clone());
                news.failures += 1;
                news.newest_failure = news.newest_failure.max(pod.finished_at.or(Some(now)));
            }
        }
    }
    counts.release.push(&pod.name);
}

/// Step 3: the uids recorded before (`recorded`) whose pods are released or gone leave the
/// lists; returns how many successes and failures moved into the counters.
pub(super) fn settle(
    uncounted: &mut v1::UncountedTerminatedPods,
    recorded: &HashSet<&str>,
    pods: &[PodFacts],
) -> (i32, i32) {
    if recorded.is_empty() {
        return (0, 0);
    }
    let still_tracked: HashSet<&str> = pods
        .iter()
        .filter(|p| p.tracked)
        .map(|p| p.uid.as_str())
        .collect();
    let settled =
        |uid: &String| recorded.contains(uid.as_str()) && !still_tracked.contains(uid.as_str());
    let before = (uncounted.succeeded.len(), uncounted.failed.len());
    uncounted.succeeded.retain(|uid| !settled(uid));
    uncounted.failed.retain(|uid| !settled(uid));
    (
        (before.0 - uncounted.succeeded.len()) as i32,
        (before.1 - uncounted.failed.len()) as i32,
    )
}

/// The retry delay's inputs after this round, from the stored ones: failures in a row (a
/// success at or after the last failure starts the count again) and the newest failure.
pub(super) fn failures_in_a_row(
    stored_count: i32,
    stored_last: Option<DateTime<Utc>>,
    news: &News,
) -> (i32, Option<DateTime<Utc>>) {
    let mut count = stored_count;
    if news
        .newest_success
        .is_some_and(|s| stored_last.is_none_or(|f| s >= f))
    {
        count = 0;
    }
    (count + news.failures, stored_last.max(news.newest_failure))
}
