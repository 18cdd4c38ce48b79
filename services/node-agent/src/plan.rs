//! The pod lifecycle decisions, as pure functions (the pod worker in `pods/worker.rs` only
//! acts on them): what becomes of a container that exited (restart after a back-off, or
//! stay terminated), where the init sequence stands, the activeDeadlineSeconds, the pod's
//! phase and conditions, a stopped container's final state, and when a status write that
//! ran out of retries is tried again.

use std::time::Duration;

use bosun_api::v1;
use bosun_api::vocab::{condition, phase, policy, status};

/// What happened to one container, as far as the phase is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtrState {
    /// Not started yet (or waiting for its back-off to restart).
    Waiting,
    /// Its process runs.
    Running,
    /// It exited and waits for its back-off to restart (the pod still counts as running).
    BackOff,
    /// It exited with this code and will not be restarted.
    Terminated(i32),
}

/// Whether a container that exited with `exit_code` restarts under `restart_policy`.
pub fn should_restart(restart_policy: &str, exit_code: i32) -> bool {
    match restart_policy {
        policy::NEVER => false,
        policy::ON_FAILURE => exit_code != 0,
        // Always, and the empty default.
        _ => true,
    }
}

/// The back-off before restart number `restarts + 1` (CrashLoopBackOff): `base` doubling per
/// restart, capped at `cap`.
pub fn backoff_delay(restarts: i32, base: Duration, cap: Duration) -> Duration {
    let shift = restarts.clamp(0, 20) as u32;
    base.saturating_mul(1u32 << shift).min(cap)
}

/// The pod phase from its containers' states (Kubernetes' getPhase): Running while any runs
/// or will restart; once all are terminated, Failed if any failed, else Succeeded.
///
/// A `stopped` pod (deleted, its containers stopped) is terminal whatever its containers
/// did: Succeeded only if it was initialized and every container exited 0, else Failed.
pub fn pod_phase(containers: &[CtrState], initialized: bool, stopped: bool) -> &'static str {
    if stopped {
        let all_succeeded = initialized
            && !containers.is_empty()
            && containers.iter().all(|c| *c == CtrState::Terminated(0));
        return if all_succeeded {
            phase::SUCCEEDED
        } else {
            phase::FAILED
        };
    }
    if !initialized || containers.is_empty() {
        return phase::PENDING;
    }
    let mut all_terminated = true;
    let mut any_started = false;
    let mut failed = false;
    for c in containers {
        match c {
            CtrState::Waiting => all_terminated = false,
            CtrState::Running | CtrState::BackOff => {
                all_terminated = false;
                any_started = true
            }
            CtrState::Terminated(code) => {
                any_started = true;
                failed |= *code != 0
            }
        }
    }
    match (all_terminated, failed, any_started) {
        (true, true, _) => phase::FAILED,
        (true, false, _) => phase::SUCCEEDED,
        (false, _, true) => phase::RUNNING,
        (false, _, false) => phase::PENDING,
    }
}

/// Whether a terminated container's reason is `Completed` (exit 0) or `Error`.
pub fn terminated_reason(exit_code: i32) -> &'static str {
    if exit_code == 0 { "Completed" } else { "Error" }
}

