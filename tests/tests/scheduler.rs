//! The scheduler and the node lifecycle controller (`bosun_scheduler::run`, in-process)
//! against a real broker over a real etcd. Nodes are written directly by the test, which also
//! renews their Leases (or stops renewing them) in place of a node agent.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_api::Kind;
use bosun_api::vocab::{effect, status, taint};
use bosun_runtime::client::{Broker as Client, Selector};
use bosun_tests::{v1, wait_for};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);
/// The lease grace period the tests run with.
const GRACE: Duration = Duration::from_millis(1500);

/// etcd, a broker, the scheduler, and a heartbeat loop for the nodes in `alive`.
struct Plane {
    plane: bosun_tests::Plane,
    alive: Arc<Mutex<HashSet<String>>>,
}

impl std::ops::Deref for Plane {
    type Target = bosun_tests::Plane;
    fn deref(&self) -> &bosun_tests::Plane {
        &self.plane
    }
}

impl Plane {
    async fn start() -> Plane {
        let plane = bosun_tests::Plane::builder("scheduler")
            .scheduler_with(|c| {
                c.node_monitor_grace_period = GRACE;
                c.workers = 4;
            })
            .start()
            .await;
        let alive: Arc<Mutex<HashSet<String>>> = Arc::default();
        tokio::spawn(heartbeat(
            plane.client().clone(),
            alive.clone(),
            plane.shutdown_token(),
        ));
        Plane { plane, alive }
    }

