//! The shape every bosun controller takes (kube-runtime's `Controller`): user code is two
//! functions,
//!
//! - `reconcile(obj, ctx) -> Result<Action, E>`: look at the object and the caches, act,
//!   and say when to look again ([`Action`]);
//! - `error_policy(obj, &err, ctx) -> Action`: what to do after a failed reconcile
//!   (usually [`Action::backoff`]: the queue's per-key exponential backoff).
//!
//! [`Controller`] wires informers → work queue → N workers: the primary informer enqueues
//! each changed object's key, owned kinds enqueue their controller's key, workers start only
//! once every cache is loaded, each reconcile runs in its own span, and metrics report
//! queue depth, adds, retries, reconcile outcomes and latency. On shutdown the queue stops,
//! workers finish the reconcile in hand, and `run` returns.
//!
//! A key whose object is gone from the primary cache is not reconciled by [`Controller::run`]:
//! cleanup belongs to ownerReferences and the garbage collector, not to delete events. A
//! controller that must act exactly then (the node agent stops a force-deleted pod's
//! containers and removes a finished pod's files; a DaemonSet controller forgets a deleted
//! DaemonSet's expectations) runs [`Controller::run_by_key`] instead: Kubernetes' `syncHandler(key)`
//! shape, `reconcile(key, Option<object>, ctx)`, with `None` when the object is gone.
//!
//! A panic in a reconcile (in the call itself or in the future it returns) is caught: the
//! worker survives, the key is retried with its backoff, and
//! `bosun_reconcile_panics_total` counts it (besides `bosun_reconcile_total{result="error"}`,
//! as controller-runtime counts them).
//!
//! **Sharded** ([`Controller::sharded`], scale-out, issue 12): N active replicas of one
//! controller kind each hold some of its virtual shards (`bosun_api::shard`), published by
//! the membership on a `watch::Receiver<Held>`. Then:
//!
//! - the primary informer (and the owned ones the caller shards with
//!   [`Informer::sharded`]) caches only the held shards' objects;
//! - a popped key is reconciled only if the shard of its primary object
//!   (`shard::of_object`) is held now; a key of a shard not held (lost since it was queued,
//!   or never ours with a broker that does not filter) is dropped, counted in
//!   `bosun_controller_reconciles_skipped_total{reason="shard_not_held"}`, never retried;
//! - the reconcile (the call and its future) runs inside the fence scope of that shard
//!   ([`crate::sharded::fenced`]): every broker call it makes carries `bosun-fence`, so a
//!   replica that lost the shard meanwhile is refused by the broker; work it spawns must be
//!   wrapped in [`crate::sharded::carry_fence`];
//! - when shards are taken, the primary cache's keys of those shards are enqueued (besides
//!   the sharded informers' relist, which adds them: a broker that ignores the filter sends
//!   no difference); `bosun_controller_shards_held` reports how many are held.
//!
//! Held with token 0 (a lone replica without the membership) reconciles everything,
//! unfenced. A key whose object is gone (`run_by_key`) has no shard to check: it is
//! reconciled unfenced by whichever replica pops it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_api::Object;
use bosun_api::shard;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::cache::{Cached, Change, Store};
use crate::informer::{Informer, enqueue_controller_owner, enqueue_self};
use crate::metrics::{Counter, Gauge, Histogram, Metrics};
use crate::queue::{Backoff, WorkQueue};
use crate::sharded::{Coverage, Gate, Held, Sharding, fenced, fenced_sync, gained, gate};
use crate::telemetry::{TRACEPARENT_ANNOTATION, set_parent_from_traceparent};

/// What to do with a key after reconciling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconcile again after this long (a timer: the next schedule, a deadline, a TTL),
    /// unless a change brings it back earlier.
    Requeue(Duration),
    /// Nothing to do until the object or one of its dependents changes.
    AwaitChange,
    /// Retry after the key's exponential backoff (for error policies).
    Backoff,
}

impl Action {
    /// Reconcile again after `after`.
    pub fn requeue(after: Duration) -> Action {
        Action::Requeue(after)
    }
    /// Wait for the next change.
    pub fn await_change() -> Action {
        Action::AwaitChange
    }
    /// Retry with the key's backoff.
    pub fn backoff() -> Action {
        Action::Backoff
    }
}

/// An error policy that retries every failure with the key's backoff: what a controller
/// passes to [`Controller::run`] unless it decides per error. No log line of its own: the
/// worker has already logged the error (`reconcile failed`, warn, in the reconcile's span)
/// and logs the delay (debug).
pub fn backoff_on_error<E, C>(_obj: Arc<Object>, _err: &E, _ctx: Arc<C>) -> Action {
    Action::Backoff
}

/// [`backoff_on_error`] for [`Workers::run_by_key`] and [`Controller::run_by_key`].
pub fn backoff_on_key_error<E, C>(_key: &str, _err: &E, _ctx: Arc<C>) -> Action {
    Action::Backoff
}

/// What a caught panic said (its `&str` or `String` payload), for the log line.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Metrics of one controller's reconciles.
#[derive(Clone)]
struct ReconcileMetrics {
    ok: Counter,
    error: Counter,
    panics: Counter,
    latency: Histogram,
    /// Keys dropped because their shard is not held.
    skipped: Counter,
    /// Shards held now (0 for an unsharded controller).
    shards_held: Gauge,
}

