//! bosun's Job controller (Kubernetes' `job` controller, KUBERNETES.md section A).
//!
//! Informers over Jobs and pods feed the controller runtime's work queue (a pod change
//! enqueues its controlling Job; an orphan pod's change, the Jobs whose selector it
//! matches). One reconcile first **claims** the Job's pods with the runtime's controller-ref
//! manager (its pods whose labels no longer match its selector are released, orphans that
//! match are adopted with the tracking finalizer), gathers them (plus the pods it created a
//! moment ago that the watch has not shown yet: the runtime's expectations), the state of
//! the Jobs in `spec.dependsOn`, and asks [`plan::plan`] what to do. It then acts, through
//! the runtime's [`Writer`] (so the act half is tested in-process with a recording fake), in
//! the order exact counting needs: **status first** (conflict-checked on the Job's
//! resourceVersion), then finalizer releases, then deletions, then creations, then events
//! (queued to the non-blocking recorder).
//!
//! Pods whose Job is gone but that still carry the tracking finalizer are released by a
//! small orphan sweeper (Kubernetes' `orphanQueue`), so nothing is left stuck Terminating.
//!
//! Scale-out (issue 12; `bosun_runtime::sharded`): the controller runs as one of several
//! replicas, each reconciling the Jobs of the shards it holds ([`Config::sharding`]: the
//! membership's, or a test's). Sharded: the Job informer (the
//! runtime gates keys by it), the pod informer (a pod follows its Job; orphans are seen by
//! every replica, and adopted under the fence of the adopting Job's shard), the orphan
//! sweeper (a pod is released only by the replica holding its shard, under that fence).
//! Not sharded: the informer that wakes dependents, because a Job's `dependsOn` may name a
//! Job of any shard (the keys it wakes are gated). Pod creations, deletions and releases
//! run in a `JoinSet` off the reconcile task, each wrapped in `carry_fence`. Events are
//! written by the recorder's own task, unfenced: they are not shard state.

pub mod config;
pub mod error;
pub mod indexes;
pub mod plan;
pub mod pods;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bosun_api::selector::LabelSelector;
use bosun_api::shard;
use bosun_api::vocab::{condition, phase};
use bosun_api::{Kind, Object, v1};
use bosun_runtime::cache::{Cached, Change, Store};
use bosun_runtime::claim::{self, Claim, OrphanIndex, Outcome, Owner};
use bosun_runtime::client::{Broker, ClientError, DeleteOptions, Selector};
use bosun_runtime::controller::{Action, Controller, backoff_on_error};
use bosun_runtime::events::{EventRecorder, EventType};
use bosun_runtime::expectations::{Expectations, Seen};
use bosun_runtime::informer::Informer;
use bosun_runtime::metrics::{Counter, Metrics};
use bosun_runtime::queue::Backoff;
use bosun_runtime::sharded::{Gate, Replica, Sharding, carry_fence, fenced, gate};
use bosun_runtime::writer::Writer;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::{Error, Result};
use plan::{Dependency, DependencyState, Inputs};
use pods::{CachedPod, PodFacts, TRACKING_FINALIZER};

/// The component name on events, and the `managedBy` value this controller answers to.
pub const COMPONENT: &str = "job-controller";
pub const MANAGED_BY: &str = "kubernetes.io/job-controller";
/// A pod created (or deleted) and not yet seen through the watch is assumed for this long.
const IN_FLIGHT_TTL: Duration = Duration::from_secs(60);
/// Pod creations, finalizer releases and deletions in flight per reconcile.
const POD_CALLS_IN_FLIGHT: usize = 64;
/// Events waiting to be written at most (beyond, dropped and counted: never waited for).
const EVENTS_QUEUED: usize = 4096;
/// How soon a reconcile that lost a write race looks again (its cache is catching up).
const CONFLICT_RETRY: Duration = Duration::from_millis(20);

struct JobMetrics {
    pods_created: Counter,
    pods_deleted: Counter,
    pods_released: Counter,
    pods_adopted: Counter,
    pods_orphaned: Counter,
    conflicts: Counter,
}

