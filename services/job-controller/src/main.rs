//! `bosun-job-controller`: parses its config, sets up telemetry, and runs the Job controller
//! until SIGINT or SIGTERM.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = bosun_job_controller::Config::parse();
    let telemetry = bosun_runtime::telemetry::init("bosun-job-controller")?;
    let shutdown = bosun_runtime::shutdown::shutdown_signal();
    let result = bosun_job_controller::run(config, shutdown).await;
    telemetry.shutdown();
    result.map_err(Into::into)
}