    /// Creates a Ready node with `cpu` allocatable, labels and taints, and keeps its lease
    /// fresh.
    async fn node(&self, name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)], cpu: &str) {
        self.alive.lock().unwrap().insert(name.to_string());
        let node = v1::Node {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            spec: Some(v1::NodeSpec {
                taints: taints
                    .iter()
                    .map(|(k, e)| v1::Taint {
                        key: k.to_string(),
                        effect: e.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            status: Some(v1::NodeStatus {
                allocatable: [
                    ("cpu".to_string(), cpu.to_string()),
                    ("memory".to_string(), "8Gi".to_string()),
                    ("pods".to_string(), "110".to_string()),
                ]
                .into(),
                conditions: vec![ready("True")],
                ..Default::default()
            }),
            ..Default::default()
        };
        self.client()
            .create(node.into())
            .await
            .expect("create node");
    }

    async fn pod(&self, pod: v1::Pod) -> v1::Pod {
        let created = self.client().create(pod.into()).await.expect("create pod");
        created.into_pod().expect("pod")
    }

    async fn get_pod(&self, name: &str) -> Option<v1::Pod> {
        let obj = self
            .client()
            .get_opt(Kind::Pod, "default", name)
            .await
            .expect("get");
        obj.and_then(|o| o.into_pod())
    }

    async fn get_node(&self, name: &str) -> v1::Node {
        let obj = self
            .client()
            .get(Kind::Node, "", name)
            .await
            .expect("get node");
        obj.into_node().expect("node")
    }

    /// Waits until the pod is bound and returns its node.
    async fn bound(&self, name: &str) -> String {
        wait_for(&format!("pod {name} bound"), WAIT, || async {
            let pod = self.get_pod(name).await;
            match pod.as_ref().and_then(|p| p.spec.as_ref()) {
                Some(s) if !s.node_name.is_empty() => Ok(s.node_name.clone()),
                _ => Err(format!("{:#?}", pod.and_then(|p| p.status))),
            }
        })
        .await
    }

    /// Waits until the pod's PodScheduled=False message is `message`.
    async fn unschedulable(&self, name: &str, message: &str) {
        let what = format!("pod {name} PodScheduled False Unschedulable {message:?}");
        wait_for(&what, WAIT, || async {
            let pod = self.get_pod(name).await.expect("pod");
            match pod_scheduled(&pod) {
                Some(c)
                    if c.status == status::FALSE
                        && c.reason == "Unschedulable"
                        && c.message == message =>
                {
                    Ok(())
                }
                Some(c) => Err(format!("{} {} {}", c.status, c.reason, c.message)),
                None => Err("no PodScheduled condition".into()),
            }
        })
        .await;
        let spec = self
            .get_pod(name)
            .await
            .and_then(|p| p.spec)
            .unwrap_or_default();
        assert_eq!(spec.node_name, "", "an unschedulable pod stays unbound");
    }

    /// The events about `name` with `reason`.
    async fn events(&self, name: &str, reason: &str) -> Vec<v1::Event> {
        let list = self
            .client()
            .list(Kind::Event, &Selector::namespace("default"))
            .await
            .expect("list events");
        list.items
            .into_iter()
            .filter_map(|o| o.into_event())
            .filter(|e| {
                e.reason == reason && e.involved_object.as_ref().is_some_and(|r| r.name == name)
            })
            .collect()
    }
}

fn ready(status: &str) -> v1::Condition {
    v1::Condition {
        r#type: "Ready".into(),
        status: status.into(),
        reason: "KubeletReady".into(),
        ..Default::default()
    }
}

fn pod_scheduled(pod: &v1::Pod) -> Option<&v1::Condition> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == "PodScheduled")
}

/// Renews the lease of every node in `alive` every 200 ms, like a node agent.
async fn heartbeat(
    client: Client,
    alive: Arc<Mutex<HashSet<String>>>,
    shutdown: CancellationToken,
) {
    loop {
        let names: Vec<String> = alive.lock().unwrap().iter().cloned().collect();
        for name in names {
            let now = chrono_now();
            let lease = v1::Lease {
                metadata: Some(v1::ObjectMeta {
                    name: name.clone(),
                    namespace: "kube-node-lease".into(),
                    ..Default::default()
                }),
                spec: Some(v1::LeaseSpec {
                    holder_identity: Some(name.clone()),
                    lease_duration_seconds: Some(40),
                    renew_time: now,
                    ..Default::default()
                }),
                ..Default::default()
            };
            // Create it, or overwrite it unconditionally (no resourceVersion).
            if let Err(e) = client.create(lease.clone().into()).await
                && e.is_already_exists()
            {
                let _ = client.update(lease.into()).await;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

fn chrono_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Any string that changes on every renewal is a heartbeat to the controller.
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn pod(name: &str) -> v1::Pod {
    bosun_tests::pod("default", name).into_pod().expect("pod")
}

fn with_cpu(mut p: v1::Pod, cpu: &str) -> v1::Pod {
    let spec = p.spec.get_or_insert_with(Default::default);
    spec.containers[0].resources = Some(v1::ResourceRequirements {
        requests: [("cpu".to_string(), cpu.to_string())].into(),
        ..Default::default()
    });
    p
}

fn toleration(key: &str, effect: &str, seconds: Option<i64>) -> v1::Toleration {
    v1::Toleration {
        key: key.into(),
        operator: "Exists".into(),
        effect: effect.into(),
        toleration_seconds: seconds,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_pending_pod_is_bound_to_a_node_with_a_scheduled_event() {
    let plane = Plane::start().await;
    plane.node("n1", &[], &[], "4").await;
    plane.pod(pod("hello")).await;
    assert_eq!(plane.bound("hello").await, "n1");
    let pod = plane.get_pod("hello").await.unwrap();
    assert_eq!(pod_scheduled(&pod).map(|c| c.status.as_str()), Some("True"));
    let events = wait_for("a Scheduled event about hello", WAIT, || async {
        Some(plane.events("hello", "Scheduled").await).filter(|e| !e.is_empty())
    })
    .await;
    let event = &events[0];
    assert_eq!(event.message, "Successfully assigned default/hello to n1");
    assert_eq!(
        event.source.as_ref().unwrap().component,
        "default-scheduler"
    );
}

#[tokio::test]
async fn a_node_selector_pod_waits_with_the_kubernetes_message_until_a_matching_node_appears() {
    let plane = Plane::start().await;
    plane.node("n1", &[("disk", "hdd")], &[], "4").await;
    plane.node("n2", &[], &[], "4").await;
    plane
        .node(
            "master",
            &[("disk", "ssd")],
            &[("node-role.kubernetes.io/master", "NoSchedule")],
            "4",
        )
        .await;

    // A selector some node matches lands only there.
    let mut hdd = pod("hdd");
    hdd.spec.as_mut().unwrap().node_selector = [("disk".to_string(), "hdd".to_string())].into();
    plane.pod(hdd).await;
    assert_eq!(plane.bound("hdd").await, "n1");

    // One no schedulable node matches stays Pending with Kubernetes' message and event.
    let mut ssd = pod("ssd");
    ssd.spec.as_mut().unwrap().node_selector = [("disk".to_string(), "ssd".to_string())].into();
    plane.pod(ssd).await;
    let message = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 2 node(s) didn't match Pod's node affinity/selector.";
    plane.unschedulable("ssd", message).await;
    wait_for("a FailedScheduling Warning about ssd", WAIT, || async {
        let events = plane.events("ssd", "FailedScheduling").await;
        if events
            .iter()
            .any(|e| e.message == message && e.r#type == "Warning")
        {
            Ok(())
        } else {
            Err(format!("{events:#?}"))
        }
    })
    .await;

    // A matching node appears: the pod is scheduled there at once (not after its back-off).
    plane.node("fast", &[("disk", "ssd")], &[], "4").await;
    assert_eq!(plane.bound("ssd").await, "fast");
}

#[tokio::test]
async fn taints_cordons_and_cpu_requests_steer_pods() {
    let plane = Plane::start().await;
    plane
        .node("tainted", &[], &[("dedicated", "NoSchedule")], "8")
        .await;
    plane.node("small", &[], &[], "1").await;
    plane.node("cordoned", &[], &[], "8").await;
    let mut node = plane.get_node("cordoned").await;
    node.spec.get_or_insert_with(Default::default).unschedulable = true;
    plane.client().update(node.into()).await.expect("cordon");
    // The lifecycle controller taints the cordoned node as Kubernetes does.
    wait_for("node cordoned tainted unschedulable", WAIT, || async {
        let taints = plane
            .get_node("cordoned")
            .await
            .spec
            .unwrap_or_default()
            .taints;
        if taints
            .iter()
            .any(|t| t.key == taint::UNSCHEDULABLE && t.effect == effect::NO_SCHEDULE)
        {
            Ok(())
        } else {
            Err(format!("taints {taints:?}"))
        }
    })
    .await;

    // Plain pods avoid the tainted and the cordoned node.
    for i in 0..4 {
        plane.pod(pod(&format!("plain-{i}"))).await;
    }
    for i in 0..4 {
        assert_eq!(plane.bound(&format!("plain-{i}")).await, "small");
    }
    // A tolerating pod may use the tainted node; with 2 cpu it must.
    let mut tolerating = with_cpu(pod("tolerating"), "2");
    tolerating.spec.as_mut().unwrap().tolerations =
        vec![toleration("dedicated", "NoSchedule", None)];
    plane.pod(tolerating).await;
    assert_eq!(plane.bound("tolerating").await, "tainted");
    // Too much cpu for the one node it may use.
    plane.pod(with_cpu(pod("big"), "2")).await;
    plane
        .unschedulable(
            "big",
            "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: }, 1 node(s) were unschedulable.",
        )
        .await;
}

#[tokio::test]
async fn a_silent_node_turns_unknown_evicts_pods_that_do_not_tolerate_it_and_recovers() {
    let plane = Plane::start().await;
    plane.node("n1", &[], &[], "4").await;
    plane.pod(pod("plain")).await;
    let mut forever = pod("forever");
    forever.spec.as_mut().unwrap().tolerations = vec![toleration(
        "node.kubernetes.io/unreachable",
        "NoExecute",
        None,
    )];
    plane.pod(forever).await;
    let mut briefly = pod("briefly");
    briefly.spec.as_mut().unwrap().tolerations = vec![toleration(
        "node.kubernetes.io/unreachable",
        "NoExecute",
        Some(2),
    )];
    plane.pod(briefly).await;
    for name in ["plain", "forever", "briefly"] {
        assert_eq!(plane.bound(name).await, "n1");
    }

    // The agent goes silent.
    plane.alive.lock().unwrap().remove("n1");
    wait_for("node n1 Unknown and tainted unreachable", WAIT, || async {
        let node = plane.get_node("n1").await;
        let status = node.status.clone().unwrap_or_default();
        let unknown = status.conditions.iter().any(|c| {
            c.r#type == "Ready"
                && c.status == "Unknown"
                && c.reason == "NodeStatusUnknown"
                && c.message == "Kubelet stopped posting node status."
        });
        let taints = node.spec.unwrap_or_default().taints;
        let tainted = taints.iter().any(|t| {
            t.key == "node.kubernetes.io/unreachable"
                && t.effect == "NoExecute"
                && !t.time_added.is_empty()
        });
        if unknown && tainted {
            Ok(())
        } else {
            Err(format!("{:#?}, taints {taints:?}", status.conditions))
        }
    })
    .await;
    // The pod without a toleration goes at once (grace 0: nobody is there to stop it).
    wait_for("pod plain gone", WAIT, || async {
        plane.get_pod("plain").await.is_none()
    })
    .await;
    wait_for("a TaintManagerEviction event about plain", WAIT, || async {
        plane
            .events("plain", "TaintManagerEviction")
            .await
            .iter()
            .any(|e| e.message == "Marking for deletion Pod default/plain")
    })
    .await;
    // The one tolerating for 2 s goes after that; the one tolerating forever stays.
    wait_for("pod briefly gone", WAIT, || async {
        plane.get_pod("briefly").await.is_none()
    })
    .await;
    let forever = plane
        .get_pod("forever")
        .await
        .expect("a tolerating pod stays");
    assert_eq!(forever.spec.unwrap().node_name, "n1");

    // The agent comes back and reports Ready: the taint goes.
    plane.alive.lock().unwrap().insert("n1".into());
    let mut node = plane.get_node("n1").await;
    let status = node.status.get_or_insert_with(Default::default);
    status.conditions.retain(|c| c.r#type != "Ready");
    status.conditions.push(ready("True"));
    plane
        .client()
        .update_status(node.into())
        .await
        .expect("ready again");
    wait_for("node n1 untainted", WAIT, || async {
        let taints = plane.get_node("n1").await.spec.unwrap_or_default().taints;
        if taints.is_empty() {
            Ok(())
        } else {
            Err(format!("taints {taints:?}"))
        }
    })
    .await;
    // New pods land there again.
    plane.pod(pod("after")).await;
    assert_eq!(plane.bound("after").await, "n1");
}