impl JobMetrics {
    fn new(m: &Metrics) -> JobMetrics {
        JobMetrics {
            pods_created: m.counter(
                "bosun_job_pods_created_total",
                "Pods created for Jobs.",
                &[],
            ),
            pods_deleted: m.counter(
                "bosun_job_pods_deleted_total",
                "Pods the controller deleted.",
                &[],
            ),
            pods_released: m.counter(
                "bosun_job_pods_released_total",
                "Tracking finalizers removed after counting.",
                &[],
            ),
            pods_adopted: m.counter(
                "bosun_job_pods_adopted_total",
                "Orphan pods matching a Job's selector that the Job adopted.",
                &[],
            ),
            pods_orphaned: m.counter(
                "bosun_job_pods_orphaned_total",
                "Pods released because their labels no longer match their Job's selector.",
                &[],
            ),
            conflicts: m.counter(
                "bosun_job_status_conflicts_total",
                "Status writes that lost a race and were retried.",
                &[],
            ),
        }
    }
}

struct Ctx {
    /// Every write (and the fresh reads writes need) goes through here.
    writer: Arc<dyn Writer>,
    pods: Store<CachedPod>,
    /// Where cached pods share their repeated values (adopted pods are projected here too).
    shared: Arc<pods::Shared>,
    /// The cached pods with no controller, per namespace: adoption candidates.
    orphans: Arc<OrphanIndex>,
    jobs: Store,
    /// The Jobs as the informer that wakes dependents saw them: dependency states are read
    /// here, so a dependent woken by a change always sees that change.
    dependencies: Store,
    recorder: EventRecorder,
    /// Pods created (with their index) or deleted by this process and not yet seen through
    /// the watch, per Job uid.
    expectations: Expectations<Option<i32>>,
    metrics: JobMetrics,
    /// The shards this replica holds (the orphan sweeper acts only for them).
    sharding: Sharding,
}

/// Runs the Job controller against the broker in `config` until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let broker = Broker::connect_lazy(&config.broker.server)?;
    let registry = Metrics::new();
    let metrics_task = config.metrics.serve(&registry, &shutdown).await?;
    // Scale-out: this replica's shards (see `bosun_runtime::sharded::Replica`).
    let mut replica = Replica::join(
        shard::Controller::Job,
        &config.broker.server,
        &config.replica,
        config.sharding.clone(),
        &registry,
        &shutdown,
    )?;
    let sharding = replica.sharding.clone();
    const KIND: shard::Controller = shard::Controller::Job;

    let jobs = Informer::for_broker(&broker, Kind::Job, Selector::all());
    // The pod cache keeps a compact `CachedPod` per pod, its repeated strings shared: never
    // the pod itself, so `release_one` sends a finalizer-only update by uid.
    let shared = Arc::new(pods::Shared::default());
    let mut pods = Informer::projected(Arc::new(broker.clone()), Kind::Pod, Selector::all(), {
        let shared = shared.clone();
        move |obj| CachedPod::new(&obj, &shared)
    })
    .with_metrics(&registry)
    .sharded(sharding.held.clone(), KIND);
    let pod_store = pods.store();
    // Pods still tracked whose Job is gone go to the orphan sweeper.
    let (orphans_tx, orphans_rx) = mpsc::unbounded_channel::<Arc<CachedPod>>();
    pods.on_change(move |change: &Change<CachedPod>| {
        if let Some(pod) = &change.new
            && pod.facts.tracked
        {
            let _ = orphans_tx.send(pod.clone());
        }
    });
    // Jobs changing state wake the Jobs that depend on them. The dependents are found, and
    // the dependencies' states read, in this informer's own store: it is updated before
    // its handlers run, whereas the primary store may not have the change yet.
    let dependents = Informer::for_broker(&broker, Kind::Job, Selector::all());
    let dependency_store = dependents.store();
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let controller = Controller::with_backoff("job", jobs, &registry, backoff)
        .sharded(sharding.held.clone(), KIND);
    let job_store = controller.store();
    // Orphan pods wake the Jobs whose selector they match (Kubernetes' `getPodJobs`).
    let orphans = Arc::new(OrphanIndex::default());
    pods.on_change({
        let (orphans, jobs, queue) = (orphans.clone(), job_store.clone(), controller.queue());
        move |change: &Change<CachedPod>| {
            orphans.observe(change);
            claim::wake_adopters(&jobs, &queue, change, job_selector, |p, s| {
                p.with_labels(s, |l| s.matches(l))
            });
        }
    });
    let controller = controller
        .owns(pods, "Job")
        .watches(dependents, {
            let jobs = dependency_store.clone();
            move |change| dependents_of(&jobs, change)
        })
        .workers(config.workers);
    replica.report_queue(controller.queue());

    let writer: Arc<dyn Writer> = Arc::new(broker);
    let ctx = Arc::new(Ctx {
        recorder: EventRecorder::with_writer(
            writer.clone(),
            COMPONENT,
            &config.replica.replica,
            EVENTS_QUEUED,
        )
        .with_metrics(&registry),
        writer,
        pods: pod_store,
        shared,
        orphans,
        jobs: job_store,
        dependencies: dependency_store,
        expectations: Expectations::new(IN_FLIGHT_TTL),
        metrics: JobMetrics::new(&registry),
        sharding,
    });
    let sweeper = tokio::spawn(sweep_orphans(ctx.clone(), orphans_rx, shutdown.clone()));
    controller
        .run(reconcile, backoff_on_error, ctx, shutdown)
        .await;
    replica.left().await;
    sweeper.abort();
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    Ok(())
}

