//! Running the pods bound to this agent's node(s): a dispatcher turns informer changes into
//! one worker task per pod; the worker starts the containers (init containers first, in
//! order), restarts them per restartPolicy with CrashLoopBackOff, runs readiness probes,
//! enforces activeDeadlineSeconds, kills and finally deletes a pod marked for deletion, and
//! writes the pod status (only when it changed). The decisions are in [`crate::plan`].

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_api::object::pod_finished;
use bosun_api::v1::{self, Kind, Object};
use bosun_runtime::client::{Broker, DeleteOptions};
use bosun_runtime::events::{EventRecorder, EventType};
use bosun_runtime::metrics::{Counter, Gauge, Metrics};
use bosun_runtime::queue::WorkQueue;
use bosun_runtime::telemetry::{TRACEPARENT_ANNOTATION, set_parent_from_traceparent};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::node::now;
use crate::plan::{self, CtrState};
use crate::probe;
use crate::runtime::{self, ContainerSpec, Instance, PodPlace, Runtime};

/// The grace period when neither the deletion nor the pod gives one (Kubernetes' default).
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// The agent's metrics.
#[derive(Clone)]
pub struct AgentMetrics {
    pub pods_running: Gauge,
    pub status_writes: Counter,
    pub container_starts: Counter,
    pub container_restarts: Counter,
}

impl AgentMetrics {
    /// Registers the agent's metrics in `registry`.
    pub fn new(registry: &Metrics) -> AgentMetrics {
        AgentMetrics {
            pods_running: registry.gauge(
                "bosun_node_agent_pods_running",
                "Pods in phase Running on this agent's nodes.",
                &[],
            ),
            status_writes: registry.counter(
                "bosun_node_agent_status_writes_total",
                "Pod status updates written.",
                &[],
            ),
            container_starts: registry.counter(
                "bosun_node_agent_container_starts_total",
                "Container instances started.",
                &[],
            ),
            container_restarts: registry.counter(
                "bosun_node_agent_container_restarts_total",
                "Container restarts (restartPolicy Always / OnFailure).",
                &[],
            ),
        }
    }
}

/// What every pod worker shares.
pub struct Ctx {
    pub broker: Broker,
    pub runtime: Arc<dyn Runtime>,
    /// hostIP (= podIP for process pods) and the broker's address for the pod env.
    pub place: PodPlace,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub metrics: AgentMetrics,
    /// `uid/container` of every running container instance (the Logs server follows these).
    pub running: Arc<Mutex<HashSet<String>>>,
    /// Agent shutdown: workers stop watching but leave their containers running.
    pub shutdown: CancellationToken,
    /// The dispatcher's queue: a worker whose pod finished queues its key, so the dispatcher
    /// retires it.
    pub dispatch: WorkQueue<String>,
}

impl Ctx {
    fn set_running(&self, uid: &str, container: &str, running: bool) {
        if let Ok(mut set) = self.running.lock() {
            let key = format!("{uid}/{container}");
            if running {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        }
    }
}

/// One worker per running pod, keyed by `namespace/name`, told the pod's latest state.
///
/// A worker whose pod finished waits for the pod's deletion mark (to finish the delete) and
/// asks the dispatcher to retire it: unless the pod is being deleted, the dispatcher drops
/// the worker's channel (the worker ends) and keeps a tombstone instead, so a node's
/// thousands of finished pods hold no task, and a late event still showing the pod running
/// cannot start it twice. Only the dispatcher decides this, so no event sent to a worker is
/// lost as it ends. A retired pod's files are removed when the pod is deleted.
pub struct Dispatcher {
    ctx: Arc<Ctx>,
    nodes: HashSet<String>,
    workers: BTreeMap<String, Slot>,
}

/// What the dispatcher holds for one pod key.
enum Slot {
    /// A worker runs the pod with this uid; `finished` once the pod reached a terminal phase.
    Worker {
        uid: String,
        tx: watch::Sender<PodRef>,
        finished: Arc<AtomicBool>,
    },
    /// The pod with this uid finished and its worker was retired.
    Finished(String),
}

impl Slot {
    fn uid(&self) -> &str {
        match self {
            Slot::Worker { uid, .. } | Slot::Finished(uid) => uid,
        }
    }

