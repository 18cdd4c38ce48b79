//! What the CronJob controller can fail with.

use bosun_runtime::client::ClientError;

/// A CronJob controller failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A broker call failed (retried with the CronJob's backoff).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Replace could not delete an active Job, so the new one was not started (retried).
    #[error("could not replace job {job}: {source}")]
    Replace {
        job: String,
        #[source]
        source: ClientError,
    },
    /// The metrics endpoint could not be served.
    #[error("metrics: {0}")]
    Metrics(#[from] std::io::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
