//! Gates: whether this controller plans the Job at all (`managedBy`, a finished Job), then
//! whether it may run pods now (`dependsOn`, `suspend`).

use bosun_api::v1;
use bosun_api::vocab::status;

use super::{
    Dependency, DependencyState, Draft, FAILURE_TARGET, SUCCESS_CRITERIA_MET, SUSPENDED, Settings,
    WAITING, finished, true_condition,
};

/// Whether [`super::plan`] looks at the Job at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// `spec.managedBy` names another controller: leave the Job alone.
    ManagedElsewhere,
    /// Complete or Failed: only let go of its pods.
    Finished,
    /// Plan it.
    Open,
}

/// Decides whether the Job is this controller's to plan.
pub(super) fn admission(spec: &v1::JobSpec, stored: &v1::JobStatus) -> Admission {
    if !managed_here(spec) {
        Admission::ManagedElsewhere
    } else if finished(stored).is_some() {
        Admission::Finished
    } else {
        Admission::Open
    }
}

/// Whether this controller manages the Job: `spec.managedBy` is unset or names it.
pub fn managed_here(spec: &v1::JobSpec) -> bool {
    spec.managed_by
        .as_deref()
        .is_none_or(|m| m == crate::MANAGED_BY)
}

/// Where the Job stands once the gates are passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// FailureTarget or SuccessCriteriaMet holds: the pods go, then Failed / Complete.
    Finishing,
    /// A Job in `dependsOn` is not Complete yet: no pods.
    Waiting,
    /// `spec.suspend`: no pods; the deadline clock is stopped.
    Suspended,
    /// The criteria decide.
    Running,
}

/// What the Jobs in `dependsOn` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DependencyGate {
    /// Every one is Complete.
    Clear,
    /// One failed: this Job fails too, with this message.
    Failed(String),
    /// Some are not finished: wait, with this message.
    Pending(String),
}

/// Decides what the dependencies say; a failed one wins over pending ones.
pub(super) fn dependency_gate(dependencies: &[Dependency]) -> DependencyGate {
    if let Some(message) = dependencies.iter().find_map(|d| match &d.state {
        DependencyState::Failed(reason) => Some(format!("job {} failed ({reason})", d.name)),
        _ => None,
    }) {
        return DependencyGate::Failed(message);
    }
    let pending: Vec<String> = dependencies
        .iter()
        .filter_map(|d| match &d.state {
            DependencyState::Pending(state) => Some(format!("{} ({state})", d.name)),
            _ => None,
        })
        .collect();
    if pending.is_empty() {
        DependencyGate::Clear
    } else {
        DependencyGate::Pending(format!("waiting for job(s) {}", pending.join(", ")))
    }
}

/// What `spec.suspend` changes, given whether the Job was suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SuspendChange {
    /// Suspended now: condition, event, the deadline clock stops.
    Suspend,
    /// Still suspended: the clock stays stopped.
    StaySuspended,
    /// Resumed now: condition, event, the clock restarts from zero.
    Resume,
    /// Running: the clock starts if it has not.
    Run,
}

/// Decides what `spec.suspend` changes.
pub(super) fn suspend_change(suspended: bool, was_suspended: bool) -> SuspendChange {
    match (suspended, was_suspended) {
        (true, false) => SuspendChange::Suspend,
        (true, true) => SuspendChange::StaySuspended,
        (false, true) => SuspendChange::Resume,
        (false, false) => SuspendChange::Run,
    }
}

/// Passes the gates: a Job already finishing stays so; `dependsOn` holds back a Job that has
/// not started (bosun extension); then suspend / resume. Writes the conditions, events and
/// startTime that go with it into `draft`.
pub(super) fn gates(
    job: &Settings<'_>,
    dependencies: &[Dependency],
    stored: &v1::JobStatus,
    draft: &mut Draft,
) -> Stage {
    if true_condition(stored, SUCCESS_CRITERIA_MET).is_some()
        || true_condition(stored, FAILURE_TARGET).is_some()
    {
        return Stage::Finishing;
    }
    if stored.start_time.is_empty() && !dependencies.is_empty() {
        match dependency_gate(dependencies) {
            DependencyGate::Failed(message) => {
                draft.condition(WAITING, status::FALSE, "DependencyFailed", &message);
                draft.condition(FAILURE_TARGET, status::TRUE, "DependencyFailed", &message);
                draft.event(true, "DependencyFailed", message);
                return Stage::Finishing;
            }
            DependencyGate::Pending(message) => {
                draft.condition(WAITING, status::TRUE, "WaitingForDependencies", &message);
                return Stage::Waiting;
            }
            DependencyGate::Clear if stored.conditions.iter().any(|c| c.r#type == WAITING) => {
                draft.condition(
                    WAITING,
                    status::FALSE,
                    "DependenciesComplete",
                    "every job in dependsOn is Complete",
                );
            }
            DependencyGate::Clear => {}
        }
    }
    let was_suspended = true_condition(stored, SUSPENDED).is_some();
    match suspend_change(job.suspended, was_suspended) {
        SuspendChange::Suspend => {
            draft.condition(SUSPENDED, status::TRUE, "JobSuspended", "Job suspended");
            draft.event(false, "Suspended", "Job suspended");
            draft.status.start_time.clear();
        }
        SuspendChange::StaySuspended => draft.status.start_time.clear(),
        SuspendChange::Resume => {
            draft.condition(SUSPENDED, status::FALSE, "JobResumed", "Job resumed");
            draft.event(false, "Resumed", "Job resumed");
            draft.status.start_time = draft.now_s.clone();
        }
        SuspendChange::Run if draft.status.start_time.is_empty() => {
            draft.status.start_time = draft.now_s.clone();
        }
        SuspendChange::Run => {}
    }
    if job.suspended {
        Stage::Suspended
    } else {
        Stage::Running
    }
}
