//! Pods to delete and create: every running pod goes when the Job is finishing or suspended;
//! otherwise parallelism, the remaining completions (or the missing indexes), the
//! podReplacementPolicy and the retry delay after failures decide.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::time::Duration;

use bosun_api::v1;
use chrono::{DateTime, Utc};

use super::count::Counts;
use super::gates::Stage;
use super::{
    DEFAULT_BACKOFF_FACTOR, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, MAX_POD_CHANGES_PER_SYNC,
    NewPod, Settings,
};
use crate::pods::{IndexFailures, PodFacts};

/// The retry delay after `failures` consecutive failed pods (bosun: per Job, `podBackoff`).
pub fn retry_delay(spec: &v1::JobSpec, failures: i32) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let b = spec.pod_backoff.unwrap_or_default();
    let secs = |v: Option<i64>, d: Duration| v.map_or(d, |s| Duration::from_secs(s.max(0) as u64));
    let initial = secs(b.initial_seconds, DEFAULT_BACKOFF_INITIAL);
    let max = secs(b.max_seconds, DEFAULT_BACKOFF_MAX);
    let factor = b.factor.map_or(DEFAULT_BACKOFF_FACTOR, |f| f.max(1) as u32);
    let mut delay = initial;
    for _ in 1..failures {
        delay = delay.saturating_mul(factor);
        if delay >= max {
            break;
        }
    }
    delay.min(max)
}

/// The pods to change.
#[derive(Debug, Default)]
pub(super) struct Changes<'a> {
    /// At most [`MAX_POD_CHANGES_PER_SYNC`].
    pub create: Vec<NewPod>,
    /// By name, sorted; at most [`MAX_POD_CHANGES_PER_SYNC`].
    pub delete: Vec<&'a str>,
    /// Creations held back by the retry delay: look again after this long.
    pub retry_wait: Option<Duration>,
}

/// Decides which pods to delete and create at `stage`.
pub(super) fn changes<'a>(
    job: &Settings<'_>,
    counts: &Counts<'a>,
    stage: Stage,
    now: DateTime<Utc>,
) -> Changes<'a> {
    let mut deleted: BTreeSet<&'a str> = BTreeSet::new();
    let mut out = Changes::default();
    if stage == Stage::Finishing || job.suspended {
        deleted.extend(counts.active.iter().map(|p| p.name.as_str()));
    } else if stage != Stage::Waiting {
        out.create = if job.indexed {
            indexed(job, counts, &mut deleted)
        } else {
            work_queue(job, counts, &mut deleted)
        };
        out.create.truncate(MAX_POD_CHANGES_PER_SYNC);
        // The retry delay after failures (persisted in status, so it survives restarts).
        if !out.create.is_empty() {
            out.retry_wait = retry_wait(job.spec, counts, now);
            if out.retry_wait.is_some() {
                out.create.clear();
            }
        }
    }
    out.delete = deleted.into_iter().take(MAX_POD_CHANGES_PER_SYNC).collect();
    out
}

/// How long creations still wait after the last failure; `None` when they may go now.
pub(super) fn retry_wait(
    spec: &v1::JobSpec,
    counts: &Counts<'_>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if counts.consecutive_failures <= 0 {
        return None;
    }
    let ready_at = counts.last_failure.unwrap_or(now)
        + chrono::Duration::from_std(retry_delay(spec, counts.consecutive_failures))
            .unwrap_or_default();
    (now < ready_at)
        .then(|| (ready_at - now).to_std().unwrap_or_default() + Duration::from_millis(1))
}

/// Pods a deleted (terminating) pod still holds a slot for: with podReplacementPolicy
/// Failed, a replacement waits until the old pod has failed.
fn terminating_in_use(job: &Settings<'_>, counts: &Counts<'_>) -> usize {
    if job.only_failed {
        counts.terminating.len()
    } else {
        0
    }
}