impl ReconcileMetrics {
    fn new(metrics: &Metrics, name: &str) -> ReconcileMetrics {
        let total = |result: &str| {
            metrics.counter(
                "bosun_reconcile_total",
                "Reconciles run, by result.",
                &[("controller", name), ("result", result)],
            )
        };
        ReconcileMetrics {
            ok: total("ok"),
            error: total("error"),
            panics: metrics.counter(
                "bosun_reconcile_panics_total",
                "Reconciles that panicked (caught; also counted as errors).",
                &[("controller", name)],
            ),
            latency: metrics.histogram(
                "bosun_reconcile_duration_seconds",
                "How long one reconcile took.",
                &[("controller", name)],
            ),
            skipped: metrics.counter(
                "bosun_controller_reconciles_skipped_total",
                "Keys popped and not reconciled, by reason (shard_not_held: another replica's).",
                &[("controller", name), ("reason", "shard_not_held")],
            ),
            shards_held: metrics.gauge(
                "bosun_controller_shards_held",
                "Virtual shards this replica holds (0 when the controller is not sharded).",
                &[("controller", name)],
            ),
        }
    }
}

/// An informer of any entry type, started by [`Controller::run`].
trait Spawn: Send {
    /// Starts the informer; returns a future that resolves once its cache is loaded, and its
    /// task.
    fn spawn(
        self: Box<Self>,
        shutdown: CancellationToken,
    ) -> (BoxFuture<'static, ()>, tokio::task::JoinHandle<()>);

    /// Filters the informer by the held shards ([`Informer::sharded`]).
    fn shard(&mut self, held: watch::Receiver<Held>, controller: shard::Controller);

    /// The shards its cache covers, when sharded.
    fn coverage(&self) -> Option<Coverage>;
}

impl<T: Cached> Spawn for Informer<T> {
    fn spawn(
        self: Box<Self>,
        shutdown: CancellationToken,
    ) -> (BoxFuture<'static, ()>, tokio::task::JoinHandle<()>) {
        let (store, task) = Informer::<T>::spawn(*self, shutdown);
        (async move { store.wait_until_ready().await }.boxed(), task)
    }

    fn shard(&mut self, held: watch::Receiver<Held>, controller: shard::Controller) {
        self.set_sharded(held, controller);
    }

    fn coverage(&self) -> Option<Coverage> {
        Informer::coverage(self)
    }
}

/// Informers, a work queue and workers for one primary kind.
pub struct Controller {
    name: String,
    queue: WorkQueue<String>,
    primary: Store,
    informers: Vec<Box<dyn Spawn>>,
    workers: usize,
    metrics: ReconcileMetrics,
    sharding: Option<Sharding>,
}

impl Controller {
    /// A controller named `name` (metrics label, span field) reconciling the objects of
    /// `primary`, with client-go's default per-key backoff (5 ms doubling to 1000 s).
    pub fn new(name: &str, primary: Informer, metrics: &Metrics) -> Controller {
        Controller::with_backoff(name, primary, metrics, Backoff::default())
    }

    /// [`Controller::new`] with another per-key backoff (the Job controller uses 1 s → 60 s).
    pub fn with_backoff(
        name: &str,
        mut primary: Informer,
        metrics: &Metrics,
        backoff: Backoff,
    ) -> Controller {
        let queue = WorkQueue::with_metrics(backoff, metrics, name);
        primary.on_change(enqueue_self(queue.clone()));
        let store = primary.store();
        Controller {
            name: name.to_string(),
            queue,
            primary: store,
            informers: vec![Box::new(primary.with_metrics(metrics))],
            workers: 1,
            metrics: ReconcileMetrics::new(metrics, name),
            sharding: None,
        }
    }

    /// Runs as one of several replicas of `controller`: the primary informer caches only
    /// the shards `held` says this replica holds, and only their keys are reconciled, each
    /// under its shard's fence (see the module docs). Owned informers are sharded by the
    /// caller ([`Informer::sharded`]) before [`Controller::owns`].
    pub fn sharded(
        mut self,
        held: watch::Receiver<Held>,
        controller: shard::Controller,
    ) -> Controller {
        self.informers[0].shard(held.clone(), controller);
        self.sharding = Some(Sharding::new(controller, held));
        self
    }

    /// Also watches dependents whose controller reference is of kind `owner_kind` (`"Job"`):
    /// a change to one enqueues its owner.
    pub fn owns<T: Cached>(
        mut self,
        mut informer: Informer<T>,
        owner_kind: &'static str,
    ) -> Controller {
        informer.on_change(enqueue_controller_owner(self.queue.clone(), owner_kind));
        self.informers.push(Box::new(informer));
        self
    }

    /// Also watches another kind, mapping each change to the keys to reconcile (a node
    /// change to the DaemonSets that may now place a pod on it).
    pub fn watches<T: Cached>(
        mut self,
        mut informer: Informer<T>,
        map: impl Fn(&Change<T>) -> Vec<String> + Send + Sync + 'static,
    ) -> Controller {
        let queue = self.queue.clone();
        informer.on_change(move |change| {
            for key in map(change) {
                queue.add(key);
            }
        });
        self.informers.push(Box::new(informer));
        self
    }

