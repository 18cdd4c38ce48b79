//! What every service's configuration shares: its defaults read from its own clap
//! declarations ([`defaults`], so each value is written once, in the `#[arg]` that documents
//! it), the flags every service has ([`BrokerArgs`]: `--server`; [`MetricsArgs`]:
//! `--metrics-listen`), the parsers of flag values ([`parse_duration`], [`parse_positive`]),
//! and the error a config's `validate()` returns ([`InvalidConfig`]), checked before any port
//! is bound.
//!
//! The shared flags are two one-flag structs, not one, so each service flattens each where
//! its `--help` lists it (`--server` first, `--metrics-listen` among its own flags) and a
//! service without a broker to reach (the broker itself) takes only `--metrics-listen`.

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::Duration;

use bosun_api::vocab::DEFAULT_SERVER;

/// `--server`: the broker a service talks to. Flatten it into a service's config
/// (`#[command(flatten)] pub broker: BrokerArgs`) and call [`BrokerArgs::validate`] from its
/// `validate()`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BrokerArgs {
    /// The broker's gRPC address.
    #[arg(long, env = "BOSUN_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
}

impl BrokerArgs {
    /// The broker at `server`.
    pub fn new(server: &str) -> BrokerArgs {
        BrokerArgs {
            server: server.to_string(),
        }
    }

    /// Fails unless `--server` names a broker.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        require_server(&self.server)
    }
}

/// `--metrics-listen`: where a service serves its Prometheus metrics, if anywhere. Flatten
/// it into a service's config (`#[command(flatten)] pub metrics: MetricsArgs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct MetricsArgs {
    /// Where Prometheus metrics are served (`/metrics`); unset: not served.
    #[arg(long, env = "BOSUN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl MetricsArgs {
    /// Serves `metrics` at `--metrics-listen` until `shutdown`, when set
    /// ([`crate::metrics::serve_on`]: bound at once, so a taken port fails at startup); the
    /// task to await on the way out.
    pub async fn serve(
        &self,
        metrics: &crate::metrics::Metrics,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> std::io::Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>> {
        crate::metrics::serve_on(self.metrics_listen, metrics, shutdown).await
    }

    /// Fails when metrics would be served on the service's own `--listen` address (`what`:
    /// what listens there, `"gRPC address"`), unless both ask for any free port (0).
    pub fn require_apart_from(&self, listen: SocketAddr, what: &str) -> Result<(), InvalidConfig> {
        let Some(metrics) = self.metrics_listen else {
            return Ok(());
        };
        require(
            metrics != listen || metrics.port() == 0,
            "--metrics-listen",
            metrics,
            &format!("is also the {what} (--listen); choose another port"),
        )
    }
}

/// `--replica` and `--lease-ttl`: a sharded controller's place among the replicas of its
/// kind (scale-out, `bosun_runtime::sharded`). Flatten it into the config of each controller
/// that can run as several replicas, and call [`ReplicaArgs::validate`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ReplicaArgs {
    /// This replica's name, unique among the live replicas of its controller kind (also the
    /// `source.host` of its events); default `<hostname>-<pid>`.
    #[arg(long, env = "BOSUN_REPLICA", default_value_t = default_replica())]
    pub replica: String,
    /// How long the replica's membership lease outlives its last renewal: a replica that
    /// stops renewing loses its shards to the others after this long.
    #[arg(long, env = "BOSUN_LEASE_TTL", default_value = "2s", value_parser = parse_duration)]
    pub lease_ttl: Duration,
}

impl ReplicaArgs {
    /// Fails on an empty replica name or one that cannot be an etcd key segment.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        require(
            !self.replica.is_empty() && !self.replica.contains('/'),
            "--replica",
            format!("{:?}", self.replica),
            "must be a non-empty name without '/' (it is a segment of the member key)",
        )
    }
}

pub use crate::shards::default_replica;

/// A setting a service cannot run with: which flag, the value given, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {value}: {problem}")]
pub struct InvalidConfig {
    /// The flag as a person types it (`--workers`).
    pub flag: &'static str,
    /// The value it was given.
    pub value: String,
    /// What is wrong and what to give instead.
    pub problem: String,
}