/// Indexed: one running pod per missing index, up to parallelism. Adds to `deleted` the
/// pods not needed (no index, out of range, done, duplicate) and, when too many run, those
/// with the highest indexes; returns the pods for the lowest missing indexes.
fn indexed<'a>(
    job: &Settings<'_>,
    counts: &Counts<'a>,
    deleted: &mut BTreeSet<&'a str>,
) -> Vec<NewPod> {
    let parallelism = job.parallelism as usize;
    let done = |i: i32| counts.completed.contains(i) || counts.failed_indexes.contains(i);
    let mut busy: BTreeSet<i32> = BTreeSet::new();
    for p in &counts.active {
        match p.index {
            Some(i) if i < job.limit && !done(i) && busy.insert(i) => {}
            _ => {
                deleted.insert(p.name.as_str());
            }
        }
    }
    // Too many running (parallelism lowered): the highest indexes go.
    let mut running: Vec<&PodFacts> = counts
        .active
        .iter()
        .copied()
        .filter(|p| !deleted.contains(p.name.as_str()))
        .collect();
    running.sort_by_key(|p| Reverse(p.index));
    let excess = running.len().saturating_sub(parallelism);
    deleted.extend(running.iter().take(excess).map(|p| p.name.as_str()));
    if job.only_failed {
        busy.extend(counts.terminating.iter().filter_map(|p| p.index));
    }
    let in_use = counts.active.len() - deleted.len() + terminating_in_use(job, counts);
    (0..job.limit)
        .filter(|i| !done(*i) && !busy.contains(i))
        .take(parallelism.saturating_sub(in_use))
        .map(|i| NewPod {
            index: Some(i),
            failures: counts.index_failures.get(&i).copied().unwrap_or_default(),
        })
        .collect()
}