    /// How many keys are reconciled in parallel (default 1; never the same key twice).
    pub fn workers(mut self, n: usize) -> Controller {
        self.workers = n.max(1);
        self
    }

    /// The work queue, to enqueue keys from elsewhere (timers, other triggers).
    pub fn queue(&self) -> WorkQueue<String> {
        self.queue.clone()
    }

    /// The primary kind's cache.
    pub fn store(&self) -> Store {
        self.primary.clone()
    }

    /// Runs until `shutdown`: informers, then (once every cache is loaded) the workers.
    /// A key whose object is gone from the primary cache is skipped (see the module docs).
    pub async fn run<C, E, R, Fut, P>(
        self,
        reconcile: R,
        error_policy: P,
        ctx: Arc<C>,
        shutdown: CancellationToken,
    ) where
        C: Send + Sync + 'static,
        E: std::fmt::Display + Send + 'static,
        R: Fn(Arc<Object>, Arc<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        P: Fn(Arc<Object>, &E, Arc<C>) -> Action + Send + Sync + 'static,
    {
        self.run_handler(ByObject(reconcile, error_policy), ctx, shutdown)
            .await
    }

    /// [`Controller::run`], but every key is reconciled, also once its object is gone from
    /// the primary cache: `reconcile(key, Some(object) | None, ctx)`. The key is lent for
    /// the call; a reconcile that needs it in its future copies it.
    pub async fn run_by_key<C, E, R, Fut, P>(
        self,
        reconcile: R,
        error_policy: P,
        ctx: Arc<C>,
        shutdown: CancellationToken,
    ) where
        C: Send + Sync + 'static,
        E: std::fmt::Display + Send + 'static,
        R: Fn(&str, Option<Arc<Object>>, Arc<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        P: Fn(&str, &E, Arc<C>) -> Action + Send + Sync + 'static,
    {
        self.run_handler(ByKey(reconcile, error_policy), ctx, shutdown)
            .await
    }

    async fn run_handler<C: Send + Sync + 'static, H: Handler<C>>(
        self,
        handler: H,
        ctx: Arc<C>,
        shutdown: CancellationToken,
    ) {
        let Controller {
            name,
            queue,
            primary,
            informers,
            workers,
            metrics,
            sharding,
        } = self;
        let stop_informers = shutdown.child_token();
        let follower = sharding.clone().map(|sharding| {
            tokio::spawn(follow_shards(
                sharding,
                primary.clone(),
                queue.clone(),
                metrics.shards_held.clone(),
                stop_informers.clone(),
            ))
        });
        // A key of a shard is reconciled only once every sharded cache has listed it.
        let coverage: Vec<Coverage> = informers.iter().filter_map(|i| i.coverage()).collect();
        let mut loaded = Vec::new();
        let mut tasks = Vec::new();
        for informer in informers {
            let (ready, task) = informer.spawn(stop_informers.clone());
            loaded.push(ready);
            tasks.push(task);
        }

        // sample-controller: no worker acts before every cache has its first list.
        let synced = futures::future::join_all(loaded);
        let ready = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = synced => true,
        };
        if ready {
            tracing::info!(controller = %name, workers, "caches synced; starting workers");
            let lookup = move |key: &str| primary.get(key);
            let mut runner = Workers::with_reconcile_metrics(&name, queue.clone(), lookup, metrics)
                .workers(workers);
            runner.sharding = sharding;
            runner.coverage = coverage;
            runner.run_handler(handler, ctx, shutdown).await;
        }
        queue.shutdown();
        stop_informers.cancel();
        for task in tasks.into_iter().chain(follower) {
            let _ = task.await;
        }
    }
}

/// Follows the held shards until `stop`: reports how many are held, and enqueues the keys
/// of the primary cache's objects in shards just taken (a broker that ignores the shard
/// filter shows no difference on relist, so nothing else would wake them).
async fn follow_shards(
    mut sharding: Sharding,
    primary: Store,
    queue: WorkQueue<String>,
    held_gauge: Gauge,
    stop: CancellationToken,
) {
    let mut last = sharding.held.borrow_and_update().clone();
    held_gauge.set(last.tokens.len() as i64);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = sharding.held.changed() => if changed.is_err() { return },
        }
        let now = sharding.held.borrow_and_update().clone();
        held_gauge.set(now.tokens.len() as i64);
        let taken: std::collections::HashSet<u32> = gained(&last, &now).into_iter().collect();
        if !taken.is_empty() {
            let mut keys = 0usize;
            for obj in primary.list() {
                if shard::of_object(sharding.controller, &obj, now.count)
                    .is_some_and(|s| taken.contains(&s))
                {
                    queue.add(obj.key());
                    keys += 1;
                }
            }
            tracing::info!(controller = %sharding.controller, taken = taken.len(), held = now.tokens.len(), keys, "shards taken; their keys enqueued");
        } else {
            tracing::info!(controller = %sharding.controller, held = now.tokens.len(), "the shards held changed");
        }
        last = now;
    }
}

/// How soon a key of a shard not yet listed by every cache is looked at again.
const NOT_COVERED_RETRY: Duration = Duration::from_millis(50);

/// Finds the object a work-queue key names (in a cache), `None` when it is gone.
type Lookup = Arc<dyn Fn(&str) -> Option<Arc<Object>> + Send + Sync>;

