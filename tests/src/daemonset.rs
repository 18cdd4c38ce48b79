//! What the DaemonSet suites (`daemonset.rs`, `daemonset_rollout.rs`) share: the daemon pods
//! of a selector, waiting for them to run on exactly some nodes, the DaemonSet and waiting for
//! its status to settle, and changing it (retried on a conflict).

use std::collections::BTreeMap;
use std::time::Duration;

use bosun_api::v1::{self, Kind};
use bosun_runtime::client::Selector;

use crate::{Plane, phase, wait_for};

/// How long the waits here wait.
const WAIT: Duration = Duration::from_secs(30);

/// The pod's uid.
pub fn uid(pod: &v1::Pod) -> String {
    pod.metadata
        .as_ref()
        .map(|m| m.uid.clone())
        .unwrap_or_default()
}

impl Plane {
    /// The pods in `namespace` labelled `selector` that are not being deleted.
    pub async fn live_pods(&self, namespace: &str, selector: &str) -> Vec<v1::Pod> {
        self.client()
            .list(Kind::Pod, &Selector::namespace(namespace).labels(selector))
            .await
            .unwrap_or_else(|e| panic!("list pods {selector}: {e}"))
            .items
            .into_iter()
            .filter_map(v1::Object::into_pod)
            .filter(|p| {
                p.metadata
                    .as_ref()
                    .is_some_and(|m| m.deletion_timestamp.is_empty())
            })
            .collect()
    }

    /// Waits until exactly the nodes `want` each run one Running pod labelled `selector` (and
    /// no other node has a live one); returns the pods by node.
    pub async fn wait_running_on(
        &self,
        namespace: &str,
        selector: &str,
        want: &[&str],
    ) -> BTreeMap<String, v1::Pod> {
        let what = format!("pods {selector} running on exactly {want:?}");
        wait_for(&what, WAIT, || async {
            let pods = self.live_pods(namespace, selector).await;
            let mut by_node: BTreeMap<String, Vec<v1::Pod>> = BTreeMap::new();
            for p in pods {
                let node = p
                    .spec
                    .as_ref()
                    .map(|s| s.node_name.clone())
                    .unwrap_or_default();
                by_node.entry(node).or_default().push(p);
            }
            let seen: Vec<(String, usize, Vec<String>)> = by_node
                .iter()
                .map(|(n, ps)| {
                    (
                        n.clone(),
                        ps.len(),
                        ps.iter().map(|p| phase(p).to_string()).collect(),
                    )
                })
                .collect();
            let nodes: Vec<&str> = by_node.keys().map(String::as_str).collect();
            let all_running_alone = by_node
                .values()
                .all(|ps| ps.len() == 1 && phase(&ps[0]) == "Running");
            if nodes == want && all_running_alone {
                Ok(by_node
                    .into_iter()
                    .map(|(n, mut ps)| (n, ps.remove(0)))
                    .collect())
            } else {
                Err(format!("{seen:?}"))
            }
        })
        .await
    }

    /// The DaemonSet `name` in `namespace`.
    pub async fn daemon_set(&self, namespace: &str, name: &str) -> v1::DaemonSet {
        self.client()
            .get(Kind::DaemonSet, namespace, name)
            .await
            .unwrap_or_else(|e| panic!("get ds {name}: {e}"))
            .into_daemon_set()
            .expect("a DaemonSet")
    }

    /// Changes the DaemonSet `name` (re-read and retried when someone wrote in between);
    /// returns it as stored.
    pub async fn update_daemon_set(
        &self,
        namespace: &str,
        name: &str,
        change: impl Fn(&mut v1::DaemonSet),
    ) -> v1::DaemonSet {
        loop {
            let mut ds = self.daemon_set(namespace, name).await;
            change(&mut ds);
            match self.client().update(ds.into()).await {
                Ok(stored) => return stored.into_daemon_set().expect("a DaemonSet"),
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("update ds {name}: {e}"),
            }
        }
    }

    /// Waits until the DaemonSet's status says `desired` nodes should run it and all of
    /// them run a ready, available, up-to-date pod, for its current generation.
    pub async fn wait_status(&self, namespace: &str, name: &str, desired: i32) {
        wait_for(
            &format!("ds {name}: {desired} desired, all ready"),
            WAIT,
            || async {
                let ds = self.daemon_set(namespace, name).await;
                let s = ds.status.clone().unwrap_or_default();
                let generation = ds.metadata.as_ref().map_or(0, |m| m.generation);
                let want = (desired, desired, desired, desired, desired, 0, 0);
                let have = (
                    s.desired_number_scheduled,
                    s.current_number_scheduled,
                    s.number_ready,
                    s.number_available,
                    s.updated_number_scheduled,
                    s.number_misscheduled,
                    s.number_unavailable,
                );
                if have == want && s.observed_generation == generation {
                    Ok(())
                } else {
                    Err(format!("{s:?} (generation {generation})"))
                }
            },
        )
        .await
    }
}