/// The agent-owned pod conditions (Initialized, ContainersReady, Ready) for the given facts;
/// `PodScheduled` is the scheduler's and is kept as stored.
pub fn conditions(
    initialized: bool,
    containers_ready: bool,
    phase: &str,
    now: &str,
) -> Vec<v1::Condition> {
    let cond = |ty: &str, ok: bool, reason: &str| v1::Condition {
        r#type: ty.to_string(),
        status: if ok { status::TRUE } else { status::FALSE }.to_string(),
        last_transition_time: now.to_string(),
        reason: if ok {
            String::new()
        } else {
            reason.to_string()
        },
        ..Default::default()
    };
    // A finished pod's containers are not ready; Kubernetes says PodCompleted.
    let done = phase == self::phase::SUCCEEDED || phase == self::phase::FAILED;
    let ready = containers_ready && !done;
    let not_ready_reason = if done {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    vec![
        cond(
            condition::INITIALIZED,
            initialized,
            if done {
                "PodCompleted"
            } else {
                "ContainersNotInitialized"
            },
        ),
        cond(condition::CONTAINERS_READY, ready, not_ready_reason),
        cond(condition::READY, ready, not_ready_reason),
    ]
}

/// Merges `ours` into `existing` conditions with the api's one condition setter: other
/// conditions (PodScheduled) are kept, ours replace theirs by type, and a condition whose
/// status did not change keeps its lastTransitionTime.
pub fn merge_conditions(
    existing: &[v1::Condition],
    ours: Vec<v1::Condition>,
) -> Vec<v1::Condition> {
    let mut out = existing.to_vec();
    for c in ours {
        bosun_api::condition::set_condition(&mut out, c);
    }
    out
}

/// Parses a Go-style duration annotation (`100ms`, `2s`, `1m`); `None` when malformed.
pub fn parse_sim_duration(s: &str) -> Option<Duration> {
    crate::config::parse_duration(s).ok()
}

/// How long after its start the pod may stay active (activeDeadlineSeconds); `None`
/// without a deadline (or a negative one, which the API refuses anyway).
pub fn active_deadline(active_deadline_seconds: Option<i64>) -> Option<Duration> {
    active_deadline_seconds
        .filter(|d| *d >= 0)
        .map(|d| Duration::from_secs(d as u64))
}

/// What becomes of a container that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It starts again after this back-off (its state shows CrashLoopBackOff meanwhile).
    Restart(Duration),
    /// It stays terminated with its exit code.
    Stay,
}

/// What becomes of a container that exited with `exit_code` after `restarts` restarts.
/// An init container restarts when it failed, unless restartPolicy is Never (Kubernetes:
/// init containers must succeed, so OnFailure and Always both retry them); an app container
/// follows [`should_restart`]. The back-off is [`backoff_delay`].
pub fn on_exit(
    init: bool,
    restart_policy: &str,
    exit_code: i32,
    restarts: i32,
    base: Duration,
    cap: Duration,
) -> Exit {
    let restart = if init {
        exit_code != 0 && restart_policy != policy::NEVER
    } else {
        should_restart(restart_policy, exit_code)
    };
    if restart {
        Exit::Restart(backoff_delay(restarts, base, cap))
    } else {
        Exit::Stay
    }
}

/// Where the init sequence stands, given the current init container's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitStep {
    /// It runs, waits to start, or waits for its back-off: keep waiting.
    Wait,
    /// It succeeded: start the next one (or the app containers).
    Next,
    /// It failed for good: the pod fails (`Init:Error`).
    Fail,
}

/// Where the init sequence stands once the current init container is in `state`.
pub fn init_step(state: CtrState) -> InitStep {
    match state {
        CtrState::Terminated(0) => InitStep::Next,
        CtrState::Terminated(_) => InitStep::Fail,
        CtrState::Waiting | CtrState::Running | CtrState::BackOff => InitStep::Wait,
    }
}

/// A container's state once the pod's containers were stopped and `exited` (its exit code,
/// if it reported one while stopping) is known. A container waiting for its back-off ends
/// with the code of its last run (`last_exit`); one that never ran stays `Waiting` (the pod
/// then counts as failed, see [`pod_phase`]).
pub fn stopped_state(state: CtrState, exited: Option<i32>, last_exit: Option<i32>) -> CtrState {
    match (state, exited) {
        (_, Some(code)) => CtrState::Terminated(code),
        (CtrState::BackOff, None) => last_exit.map_or(CtrState::Waiting, CtrState::Terminated),
        (other, None) => other,
    }
}

/// The first pause before a status write that ran out of retries is tried again.
pub const STATUS_RETRY_BASE: Duration = Duration::from_secs(1);
/// The longest pause between such tries.
pub const STATUS_RETRY_CAP: Duration = Duration::from_secs(30);

