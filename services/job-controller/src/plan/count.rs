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
    let (active, terminating) = running(pods);
    let mut counts = Counts {
        uncounted: stored.uncounted_terminated_pods.clone().unwrap_or_default(),
        succeeded: stored.succeeded,
        failed: stored.failed,
        completed: Indexes::parse(&stored.completed_indexes, job.limit),
        failed_indexes: Indexes::parse(stored.failed_indexes.as_deref().unwrap_or(""), job.limit),
        active,
        terminating,
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
        match pod_outcome(job, &recorded, pod) {
            PodOutcome::Nothing => continue,
            PodOutcome::Release => {}
            PodOutcome::Succeeded => record_success(&mut counts, &mut news, job, pod, now),
            PodOutcome::Failed(action) => {
                record_failure(&mut counts, &mut news, job, pod, action, now)
            }
        }
        counts.release.push(&pod.name);
    }
    // Step 3.
    let (succeeded, failed) = settle(&mut counts.uncounted, &recorded, pods);
    if job.indexed {
        counts.succeeded = counts.completed.len() as i32;
    } else {
        counts.succeeded += succeeded;
    }
    counts.failed += failed;
    retry_inputs(&mut counts, stored, &news);
    counts
}

/// The pods not finished: those running or about to (oldest first), and those being
/// deleted.
fn running(pods: &[PodFacts]) -> (Vec<&PodFacts>, Vec<&PodFacts>) {
    let (mut active, terminating): (Vec<&PodFacts>, Vec<&PodFacts>) = pods
        .iter()
        .filter(|p| !p.finished())
        .partition(|p| !p.deleting);
    active.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
    (active, terminating)
}

/// What this round saw finish, for the retry delay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct News {
    pub newest_success: Option<DateTime<Utc>>,
    pub newest_failure: Option<DateTime<Utc>>,
    /// Failures recorded this round (ignored ones are not).
    pub failures: i32,
}

/// Step 1 for a success: its uid into the list, or (Indexed) its index into the completed.
fn record_success(
    counts: &mut Counts<'_>,
    news: &mut News,
    job: &Settings<'_>,
    pod: &PodFacts,
    now: DateTime<Utc>,
) {
    if !job.indexed {
        counts.uncounted.succeeded.push(pod.uid.clone());
    } else if let Some(i) = pod
        .index
        .filter(|i| *i < job.limit && !counts.failed_indexes.contains(*i))
    {
        counts.completed.insert(i);
    }
    news.newest_success = news.newest_success.max(pod.finished_at.or(Some(now)));
}

/// Step 1 for a failure, as the podFailurePolicy said: its uid into the list (unless
/// ignored), and what it means for the Job (FailJob) or its index.
fn record_failure(
    counts: &mut Counts<'_>,
    news: &mut News,
    job: &Settings<'_>,
    pod: &PodFacts,
    action: FailureAction,
    now: DateTime<Utc>,
) {
    let index = pod.index.filter(|i| *i < job.limit);
    match action {
        FailureAction::Ignore => return,
        FailureAction::FailJob(message) => {
            counts.fail_job.get_or_insert(message);
        }
        FailureAction::FailIndex => {
            if let Some(i) = index {
                counts.failed_indexes.insert(i);
            }
        }
        FailureAction::Count => {
            // backoffLimitPerIndex: this failure may be one too many for its index.
            if let (true, Some(max), Some(i)) = (job.indexed, job.per_index, index)
                && pod.index_failures + 1 > max
                && !counts.completed.contains(i)
            {
                counts.failed_indexes.insert(i);
            }
        }
    }
    counts.uncounted.failed.push(pod.uid.clone());
    news.failures += 1;
    news.newest_failure = news.newest_failure.max(pod.finished_at.or(Some(now)));
}

