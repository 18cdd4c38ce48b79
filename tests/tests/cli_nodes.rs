//! The real `bosun` binary on nodes and pods: label, taint, cordon, uncordon, drain, wait
//! and describe, against a real etcd and broker. Node objects are created directly and
//! pods bound by setting spec.nodeName (no scheduler or node agent runs here).

use bosun_tests::{node, pod, v1};

bosun_tests::file_plane! {
    /// The shared plane (etcd and the broker), with this file's helpers.
}

async fn plane() -> Plane {
    Plane(bosun_tests::Plane::builder("cli-nodes").start().await)
}

impl Plane {
    async fn node(&self, name: &str) -> v1::Node {
        self.client()
            .get(v1::Kind::Node, "", name)
            .await
            .expect("node")
            .into_node()
            .expect("a node")
    }

    /// Creates pod `name` bound to `node`, controlled by an owner of `owner_kind` if given.
    async fn bound_pod(&self, name: &str, node: &str, owner_kind: Option<&str>) {
        let mut p = pod("default", name);
        if let Some(v1::object::Object::Pod(inner)) = p.object.as_mut() {
            inner.spec.as_mut().expect("spec").node_name = node.into();
        }
        if let Some(kind) = owner_kind {
            p.meta_mut().owner_references = vec![v1::OwnerReference {
                api_version: "v1".into(),
                kind: kind.into(),
                name: "owner".into(),
                uid: "11111111-1111-4111-8111-111111111111".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }];
        }
        self.client().create(p).await.expect("pod");
    }
}

#[tokio::test]
async fn label_needs_overwrite_to_change_a_value_and_removes_with_a_dash() {
    let p = plane().await;
    p.client().create(node("n1")).await.expect("node");
    assert_eq!(
        p.ok(&["label", "nodes", "n1", "disk=ssd"]).await,
        "node/n1 labeled\n"
    );
    let refused = p.run(&["label", "node/n1", "disk=hdd"]).await;
    assert_eq!(refused.code, 1);
    assert_eq!(
        refused.stderr,
        "error: 'disk' already has a value (ssd), and --overwrite is false\n"
    );
    p.ok(&["label", "no", "n1", "disk=hdd", "--overwrite"])
        .await;
    let labels = p.node("n1").await.metadata.expect("meta").labels;
    assert_eq!(labels.get("disk").map(String::as_str), Some("hdd"));
    assert_eq!(
        p.ok(&["label", "nodes", "n1", "disk-"]).await,
        "node/n1 unlabeled\n"
    );
    assert!(
        !p.node("n1")
            .await
            .metadata
            .expect("meta")
            .labels
            .contains_key("disk")
    );

    let missing = p.run(&["label", "nodes", "ghost", "a=b"]).await;
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "Error from server (NotFound): nodes \"ghost\" not found\n"
    );
}

#[tokio::test]
async fn taint_cordon_and_uncordon_change_the_node_spec() {
    let p = plane().await;
    p.client().create(node("n1")).await.expect("node");
    assert_eq!(
        p.ok(&["taint", "nodes", "n1", "dedicated=gpu:NoSchedule"])
            .await,
        "node/n1 tainted\n"
    );
    let taints = p.node("n1").await.spec.expect("spec").taints;
    assert_eq!(taints.len(), 1);
    assert_eq!(
        (
            taints[0].key.as_str(),
            taints[0].value.as_str(),
            taints[0].effect.as_str()
        ),
        ("dedicated", "gpu", "NoSchedule")
    );
    let again = p
        .run(&["taint", "nodes", "n1", "dedicated=cpu:NoSchedule"])
        .await;
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("--overwrite is false"), "{again:?}");
    assert_eq!(
        p.ok(&["taint", "nodes", "n1", "dedicated:NoSchedule-"])
            .await,
        "node/n1 untainted\n"
    );
    assert!(p.node("n1").await.spec.expect("spec").taints.is_empty());
    let gone = p.run(&["taint", "nodes", "n1", "dedicated-"]).await;
    assert_eq!(
        (gone.code, gone.stderr.as_str()),
        (1, "error: taint \"dedicated\" not found\n")
    );

    assert_eq!(p.ok(&["cordon", "n1"]).await, "node/n1 cordoned\n");
    assert!(p.node("n1").await.spec.expect("spec").unschedulable);
    assert_eq!(p.ok(&["cordon", "n1"]).await, "node/n1 already cordoned\n");
    let listed = p.ok(&["get", "nodes"]).await;
    assert!(listed.contains("SchedulingDisabled"), "{listed}");
    assert_eq!(p.ok(&["uncordon", "n1"]).await, "node/n1 uncordoned\n");
    assert!(!p.node("n1").await.spec.expect("spec").unschedulable);
}

