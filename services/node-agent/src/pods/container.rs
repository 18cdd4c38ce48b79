//! One container of a pod: what to run, its instance with the tasks that wait for it and
//! probe it, and the transitions of its `containerStatus` (pure functions: a start, an exit
//! that restarts or stays, a stop).

use std::sync::Arc;
use std::time::Duration;

use bosun_api::v1;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::meta;
use crate::node::now;
use crate::plan::{self, CtrState, Exit};
use crate::probe;
use crate::runtime::{self, ContainerSpec, Instance, PodPlace};

/// The reason a container waits before its first start.
const CONTAINER_CREATING: &str = "ContainerCreating";
/// The reason a container waits for its back-off before it restarts.
const CRASH_LOOP_BACK_OFF: &str = "CrashLoopBackOff";

/// A message from a container's waiter or prober to the pod's worker.
pub(super) enum Msg {
    /// Instance `exit.id` of container `idx` (init or app) ended.
    Exited {
        init: bool,
        idx: usize,
        exit: Exited,
    },
    /// The readiness probe of app container `idx`, instance `id`, changed its verdict.
    Ready { idx: usize, id: String, ready: bool },
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Exited {
    /// The instance's container ID.
    pub id: String,
    pub code: i32,
    /// When its end was seen (RFC 3339).
    pub at: String,
}

/// One container of the pod.
pub(super) struct Ctr {
    pub spec: v1::Container,
    pub run: ContainerSpec,
    pub status: v1::ContainerStatus,
    pub state: CtrState,
    pub instance: Option<Arc<dyn Instance>>,
    /// When a container in back-off starts again.
    pub restart_at: Option<Instant>,
    pub prober: Option<tokio::task::JoinHandle<()>>,
}

impl Ctr {
    /// Container `c` of `pod`, its status as stored in `stored` (or ContainerCreating).
    pub fn new(
        pod: &v1::Pod,
        c: &v1::Container,
        stored: &[v1::ContainerStatus],
        place: &PodPlace,
    ) -> Ctr {
        let m = meta(pod);
        let run = ContainerSpec {
            pod_uid: m.uid.clone(),
            pod_key: format!("{}/{}", m.namespace, m.name),
            name: c.name.clone(),
            image: c.image.clone(),
            command: c.command.clone(),
            args: c.args.clone(),
            env: runtime::container_env(pod, c, place),
            working_dir: c.working_dir.clone(),
            binds: runtime::binds(pod, c),
            sim: Some(sim_of(pod)),
            image_pull_policy: c.image_pull_policy.clone(),
        };
        let status = stored
            .iter()
            .find(|s| s.name == c.name)
            .cloned()
            .unwrap_or_else(|| creating(c));
        Ctr {
            spec: c.clone(),
            run,
            status,
            state: CtrState::Waiting,
            instance: None,
            restart_at: None,
            prober: None,
        }
    }

    /// Stops watching the instance: the prober ends, the instance is let go.
    pub fn unwatch(&mut self) -> Option<Arc<dyn Instance>> {
        if let Some(p) = self.prober.take() {
            p.abort();
        }
        self.instance.take()
    }

    /// Follows instance `inst` (just started or adopted): a waiter reports its exit and, for
    /// an app container with a readiness probe, a prober reports its verdicts on `tx`.
    pub fn watch(
        &mut self,
        inst: Arc<dyn Instance>,
        init: bool,
        idx: usize,
        tx: &mpsc::Sender<Msg>,
        host: &str,
    ) {
        let id = inst.id();
        self.instance = Some(inst.clone());
        let waiter = tx.clone();
        let wid = id.clone();
        tokio::spawn(async move {
            let code = inst.wait().await;
            let exit = Exited {
                id: wid,
                code,
                at: now(),
            };
            let _ = waiter.send(Msg::Exited { init, idx, exit }).await;
        });
        if let (false, Some(p)) = (init, self.spec.readiness_probe.clone()) {
            let env = self.run.env.clone();
            let tx = tx.clone();
            self.prober = Some(tokio::spawn(probe::run(
                *p,
                host.to_string(),
                env,
                move |ready| {
                    let tx = tx.clone();
                    let id = id.clone();
                    async move {
                        let _ = tx.send(Msg::Ready { idx, id, ready }).await;
                    }
                },
            )));
        }
    }
}

/// The sim runtime's run time and exit code, from the pod's annotations.
fn sim_of(pod: &v1::Pod) -> (Duration, i32) {
    let ann = meta(pod).annotations;
    let d = ann
        .get(runtime::sim::SIM_DURATION)
        .and_then(|s| plan::parse_sim_duration(s))
        .unwrap_or(Duration::ZERO);
    let code = ann
        .get(runtime::sim::SIM_EXIT_CODE)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    (d, code)
}

/// The status of container `c` before its first start.
pub(super) fn creating(c: &v1::Container) -> v1::ContainerStatus {
    v1::ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        state: Some(waiting(CONTAINER_CREATING, "")),
        started: Some(false),
        ..Default::default()
    }
}

