//! `bosun-scheduler`: parses and checks its config, sets up telemetry, and runs the scheduler and
//! the node lifecycle controller until SIGINT or SIGTERM.

use clap::Parser;

/// mimalloc instead of glibc's malloc (why: `bosun_runtime::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // A burst of small requests and cache entries: better in small pages.
    let small_pages = bosun_runtime::alloc::disable_huge_pages();
    bosun_runtime::rt::controller()?.block_on(async {
        let config = bosun_scheduler::Config::parse();
        config.validate()?;
        let telemetry = bosun_runtime::telemetry::init("bosun-scheduler")?;
        if let Err(err) = small_pages {
            tracing::warn!(%err, "could not turn off transparent huge pages; running with them");
        }
        let shutdown = bosun_runtime::shutdown::shutdown_signal();
        let result = bosun_scheduler::run(config, shutdown).await;
        telemetry.shutdown();
        result.map_err(Into::into)
    })
}