/// The retry delay's inputs after this round, into `counts`.
fn retry_inputs(counts: &mut Counts<'_>, stored: &v1::JobStatus, news: &News) {
    let stored_last = parse_time(&stored.last_failure_time);
    (counts.consecutive_failures, counts.last_failure) =
        failures_in_a_row(stored.consecutive_failures, stored_last, news);
    if counts.last_failure != stored_last {
        // Microseconds: the retry delay counts from this, and a time cut to the second
        // would let the next pod start up to a second early.
        counts.last_failure_time = counts
            .last_failure
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{indexed, now, pod};
    use crate::plan::{INDEXED, REPLACE_FAILED};

    /// A change to the spec a row makes.
    type SpecEdit = fn(&mut v1::JobSpec);

    fn spec(f: fn(&mut v1::JobSpec)) -> v1::JobSpec {
        let mut spec = v1::JobSpec {
            completions: Some(4),
            ..Default::default()
        };
        f(&mut spec);
        spec
    }

    fn ignore_exit_42(s: &mut v1::JobSpec) {
        s.pod_failure_policy = Some(v1::PodFailurePolicy {
            rules: vec![v1::PodFailurePolicyRule {
                action: "Ignore".into(),
                on_exit_codes: Some(v1::PodFailurePolicyOnExitCodesRequirement {
                    container_name: None,
                    operator: "In".into(),
                    values: vec![42],
                }),
                on_pod_conditions: vec![],
            }],
        });
    }

    fn exit_42(p: PodFacts) -> PodFacts {
        PodFacts {
            exit_codes: vec![crate::pods::ExitCode {
                container: "main".into(),
                code: 42,
            }],
            ..p
        }
    }

    #[test]
    fn each_pod_is_recorded_released_or_left_alone() {
        use PodOutcome::*;
        let running = || pod("p", Phase::Running);
        let deleting = |p: PodFacts| PodFacts {
            deleting: true,
            ..p
        };
        let released = |p: PodFacts| PodFacts {
            tracked: false,
            ..p
        };
        let replace_failed = |s: &mut v1::JobSpec| s.pod_replacement_policy = REPLACE_FAILED.into();
        let rows: Vec<(&str, SpecEdit, PodFacts, bool, PodOutcome)> = vec![
            ("running", |_| {}, running(), false, Nothing),
            ("pending", |_| {}, pod("p", Phase::Pending), false, Nothing),
            (
                "succeeded",
                |_| {},
                pod("p", Phase::Succeeded),
                false,
                Succeeded,
            ),
            (
                "failed, no policy",
                |_| {},
                pod("p", Phase::Failed),
                false,
                Failed(FailureAction::Count),
            ),
            (
                "failed, an Ignore rule matches",
                ignore_exit_42,
                exit_42(pod("p", Phase::Failed)),
                false,
                Failed(FailureAction::Ignore),
            ),
            (
                "released already: counted before",
                |_| {},
                released(pod("p", Phase::Failed)),
                false,
                Nothing,
            ),
            (
                "recorded before, still tracked: released again, not recorded again",
                |_| {},
                pod("p", Phase::Succeeded),
                true,
                Release,
            ),
            (
                "deleted while running: a failure",
                |_| {},
                deleting(running()),
                false,
                Failed(FailureAction::Count),
            ),
            (
                "deleted while pending: a failure",
                |_| {},
                deleting(pod("p", Phase::Pending)),
                false,
                Failed(FailureAction::Count),
            ),
            (
                "deleted while running, replacements wait for Failed: not yet",
                replace_failed,
                deleting(running()),
                false,
                Nothing,
            ),
            (
                "deleted while running, a podFailurePolicy defaults to Failed: not yet",
                ignore_exit_42,
                deleting(running()),
                false,
                Nothing,
            ),
            (
                "deleted after it succeeded: a success",
                |_| {},
                deleting(pod("p", Phase::Succeeded)),
                false,
                Succeeded,
            ),
        ];
        for (name, f, p, was_recorded, want) in rows {
            let spec = spec(f);
            let job = Settings::of(&spec, "ns");
            let recorded: HashSet<&str> = if was_recorded {
                HashSet::from([p.uid.as_str()])
            } else {
                HashSet::new()
            };
            assert_eq!(pod_outcome(&job, &recorded, &p), want, "{name}");
        }
    }

    /// (uncounted succeeded, uncounted failed, succeeded, failed, released)
    type Tallied = (
        Vec<&'static str>,
        Vec<&'static str>,
        i32,
        i32,
        Vec<&'static str>,
    );

    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn finished_pods_are_recorded_then_settled_into_the_counters() {
        let stored = |succeeded: &[&str], failed: &[&str]| v1::JobStatus {
            succeeded: 1,
            failed: 1,
            uncounted_terminated_pods: Some(v1::UncountedTerminatedPods {
                succeeded: succeeded.iter().map(|s| s.to_string()).collect(),
                failed: failed.iter().map(|s| s.to_string()).collect(),
            }),
            ..Default::default()
        };
        let released = |p: PodFacts| PodFacts {
            tracked: false,
            ..p
        };
        let rows: Vec<(&str, SpecEdit, v1::JobStatus, Vec<PodFacts>, Tallied)> = vec![
            (
                "a success is recorded and released",
                |_| {},
                stored(&[], &[]),
                vec![pod("s", Phase::Succeeded), pod("r", Phase::Running)],
                (vec!["uid-s"], vec![], 1, 1, vec!["s"]),
            ),
            (
                "a failure is recorded and released",
                |_| {},
                stored(&[], &[]),
                vec![pod("f", Phase::Failed)],
                (vec![], vec!["uid-f"], 1, 1, vec!["f"]),
            ),
            (
                "an ignored failure is released, never recorded",
                ignore_exit_42,
                stored(&[], &[]),
                vec![exit_42(pod("f", Phase::Failed))],
                (vec![], vec![], 1, 1, vec!["f"]),
            ),
            (
                "recorded, still tracked: stays recorded, released again",
                |_| {},
                stored(&["uid-s"], &[]),
                vec![pod("s", Phase::Succeeded)],
                (vec!["uid-s"], vec![], 1, 1, vec!["s"]),
            ),
            (
                "recorded, released: moves into the counter",
                |_| {},
                stored(&["uid-s"], &["uid-f"]),
                vec![
                    released(pod("s", Phase::Succeeded)),
                    released(pod("f", Phase::Failed)),
                ],
                (vec![], vec![], 2, 2, vec![]),
            ),
            (
                "recorded, pod gone: moves into the counter",
                |_| {},
                stored(&["uid-gone"], &["uid-f", "uid-gone-too"]),
                vec![pod("f", Phase::Failed)],
                (vec![], vec!["uid-f"], 2, 2, vec!["f"]),
            ),
        ];
        for (name, f, stored, pods, want) in rows {
            let spec = spec(f);
            let job = Settings::of(&spec, "ns");
            let c = count(&job, &stored, &pods, now());
            let got = (
                strs(&c.uncounted.succeeded),
                strs(&c.uncounted.failed),
                c.succeeded,
                c.failed,
                c.release.clone(),
            );
            assert_eq!(got, want, "{name}");
        }
    }

    /// (name, spec, stored failedIndexes, pods, (completedIndexes, failedIndexes, succeeded))
    type IndexRow = (
        &'static str,
        SpecEdit,
        &'static str,
        Vec<PodFacts>,
        (&'static str, &'static str, i32),
    );

    #[test]
    fn indexes_complete_once_and_fail_past_their_limits() {
        let fail_index_on_42 = |s: &mut v1::JobSpec| {
            s.completion_mode = INDEXED.into();
            s.pod_failure_policy = Some(v1::PodFailurePolicy {
                rules: vec![v1::PodFailurePolicyRule {
                    action: "FailIndex".into(),
                    on_exit_codes: Some(v1::PodFailurePolicyOnExitCodesRequirement {
                        container_name: None,
                        operator: "In".into(),
                        values: vec![42],
                    }),
                    on_pod_conditions: vec![],
                }],
            });
        };
        let per_index_1 = |s: &mut v1::JobSpec| {
            s.completion_mode = INDEXED.into();
            s.backoff_limit_per_index = Some(1);
        };
        let second_failure = |i: i32| PodFacts {
            index_failures: 1,
            ..indexed("f", i, Phase::Failed)
        };
        // (name, spec, stored failedIndexes, pods) → (completedIndexes, failedIndexes, succeeded)
        let rows: Vec<IndexRow> = vec![
            (
                "a success completes its index",
                |s| s.completion_mode = INDEXED.into(),
                "",
                vec![indexed("a", 2, Phase::Succeeded)],
                ("2", "", 1),
            ),
            (
                "two successes of one index count once",
                |s| s.completion_mode = INDEXED.into(),
                "",
                vec![
                    indexed("a", 0, Phase::Succeeded),
                    indexed("b", 0, Phase::Succeeded),
                ],
                ("0", "", 1),
            ),
            (
                "a success out of range counts nothing",
                |s| s.completion_mode = INDEXED.into(),
                "",
                vec![indexed("a", 4, Phase::Succeeded)],
                ("", "", 0),
            ),
            (
                "a success of a failed index does not complete it",
                per_index_1,
                "1",
                vec![indexed("a", 1, Phase::Succeeded)],
                ("", "1", 0),
            ),
            (
                "a first failure within backoffLimitPerIndex: retried",
                per_index_1,
                "",
                vec![indexed("f", 3, Phase::Failed)],
                ("", "", 0),
            ),
            (
                "a failure past backoffLimitPerIndex fails the index",
                per_index_1,
                "",
                vec![second_failure(3)],
                ("", "3", 0),
            ),
            (
                "a failure of an index already completed leaves it completed",
                per_index_1,
                "",
                vec![indexed("a", 3, Phase::Succeeded), second_failure(3)],
                ("3", "", 1),
            ),
            (
                "a FailIndex rule fails the index at once",
                fail_index_on_42,
                "",
                vec![exit_42(indexed("f", 1, Phase::Failed))],
                ("", "1", 0),
            ),
        ];
        for (name, f, failed_indexes, pods, want) in rows {
            let spec = spec(f);
            let job = Settings::of(&spec, "ns");
            let stored = v1::JobStatus {
                failed_indexes: Some(failed_indexes.into()),
                ..Default::default()
            };
            let c = count(&job, &stored, &pods, now());
            let got = (c.completed.format(), c.failed_indexes.format(), c.succeeded);
            assert_eq!((got.0.as_str(), got.1.as_str(), got.2), want, "{name}");
        }
    }

    /// (name, spec, pod, (index, failures, ignored) inherited)
    type InheritRow = (&'static str, SpecEdit, PodFacts, Option<(i32, i32, i32)>);

    #[test]
    fn a_replacement_inherits_the_failures_of_its_index() {
        let counts = |failures, ignored| PodFacts {
            index_failures: failures,
            index_ignored_failures: ignored,
            ..indexed("p", 2, Phase::Running)
        };
        let failed = |p: PodFacts| PodFacts {
            phase: Phase::Failed,
            ..p
        };
        let rows: Vec<InheritRow> = vec![
            ("no index: nothing", |_| {}, pod("p", Phase::Failed), None),
            ("running: its counts", |_| {}, counts(1, 2), Some((2, 1, 2))),
            (
                "failed: its counts plus its failure",
                |_| {},
                failed(counts(1, 2)),
                Some((2, 2, 2)),
            ),
            (
                "failed, ignored by the policy: one more ignored",
                ignore_exit_42,
                exit_42(failed(counts(1, 2))),
                Some((2, 1, 3)),
            ),
        ];
        for (name, f, p, want) in rows {
            let spec = spec(f);
            let job = Settings::of(&spec, "ns");
            let got = inherited(&job, &p).map(|(i, n)| (i, n.failures, n.ignored));
            assert_eq!(got, want, "{name}");
        }
        // Over several pods of one index, the highest counts win.
        let spec = spec(|s| s.completion_mode = INDEXED.into());
        let job = Settings::of(&spec, "ns");
        let pods = [failed(counts(0, 0)), counts(3, 0), counts(0, 1)];
        let c = count(&job, &v1::JobStatus::default(), &pods, now());
        assert_eq!(
            c.index_failures[&2],
            IndexFailures {
                failures: 3,
                ignored: 1
            }
        );
    }

    #[test]
    fn failures_in_a_row_start_again_after_a_newer_success() {
        let at = |s: u32| Some(now() - chrono::Duration::seconds(i64::from(s)));
        let news = |success, failure, failures| News {
            newest_success: success,
            newest_failure: failure,
            failures,
        };
        // (name, stored count, stored last failure, news) → (count, last failure)
        let rows = [
            ("nothing new", 2, at(30), news(None, None, 0), (2, at(30))),
            (
                "one more failure",
                2,
                at(30),
                news(None, at(5), 1),
                (3, at(5)),
            ),
            (
                "an older failure seen late keeps the newest time",
                2,
                at(30),
                news(None, at(40), 1),
                (3, at(30)),
            ),
            (
                "a success after the last failure resets",
                2,
                at(30),
                news(at(10), None, 0),
                (0, at(30)),
            ),
            (
                "a success at the time of the last failure resets too",
                2,
                at(30),
                news(at(30), None, 0),
                (0, at(30)),
            ),
            (
                "a success before the last failure does not",
                2,
                at(30),
                news(at(40), None, 0),
                (2, at(30)),
            ),
            (
                "a success and a failure together: the failure counts after the reset",
                2,
                at(30),
                news(at(10), at(5), 1),
                (1, at(5)),
            ),
            ("a first failure", 0, None, news(None, at(5), 1), (1, at(5))),
        ];
        for (name, stored, last, news, want) in rows {
            assert_eq!(failures_in_a_row(stored, last, &news), want, "{name}");
        }
    }

    #[test]
    fn a_newer_failure_time_is_kept_to_the_microsecond() {
        let spec = spec(|_| {});
        let job = Settings::of(&spec, "ns");
        let stored = v1::JobStatus {
            last_failure_time: "2026-01-01T00:00:10Z".into(),
            ..Default::default()
        };
        let failed = [pod("f", Phase::Failed)];
        let c = count(&job, &stored, &failed, now());
        assert_eq!(
            c.last_failure_time.as_deref(),
            Some("2026-01-01T00:00:50.000000Z")
        );
        let running = [pod("r", Phase::Running)];
        let c = count(&job, &stored, &running, now());
        assert_eq!(c.last_failure_time, None, "unchanged: not rewritten");
    }

    #[test]
    fn running_pods_are_oldest_first_and_deleted_ones_are_terminating() {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.to_utc())
        };
        let made = |name: &str, t: &str, deleting: bool| PodFacts {
            created_at: at(t),
            deleting,
            ..pod(name, Phase::Running)
        };
        let pods = [
            made("c", "2026-01-01T00:00:03Z", false),
            made("b", "2026-01-01T00:00:01Z", false),
            made("a", "2026-01-01T00:00:03Z", false),
            made("t", "2026-01-01T00:00:00Z", true),
            pod("done", Phase::Succeeded),
            PodFacts {
                deleting: true,
                ..pod("gone", Phase::Failed)
            },
        ];
        let spec = spec(|_| {});
        let job = Settings::of(&spec, "ns");
        let c = count(&job, &v1::JobStatus::default(), &pods, now());
        let names = |v: &[&PodFacts]| v.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&c.active), ["b", "a", "c"], "by age, then name");
        assert_eq!(names(&c.terminating), ["t"]);
    }
}
