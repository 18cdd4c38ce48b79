//! The node agent's errors.

use std::net::SocketAddr;

/// Everything `run` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("broker: {0}")]
    Broker(#[from] bosun_runtime::client::ClientError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("logs server: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(transparent)]
    Lifeline(#[from] bosun_runtime::lifeline::LifelineError),
}