/// Not Indexed: as many running pods as parallelism and the remaining completions allow.
/// Adds the surplus to `deleted` in Kubernetes' victim order (unscheduled, then not ready,
/// then the newest); returns the pods to create.
fn work_queue<'a>(
    job: &Settings<'_>,
    counts: &Counts<'a>,
    deleted: &mut BTreeSet<&'a str>,
) -> Vec<NewPod> {
    let active = &counts.active;
    let succeeded = counts.succeeded_total(job);
    let want = match job.completions {
        Some(c) => job.parallelism.min((c - succeeded).max(0)),
        // A work queue: once one pod succeeded, no new ones.
        None if succeeded > 0 => active.len() as i32,
        None => job.parallelism,
    } as usize;
    if active.len() > want {
        let mut victims = active.clone();
        victims.sort_by_key(|p| (p.scheduled, p.ready, Reverse(p.created_at)));
        deleted.extend(
            victims
                .iter()
                .take(active.len() - want)
                .map(|p| p.name.as_str()),
        );
    }
    let in_use = active.len() - deleted.len() + terminating_in_use(job, counts);
    (in_use..want)
        .map(|_| NewPod {
            index: None,
            failures: IndexFailures::default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indexes::Indexes;
    use crate::plan::tests::{indexed as at_index, now, pod};
    use crate::plan::{INDEXED, REPLACE_FAILED};
    use crate::pods::Phase;

    /// A change to the spec a row makes.
    type SpecEdit = fn(&mut v1::JobSpec);

    fn spec(f: fn(&mut v1::JobSpec)) -> v1::JobSpec {
        let mut spec = v1::JobSpec {
            completions: Some(4),
            parallelism: Some(2),
            ..Default::default()
        };
        f(&mut spec);
        spec
    }

    fn indexed(s: &mut v1::JobSpec) {
        s.completion_mode = INDEXED.into();
    }

    fn terminating(p: PodFacts) -> PodFacts {
        PodFacts {
            deleting: true,
            ..p
        }
    }

    /// Counts of `running` and `terminating` pods (split on `deleting`), `succeeded`
    /// successes, and for an Indexed Job the completed and failed indexes.
    fn counts<'a>(
        pods: &'a [PodFacts],
        succeeded: i32,
        completed: &str,
        failed: &str,
    ) -> Counts<'a> {
        Counts {
            succeeded,
            completed: Indexes::parse(completed, 4),
            failed_indexes: Indexes::parse(failed, 4),
            active: pods.iter().filter(|p| !p.deleting).collect(),
            terminating: pods.iter().filter(|p| p.deleting).collect(),
            ..Counts::default()
        }
    }

    /// What changes: the indexes created (`None` for a non-Indexed pod) and the pods deleted.
    type Changed = (Vec<Option<i32>>, Vec<&'static str>);

    fn changed(c: &Changes<'_>) -> (Vec<Option<i32>>, Vec<String>) {
        (
            c.create.iter().map(|n| n.index).collect(),
            c.delete.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn owned((create, delete): Changed) -> (Vec<Option<i32>>, Vec<String>) {
        (create, delete.into_iter().map(String::from).collect())
    }

    #[test]
    fn finishing_or_suspended_deletes_every_running_pod_and_waiting_changes_nothing() {
        let pods = [pod("a", Phase::Running), pod("b", Phase::Pending)];
        let rows: Vec<(&str, bool, Stage, Changed)> = vec![
            (
                "finishing",
                false,
                Stage::Finishing,
                (vec![], vec!["a", "b"]),
            ),
            (
                "suspended",
                true,
                Stage::Suspended,
                (vec![], vec!["a", "b"]),
            ),
            (
                "waiting and suspended",
                true,
                Stage::Waiting,
                (vec![], vec!["a", "b"]),
            ),
            ("waiting", false, Stage::Waiting, (vec![], vec![])),
            ("running", false, Stage::Running, (vec![None, None], vec![])),
        ];
        for (name, suspend, stage, want) in rows {
            let spec = v1::JobSpec {
                suspend: Some(suspend),
                ..spec(|s| s.parallelism = Some(4))
            };
            let job = Settings::of(&spec, "ns");
            let got = changes(&job, &counts(&pods, 0, "", ""), stage, now());
            assert_eq!(changed(&got), owned(want), "{name}");
        }
    }

    #[test]
    fn a_work_queue_runs_parallelism_pods_up_to_the_remaining_completions() {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.to_utc())
        };
        let made = |name: &str, t: &str, scheduled: bool, ready: bool| PodFacts {
            created_at: at(t),
            scheduled,
            ready,
            ..pod(name, Phase::Running)
        };
        let replace_failed = |s: &mut v1::JobSpec| s.pod_replacement_policy = REPLACE_FAILED.into();
        // (name, spec, pods, succeeded) → changes
        let rows: Vec<(&str, SpecEdit, Vec<PodFacts>, i32, Changed)> = vec![
            (
                "none running",
                |_| {},
                vec![],
                0,
                (vec![None, None], vec![]),
            ),
            (
                "one remaining completion",
                |_| {},
                vec![],
                3,
                (vec![None], vec![]),
            ),
            (
                "one running",
                |_| {},
                vec![pod("a", Phase::Running)],
                0,
                (vec![None], vec![]),
            ),
            (
                "a work queue after a success: no new pods",
                |s| s.completions = None,
                vec![pod("a", Phase::Running)],
                1,
                (vec![], vec![]),
            ),
            (
                "parallelism lowered: unscheduled, then not ready, then the newest go",
                |s| s.parallelism = Some(1),
                vec![
                    made("old-ready", "2026-01-01T00:00:01Z", true, true),
                    made("new-ready", "2026-01-01T00:00:05Z", true, true),
                    made("unready", "2026-01-01T00:00:02Z", true, false),
                    made("unscheduled", "2026-01-01T00:00:00Z", false, false),
                ],
                0,
                (vec![], vec!["new-ready", "unready", "unscheduled"]),
            ),
            (
                "a terminating pod does not hold a slot by default",
                |_| {},
                vec![terminating(pod("t", Phase::Running))],
                0,
                (vec![None, None], vec![]),
            ),
            (
                "a terminating pod holds its slot with podReplacementPolicy Failed",
                replace_failed,
                vec![terminating(pod("t", Phase::Running))],
                0,
                (vec![None], vec![]),
            ),
        ];
        for (name, f, pods, succeeded, want) in rows {
            let spec = spec(f);
            let job = Settings::of(&spec, "ns");
            let got = changes(
                &job,
                &counts(&pods, succeeded, "", ""),
                Stage::Running,
                now(),
            );
            assert_eq!(changed(&got), owned(want), "{name}");
        }
    }

    /// (name, spec, pods, completed indexes, failed indexes, changes)
    type IndexRow = (
        &'static str,
        SpecEdit,
        Vec<PodFacts>,
        &'static str,
        &'static str,
        Changed,
    );

    #[test]
    fn an_indexed_job_runs_the_lowest_missing_indexes() {
        let replace_failed = |s: &mut v1::JobSpec| {
            indexed(s);
            s.pod_replacement_policy = REPLACE_FAILED.into();
        };
        // (name, spec, pods, completed, failed) → changes
        let rows: Vec<IndexRow> = vec![
            (
                "from the start",
                indexed,
                vec![],
                "",
                "",
                (vec![Some(0), Some(1)], vec![]),
            ),
            (
                "done and failed indexes are skipped",
                indexed,
                vec![],
                "0",
                "1",
                (vec![Some(2), Some(3)], vec![]),
            ),
            (
                "a running index is not run twice",
                indexed,
                vec![at_index("a", 0, Phase::Running)],
                "",
                "",
                (vec![Some(1)], vec![]),
            ),
            (
                "pods not needed go: no index, out of range, done, failed, duplicate",
                |s| {
                    indexed(s);
                    s.parallelism = Some(4);
                },
                vec![
                    pod("none", Phase::Running),
                    at_index("range", 7, Phase::Running),
                    at_index("done", 0, Phase::Running),
                    at_index("failed", 1, Phase::Running),
                    at_index("first", 2, Phase::Running),
                    at_index("second", 2, Phase::Running),
                ],
                "0",
                "1",
                (
                    vec![Some(3)],
                    vec!["done", "failed", "none", "range", "second"],
                ),
            ),
            (
                "parallelism lowered: the highest indexes go",
                |s| {
                    indexed(s);
                    s.parallelism = Some(1);
                },
                vec![
                    at_index("i1", 1, Phase::Running),
                    at_index("i3", 3, Phase::Running),
                    at_index("i0", 0, Phase::Running),
                ],
                "",
                "",
                (vec![], vec!["i1", "i3"]),
            ),
            (
                "a terminating pod's index is free by default",
                indexed,
                vec![terminating(at_index("t", 0, Phase::Running))],
                "",
                "",
                (vec![Some(0), Some(1)], vec![]),
            ),
            (
                "with podReplacementPolicy Failed it holds its index and slot",
                replace_failed,
                vec![terminating(at_index("t", 0, Phase::Running))],
                "",
                "",
                (vec![Some(1)], vec![]),
            ),
        ];
        for (name, f, pods, completed, failed, want) in rows {
            let spec = spec(f);
            let job = Settings::of(&spec, "ns");
            let got = changes(
                &job,
                &counts(&pods, 0, completed, failed),
                Stage::Running,
                now(),
            );
            assert_eq!(changed(&got), owned(want), "{name}");
        }
    }

    #[test]
    fn a_new_pod_for_an_index_carries_its_failures() {
        let spec = spec(indexed);
        let job = Settings::of(&spec, "ns");
        let inherited = IndexFailures {
            failures: 2,
            ignored: 1,
        };
        let counts = Counts {
            index_failures: [(1, inherited)].into(),
            ..counts(&[], 0, "", "")
        };
        let got = changes(&job, &counts, Stage::Running, now());
        assert_eq!(
            got.create,
            [
                NewPod {
                    index: Some(0),
                    failures: IndexFailures::default()
                },
                NewPod {
                    index: Some(1),
                    failures: inherited
                }
            ]
        );
    }

    #[test]
    fn no_more_than_the_limit_per_sync() {
        let spec = spec(|s| {
            s.completions = Some(2000);
            s.parallelism = Some(2000);
        });
        let job = Settings::of(&spec, "ns");
        let got = changes(&job, &counts(&[], 0, "", ""), Stage::Running, now());
        assert_eq!(got.create.len(), MAX_POD_CHANGES_PER_SYNC);
        let pods: Vec<PodFacts> = (0..600)
            .map(|i| pod(&format!("p{i:03}"), Phase::Running))
            .collect();
        let got = changes(&job, &counts(&pods, 0, "", ""), Stage::Finishing, now());
        assert_eq!(got.delete.len(), MAX_POD_CHANGES_PER_SYNC);
        assert_eq!(
            (got.delete[0], got.delete[499]),
            ("p000", "p499"),
            "by name"
        );
    }

    #[test]
    fn creations_wait_out_the_retry_delay_after_the_last_failure() {
        let ago = |s: i64| Some(now() - chrono::Duration::seconds(s));
        let ms = Duration::from_millis;
        // (name, failures in a row, last failure) → wait (10 s doubling by default)
        let rows = [
            ("no failures", 0, ago(1), None),
            ("one failure 4 s ago", 1, ago(4), Some(ms(6001))),
            ("one failure 10 s ago", 1, ago(10), None),
            ("two failures 15 s ago", 2, ago(15), Some(ms(5001))),
            (
                "a failure time unknown: counted from now",
                1,
                None,
                Some(ms(10001)),
            ),
        ];
        let spec = spec(|_| {});
        let job = Settings::of(&spec, "ns");
        for (name, failures, last, want) in rows {
            let counts = Counts {
                consecutive_failures: failures,
                last_failure: last,
                ..Counts::default()
            };
            assert_eq!(retry_wait(job.spec, &counts, now()), want, "{name}");
            let got = changes(&job, &counts, Stage::Running, now());
            assert_eq!(got.retry_wait, want, "{name}");
            assert_eq!(
                got.create.len(),
                if want.is_some() { 0 } else { 2 },
                "{name}"
            );
        }
    }
}
