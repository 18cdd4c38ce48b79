//! bosun's DaemonSet controller (Kubernetes' `daemon` controller, KUBERNETES.md section C):
//! one pod of each DaemonSet on every node that should run it, rolling updates (both
//! algorithms) and OnDelete, ControllerRevision history, status.
//!
//! An informer over DaemonSets feeds the controller runtime's work queue. Its pods
//! (`owns(.., "DaemonSet")`) and ControllerRevisions wake it when they change; an orphan pod
//! wakes the DaemonSets whose selector it matches (to be adopted); a node that is added or
//! deleted, or whose labels, taints, schedulability or readiness change, wakes every
//! DaemonSet.
//!
//! One reconcile **claims** the DaemonSet's pods with the runtime's controller-ref manager
//! (orphans that match its selector are adopted, its pods that stop matching are released),
//! gathers the facts of the nodes (kept between reconciles while no node changed:
//! [`nodecache`]), of the pods and of the revisions from the caches, asks
//! the runtime's expectations whether anything it created or deleted is still unseen, and
//! hands all that to [`plan::plan`]. It then acts, through the runtime's [`Writer`] (so the
//! act half is tested in-process with a recording fake), in this order: the current
//! **revision** (created, or renumbered; a name collision bumps `status.collisionCount` and
//! nothing else happens), pod **deletions**, pod **creations** in slow-start batches of 1,
//! 2, 4… (the first failure stops the rest: a broken template fails fast), old revisions'
//! deletions, the **status** (written once, when it changed, conflict-checked), then the
//! plan's events. Every creation and deletion that succeeded is remembered in the
//! expectations until the pod cache shows it, so a slow watch never makes two pods for a
//! node: until then, the next reconcile writes the status only.
//!
//! Scale-out (issue 12; `bosun_runtime::sharded`): the controller runs as one of several
//! replicas, each reconciling the DaemonSets of the shards it holds ([`Config::sharding`]: the
//! membership's, or a test's). Sharded: the DaemonSet,
//! pod and ControllerRevision informers (pods and revisions follow their DaemonSet; orphan
//! pods are seen by every replica and adopted under the adopting DaemonSet's fence). Not
//! sharded: nodes, which belong to no DaemonSet and which every replica places pods on (a
//! node change enqueues every cached, hence held, DaemonSet). Pod creations and deletions
//! run in a `JoinSet` off the reconcile task, each wrapped in `carry_fence`; events go
//! through the recorder's own task, unfenced.

pub mod config;
pub mod error;
pub mod nodecache;
pub mod plan;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_api::daemonset as ds_api;
use bosun_api::selector::LabelSelector;
use bosun_api::vocab::daemonset::{CHANGE_CAUSE_ANNOTATION, REVISION_HASH_LABEL};
use bosun_api::{Kind, Object, shard, v1};
use bosun_runtime::cache::{Change, ChangeKind, Store};
use bosun_runtime::claim::{self, Claim, OrphanIndex, Outcome, Owner};
use bosun_runtime::client::{Broker, DeleteOptions, Selector};
use bosun_runtime::controller::{Action, Controller, backoff_on_error};
use bosun_runtime::events::{EventRecorder, EventType};
use bosun_runtime::expectations::{Expectations, Seen};
use bosun_runtime::informer::Informer;
use bosun_runtime::metrics::{Counter, Metrics};
use bosun_runtime::sharded::{Replica, carry_fence};
use bosun_runtime::writer::Writer;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::{Error, Result};
use nodecache::NodeFactsCache;
use plan::{BackoffEntry, Current, Inputs, NodeFacts, Plan, PodFacts, RevisionFacts};

