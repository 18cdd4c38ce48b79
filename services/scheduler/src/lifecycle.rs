//! The node lifecycle controller: watches Nodes, their Leases (`kube-node-lease`) and the pods
//! bound to them. A node whose lease has not moved for the grace period turns Ready=Unknown
//! and is tainted `node.kubernetes.io/unreachable:NoExecute`; a node reporting Ready=False
//! gets `node.kubernetes.io/not-ready:NoExecute`; a cordoned one
//! `node.kubernetes.io/unschedulable:NoSchedule`; a node that recovers loses them. Pods that do
//! not tolerate a NoExecute taint are evicted, and the pods of a node gone Unknown lose their
//! Ready condition (Kubernetes' MarkPodsNotReady) (decisions in `lifecycle_plan.rs`).
//!
//! Lease age is measured on this controller's own clock, from when it last saw the lease's
//! renewTime change (as Kubernetes does), so clock skew between hosts does not matter; after
//! a restart every node gets a full grace period. The agent posting a changed Ready condition
//! counts as a heartbeat too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bosun_api::vocab::{condition, effect, status, taint};
use bosun_api::{Kind, Object, v1};
use bosun_runtime::cache::Store;
use bosun_runtime::client::{Broker, DeleteOptions, Selector};
use bosun_runtime::controller::{Action, Controller, backoff_on_error};
use bosun_runtime::events::{EventRecorder, EventType};
use bosun_runtime::informer::Informer;
use bosun_runtime::metrics::{Counter, Metrics};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::lifecycle_plan::{Eviction, evictable, eviction, not_ready_conditions, plan_node};

/// Where node heartbeats live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The reason of the DisruptionTarget condition set before an eviction (Kubernetes').
const REASON_EVICTED: &str = "DeletionByTaintManager";
/// The component evictions are reported as.
const COMPONENT: &str = "taint-eviction-controller";

