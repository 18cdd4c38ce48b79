//! The garbage collector's command line and environment (`BOSUN_*`).

use std::net::SocketAddr;

/// Everything `bosun-gc` can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bosun-gc",
    about = "bosun's garbage collector: deletes dependents whose owners are gone, and finished Jobs past ttlSecondsAfterFinished"
)]
pub struct Config {
    /// The broker's gRPC address.
    #[arg(long, env = "BOSUN_SERVER", default_value = "http://127.0.0.1:7440")]
    pub server: String,

    /// How many items are processed in parallel (never the same item twice).
    #[arg(long, env = "BOSUN_GC_WORKERS", default_value_t = 4)]
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
            workers: 4,
            metrics_listen: None,
        }
    }
}