/// The Jobs (same namespace) whose `dependsOn` names the changed Job.
fn dependents_of(jobs: &Store, change: &Change) -> Vec<String> {
    let Some(changed) = change.new.as_ref().or(change.old.as_ref()) else {
        return Vec::new();
    };
    jobs.list_namespace(changed.namespace())
        .iter()
        .filter(|o| {
            o.as_job()
                .and_then(|j| j.spec.as_ref())
                .is_some_and(|s| s.depends_on.iter().any(|d| d == changed.name()))
        })
        .map(|o| o.key())
        .collect()
}

/// A Job's `spec.selector`, parsed; `None` when absent or invalid (it then claims nothing
/// beyond the pods it controls, and releases none).
fn job_selector(obj: &Object) -> Option<LabelSelector> {
    let sel = obj.as_job()?.spec.as_ref()?.selector.as_ref()?;
    LabelSelector::from_proto(sel).ok()
}

/// The state of the Job `name` in `namespace`, for a Job that depends on it.
fn dependency_state(jobs: &Store, namespace: &str, name: &str) -> DependencyState {
    let Some(obj) = jobs.get(&bosun_api::object::object_key(namespace, name)) else {
        return DependencyState::Pending("not found".into());
    };
    let Some(job) = obj.as_job() else {
        return DependencyState::Pending("not a Job".into());
    };
    let status = job.status.clone().unwrap_or_default();
    if plan::true_condition(&status, plan::COMPLETE).is_some() {
        return DependencyState::Complete;
    }
    if let Some(c) = plan::true_condition(&status, plan::FAILED) {
        return DependencyState::Failed(c.reason.clone());
    }
    let suspended = job.spec.as_ref().is_some_and(|s| s.suspend == Some(true));
    DependencyState::Pending(
        if suspended {
            condition::SUSPENDED
        } else {
            phase::RUNNING
        }
        .into(),
    )
}