fn waiting(reason: &str, message: &str) -> v1::ContainerState {
    v1::ContainerState {
        waiting: Some(v1::ContainerStateWaiting {
            reason: reason.into(),
            message: message.into(),
        }),
        ..Default::default()
    }
}

/// A container that cannot run at all (refused by the runtime): waiting, with the reason.
pub(super) fn refused(status: &mut v1::ContainerStatus, reason: &str, message: &str) {
    status.state = Some(waiting(reason, message));
}

/// A container whose start failed: terminated with 128 and `StartError`.
pub(super) fn start_failed(status: &mut v1::ContainerStatus, message: &str) -> CtrState {
    status.state = Some(v1::ContainerState {
        terminated: Some(v1::ContainerStateTerminated {
            exit_code: 128,
            reason: "StartError".into(),
            message: message.into(),
            finished_at: now(),
            ..Default::default()
        }),
        ..Default::default()
    });
    CtrState::Terminated(128)
}

/// Whether `status` already records the exit of instance `id`.
pub(super) fn exit_recorded(status: &v1::ContainerStatus, id: &str) -> bool {
    let term = |s: &Option<v1::ContainerState>| {
        s.as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.container_id == id)
    };
    term(&status.state) || term(&status.last_state)
}

/// When the running instance recorded in `status` started ("" when none runs).
fn running_since(status: &v1::ContainerStatus) -> String {
    status
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .map(|r| r.started_at.clone())
        .unwrap_or_default()
}

/// The exit code of the container's last run, when it waits to restart.
pub(super) fn last_exit(status: &v1::ContainerStatus) -> Option<i32> {
    status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code)
}

/// Records that instance `id` runs (started or adopted at `now`). `restarted`: a new
/// instance replacing a previous one (the restart count goes up); `ready`: ready at once
/// (an app container without a readiness probe).
pub(super) fn record_start(
    status: &mut v1::ContainerStatus,
    id: &str,
    restarted: bool,
    ready: bool,
    now: &str,
) -> CtrState {
    // An adopted instance keeps the start time recorded for it.
    let started_at = match running_since(status) {
        s if !s.is_empty() && status.container_id == id => s,
        _ => now.to_string(),
    };
    if restarted && status.container_id != id {
        status.restart_count += 1;
    }
    status.container_id = id.to_string();
    status.started = Some(true);
    status.ready = ready;
    status.state = Some(v1::ContainerState {
        running: Some(v1::ContainerStateRunning { started_at }),
        ..Default::default()
    });
    CtrState::Running
}

/// Records the end of the running instance as `exit`; `next` says whether it restarts
/// (CrashLoopBackOff, the run kept as `lastState`) or stays terminated. `pod_key` names the
/// pod in the back-off message. Returns the container's new state.
pub(super) fn record_exit(
    status: &mut v1::ContainerStatus,
    exit: Exited,
    next: Exit,
    pod_key: &str,
) -> CtrState {
    let terminated = v1::ContainerState {
        terminated: Some(v1::ContainerStateTerminated {
            exit_code: exit.code,
            reason: plan::terminated_reason(exit.code).into(),
            started_at: running_since(status),
            finished_at: exit.at,
            container_id: exit.id,
            ..Default::default()
        }),
        ..Default::default()
    };
    status.ready = false;
    status.started = Some(false);
    match next {
        Exit::Restart(delay) => {
            let message = format!(
                "back-off {delay:?} restarting failed container={} pod={pod_key}",
                status.name
            );
            status.last_state = Some(terminated);
            status.state = Some(waiting(CRASH_LOOP_BACK_OFF, &message));
            CtrState::BackOff
        }
        Exit::Stay => {
            status.state = Some(terminated);
            CtrState::Terminated(exit.code)
        }
    }
}

