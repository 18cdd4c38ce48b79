//! A pod status write is never silently dropped, end to end: real etcd, the real broker
//! (stopped and restarted in-process), one node agent with the process runtime. A pod that
//! finishes while the broker is down has its final status write fail; the agent reports it
//! (`bosun_node_agent_status_write_failures_total`) and writes it once the broker is back.

use std::time::Duration;

use bosun_api::v1::{self, Kind};
use bosun_api::vocab::phase;
use bosun_runtime::client::Broker as Client;
use bosun_tests::{Broker, Etcd, eventually, free_addr, metric, temp_dir};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// A pod bound to `node-1` that waits (at most 30 s) for the file `go`, then exits 0.
fn pod_waiting_for(go: &str) -> v1::Object {
    let script = format!("for i in $(seq 300); do [ -f {go} ] && exit 0; sleep 0.1; done; exit 1");
    v1::Pod {
        metadata: Some(v1::ObjectMeta {
            name: "waits".into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(Box::new(v1::PodSpec {
            node_name: "node-1".into(),
            restart_policy: "Never".into(),
            containers: vec![v1::Container {
                name: "main".into(),
                image: "busybox".into(),
                command: vec!["sh".into(), "-c".into(), script],
                ..Default::default()
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
    .into()
}

async fn pod_status(client: &Client) -> v1::PodStatus {
    client
        .get_opt(Kind::Pod, "default", "waits")
        .await
        .ok()
        .flatten()
        .and_then(|o| o.into_pod())
        .and_then(|p| p.status)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_write_given_up_while_the_broker_is_down_is_reported_and_written_later() {
    let etcd = Etcd::start().await;
    let mut broker = Broker::start(&etcd).await;
    let client = Client::connect(&broker.url()).await.expect("client");
    let dir = temp_dir("status-retry");
    let metrics = free_addr();
    let mut config = bosun_node_agent::Config::new(&broker.url(), "node-1");
    config.data_dir = Some(dir.join("node"));
    config.heartbeat_interval = Duration::from_millis(200);
    config.metrics_listen = Some(metrics);
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(bosun_node_agent::run(config, shutdown));

    let go = dir.join("go").display().to_string();
    client
        .create(pod_waiting_for(&go))
        .await
        .expect("create pod");
    eventually(WAIT, || async {
        pod_status(&client).await.phase == phase::RUNNING
    })
    .await;

    // The container ends while nobody can take its status.
    broker.stop().await;
    std::fs::write(&go, b"").expect("touch");
    let failures = || async {
        metric(metrics, "bosun_node_agent_status_write_failures_total")
            .await
            .unwrap_or(0.0)
    };
    eventually(WAIT, || async { failures().await >= 1.0 }).await;

    // Back: the write is tried again and lands.
    broker.restart().await;
    eventually(WAIT, || async {
        pod_status(&client).await.phase == phase::SUCCEEDED
    })
    .await;
    let status = pod_status(&client).await;
    let main = status
        .container_statuses
        .first()
        .expect("a container status");
    let code = main
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code);
    assert_eq!(code, Some(0), "{main:#?}");
}