/// What every reconcile shares.
struct Context {
    broker: Broker,
    pods: Store,
    /// Per node: the last renewTime seen and when this controller saw it change.
    heartbeats: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    grace: Duration,
    recorder: EventRecorder,
    evictions: Counter,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Runs the node lifecycle controller until `shutdown`. `pods` is the scheduler's pod
/// informer (one watch and one cache of every pod for the whole process, not one each): the
/// controller reads its store and hooks a handler onto it, so it must not be spawned yet.
pub fn run(
    broker: Broker,
    pods: &mut Informer,
    grace: Duration,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()> + use<> {
    let heartbeats: Arc<Mutex<HashMap<String, (String, Instant)>>> = Arc::default();
    let mut nodes = Informer::for_broker(&broker, Kind::Node, Selector::all());
    nodes.on_change({
        let heartbeats = heartbeats.clone();
        move |change| {
            // The agent posting a new Ready condition is a heartbeat too (Kubernetes'
            // probeTimestamp); our own Unknown is not.
            let ready = |o: &Option<Arc<Object>>| {
                o.as_ref()
                    .and_then(|o| o.as_node())
                    .and_then(|n| n.status.as_ref())
                    .and_then(|s| s.conditions.iter().find(|c| c.r#type == condition::READY))
                    .cloned()
            };
            let new = ready(&change.new);
            if new.as_ref().is_some_and(|c| c.status != status::UNKNOWN)
                && new != ready(&change.old)
            {
                let mut beats = heartbeats.lock().unwrap_or_else(|p| p.into_inner());
                let entry = beats
                    .entry(change.key.clone())
                    .or_insert_with(|| (String::new(), Instant::now()));
                entry.1 = Instant::now();
            }
        }
    });
    let mut leases =
        Informer::for_broker(&broker, Kind::Lease, Selector::namespace(LEASE_NAMESPACE));
    leases.on_change({
        let heartbeats = heartbeats.clone();
        move |change| {
            let Some(lease) = change.new.as_ref().and_then(|o| o.as_lease()) else {
                return;
            };
            let renew = lease
                .spec
                .as_ref()
                .map_or(String::new(), |s| s.renew_time.clone());
            let name = change.new.as_ref().map_or("", |o| o.name()).to_string();
            let mut beats = heartbeats.lock().unwrap_or_else(|p| p.into_inner());
            if beats.get(&name).is_none_or(|(seen, _)| *seen != renew) {
                beats.insert(name, (renew, Instant::now()));
            }
        }
    });
    let pod_store = pods.store();
    let controller = Controller::new("node-lifecycle", nodes, metrics)
        .watches(leases, |change| {
            vec![change.key.rsplit('/').next().unwrap_or("").to_string()]
        })
        .workers(4);
    pods.on_change({
        let queue = controller.queue();
        move |change| {
            let node = |o: &Option<Arc<Object>>| {
                o.as_ref()
                    .and_then(|o| o.as_pod())
                    .and_then(|p| p.spec.as_ref())
                    .map(|s| s.node_name.clone())
                    .filter(|n| !n.is_empty())
            };
            // Only a pod newly on a node can need evicting.
            match (node(&change.old), node(&change.new)) {
                (old, Some(new)) if old.as_ref() != Some(&new) => queue.add(new),
                _ => {}
            }
        }
    });
    let ctx = Arc::new(Context {
        recorder: EventRecorder::new(broker.clone(), COMPONENT, ""),
        broker,
        pods: pod_store,
        heartbeats,
        grace,
        evictions: metrics.counter(
            "bosun_node_lifecycle_evictions_total",
            "Pods evicted for a NoExecute taint they do not tolerate.",
            &[],
        ),
    });
    async move {
        // Evictions read the pod store, which the scheduler's controller fills.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ctx.pods.wait_until_ready() => {}
        }
        controller
            .run(reconcile, backoff_on_error, ctx, shutdown)
            .await;
    }
}

/// How long since the node's heartbeat last moved (first sight counts as a heartbeat).
fn lease_age(ctx: &Context, node: &str) -> Duration {
    let mut beats = ctx.heartbeats.lock().unwrap_or_else(|p| p.into_inner());
    beats
        .entry(node.to_string())
        .or_insert_with(|| (String::new(), Instant::now()))
        .1
        .elapsed()
}

/// Brings one node's condition and taints in line, evicts what must go, and says when to
/// look again (when the lease would go stale, or the next tolerationSeconds runs out).
async fn reconcile(obj: Arc<Object>, ctx: Arc<Context>) -> Result<Action> {
    let Some(node) = obj.as_node() else {
        return Ok(Action::AwaitChange);
    };
    let name = obj.name().to_string();
    let age = lease_age(&ctx, &name);
    let now = Utc::now();
    let plan = plan_node(node, age, ctx.grace, &rfc3339(now));
    let mut current = node.clone();
    let update_err = |source| Error::UpdateNode {
        node: name.clone(),
        source,
    };
    if let Some(cond) = plan.ready_condition {
        tracing::info!(node = %name, status = %cond.status, reason = %cond.reason, "node condition changes");
        let status = current.status.get_or_insert_with(Default::default);
        status.conditions.retain(|c| c.r#type != condition::READY);
        status.conditions.push(cond);
        let stored = ctx
            .broker
            .update_status(current.into())
            .await
            .map_err(update_err)?;
        current = stored.into_node().unwrap_or_default();
    }
    if let Some(taints) = plan.taints {
        tracing::info!(node = %name, taints = ?taints.iter().map(|t| &t.key).collect::<Vec<_>>(), "node taints change");
        current.spec.get_or_insert_with(Default::default).taints = taints;
        let stored = ctx
            .broker
            .update(current.into())
            .await
            .map_err(update_err)?;
        current = stored.into_node().unwrap_or_default();
    }

    let taints = current.spec.as_ref().map_or(&[][..], |s| &s.taints[..]);
    let unreachable = taints.iter().any(|t| t.key == taint::UNREACHABLE);
    let mut next: Option<Duration> = None;
    let mut soonest = |d: Duration| next = Some(next.map_or(d, |n: Duration| n.min(d)));
    if age <= ctx.grace {
        // Look again just after the lease would go stale.
        soonest(ctx.grace - age + Duration::from_millis(50));
    }
    // Only a NoExecute taint evicts, and only an unreachable node's pods lose Ready: else
    // the node's pods need no look.
    let unknown = ready_unknown(&current);
    let pods = match unknown || taints.iter().any(|t| t.effect == effect::NO_EXECUTE) {
        true => ctx.pods.by_node(&name),
        false => Vec::new(),
    };
    let stamp = rfc3339(now);
    for pod_obj in pods {
        let Some(pod) = pod_obj.as_pod() else {
            continue;
        };
        if !evictable(pod) {
            continue;
        }
        let tolerations = pod.spec.as_ref().map_or(&[][..], |s| &s.tolerations[..]);
        match eviction(taints, tolerations, now) {
            Eviction::Never => {}
            Eviction::At(at) => {
                soonest((at - now).to_std().unwrap_or_default() + Duration::from_millis(50))
            }
            Eviction::Now => {
                evict(&ctx, &pod_obj, pod, unreachable).await?;
                continue;
            }
        }
        if let Some(conditions) = not_ready_conditions(&current, pod, &stamp) {
            mark_not_ready(&ctx, &pod_obj, pod, conditions).await?;
        }
    }
    Ok(next.map_or(Action::AwaitChange, Action::Requeue))
}

/// Whether the node's Ready condition is Unknown (its agent stopped reporting).
fn ready_unknown(node: &v1::Node) -> bool {
    node.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == condition::READY && c.status == status::UNKNOWN)
    })
}

/// Writes the pod's `conditions` (Ready turned False: its node is unreachable).
async fn mark_not_ready(
    ctx: &Context,
    obj: &Object,
    pod: &v1::Pod,
    conditions: Vec<v1::Condition>,
) -> Result<()> {
    tracing::info!(pod = %obj.key(), "marking not ready: its node is unreachable");
    let mut marked = pod.clone();
    marked
        .status
        .get_or_insert_with(Default::default)
        .conditions = conditions;
    match ctx.broker.update_status(marked.into()).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(source) => Err(Error::MarkNotReady {
            pod: obj.key(),
            source,
        }),
    }
}

