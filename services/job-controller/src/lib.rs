//! bosun's Job controller (Kubernetes' `job` controller, KUBERNETES.md section A).

pub mod config;
pub mod error;

use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::{Error, Result};

/// Runs the Job controller against the broker in `config` until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let _ = config;
    shutdown.cancelled().await;
    Ok(())
}
