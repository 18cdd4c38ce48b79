//! bosun's watch-broker: the only process that talks to etcd.
//!
//! It serves the `Objects` gRPC API: create / get / list / update / update-status / delete
//! ([`store`], one etcd txn per write, optimistic concurrency on resourceVersion = etcd
//! mod_revision) and watch ([`watch`], one etcd watch per kind fanned out to any number of
//! subscribers from an in-memory window), and `TriggerCronJob` ([`trigger`]: a CronJob run
//! now, once per idempotency key), and `Shards` ([`shards`]: the memberships of scaled-out
//! controller kinds on etcd leases; every write carrying `bosun-fence` is checked against its
//! shard's owner key in the write's own txn). It keeps no state of its own, so several brokers
//! can serve one etcd. [`run`] is what `bosun-broker` and `bosun up` call.

pub mod batch;
pub mod config;
pub mod error;
pub mod logs;
pub mod metrics;
pub mod patch;
pub mod recent;
pub mod service;
pub mod shards;
pub mod store;
pub mod trigger;
pub mod watch;

use std::net::SocketAddr;

use bosun_api::v1::logs_server::LogsServer;
use bosun_api::v1::objects_server::ObjectsServer;
use bosun_api::v1::shards_server::ShardsServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::{Error, Result};

/// Largest gRPC message accepted or sent (objects are capped well below it).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Binds `config.listen` and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
    run_with_listener(config, listener, shutdown).await
}

/// The largest etcd response the broker accepts. etcd batches many events into one watch
/// response and a list of a whole kind into one range response; tonic's 4 MiB default is
/// far too small for either under load.
const ETCD_MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// Serves on an already-bound `listener` (tests bind `127.0.0.1:0` first) until `shutdown`
/// is cancelled; open watch streams are ended with UNAVAILABLE ("resume from revision N").
pub async fn run_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let client = etcd_client::Client::connect(&config.etcd_endpoints, None).await?;
    let registry = bosun_runtime::metrics::Metrics::new();
    let metrics = metrics::BrokerMetrics::new(registry.clone());

    // Bound before anything else starts so a taken port fails fast.
    let metrics_task = config
        .metrics
        .serve(&registry, &shutdown)
        .await
        .map_err(|source| Error::Listen {
            addr: config.metrics.metrics_listen.unwrap_or(config.listen),
            source,
        })?;

    let settings = watch::WatchSettings {
        window_events: config.window_events,
        bookmark_interval: config.bookmark_interval,
        subscriber_buffer_events: config.subscriber_buffer,
    };
    let watch_shutdown = shutdown.child_token();
    let (hubs, hub_tasks) =
        watch::Hubs::start(&client, settings, metrics.clone(), watch_shutdown.clone());
    let store = store::Store::new(
        client
            .kv_client()
            .max_decoding_message_size(ETCD_MAX_MESSAGE_BYTES),
        batch::Limits::for_etcd(config.etcd_max_txn_ops),
        config.max_object_bytes,
        config.write_cache_bytes,
    );
    // Pod logs: forwarded to the node agent running the pod.
    let logs = LogsServer::new(logs::LogsProxy {
        store: store.clone(),
    });
    if config.unsafe_skip_fence_check {
        tracing::warn!(
            "--unsafe-skip-fence-check: bosun-fence headers are NOT checked; writes of replicas that lost their shards are applied (tests only)"
        );
    }
    let shards = ShardsServer::new(shards::ShardService {
        client: client.clone(),
        metrics: metrics.clone(),
        shutdown: watch_shutdown.clone(),
    });
    let service = service::ObjectService {
        store,
        hubs,
        metrics,
        skip_fence_check: config.unsafe_skip_fence_check,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ObjectsServer<service::ObjectService>>()
        .await;

    tracing::info!(addr = ?addr, etcd = ?config.etcd_endpoints, "broker listening");
    let objects = ObjectsServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // Watch events are small writes: without TCP_NODELAY, Nagle's algorithm holds them back
    // behind unacknowledged ones (tens of milliseconds with delayed ACKs).
    let incoming = tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(std::time::Duration::from_secs(60)));
    let result = tonic::transport::Server::builder()
        .trace_fn(request_span)
        .add_service(health_service)
        .add_service(objects)
        .add_service(shards)
        .add_service(logs)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
        .await;

    watch_shutdown.cancel();
    for t in hub_tasks {
        let _ = t.await;
    }
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    tracing::info!("broker stopped");
    result.map_err(Error::from)
}

/// The span of one gRPC request, a child of the caller's trace when the request carries a
/// `traceparent`. The handlers' own spans nest under it: their parent must be set before
/// they are entered, which only a span made here, ahead of the handler, allows.
fn request_span(req: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc.request", path = %req.uri().path());
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        bosun_runtime::telemetry::set_parent_from_traceparent(&span, tp);
    }
    span
}
