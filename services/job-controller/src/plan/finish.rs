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
