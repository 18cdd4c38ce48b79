//! SIGTERM cancels the shutdown token. Its own test binary: it signals its own process.

use std::time::Duration;

#[cfg(unix)]
#[tokio::test]
async fn sigterm_cancels_the_shutdown_token() {
    let token = bosun_runtime::shutdown::shutdown_signal();
    assert!(!token.is_cancelled());
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    tokio::time::timeout(Duration::from_secs(5), token.cancelled())
        .await
        .expect("the token is cancelled within 5 s of SIGTERM");
}