impl InvalidConfig {
    /// `flag value: problem`.
    pub fn new(flag: &'static str, value: impl Display, problem: impl Into<String>) -> Self {
        InvalidConfig {
            flag,
            value: value.to_string(),
            problem: problem.into(),
        }
    }
}

/// Fails with `flag value: problem` unless `ok`.
pub fn require(
    ok: bool,
    flag: &'static str,
    value: impl Display,
    problem: &str,
) -> Result<(), InvalidConfig> {
    if ok {
        Ok(())
    } else {
        Err(InvalidConfig::new(flag, value, problem))
    }
}

/// Fails unless `--server` names a broker.
pub fn require_server(server: &str) -> Result<(), InvalidConfig> {
    require(
        !server.trim().is_empty(),
        "--server",
        "\"\"",
        &format!("name the broker, e.g. {DEFAULT_SERVER}"),
    )
}

/// Fails unless a count is at least 1.
pub fn require_positive(flag: &'static str, value: u64) -> Result<(), InvalidConfig> {
    require(value > 0, flag, value, "must be at least 1")
}

/// Fails unless a duration is longer than zero.
pub fn require_nonzero(flag: &'static str, value: Duration) -> Result<(), InvalidConfig> {
    require(
        !value.is_zero(),
        flag,
        format!("{value:?}"),
        "must be longer than zero (e.g. 500ms, 10s)",
    )
}

/// A service's configuration with every setting at the default its `#[arg]` declares,
/// ignoring the environment (a `BOSUN_*` meant for `bosun up` itself must not leak into the
/// services it runs) and the command line.
///
/// Panics only if a declared default does not parse, which each config's
/// `defaults_parse` test rules out.
pub fn defaults<T: clap::Parser>() -> T {
    let command = without_env(T::command());
    let name = command.get_name().to_string();
    command
        .try_get_matches_from([name.as_str()])
        .and_then(|matches| T::from_arg_matches(&matches))
        .unwrap_or_else(|err| panic!("the declared defaults of {name} do not parse: {err}"))
}

/// `command` with no argument read from the environment.
fn without_env(command: clap::Command) -> clap::Command {
    command.mut_args(|arg| arg.env(None::<&'static str>))
}

/// Parses a count that must be at least 1.
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a positive whole number")),
    }
}

