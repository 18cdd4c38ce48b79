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
