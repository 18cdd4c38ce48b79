//! The `bosun` binary: a thin wrapper over [`bosun_cli::run`].

use bosun_runtime::telemetry::{self, TelemetryOptions};

/// mimalloc instead of glibc's malloc (why: `bosun_runtime::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let options = TelemetryOptions::new("bosun-cli")
        .default_filter(bosun_cli::default_log_filter(std::env::args_os()));
    // Telemetry is best effort for a command line: a bad endpoint must not stop `bosun get`.
    let telemetry = match telemetry::init_with(options) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("warning: {e}; traces are not exported");
            None
        }
    };
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let code = bosun_cli::run(std::env::args_os(), &mut out, &mut err).await;
    // Flushes the command's span to the collector, if one is configured.
    if let Some(t) = telemetry {
        t.shutdown();
    }
    std::process::exit(code);
}
