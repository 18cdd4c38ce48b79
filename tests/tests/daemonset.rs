//! The DaemonSet controller end to end: real etcd, the real broker, the scheduler (with the
//! node lifecycle controller), the gc, the Job and DaemonSet controllers and three node
//! agents with the process runtime, all in-process. DaemonSets come from the seed manifests
//! in `tests/manifests/examples` or from YAML written here, as a user would apply them.
//!
//! Every check waits for a condition with a deadline: which nodes run a live daemon pod,
//! and the DaemonSet's status counters.

use std::time::Duration;

use bosun_api::v1::{self, Kind};
use bosun_runtime::client::{DeleteOptions, Selector};
use bosun_tests::daemonset::uid;
use bosun_tests::{manifests_dir, wait_for};

const WAIT: Duration = Duration::from_secs(30);

bosun_tests::file_plane! {
    /// etcd, a broker, the scheduler, the gc, the Job and DaemonSet controllers and three
    /// process-runtime nodes.
}

/// The three nodes every plane starts with.
const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

impl Plane {
    async fn start(label: &str) -> Plane {
        let plane = bosun_tests::Plane::builder(&format!("daemonset-{label}"))
            .controllers()
            .nodes(&NODES)
            .start()
            .await;
        Plane(plane)
    }

    /// Applies the seed manifest `examples/<file>`.
    async fn apply_example(&self, file: &str) {
        let path = manifests_dir().join("examples").join(file);
        let yaml = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        self.apply(&yaml).await;
    }

    /// Changes Node `name` (re-read and retried when its agent wrote in between).
    async fn update_node(&self, name: &str, change: impl Fn(&mut v1::Node)) {
        loop {
            let mut node = self
                .client()
                .get(Kind::Node, "", name)
                .await
                .unwrap_or_else(|e| panic!("get node {name}: {e}"))
                .into_node()
                .expect("a Node");
            change(&mut node);
            match self.client().update(node.into()).await {
                Ok(_) => return,
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("update node {name}: {e}"),
            }
        }
    }

