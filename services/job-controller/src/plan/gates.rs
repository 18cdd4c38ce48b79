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
    if stored.start_time.is_empty()
        && !dependencies.is_empty()
        && let Some(stage) = wait_for(dependencies, stored, draft)
    {
        return stage;
    }
    suspend_or_run(job.suspended, stored, draft);
    if job.suspended {
        Stage::Suspended
    } else {
        Stage::Running
    }
}

/// The dependencies' gate, for a Job not started yet: `Some` when it holds the Job back.
fn wait_for(
    dependencies: &[Dependency],
    stored: &v1::JobStatus,
    draft: &mut Draft,
) -> Option<Stage> {
    match dependency_gate(dependencies) {
        DependencyGate::Failed(message) => {
            draft.condition(WAITING, status::FALSE, "DependencyFailed", &message);
            draft.condition(FAILURE_TARGET, status::TRUE, "DependencyFailed", &message);
            draft.event(true, "DependencyFailed", message);
            Some(Stage::Finishing)
        }
        DependencyGate::Pending(message) => {
            draft.condition(WAITING, status::TRUE, "WaitingForDependencies", &message);
            Some(Stage::Waiting)
        }
        DependencyGate::Clear => {
            if stored.conditions.iter().any(|c| c.r#type == WAITING) {
                draft.condition(
                    WAITING,
                    status::FALSE,
                    "DependenciesComplete",
                    "every job in dependsOn is Complete",
                );
            }
            None
        }
    }
}

