//! bosun's garbage collector (Kubernetes' `garbagecollector` controller, KUBERNETES.md D.4).
//!
//! Informers over every kind that can own or be owned keep an owner graph: which uid is
//! which object, and (through each cache's owner index) who references whom. Every change
//! enqueues the item, the owners it references and, when it is deleted, its dependents; the
//! runtime's workers ([`bosun_runtime::controller::Workers`]: one span per item, panics
//! caught, reconcile metrics) then reconcile each item, looking at it twice:
//!
//! - as an **owner** marked for deletion with `foregroundDeletion`: delete the dependents,
//!   and once no dependent with `blockOwnerDeletion` remains, drop the finalizer (the broker
//!   then deletes the owner); with `orphan`: strip its ownerReference from every dependent,
//!   then drop the finalizer;
//! - as a **dependent**: when every owner is gone (verified with an uncached read, by uid,
//!   since a new object may reuse an owner's name) delete it; when some are gone but one
//!   still holds it, remove the dangling references.
//!
//! It is also Kubernetes' **TTL-after-finished** controller (KUBERNETES.md A.7): a Job with
//! `spec.ttlSecondsAfterFinished` and a `Complete` or `Failed` condition with status `True`
//! is deleted `ttl` seconds after that condition's `lastTransitionTime` (0: at once). Its
//! reconcile puts the Job's key back on the queue to come back exactly at expiry; then the
//! Job is read again from the broker (uncached: the TTL may have been raised, or the Job
//! recreated under its name) and, if it has expired still, deleted with propagation
//! `Foreground` and a uid precondition, so its pods go first (by the foreground handling
//! above) and a namesake is never hit. A finish time in the future (clock skew) is warned
//! about and waited for; one that cannot be read keeps the Job, with a warning, until a
//! status write fixes it. Deletes are counted in `bosun_gc_ttl_deletes_total`.
//!
//! Decisions live in [`plan`] and [`ttl`]; this file gathers facts and acts.

pub mod config;
pub mod error;
pub mod plan;
pub mod ttl;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bosun_api::v1::{Kind, OwnerReference};
use bosun_api::{KindInfo, Object};
use bosun_runtime::cache::{Change, ChangeKind, Store};
use bosun_runtime::client::{Broker, DeleteOptions, Selector};
use bosun_runtime::controller::{Action, Workers, backoff_on_error};
use bosun_runtime::informer::Informer;
use bosun_runtime::metrics::{Counter, Metrics};
use bosun_runtime::queue::{Backoff, WorkQueue};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::{Error, Result};
use plan::{DependentAction, DependentRef, OwnerAction, OwnerState, Propagation};
use ttl::{FinishTimeError, TtlAction};

/// The kinds the collector watches: every kind that can own or be owned.
pub const KINDS: &[Kind] = &[
    Kind::Pod,
    Kind::Job,
    Kind::CronJob,
    Kind::DaemonSet,
    Kind::ControllerRevision,
    Kind::Lease,
    Kind::Node,
];

/// The work-queue key of an object: `Kind/namespace/name` (`Kind/name` if cluster-scoped).
pub fn item_key(kind: &str, store_key: &str) -> String {
    format!("{kind}/{store_key}")
}

/// How soon an owner whose foreground delete found dependents its caches missed is looked at
/// again.
const MISSED_DEPENDENT_RECHECK: Duration = Duration::from_secs(1);

/// What the owner with uid `owner_uid` needs to know of dependent `dep` (work-queue `key`).
fn dependent_ref(owner_uid: &str, key: String, dep: &Object) -> DependentRef {
    DependentRef {
        blocks: refs(dep)
            .iter()
            .any(|r| r.uid == owner_uid && r.block_owner_deletion == Some(true)),
        being_deleted: dep.meta().is_some_and(plan::is_being_deleted),
        key,
    }
}

/// The kind and cache key of a work-queue key.
fn parse_key(key: &str) -> Option<(&'static KindInfo, &str)> {
    let (kind, rest) = key.split_once('/')?;
    Some((KindInfo::by_manifest_kind(kind)?, rest))
}

