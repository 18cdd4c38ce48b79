//! The whole plane end to end: real etcd, the real broker, the real scheduler (with the node
//! lifecycle controller) and the garbage collector in-process, real node agents with the
//! process runtime (in-process, or as the real `bosun-node-agent` binary where a test kills
//! one), and the real `bosun` CLI binary. Pods are NOT pre-bound: the scheduler places them.

use std::path::Path;
use std::time::Duration;

use bosun_api::v1::{self, Kind, Object};
use bosun_runtime::client::{DeleteOptions, Selector};
use bosun_tests::wait_for;

const WAIT: Duration = Duration::from_secs(15);
/// The scheduler's node monitor grace period in these tests.
const GRACE: Duration = Duration::from_millis(1500);
/// The agents' heartbeat interval.
const HEARTBEAT: &str = "200ms";
const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

bosun_tests::file_plane! {
    /// etcd, a broker, the scheduler and the GC, and a place for agents' data.
    /// The shared plane (scheduler with a 1.5 s grace period, gc), with this file's helpers.
}

impl Plane {
    /// Starts the plane with in-process node agents for `nodes` (Ready when it returns).
    async fn start(label: &str, nodes: &[&str]) -> Plane {
        let plane = bosun_tests::Plane::builder(label)
            .scheduler_with(|c| {
                c.node_monitor_grace_period = GRACE;
                c.workers = 4;
            })
            .gc()
            .nodes(nodes)
            .start()
            .await;
        Plane(plane)
    }

    /// Starts the real `bosun-node-agent` binary for node `name` (SIGKILL-able).
    fn agent_process(&self, name: &str) -> tokio::process::Child {
        self.command("bosun-node-agent", name)
            .args(["--name", name])
            .arg("--data-dir")
            .arg(self.dir().join(name))
            .args(["--heartbeat-interval", HEARTBEAT])
            // The default (60 s) status interval: a Ready condition changed by the node
            // lifecycle controller must be re-posted at the next heartbeat, not then.
            .spawn()
            .expect("bosun-node-agent runs")
    }

    async fn node(&self, name: &str) -> v1::Node {
        self.client()
            .get_opt(Kind::Node, "", name)
            .await
            .expect("get node")
            .and_then(|o| o.into_node())
            .unwrap_or_default()
    }

    /// Waits until node `name`'s Ready condition is `status`.
    async fn wait_ready_is(&self, name: &str, status: &str) {
        wait_for(&format!("node {name} Ready {status}"), WAIT, || async {
            let node = self.node(name).await;
            match ready(&node) {
                Some(s) if s == status => Ok(()),
                _ => Err(format!("{:#?}", node.status)),
            }
        })
        .await;
    }

    /// Waits until node `name` has (or, with `want` false, has lost) the unreachable taint.
    async fn wait_unreachable(&self, name: &str, want: bool) {
        let what = format!("node {name} tainted unreachable: {want}");
        wait_for(&what, WAIT, || async {
            let node = self.node(name).await;
            if tainted(&node, TAINT_UNREACHABLE) == want {
                Ok(())
            } else {
                Err(format!("{:?}", node.spec.map(|s| s.taints)))
            }
        })
        .await;
    }

    async fn pod(&self, name: &str) -> Option<v1::Pod> {
        self.client()
            .get_opt(Kind::Pod, "default", name)
            .await
            .expect("get pod")
            .and_then(|o| o.into_pod())
    }

    /// Waits until pod `name` is in `phase`, and returns it.
    async fn wait_phase(&self, name: &str, phase: &str) -> v1::Pod {
        wait_for(&format!("pod {name} {phase}"), WAIT, || async {
            match self.pod(name).await {
                Some(p) if phase_of(&p) == phase => Ok(p),
                other => Err(format!("{other:#?}")),
            }
        })
        .await
    }

    /// Waits until pod `name` is gone.
    async fn wait_gone(&self, name: &str) {
        wait_for(&format!("pod {name} gone"), WAIT, || async {
            self.pod(name).await.is_none()
        })
        .await;
    }

    /// Deletes every pod (the agents stop their containers) and waits until all are gone.
    async fn delete_all_pods(&self) {
        let pods = self
            .client()
            .list(Kind::Pod, &Selector::all())
            .await
            .expect("list pods");
        for p in pods.items {
            let name = p.meta().map(|m| m.name.clone()).unwrap_or_default();
            let _ = self
                .client()
                .delete(Kind::Pod, "default", &name, DeleteOptions::default())
                .await;
        }
        wait_for("every pod gone", WAIT, || async {
            let left = self
                .client()
                .list(Kind::Pod, &Selector::all())
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            if left == 0 {
                Ok(())
            } else {
                Err(format!("{left} pod(s)"))
            }
        })
        .await;
    }