/// Records how a container ended when the pod's containers were stopped: `exited` if its
/// instance reported an exit while stopping; else a container in back-off shows its last
/// run as its final state. Returns the final state ([`plan::stopped_state`]).
pub(super) fn record_stop(
    status: &mut v1::ContainerStatus,
    state: CtrState,
    exited: Option<Exited>,
) -> CtrState {
    let last = last_exit(status);
    let code = exited.as_ref().map(|e| e.code);
    let end = plan::stopped_state(state, code, last);
    match exited {
        Some(exit) => {
            record_exit(status, exit, Exit::Stay, "");
        }
        None if state == CtrState::BackOff && last.is_some() => {
            status.state = status.last_state.take();
            status.ready = false;
        }
        None => {}
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32) -> Exited {
        Exited {
            id: "process://2".into(),
            code,
            at: "t2".into(),
        }
    }

    fn running() -> v1::ContainerStatus {
        let mut s = creating(&v1::Container {
            name: "main".into(),
            image: "busybox".into(),
            ..Default::default()
        });
        record_start(&mut s, "process://2", false, true, "t1");
        s
    }

    fn terminated(s: &Option<v1::ContainerState>) -> Option<&v1::ContainerStateTerminated> {
        s.as_ref().and_then(|s| s.terminated.as_ref())
    }

    fn waiting_reason(s: &v1::ContainerStatus) -> &str {
        s.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .map_or("", |w| w.reason.as_str())
    }

    #[test]
    fn a_start_records_a_running_instance_and_counts_restarts() {
        for (name, recorded_id, restarted, ready, want_restarts, want_started_at) in [
            ("first start", "", false, true, 0, "now"),
            (
                "restart of a new instance",
                "process://1",
                true,
                false,
                1,
                "now",
            ),
            (
                "adopting the recorded instance",
                "process://2",
                true,
                true,
                0,
                "t1",
            ),
        ] {
            let mut s = running();
            s.container_id = recorded_id.into();
            if recorded_id.is_empty() {
                s.state = None;
            }
            let state = record_start(&mut s, "process://2", restarted, ready, "now");
            assert_eq!(state, CtrState::Running, "{name}");
            assert_eq!(s.restart_count, want_restarts, "{name}");
            assert_eq!(s.ready, ready, "{name}");
            assert_eq!(s.started, Some(true), "{name}");
            assert_eq!(s.container_id, "process://2", "{name}");
            let since = s.state.as_ref().and_then(|s| s.running.as_ref()).unwrap();
            assert_eq!(since.started_at, want_started_at, "{name}");
        }
    }

    #[test]
    fn an_exit_either_waits_in_crash_loop_back_off_or_stays_terminated() {
        for (name, code, next, want_state, want_waiting, want_last) in [
            (
                "restart after a failure",
                1,
                Exit::Restart(Duration::from_secs(10)),
                CtrState::BackOff,
                "CrashLoopBackOff",
                Some(1),
            ),
            (
                "restart after a success (Always)",
                0,
                Exit::Restart(Duration::from_secs(20)),
                CtrState::BackOff,
                "CrashLoopBackOff",
                Some(0),
            ),
            (
                "stays failed",
                143,
                Exit::Stay,
                CtrState::Terminated(143),
                "",
                None,
            ),
            (
                "stays succeeded",
                0,
                Exit::Stay,
                CtrState::Terminated(0),
                "",
                None,
            ),
        ] {
            let mut s = running();
            let state = record_exit(&mut s, exit(code), next, "default/p");
            assert_eq!(state, want_state, "{name}");
            assert_eq!(waiting_reason(&s), want_waiting, "{name}");
            assert_eq!(last_exit(&s), want_last, "{name}");
            assert!(!s.ready && s.started == Some(false), "{name}");
            let t = terminated(&s.state).or(terminated(&s.last_state)).unwrap();
            assert_eq!(
                (t.exit_code, t.started_at.as_str(), t.finished_at.as_str()),
                (code, "t1", "t2"),
                "{name}"
            );
            assert_eq!(t.container_id, "process://2", "{name}");
            assert_eq!(t.reason, plan::terminated_reason(code), "{name}");
        }
    }

    #[test]
    fn a_stop_records_the_exit_or_the_last_run() {
        for (name, state, exited, want_state, want_exit) in [
            (
                "exited while stopping",
                CtrState::Running,
                Some(143),
                CtrState::Terminated(143),
                Some(143),
            ),
            (
                "in back-off",
                CtrState::BackOff,
                None,
                CtrState::Terminated(1),
                Some(1),
            ),
            (
                "never started",
                CtrState::Waiting,
                None,
                CtrState::Waiting,
                None,
            ),
        ] {
            let mut s = running();
            if state == CtrState::BackOff {
                record_exit(&mut s, exit(1), Exit::Restart(Duration::from_secs(1)), "p");
            } else if state == CtrState::Waiting {
                s = creating(&v1::Container::default());
            }
            let end = record_stop(&mut s, state, exited.map(exit));
            assert_eq!(end, want_state, "{name}");
            assert_eq!(
                terminated(&s.state).map(|t| t.exit_code),
                want_exit,
                "{name}"
            );
            assert!(!s.ready, "{name}");
        }
    }

    #[test]
    fn an_exit_is_recorded_in_the_state_or_the_last_state() {
        let mut s = running();
        assert!(!exit_recorded(&s, "process://2"));
        record_exit(&mut s, exit(1), Exit::Restart(Duration::from_secs(1)), "p");
        assert!(exit_recorded(&s, "process://2"));
        assert!(!exit_recorded(&s, "process://3"));
    }
}
