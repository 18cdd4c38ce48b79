//! The node agent's command line and environment (`BOSUN_*`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bosun_runtime::config::{
    BrokerArgs, InvalidConfig, MetricsArgs, require, require_nonzero, require_positive,
};

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
    #[command(flatten)]
    pub broker: BrokerArgs,

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

    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// Stop every pod process when this agent ends, however it ends (even `kill -9`): what
    /// `bosun up` sets for its local nodes. By default pods outlive the agent and a
    /// restarted agent re-adopts them. (Process runtime only.)
    #[arg(long, env = "BOSUN_PODS_DIE_WITH_AGENT")]
    pub pods_die_with_agent: bool,
}

impl Default for Config {
    /// Every setting at the default its flag declares (the environment is not read).
    fn default() -> Config {
        bosun_runtime::config::defaults()
    }
}

impl Config {
    /// A config for a node `name` talking to `server`, every other setting at its default.
    pub fn new(server: &str, name: &str) -> Config {
        Config {
            broker: BrokerArgs::new(server),
            name: Some(name.to_string()),
            ..Config::default()
        }
    }

    /// Refuses settings the agent cannot run with; called before any port is bound.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.broker.validate()?;
        if let Some(n) = self.sim_nodes {
            require(
                n > 0,
                "--sim-nodes",
                n,
                "must be at least 1 (leave it unset for one node)",
            )?;
        }
        require_positive("--max-pods", self.max_pods.into())?;
        require_nonzero("--heartbeat-interval", self.heartbeat_interval)?;
        require_nonzero("--node-status-interval", self.node_status_interval)?;
        require(
            self.lease_duration > 0,
            "--lease-duration",
            self.lease_duration,
            "must be at least 1 (seconds)",
        )?;
        require(
            self.heartbeat_interval.as_secs_f64() < f64::from(self.lease_duration),
            "--heartbeat-interval",
            format!("{:?}", self.heartbeat_interval),
            "must be shorter than --lease-duration, or the Lease expires between renewals",
        )?;
        require_nonzero("--backoff-base", self.backoff_base)?;
        require(
            self.backoff_cap >= self.backoff_base,
            "--backoff-cap",
            format!("{:?}", self.backoff_cap),
            "must be at least --backoff-base",
        )?;
        require_positive("--log-max-bytes", self.log_max_bytes)?;
        for label in self.labels.iter().filter(|l| !l.is_empty()) {
            require(
                label.split_once('=').is_some_and(|(k, _)| !k.is_empty()),
                "--labels",
                label,
                "expected key=value",
            )?;
        }
        for taint in self.taints.iter().filter(|t| !t.is_empty()) {
            if let Err(problem) = crate::node::parse_taint(taint) {
                return Err(InvalidConfig::new("--taints", taint, problem));
            }
        }
        self.metrics
            .require_apart_from(self.listen, "logs server's address")
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

/// Parses `500ms`, `10s`, `5m`, `1h` or a bare number of seconds, zero included (a
/// `bosun.dev/sim-duration` may be `0s`; [`Config::validate`] refuses zero periods).
pub use bosun_runtime::config::parse_duration_allowing_zero as parse_duration;

#[cfg(test)]
mod tests {
    use bosun_api::vocab::DEFAULT_SERVER;

    use super::*;

    #[test]
    fn defaults_are_the_declared_ones() {
        use clap::Parser;
        let c = Config::try_parse_from(["bosun-node-agent"]).expect("the declared defaults parse");
        let d = Config::default();
        assert_eq!(c.broker.server, DEFAULT_SERVER);
        assert_eq!((d.max_pods, d.lease_duration), (110, 40));
        assert_eq!(d.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(d.listen.to_string(), "127.0.0.1:0");
        assert!(!d.pods_die_with_agent);
    }

    #[test]
    fn validate_refuses_what_the_agent_cannot_run_with() {
        type Change = fn(&mut Config);
        let table: [(&str, Change, Option<&str>); 13] = [
            ("the defaults", |_| {}, None),
            ("one sim node", |c| c.sim_nodes = Some(1), None),
            (
                "zero sim nodes",
                |c| c.sim_nodes = Some(0),
                Some("--sim-nodes"),
            ),
            (
                "no broker",
                |c| c.broker.server = String::new(),
                Some("--server"),
            ),
            ("no pods", |c| c.max_pods = 0, Some("--max-pods")),
            (
                "no heartbeat pause",
                |c| c.heartbeat_interval = Duration::ZERO,
                Some("--heartbeat-interval"),
            ),
            (
                "heartbeat slower than the lease",
                |c| c.heartbeat_interval = Duration::from_secs(60),
                Some("--heartbeat-interval"),
            ),
            (
                "no lease",
                |c| c.lease_duration = 0,
                Some("--lease-duration"),
            ),
            (
                "cap below base",
                |c| c.backoff_cap = Duration::from_secs(1),
                Some("--backoff-cap"),
            ),
            ("no log", |c| c.log_max_bytes = 0, Some("--log-max-bytes")),
            (
                "a label without =",
                |c| c.labels = vec!["zone".into()],
                Some("--labels"),
            ),
            (
                "a taint without effect",
                |c| c.taints = vec!["dedicated=x".into()],
                Some("--taints"),
            ),
            (
                "metrics on the logs port",
                |c| {
                    c.listen = "127.0.0.1:7000".parse().unwrap();
                    c.metrics.metrics_listen = Some(c.listen);
                },
                Some("--metrics-listen"),
            ),
        ];
        for (name, change, want) in table {
            let mut c = Config::new("http://x", "n");
            change(&mut c);
            assert_eq!(c.validate().err().map(|e| e.flag), want, "{name}");
        }
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
