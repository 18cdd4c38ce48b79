//! What the garbage collector can fail with.

use bosun_runtime::client::ClientError;

/// A garbage-collector failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A broker call failed (retried with the item's backoff inside a reconcile).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The metrics endpoint could not be served.
    #[error("metrics: {0}")]
    Metrics(#[from] std::io::Error),
    /// A work-queue key that names no known kind (a bug).
    #[error("bad work-queue key {0:?}")]
    BadKey(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