    async fn create(&self, pod: v1::Pod) {
        self.client()
            .create(Object::from(pod))
            .await
            .expect("create pod");
    }
}

fn ready(node: &v1::Node) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready")
        .map(|c| c.status.clone())
}

fn tainted(node: &v1::Node, key: &str) -> bool {
    node.spec
        .as_ref()
        .is_some_and(|s| s.taints.iter().any(|t| t.key == key))
}

fn phase_of(pod: &v1::Pod) -> &str {
    pod.status.as_ref().map_or("", |s| s.phase.as_str())
}

fn node_of(pod: &v1::Pod) -> String {
    pod.spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn container_id(pod: &v1::Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.first())
        .map(|c| c.container_id.clone())
        .unwrap_or_default()
}

/// A script that runs until SIGTERM (at most a minute, so no test leaves it behind), then
/// writes `<marker>` (when given) and exits 0.
fn until_term(marker: Option<&Path>) -> String {
    let on_term = match marker {
        Some(m) => format!("echo terminated > {}; exit 0", m.display()),
        None => "exit 0".into(),
    };
    format!("trap '{on_term}' TERM; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done")
}

/// An unbound pod running `sh -c script`, with a 2 s grace period.
fn pod(name: &str, script: &str) -> v1::Pod {
    v1::Pod {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(Box::new(v1::PodSpec {
            restart_policy: "Never".into(),
            termination_grace_period_seconds: Some(2),
            containers: vec![v1::Container {
                name: "main".into(),
                image: "busybox".into(),
                command: vec!["sh".into(), "-c".into(), script.into()],
                ..Default::default()
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn with_node_selector(mut p: v1::Pod, key: &str, value: &str) -> v1::Pod {
    if let Some(s) = p.spec.as_mut() {
        s.node_selector.insert(key.into(), value.into());
    }
    p
}

fn tolerating(mut p: v1::Pod, key: &str, value: &str, effect: &str) -> v1::Pod {
    if let Some(s) = p.spec.as_mut() {
        s.tolerations.push(v1::Toleration {
            key: key.into(),
            operator: "Equal".into(),
            value: value.into(),
            effect: effect.into(),
            ..Default::default()
        });
    }
    p
}

#[tokio::test]
async fn an_applied_pod_is_scheduled_runs_succeeds_and_its_logs_are_readable() {
    let plane = Plane::start("apply", &["node-1", "node-2", "node-3"]).await;
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello\nspec:\n  restartPolicy: Never\n  containers:\n  - name: hello\n    image: busybox\n    command: [sh, -c, 'echo hello from the plane']\n";
    let out = plane
        .bosun()
        .run_with_stdin(&["apply", "-f", "-"], Some(manifest))
        .await;
    assert_eq!(out.code, 0, "{out:?}");

    let pod = plane.wait_phase("hello", "Succeeded").await;
    let node = node_of(&pod);
    assert!(node.starts_with("node-"), "bound to {node:?}");
    let logs = plane.bosun().run(&["logs", "hello"]).await;
    assert_eq!(logs.code, 0, "{logs:?}");
    assert_eq!(logs.stdout, "hello from the plane\n");
    let wide = plane.bosun().run(&["get", "pods", "-o", "wide"]).await;
    assert_eq!(wide.code, 0, "{wide:?}");
    let line = wide
        .stdout
        .lines()
        .find(|l| l.starts_with("hello"))
        .unwrap_or_else(|| panic!("no hello row in\n{}", wide.stdout));
    assert!(line.contains(&node) && line.contains("Completed"), "{line}");
}

#[tokio::test]
async fn a_node_selector_picks_the_labelled_node_and_one_matching_nothing_stays_pending() {
    let plane = Plane::start("selector", &["node-1", "node-2", "node-3"]).await;
    let out = plane
        .bosun()
        .run(&["label", "nodes", "node-2", "disk=ssd"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");

    for i in 0..3 {
        plane
            .create(with_node_selector(
                pod(&format!("ssd-{i}"), "true"),
                "disk",
                "ssd",
            ))
            .await;
    }
    plane
        .create(with_node_selector(pod("nowhere", "true"), "disk", "tape"))
        .await;
    for i in 0..3 {
        let p = plane.wait_phase(&format!("ssd-{i}"), "Succeeded").await;
        assert_eq!(node_of(&p), "node-2");
    }
    let (p, status) = wait_for("pod nowhere unschedulable", WAIT, || async {
        let p = plane.pod("nowhere").await.unwrap_or_default();
        let status = p.status.clone().unwrap_or_default();
        let unschedulable = status.conditions.iter().any(|c| {
            c.r#type == "PodScheduled"
                && c.status == "False"
                && c.reason == "Unschedulable"
                && c.message.starts_with("0/3 nodes are available: ")
        });
        if unschedulable {
            Ok((p, status))
        } else {
            Err(format!("{status:#?}"))
        }
    })
    .await;
    assert_eq!(node_of(&p), "");
    assert!(
        matches!(status.phase.as_str(), "" | "Pending"),
        "{status:?}"
    );
    // `bosun get pods` calls it Pending, as kubectl does.
    let out = plane.bosun().run(&["get", "pod", "nowhere"]).await;
    assert!(out.stdout.contains("Pending"), "{out:?}");
}

#[tokio::test]
async fn a_cordoned_node_gets_none_of_the_new_pods() {
    let plane = Plane::start("cordon", &["node-1", "node-2", "node-3"]).await;
    let out = plane.bosun().run(&["cordon", "node-1"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    for i in 0..6 {
        plane.create(pod(&format!("p-{i}"), "true")).await;
    }
    for i in 0..6 {
        let p = plane.wait_phase(&format!("p-{i}"), "Succeeded").await;
        assert_ne!(node_of(&p), "node-1", "p-{i} landed on the cordoned node");
    }
}

#[tokio::test]
async fn a_no_execute_taint_evicts_a_running_pod_and_keeps_a_tolerating_one() {
    let plane = Plane::start("noexecute", &["node-1", "node-2"]).await;
    let host = "kubernetes.io/hostname";
    let marker = plane.dir().join("evicted-terminated");
    plane
        .create(with_node_selector(
            pod("plain", &until_term(Some(&marker))),
            host,
            "node-1",
        ))
        .await;
    plane
        .create(tolerating(
            with_node_selector(pod("tolerant", &until_term(None)), host, "node-1"),
            "k",
            "v",
            "NoExecute",
        ))
        .await;
    plane.wait_phase("plain", "Running").await;
    let tolerant = plane.wait_phase("tolerant", "Running").await;

    let out = plane
        .bosun()
        .run(&["taint", "nodes", "node-1", "k=v:NoExecute"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    plane.wait_gone("plain").await;
    assert!(marker.exists(), "the evicted pod did not get SIGTERM");
    let still = plane
        .pod("tolerant")
        .await
        .expect("the tolerating pod stays");
    assert_eq!(phase_of(&still), "Running");
    assert_eq!(container_id(&still), container_id(&tolerant));
    assert!(
        still
            .metadata
            .unwrap_or_default()
            .deletion_timestamp
            .is_empty(),
        "the tolerating pod is being deleted"
    );
    plane.delete_all_pods().await;
}

#[tokio::test]
async fn a_killed_agent_makes_its_node_unreachable_and_a_restarted_one_brings_it_back() {
    let plane = Plane::start("kill", &[]).await;
    let mut agent = plane.agent_process("node-k");
    plane.wait_ready_is("node-k", "True").await;
    plane.create(pod("victim", &until_term(None))).await;
    let running = plane.wait_phase("victim", "Running").await;
    assert_eq!(node_of(&running), "node-k");

    agent.kill().await.expect("SIGKILL the agent");
    plane.wait_ready_is("node-k", "Unknown").await;
    plane.wait_unreachable("node-k", true).await;
    // No toleration for the unreachable taint: evicted at once.
    plane.wait_gone("victim").await;

    let _agent = plane.agent_process("node-k");
    plane.wait_ready_is("node-k", "True").await;
    plane.wait_unreachable("node-k", false).await;
}

/// Sends `signal` (`STOP`, `CONT`) to the agent process.
async fn signal(agent: &tokio::process::Child, signal: &str) {
    let pid = agent.id().expect("the agent runs").to_string();
    let status = tokio::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// The pod's Ready condition status ("" when it has none).
fn pod_ready(pod: &v1::Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == "Ready"))
        .map_or(String::new(), |c| c.status.clone())
}

#[tokio::test]
async fn a_paused_agent_re_posts_ready_when_it_resumes_and_its_node_loses_the_taint() {
    let plane = Plane::start("pause", &[]).await;
    let agent = plane.agent_process("node-p");
    plane.wait_ready_is("node-p", "True").await;
    // A pod that stays on an unreachable node (a daemon pod would).
    let mut stays = pod("stays", &until_term(None));
    stays.spec.as_mut().unwrap().tolerations = vec![v1::Toleration {
        key: TAINT_UNREACHABLE.into(),
        operator: "Exists".into(),
        effect: "NoExecute".into(),
        ..Default::default()
    }];
    plane.create(stays).await;
    let ready_is = |want: &'static str| {
        let plane = &plane;
        async move {
            wait_for(&format!("pod stays Ready={want}"), WAIT, || async {
                match plane.pod("stays").await {
                    Some(p) if pod_ready(&p) == want => Ok(()),
                    other => Err(format!("{other:#?}")),
                }
            })
            .await
        }
    };
    ready_is("True").await;

    signal(&agent, "STOP").await;
    plane.wait_ready_is("node-p", "Unknown").await;
    plane.wait_unreachable("node-p", true).await;
    // Nobody vouches for the pod: the lifecycle controller marks it not ready.
    ready_is("False").await;

    // The same process resumes: it does not register again, its heartbeat sees the stored
    // Ready=Unknown and posts Ready=True; its pod's worker sees the stored Ready=False and
    // writes its own view again.
    signal(&agent, "CONT").await;
    plane.wait_ready_is("node-p", "True").await;
    plane.wait_unreachable("node-p", false).await;
    ready_is("True").await;
    assert_eq!(node_of(&plane.pod("stays").await.unwrap()), "node-p");
    plane.delete_all_pods().await;
}

#[tokio::test]
async fn a_restarted_agent_keeps_its_running_pods() {
    let plane = Plane::start("restart", &[]).await;
    let mut agent = plane.agent_process("node-r");
    plane.wait_ready_is("node-r", "True").await;
    let starts = plane.dir().join("starts");
    let script = format!("echo started >> {}; {}", starts.display(), until_term(None));
    plane.create(pod("keeper", &script)).await;
    let before = plane.wait_phase("keeper", "Running").await;
    let id = container_id(&before);
    assert!(!id.is_empty());

    agent.kill().await.expect("SIGKILL the agent");
    let lease_before = lease_renew_time(&plane, "node-r").await;
    let _agent = plane.agent_process("node-r");
    // The new agent is up once it renews the Lease; let it renew a few times more so it has
    // certainly looked at the pod.
    let mut seen = lease_before;
    let end = tokio::time::Instant::now() + WAIT;
    for n in 1..=3 {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        let what = format!("renewal {n} of node-r's lease by the new agent");
        seen = wait_for(&what, left, || async {
            let now = lease_renew_time(&plane, "node-r").await;
            if now != seen { Ok(now) } else { Err(now) }
        })
        .await;
    }
    let after = plane.wait_phase("keeper", "Running").await;
    assert_eq!(container_id(&after), id, "the container was replaced");
    let restarts = after.status.unwrap_or_default().container_statuses[0].restart_count;
    assert_eq!(restarts, 0);
    let text = std::fs::read_to_string(&starts).expect("starts file");
    assert_eq!(text.lines().count(), 1, "started more than once: {text:?}");
    plane.delete_all_pods().await;
}

async fn lease_renew_time(plane: &Plane, node: &str) -> String {
    plane
        .client()
        .get_opt(Kind::Lease, "kube-node-lease", node)
        .await
        .expect("get lease")
        .and_then(|o| o.into_lease())
        .and_then(|l| l.spec)
        .map(|s| s.renew_time)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_foreground_deleted_owner_waits_for_its_running_pods_to_terminate() {
    let plane = Plane::start("foreground", &["node-1", "node-2"]).await;
    let owner = plane
        .client()
        .create(bosun_tests::job("default", "owner"))
        .await
        .expect("create owner");
    let owner_uid = owner.meta().map(|m| m.uid.clone()).unwrap_or_default();
    let mut markers = Vec::new();
    for i in 0..2 {
        let marker = plane.dir().join(format!("owned-{i}-terminated"));
        let mut p = pod(&format!("owned-{i}"), &until_term(Some(&marker)));
        p.metadata
            .get_or_insert_with(Default::default)
            .owner_references
            .push(v1::OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: "owner".into(),
                uid: owner_uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            });
        plane.create(p).await;
        markers.push(marker);
    }
    for i in 0..2 {
        plane.wait_phase(&format!("owned-{i}"), "Running").await;
    }

    plane
        .client()
        .delete(
            Kind::Job,
            "default",
            "owner",
            DeleteOptions {
                propagation_policy: Some("Foreground".into()),
                ..Default::default()
            },
        )
        .await
        .expect("delete owner");
    let get_owner = || async {
        plane
            .client()
            .get_opt(Kind::Job, "default", "owner")
            .await
            .expect("get owner")
    };
    // While any of its pods exists, the owner is there, marked.
    wait_for("every pod of the owner gone", WAIT, || async {
        let pods = plane
            .client()
            .list(Kind::Pod, &Selector::all())
            .await
            .expect("list pods")
            .items
            .len();
        let owner = get_owner().await;
        if pods == 0 {
            return Ok(());
        }
        let owner = owner.expect("the owner went before its pods");
        assert!(
            owner
                .meta()
                .is_some_and(|m| !m.deletion_timestamp.is_empty()),
            "the owner is not marked for deletion"
        );
        Err(format!("{pods} pod(s) left"))
    })
    .await;
    for m in &markers {
        assert!(m.exists(), "{} missing: SIGTERM not honoured", m.display());
    }
    wait_for("the owner gone", WAIT, || async {
        get_owner().await.is_none()
    })
    .await;
}
