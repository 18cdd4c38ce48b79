//! A pod's phase from the moment it is created: `Pending` until a node takes it, as in
//! Kubernetes (the real broker binary, the scheduler in-process, the real `bosun` CLI).

use std::time::Duration;

use bosun_tests::{Plane, wait_for};

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: waiting
spec:
  nodeSelector:
    disk: nowhere
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["true"]
"#;

#[tokio::test]
async fn a_pod_no_node_can_take_is_pending_from_its_creation() {
    let mut plane = Plane::builder("pod-phase").broker_process().start().await;
    let bosun = plane.bosun().clone();
    let out = bosun.run_with_stdin(&["apply", "-f", "-"], Some(POD)).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let phase = || async {
        bosun
            .ok(&["get", "pod", "waiting", "-o", "jsonpath={.status.phase}"])
            .await
    };
    assert_eq!(phase().await, "Pending", "as created, before any scheduler");
    let pending = bosun
        .ok(&[
            "get",
            "pods",
            "--field-selector",
            "status.phase=Pending",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(pending, "pod/waiting\n");

    // The scheduler finds no node for it (there is none) and says so; the pod stays Pending.
    plane.add_scheduler();
    let reason = || async {
        bosun
            .ok(&[
                "get",
                "pod",
                "waiting",
                "-o",
                "jsonpath={.status.conditions[0].reason}",
            ])
            .await
    };
    wait_for(
        "pod waiting's condition reason Unschedulable",
        Duration::from_secs(20),
        || async {
            let reason = reason().await;
            if reason == "Unschedulable" {
                Ok(())
            } else {
                Err(format!("reason {reason:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        phase().await,
        "Pending",
        "after the scheduler gave up on it"
    );
    let table = bosun.ok(&["get", "pod", "waiting"]).await;
    assert!(table.contains("Pending"), "{table}");
}