/// The pause before trying again a status write that failed `failures` times in a row
/// (after its own quick retries): doubling from [`STATUS_RETRY_BASE`] to [`STATUS_RETRY_CAP`].
pub fn status_retry_delay(failures: u32) -> Duration {
    backoff_delay(
        failures.saturating_sub(1).min(30) as i32,
        STATUS_RETRY_BASE,
        STATUS_RETRY_CAP,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use CtrState::*;

    #[test]
    fn restart_policy_decides_whether_an_exit_restarts() {
        for (policy, code, want) in [
            ("Always", 0, true),
            ("Always", 1, true),
            ("", 0, true),
            ("OnFailure", 0, false),
            ("OnFailure", 3, true),
            ("Never", 0, false),
            ("Never", 3, false),
        ] {
            assert_eq!(should_restart(policy, code), want, "{policy} {code}");
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let base = Duration::from_secs(10);
        let cap = Duration::from_secs(300);
        for (restarts, want) in [(0, 10), (1, 20), (2, 40), (4, 160), (5, 300), (50, 300)] {
            assert_eq!(
                backoff_delay(restarts, base, cap),
                Duration::from_secs(want),
                "{restarts}"
            );
        }
    }

    #[test]
    fn the_phase_follows_the_containers() {
        for (states, initialized, want) in [
            (vec![], true, "Pending"),
            (vec![Running], false, "Pending"),
            (vec![Waiting], true, "Pending"),
            (vec![Running], true, "Running"),
            (vec![Running, Terminated(0)], true, "Running"),
            (vec![Waiting, Terminated(1)], true, "Running"),
            (vec![BackOff], true, "Running"),
            (vec![Terminated(0)], true, "Succeeded"),
            (vec![Terminated(0), Terminated(0)], true, "Succeeded"),
            (vec![Terminated(0), Terminated(3)], true, "Failed"),
        ] {
            assert_eq!(pod_phase(&states, initialized, false), want, "{states:?}");
        }
    }

    #[test]
    fn conditions_say_ready_only_while_running_and_ready() {
        let c = conditions(true, true, "Running", "t");
        assert!(c.iter().all(|c| c.status == "True"));
        let c = conditions(true, true, "Succeeded", "t");
        assert_eq!(c[2].status, "False");
        assert_eq!(c[2].reason, "PodCompleted");
        let c = conditions(false, false, "Pending", "t");
        assert_eq!(c[0].reason, "ContainersNotInitialized");
    }

    #[test]
    fn merging_keeps_pod_scheduled_and_unchanged_transition_times() {
        let existing = vec![
            v1::Condition {
                r#type: "PodScheduled".into(),
                status: "True".into(),
                ..Default::default()
            },
            v1::Condition {
                r#type: "Ready".into(),
                status: "False".into(),
                last_transition_time: "old".into(),
                ..Default::default()
            },
        ];
        let merged = merge_conditions(&existing, conditions(true, false, "Running", "new"));
        assert_eq!(merged.len(), 4);
        assert_eq!(merged[0].r#type, "PodScheduled");
        let ready = merged.iter().find(|c| c.r#type == "Ready").unwrap();
        assert_eq!(ready.last_transition_time, "old");
        let init = merged.iter().find(|c| c.r#type == "Initialized").unwrap();
        assert_eq!(init.last_transition_time, "new");
    }

    #[test]
    fn the_active_deadline_is_the_spec_seconds() {
        for (name, spec, want) in [
            ("no deadline", None, None),
            ("negative is none", Some(-1), None),
            ("zero is at once", Some(0), Some(0)),
            ("seconds", Some(5), Some(5)),
        ] {
            assert_eq!(
                active_deadline(spec),
                want.map(Duration::from_secs),
                "{name}"
            );
        }
    }

    #[test]
    fn an_exit_restarts_or_stays_by_kind_and_policy() {
        let (base, cap) = (Duration::from_secs(10), Duration::from_secs(300));
        let restart = |s| Exit::Restart(Duration::from_secs(s));
        for (name, init, policy, code, restarts, want) in [
            (
                "app, Always, success restarts",
                false,
                "Always",
                0,
                0,
                restart(10),
            ),
            (
                "app, default policy is Always",
                false,
                "",
                1,
                0,
                restart(10),
            ),
            ("app, back-off doubles", false, "Always", 1, 2, restart(40)),
            (
                "app, back-off is capped",
                false,
                "Always",
                1,
                9,
                restart(300),
            ),
            (
                "app, OnFailure success stays",
                false,
                "OnFailure",
                0,
                0,
                Exit::Stay,
            ),
            (
                "app, OnFailure failure restarts",
                false,
                "OnFailure",
                2,
                1,
                restart(20),
            ),
            ("app, Never failure stays", false, "Never", 2, 0, Exit::Stay),
            (
                "init, success never restarts",
                true,
                "Always",
                0,
                0,
                Exit::Stay,
            ),
            (
                "init, failure restarts under Always",
                true,
                "Always",
                1,
                0,
                restart(10),
            ),
            (
                "init, failure restarts under OnFailure",
                true,
                "OnFailure",
                1,
                1,
                restart(20),
            ),
            (
                "init, failure under Never stays",
                true,
                "Never",
                1,
                0,
                Exit::Stay,
            ),
        ] {
            assert_eq!(
                on_exit(init, policy, code, restarts, base, cap),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn the_init_sequence_waits_goes_on_or_fails() {
        for (name, state, want) in [
            ("not started", Waiting, InitStep::Wait),
            ("running", Running, InitStep::Wait),
            ("in back-off after a failure", BackOff, InitStep::Wait),
            ("succeeded", Terminated(0), InitStep::Next),
            ("failed for good", Terminated(1), InitStep::Fail),
            ("killed", Terminated(137), InitStep::Fail),
        ] {
            assert_eq!(init_step(state), want, "{name}");
        }
    }

    #[test]
    fn a_stopped_container_ends_with_the_code_it_reported_or_its_last_one() {
        for (name, state, exited, last, want) in [
            (
                "exited while stopping",
                Running,
                Some(143),
                None,
                Terminated(143),
            ),
            (
                "exited 0 while stopping",
                Running,
                Some(0),
                None,
                Terminated(0),
            ),
            (
                "in back-off: its last run",
                BackOff,
                None,
                Some(1),
                Terminated(1),
            ),
            ("in back-off without a record", BackOff, None, None, Waiting),
            ("never ran", Waiting, None, None, Waiting),
            (
                "already terminated",
                Terminated(2),
                None,
                None,
                Terminated(2),
            ),
            ("no exit reported in time", Running, None, None, Running),
        ] {
            assert_eq!(stopped_state(state, exited, last), want, "{name}");
        }
    }

    #[test]
    fn a_stopped_pod_is_terminal() {
        for (name, states, initialized, want) in [
            (
                "every container exited 0",
                vec![Terminated(0)],
                true,
                "Succeeded",
            ),
            (
                "one exited 143",
                vec![Terminated(0), Terminated(143)],
                true,
                "Failed",
            ),
            (
                "one never ran",
                vec![Terminated(0), Waiting],
                true,
                "Failed",
            ),
            ("one gave no exit", vec![Running], true, "Failed"),
            ("stopped during init", vec![Terminated(0)], false, "Failed"),
            ("no containers", vec![], true, "Failed"),
        ] {
            assert_eq!(pod_phase(&states, initialized, true), want, "{name}");
        }
    }

    #[test]
    fn status_write_retries_back_off_from_one_second_to_thirty() {
        for (failures, want) in [(0, 1), (1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (1000, 30)] {
            assert_eq!(
                status_retry_delay(failures),
                Duration::from_secs(want),
                "{failures}"
            );
        }
    }
}
