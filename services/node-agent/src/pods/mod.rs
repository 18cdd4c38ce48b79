//! Running the pods bound to this agent's node(s), in four parts:
//!
//! - [`dispatcher`]: turns informer changes into one worker task per pod, retires the
//!   workers of finished pods, and removes a pod's files when it goes;
//! - [`worker`]: one pod's life: starts its containers (init containers first, in order),
//!   restarts them per restartPolicy with CrashLoopBackOff, enforces activeDeadlineSeconds,
//!   and, once the pod is marked for deletion, stops its containers, writes the final status
//!   and finishes the delete (the kubelet's order);
//! - [`container`]: one container: its instance, waiter and prober, and the transitions of
//!   its `containerStatus` (running, terminated, CrashLoopBackOff);
//! - [`status`]: the pod status the worker reports, and its writer, which writes only what
//!   changed and, when a write runs out of retries, reports it and tries again later.
//!
//! The decisions are pure functions, in [`crate::plan`] and [`status`].

mod container;
mod dispatcher;
mod status;
mod worker;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_api::v1::{self, Object};
use bosun_runtime::client::Broker;
use bosun_runtime::metrics::{Counter, Gauge, Metrics};
use bosun_runtime::queue::WorkQueue;
use tokio_util::sync::CancellationToken;

use crate::runtime::{PodPlace, Runtime};

pub use dispatcher::Dispatcher;

/// The agent's metrics.
#[derive(Clone)]
pub struct AgentMetrics {
    /// Pods in phase Running on this agent's nodes.
    pub pods_running: Gauge,
    /// Pod status updates written.
    pub status_writes: Counter,
    /// Pod status writes that ran out of retries (each is tried again later).
    pub status_write_failures: Counter,
    /// Container instances started.
    pub container_starts: Counter,
    /// Container restarts.
    pub container_restarts: Counter,
    /// Pod worker tasks that panicked (each is replaced on its pod's next event).
    pub pod_worker_panics: Counter,
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
            status_write_failures: registry.counter(
                "bosun_node_agent_status_write_failures_total",
                "Pod status writes that ran out of retries; each is tried again later.",
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
            pod_worker_panics: registry.counter(
                "bosun_node_agent_pod_worker_panics_total",
                "Pod worker tasks that panicked; each is replaced on its pod's next event.",
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

/// The pod's metadata (empty when missing).
fn meta(pod: &v1::Pod) -> v1::ObjectMeta {
    pod.metadata.clone().unwrap_or_default()
}
