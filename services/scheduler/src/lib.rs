//! `bosun-scheduler`: two controllers in one process, over the broker.
//!
//! - the **scheduler** ([`scheduler`]) binds pending pods to nodes: filters and scores are
//!   pure functions in [`placement`], the in-memory node cache with assumed pods is
//!   [`cache`];
//! - the **node lifecycle controller** ([`lifecycle`]) turns nodes whose lease went stale
//!   Ready=Unknown, keeps the unreachable / not-ready / unschedulable taints in line, and
//!   evicts pods that do not tolerate a NoExecute taint; its decisions are in
//!   [`lifecycle_plan`].
//!
//! [`run`] is what the binary and `bosun up` call.

pub mod cache;
pub mod config;
pub mod error;
pub mod lifecycle;
pub mod lifecycle_plan;
pub mod placement;
pub mod scheduler;

use bosun_api::v1::{Kind, Object};
use bosun_runtime::client::{Broker, Selector};
use bosun_runtime::informer::Informer;
use bosun_runtime::metrics::Metrics;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::{Error, Result};

/// Runs the scheduler and the node lifecycle controller until `shutdown` is cancelled. The
/// broker may come up later (the client connects on first use); a malformed address or a
/// taken metrics port fails at once.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let broker = Broker::connect_lazy(&config.broker.server).map_err(Error::Connect)?;
    let metrics = Metrics::new();
    let metrics_task = config
        .metrics
        .serve(&metrics, &shutdown)
        .await
        .map_err(Error::Metrics)?;
    tracing::info!(
        server = %config.broker.server,
        workers = config.workers,
        grace = ?config.node_monitor_grace_period,
        "scheduler starting"
    );
    // One pod informer for both controllers: every pod event is received and decoded once.
    // Neither reads more of a finished pod than its node and phase: those are cached slim.
    let mut pods = Informer::for_broker(&broker, Kind::Pod, Selector::all())
        .with_transform(Object::slim_if_finished_pod);
    let lifecycle = lifecycle::run(
        broker.clone(),
        &mut pods,
        config.node_monitor_grace_period,
        &metrics,
        shutdown.clone(),
    );
    tokio::join!(
        scheduler::run(broker, pods, config.workers, &metrics, shutdown.clone()),
        lifecycle,
    );
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    tracing::info!("scheduler stopped");
    Ok(())
}