/// The flag duration parsers live in `bosun-api` ([`bosun_api::units`]), once: a Go duration
/// (`250ms`, `5s`, `1h30m`) or a bare number of seconds. `parse_duration` refuses zero (a zero
/// period would spin, or panic in `tokio::time::interval`); `parse_duration_allowing_zero`
/// takes it.
pub use bosun_api::units::{
    parse_duration as parse_duration_allowing_zero, parse_positive_duration as parse_duration,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_be_positive() {
        assert_eq!(parse_positive("4"), Ok(4));
        assert!(parse_positive("0").is_err());
        assert!(parse_positive("-1").is_err());
        assert!(parse_positive("many").is_err());
    }

    #[derive(Debug, clap::Parser)]
    #[command(name = "svc")]
    struct Svc {
        #[arg(long, env = "BOSUN_RUNTIME_CONFIG_TEST_WORKERS", default_value_t = 4)]
        workers: usize,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        every: Duration,
    }

    #[test]
    fn defaults_come_from_the_declarations_not_the_environment() {
        let c: Svc = defaults();
        assert_eq!(c.workers, 4);
        assert_eq!(c.every, Duration::from_secs(10));
        // (Setting a variable in-process needs `unsafe`; what matters is that none is read.)
        let command = without_env(<Svc as clap::CommandFactory>::command());
        assert!(command.get_arguments().all(|a| a.get_env().is_none()));
    }

    /// A service's config as the services declare theirs: `--server` first, its own flags,
    /// then `--metrics-listen`.
    #[derive(Debug, clap::Parser)]
    #[command(name = "svc")]
    struct Shared {
        #[command(flatten)]
        broker: BrokerArgs,
        #[arg(long, default_value_t = 4)]
        workers: usize,
        #[command(flatten)]
        metrics: MetricsArgs,
    }

    #[test]
    fn the_shared_flags_keep_their_names_environment_defaults_and_place() {
        let c: Shared = defaults();
        assert_eq!(c.broker, BrokerArgs::new(DEFAULT_SERVER));
        assert_eq!(c.metrics, MetricsArgs::default());
        let c = <Shared as clap::Parser>::try_parse_from([
            "svc",
            "--server",
            "http://b:1",
            "--metrics-listen",
            "127.0.0.1:9090",
        ])
        .expect("the shared flags parse");
        assert_eq!(c.broker.server, "http://b:1");
        assert_eq!(
            c.metrics.metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
        assert_eq!(c.workers, 4);
        let command = <Shared as clap::CommandFactory>::command();
        let flags: Vec<(Option<&str>, Option<String>)> = command
            .get_arguments()
            .map(|a| {
                (
                    a.get_long(),
                    a.get_env().map(|e| e.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert_eq!(
            flags,
            [
                (Some("server"), Some("BOSUN_SERVER".to_string())),
                (Some("workers"), None),
                (
                    Some("metrics-listen"),
                    Some("BOSUN_METRICS_LISTEN".to_string())
                ),
            ],
            "each flag where it is declared, with its variable"
        );
        let help = <Shared as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        assert!(help.contains("--server <SERVER>"), "{help}");
        assert!(help.contains("--metrics-listen <METRICS_LISTEN>"), "{help}");
    }

    #[test]
    fn the_shared_flags_refuse_what_no_service_can_run_with() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let at_7000: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let at_7001: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let metrics = |m: Option<SocketAddr>| MetricsArgs { metrics_listen: m };
        let table: [(&str, Result<(), InvalidConfig>, Option<&str>); 7] = [
            ("a broker", BrokerArgs::new("http://b:1").validate(), None),
            (
                "no broker",
                BrokerArgs::new("").validate(),
                Some("--server"),
            ),
            (
                "a blank broker",
                BrokerArgs::new("  ").validate(),
                Some("--server"),
            ),
            (
                "metrics not served",
                metrics(None).require_apart_from(at_7000, "gRPC address"),
                None,
            ),
            (
                "metrics elsewhere",
                metrics(Some(at_7001)).require_apart_from(at_7000, "gRPC address"),
                None,
            ),
            (
                "both on any free port",
                metrics(Some(any)).require_apart_from(any, "gRPC address"),
                None,
            ),
            (
                "metrics on --listen",
                metrics(Some(at_7000)).require_apart_from(at_7000, "gRPC address"),
                Some("--metrics-listen"),
            ),
        ];
        for (name, got, want) in table {
            assert_eq!(got.err().map(|e| e.flag), want, "{name}");
        }
        let err = metrics(Some(at_7000))
            .require_apart_from(at_7000, "logs server's address")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--metrics-listen 127.0.0.1:7000: is also the logs server's address (--listen); choose another port"
        );
    }

    #[tokio::test]
    async fn metrics_are_served_only_where_metrics_listen_says() {
        let (registry, shutdown) = (crate::metrics::Metrics::new(), Default::default());
        let unset = MetricsArgs::default().serve(&registry, &shutdown).await;
        assert!(unset.expect("nothing to bind").is_none());
        let any = MetricsArgs {
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        };
        let task = any.serve(&registry, &shutdown).await.expect("binds");
        let task = task.expect("served when set");
        shutdown.cancel();
        task.await.expect("the task ends").expect("cleanly");
    }

    #[test]
    fn an_invalid_setting_names_the_flag_the_value_and_the_fix() {
        let err = require_positive("--workers", 0).unwrap_err();
        assert_eq!(err.to_string(), "--workers 0: must be at least 1");
        let err = require_nonzero("--heartbeat-interval", Duration::ZERO).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--heartbeat-interval 0ns: must be longer than zero")
        );
        assert!(require_positive("--workers", 1).is_ok());
    }
}
