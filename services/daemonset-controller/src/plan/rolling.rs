//! The rolling update (C.4, Kubernetes' `rollingUpdate` in `update.go`): "delete first"
//! when maxSurge is 0, "create first" when it is not. Nodes are visited in name order (so a
//! budget goes to the same nodes every time). A pod on a node that is not Ready counts as
//! unavailable, and such a node's slot not against maxUnavailable (see the plan's module
//! docs on NotReady nodes).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bosun_api::daemonset::resolve_rolling;
use bosun_api::v1;
use chrono::{DateTime, Utc};

use super::{DeleteReason, Deletion, NodeFacts, PodFacts, desired, pods_by_node};

/// What the rollout reads.
#[derive(Debug)]
pub struct RollingInputs<'a> {
    pub strategy: Option<&'a v1::DaemonSetUpdateStrategy>,
    pub min_ready_seconds: i32,
    pub nodes: &'a [NodeFacts],
    pub pods: &'a [PodFacts],
    /// The current revision's hash: pods labelled with it are new, others old.
    pub hash: &'a str,
    pub now: DateTime<Utc>,
}

/// What the rollout decides.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rolling {
    /// Nodes that get a new pod now (create first).
    pub create: Vec<String>,
    /// Old pods replaced.
    pub delete: Vec<Deletion>,
    /// When a new pod surged beside an old one becomes available (minReadySeconds): its old
    /// pod goes then. The status's requeue does not cover it, as it counts each node by its
    /// oldest pod, the old one.
    pub requeue_after: Option<Duration>,
}

/// One node's pods as the rollout sees them (Kubernetes' `findUpdatedPodsOnNode`): at most
/// one new and one old pod not being deleted; `None` if there are more.
fn new_and_old<'a>(
    pods: &[&'a PodFacts],
    hash: &str,
) -> Option<(Option<&'a PodFacts>, Option<&'a PodFacts>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| !p.deleting) {
        let slot = if p.hash == hash { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(*p);
    }
    Some((new, old))
}

fn replace(pod: &PodFacts) -> Deletion {
    Deletion {
        name: pod.name.clone(),
        uid: pod.uid.clone(),
        node: pod.node.clone(),
        reason: DeleteReason::Update,
    }
}

/// A node the rollout looks at: its facts (`None`: it is gone) and its pods.
struct Slot<'a> {
    name: &'a str,
    node: Option<&'a NodeFacts>,
    pods: Vec<&'a PodFacts>,
}

/// Every node that should run the pod, and every node with a pod, in name order.
fn slots<'a>(i: &RollingInputs<'a>) -> Vec<Slot<'a>> {
    let by_node = pods_by_node(i.pods, true);
    let mut out: BTreeMap<&str, Slot<'a>> = BTreeMap::new();
    for n in i.nodes.iter().filter(|n| n.placement.should_run) {
        out.insert(
            &n.name,
            Slot {
                name: &n.name,
                node: Some(n),
                pods: Vec::new(),
            },
        );
    }
    let facts: HashMap<&str, &NodeFacts> = i.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    for (name, pods) in by_node {
        let Some(name) = name else { continue };
        let node = facts.get(name).copied();
        out.entry(name)
            .or_insert(Slot {
                name,
                node,
                pods: Vec::new(),
            })
            .pods = pods;
    }
    out.into_values().collect()
}

/// Decides the rollout's step.
pub fn rolling(i: &RollingInputs<'_>) -> Rolling {
    let (max_surge, max_unavailable) = resolve_rolling(i.strategy, desired(i.nodes));
    if max_surge == 0 {
        delete_first(i, max_unavailable)
    } else {
        create_first(i, max_surge)
    }
}

/// Whether `pod` (on the node `slot`) is available for the rollout: available by its own
/// conditions, on a Ready node.
fn available(i: &RollingInputs<'_>, slot: &Slot<'_>, pod: &PodFacts) -> bool {
    slot.node.is_some_and(|n| n.ready) && pod.available(i.min_ready_seconds, i.now)
}

/// maxSurge 0: old unavailable pods are always replaced; old available pods are deleted up
/// to maxUnavailable minus the nodes already unavailable (no pod, two pods, or a new pod
/// not yet available — on Ready nodes); the manage step then creates the new pods.
fn delete_first(i: &RollingInputs<'_>, max_unavailable: i32) -> Rolling {
    let mut num_unavailable = 0;
    let mut allowed = Vec::new();
    let mut candidates = Vec::new();
    for slot in slots(i) {
        let counts = slot.node.is_some_and(|n| n.ready);
        match new_and_old(&slot.pods, i.hash) {
            None | Some((None, None)) | Some((Some(_), Some(_))) => {
                // The manage step sorts this node out; it is unavailable meanwhile.
                num_unavailable += i32::from(counts);
            }
            Some((Some(new), None)) => {
                if !available(i, &slot, new) {
                    num_unavailable += i32::from(counts);
                }
            }
            Some((None, Some(old))) => {
                if !available(i, &slot, old) {
                    allowed.push(replace(old));
                } else if num_unavailable < max_unavailable {
                    candidates.push(replace(old));
                }
            }
        }
    }
    let budget = (max_unavailable - num_unavailable).max(0) as usize;
    candidates.truncate(budget);
    allowed.extend(candidates);
    Rolling {
        create: Vec::new(),
        delete: allowed,
        requeue_after: None,
    }
}

/// maxSurge > 0: a node whose old pod is unavailable gets a new pod at once; nodes with an
/// available old pod get one up to maxSurge minus the nodes already surging; an old pod goes
/// once the new one beside it is available (look again when it will be). An available old pod on a node that should no
/// longer run it (but may keep it) goes only while more pods are available than desired.
fn create_first(i: &RollingInputs<'_>, max_surge: i32) -> Rolling {
    let mut delete = Vec::new();
    let mut should_not_run = Vec::new();
    let mut candidates = Vec::new();
    let mut allowed = Vec::new();
    let mut num_surge = 0;
    let mut num_available = 0;
    let mut requeue_after: Option<Duration> = None;
    for slot in slots(i) {
        let Some((new, old)) = new_and_old(&slot.pods, i.hash) else {
            // Too many pods: the manage step cleans up; a surge slot meanwhile.
            num_surge += 1;
            continue;
        };
        if let Some(p) = old.or(new)
            && available(i, &slot, p)
        {
            num_available += 1;
        }
        let should_run = slot.node.is_some_and(|n| n.placement.should_run);
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !available(i, &slot, old) => {
                if should_run {
                    allowed.push(slot.name.to_string());
                } else {
                    delete.push(replace(old));
                }
            }
            (None, Some(old)) => {
                if !should_run {
                    should_not_run.push(replace(old));
                } else if num_surge < max_surge {
                    candidates.push(slot.name.to_string());
                }
            }
            (Some(new), Some(old)) => {
                if available(i, &slot, new) {
                    delete.push(replace(old));
                } else if slot.node.is_some_and(|n| n.ready) {
                    num_surge += 1;
                    if let Some(wait) = new.available_in(i.min_ready_seconds, i.now) {
                        requeue_after = Some(requeue_after.map_or(wait, |r| r.min(wait)));
                    }
                }
            }
        }
    }
    let deletable = (num_available - desired(i.nodes)).max(0) as usize;
    delete.extend(should_not_run.into_iter().take(deletable));
    let remaining = (max_surge - num_surge).max(0) as usize;
    candidates.truncate(remaining);
    allowed.extend(candidates);
    Rolling {
        create: allowed,
        delete,
        requeue_after,
    }
}
