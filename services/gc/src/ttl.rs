//! When a finished Job's time is up (Kubernetes' TTL-after-finished controller,
//! `pkg/controller/ttlafterfinished`, KUBERNETES.md A.7), free of I/O.
//!
//! A Job needs cleanup when `spec.ttlSecondsAfterFinished` is set and it has a `Complete`
//! or `Failed` condition with status `True`; it expires `ttl` seconds after that
//! condition's `lastTransitionTime`. The reconciler asks [`plan_ttl`] with the cached Job,
//! and again with a fresh read before it deletes (the TTL may have changed since).

use std::time::Duration;

use bosun_api::v1;
use bosun_api::vocab::{condition, status};
use chrono::{DateTime, Utc};

/// What to do with one Job, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlAction {
    /// No TTL, not finished, or already being deleted: nothing to do, no timer.
    Keep,
    /// Expired: delete it (after a fresh read confirms).
    DeleteNow,
    /// Expires after this long: look again then.
    RequeueAfter(Duration),
    /// Finished by its own account this long in the future (clock skew between whoever
    /// wrote the condition and us): wait until expiry all the same, counted from that
    /// future time (`after`), and warn.
    FinishedInFuture { ahead: Duration, after: Duration },
}

/// Why a finished Job's finish time cannot be read; the Job is kept until a status write
/// fixes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinishTimeError {
    /// The finished condition carries no `lastTransitionTime`.
    #[error(
        "its {condition} condition has no lastTransitionTime; set one (RFC 3339) so the TTL can count from it"
    )]
    Missing { condition: String },
    /// The `lastTransitionTime` is not an RFC 3339 time.
    #[error(
        "its {condition} condition's lastTransitionTime {value:?} is not an RFC 3339 time ({reason}); write e.g. 2026-01-01T00:00:00Z"
    )]
    Unparseable {
        condition: String,
        value: String,
        reason: String,
    },
}

/// The `Complete` or `Failed` condition with status `True` that marks `job` finished.
pub fn finished_condition(job: &v1::Job) -> Option<&v1::Condition> {
    job.status.as_ref()?.conditions.iter().find(|c| {
        (c.r#type == condition::COMPLETE || c.r#type == condition::FAILED)
            && c.status == status::TRUE
    })
}

/// Whether `job` is marked for deletion already.
fn being_deleted(job: &v1::Job) -> bool {
    job.metadata
        .as_ref()
        .is_some_and(|m| !m.deletion_timestamp.is_empty())
}

/// When `job` finished, if it has.
pub fn finish_time(job: &v1::Job) -> Result<Option<DateTime<Utc>>, FinishTimeError> {
    let Some(c) = finished_condition(job) else {
        return Ok(None);
    };
    if c.last_transition_time.is_empty() {
        return Err(FinishTimeError::Missing {
            condition: c.r#type.clone(),
        });
    }
    DateTime::parse_from_rfc3339(&c.last_transition_time)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| FinishTimeError::Unparseable {
            condition: c.r#type.clone(),
            value: c.last_transition_time.clone(),
            reason: e.to_string(),
        })
}

