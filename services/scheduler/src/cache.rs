//! The scheduler's own view of the cluster: every node's facts and what is placed on it,
//! kept in step with the pod and node informers, plus the pods it has *assumed* onto a node
//! (chosen, bind in flight or not yet seen through the watch). Choosing a node and assuming
//! the pod onto it happen under one lock, so a burst of pods never overcommits a node before
//! the watch catches up.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use bosun_runtime::cache::{Change, ChangeKind};

use crate::placement::{self, NodeFacts, PodFacts, Resources, Usage};

/// One pod counted on a node.
#[derive(Debug, Clone)]
struct Placed {
    node: String,
    requests: Resources,
    owner: Option<String>,
    /// Chosen by this scheduler and not yet seen bound through the watch.
    assumed: bool,
}

#[derive(Default)]
struct Inner {
    nodes: Vec<NodeFacts>,
    index: HashMap<String, usize>,
    usage: HashMap<String, Usage>,
    pods: HashMap<String, Placed>,
    /// Where the next attempt starts looking (rotates, like Kubernetes' nextStartNodeIndex).
    next_start: usize,
}

impl Inner {
    fn place(&mut self, key: String, placed: Placed) {
        self.usage
            .entry(placed.node.clone())
            .or_default()
            .add(placed.requests, placed.owner.as_deref());
        self.pods.insert(key, placed);
    }

    fn unplace(&mut self, key: &str) {
        if let Some(p) = self.pods.remove(key)
            && let Some(u) = self.usage.get_mut(&p.node)
        {
            u.remove(p.requests, p.owner.as_deref());
            if u.pods <= 0 && !self.index.contains_key(&p.node) {
                self.usage.remove(&p.node);
            }
        }
    }
}

/// Why no node was chosen: how many nodes there are, and the reasons counted over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoFit {
    pub nodes: usize,
    pub reasons: BTreeMap<String, usize>,
}

/// See the module docs. Shared by the informer handlers and every worker.
#[derive(Default)]
pub struct ClusterCache {
    inner: Mutex<Inner>,
}

/// The node and resources a pod counts against, if it is bound and not finished.
fn placed_of(pod: &bosun_api::v1::Pod) -> Option<Placed> {
    let node = pod.spec.as_ref().map_or("", |s| s.node_name.as_str());
    if node.is_empty() || bosun_api::object::pod_finished(pod) {
        return None;
    }
    let facts = placement::pod_facts(pod);
    Some(Placed {
        node: node.to_string(),
        requests: facts.requests,
        owner: facts.owner,
        assumed: false,
    })
}