/// The collector's counters.
#[derive(Clone)]
struct GcMetrics {
    deletes: Counter,
    orphanings: Counter,
    references_removed: Counter,
    finalizers_removed: Counter,
    ttl_deletes: Counter,
}

impl GcMetrics {
    fn new(m: &Metrics) -> GcMetrics {
        GcMetrics {
            deletes: m.counter(
                "bosun_gc_deletes_total",
                "Dependents deleted because their owners are gone or deleting.",
                &[],
            ),
            orphanings: m.counter(
                "bosun_gc_orphanings_total",
                "Dependents released by an Orphan delete of their owner.",
                &[],
            ),
            references_removed: m.counter(
                "bosun_gc_references_removed_total",
                "Dangling ownerReferences removed from dependents that another owner holds.",
                &[],
            ),
            finalizers_removed: m.counter(
                "bosun_gc_finalizers_removed_total",
                "foregroundDeletion/orphan finalizers removed once their work was done.",
                &[],
            ),
            ttl_deletes: m.counter(
                "bosun_gc_ttl_deletes_total",
                "Finished Jobs deleted because their ttlSecondsAfterFinished had passed.",
                &[],
            ),
        }
    }
}

/// What every reconcile shares: the broker, the caches, the uid graph, the queue.
struct Gc {
    broker: Broker,
    stores: HashMap<Kind, Store>,
    /// uid → work-queue key of every object the caches hold.
    uids: Arc<RwLock<HashMap<String, String>>>,
    queue: WorkQueue<String>,
    metrics: GcMetrics,
}

/// Runs the garbage collector against `config.broker.server` until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let broker = Broker::connect_lazy(&config.broker.server)?;
    let registry = Metrics::new();
    let metrics_task = config.metrics.serve(&registry, &shutdown).await?;
    let queue: WorkQueue<String> = WorkQueue::with_metrics(Backoff::default(), &registry, "gc");
    let uids: Arc<RwLock<HashMap<String, String>>> = Arc::default();

    let mut informers = Vec::new();
    let mut stores = HashMap::new();
    for kind in KINDS {
        let mut informer =
            Informer::for_broker(&broker, *kind, Selector::all()).with_metrics(&registry);
        // The collector decides on metadata (owners, finalizers, deletion) and re-reads an
        // object before it writes, so its caches keep the metadata only; Jobs stay whole
        // (their TTL runs from spec and status).
        if *kind != Kind::Job {
            informer = informer.with_transform(Object::retain_identity_only);
        }
        stores.insert(*kind, informer.store());
        informers.push((*kind, informer));
    }
    let gc = Arc::new(Gc {
        broker,
        stores,
        uids: uids.clone(),
        queue: queue.clone(),
        metrics: GcMetrics::new(&registry),
    });

    let stop_informers = shutdown.child_token();
    let mut tasks = Vec::new();
    for (kind, mut informer) in informers {
        let gc = gc.clone();
        let name = KindInfo::of(kind).map_or("Unknown", |i| i.name);
        informer.on_change(move |change| gc.observe(name, change));
        let (_, task) = informer.spawn(stop_informers.clone());
        tasks.push(task);
    }
    // No decision before every cache has its first list (a missing owner would look gone).
    let synced = async {
        for store in gc.stores.values() {
            store.wait_until_ready().await;
        }
    };
    let ready = tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = synced => true,
    };
    if ready {
        tracing::info!(
            workers = config.workers,
            "caches synced; collecting garbage"
        );
        // The runtime's workers: one span per item, panics caught, reconcile metrics.
        let stores = gc.stores.clone();
        let lookup = move |key: &str| {
            let (info, store_key) = parse_key(key)?;
            stores.get(&info.kind)?.get(store_key)
        };
        Workers::new("gc", queue.clone(), lookup, &registry)
            .workers(config.workers)
            .run(reconcile, backoff_on_error, gc.clone(), shutdown.clone())
            .await;
    }
    queue.shutdown();
    stop_informers.cancel();
    for t in tasks {
        let _ = t.await;
    }
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    Ok(())
}

