//! The dispatcher: one worker task per pod, told the pod's latest state; the workers of
//! finished pods retired; a pod's files removed when it goes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bosun_api::object::pod_finished;
use bosun_api::v1::{self, Object};
use bosun_runtime::telemetry::{TRACEPARENT_ANNOTATION, set_parent_from_traceparent};
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
