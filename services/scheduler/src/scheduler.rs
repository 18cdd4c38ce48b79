//! The scheduler component: pod and node informers feed the [`ClusterCache`]; each pending
//! pod (no node, `default-scheduler`, not being deleted) is a key in a work queue; a worker
//! picks a node from the cache (filters and scores in `placement.rs`), assumes the pod there
//! and binds it through the broker. A pod no node can take gets PodScheduled=False
//! (Unschedulable, Kubernetes' `0/N nodes are available: ...` message) and a FailedScheduling
//! event, and is retried with back-off and whenever a node appears or changes or a pod
//! frees room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bosun_api::condition::set_condition;
use bosun_api::vocab::{condition, status};
use bosun_api::{Kind, Object, v1};
use bosun_runtime::cache::Store;
use bosun_runtime::client::{Broker, Selector};
use bosun_runtime::controller::{Action, Controller, backoff_on_error};
use bosun_runtime::events::{EventRecorder, EventType};
use bosun_runtime::informer::Informer;
use bosun_runtime::metrics::{Counter, Histogram, Metrics};
use bosun_runtime::queue::Backoff;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::cache::{ClusterCache, NoFit};
use crate::error::{Error, Result};
use crate::placement::{self, unschedulable_message};

/// The scheduler name pods ask for (empty means it too).
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// Back-off of an unschedulable pod: 1 s doubling to 10 s (Kubernetes' pod back-off).
const UNSCHEDULABLE_BACKOFF: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(10));
/// Scheduled events written concurrently at most (they never hold up binding).
const EVENTS_IN_FLIGHT: usize = 256;

/// The scheduler's metrics.
struct SchedulerMetrics {
    binds: Counter,
    bind_errors: Counter,
    bind_latency: Histogram,
    unschedulable: Counter,
}

impl SchedulerMetrics {
    fn new(m: &Metrics) -> SchedulerMetrics {
        SchedulerMetrics {
            binds: m.counter("bosun_scheduler_binds_total", "Pods bound to a node.", &[]),
            bind_errors: m.counter(
                "bosun_scheduler_bind_errors_total",
                "Bind calls that failed.",
                &[],
            ),
            bind_latency: m.histogram(
                "bosun_scheduler_bind_duration_seconds",
                "How long one bind call took.",
                &[],
            ),
            unschedulable: m.counter(
                "bosun_scheduler_unschedulable_total",
                "Scheduling attempts that found no node.",
                &[],
            ),
        }
    }
}

/// What every worker shares.
struct Context {
    broker: Broker,
    cache: Arc<ClusterCache>,
    recorder: EventRecorder,
    /// Pods that found no node, with their attempt count (requeued when room appears).
    waiting: Mutex<HashMap<String, u32>>,
    events: Arc<Semaphore>,
    seed: AtomicU64,
    metrics: SchedulerMetrics,
}

impl Context {
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether this scheduler should place `pod`.
pub fn wants_scheduling(pod: &v1::Pod) -> bool {
    let spec = pod.spec.as_ref();
    let unbound = spec.is_none_or(|s| s.node_name.is_empty());
    let ours =
        spec.is_none_or(|s| s.scheduler_name.is_empty() || s.scheduler_name == SCHEDULER_NAME);
    let deleting = pod
        .metadata
        .as_ref()
        .is_some_and(|m| !m.deletion_timestamp.is_empty());
    let gated = spec.is_some_and(|s| !s.scheduling_gates.is_empty());
    unbound && ours && !deleting && !gated && !bosun_api::object::pod_finished(pod)
}

/// Runs the scheduler until `shutdown`, driven by `pods`, an informer of every pod.
pub async fn run(
    broker: Broker,
    mut pods: Informer,
    workers: usize,
    metrics: &Metrics,
    shutdown: CancellationToken,
) {
    let cache = Arc::new(ClusterCache::default());
    let room = Arc::new(Notify::new());

    pods.on_change({
        let (cache, room) = (cache.clone(), room.clone());
        move |change| {
            if cache.apply_pod(change) {
                room.notify_one();
            }
        }
    });
    let mut nodes = Informer::for_broker(&broker, Kind::Node, Selector::all());
    nodes.on_change({
        let (cache, room) = (cache.clone(), room.clone());
        move |change| {
            if cache.apply_node(change) {
                room.notify_one();
            }
        }
    });
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    let controller = Controller::with_backoff("scheduler", pods, metrics, backoff)
        .watches(nodes, |_| Vec::new())
        .workers(workers);
    let ctx = Arc::new(Context {
        recorder: EventRecorder::new(broker.clone(), SCHEDULER_NAME, ""),
        broker,
        cache,
        waiting: Mutex::new(HashMap::new()),
        events: Arc::new(Semaphore::new(EVENTS_IN_FLIGHT)),
        seed: AtomicU64::new(0),
        metrics: SchedulerMetrics::new(metrics),
    });

    // Room appeared (a node came or changed, a pod left): every waiting pod tries again.
    let requeuer = {
        let (queue, ctx, shutdown) = (controller.queue(), ctx.clone(), shutdown.clone());
        let pods: Store = controller.store();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = room.notified() => {}
                }
                let keys: Vec<String> = ctx.waiting().keys().cloned().collect();
                for key in keys {
                    if pods.get(&key).is_some() {
                        queue.add(key);
                    } else {
                        ctx.waiting().remove(&key);
                    }
                }
            }
        })
    };
    controller
        .run(reconcile, backoff_on_error, ctx, shutdown)
        .await;
    let _ = requeuer.await;
}