/// Looks at one item (found in its cache by the runtime's workers) as an owner, then as a
/// dependent, then (a Job) at its TTL. A failure is retried with the item's backoff.
async fn reconcile(item: Arc<Object>, gc: Arc<Gc>) -> Result<Action> {
    gc.collect(&item).await?;
    if item.as_job().is_some() {
        let info = item.info().ok_or_else(|| Error::BadKey(item.key()))?;
        gc.expire_job(&item_key(info.name, &item.key()), &item)
            .await?;
    }
    Ok(Action::AwaitChange)
}

impl Gc {
    /// An informer's change: keep the uid graph and enqueue whoever must look again.
    fn observe(&self, kind: &str, change: &Change) {
        let key = item_key(kind, &change.key);
        let mut uids = self.uids.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = &change.old
            && change.new.as_ref().is_none_or(|n| n.uid() != old.uid())
            && uids.get(old.uid()) == Some(&key)
        {
            uids.remove(old.uid());
        }
        if let Some(new) = &change.new {
            uids.insert(new.uid().to_string(), key.clone());
        }
        // A status-only change (most pod writes) changes nothing the collector decides on:
        // only an owner already being deleted (foreground) wants to hear about it. Jobs are
        // always looked at (their TTL runs from a status condition).
        let quiet = change.kind == ChangeKind::Modified
            && kind != "Job"
            && match (&change.old, &change.new) {
                (Some(old), Some(new)) => gc_facts(old) == gc_facts(new),
                _ => false,
            };
        // The owners referenced before and after: a foreground owner waits on this item.
        let mut owners = Vec::new();
        for obj in [&change.old, &change.new].into_iter().flatten() {
            for r in refs(obj) {
                if let Some(owner) = uids.get(&r.uid) {
                    owners.push(owner.clone());
                }
            }
        }
        drop(uids);
        for owner in owners {
            if quiet && !self.is_deleting(&owner) {
                continue;
            }
            self.queue.add(owner);
        }
        match change.kind {
            ChangeKind::Deleted => {
                if let Some(old) = &change.old {
                    for dep in self.dependents(old.uid()) {
                        self.queue.add(dep.0);
                    }
                }
            }
            ChangeKind::Modified if quiet => {}
            ChangeKind::Added | ChangeKind::Modified => self.queue.add(key),
        }
    }

    /// Whether the item at work-queue `key` is cached and marked for deletion.
    fn is_deleting(&self, key: &str) -> bool {
        parse_key(key)
            .and_then(|(info, k)| self.stores.get(&info.kind).and_then(|s| s.get(k)))
            .is_some_and(|o| o.meta().is_some_and(plan::is_being_deleted))
    }

