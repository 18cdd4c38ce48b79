//! The node agent's command line and environment (`BOSUN_*`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Which container runtime runs the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// Each container's command as a local process (the default).
    Process,
    /// Containers through the Docker Engine API (images pulled per imagePullPolicy).
    Docker,
    /// Simulated pods: run for `bosun.dev/sim-duration`, exit with `bosun.dev/sim-exit-code`.
    Sim,
}

/// Everything `bosun-node-agent` can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bosun-node-agent",
    about = "bosun's node agent: registers a Node, heartbeats it, runs its pods, serves their logs"
)]
pub struct Config {
    /// The broker's address.
    #[arg(long, env = "BOSUN_SERVER", default_value = "http://127.0.0.1:7440")]
    pub server: String,

    /// The node's name (default: the hostname).
    #[arg(long, env = "BOSUN_NODE_NAME")]
    pub name: Option<String>,

    /// Extra node labels, `k=v,k2=v2`.
    #[arg(long, env = "BOSUN_NODE_LABELS", value_delimiter = ',')]
    pub labels: Vec<String>,

    /// Node taints, `key=value:Effect,key:Effect`.
    #[arg(long, env = "BOSUN_NODE_TAINTS", value_delimiter = ',')]
    pub taints: Vec<String>,

    /// CPU capacity (default: the machine's CPUs).
    #[arg(long, env = "BOSUN_NODE_CPU")]
    pub cpu: Option<String>,

    /// Memory capacity (`8Gi`; default: the machine's memory).
    #[arg(long, env = "BOSUN_NODE_MEMORY")]
    pub memory: Option<String>,

    /// How many pods the node accepts.
    #[arg(long, env = "BOSUN_NODE_PODS", default_value_t = 110)]
    pub max_pods: u32,

    /// The node's InternalIP (where the broker reaches its logs server).
    #[arg(long, env = "BOSUN_ADVERTISE_ADDRESS", default_value = "127.0.0.1")]
    pub advertise_address: IpAddr,

    /// Where the Logs gRPC server listens (port 0: any free port, advertised on the Node).
    #[arg(long, env = "BOSUN_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// The container runtime.
    #[arg(long, env = "BOSUN_RUNTIME", value_enum, default_value = "process")]
    pub runtime: RuntimeKind,

    /// Sim mode: register this many nodes (`<name>-0` .. `<name>-N-1`) in one process.
    #[arg(long, env = "BOSUN_SIM_NODES")]
    pub sim_nodes: Option<u32>,

    /// Sim mode: the prefix of the node names (default: the node name).
    #[arg(long, env = "BOSUN_SIM_PREFIX")]
    pub sim_prefix: Option<String>,

    /// Where pid files, exit codes and logs live (default `./.bosun/node-<name>`).
    #[arg(long, env = "BOSUN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// How often the node Lease is renewed (`10s`, `200ms`).
    #[arg(long, env = "BOSUN_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// The Lease's leaseDurationSeconds.
    #[arg(long, env = "BOSUN_LEASE_DURATION", default_value_t = 40)]
    pub lease_duration: i32,

    /// How often the Node's Ready condition heartbeat is refreshed.
    #[arg(long, env = "BOSUN_NODE_STATUS_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub node_status_interval: Duration,

    /// The first restart back-off (CrashLoopBackOff); doubles per restart.
    #[arg(long, env = "BOSUN_BACKOFF_BASE", default_value = "10s", value_parser = parse_duration)]
    pub backoff_base: Duration,

    /// The largest restart back-off.
    #[arg(long, env = "BOSUN_BACKOFF_CAP", default_value = "300s", value_parser = parse_duration)]
    pub backoff_cap: Duration,

    /// The largest log file per container instance, in bytes.
    #[arg(long, env = "BOSUN_LOG_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub log_max_bytes: u64,

    /// Where Prometheus metrics are served (`/metrics`); unset: not served.
    #[arg(long, env = "BOSUN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// A config for a node `name` talking to `server`, every other setting at its default.
    pub fn new(server: &str, name: &str) -> Config {
        Config {
            server: server.to_string(),
            name: Some(name.to_string()),
            labels: Vec::new(),
            taints: Vec::new(),
            cpu: None,
            memory: None,
            max_pods: 110,
            advertise_address: IpAddr::from([127, 0, 0, 1]),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            runtime: RuntimeKind::Process,
            sim_nodes: None,
            sim_prefix: None,
            data_dir: None,
            heartbeat_interval: Duration::from_secs(10),
            lease_duration: 40,
            node_status_interval: Duration::from_secs(60),
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(300),
            log_max_bytes: 10 * 1024 * 1024,
            metrics_listen: None,
        }
    }

    /// The node name: `--name`, else the hostname.
    pub fn node_name(&self) -> String {
        self.name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(crate::node::hostname)
    }

    /// The names of every node this agent runs.
    pub fn node_names(&self) -> Vec<String> {
        match (self.runtime, self.sim_nodes) {
            (RuntimeKind::Sim, Some(n)) | (_, Some(n)) => {
                let prefix = self.sim_prefix.clone().unwrap_or_else(|| self.node_name());
                (0..n).map(|i| format!("{prefix}-{i}")).collect()
            }
            _ => vec![self.node_name()],
        }
    }

    /// Whether pods are simulated (`--runtime sim` or `--sim-nodes`).
    pub fn is_sim(&self) -> bool {
        self.runtime == RuntimeKind::Sim || self.sim_nodes.is_some()
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("./.bosun/node-{}", self.node_name())))
    }
}

/// Parses `500ms`, `10s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (use 500ms, 10s, 5m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        for (input, want) in [
            ("200ms", Duration::from_millis(200)),
            ("10s", Duration::from_secs(10)),
            ("5m", Duration::from_secs(300)),
            ("3", Duration::from_secs(3)),
        ] {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
        assert!(parse_duration("10y").is_err());
    }

    #[test]
    fn sim_nodes_are_named_from_the_prefix() {
        let mut c = Config::new("http://x", "sim");
        c.sim_nodes = Some(2);
        assert_eq!(c.node_names(), vec!["sim-0", "sim-1"]);
        c.sim_prefix = Some("n".into());
        assert_eq!(c.node_names(), vec!["n-0", "n-1"]);
    }
}