/// Marks the pod DisruptionTarget=True and deletes it (at once when its node is unreachable:
/// nobody is there to stop it gracefully).
async fn evict(ctx: &Context, obj: &Object, pod: &v1::Pod, unreachable: bool) -> Result<()> {
    let key = obj.key();
    let (ns, name, uid) = (obj.namespace(), obj.name(), obj.uid());
    let err = |source| Error::Evict {
        pod: key.clone(),
        source,
    };
    tracing::info!(pod = %key, unreachable, "evicting for a NoExecute taint");
    let mut marked = pod.clone();
    let status = marked.status.get_or_insert_with(Default::default);
    status
        .conditions
        .retain(|c| c.r#type != condition::DISRUPTION_TARGET);
    status.conditions.push(v1::Condition {
        r#type: condition::DISRUPTION_TARGET.into(),
        status: status::TRUE.into(),
        reason: REASON_EVICTED.into(),
        message: "Taint manager: deleting due to NoExecute taint".into(),
        last_transition_time: rfc3339(Utc::now()),
        ..Default::default()
    });
    match ctx.broker.update_status(marked.into()).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(err(e)),
    }
    let options = DeleteOptions {
        uid: Some(uid.to_string()),
        grace_period_seconds: unreachable.then_some(0),
        ..Default::default()
    };
    match ctx.broker.delete(Kind::Pod, ns, name, options).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() || e.is_conflict() => return Ok(()),
        Err(e) => return Err(err(e)),
    }
    ctx.evictions.inc();
    ctx.recorder
        .record(
            obj,
            EventType::Normal,
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{name}"),
        )
        .await;
    Ok(())
}