/// Suspend or resume: the Suspended condition and event, and the deadline clock (startTime),
/// which stops while suspended and restarts from zero on resume.
fn suspend_or_run(suspended: bool, stored: &v1::JobStatus, draft: &mut Draft) {
    let was_suspended = true_condition(stored, SUSPENDED).is_some();
    match suspend_change(suspended, was_suspended) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::now;
    use crate::plan::{COMPLETE, FAILED, ts};

    fn condition(ty: &str, value: &str) -> v1::Condition {
        v1::Condition {
            r#type: ty.into(),
            status: value.into(),
            ..Default::default()
        }
    }

    fn with(conditions: &[(&str, &str)]) -> v1::JobStatus {
        v1::JobStatus {
            conditions: conditions.iter().map(|(t, v)| condition(t, v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_an_unfinished_job_managed_here_is_planned() {
        use Admission::*;
        let ours = Some(crate::MANAGED_BY.to_string());
        let theirs = Some("example.com/other".to_string());
        let rows = [
            ("no managedBy", None, with(&[]), Open),
            ("managed by this controller", ours.clone(), with(&[]), Open),
            (
                "managed by another",
                theirs.clone(),
                with(&[]),
                ManagedElsewhere,
            ),
            (
                "managed by another, finished",
                theirs,
                with(&[(COMPLETE, status::TRUE)]),
                ManagedElsewhere,
            ),
            (
                "complete",
                ours,
                with(&[(COMPLETE, status::TRUE)]),
                Finished,
            ),
            ("failed", None, with(&[(FAILED, status::TRUE)]), Finished),
            (
                "finishing is not finished",
                None,
                with(&[(FAILURE_TARGET, status::TRUE)]),
                Open,
            ),
            (
                "a False Complete is not finished",
                None,
                with(&[(COMPLETE, status::FALSE)]),
                Open,
            ),
        ];
        for (name, managed_by, stored, want) in rows {
            let spec = v1::JobSpec {
                managed_by,
                ..Default::default()
            };
            assert_eq!(admission(&spec, &stored), want, "{name}");
        }
    }

    #[test]
    fn a_failed_dependency_wins_over_pending_ones() {
        let dep = |name: &str, state: DependencyState| Dependency {
            name: name.into(),
            state,
        };
        let pending = |s: &str| DependencyState::Pending(s.into());
        let failed = |s: &str| DependencyState::Failed(s.into());
        let rows = [
            ("none", vec![], DependencyGate::Clear),
            (
                "all complete",
                vec![
                    dep("a", DependencyState::Complete),
                    dep("b", DependencyState::Complete),
                ],
                DependencyGate::Clear,
            ),
            (
                "one pending",
                vec![
                    dep("a", DependencyState::Complete),
                    dep("b", pending("Running")),
                ],
                DependencyGate::Pending("waiting for job(s) b (Running)".into()),
            ),
            (
                "two pending, in order",
                vec![
                    dep("a", pending("not found")),
                    dep("b", pending("Suspended")),
                ],
                DependencyGate::Pending("waiting for job(s) a (not found), b (Suspended)".into()),
            ),
            (
                "a failed one wins",
                vec![
                    dep("a", pending("Running")),
                    dep("b", failed("DeadlineExceeded")),
                    dep("c", failed("BackoffLimitExceeded")),
                ],
                DependencyGate::Failed("job b failed (DeadlineExceeded)".into()),
            ),
        ];
        for (name, deps, want) in rows {
            assert_eq!(dependency_gate(&deps), want, "{name}");
        }
    }

    #[test]
    fn suspend_changes_only_on_a_flip() {
        use SuspendChange::*;
        let rows = [
            ("suspended now", true, false, Suspend),
            ("still suspended", true, true, StaySuspended),
            ("resumed now", false, true, Resume),
            ("running", false, false, Run),
        ];
        for (name, suspended, was, want) in rows {
            assert_eq!(suspend_change(suspended, was), want, "{name}");
        }
    }

    /// What the gates left: the stage, each condition as (type, status, reason), the event
    /// reasons, and the startTime.
    type Passed = (
        Stage,
        Vec<(String, String, String)>,
        Vec<&'static str>,
        String,
    );

    #[test]
    fn the_gates_set_conditions_events_and_the_start_time() {
        let started = "2026-01-01T00:00:00Z";
        let now_s = ts(now());
        let dep = |state: DependencyState| {
            vec![Dependency {
                name: "a".into(),
                state,
            }]
        };
        let status = |conditions: &[(&str, &str)], start: &str| v1::JobStatus {
            start_time: start.into(),
            ..with(conditions)
        };
        let c = |t: &str, s: &str, r: &str| (t.to_string(), s.to_string(), r.to_string());
        // (name, suspend, stored, dependencies) → what the gates left
        let rows: Vec<(&str, bool, v1::JobStatus, Vec<Dependency>, Passed)> = vec![
            (
                "finishing stays finishing, suspended or not",
                true,
                status(&[(SUCCESS_CRITERIA_MET, status::TRUE)], started),
                vec![],
                (
                    Stage::Finishing,
                    vec![c(SUCCESS_CRITERIA_MET, status::TRUE, "")],
                    vec![],
                    started.into(),
                ),
            ),
            (
                "a failed dependency: Waiting False, FailureTarget, a warning",
                false,
                status(&[], ""),
                dep(DependencyState::Failed("BackoffLimitExceeded".into())),
                (
                    Stage::Finishing,
                    vec![
                        c(WAITING, status::FALSE, "DependencyFailed"),
                        c(FAILURE_TARGET, status::TRUE, "DependencyFailed"),
                    ],
                    vec!["DependencyFailed"],
                    String::new(),
                ),
            ),
            (
                "a pending dependency: Waiting, the clock not started",
                false,
                status(&[], ""),
                dep(DependencyState::Pending("Running".into())),
                (
                    Stage::Waiting,
                    vec![c(WAITING, status::TRUE, "WaitingForDependencies")],
                    vec![],
                    String::new(),
                ),
            ),
            (
                "dependencies complete: Waiting False, the clock starts",
                false,
                status(&[(WAITING, status::TRUE)], ""),
                dep(DependencyState::Complete),
                (
                    Stage::Running,
                    vec![c(WAITING, status::FALSE, "DependenciesComplete")],
                    vec![],
                    now_s.clone(),
                ),
            ),
            (
                "dependencies complete from the start: no Waiting condition",
                false,
                status(&[], ""),
                dep(DependencyState::Complete),
                (Stage::Running, vec![], vec![], now_s.clone()),
            ),
            (
                "a started Job no longer looks at its dependencies",
                false,
                status(&[], started),
                dep(DependencyState::Failed("DeadlineExceeded".into())),
                (Stage::Running, vec![], vec![], started.into()),
            ),
            (
                "suspended now: condition, event, the clock stops",
                true,
                status(&[], started),
                vec![],
                (
                    Stage::Suspended,
                    vec![c(SUSPENDED, status::TRUE, "JobSuspended")],
                    vec!["Suspended"],
                    String::new(),
                ),
            ),
            (
                "still suspended: nothing new",
                true,
                status(&[(SUSPENDED, status::TRUE)], ""),
                vec![],
                (
                    Stage::Suspended,
                    vec![c(SUSPENDED, status::TRUE, "")],
                    vec![],
                    String::new(),
                ),
            ),
            (
                "resumed: condition, event, the clock restarts",
                false,
                status(&[(SUSPENDED, status::TRUE)], ""),
                vec![],
                (
                    Stage::Running,
                    vec![c(SUSPENDED, status::FALSE, "JobResumed")],
                    vec!["Resumed"],
                    now_s.clone(),
                ),
            ),
            (
                "running: the start time is kept",
                false,
                status(&[], started),
                vec![],
                (Stage::Running, vec![], vec![], started.into()),
            ),
        ];
        for (name, suspend, stored, deps, want) in rows {
            let spec = v1::JobSpec {
                suspend: Some(suspend),
                ..Default::default()
            };
            let job = Settings::of(&spec, "ns");
            let mut draft = Draft {
                status: stored.clone(),
                events: Vec::new(),
                now: now(),
                now_s: now_s.clone(),
            };
            let stage = gates(&job, &deps, &stored, &mut draft);
            let got: Passed = (
                stage,
                draft
                    .status
                    .conditions
                    .iter()
                    .map(|k| c(&k.r#type, &k.status, &k.reason))
                    .collect(),
                draft.events.iter().map(|e| e.reason).collect(),
                draft.status.start_time.clone(),
            );
            assert_eq!(got, want, "{name}");
        }
    }
}
