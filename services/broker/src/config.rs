//! The broker's command line and environment (`BOSUN_*`), validated before any port is bound.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything `bosun-broker` can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bosun-broker",
    about = "bosun's watch-broker: the object and watch APIs over etcd"
)]
pub struct Config {
    /// Where the gRPC API listens.
    #[arg(long, env = "BOSUN_LISTEN", default_value = "127.0.0.1:7440")]
    pub listen: SocketAddr,

    /// etcd client endpoints, comma-separated.
    #[arg(
        long,
        env = "BOSUN_ETCD_ENDPOINTS",
        default_value = "http://127.0.0.1:2379",
        value_delimiter = ','
    )]
    pub etcd_endpoints: Vec<String>,

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

    /// Where Prometheus metrics are served (`/metrics`); unset: not served.
    #[arg(long, env = "BOSUN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// A config for `etcd_endpoint` with every other setting at its default.
    pub fn for_etcd(etcd_endpoint: &str) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7440)),
            etcd_endpoints: vec![etcd_endpoint.to_string()],
            window_events: 10_000,
            subscriber_buffer: 1024,
            bookmark_interval: Duration::from_secs(5),
            max_object_bytes: 1_572_864,
            write_cache_bytes: 64 << 20,
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
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write e.g. 500ms, 5s or 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use ms, s or m")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_milliseconds_seconds_and_minutes() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        use clap::Parser;
        let c = Config::parse_from(["bosun-broker"]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:7440");
        assert_eq!(c.max_object_bytes, 1_572_864);
        assert_eq!(c.subscriber_buffer, 1024);
        assert_eq!(c.subscriber_buffer, Config::for_etcd("x").subscriber_buffer);
        assert_eq!(c.write_cache_bytes, Config::for_etcd("x").write_cache_bytes);
        let c = Config::parse_from(["bosun-broker", "--subscriber-buffer", "64"]);
        assert_eq!(c.subscriber_buffer, 64);
        assert!(Config::try_parse_from(["bosun-broker", "--subscriber-buffer", "0"]).is_err());
        assert_eq!(c.etcd_endpoints, vec!["http://127.0.0.1:2379".to_string()]);
        let c = Config::parse_from(["bosun-broker", "--etcd-endpoints", "http://a:1,http://b:2"]);
        assert_eq!(c.etcd_endpoints.len(), 2);
    }
}
