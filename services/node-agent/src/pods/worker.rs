//! One pod's worker: it starts the pod's containers (init containers first, one at a time),
//! follows their exits and readiness, restarts them per restartPolicy, enforces
//! activeDeadlineSeconds, writes the status whenever it changed, and, when the pod is
//! marked for deletion, stops the containers with the grace period, writes the final status
//! and only then finishes the delete (the kubelet's order: whoever waits on the pod, say a
//! Job controller with `podReplacementPolicy: Failed`, sees how it ended).
//!
//! Every decision is a pure function ([`crate::plan`], [`super::status`],
//! [`super::container`]); this file only acts on them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bosun_api::object::pod_finished;
use bosun_api::v1::{self, Kind, Object};
use bosun_api::vocab::{condition, phase, policy, status as cond_status};
use bosun_runtime::client::DeleteOptions;
use bosun_runtime::events::{EventRecorder, EventType};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::container::{self, Ctr, Exited, Msg};
use super::status::{self, StatusWriter, Written};
use super::{Ctx, PodRef, meta};
use crate::node::now;
use crate::plan::{self, CtrState, Exit, InitStep};
use crate::runtime::RuntimeError;

/// The grace period when neither the deletion nor the pod gives one (Kubernetes' default).
const DEFAULT_GRACE_SECONDS: i64 = 30;
/// How long stopped containers have to report their exits once their stops returned.
const EXIT_REPORT_WAIT: Duration = Duration::from_secs(5);

/// Why the worker stops running the pod.
pub(super) enum End {
    /// The pod was deleted or handed away; nothing more to do.
    Gone,
    /// The agent is shutting down: leave the containers running.
    Shutdown,
    /// The pod reached a terminal phase (written): wait for its deletion.
    Finished,
}

/// One pod's worker (see the module docs).
pub(super) struct Worker {
    ctx: Arc<Ctx>,
    rx: watch::Receiver<PodRef>,
    /// Set once the pod reached a terminal phase (shared with the dispatcher's slot).
    finished: Arc<AtomicBool>,
    pod: PodRef,
    key: String,
    uid: String,
    node: String,
    policy: String,
    init: Vec<Ctr>,
    main: Vec<Ctr>,
    initialized: bool,
    start_time: String,
    started: Instant,
    reason: String,
    message: String,
    /// A pod-level failure (refusal, deadline) overriding the computed phase.
    failed: bool,
    /// The pod was deleted and its containers stopped: its phase is terminal.
    stopped: bool,
    writer: StatusWriter,
    recorder: EventRecorder,
    tx: mpsc::Sender<Msg>,
    msgs: mpsc::Receiver<Msg>,
    counted_running: bool,
}

impl Worker {
    /// A worker for the pod `rx` holds; `finished` is shared with the dispatcher.
    pub fn new(ctx: Arc<Ctx>, rx: watch::Receiver<PodRef>, finished: Arc<AtomicBool>) -> Worker {
        let pod = rx.borrow().clone();
        let m = meta(&pod);
        let spec = pod.spec.clone().unwrap_or_default();
        let stored = pod.status.clone().unwrap_or_default();
        let ctrs = |cs: &[v1::Container], st: &[v1::ContainerStatus]| -> Vec<Ctr> {
            cs.iter()
                .map(|c| Ctr::new(&pod, c, st, &ctx.place))
                .collect()
        };
        let init = ctrs(&spec.init_containers, &stored.init_container_statuses);
        let main = ctrs(&spec.containers, &stored.container_statuses);
        let (tx, msgs) = mpsc::channel(64);
        let policy = if spec.restart_policy.is_empty() {
            policy::ALWAYS.to_string()
        } else {
            spec.restart_policy.clone()
        };
        Worker {
            recorder: EventRecorder::new(ctx.broker.clone(), "kubelet", &spec.node_name),
            node: spec.node_name.clone(),
            ctx,
            rx,
            key: format!("{}/{}", m.namespace, m.name),
            writer: StatusWriter::new(&m.uid),
            uid: m.uid,
            policy,
            init,
            main,
            initialized: false,
            start_time: if stored.start_time.is_empty() {
                now()
            } else {
                stored.start_time
            },
            started: Instant::now(),
            reason: String::new(),
            message: String::new(),
            failed: false,
            stopped: false,
            tx,
            msgs,
            counted_running: false,
            finished,
            pod,
        }
    }

