//! Graceful shutdown: one [`CancellationToken`] per process, cancelled on SIGINT or
//! SIGTERM, handed to every component's `run(config, shutdown)`. Components stop taking
//! new work when it fires, finish what is in hand, and return.

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGINT (Ctrl-C) or SIGTERM (docker stop, kill). A second
/// signal exits at once (status 130): the impatient operator's way out of a slow drain.
/// Call inside the tokio runtime; the handlers are installed before this returns.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fired = token.clone();
    let mut signals = Signals::install();
    tokio::spawn(async move {
        let signal = signals.next().await;
        tracing::info!(signal, "shutting down; a second signal exits at once");
        fired.cancel();
        let signal = signals.next().await;
        tracing::warn!(signal, "second signal: exiting without draining");
        std::process::exit(130);
    });
    token
}

/// The signal streams a shutdown listens to.
#[cfg(unix)]
struct Signals {
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            (Err(err), _) | (_, Err(err)) => {
                // The default action (the process dies) still applies then.
                tracing::warn!(%err, "cannot install signal handlers; signals stop the process abruptly");
                None
            }
        };
        Signals { streams }
    }

    /// Waits for the next SIGTERM or SIGINT and names it.
    async fn next(&mut self) -> &'static str {
        let Some((term, int)) = &mut self.streams else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Signals {
        Signals
    }

    async fn next(&mut self) -> &'static str {
        if tokio::signal::ctrl_c().await.is_err() {
            return std::future::pending().await;
        }
        "Ctrl-C"
    }
}