    /// Whether the pod's files are the dispatcher's to remove (its worker finished or
    /// ended; a running worker removes them itself when told the pod is gone).
    fn idle(&self) -> bool {
        match self {
            Slot::Worker { tx, finished, .. } => tx.is_closed() || finished.load(Ordering::Acquire),
            Slot::Finished(_) => true,
        }
    }
}

/// A pod as the informer cached it, shared with the cache (a worker holds no copy of its own).
#[derive(Clone)]
struct PodRef(Arc<Object>);

impl PodRef {
    fn new(obj: Arc<Object>) -> Option<PodRef> {
        obj.as_pod().is_some().then_some(PodRef(obj))
    }
}

impl std::ops::Deref for PodRef {
    type Target = v1::Pod;

    fn deref(&self) -> &v1::Pod {
        match &self.0.object {
            Some(v1::object::Object::Pod(pod)) => pod,
            _ => unreachable!("PodRef::new takes pods only"),
        }
    }
}

impl Dispatcher {
    /// A dispatcher for the pods bound to any of `nodes`.
    pub fn new(ctx: Arc<Ctx>, nodes: &[String]) -> Dispatcher {
        Dispatcher {
            ctx,
            nodes: nodes.iter().cloned().collect(),
            workers: BTreeMap::new(),
        }
    }

    /// Hands `obj` (the cached state of pod `key`, `None` when gone) to its worker.
    pub fn dispatch(&mut self, key: &str, obj: Option<Arc<Object>>) {
        let pod = obj.and_then(PodRef::new).filter(|p| {
            p.spec
                .as_ref()
                .is_some_and(|s| self.nodes.contains(&s.node_name))
        });
        let Some(pod) = pod else {
            // Gone (or no longer ours): dropping the sender tells a running worker.
            if let Some(slot) = self.workers.remove(key) {
                self.release(slot);
            }
            return;
        };
        let (uid, marked) = pod.metadata.as_ref().map_or((String::new(), false), |m| {
            (m.uid.clone(), !m.deletion_timestamp.is_empty())
        });
        match self.workers.get(key) {
            Some(Slot::Worker {
                uid: w,
                tx,
                finished,
            }) if *w == uid && !tx.is_closed() => {
                if finished.load(Ordering::Acquire) && !marked {
                    // Retire it: dropping its sender ends it.
                    self.workers.insert(key.to_string(), Slot::Finished(uid));
                } else {
                    let _ = tx.send(pod);
                }
                return;
            }
            Some(Slot::Finished(w)) if *w == uid && !marked => return,
            // Finished before this agent saw it (say, before a restart): nothing to run.
            _ if pod_finished(&pod) && !marked => {
                self.put(key, Slot::Finished(uid));
                return;
            }
            _ => {}
        }
        let span = pod_span(key, &pod);
        let (tx, rx) = watch::channel(pod);
        let done = Arc::new(AtomicBool::new(false));
        self.put(
            key,
            Slot::Worker {
                uid,
                tx,
                finished: done.clone(),
            },
        );
        let ctx = self.ctx.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move { Worker::new(ctx, rx, done).run().await },
            span,
        ));
    }

    /// Puts `slot` under `key`; a slot it replaces that held another pod (same name, new
    /// uid) is released.
    fn put(&mut self, key: &str, slot: Slot) {
        let uid = slot.uid().to_string();
        if let Some(old) = self.workers.insert(key.to_string(), slot)
            && old.uid() != uid
        {
            self.release(old);
        }
    }

    /// Lets go of a pod: a running worker is told by its sender being dropped (and cleans up
    /// itself); the files of a pod whose worker finished or ended are removed here.
    fn release(&self, slot: Slot) {
        if slot.idle() {
            let (ctx, uid) = (self.ctx.clone(), slot.uid().to_string());
            tokio::spawn(async move { ctx.runtime.cleanup(&uid).await });
        }
    }
}

