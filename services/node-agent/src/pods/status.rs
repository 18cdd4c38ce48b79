//! The pod status a worker reports: what to write (pure: phase, conditions, container
//! statuses; whether it changed; how it merges with the stored status), and the writer,
//! which writes only what changed and never drops a write: one that runs out of retries is
//! reported (a warning and `bosun_node_agent_status_write_failures_total`) and tried again
//! after a back-off ([`plan::status_retry_delay`]).

use std::time::Duration;

use bosun_api::v1::{self, Kind, Object};
use bosun_api::vocab::phase;
use bosun_runtime::client::ClientError;
use tokio::time::Instant;

use super::{Ctx, meta};
use crate::plan::{self, CtrState};
use crate::runtime::PodPlace;

/// Quick tries of one write (a conflict re-reads the pod and tries again).
const ATTEMPTS: usize = 10;
/// The pause after a failed re-read, before the next quick try.
const REREAD_PAUSE: Duration = Duration::from_millis(100);

/// What the pod's status is made of.
pub(super) struct Facts<'a> {
    /// A pod-level failure (refused container, deadline): the phase is Failed.
    pub failed: bool,
    /// The pod was deleted and its containers stopped: the phase is terminal.
    pub stopped: bool,
    /// The init containers succeeded.
    pub initialized: bool,
    /// The app containers' states, in order.
    pub states: &'a [CtrState],
    pub init_statuses: Vec<v1::ContainerStatus>,
    pub statuses: Vec<v1::ContainerStatus>,
    pub reason: &'a str,
    pub message: &'a str,
    pub place: &'a PodPlace,
    pub start_time: &'a str,
    /// Now, for the conditions' transition times.
    pub now: &'a str,
}

/// The pod's phase: Failed after a pod-level failure (`failed`), else from its app
/// containers' `states` ([`plan::pod_phase`]).
pub(super) fn pod_phase(
    failed: bool,
    states: &[CtrState],
    initialized: bool,
    stopped: bool,
) -> &'static str {
    if failed {
        phase::FAILED
    } else {
        plan::pod_phase(states, initialized, stopped)
    }
}

/// The status to report (its conditions not yet merged with the stored ones).
pub(super) fn pod_status(f: Facts) -> v1::PodStatus {
    let phase = pod_phase(f.failed, f.states, f.initialized, f.stopped);
    let ready = !f.statuses.is_empty() && f.statuses.iter().all(|c| c.ready);
    v1::PodStatus {
        phase: phase.to_string(),
        conditions: plan::conditions(f.initialized, ready, phase, f.now),
        message: f.message.to_string(),
        reason: f.reason.to_string(),
        host_ip: f.place.host_ip.clone(),
        pod_ip: f.place.pod_ip.clone(),
        start_time: f.start_time.to_string(),
        init_container_statuses: f.init_statuses,
        container_statuses: f.statuses,
        ..Default::default()
    }
}

