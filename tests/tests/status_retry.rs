//! A pod status write is never silently dropped, end to end: real etcd, the real broker
//! (stopped and restarted in-process), one node agent with the process runtime. A pod that
//! finishes while the broker is down has its final status write fail; the agent reports it
//! (`bosun_node_agent_status_write_failures_total`) and writes it once the broker is back.

use std::time::Duration;

use bosun_api::v1::{self, Kind};
use bosun_api::vocab::phase;
use bosun_runtime::client::Broker as Client;
use bosun_tests::{Plane, metric, wait_for};

const WAIT: Duration = Duration::from_secs(30);

/// A pod bound to `node-1` running `script` once.
fn pod_running(script: String) -> v1::Object {
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

/// Waits until pod `waits` is in `want`; returns its status.
async fn wait_phase(client: &Client, want: &str) -> v1::PodStatus {
    wait_for(&format!("pod waits {want}"), WAIT, || async {
        let s = pod_status(client).await;
        if s.phase == want {
            Ok(s)
        } else {
            Err(format!("{s:#?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_write_given_up_while_the_broker_is_down_is_reported_and_written_later() {
    let mut plane = Plane::builder("status-retry")
        .nodes(&["node-1"])
        .start()
        .await;
    let client = plane.client().clone();
    let metrics = plane.node_metrics("node-1");

    // A pod that waits (at most 30 s) for the file `go`, then exits 0.
    client
        .create(pod_running(plane.wait_for_file("go")))
        .await
        .expect("create pod");
    wait_phase(&client, phase::RUNNING).await;

    // The container ends while nobody can take its status.
    plane.broker_mut().stop().await;
    plane.touch("go");
    wait_for(
        "a status write failure reported by node-1's agent",
        WAIT,
        || async {
            let failures = metric(metrics, "bosun_node_agent_status_write_failures_total").await;
            match failures {
                Some(n) if n >= 1.0 => Ok(n),
                other => Err(format!(
                    "bosun_node_agent_status_write_failures_total {other:?}"
                )),
            }
        },
    )
    .await;

    // Back: the write is tried again and lands.
    plane.broker_mut().restart().await;
    let status = wait_phase(&client, phase::SUCCEEDED).await;
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