/// The span a pod's worker runs in: a child of the trace that created the pod (its
/// `bosun.dev/traceparent` annotation), so the containers' starts and the status writes,
/// and the broker calls they make, belong to the trace of, say, the `bosun apply` whose Job
/// made the pod. It lasts as long as the worker (until the pod is deleted or the agent
/// stops); its short children ([`Worker::start`], the status writes) are exported as they end.
fn pod_span(key: &str, pod: &v1::Pod) -> tracing::Span {
    let span = tracing::info_span!("pod", pod = %key);
    if let Some(tp) = pod
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.get(TRACEPARENT_ANNOTATION))
    {
        set_parent_from_traceparent(&span, tp);
    }
    span
}

/// A message from a container's waiter or prober.
enum Msg {
    Exited {
        init: bool,
        idx: usize,
        id: String,
        code: i32,
        at: String,
    },
    Ready {
        idx: usize,
        id: String,
        ready: bool,
    },
}

/// One container of the pod.
struct Ctr {
    spec: v1::Container,
    run: ContainerSpec,
    status: v1::ContainerStatus,
    state: CtrState,
    instance: Option<Arc<dyn Instance>>,
    restart_at: Option<Instant>,
    prober: Option<tokio::task::JoinHandle<()>>,
}

enum End {
    /// The pod was deleted or handed away; nothing more to do.
    Gone,
    /// The agent is shutting down: leave the containers running.
    Shutdown,
    /// The pod reached a terminal phase: wait for its deletion.
    Finished,
}

struct Worker {
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
    last_written: Option<v1::PodStatus>,
    /// The pod as this worker's last status write left it: the base of the next write when
    /// the watch has not delivered anything newer (a write based on the watched copy alone
    /// would conflict with our own previous write).
    written_pod: Option<v1::Pod>,
    recorder: EventRecorder,
    tx: mpsc::Sender<Msg>,
    msgs: mpsc::Receiver<Msg>,
    counted_running: bool,
}

fn meta(pod: &v1::Pod) -> v1::ObjectMeta {
    pod.metadata.clone().unwrap_or_default()
}

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

