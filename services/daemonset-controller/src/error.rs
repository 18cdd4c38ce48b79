//! What the DaemonSet controller can fail with.

use bosun_runtime::claim::ClaimError;
use bosun_runtime::client::ClientError;

/// A DaemonSet controller failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A broker call failed (retried with the DaemonSet's backoff).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Adopting or releasing a pod failed (retried).
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// A pod could not be created; the rest of the batch was not tried (retried with
    /// backoff; the event `FailedCreate` on the DaemonSet says why).
    #[error("creating a pod on node {node}: {source}")]
    CreatePod {
        node: String,
        #[source]
        source: ClientError,
    },
    /// Deleting a pod failed (retried).
    #[error("deleting pod {pod}: {source}")]
    DeletePod {
        pod: String,
        #[source]
        source: ClientError,
    },
    /// Writing a ControllerRevision failed; no pod was touched (retried).
    #[error("writing ControllerRevision {name}: {source}")]
    Revision {
        name: String,
        #[source]
        source: ClientError,
    },
    /// The metrics endpoint could not be served.
    #[error("metrics: {0}")]
    Metrics(#[from] std::io::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
