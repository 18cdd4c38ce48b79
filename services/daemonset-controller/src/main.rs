//! `bosun-daemonset-controller`: parses and checks its config, sets up telemetry, and runs
//! the DaemonSet controller until SIGINT or SIGTERM.

use clap::Parser;

/// mimalloc instead of glibc's malloc (why: `bosun_runtime::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    bosun_runtime::rt::controller()?.block_on(async {
        let config = bosun_daemonset_controller::Config::parse();
        config.validate()?;
        let telemetry = bosun_runtime::telemetry::init("bosun-daemonset-controller")?;
        let shutdown = bosun_runtime::shutdown::shutdown_signal();
        let result = bosun_daemonset_controller::run(config, shutdown).await;
        telemetry.shutdown();
        result.map_err(Into::into)
    })
}