async fn reconcile(obj: Arc<Object>, ctx: Arc<Ctx>) -> Result<Action> {
    let Some(job) = obj.as_job() else {
        return Ok(Action::AwaitChange);
    };
    let spec = job.spec.clone().unwrap_or_default();
    if spec.managed_by.as_deref().is_some_and(|m| m != MANAGED_BY) {
        tracing::debug!(job = %obj.key(), managed_by = ?spec.managed_by, "managed by another controller; skipped");
        return Ok(Action::AwaitChange);
    }
    let meta = job.metadata.clone().unwrap_or_default();
    let cached: Vec<Arc<CachedPod>> = ctx
        .pods
        .by_owner(&meta.uid)
        .into_iter()
        .filter(|p| p.controller.as_ref().is_some_and(|r| r.uid == meta.uid))
        .collect();
    if !meta.deletion_timestamp.is_empty() {
        // Being deleted: let its pods go so the deletion can finish.
        let tracked: Vec<Arc<CachedPod>> = cached.into_iter().filter(|p| p.facts.tracked).collect();
        release(&ctx, tracked).await?;
        ctx.expectations.forget(&meta.uid);
        return Ok(Action::AwaitChange);
    }
    let cached = match job_selector(&obj) {
        Some(selector) => claim_pods(&ctx, &Owner::of(&obj), &selector, cached).await?,
        None => cached,
    };
    // Counted, released, finished pods only matter for what a replacement of their index
    // inherits (backoffLimitPerIndex); skipping them keeps a reconcile O(pods in play).
    let in_play: Vec<Arc<CachedPod>> = if spec.backoff_limit_per_index.is_some() {
        cached.clone()
    } else {
        cached
            .iter()
            .filter(|p| p.facts.tracked || !p.facts.finished())
            .cloned()
            .collect()
    };
    let facts = with_in_flight(&ctx, &meta.uid, &in_play);
    let dependencies: Vec<Dependency> = spec
        .depends_on
        .iter()
        .map(|name| Dependency {
            name: name.clone(),
            state: dependency_state(&ctx.dependencies, &meta.namespace, name),
        })
        .collect();
    let now = chrono::Utc::now();
    let plan = plan::plan(&Inputs {
        job,
        pods: &facts,
        dependencies: &dependencies,
        now,
    });

    // 1. The status, before anything happens to a pod it counts.
    if job.status.as_ref() != Some(&plan.status) {
        let mut updated = job.clone();
        updated.status = Some(plan.status.clone());
        match ctx.writer.update_status(updated.into()).await {
            Ok(_) => {}
            Err(err) if err.is_conflict() => {
                ctx.metrics.conflicts.inc();
                tracing::debug!(job = %obj.key(), "status write lost a race; looking again");
                return Ok(Action::Requeue(CONFLICT_RETRY));
            }
            Err(err) if err.is_not_found() => return Ok(Action::AwaitChange),
            Err(err) => return Err(err.into()),
        }
    }
    let by_name: HashMap<&str, &Arc<CachedPod>> = cached.iter().map(|p| (p.name(), p)).collect();
    // 2. Counted pods let go.
    let to_release: Vec<Arc<CachedPod>> = plan
        .release
        .iter()
        .filter_map(|n| by_name.get(n.as_str()).map(|p| (*p).clone()))
        .collect();
    release(&ctx, to_release).await?;
    // 3. Deletions (released first: never counted as failures).
    if !plan.delete.is_empty() {
        let victims: Vec<Arc<CachedPod>> = plan
            .delete
            .iter()
            .filter_map(|n| by_name.get(n.as_str()).map(|p| (*p).clone()))
            .collect();
        release(
            &ctx,
            victims
                .iter()
                .filter(|p| p.facts.tracked)
                .cloned()
                .collect(),
        )
        .await?;
        delete_pods(&ctx, &obj, &meta.uid, victims).await?;
    }
    // 4. Creations.
    if !plan.create.is_empty() {
        create_pods(&ctx, &obj, job, &plan.create).await?;
    }
    // 5. Events about the Job itself.
    for e in plan.events {
        let ty = if e.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.recorder.emit(&obj, ty, e.reason, &e.message);
    }
    Ok(plan.requeue.map_or(Action::AwaitChange, Action::Requeue))
}

/// Kubernetes' `ClaimPods`: the Job's pods are the cached pods it controls that still match
/// its selector, plus the orphans that match, adopted here (controlling ownerReference and
/// tracking finalizer). Its pods that no longer match are released (ownerReference and
/// tracking finalizer dropped): a released pod is not counted, and the Job replaces it.
async fn claim_pods(
    ctx: &Ctx,
    owner: &Owner,
    selector: &LabelSelector,
    owned: Vec<Arc<CachedPod>>,
) -> Result<Vec<Arc<CachedPod>>> {
    let mut kept = Vec::with_capacity(owned.len());
    let mut leaving = Vec::new();
    let mut matched = None;
    for pod in owned {
        match pod.claim_memo(owner, selector, &mut matched) {
            Claim::Keep => kept.push(pod),
            Claim::Release => leaving.push(pod),
            Claim::Adopt | Claim::Ignore => {}
        }
    }
    let adoptable: Vec<Arc<CachedPod>> = ctx
        .orphans
        .in_namespace(&owner.namespace)
        .iter()
        .filter_map(|key| ctx.pods.get(key))
        .filter(|p| p.claim(owner, selector) == Claim::Adopt)
        .collect();
    let finalizers = [TRACKING_FINALIZER];
    for pod in leaving {
        let out = claim::release(&*ctx.writer, owner, selector, &pod.target(), &finalizers).await?;
        if settle(ctx, out, &mut kept).is_some() {
            ctx.metrics.pods_orphaned.inc();
            tracing::info!(pod = %pod.key(), "released: its labels no longer match the Job's selector");
        }
    }
    if adoptable.is_empty() {
        return Ok(kept);
    }
    // Kubernetes' canAdopt: a fresh read says the Job is still this one, not being deleted.
    if !claim::owner_can_adopt(&*ctx.writer, Kind::Job, owner).await? {
        tracing::debug!(job = %owner.name, "not adopting: the Job is gone or being deleted");
        return Ok(kept);
    }
    for pod in adoptable {
        let out = claim::adopt(&*ctx.writer, owner, selector, &pod.target(), &finalizers).await?;
        if let Some(adopted) = settle(ctx, out, &mut kept) {
            ctx.metrics.pods_adopted.inc();
            tracing::info!(pod = %pod.key(), "adopted an orphan pod matching the Job's selector");
            kept.push(Arc::new(CachedPod::new(&adopted, &ctx.shared)));
        }
    }
    Ok(kept)
}