/// Decides what `job` needs at `now` (Kubernetes' `needsCleanup` and `timeLeft`).
pub fn plan_ttl(job: &v1::Job, now: DateTime<Utc>) -> Result<TtlAction, FinishTimeError> {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(TtlAction::Keep);
    };
    if being_deleted(job) {
        return Ok(TtlAction::Keep);
    }
    let Some(finished) = finish_time(job)? else {
        return Ok(TtlAction::Keep);
    };
    // Validation forbids a negative TTL; were one stored, it would mean "at once".
    let expires = finished + chrono::Duration::seconds(i64::from(ttl.max(0)));
    let Ok(left) = (expires - now).to_std() else {
        return Ok(TtlAction::DeleteNow); // negative: past expiry
    };
    if left.is_zero() {
        return Ok(TtlAction::DeleteNow);
    }
    match (finished - now).to_std() {
        Ok(ahead) if !ahead.is_zero() => Ok(TtlAction::FinishedInFuture { ahead, after: left }),
        _ => Ok(TtlAction::RequeueAfter(left)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-03-01T12:00:00Z";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A Job with `ttl`, conditions `(type, status, lastTransitionTime)`, maybe deleting.
    fn job(ttl: Option<i32>, conditions: &[(&str, &str, &str)], deleting: bool) -> v1::Job {
        v1::Job {
            metadata: Some(v1::ObjectMeta {
                name: "j".into(),
                namespace: "default".into(),
                deletion_timestamp: if deleting { NOW.into() } else { String::new() },
                ..Default::default()
            }),
            spec: Some(v1::JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(v1::JobStatus {
                conditions: conditions
                    .iter()
                    .map(|(t, s, when)| v1::Condition {
                        r#type: (*t).into(),
                        status: (*s).into(),
                        last_transition_time: (*when).into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_finished_job_is_deleted_once_its_ttl_has_passed_since_it_finished() {
        use TtlAction::*;
        let secs = Duration::from_secs;
        let table: Vec<(&str, v1::Job, TtlAction)> = vec![
            (
                "no ttl: kept forever",
                job(None, &[("Complete", "True", "2026-03-01T11:00:00Z")], false),
                Keep,
            ),
            ("ttl but still running", job(Some(0), &[], false), Keep),
            (
                "a condition that is not True does not finish it",
                job(
                    Some(0),
                    &[("Complete", "False", "2026-03-01T11:00:00Z")],
                    false,
                ),
                Keep,
            ),
            (
                "other conditions do not finish it",
                job(
                    Some(0),
                    &[("Suspended", "True", "2026-03-01T11:00:00Z")],
                    false,
                ),
                Keep,
            ),
            (
                "already being deleted",
                job(
                    Some(0),
                    &[("Complete", "True", "2026-03-01T11:00:00Z")],
                    true,
                ),
                Keep,
            ),
            (
                "ttl 0: at once",
                job(Some(0), &[("Complete", "True", NOW)], false),
                DeleteNow,
            ),
            (
                "complete, ttl not yet up",
                job(
                    Some(100),
                    &[("Complete", "True", "2026-03-01T11:59:00Z")],
                    false,
                ),
                RequeueAfter(secs(40)),
            ),
            (
                "failed counts like complete",
                job(
                    Some(100),
                    &[("Failed", "True", "2026-03-01T11:59:00Z")],
                    false,
                ),
                RequeueAfter(secs(40)),
            ),
            (
                "exactly at expiry",
                job(
                    Some(60),
                    &[("Complete", "True", "2026-03-01T11:59:00Z")],
                    false,
                ),
                DeleteNow,
            ),
            (
                "past expiry",
                job(
                    Some(60),
                    &[("Complete", "True", "2026-03-01T10:00:00Z")],
                    false,
                ),
                DeleteNow,
            ),
            (
                "sub-second finish times count",
                job(
                    Some(1),
                    &[("Complete", "True", "2026-03-01T11:59:59.750Z")],
                    false,
                ),
                RequeueAfter(Duration::from_millis(750)),
            ),
            (
                "time zone offsets count",
                job(
                    Some(120),
                    &[("Complete", "True", "2026-03-01T13:59:00+02:00")],
                    false,
                ),
                RequeueAfter(secs(60)),
            ),
            (
                "the first finished condition counts",
                job(
                    Some(100),
                    &[
                        ("Complete", "False", "2026-03-01T10:00:00Z"),
                        ("Failed", "True", "2026-03-01T11:59:00Z"),
                    ],
                    false,
                ),
                RequeueAfter(secs(40)),
            ),
            (
                "finished in the future (clock skew): wait from that time",
                job(
                    Some(10),
                    &[("Complete", "True", "2026-03-01T12:00:05Z")],
                    false,
                ),
                FinishedInFuture {
                    ahead: secs(5),
                    after: secs(15),
                },
            ),
            (
                "a negative ttl (never valid) means at once",
                job(Some(-5), &[("Complete", "True", NOW)], false),
                DeleteNow,
            ),
        ];
        for (what, j, want) in table {
            assert_eq!(plan_ttl(&j, at(NOW)), Ok(want), "{what}");
        }
    }

    #[test]
    fn an_unreadable_finish_time_is_reported_not_guessed() {
        let missing = job(Some(0), &[("Complete", "True", "")], false);
        assert_eq!(
            plan_ttl(&missing, at(NOW)),
            Err(FinishTimeError::Missing {
                condition: "Complete".into()
            })
        );
        let garbled = job(Some(0), &[("Failed", "True", "yesterday")], false);
        let err = plan_ttl(&garbled, at(NOW)).unwrap_err();
        assert!(
            matches!(&err, FinishTimeError::Unparseable { condition, value, .. }
                if condition == "Failed" && value == "yesterday"),
            "{err:?}"
        );
        assert!(err.to_string().contains("RFC 3339"), "{err}");
        // Without a TTL the time is never read, so a bad one does not matter.
        let no_ttl = job(None, &[("Complete", "True", "yesterday")], false);
        assert_eq!(plan_ttl(&no_ttl, at(NOW)), Ok(TtlAction::Keep));
    }
}