/// The component name on events.
pub const COMPONENT: &str = "daemonset-controller";
/// A pod created or deleted and not yet seen through the watch is assumed for this long.
const IN_FLIGHT_TTL: Duration = Duration::from_secs(60);
/// Events waiting to be written at most (beyond, dropped and counted: never waited for).
const EVENTS_QUEUED: usize = 4096;
/// How soon a reconcile that lost a write race looks again (its cache is catching up).
const CONFLICT_RETRY: Duration = Duration::from_millis(20);
/// Pod deletions in flight per reconcile at most.
const DELETES_IN_FLIGHT: usize = 64;

struct DsMetrics {
    pods_created: Counter,
    pods_deleted: Counter,
    pods_adopted: Counter,
    pods_orphaned: Counter,
    conflicts: Counter,
}

impl DsMetrics {
    fn new(m: &Metrics) -> DsMetrics {
        DsMetrics {
            pods_created: m.counter(
                "bosun_daemonset_pods_created_total",
                "Pods created for DaemonSets.",
                &[],
            ),
            pods_deleted: m.counter(
                "bosun_daemonset_pods_deleted_total",
                "Pods the DaemonSet controller deleted.",
                &[],
            ),
            pods_adopted: m.counter(
                "bosun_daemonset_pods_adopted_total",
                "Orphan pods matching a DaemonSet's selector that it adopted.",
                &[],
            ),
            pods_orphaned: m.counter(
                "bosun_daemonset_pods_orphaned_total",
                "Pods released because their labels no longer match their DaemonSet's selector.",
                &[],
            ),
            conflicts: m.counter(
                "bosun_daemonset_status_conflicts_total",
                "DaemonSet status writes that lost a race and were retried.",
                &[],
            ),
        }
    }
}

struct Ctx {
    /// Every write (and the fresh reads writes need) goes through here.
    writer: Arc<dyn Writer>,
    pods: Store,
    nodes: Store,
    revisions: Store,
    /// The DaemonSets (to drop the node facts of those gone).
    daemonsets: Store,
    /// Each DaemonSet's node facts, kept while no node changed.
    node_facts: Arc<NodeFactsCache>,
    /// The cached pods with no controller, per namespace: adoption candidates.
    orphans: Arc<OrphanIndex>,
    recorder: EventRecorder,
    /// Pods created or deleted by this process and not yet seen, per DaemonSet uid.
    expectations: Expectations<()>,
    /// Failure back-off per (DaemonSet uid, node name).
    backoff: Mutex<HashMap<String, BTreeMap<String, BackoffEntry>>>,
    metrics: DsMetrics,
}

/// Runs the DaemonSet controller against the broker in `config` until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let broker = Broker::connect_lazy(&config.broker.server)?;
    let registry = Metrics::new();
    let metrics_task = config.metrics.serve(&registry, &shutdown).await?;
    // Scale-out: this replica's shards (see `bosun_runtime::sharded::Replica`).
    const KIND: shard::Controller = shard::Controller::DaemonSet;
    let mut replica = Replica::join(
        KIND,
        &config.broker.server,
        &config.replica,
        config.sharding.clone(),
        &registry,
        &shutdown,
    )?;
    let sharding = replica.sharding.clone();
    let daemonsets = Informer::for_broker(&broker, Kind::DaemonSet, Selector::all());
    let mut pods = Informer::for_broker(&broker, Kind::Pod, Selector::all())
        .with_metrics(&registry)
        .sharded(sharding.held.clone(), KIND);
    // Nodes are nobody's dependents: every replica sees them all.
    let nodes = Informer::for_broker(&broker, Kind::Node, Selector::all()).with_metrics(&registry);
    let revisions = Informer::for_broker(&broker, Kind::ControllerRevision, Selector::all())
        .with_metrics(&registry)
        .sharded(sharding.held.clone(), KIND);
    let (pod_store, node_store, revision_store) = (pods.store(), nodes.store(), revisions.store());
    let controller =
        Controller::new("daemonset", daemonsets, &registry).sharded(sharding.held.clone(), KIND);
    let ds_store = controller.store();
    let node_facts = Arc::new(NodeFactsCache::default());
    // Orphan pods wake the DaemonSets whose selector they match.
    let orphans = Arc::new(OrphanIndex::default());
    pods.on_change({
        let (orphans, daemonsets, queue) = (orphans.clone(), ds_store.clone(), controller.queue());
        move |change: &Change| {
            orphans.observe(change);
            claim::wake_adopters(
                &daemonsets,
                &queue,
                change,
                |ds| ds_selector(ds).filter(|s| !s.is_empty()),
                |p, s| p.meta().is_some_and(|m| s.matches(&m.labels)),
            );
        }
    });
    let controller = controller
        .owns(pods, "DaemonSet")
        .owns(revisions, "DaemonSet")
        .watches(nodes, {
            let (daemonsets, node_facts) = (ds_store.clone(), node_facts.clone());
            move |change| {
                if node_change_matters(change) {
                    node_facts.node_changed();
                    daemonsets.keys()
                } else {
                    Vec::new()
                }
            }
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
        nodes: node_store,
        revisions: revision_store,
        daemonsets: ds_store,
        node_facts,
        orphans,
        expectations: Expectations::new(IN_FLIGHT_TTL),
        backoff: Mutex::default(),
        metrics: DsMetrics::new(&registry),
    });
    controller
        .run(reconcile, backoff_on_error, ctx, shutdown)
        .await;
    replica.left().await;
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    Ok(())
}

