//! The broker's command line and environment (`BOSUN_*`), validated before any port is bound.

use std::net::SocketAddr;
use std::time::Duration;

use bosun_api::vocab::DEFAULT_BROKER_LISTEN;
use bosun_runtime::config::{InvalidConfig, MetricsArgs, parse_duration, parse_positive, require};

/// Everything `bosun-broker` can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bosun-broker",
    about = "bosun's watch-broker: the object and watch APIs over etcd"
)]
pub struct Config {
    /// Where the gRPC API listens.
    #[arg(long, env = "BOSUN_LISTEN", default_value = DEFAULT_BROKER_LISTEN)]
    pub listen: SocketAddr,

    /// etcd client endpoints, comma-separated.
    #[arg(
        long,
        env = "BOSUN_ETCD_ENDPOINTS",
        default_value = "http://127.0.0.1:2379",
        value_delimiter = ','
    )]
    pub etcd_endpoints: Vec<String>,

    /// The `--max-txn-ops` etcd runs with (its default: 128): how many writes the broker
    /// may batch into one etcd transaction. `bosun up`, the tests and the compose stack start
    /// etcd with 1024.
    #[arg(long, env = "BOSUN_ETCD_MAX_TXN_OPS", default_value_t = crate::batch::ETCD_DEFAULT_MAX_TXN_OPS)]
    pub etcd_max_txn_ops: usize,

    /// How many recent events per kind are kept in memory for resuming watches.
    #[arg(long, env = "BOSUN_WINDOW_EVENTS", default_value_t = 10_000)]
    pub window_events: usize,

    /// How many events a watch subscriber may have queued before it is cut off as too slow
    /// (it then resumes from the window, or relists when it fell out of it).
    #[arg(long, env = "BOSUN_SUBSCRIBER_BUFFER", default_value_t = 1024, value_parser = parse_positive)]
    pub subscriber_buffer: usize,

    /// How often an idle watch with bookmarks allowed gets a BOOKMARK (`5s`, `500ms`).
    #[arg(long, env = "BOSUN_BOOKMARK_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub bookmark_interval: Duration,

    /// The largest encoded object accepted, in bytes (etcd's own request limit is 1.5 MiB).
    #[arg(long, env = "BOSUN_MAX_OBJECT_BYTES", default_value_t = 1_572_864)]
    pub max_object_bytes: usize,

    /// How many bytes of objects, as the broker last wrote or read them, it keeps to start
    /// the next write of the same object without an etcd read (0: none). Every such write is
    /// still guarded by the object's mod_revision.
    #[arg(long, env = "BOSUN_WRITE_CACHE_BYTES", default_value_t = 64 << 20)]
    pub write_cache_bytes: usize,

    /// FOR TESTS ONLY (the negative control of the fencing tests): accept the `bosun-fence`
    /// header of writes but do not check it, so a replica that lost its shard can still write.
    /// Never set it on a real plane: it gives up the guarantee that a deposed replica's writes
    /// are refused.
    #[arg(long, env = "BOSUN_UNSAFE_SKIP_FENCE_CHECK", hide_short_help = true)]
    pub unsafe_skip_fence_check: bool,

    #[command(flatten)]
    pub metrics: MetricsArgs,
}

impl Default for Config {
    /// Every setting at the default its flag declares (the environment is not read).
    fn default() -> Config {
        bosun_runtime::config::defaults()
    }
}

impl Config {
    /// A config for `etcd_endpoint` with every other setting at its default.
    pub fn for_etcd(etcd_endpoint: &str) -> Config {
        Config {
            etcd_endpoints: vec![etcd_endpoint.to_string()],
            ..Config::default()
        }
    }

