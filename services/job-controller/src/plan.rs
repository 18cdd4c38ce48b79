//! Every decision the Job controller makes, as pure functions: given a Job, the facts of
//! its pods, the state of the Jobs it depends on and the time, [`plan`] says what the status
//! becomes, which pods to create, delete and release, which events to record, and when to
//! look again. The reconcile in `lib.rs` only gathers facts and carries the plan out, in this
//! order: the status first (conflict-checked), then releases, deletions, creations, events.
//!
//! ## Counting each finished pod exactly once
//!
//! Every pod the controller creates carries the tracking finalizer, so it cannot disappear
//! before it has been counted. A finished, tracked pod is counted in two steps:
//!
//! 1. its uid goes into `status.uncountedTerminatedPods` (Indexed successes go straight into
//!    `completedIndexes`, a set, which needs no uid) — written, conflict-checked, *before*
//!    anything else happens to the pod;
//! 2. its finalizer is removed ("released");
//! 3. a later status write moves every uid whose pod is released or gone from the uncounted
//!    lists into `succeeded` / `failed`, in the same write that drops it from the list.
//!
//! A crash between any two steps leaves enough in etcd to finish the job: a uid already in
//! the lists is never added twice, a released pod is never counted again, and the move is
//! one atomic write. Pods the controller deletes itself (suspend, scale-down, a finishing
//! Job) are released first and therefore never counted as failures.
//!
//! ## The steps
//!
//! [`plan`] is a pipeline of small pure steps, each in its own module with its own table
//! test:
//!
//! 1. **admission** (`gates::admission`): a Job another controller manages is left alone; a
//!    finished Job only lets go of its pods (`finish::let_go`);
//! 2. **counting** (`count`): what the pods and the stored status say — steps 1 and 3 above,
//!    the failed and completed indexes, the retry delay's inputs, which pods still run;
//! 3. **gates** (`gates`): `dependsOn` (bosun extension), then suspend / resume;
//! 4. **criteria** (`criteria`): podFailurePolicy, backoffLimit, activeDeadlineSeconds,
//!    failed indexes, successPolicy, completions — in Kubernetes' precedence;
//! 5. **pods** (`changes`): which to delete and create (parallelism, indexes, retry delay,
//!    podReplacementPolicy);
//! 6. **finishing** (`finish`): `FailureTarget` / `SuccessCriteriaMet` become `Failed` /
//!    `Complete` once every pod is gone or released, and the status counters are written.

mod changes;
mod count;
mod criteria;
mod finish;
mod gates;

use std::sync::LazyLock;
use std::time::Duration;

use bosun_api::v1;
use bosun_api::vocab::{policy, status};
use chrono::{DateTime, SecondsFormat, Utc};

#[cfg(test)]
use crate::pods::Phase;
use crate::pods::{IndexFailures, PodFacts};

pub use bosun_api::vocab::condition::{
    COMPLETE, FAILED, FAILURE_TARGET, SUCCESS_CRITERIA_MET, SUSPENDED,
};
pub use changes::retry_delay;
pub use criteria::{FailureAction, failure_action, success_rule_met};
pub use gates::managed_here;
use gates::{Admission, Stage};

/// Pods created or deleted in one reconcile at most (Kubernetes' MaxPodCreateDeletePerSync).
pub const MAX_POD_CHANGES_PER_SYNC: usize = 500;
/// Kubernetes' retry delay: 10 s doubling up to 10 min.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(600);
pub const DEFAULT_BACKOFF_FACTOR: u32 = 2;

/// bosun extension: the condition type of a Job waiting for the Jobs in `spec.dependsOn`.
pub use bosun_api::vocab::job::WAITING;
use bosun_api::vocab::job::{INDEXED, REPLACE_FAILED};

/// Where a Job this one depends on stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyState {
    Complete,
    /// Failed, with its reason.
    Failed(String),
    /// Anything else: `Running`, `Suspended`, `not found`...
    Pending(String),
}

/// One entry of `spec.dependsOn` with its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub state: DependencyState,
}

/// A pod to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPod {
    pub index: Option<i32>,
    pub failures: IndexFailures,
}

/// An event to record on the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// The status to store (written only if it differs from the stored one).
    pub status: v1::JobStatus,
    /// Pods whose tracking finalizer is removed (after the status is written).
    pub release: Vec<String>,
    /// Pods the controller deletes (released first: never counted as failures).
    pub delete: Vec<String>,
    pub create: Vec<NewPod>,
    pub events: Vec<JobEvent>,
    /// Look again after this long (retry delay, deadline), unless a change comes first.
    pub requeue: Option<Duration>,
}

/// Everything [`plan`] looks at.
pub struct Inputs<'a> {
    pub job: &'a v1::Job,
    /// The Job's pods (cached, plus those created a moment ago and not yet seen).
    pub pods: &'a [PodFacts],
    /// `spec.dependsOn`, each with its state.
    pub dependencies: &'a [Dependency],
    pub now: DateTime<Utc>,
}