#[tokio::test]
async fn drain_refuses_unmanaged_pods_then_evicts_all_but_daemonset_pods() {
    let p = plane().await;
    p.client().create(node("n1")).await.expect("node");
    p.client().create(node("n2")).await.expect("node");
    p.bound_pod("job-pod", "n1", Some("Job")).await;
    p.bound_pod("ds-pod", "n1", Some("DaemonSet")).await;
    p.bound_pod("bare", "n1", None).await;
    p.bound_pod("elsewhere", "n2", None).await;

    let refused = p.run(&["drain", "n1", "--grace-period=0"]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(refused.stdout, "node/n1 cordoned\n");
    assert!(refused.stderr.contains(
        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/ds-pod"
    ), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(
            "cannot delete Pods that declare no controller (use --force to override): default/bare"
        ),
        "{}",
        refused.stderr
    );
    assert!(
        p.client()
            .get_opt(v1::Kind::Pod, "default", "job-pod")
            .await
            .expect("get")
            .is_some()
    );

    let out = p
        .run(&[
            "drain",
            "n1",
            "--ignore-daemonsets",
            "--force",
            "--grace-period=0",
            "--timeout=20s",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("node/n1 already cordoned\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("evicting pod default/job-pod\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("pod/bare evicted\n"), "{}", out.stdout);
    assert!(out.stdout.ends_with("node/n1 drained\n"), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("Warning: ignoring DaemonSet-managed Pods: default/ds-pod")
    );
    for (name, kept) in [
        ("job-pod", false),
        ("bare", false),
        ("ds-pod", true),
        ("elsewhere", true),
    ] {
        let found = p
            .client()
            .get_opt(v1::Kind::Pod, "default", name)
            .await
            .expect("get");
        assert_eq!(found.is_some(), kept, "{name}");
    }
}

#[tokio::test]
async fn wait_returns_once_a_condition_holds_or_times_out() {
    let p = plane().await;
    p.client().create(node("n1")).await.expect("node");
    let late = p
        .run(&["wait", "--for=condition=Ready", "node/n1", "--timeout=1s"])
        .await;
    assert_eq!(
        (late.code, late.stderr.as_str()),
        (
            1,
            "error: timed out waiting for the condition on nodes/n1\n"
        )
    );

    let mut n = p
        .client()
        .get(v1::Kind::Node, "", "n1")
        .await
        .expect("node");
    if let Some(v1::object::Object::Node(inner)) = n.object.as_mut() {
        inner.status.get_or_insert_with(Default::default).conditions = vec![v1::Condition {
            r#type: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }];
    }
    p.client().update_status(n).await.expect("status");
    assert_eq!(
        p.ok(&["wait", "--for=condition=Ready", "node/n1", "--timeout=10s"])
            .await,
        "node/n1 condition met\n"
    );
    p.bound_pod("doomed", "n1", None).await;
    let waiter = {
        let bosun = p.bosun().clone();
        tokio::spawn(async move {
            bosun
                .run(&["wait", "--for=delete", "pod/doomed", "--timeout=20s"])
                .await
        })
    };
    p.client()
        .delete(
            v1::Kind::Pod,
            "default",
            "doomed",
            bosun_runtime::client::DeleteOptions {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .expect("delete");
    let out = waiter.await.expect("wait ran");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "pod/doomed condition met\n")
    );
}

#[tokio::test]
async fn describe_shows_a_nodes_taints_and_a_pods_node() {
    let p = plane().await;
    p.client().create(node("n1")).await.expect("node");
    p.ok(&["taint", "nodes", "n1", "k=v:NoExecute"]).await;
    p.ok(&["cordon", "n1"]).await;
    p.bound_pod("web", "n1", Some("Job")).await;
    let node = p.ok(&["describe", "node", "n1"]).await;
    for want in [
        "Name:",
        "n1",
        "Taints:",
        "k=v:NoExecute",
        "Unschedulable:",
        "true",
        "Conditions:",
        "Lease:",
        "Non-terminated Pods:          (1 in total)",
        "Allocated resources:",
    ] {
        assert!(node.contains(want), "missing {want:?} in\n{node}");
    }
    let pod = p.ok(&["describe", "pod", "web"]).await;
    for want in [
        "Name:",
        "web",
        "Node:",
        "n1",
        "Controlled By:",
        "Job/owner",
        "Containers:",
        "main:",
    ] {
        assert!(pod.contains(want), "missing {want:?} in\n{pod}");
    }
}