    /// The reasons of the events stored about the DaemonSet `name`.
    async fn event_reasons(&self, namespace: &str, name: &str) -> Vec<String> {
        self.client()
            .list(Kind::Event, &Selector::namespace(namespace))
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter_map(v1::Object::into_event)
            .filter(|e| {
                e.involved_object
                    .as_ref()
                    .is_some_and(|o| o.kind == "DaemonSet" && o.name == name)
            })
            .map(|e| e.reason)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_daemonsets_run_one_pod_on_every_matching_node() {
    let plane = Plane::start("seeds").await;
    plane
        .update_node("node-2", |n| {
            let meta = n.metadata.as_mut().expect("meta");
            meta.labels.insert("disk".into(), "ssd".into());
        })
        .await;
    for file in [
        "daemonset-nginx.yaml",
        "daemonset-fluentd.yaml",
        "daemonset-ssd-monitor.yaml",
    ] {
        plane.apply_example(file).await;
    }
    let nginx = plane
        .wait_running_on("default", "name=daemonset-example", &NODES)
        .await;
    plane
        .wait_running_on("kube-system", "name=fluentd-elasticsearch", &NODES)
        .await;
    plane
        .wait_running_on("default", "app=ssd-monitor", &["node-2"])
        .await;
    plane.wait_status("default", "daemonset-example", 3).await;
    plane
        .wait_status("kube-system", "fluentd-elasticsearch", 3)
        .await;
    plane.wait_status("default", "ssd-monitor", 1).await;
    // Each pod is the DaemonSet's, of its current revision, pinned by affinity, tolerant.
    let ds = plane.daemon_set("default", "daemonset-example").await;
    let ds_uid = ds.metadata.as_ref().unwrap().uid.clone();
    let revisions: Vec<v1::ControllerRevision> = plane
        .client()
        .list(Kind::ControllerRevision, &Selector::namespace("default"))
        .await
        .expect("list revisions")
        .items
        .into_iter()
        .filter_map(v1::Object::into_controller_revision)
        .filter(|r| {
            r.metadata
                .as_ref()
                .is_some_and(|m| m.owner_references.iter().any(|o| o.uid == ds_uid))
        })
        .collect();
    assert_eq!(revisions.len(), 1, "one revision: {revisions:?}");
    let revision = &revisions[0];
    assert_eq!(revision.revision, 1);
    let hash = revision.metadata.as_ref().unwrap().labels["controller-revision-hash"].clone();
    assert_eq!(
        revision.metadata.as_ref().unwrap().name,
        format!("daemonset-example-{hash}")
    );
    for (node, pod) in &nginx {
        let meta = pod.metadata.as_ref().unwrap();
        assert_eq!(meta.labels["controller-revision-hash"], hash, "{node}");
        assert!(meta.name.starts_with("daemonset-example-"), "{}", meta.name);
        let owner = &meta.owner_references[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            (ds_uid.as_str(), Some(true))
        );
        let spec = pod.spec.as_ref().unwrap();
        let term = &spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .expect("pinned by affinity")
            .node_selector_terms[0];
        assert_eq!(term.match_fields[0].values, std::slice::from_ref(node));
        assert!(
            spec.tolerations
                .iter()
                .any(|t| t.key == "node.kubernetes.io/unschedulable")
        );
    }
    let reasons = plane.event_reasons("default", "daemonset-example").await;
    assert!(
        reasons.iter().any(|r| r == "SuccessfulCreate"),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labelling_a_node_disk_ssd_adds_the_ssd_monitor_and_unlabelling_removes_it() {
    let plane = Plane::start("ssd").await;
    plane.apply_example("daemonset-ssd-monitor.yaml").await;
    plane.wait_status("default", "ssd-monitor", 0).await;
    assert!(
        plane
            .live_pods("default", "app=ssd-monitor")
            .await
            .is_empty()
    );
    plane
        .update_node("node-3", |n| {
            let meta = n.metadata.as_mut().expect("meta");
            meta.labels.insert("disk".into(), "ssd".into());
        })
        .await;
    plane
        .wait_running_on("default", "app=ssd-monitor", &["node-3"])
        .await;
    plane.wait_status("default", "ssd-monitor", 1).await;
    plane
        .update_node("node-3", |n| {
            n.metadata.as_mut().expect("meta").labels.remove("disk");
        })
        .await;
    plane
        .wait_running_on("default", "app=ssd-monitor", &[])
        .await;
    plane.wait_status("default", "ssd-monitor", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_added_later_gets_a_daemon_pod() {
    let plane = Plane::start("node-added").await;
    plane.apply_example("daemonset-nginx.yaml").await;
    plane
        .wait_running_on("default", "name=daemonset-example", &NODES)
        .await;
    let _agent = plane.start_node("node-4").await;
    plane
        .wait_running_on(
            "default",
            "name=daemonset-example",
            &["node-1", "node-2", "node-3", "node-4"],
        )
        .await;
    plane.wait_status("default", "daemonset-example", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cordoned_node_keeps_its_daemon_pod_and_gets_new_ones() {
    let plane = Plane::start("cordon").await;
    plane.apply_example("daemonset-nginx.yaml").await;
    let before = plane
        .wait_running_on("default", "name=daemonset-example", &NODES)
        .await;
    plane
        .update_node("node-1", |n| {
            n.spec.get_or_insert_with(Default::default).unschedulable = true;
        })
        .await;
    // The node lifecycle controller taints it unschedulable; daemon pods tolerate that.
    wait_for("node-1 tainted unschedulable", WAIT, || async {
        let node = plane
            .client()
            .get(Kind::Node, "", "node-1")
            .await
            .expect("get node")
            .into_node()
            .expect("a Node");
        node.spec
            .as_ref()
            .is_some_and(|s| {
                s.taints
                    .iter()
                    .any(|t| t.key == "node.kubernetes.io/unschedulable")
            })
            .then_some(())
    })
    .await;
    plane.apply_example("daemonset-ssd-monitor.yaml").await;
    plane
        .update_node("node-1", |n| {
            let meta = n.metadata.as_mut().expect("meta");
            meta.labels.insert("disk".into(), "ssd".into());
        })
        .await;
    plane
        .wait_running_on("default", "app=ssd-monitor", &["node-1"])
        .await;
    let after = plane
        .wait_running_on("default", "name=daemonset-example", &NODES)
        .await;
    assert_eq!(
        uid(&before["node-1"]),
        uid(&after["node-1"]),
        "the pod on the cordoned node stayed"
    );
    plane.wait_status("default", "daemonset-example", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_daemon_pod_is_replaced() {
    let plane = Plane::start("replaced").await;
    plane.apply_example("daemonset-nginx.yaml").await;
    let before = plane
        .wait_running_on("default", "name=daemonset-example", &NODES)
        .await;
    let victim = &before["node-2"];
    let name = victim.metadata.as_ref().unwrap().name.clone();
    plane
        .client()
        .delete(Kind::Pod, "default", &name, DeleteOptions::default())
        .await
        .expect("delete the pod");
    let after = wait_for("a new pod on node-2", WAIT, || async {
        let pods = plane
            .wait_running_on("default", "name=daemonset-example", &NODES)
            .await;
        (uid(&pods["node-2"]) != uid(victim)).then_some(pods)
    })
    .await;
    assert_eq!(uid(&after["node-1"]), uid(&before["node-1"]));
    assert_eq!(uid(&after["node-3"]), uid(&before["node-3"]));
    plane.wait_status("default", "daemonset-example", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_no_execute_taint_the_pod_does_not_tolerate_removes_it() {
    let plane = Plane::start("no-execute").await;
    plane.apply_example("daemonset-nginx.yaml").await;
    plane
        .wait_running_on("default", "name=daemonset-example", &NODES)
        .await;
    plane
        .update_node("node-3", |n| {
            n.spec
                .get_or_insert_with(Default::default)
                .taints
                .push(v1::Taint {
                    key: "dedicated".into(),
                    value: "db".into(),
                    effect: "NoExecute".into(),
                    ..Default::default()
                });
        })
        .await;
    plane
        .wait_running_on("default", "name=daemonset-example", &["node-1", "node-2"])
        .await;
    plane.wait_status("default", "daemonset-example", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daemonset_deleted_with_orphans_and_made_again_adopts_its_pods() {
    let plane = Plane::start("adopt").await;
    plane.apply_example("daemonset-nginx.yaml").await;
    let before = plane
        .wait_running_on("default", "name=daemonset-example", &NODES)
        .await;
    plane
        .client()
        .delete(
            Kind::DaemonSet,
            "default",
            "daemonset-example",
            DeleteOptions {
                propagation_policy: Some("Orphan".into()),
                ..Default::default()
            },
        )
        .await
        .expect("delete the DaemonSet, orphaning its pods");
    wait_for("the pods orphaned", WAIT, || async {
        let pods = plane.live_pods("default", "name=daemonset-example").await;
        let orphans = pods
            .iter()
            .filter(|p| p.metadata.as_ref().unwrap().owner_references.is_empty())
            .count();
        (pods.len() == 3 && orphans == 3).then_some(())
    })
    .await;
    wait_for("the old DaemonSet gone", WAIT, || async {
        plane
            .client()
            .get_opt(Kind::DaemonSet, "default", "daemonset-example")
            .await
            .expect("get")
            .is_none()
    })
    .await;
    plane.apply_example("daemonset-nginx.yaml").await;
    let ds = plane.daemon_set("default", "daemonset-example").await;
    let ds_uid = ds.metadata.as_ref().unwrap().uid.clone();
    let after = wait_for("the pods adopted by the new DaemonSet", WAIT, || async {
        let pods = plane
            .wait_running_on("default", "name=daemonset-example", &NODES)
            .await;
        pods.values()
            .all(|p| {
                p.metadata
                    .as_ref()
                    .unwrap()
                    .owner_references
                    .first()
                    .map(|o| &o.uid)
                    == Some(&ds_uid)
            })
            .then_some(pods)
    })
    .await;
    // Same template, same hash: adopted and kept, not replaced.
    for node in NODES {
        assert_eq!(uid(&after[node]), uid(&before[node]), "{node}");
    }
    plane.wait_status("default", "daemonset-example", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_template_change_rolls_every_node_to_the_new_revision() {
    let plane = Plane::start("rollout-smoke").await;
    plane.apply_example("daemonset-nginx.yaml").await;
    let before = plane
        .wait_running_on("default", "name=daemonset-example", &NODES)
        .await;
    plane.wait_status("default", "daemonset-example", 3).await;
    plane
        .update_daemon_set("default", "daemonset-example", |ds| {
            let template = ds.spec.as_mut().unwrap().template.as_mut().unwrap();
            template.spec.as_mut().unwrap().containers[0].image = "hub.escapelife/nginx:v2".into();
        })
        .await;
    let after = wait_for("every pod replaced", WAIT, || async {
        let pods = plane
            .wait_running_on("default", "name=daemonset-example", &NODES)
            .await;
        NODES
            .iter()
            .all(|n| uid(&pods[*n]) != uid(&before[*n]))
            .then_some(pods)
    })
    .await;
    for pod in after.values() {
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.containers[0].image, "hub.escapelife/nginx:v2");
    }
    plane.wait_status("default", "daemonset-example", 3).await;
    let revisions = plane
        .client()
        .list(Kind::ControllerRevision, &Selector::namespace("default"))
        .await
        .expect("list revisions")
        .items;
    assert_eq!(revisions.len(), 2, "the old revision is history");
}
