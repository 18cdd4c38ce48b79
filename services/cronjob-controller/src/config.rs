//! The CronJob controller's command line and environment (`BOSUN_*`).

use bosun_runtime::config::{
    BrokerArgs, InvalidConfig, MetricsArgs, ReplicaArgs, require_positive,
};
use bosun_runtime::sharded::Sharding;

use crate::clock::Clock;

/// Everything `bosun-cronjob-controller` can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bosun-cronjob-controller",
    about = "bosun's CronJob controller: starts each CronJob's Job at its scheduled times"
)]
pub struct Config {
    #[command(flatten)]
    pub broker: BrokerArgs,

    /// How many CronJobs are reconciled in parallel (never the same CronJob twice;
    /// Kubernetes' --concurrent-cron-job-syncs, default 5 there). A reconcile mostly waits:
    /// for its slot (it is prepared 250 ms ahead) and on the broker. A minute boundary makes
    /// every CronJob of that schedule due at once, and a worker is one small task, so bosun
    /// runs a thousand: with `bosun-bench cronjobs`, 1,000 fires at one boundary had a skew
    /// p99 of 564 ms with 100 workers and 192 ms with 1,000 (before the other changes).
    #[arg(long, env = "BOSUN_CRONJOB_WORKERS", default_value_t = 1000)]
    pub workers: usize,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub replica: ReplicaArgs,

    /// Scale-out: the shards this replica holds, from the membership (or a test's channel).
    /// `None`: `run` joins the membership of its kind through the broker (`--replica`,
    /// `--lease-ttl`); `Some(Sharding::single(..))`: a lone replica holding every shard,
    /// unfenced.
    #[arg(skip)]
    pub sharding: Option<Sharding>,

    /// Test hook: the clock the controller reads (the wall clock unless a test moves it).
    #[arg(skip)]
    pub clock: Clock,
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

    /// Refuses settings this service cannot run with; called before any port is bound.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.broker.validate()?;
        self.replica.validate()?;
        require_positive("--workers", self.workers as u64)
    }
}

#[cfg(test)]
mod tests {
    use bosun_api::vocab::DEFAULT_SERVER;

    use super::*;

    #[test]
    fn defaults_are_the_declared_ones() {
        use clap::Parser;
        let c = Config::try_parse_from(["bosun-cronjob-controller"])
            .expect("the declared defaults parse");
        assert_eq!(c.broker.server, DEFAULT_SERVER);
        assert_eq!(c.workers, 1000);
        assert_eq!(Config::default().workers, 1000);
        assert_eq!(Config::for_server("http://x:1").broker.server, "http://x:1");
    }

    #[test]
    fn validate_refuses_what_the_service_cannot_run_with() {
        type Change = fn(&mut Config);
        let table: [(&str, Change, Option<&str>); 5] = [
            ("the defaults", |_| {}, None),
            ("no workers", |c| c.workers = 0, Some("--workers")),
            (
                "no replica name",
                |c| c.replica.replica.clear(),
                Some("--replica"),
            ),
            (
                "a replica name with a slash",
                |c| c.replica.replica = "a/b".into(),
                Some("--replica"),
            ),
            (
                "no broker",
                |c| c.broker.server = String::new(),
                Some("--server"),
            ),
        ];
        for (name, change, want) in table {
            let mut c = Config::default();
            change(&mut c);
            assert_eq!(c.validate().err().map(|e| e.flag), want, "{name}");
        }
    }
}