impl ClusterCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counts at worst slightly off; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a node change; returns whether it may make room for waiting pods (a new node,
    /// or one whose labels, taints, readiness or allocatable changed).
    pub fn apply_node(&self, change: &Change) -> bool {
        let mut inner = self.lock();
        let new = change
            .new
            .as_ref()
            .and_then(|o| o.as_node())
            .map(placement::node_facts);
        match new {
            Some(facts) => {
                let name = facts.name.clone();
                match inner.index.get(&name).copied() {
                    Some(i) => {
                        let relevant = inner.nodes[i] != facts;
                        inner.nodes[i] = facts;
                        relevant
                    }
                    None => {
                        let i = inner.nodes.len();
                        inner.nodes.push(facts);
                        inner.index.insert(name, i);
                        true
                    }
                }
            }
            None => {
                let name = change
                    .old
                    .as_ref()
                    .map_or(change.key.as_str(), |o| o.name());
                if let Some(i) = inner.index.remove(name) {
                    inner.nodes.swap_remove(i);
                    if let Some(moved) = inner.nodes.get(i).map(|n| n.name.clone()) {
                        inner.index.insert(moved, i);
                    }
                }
                false
            }
        }
    }

    /// Applies a pod change; returns whether it freed room on a node (a placed pod deleted
    /// or finished), so waiting pods deserve another try.
    pub fn apply_pod(&self, change: &Change) -> bool {
        let mut inner = self.lock();
        let key = change.key.clone();
        let existing = inner.pods.get(&key).cloned();
        let now = match (change.kind, change.new.as_ref().and_then(|o| o.as_pod())) {
            (ChangeKind::Deleted, _) | (_, None) => None,
            (_, Some(pod)) => placed_of(pod),
        };
        let gone = change.kind == ChangeKind::Deleted;
        match (existing, now) {
            (None, None) => false,
            (None, Some(p)) => {
                inner.place(key, p);
                false
            }
            (Some(e), Some(p)) if e.node == p.node && e.requests == p.requests => {
                // The watch confirms an assumption (or an unrelated update).
                if let Some(slot) = inner.pods.get_mut(&key) {
                    slot.assumed = false;
                }
                false
            }
            (Some(_), Some(p)) => {
                inner.unplace(&key);
                inner.place(key, p);
                true
            }
            // Still unbound in the watch while our bind is in flight: keep the assumption.
            (Some(e), None) if e.assumed && !gone => false,
            (Some(_), None) => {
                inner.unplace(&key);
                true
            }
        }
    }

    /// Whether the pod `key` is already counted on a node (assumed or bound).
    pub fn is_placed(&self, key: &str) -> bool {
        self.lock().pods.contains_key(key)
    }

    /// Chooses a node for `pod` and assumes it there, in one step; or says why none fits.
    pub fn schedule(&self, key: &str, pod: &PodFacts, seed: u64) -> Result<String, NoFit> {
        let mut inner = self.lock();
        let n = inner.nodes.len();
        if n == 0 {
            return Err(NoFit {
                nodes: 0,
                reasons: BTreeMap::new(),
            });
        }
        let start = inner.next_start % n;
        let placement = {
            let (usage, index) = (&inner.usage, &inner.index);
            let only = placement::candidates(pod, |name| index.get(name).copied());
            placement::select(
                pod,
                &inner.nodes,
                only.as_deref(),
                |name| usage.get(name),
                start,
                seed,
            )
        };
        inner.next_start = inner.next_start.wrapping_add(1);
        match placement {
            placement::Placement::Node(i) => {
                let node = inner.nodes[i].name.clone();
                inner.place(
                    key.to_string(),
                    Placed {
                        node: node.clone(),
                        requests: pod.requests,
                        owner: pod.owner.clone(),
                        assumed: true,
                    },
                );
                Ok(node)
            }
            placement::Placement::Unschedulable(reasons) => Err(NoFit { nodes: n, reasons }),
        }
    }

    /// Drops an assumption whose bind failed (a confirmed placement is left alone).
    pub fn forget(&self, key: &str) {
        let mut inner = self.lock();
        if inner.pods.get(key).is_some_and(|p| p.assumed) {
            inner.unplace(key);
        }
    }

    /// How many pods are counted on `node` (tests, metrics).
    pub fn pods_on(&self, node: &str) -> i64 {
        self.lock().usage.get(node).map_or(0, |u| u.pods)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use bosun_api::vocab::{condition, status};
    use bosun_api::{Object, v1};

    fn node(name: &str, cpu: &str) -> Object {
        v1::Node {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            status: Some(v1::NodeStatus {
                allocatable: [("cpu".to_string(), cpu.to_string())].into(),
                conditions: vec![v1::Condition {
                    r#type: condition::READY.into(),
                    status: status::TRUE.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    fn pod(name: &str, node: &str, phase: &str) -> Object {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "ns".into(),
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                node_name: node.into(),
                containers: vec![v1::Container {
                    resources: Some(v1::ResourceRequirements {
                        requests: [("cpu".to_string(), "1".to_string())].into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            status: Some(v1::PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    fn change(kind: ChangeKind, old: Option<Object>, new: Option<Object>) -> Change {
        let key = new
            .as_ref()
            .or(old.as_ref())
            .map(|o| o.key())
            .unwrap_or_default();
        Change {
            kind,
            key,
            old: old.map(Arc::new),
            new: new.map(Arc::new),
        }
    }

    fn one_cpu() -> PodFacts {
        PodFacts {
            requests: Resources {
                cpu_milli: 1000,
                memory: 0,
            },
            ..Default::default()
        }
    }

    #[test]
    fn assumed_pods_count_until_the_watch_confirms_or_the_bind_fails() {
        let cache = ClusterCache::default();
        assert!(cache.apply_node(&change(ChangeKind::Added, None, Some(node("n1", "2")))));
        // Two pods fit on a 2-cpu node, the third does not, before any watch event.
        assert_eq!(cache.schedule("ns/a", &one_cpu(), 1), Ok("n1".to_string()));
        assert_eq!(cache.schedule("ns/b", &one_cpu(), 2), Ok("n1".to_string()));
        let no = cache.schedule("ns/c", &one_cpu(), 3).unwrap_err();
        assert_eq!(no.reasons.get("Insufficient cpu"), Some(&1));
        // An unbound update of a (still) assumed pod keeps it counted.
        cache.apply_pod(&change(
            ChangeKind::Modified,
            None,
            Some(pod("a", "", "Pending")),
        ));
        assert_eq!(cache.pods_on("n1"), 2);
        // The watch confirms a; b's bind fails and is forgotten.
        cache.apply_pod(&change(
            ChangeKind::Modified,
            None,
            Some(pod("a", "n1", "Pending")),
        ));
        cache.forget("ns/b");
        cache.forget("ns/a"); // confirmed: stays
        assert_eq!(cache.pods_on("n1"), 1);
        assert_eq!(cache.schedule("ns/c", &one_cpu(), 3), Ok("n1".to_string()));
        // A finished pod frees its room.
        assert!(cache.apply_pod(&change(
            ChangeKind::Modified,
            None,
            Some(pod("a", "n1", "Succeeded"))
        )));
        assert_eq!(cache.pods_on("n1"), 1);
        // A deleted pod too.
        assert!(cache.apply_pod(&change(ChangeKind::Deleted, Some(pod("c", "n1", "")), None)));
        assert_eq!(cache.pods_on("n1"), 0);
    }

    #[test]
    fn node_updates_report_whether_they_matter_and_deletes_shrink_the_cache() {
        let cache = ClusterCache::default();
        let n1 = node("n1", "2");
        assert!(cache.apply_node(&change(ChangeKind::Added, None, Some(n1.clone()))));
        assert!(cache.apply_node(&change(ChangeKind::Added, None, Some(node("n2", "2")))));
        assert!(!cache.apply_node(&change(ChangeKind::Modified, None, Some(n1.clone()))));
        assert!(cache.apply_node(&change(ChangeKind::Modified, None, Some(node("n1", "4")))));
        cache.apply_node(&change(ChangeKind::Deleted, Some(n1), None));
        for seed in 0..5 {
            let key = format!("ns/p{seed}");
            assert_eq!(
                cache.schedule(&key, &PodFacts::default(), seed),
                Ok("n2".to_string())
            );
        }
        cache.apply_node(&change(ChangeKind::Deleted, Some(node("n2", "2")), None));
        assert_eq!(
            cache
                .schedule("ns/x", &PodFacts::default(), 0)
                .unwrap_err()
                .nodes,
            0
        );
    }
}
