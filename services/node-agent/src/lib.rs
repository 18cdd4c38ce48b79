//! bosun's node agent (kubelet-like).
//!
//! [`run`] registers the Node ([`node`]), renews its Lease, watches only the pods bound to
//! it (field selector `spec.nodeName`), runs each through a container runtime
//! ([`runtime`]: `process`, `docker` or `sim`) in a per-pod worker ([`pods`]) whose
//! decisions are pure functions ([`plan`]), and serves the containers' output over the
//! `Logs` gRPC API ([`logs`]) on the port it advertises in the Node's daemon endpoints.
//! In sim mode one agent plays many nodes, for tests and benchmarks.

pub mod config;
pub mod error;
pub mod logs;
pub mod node;
pub mod plan;
pub mod pods;
pub mod probe;
pub mod runtime;

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use bosun_api::v1::logs_server::LogsServer;
use bosun_api::v1::{Kind, Object};
use bosun_runtime::client::{Broker, Selector};
use bosun_runtime::controller::{Action, Workers, backoff_on_key_error};
use bosun_runtime::informer::Informer;
use bosun_runtime::queue::{Backoff, WorkQueue};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, RuntimeKind};
pub use error::Error;

/// Runs the agent until `shutdown` is cancelled. Containers keep running when it stops: a
/// restarted agent re-adopts them (unless `pods_die_with_agent`). The config is validated
/// before any port is bound.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    config
        .validate()
        .map_err(|e| Error::Config(e.to_string()))?;
    let nodes = config.node_names();
    let data_dir = std::path::absolute(config.data_dir()).map_err(|source| Error::DataDir {
        path: config.data_dir().display().to_string(),
        source,
    })?;
    if !config.is_sim() {
        std::fs::create_dir_all(&data_dir).map_err(|source| Error::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let registry = bosun_runtime::metrics::Metrics::new();
    let metrics_task = config
        .metrics
        .serve(&registry, &shutdown)
        .await
        .map_err(|source| Error::Listen {
            addr: config.metrics.metrics_listen.unwrap_or(config.listen),
            source,
        })?;
    let broker = Broker::connect_lazy(&config.broker.server)?;

    // Register every node (sim: many at once).
    let registrations = nodes.iter().map(|name| {
        let broker = broker.clone();
        let desired = node::desired_node(&config, name, port);
        async move { node::register(&broker, desired?).await }
    });
    for r in futures::future::join_all(registrations).await {
        r?;
    }
    tracing::info!(nodes = nodes.len(), first = %nodes[0], port, runtime = ?config.runtime, "node agent registered");

    let runtime: Arc<dyn runtime::Runtime> = match (config.is_sim(), config.runtime) {
        (true, _) => Arc::new(runtime::sim::SimRuntime),
        (false, RuntimeKind::Docker) => Arc::new(runtime::docker::DockerRuntime::new(
            data_dir,
            config.log_max_bytes,
            config.backoff_base,
            config.backoff_cap,
        )),
        (false, _) => {
            let process = runtime::process::ProcessRuntime::new(data_dir, config.log_max_bytes);
            Arc::new(if config.pods_die_with_agent {
                process.dying_with_agent()?
            } else {
                process
            })
        }
    };
    let (service_host, service_port) = host_port(&config.broker.server);
    let host_ip = config.advertise_address.to_string();
    let queue: WorkQueue<String> =
        WorkQueue::with_metrics(Backoff::default(), &registry, DISPATCHER);
    let ctx = Arc::new(pods::Ctx {
        broker: broker.clone(),
        runtime: runtime.clone(),
        place: runtime::PodPlace {
            pod_ip: if config.runtime == RuntimeKind::Process && !config.is_sim() {
                "127.0.0.1".to_string()
            } else {
                host_ip.clone()
            },
            host_ip,
            service_host,
            service_port,
        },
        backoff_base: config.backoff_base,
        backoff_cap: config.backoff_cap,
        metrics: pods::AgentMetrics::new(&registry),
        running: Arc::new(Mutex::new(HashSet::new())),
        shutdown: shutdown.clone(),
        dispatch: queue.clone(),
    });

    // Only this node's pods (sim: every bound pod, filtered to ours by the dispatcher; an
    // unbound pod is none of ours, so its creation is not even sent).
    let selector = match nodes.as_slice() {
        [one] => Selector::all().fields(format!("spec.nodeName={one}")),
        _ => Selector::all().fields("spec.nodeName!="),
    };
    // Finished pods are cached slim: they pile up, and only their deletion needs a worker.
    let mut informer = Informer::for_broker(&broker, Kind::Pod, selector)
        .with_transform(Object::slim_if_finished_pod)
        .with_metrics(&registry);
    informer.on_change(bosun_runtime::informer::enqueue_self(queue.clone()));
    let (store, informer_task) = informer.spawn(shutdown.clone());

    let heartbeat = tokio::spawn(node::heartbeat(
        broker.clone(),
        nodes.clone(),
        config.heartbeat_interval,
        config.lease_duration,
        config.node_status_interval,
        shutdown.clone(),
    ));

    let logs = LogsServer::new(logs::LogsService {
        pods: store.clone(),
        runtime,
        running: ctx.running.clone(),
    });
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(logs)
            .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()),
    );

    // The dispatcher, on the runtime's workers: each changed pod key goes to its worker,
    // also once the pod is gone from the cache (`run_by_key`). One worker: a dispatch only
    // hands the pod to its task (microseconds, no await), so more would only contend for
    // the dispatcher's map. The runner calls `dispatch` through a shared context, hence the
    // lock, never contended with one worker.
    let synced = tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = store.wait_until_ready() => true,
    };
    if synced {
        let dispatcher = Arc::new(Mutex::new(pods::Dispatcher::new(ctx, &nodes)));
        let pods = store.clone();
        Workers::new(
            DISPATCHER,
            queue.clone(),
            move |key: &str| pods.get(key),
            &registry,
        )
        .run_by_key(dispatch, backoff_on_key_error, dispatcher, shutdown.clone())
        .await;
    }
    queue.shutdown();

    let _ = informer_task.await;
    let _ = heartbeat.await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    let served = server.await;
    tracing::info!("node agent stopped");
    match served {
        Ok(r) => r.map_err(Error::from),
        Err(_) => Ok(()),
    }
}

/// The dispatcher's name in the reconcile and queue metrics and spans.
const DISPATCHER: &str = "node-agent";

/// Hands one pod key's cached state (`None`: gone) to its worker.
fn dispatch(
    key: &str,
    pod: Option<Arc<Object>>,
    dispatcher: Arc<Mutex<pods::Dispatcher>>,
) -> std::future::Ready<Result<Action, Infallible>> {
    // A dispatch that panicked (caught and counted by the runner) left the map as whole
    // as each of its steps: keep using it.
    dispatcher
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .dispatch(key, pod);
    std::future::ready(Ok(Action::AwaitChange))
}

/// The host and port of a `http://host:port` URL (no port: the broker's default port).
fn host_port(url: &str) -> (String, String) {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => {
            let default_port = bosun_api::vocab::DEFAULT_BROKER_LISTEN
                .rsplit_once(':')
                .map_or("", |(_, port)| port);
            (authority.to_string(), default_port.to_string())
        }
    }
}