impl Worker {
    fn new(ctx: Arc<Ctx>, rx: watch::Receiver<PodRef>, finished: Arc<AtomicBool>) -> Worker {
        let pod = rx.borrow().clone();
        let m = meta(&pod);
        let spec = pod.spec.clone().unwrap_or_default();
        let key = format!("{}/{}", m.namespace, m.name);
        let old = pod.status.clone().unwrap_or_default();
        let mk = |c: &v1::Container, old_statuses: &[v1::ContainerStatus]| {
            let env = runtime::container_env(&pod, c, &ctx.place);
            let run = ContainerSpec {
                pod_uid: m.uid.clone(),
                pod_key: key.clone(),
                name: c.name.clone(),
                image: c.image.clone(),
                command: c.command.clone(),
                args: c.args.clone(),
                env,
                working_dir: c.working_dir.clone(),
                binds: runtime::binds(&pod, c),
                sim: Some(sim_of(&pod)),
            };
            let status = old_statuses
                .iter()
                .find(|s| s.name == c.name)
                .cloned()
                .unwrap_or_else(|| v1::ContainerStatus {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    state: Some(v1::ContainerState {
                        waiting: Some(v1::ContainerStateWaiting {
                            reason: "ContainerCreating".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    started: Some(false),
                    ..Default::default()
                });
            Ctr {
                spec: c.clone(),
                run,
                status,
                state: CtrState::Waiting,
                instance: None,
                restart_at: None,
                prober: None,
            }
        };
        let init = spec
            .init_containers
            .iter()
            .map(|c| mk(c, &old.init_container_statuses))
            .collect();
        let main = spec
            .containers
            .iter()
            .map(|c| mk(c, &old.container_statuses))
            .collect();
        let (tx, msgs) = mpsc::channel(64);
        let policy = if spec.restart_policy.is_empty() {
            "Always".to_string()
        } else {
            spec.restart_policy.clone()
        };
        Worker {
            recorder: EventRecorder::new(ctx.broker.clone(), "kubelet", &spec.node_name),
            node: spec.node_name.clone(),
            ctx,
            rx,
            uid: m.uid.clone(),
            key,
            policy,
            init,
            main,
            initialized: false,
            start_time: if old.start_time.is_empty() {
                now()
            } else {
                old.start_time.clone()
            },
            started: Instant::now(),
            reason: String::new(),
            message: String::new(),
            failed: false,
            stopped: false,
            last_written: None,
            written_pod: None,
            tx,
            msgs,
            counted_running: false,
            finished,
            pod,
        }
    }

    async fn run(mut self) {
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
                self.written_pod = None;
                self.last_written = None;
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
        for c in self.init.iter().chain(self.main.iter()) {
            if let Err(refusal) = self.ctx.runtime.check(&c.run).await {
                let name = c.spec.name.clone();
                self.event(EventType::Warning, "Failed", &refusal.message)
                    .await;
                self.fail(&refusal.reason, &refusal.message);
                for c in self.init.iter_mut().chain(self.main.iter_mut()) {
                    if c.spec.name == name {
                        c.status.state = Some(v1::ContainerState {
                            waiting: Some(v1::ContainerStateWaiting {
                                reason: refusal.reason.clone(),
                                message: refusal.message.clone(),
                            }),
                            ..Default::default()
                        });
                    }
                }
                return match self.write().await {
                    true => End::Finished,
                    false => End::Gone,
                };
            }
        }
        // Init containers, one at a time, in order.
        let already_init = self.pod.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "Initialized" && c.status == "True")
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
                    if matches!(self.init[idx].state, CtrState::Terminated(0)) {
                        break;
                    }
                    if matches!(self.init[idx].state, CtrState::Terminated(_)) {
                        // An init container failed and will not be restarted.
                        self.fail("Init:Error", "an init container failed");
                        return if self.write().await {
                            End::Finished
                        } else {
                            End::Gone
                        };
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
            if self.phase() == "Succeeded" || self.phase() == "Failed" {
                // The exit that finished the pod may not be written yet.
                return if self.write().await {
                    End::Finished
                } else {
                    End::Gone
                };
            }
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
        let adopted = runtime.adopt(&run).await;
        let mut restarted = false;
        let inst = match adopted {
            // The exit of this instance was already recorded: it is not ours to wait for.
            Some(inst) if exit_recorded(&recorded, &inst.id()) => None,
            Some(inst) => {
                tracing::info!(container = %run.name, id = %inst.id(), "re-adopted a running container");
                Some(inst)
            }
            None => None,
        };
        let inst = match inst {
            Some(i) => i,
            None => {
                restarted = !recorded.container_id.is_empty();
                match runtime.start(&run).await {
                    Ok(i) => {
                        self.ctx.metrics.container_starts.inc();
                        // A simulated node has no containers to report on (like kwok).
                        if runtime.name() != "sim" {
                            self.event(
                                EventType::Normal,
                                "Created",
                                &format!("Created container {}", run.name),
                            )
                            .await;
                            self.event(
                                EventType::Normal,
                                "Started",
                                &format!("Started container {}", run.name),
                            )
                            .await;
                        }
                        i
                    }
                    Err(err) => {
                        let msg = err.to_string();
                        self.event(EventType::Warning, "Failed", &msg).await;
                        let c = self.ctr(init, idx);
                        c.state = CtrState::Terminated(128);
                        c.status.state = Some(v1::ContainerState {
                            terminated: Some(v1::ContainerStateTerminated {
                                exit_code: 128,
                                reason: "StartError".into(),
                                message: msg,
                                finished_at: now(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        });
                        return Ok(());
                    }
                }
            }
        };
        if restarted {
            self.ctx.metrics.container_restarts.inc();
        }
        let id = inst.id();
        let has_probe = self.ctr(init, idx).spec.readiness_probe.is_some();
        let uid = self.uid.clone();
        self.ctx.set_running(&uid, &run.name, true);
        let started_at = match &recorded.state {
            Some(v1::ContainerState {
                running: Some(r), ..
            }) if recorded.container_id == id => r.started_at.clone(),
            _ => now(),
        };
        let tx = self.tx.clone();
        let probe_tx = self.tx.clone();
        let host = self.ctx.place.pod_ip.clone();
        let c = self.ctr(init, idx);
        if restarted && c.status.container_id != id {
            c.status.restart_count += 1;
        }
        c.state = CtrState::Running;
        c.instance = Some(inst.clone());
        c.restart_at = None;
        c.status.container_id = id.clone();
        c.status.started = Some(true);
        c.status.ready = !has_probe && !init;
        c.status.state = Some(v1::ContainerState {
            running: Some(v1::ContainerStateRunning { started_at }),
            ..Default::default()
        });
        // The waiter.
        let wid = id.clone();
        tokio::spawn(async move {
            let code = inst.wait().await;
            let _ = tx
                .send(Msg::Exited {
                    init,
                    idx,
                    id: wid,
                    code,
                    at: now(),
                })
                .await;
        });
        if let (false, Some(p)) = (init, c.spec.readiness_probe.clone()) {
            let env = c.run.env.clone();
            c.prober = Some(tokio::spawn(probe::run(*p, host, env, move |ready| {
                let tx = probe_tx.clone();
                let id = id.clone();
                async move {
                    let _ = tx.send(Msg::Ready { idx, id, ready }).await;
                }
            })));
        }
        Ok(())
    }

    /// Waits for one thing to happen and handles it; `Some` when the worker must stop.
    async fn step(&mut self) -> Option<End> {
        // Coalesce what already happened (a sim pod with no duration) into one write.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        while let Ok(msg) = self.msgs.try_recv() {
            self.handle(msg).await;
        }
        if !self.write().await {
            return Some(End::Gone);
        }
        if self.phase() == "Succeeded" || self.phase() == "Failed" {
            return None;
        }
        let next_restart = self
            .init
            .iter()
            .chain(self.main.iter())
            .filter_map(|c| c.restart_at)
            .min();
        let deadline = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds)
            .filter(|d| *d >= 0)
            .map(|d| self.started + Duration::from_secs(d as u64));
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
            _ = sleep_until_opt(deadline) => {
                let grace = self.grace();
                self.stop_all(grace).await;
                self.fail("DeadlineExceeded", "Pod was active on the node longer than the specified deadline");
                self.event(EventType::Normal, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline").await;
                return Some(if self.write().await { End::Finished } else { End::Gone });
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
            Msg::Exited {
                init,
                idx,
                id,
                code,
                at,
            } => {
                let policy = self.policy.clone();
                let uid = self.uid.clone();
                let (base, cap) = (self.ctx.backoff_base, self.ctx.backoff_cap);
                let key = self.key.clone();
                let c = self.ctr(init, idx);
                if c.status.container_id != id || c.state != CtrState::Running {
                    return;
                }
                if let Some(p) = c.prober.take() {
                    p.abort();
                }
                c.instance = None;
                let started_at = c
                    .status
                    .state
                    .as_ref()
                    .and_then(|s| s.running.as_ref())
                    .map(|r| r.started_at.clone())
                    .unwrap_or_default();
                let terminated = v1::ContainerState {
                    terminated: Some(v1::ContainerStateTerminated {
                        exit_code: code,
                        reason: plan::terminated_reason(code).into(),
                        started_at,
                        finished_at: at,
                        container_id: id,
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                c.status.ready = false;
                c.status.started = Some(false);
                let name = c.spec.name.clone();
                // Init containers restart on failure unless Never (Kubernetes).
                let restart = if init {
                    code != 0 && policy != "Never"
                } else {
                    plan::should_restart(&policy, code)
                };
                let mut backoff = None;
                if restart {
                    let delay = plan::backoff_delay(c.status.restart_count, base, cap);
                    c.state = CtrState::BackOff;
                    c.restart_at = Some(Instant::now() + delay);
                    c.status.last_state = Some(terminated);
                    c.status.state = Some(v1::ContainerState {
                        waiting: Some(v1::ContainerStateWaiting {
                            reason: "CrashLoopBackOff".into(),
                            message: format!(
                                "back-off {delay:?} restarting failed container={name} pod={key}"
                            ),
                        }),
                        ..Default::default()
                    });
                    backoff = Some(name.clone());
                } else {
                    c.state = CtrState::Terminated(code);
                    c.status.state = Some(terminated);
                }
                self.ctx.set_running(&uid, &name, false);
                if let Some(name) = backoff {
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

    /// Stops every running container with `grace`, waiting for them to exit.
    async fn stop_all(&mut self, grace: Duration) {
        let mut stops = Vec::new();
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            c.restart_at = None;
            if let Some(p) = c.prober.take() {
                p.abort();
            }
            if let Some(inst) = c.instance.take() {
                stops.push((c.spec.name.clone(), inst));
            }
        }
        for (name, _) in &stops {
            self.event(
                EventType::Normal,
                "Killing",
                &format!("Stopping container {name}"),
            )
            .await;
        }
        futures::future::join_all(stops.iter().map(|(_, i)| async move {
            i.stop(grace).await;
        }))
        .await;
        // Their exits arrive as messages: record them.
        let mut pending: usize = stops.len();
        let deadline = Instant::now() + Duration::from_secs(5);
        while pending > 0 {
            match tokio::time::timeout_at(deadline, self.msgs.recv()).await {
                Ok(Some(Msg::Exited {
                    init,
                    idx,
                    id,
                    code,
                    at,
                })) => {
                    pending -= 1;
                    let c = self.ctr(init, idx);
                    c.state = CtrState::Terminated(code);
                    c.status.ready = false;
                    c.status.started = Some(false);
                    let started_at = c
                        .status
                        .state
                        .as_ref()
                        .and_then(|s| s.running.as_ref())
                        .map(|r| r.started_at.clone())
                        .unwrap_or_default();
                    c.status.state = Some(v1::ContainerState {
                        terminated: Some(v1::ContainerStateTerminated {
                            exit_code: code,
                            reason: plan::terminated_reason(code).into(),
                            started_at,
                            finished_at: at,
                            container_id: id,
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                    let name = c.spec.name.clone();
                    let uid = self.uid.clone();
                    self.ctx.set_running(&uid, &name, false);
                }
                Ok(Some(Msg::Ready { .. })) => {}
                Ok(None) | Err(_) => break,
            }
        }
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            if c.state != CtrState::Running && !matches!(c.state, CtrState::Terminated(_)) {
                c.state = CtrState::Terminated(0);
            }
        }
    }

    /// The pod is marked for deletion: stop its containers, then finish the delete.
    async fn terminate(&mut self) -> End {
        let grace = self.grace();
        tracing::info!(grace = ?grace, "pod marked for deletion: stopping its containers");
        self.stop_all(grace).await;
        // The kubelet's order: the final status first (a terminal phase, the containers
        // terminated with their exit codes), so whoever waits on the pod (the Job controller
        // with `podReplacementPolicy: Failed`) sees how it ended; only then the delete.
        self.stopped = true;
        if !self.write().await {
            return End::Gone;
        }
        self.finish_delete().await;
        End::Gone
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

    fn phase(&self) -> &'static str {
        if self.failed {
            return "Failed";
        }
        let states: Vec<CtrState> = self.main.iter().map(|c| c.state).collect();
        plan::pod_phase(&states, self.initialized, self.stopped)
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

    /// The status this worker reports now (conditions not yet merged with the stored ones).
    fn status(&self) -> v1::PodStatus {
        let phase = self.phase();
        let ready = !self.main.is_empty() && self.main.iter().all(|c| c.status.ready);
        v1::PodStatus {
            phase: phase.to_string(),
            conditions: plan::conditions(self.initialized, ready, phase, &now()),
            message: self.message.clone(),
            reason: self.reason.clone(),
            host_ip: self.ctx.place.host_ip.clone(),
            pod_ip: self.ctx.place.pod_ip.clone(),
            start_time: self.start_time.clone(),
            init_container_statuses: self.init.iter().map(|c| c.status.clone()).collect(),
            container_statuses: self.main.iter().map(|c| c.status.clone()).collect(),
            ..Default::default()
        }
    }

    /// Writes the status if it changed; `false` when the pod is gone.
    async fn write(&mut self) -> bool {
        let status = self.status();
        let same = self.last_written.as_ref().is_some_and(|last| {
            let mut a = last.clone();
            a.conditions.clear();
            let mut b = status.clone();
            b.conditions.clear();
            a == b
                && last
                    .conditions
                    .iter()
                    .map(|c| &c.status)
                    .eq(status.conditions.iter().map(|c| &c.status))
        });
        if same {
            return true;
        }
        let span = tracing::info_span!("write_status", phase = %status.phase);
        tracing::Instrument::instrument(self.write_changed(status), span).await
    }

    /// Writes `status` (changed since the last write), re-reading the pod on a conflict;
    /// `false` when the pod is gone.
    async fn write_changed(&mut self, status: v1::PodStatus) -> bool {
        let running = status.phase == "Running";
        self.set_counted(running);
        let watched = meta(&self.pod).resource_version.parse::<i64>().unwrap_or(0);
        let mut pod = match self.written_pod.take() {
            Some(w)
                if meta(&w).uid == self.uid
                    && meta(&w).resource_version.parse::<i64>().unwrap_or(0) > watched =>
            {
                w
            }
            _ => (*self.pod).clone(),
        };
        for _ in 0..10 {
            let stored = pod.status.clone().unwrap_or_default();
            let mut s = status.clone();
            s.conditions = plan::merge_conditions(&stored.conditions, s.conditions.clone());
            s.nominated_node_name = stored.nominated_node_name.clone();
            s.qos_class = stored.qos_class.clone();
            pod.status = Some(s.clone());
            match self
                .ctx
                .broker
                .update_status(Object::from(pod.clone()))
                .await
            {
                Ok(written) => {
                    self.ctx.metrics.status_writes.inc();
                    // Kept as computed, not as merged with the stored conditions (PodScheduled
                    // from the bind): the next `write` compares it with what `status()`
                    // computes then, and a merged copy would always differ (one no-op
                    // UpdateStatus per pod).
                    self.last_written = Some(status);
                    self.written_pod = written.into_pod();
                    return true;
                }
                Err(e) if e.is_not_found() => return false,
                Err(e) if e.is_conflict() || e.is_transient() => {
                    match self
                        .ctx
                        .broker
                        .get_opt(Kind::Pod, &meta(&pod).namespace, &meta(&pod).name)
                        .await
                    {
                        Ok(Some(o)) => match o.into_pod() {
                            Some(p) if meta(&p).uid == self.uid => pod = p,
                            _ => return false,
                        },
                        Ok(None) => return false,
                        Err(err) => {
                            tracing::warn!(%err, "re-reading the pod failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "pod status update failed");
                    return true;
                }
            }
        }
        true
    }
}

/// Whether `status` already records the exit of instance `id`.
fn exit_recorded(status: &v1::ContainerStatus, id: &str) -> bool {
    let term = |s: &Option<v1::ContainerState>| {
        s.as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.container_id == id)
    };
    term(&status.state) || term(&status.last_state)
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
