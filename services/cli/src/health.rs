//! `bosun health URL`: the container health probe of the compose stack. Every service serves
//! its metrics on `BOSUN_METRICS_LISTEN` (`/metrics`); a service whose endpoint answers 2xx
//! within the timeout is up. The image has no curl or wget, so the probe is the CLI's.

use std::time::Duration;

/// `bosun health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// What to probe (`http://127.0.0.1:9440/metrics`).
    #[arg(default_value = "http://127.0.0.1:9440/metrics")]
    pub url: String,
    /// How long the probe may take.
    #[arg(long, default_value = "2s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 2s or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        _ => Err(format!("{s:?} is not a duration such as 2s or 500ms")),
    }
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{url} is not healthy: {source}")]
    Probe { url: String, source: ureq::Error },
    #[error("the probe of {url} did not finish: {source}")]
    Join {
        url: String,
        source: tokio::task::JoinError,
    },
}

/// GETs `url`; Ok when it answers 2xx within `timeout`.
pub async fn probe(url: &str, timeout: Duration) -> Result<(), HealthError> {
    let owned = url.to_string();
    let result = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build()
            .into();
        agent.get(&owned).call().map(drop)
    })
    .await
    .map_err(|source| HealthError::Join {
        url: url.to_string(),
        source,
    })?;
    result.map_err(|source| HealthError::Probe {
        url: url.to_string(),
        source,
    })
}

/// Runs `bosun health`: prints `ok` and exits 0, or fails with the reason.
pub async fn health(ctx: &mut crate::Ctx<'_>, args: HealthArgs) -> anyhow::Result<i32> {
    probe(&args.url, args.timeout).await?;
    writeln!(ctx.out, "ok")?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("2s", Some(Duration::from_secs(2))),
            ("500ms", Some(Duration::from_millis(500))),
            ("3", Some(Duration::from_secs(3))),
            ("2m", None),
            ("s", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_timeout(s).ok(), *want, "{s}");
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unhealthy() {
        let addr = bosun_runtime::ports::free_loopback_addr().unwrap();
        let url = format!("http://{addr}/metrics");
        let err = probe(&url, Duration::from_secs(2)).await.unwrap_err();
        assert!(err.to_string().contains("is not healthy"), "{err}");
    }
}