/// The workers of a controller without the informers: N tasks taking keys from a work
/// queue, looking each key's object up (`lookup`: a cache read), reconciling it in its own
/// span with panics caught and outcomes and latency in the reconcile metrics, and scheduling
/// what comes next from the [`Action`]. [`Controller::run`] runs these once its caches are
/// loaded; a service whose keys are not one primary cache's (the gc's `Kind/namespace/name`
/// over many caches) or that loads its caches itself (the node agent) runs these directly.
pub struct Workers {
    name: String,
    queue: WorkQueue<String>,
    lookup: Lookup,
    workers: usize,
    metrics: ReconcileMetrics,
    sharding: Option<Sharding>,
    /// The sharded caches a key's shard must be covered by before it is reconciled.
    coverage: Vec<Coverage>,
}

impl Workers {
    /// Workers named `name` (metrics label, span field) for `queue`, finding each key's
    /// object with `lookup`.
    pub fn new(
        name: &str,
        queue: WorkQueue<String>,
        lookup: impl Fn(&str) -> Option<Arc<Object>> + Send + Sync + 'static,
        metrics: &Metrics,
    ) -> Workers {
        Workers::with_reconcile_metrics(name, queue, lookup, ReconcileMetrics::new(metrics, name))
    }

    fn with_reconcile_metrics(
        name: &str,
        queue: WorkQueue<String>,
        lookup: impl Fn(&str) -> Option<Arc<Object>> + Send + Sync + 'static,
        metrics: ReconcileMetrics,
    ) -> Workers {
        Workers {
            name: name.to_string(),
            queue,
            lookup: Arc::new(lookup),
            workers: 1,
            metrics,
            sharding: None,
            coverage: Vec::new(),
        }
    }

    /// Reconciles only the keys of the shards held, each under its shard's fence (see the
    /// module docs; [`Controller::sharded`] sets this for its workers).
    pub fn sharded(
        mut self,
        held: watch::Receiver<Held>,
        controller: shard::Controller,
    ) -> Workers {
        self.sharding = Some(Sharding::new(controller, held));
        self
    }

    /// How many keys are reconciled in parallel (default 1; never the same key twice).
    pub fn workers(mut self, n: usize) -> Workers {
        self.workers = n.max(1);
        self
    }

    /// Runs the workers until `shutdown`; then shuts the queue and waits for the reconciles
    /// in hand. The caller has loaded its caches. A key whose object `lookup` does not find
    /// is skipped (see the module docs).
    pub async fn run<C, E, R, Fut, P>(
        self,
        reconcile: R,
        error_policy: P,
        ctx: Arc<C>,
        shutdown: CancellationToken,
    ) where
        C: Send + Sync + 'static,
        E: std::fmt::Display + Send + 'static,
        R: Fn(Arc<Object>, Arc<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        P: Fn(Arc<Object>, &E, Arc<C>) -> Action + Send + Sync + 'static,
    {
        self.run_handler(ByObject(reconcile, error_policy), ctx, shutdown)
            .await
    }

    /// [`Workers::run`], but every key is reconciled, also once `lookup` no longer finds its
    /// object: `reconcile(key, Some(object) | None, ctx)`. The key is lent for the call; a
    /// reconcile that needs it in its future copies it.
    pub async fn run_by_key<C, E, R, Fut, P>(
        self,
        reconcile: R,
        error_policy: P,
        ctx: Arc<C>,
        shutdown: CancellationToken,
    ) where
        C: Send + Sync + 'static,
        E: std::fmt::Display + Send + 'static,
        R: Fn(&str, Option<Arc<Object>>, Arc<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        P: Fn(&str, &E, Arc<C>) -> Action + Send + Sync + 'static,
    {
        self.run_handler(ByKey(reconcile, error_policy), ctx, shutdown)
            .await
    }

    async fn run_handler<C: Send + Sync + 'static, H: Handler<C>>(
        self,
        handler: H,
        ctx: Arc<C>,
        shutdown: CancellationToken,
    ) {
        let Workers {
            name,
            queue,
            lookup,
            workers,
            metrics,
            sharding,
            coverage,
        } = self;
        let worker = Arc::new(Worker {
            name: name.clone(),
            queue: queue.clone(),
            lookup,
            handler,
            ctx,
            metrics,
            sharding,
            coverage,
        });
        let mut handles = Vec::new();
        for _ in 0..workers {
            let worker = worker.clone();
            handles.push(tokio::spawn(async move { worker.run().await }));
        }
        shutdown.cancelled().await;
        tracing::info!(controller = %name, "shutting down; finishing reconciles in hand");
        queue.shutdown();
        for handle in handles {
            if let Err(err) = handle.await {
                tracing::error!(controller = %name, %err, "worker task failed");
            }
        }
    }
}

/// The user's reconcile and error policy, in one of the two shapes the workers call.
trait Handler<C>: Send + Sync + 'static {
    type Error: std::fmt::Display + Send + 'static;
    type Fut: Future<Output = Result<Action, Self::Error>> + Send + 'static;
    /// Whether a key whose object is gone is reconciled (else skipped).
    const GONE: bool;
    /// Starts reconciling `key`; `None` when there is nothing to reconcile.
    fn reconcile(&self, key: &str, obj: Option<Arc<Object>>, ctx: Arc<C>) -> Option<Self::Fut>;
    /// What to do after a failed reconcile.
    fn error_policy(
        &self,
        key: &str,
        obj: Option<Arc<Object>>,
        err: &Self::Error,
        ctx: Arc<C>,
    ) -> Action;
}

