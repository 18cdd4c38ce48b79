//! With an OTLP endpoint where nothing listens, services still run and exit promptly.
//! Its own test binary because it installs the process-global subscriber.

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_when_no_collector_listens() {
    // Bind then drop: a port that refuses connections.
    let port = bosun_runtime::ports::free_loopback_addr().unwrap().port();
    let tel = bosun_runtime::telemetry::init_with_endpoint(
        "no-collector",
        Some(&format!("http://127.0.0.1:{port}")),
    )
    .expect("init succeeds without a collector");
    for i in 0..10 {
        let span = tracing::info_span!("work", i);
        let _guard = span.enter();
        tracing::info!("working");
    }
    let started = Instant::now();
    tokio::task::spawn_blocking(move || tel.shutdown())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