    /// The cached dependents of `uid`, with their work-queue keys.
    fn dependents(&self, uid: &str) -> Vec<(String, Arc<Object>)> {
        let mut out = Vec::new();
        for (kind, store) in &self.stores {
            let name = KindInfo::of(*kind).map_or("Unknown", |i| i.name);
            for obj in store.by_owner(uid) {
                out.push((item_key(name, &obj.key()), obj));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// `item` as an owner being deleted, then as a dependent.
    async fn collect(&self, item: &Object) -> Result<()> {
        let Some(meta) = item.meta() else {
            return Ok(());
        };
        if plan::is_being_deleted(meta) {
            let deps: Vec<DependentRef> = self
                .dependents(item.uid())
                .into_iter()
                .map(|(key, dep)| dependent_ref(item.uid(), key, &dep))
                .collect();
            match plan::plan_owner(meta, &deps) {
                OwnerAction::None => {}
                OwnerAction::DeleteDependents(keys) => {
                    tracing::debug!(dependents = keys.len(), "foreground: deleting dependents");
                    for k in keys {
                        self.queue.add(k);
                    }
                    return Ok(());
                }
                OwnerAction::FinishForeground => {
                    // The caches may not have seen a dependent created just before the
                    // delete (pods and Jobs come through different watches): decide again on
                    // the dependents the broker lists before letting the owner go.
                    let listed: Vec<DependentRef> = self
                        .uncached_dependents(item)
                        .await?
                        .into_iter()
                        .map(|(key, dep)| dependent_ref(item.uid(), key, &dep))
                        .collect();
                    if let OwnerAction::DeleteDependents(keys) = plan::plan_owner(meta, &listed) {
                        tracing::debug!(
                            dependents = keys.len(),
                            "foreground: the broker lists blocking dependents the caches missed"
                        );
                        for k in keys {
                            self.queue.add(k);
                        }
                        // Their changes reach the caches and requeue this owner; this timer
                        // covers one that is already being deleted.
                        if let Some(info) = KindInfo::of(item.kind()) {
                            self.queue.add_after(
                                item_key(info.name, &item.key()),
                                MISSED_DEPENDENT_RECHECK,
                            );
                        }
                        return Ok(());
                    }
                    return self
                        .remove_finalizer(item, plan::FOREGROUND_FINALIZER)
                        .await;
                }
                OwnerAction::Orphan(mut keys) => {
                    // The caches may not have seen every dependent yet, and one the orphaning
                    // missed would later be deleted as the dependent of a gone owner: read the
                    // dependents from the broker before letting the owner go.
                    keys.extend(
                        self.uncached_dependents(item)
                            .await?
                            .into_iter()
                            .map(|(k, _)| k),
                    );
                    keys.sort();
                    keys.dedup();
                    for k in keys {
                        self.orphan(&k, item.uid()).await?;
                    }
                    return self.remove_finalizer(item, plan::ORPHAN_FINALIZER).await;
                }
            }
        }
        if meta.owner_references.is_empty() {
            return Ok(());
        }
        self.attempt_to_delete(item).await
    }

    /// The TTL-after-finished controller for the Job at `key`: nothing, a timer for its
    /// expiry, or (confirmed by an uncached read) a foreground delete.
    async fn expire_job(&self, key: &str, cached: &Object) -> Result<()> {
        let Some(job) = cached.as_job() else {
            return Ok(());
        };
        if !self.ttl_says_delete(key, cached, ttl::plan_ttl(job, Utc::now())) {
            return Ok(());
        }
        // The cache may be behind: the TTL raised, the Job deleted or recreated since.
        let Some(fresh) = self
            .broker
            .get_opt(Kind::Job, cached.namespace(), cached.name())
            .await?
        else {
            return Ok(());
        };
        let Some(fresh_job) = fresh.as_job() else {
            return Ok(());
        };
        if !self.ttl_says_delete(key, &fresh, ttl::plan_ttl(fresh_job, Utc::now())) {
            return Ok(());
        }
        let options = DeleteOptions {
            uid: Some(fresh.uid().to_string()),
            propagation_policy: Some(Propagation::Foreground.as_str().to_string()),
            ..Default::default()
        };
        match self
            .broker
            .delete(Kind::Job, fresh.namespace(), fresh.name(), options)
            .await
        {
            Ok(_) => {
                self.metrics.ttl_deletes.inc();
                tracing::info!(
                    namespace = fresh.namespace(),
                    name = fresh.name(),
                    ttl_seconds = fresh_job
                        .spec
                        .as_ref()
                        .and_then(|s| s.ttl_seconds_after_finished),
                    "finished Job past its ttlSecondsAfterFinished deleted (foreground)"
                );
                Ok(())
            }
            // Gone already, or replaced by a namesake since the read (its own create event
            // queues it).
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Carries out a TTL plan for `job` (queued at `key`) short of deleting: sets the expiry
    /// timer, warns about clock skew or an unreadable finish time. Returns whether the plan
    /// is to delete now.
    fn ttl_says_delete(
        &self,
        key: &str,
        job: &Object,
        plan: Result<TtlAction, FinishTimeError>,
    ) -> bool {
        let (namespace, name) = (job.namespace(), job.name());
        match plan {
            Ok(TtlAction::Keep) => false,
            Ok(TtlAction::DeleteNow) => true,
            Ok(TtlAction::RequeueAfter(after)) => {
                tracing::debug!(namespace, name, ?after, "finished Job expires later");
                self.queue.add_after(key.to_string(), after);
                false
            }
            Ok(TtlAction::FinishedInFuture { ahead, after }) => {
                tracing::warn!(
                    namespace,
                    name,
                    ?ahead,
                    ?after,
                    "Job finished in the future, likely clock skew between its writer and the gc; its TTL counts from that time"
                );
                self.queue.add_after(key.to_string(), after);
                false
            }
            Err(err) => {
                tracing::warn!(namespace, name, %err, "finished Job kept: its TTL cannot be counted");
                false
            }
        }
    }

    /// What became of the owner `r` of an object in `namespace`; `verify` reads the broker
    /// (uncached) when the graph does not know the uid.
    async fn owner_state(
        &self,
        r: &OwnerReference,
        namespace: &str,
        verify: bool,
    ) -> Result<OwnerState> {
        let Some(info) = KindInfo::by_manifest_kind(&r.kind) else {
            return Ok(OwnerState::Unverifiable);
        };
        let cached = {
            let uids = self.uids.read().unwrap_or_else(|e| e.into_inner());
            uids.get(&r.uid).cloned()
        };
        let owner = match cached.as_deref().and_then(parse_key) {
            Some((i, k)) => self.stores.get(&i.kind).and_then(|s| s.get(k)),
            None => None,
        };
        let owner = match owner {
            Some(o) => Some((*o).clone()),
            None if verify => {
                let ns = if info.namespaced { namespace } else { "" };
                self.broker
                    .get_opt(info.kind, ns, &r.name)
                    .await?
                    .filter(|o| o.uid() == r.uid)
            }
            None => None,
        };
        Ok(match owner {
            None => OwnerState::Dangling,
            Some(o) if o.meta().is_some_and(plan::is_deleting_dependents) => {
                OwnerState::WaitingForDependents
            }
            Some(_) => OwnerState::Solid,
        })
    }

    /// The owners of `item` and what became of them.
    async fn owner_states(&self, item: &Object, verify: bool) -> Result<Vec<(String, OwnerState)>> {
        let mut out = Vec::new();
        for r in refs(item) {
            out.push((
                r.uid.clone(),
                self.owner_state(r, item.namespace(), verify).await?,
            ));
        }
        Ok(out)
    }

    /// `item` as a dependent: delete it, or drop dangling references, or leave it.
    async fn attempt_to_delete(&self, cached: &Object) -> Result<()> {
        let has_deps = !self.dependents(cached.uid()).is_empty();
        let meta = cached.meta().cloned().unwrap_or_default();
        // Cheap first look from the caches; only a would-be action is verified.
        let guess = plan::plan_dependent(&meta, &self.owner_states(cached, false).await?, has_deps);
        if guess == DependentAction::Keep {
            return Ok(());
        }
        let info = cached.info().ok_or_else(|| Error::BadKey(cached.key()))?;
        let Some(item) = self
            .broker
            .get_opt(info.kind, cached.namespace(), cached.name())
            .await?
            .filter(|o| o.uid() == cached.uid())
        else {
            return Ok(()); // already gone (or replaced by a namesake).
        };
        let owners = self.owner_states(&item, true).await?;
        let meta = item.meta().cloned().unwrap_or_default();
        match plan::plan_dependent(&meta, &owners, has_deps) {
            DependentAction::Keep => Ok(()),
            DependentAction::RemoveReferences(stale) => {
                let mut updated = item.clone();
                updated
                    .meta_mut()
                    .owner_references
                    .retain(|r| !stale.contains(&r.uid));
                match self.broker.update(updated).await {
                    Ok(_) => {
                        self.metrics.references_removed.add(stale.len() as u64);
                        tracing::info!(
                            kind = info.name,
                            namespace = item.namespace(),
                            name = item.name(),
                            removed = ?stale,
                            "removed references to owners that are gone"
                        );
                        Ok(())
                    }
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            DependentAction::Delete(policy) => self.delete(&item, policy).await,
        }
    }

    /// Deletes `item` (this uid only) with `policy`.
    async fn delete(&self, item: &Object, policy: Propagation) -> Result<()> {
        let info = item.info().ok_or_else(|| Error::BadKey(item.key()))?;
        let options = DeleteOptions {
            uid: Some(item.uid().to_string()),
            propagation_policy: Some(policy.as_str().to_string()),
            ..Default::default()
        };
        match self
            .broker
            .delete(info.kind, item.namespace(), item.name(), options)
            .await
        {
            Ok(_) => {
                self.metrics.deletes.inc();
                tracing::info!(
                    kind = info.name,
                    namespace = item.namespace(),
                    name = item.name(),
                    propagation = policy.as_str(),
                    "deleted a dependent whose owners are gone"
                );
                Ok(())
            }
            // Gone already, or the name now belongs to another object.
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object that names `owner` as an owner, with its work-queue key, read from the
    /// broker (not the caches), in the owner's namespace (every namespace for a cluster-scoped
    /// owner).
    async fn uncached_dependents(&self, owner: &Object) -> Result<Vec<(String, Object)>> {
        let selector = bosun_runtime::client::Selector {
            namespace: owner.namespace().to_string(),
            ..Default::default()
        };
        let mut keys = Vec::new();
        for kind in self.stores.keys() {
            let Some(info) = KindInfo::of(*kind).filter(|i| i.namespaced) else {
                continue;
            };
            for obj in self.broker.list(*kind, &selector).await?.items {
                if refs(&obj).iter().any(|r| r.uid == owner.uid()) {
                    keys.push((item_key(info.name, &obj.key()), obj));
                }
            }
        }
        Ok(keys)
    }

    /// Removes the reference to `owner_uid` from the dependent at work-queue key `key`.
    async fn orphan(&self, key: &str, owner_uid: &str) -> Result<()> {
        let (info, store_key) = parse_key(key).ok_or_else(|| Error::BadKey(key.into()))?;
        let (namespace, name) = match store_key.split_once('/') {
            Some((ns, n)) => (ns, n),
            None => ("", store_key),
        };
        let Some(mut dep) = self.broker.get_opt(info.kind, namespace, name).await? else {
            return Ok(());
        };
        let before = dep.meta().map_or(0, |m| m.owner_references.len());
        dep.meta_mut()
            .owner_references
            .retain(|r| r.uid != owner_uid);
        if dep.meta().map_or(0, |m| m.owner_references.len()) == before {
            return Ok(());
        }
        match self.broker.update(dep).await {
            Ok(_) => {
                self.metrics.orphanings.inc();
                tracing::info!(kind = info.name, namespace, name, "orphaned a dependent");
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes `finalizer` from the latest version of `owner` (same uid).
    async fn remove_finalizer(&self, owner: &Object, finalizer: &str) -> Result<()> {
        let info = owner.info().ok_or_else(|| Error::BadKey(owner.key()))?;
        let latest = match self
            .broker
            .get_opt(info.kind, owner.namespace(), owner.name())
            .await?
        {
            Some(o) if o.uid() == owner.uid() => o,
            _ => return Ok(()),
        };
        let finalizers = latest
            .meta()
            .map(|m| m.finalizers.clone())
            .unwrap_or_default();
        if !finalizers.iter().any(|f| f == finalizer) {
            return Ok(());
        }
        let mut updated = latest;
        updated.meta_mut().finalizers = plan::without_finalizer(&finalizers, finalizer);
        match self.broker.update(updated).await {
            Ok(_) => {
                self.metrics.finalizers_removed.inc();
                tracing::info!(
                    kind = info.name,
                    namespace = owner.namespace(),
                    name = owner.name(),
                    finalizer,
                    "dependents handled; finalizer removed"
                );
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(Error::Client(e)),
        }
    }
}

/// The ownerReferences of `obj`.
fn refs(obj: &Object) -> &[OwnerReference] {
    obj.meta().map_or(&[], |m| m.owner_references.as_slice())
}

/// What the collector decides on: owners, deletion mark, finalizers.
fn gc_facts(obj: &Object) -> Option<(&[OwnerReference], &str, &[String])> {
    obj.meta().map(|m| {
        (
            m.owner_references.as_slice(),
            m.deletion_timestamp.as_str(),
            m.finalizers.as_slice(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_name_the_kind_and_the_cache_key() {
        assert_eq!(item_key("Pod", "default/a"), "Pod/default/a");
        let (info, key) = parse_key("Pod/default/a").unwrap();
        assert_eq!((info.kind, key), (Kind::Pod, "default/a"));
        let (info, key) = parse_key("Node/n1").unwrap();
        assert_eq!((info.kind, key), (Kind::Node, "n1"));
        assert!(parse_key("Nope/x").is_none());
        assert!(parse_key("Pod").is_none());
    }
}