/// Decides what to do with one Job: the steps of the module docs, in order.
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    static NO_SPEC: LazyLock<v1::JobSpec> = LazyLock::new(v1::JobSpec::default);
    static NO_STATUS: LazyLock<v1::JobStatus> = LazyLock::new(v1::JobStatus::default);
    let Inputs {
        job,
        pods,
        dependencies,
        now,
    } = *inputs;
    let spec = job.spec.as_ref().unwrap_or(&NO_SPEC);
    let stored = job.status.as_ref().unwrap_or(&NO_STATUS);

    // 1. Admission.
    match gates::admission(spec, stored) {
        Admission::ManagedElsewhere => {
            return Plan {
                status: stored.clone(),
                ..Plan::default()
            };
        }
        Admission::Finished => return finish::let_go(stored, pods),
        Admission::Open => {}
    }
    let namespace = job.metadata.as_ref().map_or("", |m| m.namespace.as_str());
    let settings = Settings::of(spec, namespace);
    let mut draft = Draft {
        status: stored.clone(),
        events: Vec::new(),
        now,
        now_s: ts(now),
    };
    // 2. Counting.
    let counts = count::count(&settings, stored, pods, now);
    // 3. Gates.
    let mut stage = gates::gates(&settings, dependencies, stored, &mut draft);
    // 4. Criteria, for a running Job.
    let mut requeue = None;
    if stage == Stage::Running {
        let verdict = criteria::verdict(&settings, &counts, &draft.status.start_time, now);
        (stage, requeue) = criteria::apply(verdict, &mut draft);
    }
    // 5. Pods to delete and create.
    let changes = changes::changes(&settings, &counts, stage, now);
    if let Some(wait) = changes.retry_wait {
        requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
    }
    // 6. Finishing, then the counters.
    if stage == Stage::Finishing && finish::settled(&counts, &changes, pods) {
        finish::finish(&mut draft);
    }
    let release = counts.release.iter().map(|n| n.to_string()).collect();
    let delete = changes.delete.iter().map(|n| n.to_string()).collect();
    finish::write_counters(&mut draft.status, &settings, counts, &changes);
    Plan {
        status: draft.status,
        release,
        delete,
        create: changes.create,
        events: draft.events,
        requeue,
    }
}

/// The spec as the steps read it, Kubernetes' defaults applied; borrowed from [`Inputs`].
#[derive(Debug, Clone, Copy)]
struct Settings<'a> {
    spec: &'a v1::JobSpec,
    /// The Job's namespace (for podFailurePolicy messages).
    namespace: &'a str,
    indexed: bool,
    /// `spec.completions`; `None` for a work queue (done when one pod succeeds).
    completions: Option<i32>,
    /// `completions` or 0: an Indexed Job's indexes are `0..limit`.
    limit: i32,
    parallelism: i32,
    backoff_limit: i32,
    /// restartPolicy OnFailure: container restarts count against the backoffLimit.
    on_failure: bool,
    failure_policy: Option<&'a v1::PodFailurePolicy>,
    /// podReplacementPolicy Failed (the default with a podFailurePolicy): a pod being
    /// deleted is no failure until its phase says so, and it holds its slot until then.
    only_failed: bool,
    /// `spec.backoffLimitPerIndex`.
    per_index: Option<i32>,
    suspended: bool,
}

impl<'a> Settings<'a> {
    fn of(spec: &'a v1::JobSpec, namespace: &'a str) -> Settings<'a> {
        let failure_policy = spec.pod_failure_policy.as_ref();
        Settings {
            spec,
            namespace,
            indexed: spec.completion_mode == INDEXED,
            completions: spec.completions,
            limit: spec.completions.unwrap_or(0),
            parallelism: spec.parallelism.unwrap_or(1).max(0),
            backoff_limit: spec.backoff_limit.unwrap_or(6),
            on_failure: spec
                .template
                .as_ref()
                .and_then(|t| t.spec.as_ref())
                .is_some_and(|s| s.restart_policy == policy::ON_FAILURE),
            failure_policy,
            only_failed: spec.pod_replacement_policy == REPLACE_FAILED
                || (spec.pod_replacement_policy.is_empty() && failure_policy.is_some()),
            per_index: spec.backoff_limit_per_index,
            suspended: spec.suspend == Some(true),
        }
    }
}

/// The status being decided, with the events that go with it.
struct Draft {
    status: v1::JobStatus,
    events: Vec<JobEvent>,
    now: DateTime<Utc>,
    /// `now` as status timestamps spell it.
    now_s: String,
}

impl Draft {
    /// Sets condition `ty` of the status being decided (see [`set_condition`]).
    fn condition(&mut self, ty: &str, value: &str, reason: &str, message: &str) {
        set_condition(&mut self.status, ty, value, reason, message, &self.now_s);
    }

    fn event(&mut self, warning: bool, reason: &'static str, message: impl Into<String>) {
        self.events.push(JobEvent {
            warning,
            reason,
            message: message.into(),
        });
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The condition `ty` when its status is True.
pub fn true_condition<'a>(status: &'a v1::JobStatus, ty: &str) -> Option<&'a v1::Condition> {
    status
        .conditions
        .iter()
        .find(|c| c.r#type == ty && c.status == status::TRUE)
}

/// Whether the Job is finished (Complete or Failed), and how.
pub fn finished(status: &v1::JobStatus) -> Option<&'static str> {
    if true_condition(status, COMPLETE).is_some() {
        Some(COMPLETE)
    } else if true_condition(status, FAILED).is_some() {
        Some(FAILED)
    } else {
        None
    }
}

/// Sets condition `ty` (keeping lastTransitionTime when its status does not change);
/// returns true when anything changed.
fn set_condition(
    status: &mut v1::JobStatus,
    ty: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: &str,
) -> bool {
    bosun_api::condition::set_condition(
        &mut status.conditions,
        v1::Condition {
            r#type: ty.to_string(),
            status: value.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            last_probe_time: now.to_string(),
            last_transition_time: now.to_string(),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests;