/// Whether a node change can change where daemon pods run (Kubernetes'
/// `shouldIgnoreNodeUpdate`, plus readiness, which the rollout reads): an add, a delete, or
/// a change of labels, taints, schedulability or the Ready condition's status.
fn node_change_matters(change: &Change) -> bool {
    if change.kind != ChangeKind::Modified {
        return true;
    }
    let facts = |o: &Option<Arc<Object>>| {
        o.as_ref().and_then(|o| o.as_node()).map(|n| {
            (
                n.metadata.as_ref().map(|m| m.labels.clone()),
                n.spec.clone(),
                bosun_api::nodematch::node_readiness(n),
            )
        })
    };
    facts(&change.old) != facts(&change.new)
}

/// A DaemonSet's `spec.selector`, parsed; `None` when absent or invalid.
fn ds_selector(obj: &Object) -> Option<LabelSelector> {
    let sel = obj.as_daemon_set()?.spec.as_ref()?.selector.as_ref()?;
    LabelSelector::from_proto(sel).ok()
}

async fn reconcile(obj: Arc<Object>, ctx: Arc<Ctx>) -> Result<Action> {
    let Some(ds) = obj.as_daemon_set() else {
        return Ok(Action::AwaitChange);
    };
    let meta = ds.metadata.clone().unwrap_or_default();
    if !meta.deletion_timestamp.is_empty() {
        // Being deleted: the garbage collector takes its pods and revisions.
        ctx.expectations.forget(&meta.uid);
        ctx.node_facts.forget(&obj.key());
        lock(&ctx.backoff).remove(&meta.uid);
        return Ok(Action::AwaitChange);
    }
    let Some(selector) = ds_selector(&obj).filter(|s| !s.is_empty()) else {
        ctx.recorder.emit(
            &obj,
            EventType::Warning,
            "SelectingAll",
            "This daemon set is selecting all pods. A non-empty selector is required.",
        );
        return Ok(Action::AwaitChange);
    };
    let owned: Vec<Arc<Object>> = ctx
        .pods
        .by_owner(&meta.uid)
        .into_iter()
        .filter(|p| p.controller_ref().is_some_and(|r| r.uid == meta.uid))
        .collect();
    let pods = claim_pods(&ctx, &Owner::of(&obj), &selector, owned).await?;
    let deleting: HashMap<&str, bool> = pods
        .iter()
        .map(|p| {
            let going = p.meta().is_some_and(|m| !m.deletion_timestamp.is_empty());
            (p.name(), going)
        })
        .collect();
    let in_flight = ctx
        .expectations
        .observe(&meta.uid, |name| match deleting.get(name) {
            None => Seen::Absent,
            Some(true) => Seen::Deleting,
            Some(false) => Seen::Present,
        });
    let satisfied = in_flight.created.is_empty() && in_flight.deleted.is_empty();
    let pod_facts: Vec<PodFacts> = pods
        .iter()
        .filter_map(|p| p.as_pod().map(PodFacts::of))
        .collect();
    let spec = ds.spec.clone().unwrap_or_default();
    let template = spec.template.clone().unwrap_or_default();
    let nodes = ctx.node_facts.facts(
        &obj.key(),
        &meta.uid,
        &template,
        || {
            ctx.nodes
                .list()
                .iter()
                .filter_map(|n| n.as_node().map(|n| NodeFacts::of(&template, n)))
                .collect()
        },
        |key| ctx.daemonsets.get(key).is_some(),
    );
    let revisions: Vec<RevisionFacts> = ctx
        .revisions
        .by_owner(&meta.uid)
        .iter()
        .filter(|r| r.controller_ref().is_some_and(|c| c.uid == meta.uid))
        .filter_map(|r| r.as_controller_revision())
        .map(|r| RevisionFacts::of(r, spec.template.as_ref()))
        .collect();
    let now = chrono::Utc::now();
    let backoff = {
        // Expired entries go, for every DaemonSet (a deleted one's too: it is never
        // reconciled again).
        let mut all = lock(&ctx.backoff);
        all.retain(|_, nodes| {
            nodes.retain(|_, e| !e.expired(now));
            !nodes.is_empty()
        });
        all.get(&meta.uid).cloned().unwrap_or_default()
    };
    let mut plan = plan::plan(&Inputs {
        ds,
        nodes: &nodes,
        pods: &pod_facts,
        revisions: &revisions,
        backoff: &backoff,
        expectations_satisfied: satisfied,
        now,
    });
    if !satisfied {
        // The watch shows the pods in flight and wakes this DaemonSet; should it never,
        // look again when their expectations expire.
        plan.requeue_after = Some(
            plan.requeue_after
                .map_or(IN_FLIGHT_TTL, |r| r.min(IN_FLIGHT_TTL)),
        );
    }
    tracing::debug!(
        daemonset = %obj.key(),
        create = plan.create.len(),
        delete = plan.delete.len(),
        hash = plan.current.hash(),
        "planned"
    );
    act(&ctx, &obj, ds, plan).await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kubernetes' `ClaimPods`: the DaemonSet's pods are the cached pods it controls that still
/// match its selector, plus the orphans that match, adopted here. Its pods that no longer
/// match are released (the DaemonSet then replaces them).
async fn claim_pods(
    ctx: &Ctx,
    owner: &Owner,
    selector: &LabelSelector,
    owned: Vec<Arc<Object>>,
) -> Result<Vec<Arc<Object>>> {
    let empty = BTreeMap::new();
    let mut kept = Vec::with_capacity(owned.len());
    let mut leaving = Vec::new();
    for pod in owned {
        match claim::claim(owner, selector, &claim::Candidate::of(&pod, &empty)) {
            Claim::Keep => kept.push(pod),
            Claim::Release => leaving.push(pod),
            Claim::Adopt | Claim::Ignore => {}
        }
    }
    let adoptable: Vec<Arc<Object>> = ctx
        .orphans
        .in_namespace(&owner.namespace)
        .iter()
        .filter_map(|key| ctx.pods.get(key))
        .filter(|p| claim::claim(owner, selector, &claim::Candidate::of(p, &empty)) == Claim::Adopt)
        .collect();
    for pod in leaving {
        let out = claim::release(&*ctx.writer, owner, selector, &target(&pod), &[]).await?;
        if settle(out, &mut kept).is_some() {
            ctx.metrics.pods_orphaned.inc();
            tracing::info!(pod = %pod.key(), "released: its labels no longer match the DaemonSet's selector");
        }
    }
    if adoptable.is_empty() {
        return Ok(kept);
    }
    if !claim::owner_can_adopt(&*ctx.writer, Kind::DaemonSet, owner).await? {
        tracing::debug!(daemonset = %owner.name, "not adopting: the DaemonSet is gone or being deleted");
        return Ok(kept);
    }
    for pod in adoptable {
        let out = claim::adopt(&*ctx.writer, owner, selector, &target(&pod), &[]).await?;
        if let Some(adopted) = settle(out, &mut kept) {
            ctx.metrics.pods_adopted.inc();
            tracing::info!(pod = %pod.key(), "adopted an orphan pod matching the DaemonSet's selector");
            kept.push(Arc::new(adopted));
        }
    }
    Ok(kept)
}

fn target(pod: &Object) -> claim::Target<'_> {
    claim::Target {
        kind: Kind::Pod,
        namespace: pod.namespace(),
        name: pod.name(),
        uid: pod.uid(),
    }
}

