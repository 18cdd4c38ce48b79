//! `bosun-scheduler`'s command line and environment (`BOSUN_*`).

use std::net::SocketAddr;
use std::time::Duration;

/// Everything `bosun-scheduler` can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bosun-scheduler",
    about = "bosun's scheduler (binds pending pods to nodes) and node lifecycle controller"
)]
pub struct Config {
    /// The broker's address.
    #[arg(long, env = "BOSUN_SERVER", default_value = "http://127.0.0.1:7440")]
    pub server: String,

    /// How many pods are scheduled in parallel.
    #[arg(long, env = "BOSUN_WORKERS", default_value_t = 16, value_parser = parse_positive)]
    pub workers: usize,

    /// How long a node's lease may go unrenewed before it turns Ready=Unknown and is
    /// tainted unreachable (`40s`, `1500ms`).
    #[arg(long, env = "BOSUN_NODE_MONITOR_GRACE_PERIOD", default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,

    /// Where Prometheus metrics are served (`/metrics`); unset: not served.
    #[arg(long, env = "BOSUN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// A config for the broker at `server` with every other setting at its default.
    pub fn for_server(server: &str) -> Config {
        Config {
            server: server.to_string(),
            workers: 16,
            node_monitor_grace_period: Duration::from_secs(40),
            metrics_listen: None,
        }
    }
}

/// Parses a count that must be at least 1.
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a positive whole number")),
    }
}

/// Parses `250ms`, `5s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a duration; write e.g. 500ms, 5s or 1m");
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_usual_units() {
        let table = [
            ("40s", Some(Duration::from_secs(40))),
            ("1500ms", Some(Duration::from_millis(1500))),
            ("2m", Some(Duration::from_secs(120))),
            ("3", Some(Duration::from_secs(3))),
            ("0s", None),
            ("soon", None),
            ("5x", None),
        ];
        for (s, want) in table {
            assert_eq!(parse_duration(s).ok(), want, "{s}");
        }
    }
}
