//! Readiness probes: exec (exit 0), tcpSocket (connects) and httpGet (status 200–399), with
//! initialDelaySeconds, periodSeconds, timeoutSeconds and the success / failure thresholds
//! as Kubernetes defines them. The prober reports each change of readiness.

use std::future::Future;
use std::time::Duration;

use bosun_api::v1;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Runs `probe` against a container at `host` forever (the caller aborts it), calling
/// `report(ready)` when readiness changes (starting from not ready).
pub async fn run<F, Fut>(probe: v1::Probe, host: String, env: Vec<(String, String)>, report: F)
where
    F: Fn(bool) -> Fut,
    Fut: Future<Output = ()>,
{
    let period = Duration::from_secs(probe.period_seconds.max(1) as u64);
    let timeout = Duration::from_secs(probe.timeout_seconds.max(1) as u64);
    let success_threshold = probe.success_threshold.max(1);
    let failure_threshold = probe.failure_threshold.max(1);
    tokio::time::sleep(Duration::from_secs(
        probe.initial_delay_seconds.max(0) as u64
    ))
    .await;
    let mut ready = false;
    let (mut successes, mut failures) = (0, 0);
    loop {
        let ok = tokio::time::timeout(timeout, once(&probe, &host, &env))
            .await
            .unwrap_or(false);
        if ok {
            successes += 1;
            failures = 0;
        } else {
            failures += 1;
            successes = 0;
        }
        let next = next_readiness(
            ready,
            successes,
            failures,
            success_threshold,
            failure_threshold,
        );
        if next != ready {
            ready = next;
            report(ready).await;
        }
        tokio::time::sleep(period).await;
    }
}

/// Readiness after a probe result, given the consecutive successes and failures (pure).
pub fn next_readiness(
    ready: bool,
    successes: i32,
    failures: i32,
    success_threshold: i32,
    failure_threshold: i32,
) -> bool {
    if !ready && successes >= success_threshold {
        true
    } else if ready && failures >= failure_threshold {
        false
    } else {
        ready
    }
}

fn port_of(p: &Option<v1::IntOrString>) -> u16 {
    p.as_ref()
        .map(|p| {
            if p.is_string {
                p.str_val.parse().unwrap_or(0)
            } else {
                p.int_val as u16
            }
        })
        .unwrap_or(0)
}

/// One probe attempt.
async fn once(probe: &v1::Probe, host: &str, env: &[(String, String)]) -> bool {
    if let Some(exec) = &probe.exec {
        let Some((cmd, args)) = exec.command.split_first() else {
            return false;
        };
        return tokio::process::Command::new(cmd)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .is_ok_and(|s| s.success());
    }
    if let Some(tcp) = &probe.tcp_socket {
        let h = if tcp.host.is_empty() { host } else { &tcp.host };
        return tokio::net::TcpStream::connect((h, port_of(&tcp.port)))
            .await
            .is_ok();
    }
    if let Some(http) = &probe.http_get {
        let h = if http.host.is_empty() {
            host
        } else {
            &http.host
        };
        let Ok(mut conn) = tokio::net::TcpStream::connect((h, port_of(&http.port))).await else {
            return false;
        };
        let path = if http.path.is_empty() {
            "/"
        } else {
            &http.path
        };
        let req =
            format!("GET {path} HTTP/1.0\r\nHost: {h}\r\nUser-Agent: kube-probe/bosun\r\n\r\n");
        if conn.write_all(req.as_bytes()).await.is_err() {
            return false;
        }
        let mut head = [0u8; 64];
        let n = conn.read(&mut head).await.unwrap_or(0);
        return http_status_ok(&head[..n]);
    }
    false
}

/// Whether an HTTP response head says 200–399.
pub fn http_status_ok(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .is_some_and(|c| (200..400).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_flips_only_past_the_thresholds() {
        for (ready, s, f, want) in [
            (false, 1, 0, true),
            (true, 0, 1, true),
            (true, 0, 3, false),
            (false, 0, 5, false),
        ] {
            assert_eq!(next_readiness(ready, s, f, 1, 3), want, "{ready} {s} {f}");
        }
    }

    #[test]
    fn http_statuses_between_200_and_399_pass() {
        assert!(http_status_ok(b"HTTP/1.1 200 OK\r\n"));
        assert!(http_status_ok(b"HTTP/1.0 302 Found\r\n"));
        assert!(!http_status_ok(b"HTTP/1.1 500 Oops\r\n"));
        assert!(!http_status_ok(b""));
    }
}