/// `reconcile(object, ctx)`: gone objects are skipped.
struct ByObject<R, P>(R, P);

impl<C, E, R, Fut, P> Handler<C> for ByObject<R, P>
where
    C: Send + Sync + 'static,
    E: std::fmt::Display + Send + 'static,
    R: Fn(Arc<Object>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    P: Fn(Arc<Object>, &E, Arc<C>) -> Action + Send + Sync + 'static,
{
    type Error = E;
    type Fut = Fut;
    const GONE: bool = false;

    fn reconcile(&self, _key: &str, obj: Option<Arc<Object>>, ctx: Arc<C>) -> Option<Fut> {
        obj.map(|obj| (self.0)(obj, ctx))
    }

    fn error_policy(&self, _key: &str, obj: Option<Arc<Object>>, err: &E, ctx: Arc<C>) -> Action {
        obj.map_or(Action::Backoff, |obj| (self.1)(obj, err, ctx))
    }
}

/// `reconcile(key, Option<object>, ctx)`: gone objects are reconciled too.
struct ByKey<R, P>(R, P);

impl<C, E, R, Fut, P> Handler<C> for ByKey<R, P>
where
    C: Send + Sync + 'static,
    E: std::fmt::Display + Send + 'static,
    R: Fn(&str, Option<Arc<Object>>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    P: Fn(&str, &E, Arc<C>) -> Action + Send + Sync + 'static,
{
    type Error = E;
    type Fut = Fut;
    const GONE: bool = true;

    fn reconcile(&self, key: &str, obj: Option<Arc<Object>>, ctx: Arc<C>) -> Option<Fut> {
        Some((self.0)(key, obj, ctx))
    }

    fn error_policy(&self, key: &str, _obj: Option<Arc<Object>>, err: &E, ctx: Arc<C>) -> Action {
        (self.1)(key, err, ctx)
    }
}

/// What every worker of one controller shares.
struct Worker<C, H> {
    name: String,
    queue: WorkQueue<String>,
    lookup: Lookup,
    handler: H,
    ctx: Arc<C>,
    metrics: ReconcileMetrics,
    sharding: Option<Sharding>,
    coverage: Vec<Coverage>,
}

/// How one reconcile ended.
enum Outcome<E> {
    Done(Result<Action, E>),
    /// It panicked, with this message.
    Panicked(String),
}

impl<C: Send + Sync + 'static, H: Handler<C>> Worker<C, H> {
    /// Whether this replica reconciles `obj`'s key now, and under which fence.
    fn gate(&self, obj: Option<&Object>) -> Gate {
        let Some(sharding) = &self.sharding else {
            return Gate::Reconcile(None);
        };
        let held = sharding.held.borrow();
        let shard = obj.and_then(|o| shard::of_object(sharding.controller, o, held.count));
        gate(&held, shard, &self.coverage)
    }

    async fn run(&self) {
        while let Some(key) = self.queue.next().await {
            self.process(&key).await;
            self.queue.done(&key);
        }
    }

    /// Reconciles one key and schedules what comes next.
    async fn process(&self, key: &String) {
        let obj = (self.lookup)(key);
        if obj.is_none() && !H::GONE {
            // Gone from the cache: nothing to reconcile, nothing to retry.
            tracing::debug!(controller = %self.name, key, "object gone; skipping");
            self.queue.forget(key);
            return;
        }
        let fence = match self.gate(obj.as_deref()) {
            Gate::Reconcile(fence) => fence,
            Gate::NotHeld(shard) => {
                // Another replica's (or lost since it was queued): never retried here; the
                // replica that takes the shard enqueues its keys.
                tracing::debug!(controller = %self.name, key, shard, "shard not held; skipping");
                self.metrics.skipped.inc();
                self.queue.forget(key);
                return;
            }
            Gate::NotCovered(shard) => {
                // Just taken: a cache has not listed the shard yet, and acting on half a
                // picture (a Job without its pods) would do its work twice. Soon again.
                tracing::debug!(controller = %self.name, key, shard, "shard not listed yet; requeued");
                self.queue.add_after(key.clone(), NOT_COVERED_RETRY);
                return;
            }
        };
        let span = tracing::info_span!(
            "reconcile",
            controller = %self.name,
            key = %key,
            fence = %fence.map_or_else(String::new, |f| f.to_string()),
            resource_version = obj.as_ref().map_or(0, |o| o.resource_version()),
            gone = obj.is_none(),
            retries = self.queue.retries(key),
        );
        if let Some(tp) = obj
            .as_ref()
            .and_then(|o| o.meta())
            .and_then(|m| m.annotations.get(TRACEPARENT_ANNOTATION))
        {
            set_parent_from_traceparent(&span, tp);
        }
        let started = Instant::now();
        // The call itself may do the work (a synchronous hand-off) or panic: both in the
        // span, both caught, as the future it returns.
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
            span.in_scope(|| {
                fenced_sync(fence, || {
                    self.handler.reconcile(key, obj.clone(), self.ctx.clone())
                })
            })
        }));
        let outcome = match call {
            Ok(Some(fut)) => match AssertUnwindSafe(fenced(fence, fut))
                .catch_unwind()
                .instrument(span.clone())
                .await
            {
                Ok(result) => Outcome::Done(result),
                Err(payload) => Outcome::Panicked(panic_message(&*payload).to_string()),
            },
            Ok(None) => Outcome::Done(Ok(Action::AwaitChange)),
            Err(payload) => Outcome::Panicked(panic_message(&*payload).to_string()),
        };
        self.metrics.latency.observe_since(started);
        let action = match outcome {
            Outcome::Done(Ok(action)) => {
                self.metrics.ok.inc();
                self.queue.forget(key);
                action
            }
            Outcome::Done(Err(err)) => {
                self.metrics.error.inc();
                span.in_scope(|| tracing::warn!(%err, "reconcile failed"));
                self.handler.error_policy(key, obj, &err, self.ctx.clone())
            }
            Outcome::Panicked(message) => {
                // A bug in the reconciler; keep the worker alive and retry slowly.
                self.metrics.error.inc();
                self.metrics.panics.inc();
                span.in_scope(|| tracing::error!(panic = %message, "reconcile panicked"));
                Action::Backoff
            }
        };
        match action {
            Action::Requeue(after) => self.queue.add_after(key.clone(), after),
            Action::AwaitChange => {}
            Action::Backoff => {
                let delay = self.queue.requeue_with_backoff(key.clone());
                span.in_scope(|| tracing::debug!(?delay, "retrying after backoff"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::client::{Selector, WatchEvent};
    use crate::informer::tests::{Fake, list, p};
    use crate::sharded::Held;
    use bosun_api::Kind;

    /// Records each reconcile (key, time) and answers from a per-key script.
    struct Recorder {
        started: tokio::time::Instant,
        seen: Mutex<Vec<(String, Duration)>>,
        script: Mutex<Vec<(&'static str, Result<Action, &'static str>)>>,
    }

    async fn reconcile(obj: Arc<Object>, ctx: Arc<Recorder>) -> Result<Action, String> {
        let key = obj.key();
        ctx.seen
            .lock()
            .unwrap()
            .push((key.clone(), ctx.started.elapsed()));
        let mut script = ctx.script.lock().unwrap();
        match script.iter().position(|(k, _)| format!("ns/{k}") == key) {
            Some(i) => script.remove(i).1.map_err(String::from),
            None => Ok(Action::AwaitChange),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn the_runner_reconciles_changes_requeues_timers_and_backs_off_errors() {
        let fake = Arc::new(Fake::default());
        fake.lists
            .lock()
            .unwrap()
            .push_back(list(vec![p("a", 1), p("b", 2)], 2));
        fake.watches
            .lock()
            .unwrap()
            .push_back(vec![Ok(WatchEvent::Added(p("c", 3)))]);
        let metrics = Metrics::new();
        let informer = Informer::new(fake.clone(), Kind::Pod, Selector::all());
        let controller =
            Controller::with_backoff("test", informer, &metrics, Backoff::new(ms(100), ms(1000)))
                .workers(2);
        let ctx = Arc::new(Recorder {
            started: tokio::time::Instant::now(),
            seen: Mutex::new(vec![]),
            script: Mutex::new(vec![
                ("a", Ok(Action::Requeue(ms(50)))),
                ("b", Err("boom")),
                ("b", Err("boom")),
            ]),
        });
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(controller.run(
            reconcile,
            backoff_on_error,
            ctx.clone(),
            shutdown.clone(),
        ));
        tokio::time::sleep(ms(1000)).await;
        shutdown.cancel();
        run.await.unwrap();

        let mut seen = ctx.seen.lock().unwrap().clone();
        seen.sort_by_key(|(k, t)| (*t, k.clone()));
        let want = [
            ("ns/a", 0),
            ("ns/b", 0),
            ("ns/c", 0),
            ("ns/a", 50),  // its timer
            ("ns/b", 100), // first backoff
            ("ns/b", 300), // second backoff: 100 + 200
        ];
        let want: Vec<(String, Duration)> =
            want.iter().map(|(k, t)| (k.to_string(), ms(*t))).collect();
        assert_eq!(seen, want);

        let text = metrics.render();
        for line in [
            "bosun_reconcile_total{controller=\"test\",result=\"ok\"} 4",
            "bosun_reconcile_total{controller=\"test\",result=\"error\"} 2",
            "bosun_reconcile_duration_seconds_count{controller=\"test\"} 6",
            "bosun_queue_retries_total{queue=\"test\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_reconcile_is_retried_and_the_worker_survives() {
        let fake = Arc::new(Fake::default());
        fake.lists
            .lock()
            .unwrap()
            .push_back(list(vec![p("a", 1)], 1));
        let metrics = Metrics::new();
        let informer = Informer::new(fake, Kind::Pod, Selector::all());
        let controller =
            Controller::with_backoff("panics", informer, &metrics, Backoff::new(ms(10), ms(10)));
        let calls = Arc::new(Mutex::new(0u32));
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(controller.run(
            |_obj: Arc<Object>, calls: Arc<Mutex<u32>>| async move {
                let n = {
                    let mut c = calls.lock().unwrap();
                    *c += 1;
                    *c
                };
                if n == 1 {
                    panic!("reconciler bug");
                }
                Ok::<_, String>(Action::AwaitChange)
            },
            backoff_on_error,
            calls.clone(),
            shutdown.clone(),
        ));
        tokio::time::sleep(ms(100)).await;
        shutdown.cancel();
        run.await.unwrap();
        assert_eq!(*calls.lock().unwrap(), 2);
        let text = metrics.render();
        for line in [
            "bosun_reconcile_panics_total{controller=\"panics\"} 1",
            "bosun_reconcile_total{controller=\"panics\",result=\"error\"} 1",
            "bosun_reconcile_total{controller=\"panics\",result=\"ok\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    /// A cache of `namespace/name` → object the tests edit, and its lookup.
    type Objects = Arc<Mutex<std::collections::HashMap<String, Arc<Object>>>>;

    fn lookup(objects: &Objects) -> impl Fn(&str) -> Option<Arc<Object>> + Send + Sync + 'static {
        let objects = objects.clone();
        move |key: &str| objects.lock().unwrap().get(key).cloned()
    }

    /// Which workers reconciled which key, and whether they were given its object.
    type Seen = (&'static str, String, bool);

    #[tokio::test(start_paused = true)]
    async fn run_by_key_reconciles_a_key_whose_object_is_gone_and_run_skips_it() {
        let objects: Objects = Arc::default();
        objects
            .lock()
            .unwrap()
            .insert("ns/a".into(), Arc::new(p("a", 1)));
        let metrics = Metrics::new();
        let (by_key, by_object) = (WorkQueue::default(), WorkQueue::default());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let shutdown = CancellationToken::new();
        let keys = Workers::new("by-key", by_key.clone(), lookup(&objects), &metrics);
        let runs = tokio::spawn(keys.run_by_key(
            |key: &str, obj: Option<Arc<Object>>, seen: Arc<Mutex<Vec<_>>>| {
                seen.lock()
                    .unwrap()
                    .push(("by key", key.to_string(), obj.is_some()));
                async { Ok::<_, String>(Action::AwaitChange) }
            },
            backoff_on_key_error,
            seen.clone(),
            shutdown.clone(),
        ));
        let objs = Workers::new("by-object", by_object.clone(), lookup(&objects), &metrics);
        let runs_objs = tokio::spawn(objs.run(
            |obj: Arc<Object>, seen: Arc<Mutex<Vec<_>>>| async move {
                seen.lock().unwrap().push(("by object", obj.key(), true));
                Ok::<_, String>(Action::AwaitChange)
            },
            backoff_on_error,
            seen.clone(),
            shutdown.clone(),
        ));
        for queue in [&by_key, &by_object] {
            queue.add("ns/a".to_string());
        }
        tokio::time::sleep(ms(10)).await;
        objects.lock().unwrap().remove("ns/a");
        for queue in [&by_key, &by_object] {
            queue.add("ns/a".to_string());
        }
        tokio::time::sleep(ms(10)).await;
        shutdown.cancel();
        runs.await.unwrap();
        runs_objs.await.unwrap();

        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        let want = [
            ("by key", "ns/a".to_string(), false),
            ("by key", "ns/a".to_string(), true),
            ("by object", "ns/a".to_string(), true),
        ];
        assert_eq!(seen, want);
        let text = metrics.render();
        for line in [
            "bosun_reconcile_total{controller=\"by-key\",result=\"ok\"} 2",
            "bosun_reconcile_total{controller=\"by-object\",result=\"ok\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_controller_run_by_key_hands_over_the_key_of_a_deleted_object() {
        let fake = Arc::new(Fake::default());
        fake.lists
            .lock()
            .unwrap()
            .push_back(list(vec![p("a", 1), p("b", 2)], 2));
        fake.watches
            .lock()
            .unwrap()
            .push_back(vec![Ok(WatchEvent::Deleted(p("a", 3)))]);
        let metrics = Metrics::new();
        let informer = Informer::new(fake, Kind::Pod, Selector::all());
        let controller = Controller::new("deletes", informer, &metrics);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(controller.run_by_key(
            |key: &str, obj: Option<Arc<Object>>, seen: Arc<Mutex<Vec<_>>>| {
                seen.lock()
                    .unwrap()
                    .push(("controller", key.to_string(), obj.is_some()));
                async { Ok::<_, String>(Action::AwaitChange) }
            },
            backoff_on_key_error,
            seen.clone(),
            shutdown.clone(),
        ));
        tokio::time::sleep(ms(100)).await;
        shutdown.cancel();
        run.await.unwrap();

        let seen = seen.lock().unwrap().clone();
        let last = |key: &str| seen.iter().rev().find(|(_, k, _)| k == key).map(|s| s.2);
        // `ns/a` may have been reconciled present first (if a worker took it before the
        // delete arrived); its last reconcile is without its object.
        assert_eq!(last("ns/a"), Some(false), "{seen:?}");
        assert_eq!(last("ns/b"), Some(true), "{seen:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_in_the_reconcile_call_or_its_future_is_caught_counted_and_retried() {
        let objects: Objects = Arc::default();
        let metrics = Metrics::new();
        let queue = WorkQueue::with_metrics(Backoff::new(ms(10), ms(10)), &metrics, "panics");
        let calls = Arc::new(Mutex::new(0u32));
        let shutdown = CancellationToken::new();
        let workers = Workers::new("panics", queue.clone(), lookup(&objects), &metrics);
        let run = tokio::spawn(workers.run_by_key(
            |_key: &str, _obj: Option<Arc<Object>>, calls: Arc<Mutex<u32>>| {
                let n = {
                    let mut c = calls.lock().unwrap();
                    *c += 1;
                    *c
                };
                // The first call panics before returning its future (a synchronous
                // hand-off), the second in its future, the third succeeds.
                if n == 1 {
                    panic!("bug in the call");
                }
                async move {
                    if n == 2 {
                        panic!("bug in the future");
                    }
                    Ok::<_, String>(Action::AwaitChange)
                }
            },
            backoff_on_key_error,
            calls.clone(),
            shutdown.clone(),
        ));
        queue.add("ns/gone".to_string());
        tokio::time::sleep(ms(100)).await;
        shutdown.cancel();
        run.await.unwrap();
        assert_eq!(*calls.lock().unwrap(), 3);
        let text = metrics.render();
        for line in [
            "bosun_reconcile_panics_total{controller=\"panics\"} 2",
            "bosun_reconcile_total{controller=\"panics\",result=\"error\"} 2",
            "bosun_reconcile_total{controller=\"panics\",result=\"ok\"} 1",
            "bosun_queue_retries_total{queue=\"panics\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_sharded_controller_reconciles_held_shards_under_their_fence_and_takes_gained_ones() {
        use crate::cache::tests::pod;
        use bosun_api::shard::{Controller as Kind_, Fence, of_uid};
        // Pods controlled by Jobs u0..u9, in 4 shards of the Job controller.
        let uids: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
        let pods: Vec<Object> = uids
            .iter()
            .enumerate()
            .map(|(i, uid)| pod(&format!("p{i}"), i as i64 + 1, &[], &[uid], ""))
            .collect();
        let shard_of = |i: usize| of_uid(&uids[i], 4);
        let held = |shards: &[u32], token: i64| Held {
            controller: Kind_::Job,
            count: 4,
            tokens: shards.iter().map(|s| (*s, token)).collect(),
        };
        let fake = Arc::new(Fake::default());
        fake.lists
            .lock()
            .unwrap()
            .extend([list(pods.clone(), 10), list(pods, 10)]);
        let (tx, rx) = watch::channel(held(&[0, 1], 5));
        let metrics = Metrics::new();
        let informer = Informer::new(fake.clone(), Kind::Pod, Selector::all());
        let controller = Controller::new("sharded", informer, &metrics)
            .sharded(rx, Kind_::Job)
            .workers(2);
        type Seen = Arc<Mutex<Vec<(String, Option<Fence>)>>>;
        let seen: Seen = Arc::default();
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(controller.run(
            |obj: Arc<Object>, seen: Seen| async move {
                let fence = crate::sharded::current_fence();
                seen.lock().unwrap().push((obj.name().to_string(), fence));
                Ok::<_, String>(Action::AwaitChange)
            },
            backoff_on_error,
            seen.clone(),
            shutdown.clone(),
        ));
        tokio::time::sleep(ms(100)).await;
        let fence = |i: usize, token: i64| {
            Some(Fence {
                controller: Kind_::Job,
                shard: shard_of(i),
                token,
            })
        };
        let mut want: Vec<(String, Option<Fence>)> = (0..10)
            .filter(|i| shard_of(*i) < 2)
            .map(|i| (format!("p{i}"), fence(i, 5)))
            .collect();
        let first = {
            let mut s = seen.lock().unwrap().clone();
            s.sort_by(|a, b| a.0.cmp(&b.0));
            s
        };
        assert_eq!(first, want, "only the held shards, each under its fence");
        assert!(want.len() < 10, "the uids must spread over the 4 shards");
        // Shards 2 and 3 are taken: their keys come, under the new fences.
        tx.send(held(&[0, 1, 2, 3], 6)).unwrap();
        tokio::time::sleep(ms(100)).await;
        shutdown.cancel();
        run.await.unwrap();
        let mut all = seen.lock().unwrap().clone();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        want.extend(
            (0..10)
                .filter(|i| shard_of(*i) >= 2)
                .map(|i| (format!("p{i}"), fence(i, 6))),
        );
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(all, want);
        let skipped = 10 - first.len();
        let text = metrics.render();
        for line in [
            format!(
                "bosun_controller_reconciles_skipped_total{{controller=\"sharded\",reason=\"shard_not_held\"}} {skipped}"
            ),
            "bosun_controller_shards_held{controller=\"sharded\"} 4".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_before_the_caches_sync_returns_without_reconciling() {
        // No list ever succeeds.
        let fake = Arc::new(Fake::default());
        let metrics = Metrics::new();
        let informer = Informer::new(fake, Kind::Pod, Selector::all());
        let controller = Controller::new("never", informer, &metrics);
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(controller.run(
            |_obj: Arc<Object>, _: Arc<()>| async { Ok::<_, String>(Action::AwaitChange) },
            backoff_on_error,
            Arc::new(()),
            shutdown.clone(),
        ));
        tokio::time::sleep(ms(500)).await;
        shutdown.cancel();
        run.await.unwrap();
        assert!(!metrics.render().contains("result=\"ok\"} 1"));
    }
}
