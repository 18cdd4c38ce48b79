//! What running the scheduler can fail with.

use bosun_runtime::client::ClientError;

/// Errors of `run` and of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker address is malformed.
    #[error("cannot set up the broker client: {0}")]
    Connect(#[source] ClientError),
    /// The metrics port could not be bound.
    #[error("{0}")]
    Metrics(#[source] std::io::Error),
    /// Binding a pod failed (other than the pod having been bound meanwhile).
    #[error("binding {pod} to {node}: {source}")]
    Bind {
        pod: String,
        node: String,
        source: ClientError,
    },
    /// Writing a pod's PodScheduled=False condition failed.
    #[error("recording {pod} as unschedulable: {source}")]
    MarkUnschedulable { pod: String, source: ClientError },
    /// Writing a node's condition or taints failed.
    #[error("updating node {node}: {source}")]
    UpdateNode { node: String, source: ClientError },
    /// Evicting a pod failed.
    #[error("evicting {pod}: {source}")]
    Evict { pod: String, source: ClientError },
    /// Marking a pod on an unreachable node not ready failed.
    #[error("marking {pod} not ready (its node is unreachable): {source}")]
    MarkNotReady { pod: String, source: ClientError },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
