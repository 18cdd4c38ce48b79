//! `bosun-broker`: parses and checks its config, sets up telemetry, and runs the broker until
//! SIGINT or SIGTERM.

use clap::Parser;

/// mimalloc instead of glibc's malloc (why: `bosun_runtime::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = bosun_broker::Config::parse();
    config.validate()?;
    let telemetry = bosun_runtime::telemetry::init("bosun-broker")?;
    let shutdown = bosun_runtime::shutdown::shutdown_signal();
    let result = bosun_broker::run(config, shutdown).await;
    telemetry.shutdown();
    result.map_err(Into::into)
}