/// What an adoption or a release came to: the object it wrote (`Some`), or nothing, with a
/// pod that the fresh read shows is still the Job's kept as it now is.
fn settle(ctx: &Ctx, out: Outcome, kept: &mut Vec<Arc<CachedPod>>) -> Option<Object> {
    match out {
        Outcome::Done(written) => Some(written),
        Outcome::Now(Claim::Keep, fresh) => {
            kept.push(Arc::new(CachedPod::new(&fresh, &ctx.shared)));
            None
        }
        Outcome::Now(..) | Outcome::Gone => None,
    }
}

/// The facts of the cached pods, plus the pods created a moment ago and not yet seen, minus
/// the ones deleted a moment ago (the runtime's expectations).
fn with_in_flight(ctx: &Ctx, job_uid: &str, cached: &[Arc<CachedPod>]) -> Vec<PodFacts> {
    let mut facts: Vec<PodFacts> = cached.iter().map(|p| p.facts.clone()).collect();
    let by_name: HashMap<&str, bool> = cached
        .iter()
        .map(|p| (p.name(), p.facts.deleting))
        .collect();
    let in_flight = ctx
        .expectations
        .observe(job_uid, |name| match by_name.get(name) {
            None => Seen::Absent,
            Some(false) => Seen::Present,
            Some(true) => Seen::Deleting,
        });
    if !in_flight.deleted.is_empty() {
        for f in facts.iter_mut() {
            if in_flight.deleted.contains(&f.name) {
                f.deleting = true;
                f.tracked = false;
            }
        }
    }
    for (name, index) in in_flight.created {
        facts.push(PodFacts {
            name,
            uid: String::new(),
            index,
            phase: pods::Phase::Pending,
            deleting: false,
            tracked: true,
            ready: false,
            scheduled: false,
            restarts: 0,
            finished_at: None,
            created_at: Some(chrono::Utc::now()),
            exit_codes: Vec::new(),
            conditions: Default::default(),
            index_failures: 0,
            index_ignored_failures: 0,
        });
    }
    facts
}

