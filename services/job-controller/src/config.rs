//! The Job controller's command line and environment (`BOSUN_*`).

use std::net::SocketAddr;

/// Everything `bosun-job-controller` can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bosun-job-controller",
    about = "bosun's Job controller: runs each Job's pods to completion and counts them exactly once"
)]
pub struct Config {
    /// The broker's gRPC address.
    #[arg(long, env = "BOSUN_SERVER", default_value = "http://127.0.0.1:7440")]
    pub server: String,

    /// How many Jobs are reconciled in parallel (never the same Job twice).
    #[arg(long, env = "BOSUN_JOB_WORKERS", default_value_t = 8)]
    pub workers: usize,

    /// Where Prometheus metrics are served (`/metrics`); unset: not served.
    #[arg(long, env = "BOSUN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// A config for the broker at `server` with every other setting at its default.
    pub fn for_server(server: &str) -> Config {
        Config {
            server: server.to_string(),
            workers: 8,
            metrics_listen: None,
        }
    }
}
