//! The pod lifecycle decisions, as pure functions (the worker in `pods.rs` only acts on
//! them): whether a container restarts, its back-off, the pod's phase and its conditions.

use std::time::Duration;

use bosun_api::v1;

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
        "Never" => false,
        "OnFailure" => exit_code != 0,
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
        return if all_succeeded { "Succeeded" } else { "Failed" };
    }
    if !initialized || containers.is_empty() {
        return "Pending";
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
        (true, true, _) => "Failed",
        (true, false, _) => "Succeeded",
        (false, _, true) => "Running",
        (false, _, false) => "Pending",
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
        status: if ok { "True" } else { "False" }.to_string(),
        last_transition_time: now.to_string(),
        reason: if ok {
            String::new()
        } else {
            reason.to_string()
        },
        ..Default::default()
    };
    // A finished pod's containers are not ready; Kubernetes says PodCompleted.
    let done = phase == "Succeeded" || phase == "Failed";
    let ready = containers_ready && !done;
    let not_ready_reason = if done {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    vec![
        cond(
            "Initialized",
            initialized,
            if done {
                "PodCompleted"
            } else {
                "ContainersNotInitialized"
            },
        ),
        cond("ContainersReady", ready, not_ready_reason),
        cond("Ready", ready, not_ready_reason),
    ]
}

/// Merges `ours` into `existing` conditions: other conditions (PodScheduled) are kept, ours
/// replace theirs by type, and a condition whose status did not change keeps its
/// lastTransitionTime.
pub fn merge_conditions(
    existing: &[v1::Condition],
    ours: Vec<v1::Condition>,
) -> Vec<v1::Condition> {
    let mut out: Vec<v1::Condition> = existing
        .iter()
        .filter(|c| !ours.iter().any(|o| o.r#type == c.r#type))
        .cloned()
        .collect();
    for mut c in ours {
        if let Some(old) = existing.iter().find(|e| e.r#type == c.r#type)
            && old.status == c.status
        {
            c.last_transition_time = old.last_transition_time.clone();
        }
        out.push(c);
    }
    out
}

/// Parses a Go-style duration annotation (`100ms`, `2s`, `1m`); `None` when malformed.
pub fn parse_sim_duration(s: &str) -> Option<Duration> {
    crate::config::parse_duration(s).ok()
}

/// Whether an activeDeadlineSeconds has passed, `elapsed` after the pod started.
pub fn deadline_exceeded(active_deadline_seconds: Option<i64>, elapsed: Duration) -> bool {
    matches!(active_deadline_seconds, Some(d) if d >= 0 && elapsed >= Duration::from_secs(d as u64))
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
    fn the_deadline_counts_from_the_start() {
        assert!(!deadline_exceeded(None, Duration::from_secs(100)));
        assert!(!deadline_exceeded(Some(5), Duration::from_secs(4)));
        assert!(deadline_exceeded(Some(5), Duration::from_secs(5)));
    }
}