/// Removes the tracking finalizer from `pods` (a finalizer-only update each, see `release_one`).
async fn release(ctx: &Arc<Ctx>, pods: Vec<Arc<CachedPod>>) -> Result<()> {
    let mut set = JoinSet::new();
    let mut first_error: Option<ClientError> = None;
    for pod in pods {
        while set.len() >= POD_CALLS_IN_FLIGHT {
            if let Some(Ok(Err(e))) = set.join_next().await {
                first_error.get_or_insert(e);
            }
        }
        let ctx = ctx.clone();
        set.spawn(carry_fence(tracing::Instrument::in_current_span(
            async move { release_one(&ctx, &pod).await },
        )));
    }
    while let Some(r) = set.join_next().await {
        if let Ok(Err(e)) = r {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Removes the tracking finalizer from `pod` (a cached pod, so never written back): a
/// finalizer-only update naming the pod's uid, so nothing else of the pod is read or sent.
/// Gone, or replaced by another pod of the same name: nothing to release.
async fn release_one(ctx: &Ctx, pod: &CachedPod) -> std::result::Result<(), ClientError> {
    let released = ctx
        .writer
        .update_finalizers(
            Kind::Pod,
            pod.namespace(),
            pod.name(),
            pod.uid(),
            &[],
            &[TRACKING_FINALIZER],
        )
        .await;
    match released {
        Ok(_) => {
            ctx.metrics.pods_released.inc();
            Ok(())
        }
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

async fn delete_pods(
    ctx: &Arc<Ctx>,
    job: &Arc<Object>,
    job_uid: &str,
    victims: Vec<Arc<CachedPod>>,
) -> Result<()> {
    ctx.expectations
        .deleting(job_uid, victims.iter().map(|v| v.name()));
    let mut set = JoinSet::new();
    for pod in victims {
        let ctx = ctx.clone();
        set.spawn(carry_fence(tracing::Instrument::in_current_span(
            async move {
                let opts = DeleteOptions {
                    uid: Some(pod.uid().to_string()),
                    ..Default::default()
                };
                let r = ctx
                    .writer
                    .delete(Kind::Pod, pod.namespace(), pod.name(), opts)
                    .await;
                (pod, r)
            },
        )));
    }
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let Ok((pod, r)) = joined else { continue };
        match r {
            Ok(_) => {
                ctx.metrics.pods_deleted.inc();
                ctx.recorder.emit(
                    job,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", pod.name()),
                );
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

async fn create_pods(
    ctx: &Arc<Ctx>,
    job_obj: &Arc<Object>,
    job: &v1::Job,
    new: &[plan::NewPod],
) -> Result<()> {
    let uid = job
        .metadata
        .as_ref()
        .map_or("", |m| m.uid.as_str())
        .to_string();
    let mut set = JoinSet::new();
    let mut first_error: Option<ClientError> = None;
    let mut pending = new.iter();
    loop {
        while set.len() < POD_CALLS_IN_FLIGHT && first_error.is_none() {
            let Some(n) = pending.next() else { break };
            let pod = pods::build_pod(job, n.index, n.failures);
            let (ctx, index) = (ctx.clone(), n.index);
            set.spawn(carry_fence(tracing::Instrument::in_current_span(
                async move { (index, ctx.writer.create(pod.into()).await) },
            )));
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let Ok((index, r)) = joined else { continue };
        match r {
            Ok(created) => {
                ctx.metrics.pods_created.inc();
                ctx.expectations.created(&uid, created.name(), index);
                ctx.recorder.emit(
                    job_obj,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", created.name()),
                );
            }
            Err(e) => {
                // Like Kubernetes' slow start: the first error stops the rest of the batch.
                ctx.recorder.emit(
                    job_obj,
                    EventType::Warning,
                    "FailedCreate",
                    &format!("Error creating: {e}"),
                );
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Releases tracked pods whose Job no longer exists (checked with an uncached read, by uid).
async fn sweep_orphans(
    ctx: Arc<Ctx>,
    mut rx: mpsc::UnboundedReceiver<Arc<CachedPod>>,
    shutdown: CancellationToken,
) {
    loop {
        let pod = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = rx.recv() => match p { Some(p) => p, None => return },
        };
        // Only the replica holding the pod's shard acts on it, under that shard's fence: its
        // Job's shard, or for a pod without a controller its own uid's (one replica of all).
        let fence = {
            let held = ctx.sharding.held.borrow();
            let root = pod
                .controller
                .as_ref()
                .map_or(pod.uid(), |r| r.uid.as_str());
            // Its own cache listed the pod; whether the Job lives is asked below.
            match gate(&held, Some(shard::of_uid(root, held.count)), &[]) {
                Gate::Reconcile(fence) => fence,
                Gate::NotHeld(_) | Gate::NotCovered(_) => continue,
            }
        };
        let owner = pod.controller.as_ref().filter(|r| r.kind == "Job");
        let owner_alive = match owner {
            None => false,
            Some(r) => {
                let key = bosun_api::object::object_key(pod.namespace(), &r.name);
                if ctx.jobs.get(&key).is_some_and(|j| j.uid() == r.uid) {
                    true
                } else {
                    // Not in the cache: ask the broker (the cache may lag a new Job).
                    match ctx
                        .writer
                        .get_opt(Kind::Job, pod.namespace(), &r.name)
                        .await
                    {
                        Ok(Some(j)) => j.uid() == r.uid,
                        Ok(None) => false,
                        Err(err) => {
                            tracing::debug!(%err, "orphan check failed; skipped");
                            true
                        }
                    }
                }
            }
        };
        if !owner_alive {
            tracing::info!(pod = %pod.key(), "releasing a tracked pod whose Job is gone");
            if let Err(err) = fenced(fence, release_one(&ctx, &pod)).await {
                tracing::warn!(pod = %pod.key(), %err, "could not release an orphaned pod");
            }
        }
    }
}

/// The act half in-process: the Job controller's writes against the runtime's recording
/// fake, on a paused clock.
#[cfg(test)]
mod tests {
    use super::*;
    use bosun_runtime::cache::store;
    use bosun_runtime::writer::{RecordingWriter, Verb};
    use pods::IndexFailures;

    fn ctx(writer: Arc<RecordingWriter>) -> Arc<Ctx> {
        ctx_with_pods(writer, store::<CachedPod>().0)
    }

    fn ctx_with_pods(writer: Arc<RecordingWriter>, pods: Store<CachedPod>) -> Arc<Ctx> {
        let registry = Metrics::new();
        Arc::new(Ctx {
            recorder: EventRecorder::with_writer(writer.clone(), COMPONENT, "", 64),
            writer,
            pods,
            shared: Arc::default(),
            orphans: Arc::default(),
            jobs: store::<Object>().0,
            dependencies: store::<Object>().0,
            expectations: Expectations::new(IN_FLIGHT_TTL),
            metrics: JobMetrics::new(&registry),
            sharding: Sharding::single(shard::Controller::Job),
        })
    }

    fn job() -> v1::Job {
        v1::Job {
            metadata: Some(v1::ObjectMeta {
                name: "work".into(),
                namespace: "ns".into(),
                uid: "job-uid".into(),
                ..Default::default()
            }),
            spec: Some(v1::JobSpec {
                template: Some(v1::PodTemplateSpec {
                    metadata: None,
                    spec: Some(v1::PodSpec {
                        containers: vec![v1::Container {
                            name: "main".into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn new_pods(indexes: &[i32]) -> Vec<plan::NewPod> {
        indexes
            .iter()
            .map(|i| plan::NewPod {
                index: Some(*i),
                failures: IndexFailures::default(),
            })
            .collect()
    }

    /// The Job's indexes counted as created (cache empty: only the expectations).
    fn expected_indexes(ctx: &Ctx) -> Vec<Option<i32>> {
        let mut idx: Vec<Option<i32>> = with_in_flight(ctx, "job-uid", &[])
            .iter()
            .map(|f| f.index)
            .collect();
        idx.sort();
        idx
    }

    #[tokio::test(start_paused = true)]
    async fn a_plans_creates_are_issued_and_expected_until_they_expire() {
        let w = RecordingWriter::new();
        let ctx = ctx(w.clone());
        let job = job();
        let obj = Arc::new(Object::from(job.clone()));
        create_pods(&ctx, &obj, &job, &new_pods(&[0, 1, 2]))
            .await
            .expect("creates");
        let creates = pod_calls(&w, Verb::Create);
        assert_eq!(creates.len(), 3);
        assert!(creates.iter().all(|c| c.ok));
        assert_eq!(expected_indexes(&ctx), [Some(0), Some(1), Some(2)]);
        // A watch that never shows them does not hold the Job up forever.
        tokio::time::advance(IN_FLIGHT_TTL + Duration::from_secs(1)).await;
        assert!(expected_indexes(&ctx).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_create_is_not_expected_and_the_next_reconcile_creates_it_again() {
        let w = RecordingWriter::new();
        let ctx = ctx(w.clone());
        let job = job();
        let obj = Arc::new(Object::from(job.clone()));
        w.fail_next(
            Verb::Create,
            ClientError::Unavailable("etcd is away".into()),
        );
        let err = create_pods(&ctx, &obj, &job, &new_pods(&[0, 1]))
            .await
            .expect_err("one create failed");
        assert!(
            matches!(err, Error::Client(ref e) if e.is_transient()),
            "{err}"
        );
        // Only the pod that exists is expected: the plan asks again for the other.
        let expected = expected_indexes(&ctx);
        assert_eq!(expected.len(), 1, "{expected:?}");
        let missing = if expected == [Some(0)] { 1 } else { 0 };
        create_pods(&ctx, &obj, &job, &new_pods(&[missing]))
            .await
            .expect("retried");
        assert_eq!(expected_indexes(&ctx), [Some(0), Some(1)]);
        let outcomes: Vec<bool> = pod_calls(&w, Verb::Create).iter().map(|c| c.ok).collect();
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 2);
        assert_eq!(outcomes.len(), 3);
    }

    /// The calls about pods (events are written through the same fake).
    fn pod_calls(w: &RecordingWriter, verb: Verb) -> Vec<bosun_runtime::writer::Call> {
        w.calls_of(verb)
            .into_iter()
            .filter(|c| c.kind == Kind::Pod)
            .collect()
    }

    fn tracked_pod(w: &RecordingWriter, name: &str) -> Arc<CachedPod> {
        let mut pod = pods::build_pod(&job(), None, IndexFailures::default());
        pod.metadata.as_mut().unwrap().name = name.into();
        let stored = w.seed(pod.into());
        Arc::new(CachedPod::new(&stored, &pods::Shared::default()))
    }

    #[tokio::test(start_paused = true)]
    async fn released_pods_lose_the_tracking_finalizer_by_uid_and_a_gone_one_is_no_error() {
        let w = RecordingWriter::new();
        let ctx = ctx(w.clone());
        let kept = tracked_pod(&w, "a");
        let gone = tracked_pod(&w, "b");
        w.delete(Kind::Pod, "ns", "b", DeleteOptions::default())
            .await
            .expect("delete b");
        release(&ctx, vec![kept.clone(), gone])
            .await
            .expect("release");
        let calls = w.calls_of(Verb::UpdateFinalizers);
        assert_eq!(calls.len(), 2);
        assert!(
            calls
                .iter()
                .all(|c| c.remove == [TRACKING_FINALIZER] && c.add.is_empty())
        );
        let stored = w.object(Kind::Pod, "ns/a").expect("a");
        assert!(stored.meta().unwrap().finalizers.is_empty());
        assert_eq!(ctx.metrics.pods_released.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn deleted_pods_count_as_going_until_the_cache_shows_their_deletion() {
        let w = RecordingWriter::new();
        let ctx = ctx(w.clone());
        let job = job();
        let obj = Arc::new(Object::from(job.clone()));
        let victim = tracked_pod(&w, "v");
        delete_pods(&ctx, &obj, "job-uid", vec![victim.clone()])
            .await
            .expect("delete");
        let deletes = pod_calls(&w, Verb::Delete);
        assert_eq!(deletes.len(), 1);
        // The cache still shows it alive: it is counted as deleting, and no longer tracked.
        let facts = with_in_flight(&ctx, "job-uid", std::slice::from_ref(&victim));
        assert!(facts[0].deleting && !facts[0].tracked, "{:?}", facts[0]);
    }

    /// A pod labelled `app=<app>`, controlled by `controller` (a Job uid) if given.
    fn labelled_pod(name: &str, app: &str, controller: Option<&str>) -> Object {
        let mut pod = v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "ns".into(),
                labels: [("app".to_string(), app.to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        if let Some(uid) = controller {
            let meta = pod.metadata.as_mut().unwrap();
            meta.owner_references.push(v1::OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: "work".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            });
            meta.finalizers.push(TRACKING_FINALIZER.into());
        }
        pod.into()
    }

    #[tokio::test(start_paused = true)]
    async fn the_claim_adopts_matching_orphans_releases_strays_and_keeps_the_rest() {
        let w = RecordingWriter::new();
        let job = w.seed(job().into());
        let (pods, cache) = store::<CachedPod>();
        let ctx = ctx_with_pods(w.clone(), pods);
        let shared = pods::Shared::default();
        let mut owned = Vec::new();
        for (name, app, controller) in [
            ("kept", "x", Some(job.uid())),
            ("stray", "y", Some(job.uid())),
            ("orphan", "x", None),
            ("unrelated", "y", None),
            ("theirs", "x", Some("other-job")),
        ] {
            let stored = w.seed(labelled_pod(name, app, controller));
            let change = cache
                .upsert(CachedPod::new(&stored, &shared))
                .expect("cached");
            ctx.orphans.observe(&change);
            if controller == Some(job.uid()) {
                owned.push(change.new.expect("entry"));
            }
        }
        let selector = LabelSelector::parse("app=x").unwrap();
        let claimed = claim_pods(&ctx, &Owner::of(&job), &selector, owned)
            .await
            .expect("claim");
        let mut names: Vec<&str> = claimed.iter().map(|p| p.name()).collect();
        names.sort();
        assert_eq!(names, ["kept", "orphan"]);
        assert!(claimed.iter().all(|p| p.facts.tracked));
        let pod = |name: &str| w.object(Kind::Pod, &format!("ns/{name}")).unwrap();
        let adopted = pod("orphan");
        assert_eq!(
            adopted.controller_ref().map(|r| r.uid.as_str()),
            Some(job.uid())
        );
        assert_eq!(adopted.meta().unwrap().finalizers, [TRACKING_FINALIZER]);
        let released = pod("stray");
        assert!(released.controller_ref().is_none());
        assert!(released.meta().unwrap().finalizers.is_empty());
        assert_eq!(
            pod("theirs").controller_ref().map(|r| r.uid.as_str()),
            Some("other-job")
        );
        // One write each: the adoption and the release (after the Job's fresh read).
        let updated: Vec<String> = pod_calls(&w, Verb::Update)
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(updated, ["ns/stray", "ns/orphan"]);
        assert_eq!(ctx.metrics.pods_adopted.get(), 1);
        assert_eq!(ctx.metrics.pods_orphaned.get(), 1);
    }
}