/// What an adoption or a release came to: the object it wrote, or nothing, with a pod that
/// the fresh read shows is still the DaemonSet's kept as it now is.
fn settle(out: Outcome, kept: &mut Vec<Arc<Object>>) -> Option<Object> {
    match out {
        Outcome::Done(written) => Some(written),
        Outcome::Now(Claim::Keep, fresh) => {
            kept.push(Arc::new(fresh));
            None
        }
        Outcome::Now(..) | Outcome::Gone => None,
    }
}

/// Carries `plan` out (the order is in the crate docs).
async fn act(ctx: &Arc<Ctx>, obj: &Arc<Object>, ds: &v1::DaemonSet, plan: Plan) -> Result<Action> {
    let uid = obj.uid().to_string();
    // 1. The current revision; a collision only bumps the count.
    if let Current::Collision { name } = &plan.current {
        tracing::info!(daemonset = %obj.key(), revision = %name, "ControllerRevision name collision; bumping collisionCount");
        return write_status(ctx, obj, ds, plan.status)
            .await
            .map(|a| a.unwrap_or(Action::Requeue(Duration::ZERO)));
    }
    if ensure_revision(ctx, ds, &plan.current).await? == RevisionOutcome::Collided {
        let mut status = ds.status.clone().unwrap_or_default();
        status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
        return write_status(ctx, obj, ds, status)
            .await
            .map(|a| a.unwrap_or(Action::Requeue(Duration::ZERO)));
    }
    // 2. The back-off of the failed pods about to be deleted.
    if !plan.backoff.is_empty() {
        let mut all = lock(&ctx.backoff);
        let mine = all.entry(uid.clone()).or_default();
        mine.extend(plan.backoff.iter().cloned());
    }
    // 3. Deletions, then 4. creations; the first error is returned after the status.
    let mut failure = delete_pods(ctx, obj, &uid, &plan.delete).await.err();
    if failure.is_none() && !plan.create.is_empty() {
        failure = create_pods(ctx, obj, ds, &uid, plan.current.hash(), &plan.create)
            .await
            .err();
    }
    // 5. Old revisions.
    for name in &plan.delete_revisions {
        let opts = DeleteOptions::default();
        match ctx
            .writer
            .delete(Kind::ControllerRevision, obj.namespace(), name, opts)
            .await
        {
            Ok(_) => tracing::debug!(revision = %name, "old ControllerRevision deleted"),
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                tracing::warn!(revision = %name, err = %e, "history cleanup failed; retried at the next reconcile")
            }
        }
    }
    // 6. The status, once.
    if let Some(action) = write_status(ctx, obj, ds, plan.status).await? {
        return Ok(action);
    }
    // 7. Events about the DaemonSet.
    for e in plan.events {
        let ty = if e.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.recorder.emit(obj, ty, e.reason, &e.message);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(plan
        .requeue_after
        .map_or(Action::AwaitChange, Action::Requeue))
}

