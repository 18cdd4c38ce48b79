//! What the Job controller can fail with.

use bosun_runtime::client::ClientError;

/// A Job controller failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A broker call failed (retried with the Job's backoff inside a reconcile).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Adopting or releasing a pod failed (retried with the Job's backoff).
    #[error(transparent)]
    Claim(#[from] bosun_runtime::claim::ClaimError),
    /// The metrics endpoint could not be served.
    #[error("metrics: {0}")]
    Metrics(#[from] std::io::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