/// Whether `status` says nothing `last` (the last status written) did not: equal but for
/// the conditions' times.
pub(super) fn unchanged(last: Option<&v1::PodStatus>, status: &v1::PodStatus) -> bool {
    last.is_some_and(|last| {
        let mut a = last.clone();
        a.conditions.clear();
        let mut b = status.clone();
        b.conditions.clear();
        a == b
            && last
                .conditions
                .iter()
                .map(|c| (&c.r#type, &c.status))
                .eq(status.conditions.iter().map(|c| (&c.r#type, &c.status)))
    })
}

/// Whether the stored status still says what `status` says of each condition the agent
/// reports (type and status). Not so when someone else changed one — the node lifecycle
/// controller marks the pods of a node that went silent not ready — and the agent, back,
/// writes its own view again (Kubernetes' status manager, `needsReconcile`).
pub(super) fn stored_agrees(stored: &v1::PodStatus, status: &v1::PodStatus) -> bool {
    status.conditions.iter().all(|c| {
        stored
            .conditions
            .iter()
            .any(|s| s.r#type == c.r#type && s.status == c.status)
    })
}

/// `status` as written over `stored`: the stored conditions of others (PodScheduled) and
/// unchanged transition times kept, the scheduler's nominatedNodeName and the qosClass kept.
pub(super) fn merged(stored: &v1::PodStatus, status: &v1::PodStatus) -> v1::PodStatus {
    let mut s = status.clone();
    s.conditions = plan::merge_conditions(&stored.conditions, s.conditions);
    s.nominated_node_name = stored.nominated_node_name.clone();
    s.qos_class = stored.qos_class.clone();
    s
}

fn version(p: &v1::Pod) -> i64 {
    meta(p).resource_version.parse::<i64>().unwrap_or(0)
}

/// Why a status write was given up.
#[derive(Debug, thiserror::Error)]
pub(super) enum WriteError {
    /// The broker refused the update for good (say, invalid).
    #[error("the broker refused the status update: {0}")]
    Refused(#[source] ClientError),
    /// Every quick try met a conflict or an unavailable broker.
    #[error("{ATTEMPTS} tries failed (conflicts or the broker unavailable); the last: {0}")]
    OutOfTries(#[source] ClientError),
}

/// What came of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// Written, or nothing changed since the last write.
    Done,
    /// The pod is gone (or another pod now has its name).
    Gone,
    /// Not written: it ran out of retries (reported) or waits for its retry time; it is
    /// tried again at [`StatusWriter::retry_at`].
    Pending,
}

/// Writes one pod's status.
pub(super) struct StatusWriter {
    uid: String,
    /// The status last written, as computed (not as merged with the stored conditions:
    /// the next status is compared with it, and a merged copy would always differ).
    last: Option<v1::PodStatus>,
    /// The pod as the last write left it: the base of the next write when the watch has
    /// not delivered anything newer (a write based on the watched copy alone would
    /// conflict with our own previous write).
    written_pod: Option<v1::Pod>,
    /// Writes given up in a row.
    failures: u32,
    /// When a given-up write is tried again.
    retry_at: Option<Instant>,
}

impl StatusWriter {
    /// A writer for the pod with `uid`.
    pub fn new(uid: &str) -> StatusWriter {
        StatusWriter {
            uid: uid.to_string(),
            last: None,
            written_pod: None,
            failures: 0,
            retry_at: None,
        }
    }

    /// When a write that was given up is tried again (`None`: nothing pending).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Lets go of the copies of the last write (a finished pod writes no more).
    pub fn forget(&mut self) {
        self.last = None;
        self.written_pod = None;
    }

    /// Writes `status` over `watched` (the pod as last watched) unless nothing changed,
    /// neither since the last write nor in the stored pod's conditions.
    pub async fn write(&mut self, ctx: &Ctx, watched: &v1::Pod, status: v1::PodStatus) -> Written {
        let stored = self.newest(watched).status.clone().unwrap_or_default();
        if unchanged(self.last.as_ref(), &status) && stored_agrees(&stored, &status) {
            self.retry_at = None;
            return Written::Done;
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Written::Pending;
        }
        let span = tracing::info_span!("write_status", phase = %status.phase);
        let outcome =
            tracing::Instrument::instrument(self.attempt(ctx, watched, &status), span).await;
        match outcome {
            Ok(Some(written)) => {
                ctx.metrics.status_writes.inc();
                self.last = Some(status);
                self.written_pod = written.into_pod();
                self.failures = 0;
                self.retry_at = None;
                Written::Done
            }
            Ok(None) => Written::Gone,
            Err(err) => {
                self.failures = self.failures.saturating_add(1);
                let delay = plan::status_retry_delay(self.failures);
                self.retry_at = Some(Instant::now() + delay);
                ctx.metrics.status_write_failures.inc();
                tracing::warn!(
                    %err,
                    phase = %status.phase,
                    failures = self.failures,
                    retry_in = ?delay,
                    "pod status write gave up; it is tried again later"
                );
                Written::Pending
            }
        }
    }

    /// The newer of `watched` and the pod as the last write left it.
    fn newest<'a>(&'a self, watched: &'a v1::Pod) -> &'a v1::Pod {
        match &self.written_pod {
            Some(w) if meta(w).uid == self.uid && version(w) > version(watched) => w,
            _ => watched,
        }
    }

    /// Up to [`ATTEMPTS`] quick tries, re-reading the pod on a conflict or a transient
    /// failure. `Ok(Some(pod))` as written, `Ok(None)` when the pod is gone.
    async fn attempt(
        &mut self,
        ctx: &Ctx,
        watched: &v1::Pod,
        status: &v1::PodStatus,
    ) -> Result<Option<Object>, WriteError> {
        let mut pod = match self.written_pod.take() {
            Some(w) if meta(&w).uid == self.uid && version(&w) > version(watched) => w,
            _ => watched.clone(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let stored = pod.status.clone().unwrap_or_default();
            pod.status = Some(merged(&stored, status));
            match ctx.broker.update_status(Object::from(pod.clone())).await {
                Ok(written) => return Ok(Some(written)),
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) if !(e.is_conflict() || e.is_transient()) => {
                    return Err(WriteError::Refused(e));
                }
                Err(e) if attempt >= ATTEMPTS => return Err(WriteError::OutOfTries(e)),
                Err(e) => {
                    tracing::debug!(err = %e, attempt, "pod status update failed; re-reading the pod");
                    let m = meta(&pod);
                    match ctx.broker.get_opt(Kind::Pod, &m.namespace, &m.name).await {
                        Ok(Some(o)) => match o.into_pod() {
                            Some(p) if meta(&p).uid == self.uid => pod = p,
                            _ => return Ok(None),
                        },
                        Ok(None) => return Ok(None),
                        Err(err) => {
                            tracing::debug!(%err, "re-reading the pod failed");
                            tokio::time::sleep(REREAD_PAUSE).await;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CtrState::*;

    fn ctr(name: &str, ready: bool) -> v1::ContainerStatus {
        v1::ContainerStatus {
            name: name.into(),
            ready,
            ..Default::default()
        }
    }

    fn condition(status: &v1::PodStatus, ty: &str) -> String {
        status
            .conditions
            .iter()
            .find(|c| c.r#type == ty)
            .map_or(String::new(), |c| {
                format!("{} {}", c.status, c.reason).trim().to_string()
            })
    }

    #[test]
    fn the_status_follows_the_pod_facts() {
        let place = PodPlace {
            host_ip: "10.0.0.1".into(),
            pod_ip: "10.0.0.2".into(),
            ..Default::default()
        };
        // name, failed, stopped, initialized, states, readiness, phase, Initialized, Ready
        for (
            name,
            failed,
            stopped,
            initialized,
            states,
            ready,
            want_phase,
            want_init,
            want_ready,
        ) in [
            (
                "init containers running",
                false,
                false,
                false,
                vec![Waiting],
                vec![false],
                "Pending",
                "False ContainersNotInitialized",
                "False ContainersNotReady",
            ),
            (
                "running and ready",
                false,
                false,
                true,
                vec![Running, Running],
                vec![true, true],
                "Running",
                "True",
                "True",
            ),
            (
                "running, one not ready",
                false,
                false,
                true,
                vec![Running, Running],
                vec![true, false],
                "Running",
                "True",
                "False ContainersNotReady",
            ),
            (
                "in back-off",
                false,
                false,
                true,
                vec![BackOff],
                vec![false],
                "Running",
                "True",
                "False ContainersNotReady",
            ),
            (
                "every container succeeded",
                false,
                false,
                true,
                vec![Terminated(0)],
                vec![false],
                "Succeeded",
                "True",
                "False PodCompleted",
            ),
            (
                "one container failed",
                false,
                false,
                true,
                vec![Terminated(0), Terminated(2)],
                vec![false, false],
                "Failed",
                "True",
                "False PodCompleted",
            ),
            (
                "deadline exceeded while running",
                true,
                false,
                true,
                vec![Running],
                vec![true],
                "Failed",
                "True",
                "False PodCompleted",
            ),
            (
                "deleted: stopped with 143",
                false,
                true,
                true,
                vec![Terminated(143)],
                vec![false],
                "Failed",
                "True",
                "False PodCompleted",
            ),
            (
                "deleted: stopped with 0",
                false,
                true,
                true,
                vec![Terminated(0)],
                vec![false],
                "Succeeded",
                "True",
                "False PodCompleted",
            ),
            (
                "deleted during init",
                false,
                true,
                false,
                vec![Waiting],
                vec![false],
                "Failed",
                "False PodCompleted",
                "False PodCompleted",
            ),
        ] {
            let statuses: Vec<v1::ContainerStatus> = ready
                .iter()
                .enumerate()
                .map(|(i, r)| ctr(&format!("c{i}"), *r))
                .collect();
            let s = pod_status(Facts {
                failed,
                stopped,
                initialized,
                states: &states,
                init_statuses: vec![ctr("init", false)],
                statuses: statuses.clone(),
                reason: if failed { "DeadlineExceeded" } else { "" },
                message: "",
                place: &place,
                start_time: "t0",
                now: "t1",
            });
            assert_eq!(s.phase, want_phase, "{name}");
            assert_eq!(condition(&s, "Initialized"), want_init, "{name}");
            assert_eq!(condition(&s, "Ready"), want_ready, "{name}");
            assert_eq!(condition(&s, "ContainersReady"), want_ready, "{name}");
            assert_eq!(s.container_statuses, statuses, "{name}");
            assert_eq!(
                s.init_container_statuses,
                vec![ctr("init", false)],
                "{name}"
            );
            assert_eq!(
                (s.host_ip.as_str(), s.pod_ip.as_str()),
                ("10.0.0.1", "10.0.0.2"),
                "{name}"
            );
            assert_eq!(s.start_time, "t0", "{name}");
            assert_eq!(s.reason.is_empty(), !failed, "{name}");
        }
    }

    #[test]
    fn only_a_change_beyond_transition_times_is_written() {
        let base = v1::PodStatus {
            phase: "Running".into(),
            conditions: plan::conditions(true, true, "Running", "t1"),
            ..Default::default()
        };
        let mut later = base.clone();
        later.conditions = plan::conditions(true, true, "Running", "t2");
        let mut not_ready = base.clone();
        not_ready.conditions = plan::conditions(true, false, "Running", "t2");
        let mut finished = base.clone();
        finished.phase = "Succeeded".into();
        for (name, last, status, want) in [
            ("nothing written yet", None, &base, false),
            ("the same", Some(&base), &base, true),
            ("only times differ", Some(&base), &later, true),
            ("a condition flipped", Some(&base), &not_ready, false),
            ("the phase changed", Some(&base), &finished, false),
        ] {
            assert_eq!(unchanged(last, status), want, "{name}");
        }
    }

    #[test]
    fn a_condition_someone_else_changed_is_written_again() {
        let ours = v1::PodStatus {
            phase: "Running".into(),
            conditions: plan::conditions(true, true, "Running", "t1"),
            ..Default::default()
        };
        let mut marked = ours.clone();
        for c in &mut marked.conditions {
            if c.r#type == "Ready" {
                c.status = "False".into();
            }
        }
        let mut with_others = ours.clone();
        with_others.conditions.push(v1::Condition {
            r#type: "PodScheduled".into(),
            status: "True".into(),
            ..Default::default()
        });
        let mut later = ours.clone();
        later.conditions = plan::conditions(true, true, "Running", "t2");
        for (name, stored, want) in [
            ("as written", &ours, true),
            ("others' conditions beside ours", &with_others, true),
            ("only times differ", &later, true),
            (
                "Ready marked False by the lifecycle controller",
                &marked,
                false,
            ),
            ("nothing stored yet", &v1::PodStatus::default(), false),
        ] {
            assert_eq!(stored_agrees(stored, &ours), want, "{name}");
        }
    }

    #[test]
    fn a_write_keeps_what_others_stored() {
        let stored = v1::PodStatus {
            phase: "Pending".into(),
            nominated_node_name: "n1".into(),
            qos_class: "BestEffort".into(),
            conditions: vec![v1::Condition {
                r#type: "PodScheduled".into(),
                status: "True".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ours = v1::PodStatus {
            phase: "Running".into(),
            conditions: plan::conditions(true, true, "Running", "t1"),
            ..Default::default()
        };
        let s = merged(&stored, &ours);
        assert_eq!(s.phase, "Running");
        assert_eq!(
            (s.nominated_node_name.as_str(), s.qos_class.as_str()),
            ("n1", "BestEffort")
        );
        assert_eq!(condition(&s, "PodScheduled"), "True");
        assert_eq!(s.conditions.len(), 4);
    }
}