/// Schedules one pod.
async fn reconcile(obj: Arc<Object>, ctx: Arc<Context>) -> Result<Action> {
    let key = obj.key();
    let Some(pod) = obj.as_pod() else {
        return Ok(Action::AwaitChange);
    };
    if !wants_scheduling(pod) {
        ctx.waiting().remove(&key);
        return Ok(Action::AwaitChange);
    }
    if ctx.cache.is_placed(&key) {
        // Bound a moment ago; the watch has not caught up yet.
        return Ok(Action::AwaitChange);
    }
    let facts = placement::pod_facts(pod);
    let seed = ctx.seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    match ctx.cache.schedule(&key, &facts, seed) {
        Ok(node) => bind(&obj, pod, &key, &node, &ctx).await,
        Err(no_fit) => unschedulable(&obj, pod, &key, no_fit, &ctx).await,
    }
}

async fn bind(obj: &Object, pod: &v1::Pod, key: &str, node: &str, ctx: &Context) -> Result<Action> {
    let meta = pod.metadata.clone().unwrap_or_default();
    let started = Instant::now();
    let result = ctx
        .broker
        .bind(&meta.namespace, &meta.name, &meta.uid, node)
        .await;
    ctx.metrics.bind_latency.observe_since(started);
    match result {
        Ok(_) => {
            ctx.metrics.binds.inc();
            ctx.waiting().remove(key);
            tracing::debug!(pod = key, node, "bound");
            let message = format!(
                "Successfully assigned {}/{} to {node}",
                meta.namespace, meta.name
            );
            if let Ok(permit) = ctx.events.clone().acquire_owned().await {
                let (recorder, obj) = (ctx.recorder.clone(), obj.clone());
                tokio::spawn(async move {
                    recorder
                        .record(&obj, EventType::Normal, "Scheduled", &message)
                        .await;
                    drop(permit);
                });
            }
            Ok(Action::AwaitChange)
        }
        Err(err) => {
            ctx.cache.forget(key);
            ctx.metrics.bind_errors.inc();
            if err.is_not_found() {
                // Deleted meanwhile.
                return Ok(Action::AwaitChange);
            }
            Err(Error::Bind {
                pod: key.to_string(),
                node: node.to_string(),
                source: err,
            })
        }
    }
}

/// Sets (or replaces) the PodScheduled condition; returns whether anything changed.
fn set_pod_scheduled_false(pod: &mut v1::Pod, message: &str, now: &str) -> bool {
    let status = pod.status.get_or_insert_with(Default::default);
    set_condition(
        &mut status.conditions,
        v1::Condition {
            r#type: condition::POD_SCHEDULED.into(),
            status: status::FALSE.into(),
            reason: "Unschedulable".into(),
            message: message.to_string(),
            last_transition_time: now.to_string(),
            ..Default::default()
        },
    )
}

async fn unschedulable(
    obj: &Object,
    pod: &v1::Pod,
    key: &str,
    no_fit: NoFit,
    ctx: &Context,
) -> Result<Action> {
    ctx.metrics.unschedulable.inc();
    let message = unschedulable_message(no_fit.nodes, &no_fit.reasons);
    let attempts = {
        let mut waiting = ctx.waiting();
        let n = waiting.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    tracing::debug!(pod = key, %message, attempts, "unschedulable");
    let mut updated = pod.clone();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if set_pod_scheduled_false(&mut updated, &message, &now) {
        ctx.broker
            .update_status(updated.into())
            .await
            .map_err(|source| Error::MarkUnschedulable {
                pod: key.to_string(),
                source,
            })?;
    }
    ctx.recorder
        .record(obj, EventType::Warning, "FailedScheduling", &message)
        .await;
    let (base, cap) = UNSCHEDULABLE_BACKOFF;
    let delay = base
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(8))
        .min(cap);
    Ok(Action::Requeue(delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unbound_live_pods_for_this_scheduler_are_scheduled() {
        let pod = |node: &str, scheduler: &str, deleting: bool, phase: &str| v1::Pod {
            metadata: Some(v1::ObjectMeta {
                deletion_timestamp: if deleting {
                    "2026-01-01T00:00:00Z".into()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                node_name: node.into(),
                scheduler_name: scheduler.into(),
                ..Default::default()
            })),
            status: Some(v1::PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let table = [
            (
                "pending, default scheduler",
                pod("", "", false, "Pending"),
                true,
            ),
            (
                "named default-scheduler",
                pod("", "default-scheduler", false, ""),
                true,
            ),
            ("already bound", pod("n1", "", false, "Pending"), false),
            (
                "another scheduler",
                pod("", "my-scheduler", false, ""),
                false,
            ),
            ("being deleted", pod("", "", true, "Pending"), false),
            ("finished", pod("", "", false, "Failed"), false),
        ];
        for (what, p, want) in table {
            assert_eq!(wants_scheduling(&p), want, "{what}");
        }
    }

    #[test]
    fn the_pod_scheduled_condition_is_written_only_when_it_changes() {
        let mut pod = v1::Pod::default();
        assert!(set_pod_scheduled_false(
            &mut pod,
            "0/1 nodes are available.",
            "t1"
        ));
        assert!(!set_pod_scheduled_false(
            &mut pod,
            "0/1 nodes are available.",
            "t2"
        ));
        assert!(set_pod_scheduled_false(
            &mut pod,
            "0/2 nodes are available.",
            "t3"
        ));
        let c = &pod.status.as_ref().unwrap().conditions[0];
        assert_eq!(
            (
                c.status.as_str(),
                c.reason.as_str(),
                c.message.as_str(),
                c.last_transition_time.as_str()
            ),
            ("False", "Unschedulable", "0/2 nodes are available.", "t1")
        );
    }
}