    /// Refuses settings the broker cannot run with; called before any port is bound.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let endpoints = self.etcd_endpoints.join(",");
        require(
            self.etcd_endpoints.iter().any(|e| !e.trim().is_empty()),
            "--etcd-endpoints",
            format!("{endpoints:?}"),
            "name at least one etcd, e.g. http://127.0.0.1:2379",
        )?;
        require(
            self.subscriber_buffer > 0,
            "--subscriber-buffer",
            self.subscriber_buffer,
            "must be at least 1",
        )?;
        require(
            self.max_object_bytes > 0,
            "--max-object-bytes",
            self.max_object_bytes,
            "must be at least 1 (etcd's own limit is 1572864)",
        )?;
        require(
            self.etcd_max_txn_ops >= 3,
            "--etcd-max-txn-ops",
            self.etcd_max_txn_ops,
            "must be at least 3 and match etcd's own --max-txn-ops (etcd's default: 128)",
        )?;
        require(
            !self.bookmark_interval.is_zero(),
            "--bookmark-interval",
            format!("{:?}", self.bookmark_interval),
            "must be longer than zero (e.g. 5s)",
        )?;
        self.metrics.require_apart_from(self.listen, "gRPC address")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        use clap::Parser;
        let c = Config::parse_from(["bosun-broker"]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:7440");
        assert_eq!(c.max_object_bytes, 1_572_864);
        assert_eq!(c.subscriber_buffer, 1024);
        assert_eq!(c.subscriber_buffer, Config::for_etcd("x").subscriber_buffer);
        assert_eq!(c.write_cache_bytes, Config::for_etcd("x").write_cache_bytes);
        assert_eq!(c.listen, Config::default().listen);
        assert_eq!(c.bookmark_interval, Config::default().bookmark_interval);
        let c = Config::parse_from(["bosun-broker", "--subscriber-buffer", "64"]);
        assert_eq!(c.subscriber_buffer, 64);
        assert!(Config::try_parse_from(["bosun-broker", "--subscriber-buffer", "0"]).is_err());
        assert_eq!(c.etcd_endpoints, vec!["http://127.0.0.1:2379".to_string()]);
        let c = Config::parse_from(["bosun-broker", "--etcd-endpoints", "http://a:1,http://b:2"]);
        assert_eq!(c.etcd_endpoints.len(), 2);
    }

    #[test]
    fn the_unsafe_skip_fence_flag_is_off_by_default_and_says_it_is_for_tests() {
        use clap::{CommandFactory, Parser};
        assert!(!Config::default().unsafe_skip_fence_check);
        let c = Config::parse_from(["bosun-broker", "--unsafe-skip-fence-check"]);
        assert!(c.unsafe_skip_fence_check);
        let help = Config::command().render_long_help().to_string();
        assert!(help.contains("--unsafe-skip-fence-check"), "{help}");
        assert!(help.contains("FOR TESTS ONLY"), "{help}");
    }

    #[test]
    fn validate_refuses_what_the_broker_cannot_run_with() {
        let ok = Config::for_etcd("http://127.0.0.1:2379");
        type Change = fn(&mut Config);
        let table: [(&str, Change, Option<&str>); 6] = [
            ("the defaults", |_| {}, None),
            (
                "no etcd",
                |c| c.etcd_endpoints = vec![],
                Some("--etcd-endpoints"),
            ),
            (
                "no buffer",
                |c| c.subscriber_buffer = 0,
                Some("--subscriber-buffer"),
            ),
            (
                "no object fits",
                |c| c.max_object_bytes = 0,
                Some("--max-object-bytes"),
            ),
            (
                "bookmarks without pause",
                |c| c.bookmark_interval = Duration::ZERO,
                Some("--bookmark-interval"),
            ),
            (
                "metrics on the gRPC port",
                |c| c.metrics.metrics_listen = Some(c.listen),
                Some("--metrics-listen"),
            ),
        ];
        for (name, change, want) in table {
            let mut c = ok.clone();
            change(&mut c);
            assert_eq!(c.validate().err().map(|e| e.flag), want, "{name}");
        }
    }
}