/// Writes `status` if it differs from the stored one (conflict-checked on the DaemonSet's
/// resourceVersion). `Some(action)`: the reconcile ends with it (a lost race, a gone object).
async fn write_status(
    ctx: &Ctx,
    obj: &Object,
    ds: &v1::DaemonSet,
    status: v1::DaemonSetStatus,
) -> Result<Option<Action>> {
    if ds.status.as_ref() == Some(&status) {
        return Ok(None);
    }
    let mut updated = ds.clone();
    updated.status = Some(status);
    match ctx.writer.update_status(updated.into()).await {
        Ok(_) => Ok(None),
        Err(e) if e.is_conflict() => {
            ctx.metrics.conflicts.inc();
            tracing::debug!(daemonset = %obj.key(), "status write lost a race; looking again");
            Ok(Some(Action::Requeue(CONFLICT_RETRY)))
        }
        Err(e) if e.is_not_found() => Ok(Some(Action::AwaitChange)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RevisionOutcome {
    Ready,
    /// The name is taken by another template (found by the create, not by the cache).
    Collided,
}

/// Makes the current revision exist with the highest number: creates it, or renumbers it.
async fn ensure_revision(
    ctx: &Ctx,
    ds: &v1::DaemonSet,
    current: &Current,
) -> Result<RevisionOutcome> {
    let meta = ds.metadata.clone().unwrap_or_default();
    let template = ds.spec.as_ref().and_then(|s| s.template.clone());
    match current {
        Current::Existing {
            renumber: Some(revision),
            name,
            ..
        } => {
            let key = bosun_api::object::object_key(&meta.namespace, name);
            let Some(cached) = ctx.revisions.get(&key) else {
                return Ok(RevisionOutcome::Ready);
            };
            let Some(mut updated) = cached.as_controller_revision().cloned() else {
                return Ok(RevisionOutcome::Ready);
            };
            updated.revision = *revision;
            match ctx.writer.update(updated.into()).await {
                Ok(_) => Ok(RevisionOutcome::Ready),
                // The cache is behind; the next reconcile sees the current number.
                Err(e) if e.is_conflict() || e.is_not_found() => Ok(RevisionOutcome::Ready),
                Err(source) => Err(Error::Revision {
                    name: name.clone(),
                    source,
                }),
            }
        }
        Current::Existing { .. } | Current::Collision { .. } => Ok(RevisionOutcome::Ready),
        Current::Create(new) => {
            let revision = new_revision(ds, new);
            match ctx.writer.create(revision.into()).await {
                Ok(_) => Ok(RevisionOutcome::Ready),
                Err(e) if e.is_already_exists() => {
                    // Made by an earlier attempt the cache has not shown yet, or a collision.
                    let fresh = ctx
                        .writer
                        .get_opt(Kind::ControllerRevision, &meta.namespace, &new.name)
                        .await
                        .map_err(|source| Error::Revision {
                            name: new.name.clone(),
                            source,
                        })?;
                    let same = fresh
                        .as_ref()
                        .and_then(|o| o.as_controller_revision())
                        .and_then(|r| r.data.as_ref())
                        .and_then(|d| d.template.as_ref())
                        == template.as_ref();
                    Ok(if same {
                        RevisionOutcome::Ready
                    } else {
                        RevisionOutcome::Collided
                    })
                }
                Err(source) => Err(Error::Revision {
                    name: new.name.clone(),
                    source,
                }),
            }
        }
    }
}

/// The ControllerRevision recording `ds`'s template as `new`: labelled with the template's
/// labels and the hash, owned by the DaemonSet, with its change-cause annotation if any.
pub fn new_revision(ds: &v1::DaemonSet, new: &plan::NewRevision) -> v1::ControllerRevision {
    let meta = ds.metadata.clone().unwrap_or_default();
    let template = ds.spec.as_ref().and_then(|s| s.template.clone());
    let mut labels = template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.into(), new.hash.clone());
    let annotations = meta
        .annotations
        .get(CHANGE_CAUSE_ANNOTATION)
        .map(|c| BTreeMap::from([(CHANGE_CAUSE_ANNOTATION.to_string(), c.clone())]))
        .unwrap_or_default();
    v1::ControllerRevision {
        api_version: "apps/v1".into(),
        kind: "ControllerRevision".into(),
        metadata: Some(v1::ObjectMeta {
            name: new.name.clone(),
            namespace: meta.namespace.clone(),
            labels,
            annotations,
            owner_references: vec![ds_api::controller_ref(ds)],
            ..Default::default()
        }),
        data: Some(v1::RevisionData { template }),
        revision: new.revision,
    }
}

/// Deletes `victims` (by uid), in parallel; each success is expected gone until the cache
/// shows it going.
async fn delete_pods(
    ctx: &Arc<Ctx>,
    obj: &Arc<Object>,
    ds_uid: &str,
    victims: &[plan::Deletion],
) -> Result<()> {
    let mut set = JoinSet::new();
    let mut first_error = None;
    let mut pending = victims.iter().cloned();
    loop {
        while set.len() < DELETES_IN_FLIGHT {
            let Some(d) = pending.next() else { break };
            let (ctx, ns) = (ctx.clone(), obj.namespace().to_string());
            set.spawn(carry_fence(tracing::Instrument::in_current_span(
                async move {
                    let opts = DeleteOptions {
                        uid: Some(d.uid.clone()),
                        ..Default::default()
                    };
                    let r = ctx.writer.delete(Kind::Pod, &ns, &d.name, opts).await;
                    (d, r)
                },
            )));
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let Ok((d, r)) = joined else { continue };
        match r {
            Ok(_) => {
                ctx.expectations.deleting(ds_uid, [d.name.as_str()]);
                ctx.metrics.pods_deleted.inc();
                tracing::debug!(pod = %d.name, node = ?d.node, reason = ?d.reason, "deleted a daemon pod");
                ctx.recorder.emit(
                    obj,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", d.name),
                );
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                ctx.recorder.emit(
                    obj,
                    EventType::Warning,
                    "FailedDelete",
                    &format!("Error deleting pod {}: {e}", d.name),
                );
                first_error.get_or_insert(Error::DeletePod {
                    pod: d.name.clone(),
                    source: e,
                });
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Creates a pod on each of `nodes`, in slow-start batches of 1, 2, 4, …: a batch with a
/// failure is the last (the rest are tried at the next reconcile, after the back-off).
async fn create_pods(
    ctx: &Arc<Ctx>,
    obj: &Arc<Object>,
    ds: &v1::DaemonSet,
    ds_uid: &str,
    hash: &str,
    nodes: &[String],
) -> Result<()> {
    let mut rest = nodes;
    let mut batch = 1;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(batch.min(rest.len()));
        rest = later;
        batch *= 2;
        let mut set = JoinSet::new();
        for node in now {
            let pod = ds_api::pod_for_node(ds, node, hash);
            let (ctx, node) = (ctx.clone(), node.clone());
            set.spawn(carry_fence(tracing::Instrument::in_current_span(
                async move {
                    let r = ctx.writer.create(pod.into()).await;
                    (node, r)
                },
            )));
        }
        let mut first_error: Option<Error> = None;
        while let Some(joined) = set.join_next().await {
            let Ok((node, r)) = joined else { continue };
            match r {
                Ok(created) => {
                    ctx.expectations.created(ds_uid, created.name(), ());
                    ctx.metrics.pods_created.inc();
                    ctx.recorder.emit(
                        obj,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", created.name()),
                    );
                }
                Err(e) => {
                    ctx.recorder.emit(
                        obj,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    );
                    first_error.get_or_insert(Error::CreatePod { node, source: e });
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