    /// Runs the pod until it is gone or the agent stops.
    pub async fn run(mut self) {
        let end = if pod_finished(&self.pod) {
            End::Finished
        } else {
            self.live().await
        };
        self.set_counted(false);
        match end {
            End::Finished => {
                // A finished pod's worker only waits for the deletion mark: it lets go of
                // its containers and its copy of the last write, and asks the dispatcher to
                // retire it (see `Dispatcher`).
                self.init = Vec::new();
                self.main = Vec::new();
                self.writer.forget();
                self.finished.store(true, Ordering::Release);
                self.ctx.dispatch.add(self.key.clone());
                self.await_deletion().await
            }
            End::Gone => {
                self.stop_all(Duration::ZERO).await;
                self.ctx.runtime.cleanup(&self.uid).await;
            }
            End::Shutdown => {}
        }
        tracing::debug!(node = %self.node, "pod worker done");
    }

    fn obj(&self) -> Object {
        Object::from((*self.pod).clone())
    }

    async fn event(&self, ty: EventType, reason: &str, message: &str) {
        self.recorder.record(&self.obj(), ty, reason, message).await;
    }

    /// The pod until it finishes, is deleted, or the agent stops.
    async fn live(&mut self) -> End {
        // Refuse what cannot run at all (no command, image missing).
        let mut refused = None;
        for (i, c) in self.init.iter().chain(self.main.iter()).enumerate() {
            if let Err(refusal) = self.ctx.runtime.check(&c.run).await {
                refused = Some((i, refusal));
                break;
            }
        }
        if let Some((i, refusal)) = refused {
            self.event(EventType::Warning, "Failed", &refusal.message)
                .await;
            self.fail(&refusal.reason, &refusal.message);
            container::refused(
                &mut self.ctr_at(i).status,
                &refusal.reason,
                &refusal.message,
            );
            return self.settle().await;
        }
        // Init containers, one at a time, in order.
        let already_init = self.pod.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == condition::INITIALIZED && c.status == cond_status::TRUE)
        });
        if !already_init {
            for idx in 0..self.init.len() {
                if let Err(end) = self.start(true, idx).await {
                    return end;
                }
                loop {
                    if let Some(end) = self.step().await {
                        return end;
                    }
                    match plan::init_step(self.init[idx].state) {
                        InitStep::Wait => {}
                        InitStep::Next => break,
                        InitStep::Fail => {
                            self.fail("Init:Error", "an init container failed");
                            return self.settle().await;
                        }
                    }
                }
            }
        }
        self.initialized = true;
        for idx in 0..self.main.len() {
            if let Err(end) = self.start(false, idx).await {
                return end;
            }
        }
        loop {
            if let Some(end) = self.step().await {
                return end;
            }
            if self.terminal() {
                // The exit that finished the pod may not be written yet.
                return self.settle().await;
            }
        }
    }

    /// The `i`th container, init containers first.
    fn ctr_at(&mut self, i: usize) -> &mut Ctr {
        let n = self.init.len();
        if i < n {
            &mut self.init[i]
        } else {
            &mut self.main[i - n]
        }
    }

    fn ctr_name(&self, init: bool, idx: usize) -> &str {
        let ctrs = if init { &self.init } else { &self.main };
        ctrs.get(idx).map_or("", |c| c.spec.name.as_str())
    }

    fn ctr(&mut self, init: bool, idx: usize) -> &mut Ctr {
        if init {
            &mut self.init[idx]
        } else {
            &mut self.main[idx]
        }
    }

    /// Adopts the running instance a previous agent left, or starts a new one.
    #[tracing::instrument(
        name = "start_container",
        skip(self),
        fields(container = %self.ctr_name(init, idx))
    )]
    async fn start(&mut self, init: bool, idx: usize) -> Result<(), End> {
        let runtime = self.ctx.runtime.clone();
        let run = self.ctr(init, idx).run.clone();
        let recorded = self.ctr(init, idx).status.clone();
        let adopted = match runtime.adopt(&run).await {
            // The exit of this instance was already recorded: it is not ours to wait for.
            Some(inst) if container::exit_recorded(&recorded, &inst.id()) => None,
            Some(inst) => {
                tracing::info!(container = %run.name, id = %inst.id(), "re-adopted a running container");
                Some(inst)
            }
            None => None,
        };
        let (inst, restarted) = match adopted {
            Some(i) => (i, false),
            None => match runtime.start(&run).await {
                Ok(i) => {
                    self.ctx.metrics.container_starts.inc();
                    // A simulated node has no containers to report on (like kwok).
                    if runtime.name() != "sim" {
                        let created = format!("Created container {}", run.name);
                        self.event(EventType::Normal, "Created", &created).await;
                        let started = format!("Started container {}", run.name);
                        self.event(EventType::Normal, "Started", &started).await;
                    }
                    (i, !recorded.container_id.is_empty())
                }
                // Not startable yet (an image pull): waiting with the runtime's reason, tried
                // again when the runtime says.
                Err(RuntimeError::Waiting {
                    reason,
                    message,
                    retry_in,
                }) => {
                    let msg = format!("Error: {reason}: {message}");
                    self.event(EventType::Warning, "Failed", &msg).await;
                    let c = self.ctr(init, idx);
                    c.restart_at = Some(Instant::now() + retry_in);
                    container::refused(&mut c.status, &reason, &message);
                    return Ok(());
                }
                Err(err) => {
                    let msg = err.to_string();
                    self.event(EventType::Warning, "Failed", &msg).await;
                    let c = self.ctr(init, idx);
                    c.state = container::start_failed(&mut c.status, &msg);
                    return Ok(());
                }
            },
        };
        if restarted {
            self.ctx.metrics.container_restarts.inc();
        }
        let uid = self.uid.clone();
        self.ctx.set_running(&uid, &run.name, true);
        let (tx, host) = (self.tx.clone(), self.ctx.place.pod_ip.clone());
        let c = self.ctr(init, idx);
        let ready = !init && c.spec.readiness_probe.is_none();
        c.state = container::record_start(&mut c.status, &inst.id(), restarted, ready, &now());
        c.restart_at = None;
        c.watch(inst, init, idx, &tx, &host);
        Ok(())
    }

    /// Writes what changed, then waits for one thing to happen and handles it; `Some` when
    /// the worker must stop.
    async fn step(&mut self) -> Option<End> {
        // Coalesce what already happened (a sim pod with no duration) into one write.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        while let Ok(msg) = self.msgs.try_recv() {
            self.handle(msg).await;
        }
        if self.write().await == Written::Gone {
            return Some(End::Gone);
        }
        if self.terminal() {
            return None;
        }
        let next_restart = self
            .init
            .iter()
            .chain(self.main.iter())
            .filter_map(|c| c.restart_at)
            .min();
        let deadline = plan::active_deadline(
            self.pod
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds),
        )
        .map(|d| self.started + d);
        let retry_write = self.writer.retry_at();
        tokio::select! {
            _ = self.ctx.shutdown.cancelled() => return Some(End::Shutdown),
            msg = self.msgs.recv() => {
                if let Some(msg) = msg {
                    self.handle(msg).await;
                }
            }
            changed = self.rx.changed() => {
                if changed.is_err() {
                    return Some(End::Gone);
                }
                self.pod = self.rx.borrow_and_update().clone();
                if meta(&self.pod).deletion_timestamp.is_empty() {
                    return None;
                }
                return Some(self.terminate().await);
            }
            _ = sleep_until_opt(next_restart) => self.restart_due().await,
            // A write given up earlier is tried again at the top of the next step.
            _ = sleep_until_opt(retry_write) => {}
            _ = sleep_until_opt(deadline) => {
                let grace = self.grace();
                self.stop_all(grace).await;
                let message = "Pod was active on the node longer than the specified deadline";
                self.fail("DeadlineExceeded", message);
                self.event(EventType::Normal, "DeadlineExceeded", message).await;
                return Some(self.settle().await);
            }
        }
        None
    }

    async fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Ready { idx, id, ready } => {
                if let Some(c) = self.main.get_mut(idx)
                    && c.status.container_id == id
                    && c.state == CtrState::Running
                {
                    c.status.ready = ready;
                }
            }
            Msg::Exited { init, idx, exit } => {
                let (policy, key) = (self.policy.clone(), self.key.clone());
                let (base, cap) = (self.ctx.backoff_base, self.ctx.backoff_cap);
                let c = self.ctr(init, idx);
                if c.status.container_id != exit.id || c.state != CtrState::Running {
                    return;
                }
                c.unwatch();
                let next =
                    plan::on_exit(init, &policy, exit.code, c.status.restart_count, base, cap);
                c.state = container::record_exit(&mut c.status, exit, next, &key);
                if let Exit::Restart(delay) = next {
                    c.restart_at = Some(Instant::now() + delay);
                }
                let name = c.spec.name.clone();
                let uid = self.uid.clone();
                self.ctx.set_running(&uid, &name, false);
                if let Exit::Restart(_) = next {
                    let m = meta(&self.pod);
                    let msg = format!(
                        "Back-off restarting failed container {name} in pod {}_{}({})",
                        m.name, m.namespace, m.uid
                    );
                    self.event(EventType::Warning, "BackOff", &msg).await;
                }
            }
        }
    }

    async fn restart_due(&mut self) {
        let now = Instant::now();
        let due: Vec<(bool, usize)> = self
            .init
            .iter()
            .enumerate()
            .map(|(i, c)| (true, i, c))
            .chain(self.main.iter().enumerate().map(|(i, c)| (false, i, c)))
            .filter(|(_, _, c)| c.restart_at.is_some_and(|t| t <= now))
            .map(|(init, i, _)| (init, i))
            .collect();
        for (init, idx) in due {
            let _ = self.start(init, idx).await;
        }
    }

    /// The deletion's grace period, else the pod's, else Kubernetes' default.
    fn grace(&self) -> Duration {
        let m = meta(&self.pod);
        let secs = m
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        Duration::from_secs(secs.max(0) as u64)
    }

    /// Stops every running container with `grace`, waits for their exits, and records how
    /// each container ended ([`container::record_stop`]).
    async fn stop_all(&mut self, grace: Duration) {
        let mut stops = Vec::new();
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            c.restart_at = None;
            if let Some(inst) = c.unwatch() {
                stops.push((c.spec.name.clone(), inst));
            }
        }
        for (name, _) in &stops {
            let message = format!("Stopping container {name}");
            self.event(EventType::Normal, "Killing", &message).await;
        }
        futures::future::join_all(stops.iter().map(|(_, i)| i.stop(grace))).await;
        // Their exits arrive as messages (one per instance).
        let mut exits: HashMap<(bool, usize), Exited> = HashMap::new();
        let mut pending = stops.len();
        let deadline = Instant::now() + EXIT_REPORT_WAIT;
        while pending > 0 {
            match tokio::time::timeout_at(deadline, self.msgs.recv()).await {
                Ok(Some(Msg::Exited { init, idx, exit })) => {
                    pending -= 1;
                    exits.insert((init, idx), exit);
                }
                Ok(Some(Msg::Ready { .. })) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let uid = self.uid.clone();
        for (init, ctrs) in [(true, &mut self.init), (false, &mut self.main)] {
            for (idx, c) in ctrs.iter_mut().enumerate() {
                let exit = exits
                    .remove(&(init, idx))
                    .filter(|e| e.id == c.status.container_id);
                if exit.is_some() {
                    self.ctx.set_running(&uid, &c.spec.name, false);
                }
                c.state = container::record_stop(&mut c.status, c.state, exit);
            }
        }
    }

    /// The pod is marked for deletion: stop its containers, write the final status, then
    /// finish the delete.
    async fn terminate(&mut self) -> End {
        let grace = self.grace();
        tracing::info!(grace = ?grace, "pod marked for deletion: stopping its containers");
        self.stop_all(grace).await;
        // The kubelet's order: the final status first (a terminal phase, the containers
        // terminated with their exit codes), so whoever waits on the pod sees how it ended;
        // only then the delete.
        self.stopped = true;
        match self.settle().await {
            End::Finished => {
                self.finish_delete().await;
                End::Gone
            }
            end => end,
        }
    }

    async fn finish_delete(&self) {
        self.ctx.runtime.cleanup(&self.uid).await;
        let m = meta(&self.pod);
        let opts = DeleteOptions {
            uid: Some(self.uid.clone()),
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        match self
            .ctx
            .broker
            .delete(Kind::Pod, &m.namespace, &m.name, opts)
            .await
        {
            Ok(_) => tracing::info!("pod deleted"),
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(err) => tracing::warn!(%err, "final pod delete failed"),
        }
    }

    /// A finished pod waits for its deletion mark, then finishes the delete.
    async fn await_deletion(&mut self) {
        loop {
            if !meta(&self.pod).deletion_timestamp.is_empty() {
                self.finish_delete().await;
                return;
            }
            tokio::select! {
                _ = self.ctx.shutdown.cancelled() => return,
                changed = self.rx.changed() => {
                    // Retired or gone: the dispatcher removes the files when the pod goes.
                    if changed.is_err() {
                        return;
                    }
                    self.pod = self.rx.borrow_and_update().clone();
                }
            }
        }
    }

    fn fail(&mut self, reason: &str, message: &str) {
        self.failed = true;
        self.reason = reason.to_string();
        self.message = message.to_string();
    }

    fn set_counted(&mut self, running: bool) {
        if running != self.counted_running {
            self.counted_running = running;
            if running {
                self.ctx.metrics.pods_running.inc();
            } else {
                self.ctx.metrics.pods_running.dec();
            }
        }
    }

    /// The status this worker reports now.
    fn status(&self) -> v1::PodStatus {
        let states: Vec<CtrState> = self.main.iter().map(|c| c.state).collect();
        status::pod_status(status::Facts {
            failed: self.failed,
            stopped: self.stopped,
            initialized: self.initialized,
            states: &states,
            init_statuses: self.init.iter().map(|c| c.status.clone()).collect(),
            statuses: self.main.iter().map(|c| c.status.clone()).collect(),
            reason: &self.reason,
            message: &self.message,
            place: &self.ctx.place,
            start_time: &self.start_time,
            now: &now(),
        })
    }

    /// Whether the pod's phase is terminal.
    fn terminal(&self) -> bool {
        let states: Vec<CtrState> = self.main.iter().map(|c| c.state).collect();
        let p = status::pod_phase(self.failed, &states, self.initialized, self.stopped);
        p == phase::SUCCEEDED || p == phase::FAILED
    }

    /// Writes the status if it changed.
    async fn write(&mut self) -> Written {
        let status = self.status();
        self.set_counted(status.phase == phase::RUNNING);
        self.writer.write(&self.ctx, &self.pod, status).await
    }

    /// Writes the (terminal) status, waiting out the retries of a write that fails:
    /// `Finished` once written, `Gone` when the pod went, `Shutdown` when the agent stops.
    async fn settle(&mut self) -> End {
        loop {
            match self.write().await {
                Written::Done => return End::Finished,
                Written::Gone => return End::Gone,
                Written::Pending => {
                    tokio::select! {
                        _ = self.ctx.shutdown.cancelled() => return End::Shutdown,
                        _ = sleep_until_opt(self.writer.retry_at()) => {}
                    }
                }
            }
        }
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
