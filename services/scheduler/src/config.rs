//! `bosun-scheduler`'s command line and environment (`BOSUN_*`).

use std::time::Duration;

use bosun_runtime::config::{
    BrokerArgs, InvalidConfig, MetricsArgs, parse_duration, parse_positive, require_nonzero,
    require_positive,
};

/// Everything `bosun-scheduler` can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bosun-scheduler",
    about = "bosun's scheduler (binds pending pods to nodes) and node lifecycle controller"
)]
pub struct Config {
    #[command(flatten)]
    pub broker: BrokerArgs,

    /// How many pods are scheduled in parallel.
    #[arg(long, env = "BOSUN_WORKERS", default_value_t = 16, value_parser = parse_positive)]
    pub workers: usize,

    /// How long a node's lease may go unrenewed before it turns Ready=Unknown and is
    /// tainted unreachable (`40s`, `1500ms`).
    #[arg(long, env = "BOSUN_NODE_MONITOR_GRACE_PERIOD", default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,

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
    /// A config for the broker at `server` with every other setting at its default.
    pub fn for_server(server: &str) -> Config {
        Config {
            broker: BrokerArgs::new(server),
            ..Config::default()
        }
    }

    /// Refuses settings the scheduler cannot run with; called before any port is bound.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.broker.validate()?;
        require_positive("--workers", self.workers as u64)?;
        require_nonzero(
            "--node-monitor-grace-period",
            self.node_monitor_grace_period,
        )
    }
}

#[cfg(test)]
mod tests {
    use bosun_api::vocab::DEFAULT_SERVER;

    use super::*;

    #[test]
    fn defaults_are_the_declared_ones() {
        use clap::Parser;
        let c = Config::try_parse_from(["bosun-scheduler"]).expect("the declared defaults parse");
        assert_eq!(c.broker.server, DEFAULT_SERVER);
        assert_eq!(c.workers, 16);
        assert_eq!(c.node_monitor_grace_period, Duration::from_secs(40));
        assert_eq!(Config::default().workers, c.workers);
        assert!(Config::try_parse_from(["bosun-scheduler", "--workers", "0"]).is_err());
    }

    #[test]
    fn validate_refuses_what_the_scheduler_cannot_run_with() {
        type Change = fn(&mut Config);
        let table: [(&str, Change, Option<&str>); 4] = [
            ("the defaults", |_| {}, None),
            ("no workers", |c| c.workers = 0, Some("--workers")),
            (
                "no broker",
                |c| c.broker.server = String::new(),
                Some("--server"),
            ),
            (
                "no grace",
                |c| c.node_monitor_grace_period = Duration::ZERO,
                Some("--node-monitor-grace-period"),
            ),
        ];
        for (name, change, want) in table {
            let mut c = Config::default();
            change(&mut c);
            assert_eq!(c.validate().err().map(|e| e.flag), want, "{name}");
        }
    }
}
