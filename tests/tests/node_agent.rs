//! End-to-end tests of the node agent: real etcd, the real broker, the agent started
//! in-process through `bosun_node_agent::run` with the process runtime (sim for the sim
//! test). Pods are created already bound (spec.nodeName set): scheduling is not tested here.

use std::path::Path;
use std::time::{Duration, Instant};

use bosun_api::v1::{self, Kind, Object};
use bosun_node_agent::{Config, RuntimeKind};
use bosun_runtime::client::{Broker as Client, DeleteOptions};
use bosun_tests::{Plane, free_addr, metric, temp_dir, wait_for};

const WAIT: Duration = Duration::from_secs(20);

/// etcd and a broker; each test starts its own agents.
async fn plane() -> Plane {
    Plane::builder("node-agent").start().await
}

/// Node `node`'s agent config: data in `data_dir`, back-offs from 200 ms to 5 s.
fn config(plane: &Plane, node: &str, data_dir: &Path) -> Config {
    let mut c = plane.agent_config(node);
    c.data_dir = Some(data_dir.to_path_buf());
    c.backoff_cap = Duration::from_secs(5);
    c
}

/// A pod bound to `node` running `sh -c script`.
fn pod(name: &str, node: &str, script: Option<&str>, restart_policy: &str) -> Object {
    v1::Pod {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(Box::new(v1::PodSpec {
            node_name: node.into(),
            restart_policy: restart_policy.into(),
            containers: vec![v1::Container {
                name: "main".into(),
                image: "busybox".into(),
                command: match script {
                    Some(s) => vec!["sh".into(), "-c".into(), s.into()],
                    None => vec![],
                },
                ..Default::default()
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
    .into()
}

async fn get_pod(client: &Client, name: &str) -> Option<v1::Pod> {
    client
        .get_opt(Kind::Pod, "default", name)
        .await
        .expect("get pod")
        .and_then(|o| o.into_pod())
}

async fn status(client: &Client, name: &str) -> v1::PodStatus {
    get_pod(client, name)
        .await
        .and_then(|p| p.status)
        .unwrap_or_default()
}

async fn wait_phase(client: &Client, name: &str, phase: &str) -> v1::PodStatus {
    wait_for(&format!("pod {name} {phase}"), WAIT, || async {
        let s = status(client, name).await;
        if s.phase == phase {
            Ok(s)
        } else {
            Err(format!("{s:#?}"))
        }
    })
    .await
}

fn main_status(s: &v1::PodStatus) -> v1::ContainerStatus {
    s.container_statuses.first().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_node_and_its_lease_are_registered_and_the_lease_renews() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let mut c = config(&plane, "n1", &dir);
    c.labels = vec!["zone=a".into()];
    c.taints = vec!["dedicated=batch:NoSchedule".into()];
    let agent = plane.start_agent(c);
    wait_for("lease n1", WAIT, || async {
        plane
            .client()
            .get_opt(Kind::Lease, "kube-node-lease", "n1")
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no lease yet".to_string())
    })
    .await;
    let node = plane
        .client()
        .get(Kind::Node, "", "n1")
        .await
        .expect("node")
        .into_node()
        .expect("a node");
    let labels = node.metadata.clone().unwrap().labels;
    assert_eq!(
        labels.get("kubernetes.io/hostname").map(String::as_str),
        Some("n1")
    );
    assert_eq!(labels.get("zone").map(String::as_str), Some("a"));
    assert_eq!(node.spec.clone().unwrap().taints[0].key, "dedicated");
    let st = node.status.clone().unwrap();
    assert!(
        st.addresses
            .iter()
            .any(|a| a.r#type == "InternalIP" && a.address == "127.0.0.1")
    );
    assert!(st.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port > 0);
    assert!(
        st.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    );
    assert_eq!(
        st.node_info.unwrap().container_runtime_version,
        "process://bosun"
    );

    let renew = |o: Object| o.into_lease().and_then(|l| l.spec).map(|s| s.renew_time);
    let first = renew(
        plane
            .client()
            .get(Kind::Lease, "kube-node-lease", "n1")
            .await
            .unwrap(),
    );
    wait_for("lease n1 renewed", WAIT, || async {
        renew(
            plane
                .client()
                .get(Kind::Lease, "kube-node-lease", "n1")
                .await
                .unwrap(),
        ) != first
    })
    .await;
    agent.stop().await;
}

#[tokio::test]
async fn a_pod_that_prints_and_exits_zero_succeeds_and_its_output_comes_back_through_the_broker() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let agent = plane.start_agent(config(&plane, "n1", &dir));
    plane
        .client()
        .create(pod(
            "hello",
            "n1",
            Some("echo hello from $HOSTNAME"),
            "Never",
        ))
        .await
        .expect("create");
    let s = wait_phase(plane.client(), "hello", "Succeeded").await;
    let c = main_status(&s);
    let term = c.state.unwrap().terminated.expect("terminated");
    assert_eq!((term.exit_code, term.reason.as_str()), (0, "Completed"));
    assert_eq!(s.pod_ip, "127.0.0.1");
    assert!(!s.start_time.is_empty());
    assert!(
        s.conditions
            .iter()
            .any(|c| c.r#type == "Initialized" && c.status == "True")
    );
    let logs = plane.logs("hello").await.expect("logs");
    assert_eq!(logs, "hello from hello\n");

    // kubectl's errors: a missing pod, and one not scheduled yet.
    let err = plane.logs("missing").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    plane
        .client()
        .create(pod("unbound", "", Some("true"), "Never"))
        .await
        .expect("create");
    let err = plane.logs("unbound").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("not scheduled yet"), "{err}");
    agent.stop().await;
}

#[tokio::test]
async fn a_pod_exiting_3_with_restart_policy_never_fails_with_exit_code_3() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let agent = plane.start_agent(config(&plane, "n1", &dir));
    plane
        .client()
        .create(pod("three", "n1", Some("exit 3"), "Never"))
        .await
        .expect("create");
    let s = wait_phase(plane.client(), "three", "Failed").await;
    let term = main_status(&s)
        .state
        .unwrap()
        .terminated
        .expect("terminated");
    assert_eq!((term.exit_code, term.reason.as_str()), (3, "Error"));
    assert_eq!(main_status(&s).restart_count, 0);
    agent.stop().await;
}

#[tokio::test]
async fn on_failure_restarts_with_a_growing_delay_and_a_rising_restart_count() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let agent = plane.start_agent(config(&plane, "n1", &dir));
    plane
        .client()
        .create(pod("crash", "n1", Some("exit 1"), "OnFailure"))
        .await
        .expect("create");
    // When each restart count was first seen.
    let seen: std::cell::RefCell<Vec<Instant>> = Default::default();
    wait_for("pod crash restarted 4 times", WAIT, || async {
        let n = main_status(&status(plane.client(), "crash").await).restart_count as usize;
        let mut seen = seen.borrow_mut();
        while seen.len() < n.min(4) {
            seen.push(Instant::now());
        }
        if seen.len() == 4 {
            Ok(())
        } else {
            Err(format!("restarts seen: {n}"))
        }
    })
    .await;
    let seen = seen.into_inner();
    // 200ms, 400ms, 800ms: the third gap is clearly longer than the first.
    let gap = |i: usize| seen[i + 1] - seen[i];
    assert!(
        gap(2) > gap(0),
        "gaps {:?} {:?} {:?}",
        gap(0),
        gap(1),
        gap(2)
    );
    let s = status(plane.client(), "crash").await;
    assert_eq!(s.phase, "Running");
    let c = main_status(&s);
    assert!(
        c.last_state
            .and_then(|l| l.terminated)
            .is_some_and(|t| t.exit_code == 1)
    );
    agent.stop().await;
}

#[tokio::test]
async fn a_pod_without_a_command_fails_with_no_command() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let agent = plane.start_agent(config(&plane, "n1", &dir));
    plane
        .client()
        .create(pod("nocmd", "n1", None, "Never"))
        .await
        .expect("create");
    let s = wait_phase(plane.client(), "nocmd", "Failed").await;
    assert_eq!(s.reason, "NoCommand");
    assert!(s.message.contains("docker runtime"), "{}", s.message);
    agent.stop().await;
}

#[tokio::test]
async fn deleting_a_running_pod_sends_sigterm_then_the_pod_is_gone() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let agent = plane.start_agent(config(&plane, "n1", &dir));
    let marker = dir.join("got-term");
    let script = format!(
        "trap 'echo TERM > {}; exit 0' TERM; echo up; while true; do sleep 0.05; done",
        marker.display()
    );
    plane
        .client()
        .create(pod("victim", "n1", Some(&script), "Never"))
        .await
        .expect("create");
    wait_phase(plane.client(), "victim", "Running").await;
    let opts = DeleteOptions {
        grace_period_seconds: Some(10),
        ..Default::default()
    };
    let deleted = plane
        .client()
        .delete(Kind::Pod, "default", "victim", opts)
        .await
        .expect("delete");
    assert!(!deleted.deleted, "a bound pod is only marked");
    wait_for("pod victim gone", WAIT, || async {
        get_pod(plane.client(), "victim").await.is_none()
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&marker)
            .expect("the trap ran")
            .trim(),
        "TERM"
    );
    agent.stop().await;
}

#[tokio::test]
async fn a_finished_pod_never_runs_again_and_its_files_go_with_it() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let runs = dir.join("runs");
    let script = format!("echo run >> {}; echo hi", runs.display());
    let agent = plane.start_agent(config(&plane, "n1", &dir.join("data")));
    plane
        .client()
        .create(pod("once", "n1", Some(&script), "Never"))
        .await
        .expect("create");
    wait_phase(plane.client(), "once", "Succeeded").await;
    // Changes after the end reach the agent as events for a finished pod.
    for value in ["a", "b"] {
        let mut obj: Object = get_pod(plane.client(), "once").await.expect("pod").into();
        obj.meta_mut().labels.insert("touched".into(), value.into());
        plane.client().update(obj).await.expect("update labels");
    }
    assert_eq!(plane.logs("once").await.expect("logs"), "hi\n");
    let uid = get_pod(plane.client(), "once")
        .await
        .and_then(|p| p.metadata)
        .expect("metadata")
        .uid;
    let files = dir.join("data").join("pods").join(&uid);
    assert!(files.exists(), "{} holds the logs", files.display());
    plane
        .client()
        .delete(Kind::Pod, "default", "once", DeleteOptions::default())
        .await
        .expect("delete");
    // The agent sees the changes in order, and cleans up once the pod is gone.
    wait_for("the pod's files gone", WAIT, || async { !files.exists() }).await;
    assert_eq!(
        std::fs::read_to_string(&runs).expect("runs"),
        "run\n",
        "started once"
    );
    agent.stop().await;
}

#[tokio::test]
async fn a_restarted_agent_keeps_its_running_pods_without_starting_them_twice() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let go = dir.join("go");
    let runs = dir.join("runs");
    let script = format!(
        "echo started; echo run >> {}; while [ ! -f {} ]; do sleep 0.05; done; echo done",
        runs.display(),
        go.display()
    );
    let agent = plane.start_agent(config(&plane, "n1", &dir.join("data")));
    plane
        .client()
        .create(pod("long", "n1", Some(&script), "Never"))
        .await
        .expect("create");
    let s = wait_phase(plane.client(), "long", "Running").await;
    let id = main_status(&s).container_id;
    agent.stop().await;

    let agent = plane.start_agent(config(&plane, "n1", &dir.join("data")));
    // The new agent serves the pod's logs, so it has taken the pod over.
    wait_for("logs of long served by the new agent", WAIT, || async {
        match plane.logs("long").await {
            Ok(l) if l.contains("started") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    std::fs::write(&go, "").expect("go");
    let s = wait_phase(plane.client(), "long", "Succeeded").await;
    let c = main_status(&s);
    assert_eq!(c.container_id, id, "the same instance finished");
    assert_eq!(c.restart_count, 0);
    assert_eq!(
        std::fs::read_to_string(&runs).expect("runs"),
        "run\n",
        "started once"
    );
    assert_eq!(plane.logs("long").await.expect("logs"), "started\ndone\n");
    agent.stop().await;
}

#[tokio::test]
async fn sim_mode_registers_n_nodes_and_runs_a_pod_for_its_sim_duration() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let mut c = config(&plane, "sim", &dir);
    c.runtime = RuntimeKind::Sim;
    c.sim_nodes = Some(3);
    let agent = plane.start_agent(c);
    wait_for("3 sim nodes", WAIT, || async {
        let nodes = plane
            .client()
            .list(Kind::Node, &bosun_runtime::client::Selector::all())
            .await
            .map_err(|e| e.to_string())?;
        if nodes.items.len() == 3 {
            Ok(())
        } else {
            Err(format!("{} nodes", nodes.items.len()))
        }
    })
    .await;
    let mut p = pod("simmed", "sim-1", None, "Never");
    p.meta_mut()
        .annotations
        .insert("bosun.dev/sim-duration".into(), "300ms".into());
    let created_at = Instant::now();
    plane.client().create(p).await.expect("create");
    let s = wait_phase(plane.client(), "simmed", "Succeeded").await;
    assert!(created_at.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        main_status(&s).state.unwrap().terminated.unwrap().exit_code,
        0
    );
    agent.stop().await;
}

#[tokio::test]
async fn a_pod_that_finishes_at_once_costs_one_status_write() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let mut c = config(&plane, "sim", &dir);
    c.runtime = RuntimeKind::Sim;
    c.sim_nodes = Some(1);
    let metrics = free_addr();
    c.metrics.metrics_listen = Some(metrics);
    let agent = plane.start_agent(c);
    let writes = || metric(metrics, "bosun_node_agent_status_writes_total");
    wait_for("the agent's metrics served", WAIT, writes).await;
    // A zero-duration sim container starts and exits before the first status write. Bound
    // the way the scheduler binds, so the stored status has a condition (PodScheduled) the
    // agent does not compute.
    plane
        .client()
        .create(pod("instant", "", None, "Never"))
        .await
        .expect("create");
    plane
        .client()
        .bind("default", "instant", "", "sim-0")
        .await
        .expect("bind");
    wait_phase(plane.client(), "instant", "Succeeded").await;
    // The worker writes nothing more once the pod is deleted: after that, the count is final.
    plane
        .client()
        .delete(Kind::Pod, "default", "instant", DeleteOptions::default())
        .await
        .expect("delete");
    wait_for("pod instant gone", WAIT, || async {
        get_pod(plane.client(), "instant").await.is_none()
    })
    .await;
    assert_eq!(
        writes().await,
        Some(1.0),
        "one status write for the whole pod"
    );
    agent.stop().await;
}

#[tokio::test]
async fn the_docker_runtime_fails_a_pod_whose_image_is_not_present_with_err_image_never_pull() {
    if let Err(why) = bosun_node_agent::runtime::docker::DockerRuntime::reachable().await {
        eprintln!("skipped: no docker engine is reachable ({why})");
        return;
    }
    let plane = plane().await;
    let dir = temp_dir("agent");
    let mut c = config(&plane, "n1", &dir);
    c.runtime = RuntimeKind::Docker;
    let agent = plane.start_agent(c);
    let mut p = pod("noimage", "n1", Some("true"), "Never");
    if let Some(spec) = p.as_pod().and_then(|p| p.spec.clone()) {
        let mut spec = spec;
        spec.containers[0].image = "bosun.invalid/no-such-image:never".into();
        // Only Never refuses a missing image; IfNotPresent (this tag's default) pulls it.
        spec.containers[0].image_pull_policy = "Never".into();
        let mut pod = p.into_pod().expect("pod");
        pod.spec = Some(spec);
        p = pod.into();
    }
    plane.client().create(p).await.expect("create");
    let s = wait_phase(plane.client(), "noimage", "Failed").await;
    assert_eq!(s.reason, "ErrImageNeverPull");
    assert!(s.message.contains("is not present"), "{}", s.message);
    agent.stop().await;
}

#[tokio::test]
async fn a_log_past_its_cap_is_rotated_and_logs_still_show_the_latest_output() {
    let plane = plane().await;
    let dir = temp_dir("agent");
    let mut c = config(&plane, "n1", &dir);
    c.log_max_bytes = 1000;
    let agent = plane.start_agent(c);
    // ≈ 2.7 KB at once, then quiet long enough for the agent's cap check (once a second).
    let script = "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done; \
                  sleep 2.5; echo line-end";
    plane
        .client()
        .create(pod("chatty", "n1", Some(script), "Never"))
        .await
        .expect("create");
    wait_phase(plane.client(), "chatty", "Succeeded").await;
    let logs = plane.logs("chatty").await.expect("logs");
    assert!(
        logs.ends_with("line-299\nline-end\n"),
        "the output before and after the rotation is kept: {logs:?}"
    );
    let rotated = std::fs::read_dir(dir.join("pods"))
        .unwrap()
        .flatten()
        .any(|pod| pod.path().join("main/current.log.1").exists());
    assert!(rotated, "the log passed its cap and was rotated");
    agent.stop().await;
}
