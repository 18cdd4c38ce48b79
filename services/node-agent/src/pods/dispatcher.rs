//! The dispatcher: one worker task per pod, told the pod's latest state; the workers of
//! finished pods retired; a pod's files removed when it goes.
//!
//! It runs on the runtime's workers ([`bosun_runtime::controller::Workers::run_by_key`]: one
//! span per dispatch, panics caught, reconcile metrics), by key: a pod gone from the cache
//! is exactly when it must act (stop a force-deleted pod's containers, remove a finished
//! pod's files). A dispatch only hands the pod over, so the slow work runs in the per-pod
//! tasks, in parallel; a worker task that panics is counted
//! (`bosun_node_agent_pod_worker_panics_total`) and replaced on the pod's next event.

use std::collections::{BTreeMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bosun_api::object::pod_finished;
use bosun_api::v1::{self, Object};
use bosun_runtime::controller::panic_message;
use bosun_runtime::telemetry::{TRACEPARENT_ANNOTATION, set_parent_from_traceparent};
use futures::FutureExt as _;
use tokio::sync::watch;

use super::worker::Worker;
use super::{Ctx, PodRef};

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
            async move {
                let panics = ctx.metrics.pod_worker_panics.clone();
                // A bug in the worker must not take the agent (or this pod, for good) with
                // it: the panic ends the worker, which drops its receiver, and the pod's
                // next event finds the closed channel and starts a new one, which adopts the
                // containers still running.
                let run = AssertUnwindSafe(async move { Worker::new(ctx, rx, done).run().await });
                let ended = run.catch_unwind().await;
                if let Err(payload) = ended {
                    panics.inc();
                    tracing::error!(
                        panic = panic_message(&*payload),
                        "pod worker panicked; a new one starts on the pod's next event"
                    );
                }
            },
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
    // Not a child of the reconcile that starts it: it outlives that by far.
    let span = tracing::info_span!(parent: None, "pod", pod = %key);
    if let Some(tp) = pod
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.get(TRACEPARENT_ANNOTATION))
    {
        set_parent_from_traceparent(&span, tp);
    }
    span
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use bosun_api::vocab::phase;
    use bosun_runtime::client::Broker;
    use bosun_runtime::metrics::Metrics;
    use bosun_runtime::queue::WorkQueue;
    use futures::future::BoxFuture;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::pods::AgentMetrics;
    use crate::runtime::{
        ContainerSpec, Instance, LogPaths, PodPlace, Refusal, Runtime, RuntimeError,
    };

    /// A runtime whose first `check` panics (a bug in the worker's path) and whose starts
    /// fail; it records the pods cleaned up.
    #[derive(Default)]
    struct Buggy {
        checks: AtomicUsize,
        cleaned: Mutex<Vec<String>>,
    }

    impl Runtime for Buggy {
        fn name(&self) -> &'static str {
            "buggy"
        }

        fn check<'a>(&'a self, _spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), Refusal>> {
            let n = self.checks.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move {
                assert!(n > 1, "a bug in the worker's path");
                Ok(())
            })
        }

        fn start<'a>(
            &'a self,
            _spec: &'a ContainerSpec,
        ) -> BoxFuture<'a, Result<Arc<dyn Instance>, RuntimeError>> {
            Box::pin(async { Err(RuntimeError::Start("not in this test".into())) })
        }

        fn adopt<'a>(
            &'a self,
            _spec: &'a ContainerSpec,
        ) -> BoxFuture<'a, Option<Arc<dyn Instance>>> {
            Box::pin(async { None })
        }

        fn log_paths(&self, _pod_uid: &str, _container: &str) -> LogPaths {
            LogPaths {
                current: "/dev/null".into(),
                rotated: "/dev/null".into(),
                previous: "/dev/null".into(),
            }
        }

        fn cleanup<'a>(&'a self, pod_uid: &'a str) -> BoxFuture<'a, ()> {
            self.cleaned.lock().unwrap().push(pod_uid.to_string());
            Box::pin(async {})
        }
    }

    fn ctx(runtime: Arc<Buggy>, shutdown: &CancellationToken) -> Arc<Ctx> {
        Arc::new(Ctx {
            // Nothing listens there: status writes fail and are retried in the background.
            broker: Broker::connect_lazy("http://127.0.0.1:9").unwrap(),
            runtime,
            place: PodPlace {
                host_ip: "127.0.0.1".into(),
                pod_ip: "127.0.0.1".into(),
                service_host: "127.0.0.1".into(),
                service_port: "9".into(),
            },
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(100),
            metrics: AgentMetrics::new(&Metrics::new()),
            running: Arc::default(),
            shutdown: shutdown.clone(),
            dispatch: WorkQueue::default(),
        })
    }

    /// Pod `ns/p` (uid u1) bound to node n1, in `phase`, at resourceVersion `rv`.
    fn pod(phase: &str, rv: i64) -> Arc<Object> {
        let pod = v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: "p".into(),
                namespace: "ns".into(),
                uid: "u1".into(),
                resource_version: rv.to_string(),
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                node_name: "n1".into(),
                containers: vec![v1::Container {
                    name: "c".into(),
                    command: vec!["true".into()],
                    ..Default::default()
                }],
                ..Default::default()
            })),
            status: Some(v1::PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        Arc::new(Object::from(pod))
    }

    /// Waits (up to 5 s) until `done` holds.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_panicking_pod_worker_is_counted_and_replaced_on_the_pods_next_event() {
        let runtime = Arc::new(Buggy::default());
        let shutdown = CancellationToken::new();
        let ctx = ctx(runtime.clone(), &shutdown);
        let mut dispatcher = Dispatcher::new(ctx.clone(), &["n1".to_string()]);

        dispatcher.dispatch("ns/p", Some(pod(phase::PENDING, 1)));
        until("the first worker panicked and was counted", || {
            ctx.metrics.pod_worker_panics.get() == 1
        })
        .await;
        until("the panicked worker let go of its channel", || {
            dispatcher.workers.get("ns/p").is_some_and(Slot::idle)
        })
        .await;

        dispatcher.dispatch("ns/p", Some(pod(phase::PENDING, 2)));
        until("a new worker checked the pod's containers", || {
            runtime.checks.load(Ordering::SeqCst) == 2
        })
        .await;
        assert_eq!(ctx.metrics.pod_worker_panics.get(), 1);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_finished_pod_gone_from_the_cache_has_its_files_removed() {
        let runtime = Arc::new(Buggy::default());
        let shutdown = CancellationToken::new();
        let ctx = ctx(runtime.clone(), &shutdown);
        let mut dispatcher = Dispatcher::new(ctx, &["n1".to_string()]);

        // Finished before this agent saw it: no worker, nothing run.
        dispatcher.dispatch("ns/p", Some(pod(phase::SUCCEEDED, 1)));
        assert!(matches!(
            dispatcher.workers.get("ns/p"),
            Some(Slot::Finished(_))
        ));
        // Gone from the cache: the dispatcher (not a worker) removes its files.
        dispatcher.dispatch("ns/p", None);
        until("the pod's files were removed", || {
            *runtime.cleaned.lock().unwrap() == ["u1"]
        })
        .await;
        assert!(dispatcher.workers.is_empty());
        assert_eq!(runtime.checks.load(Ordering::SeqCst), 0);
        shutdown.cancel();
    }
}
