//! Pod management per node (C.3, Kubernetes' `podsShouldBeOnNode`): which nodes need a
//! pod, which pods go (failed, succeeded, surplus, on a node that should not keep them, on a
//! node that is gone), and the per-node failure back-off.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{DeleteReason, Deletion, Event, NodeFacts, PodFacts, pods_by_node};

/// The first wait before a node's failed pod is deleted again (Kubernetes: 1 s).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// The longest (Kubernetes: 15 min).
pub const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// The failure back-off of one (DaemonSet, node) (Kubernetes' `flowcontrol.Backoff` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffEntry {
    /// The current wait.
    pub delay: Duration,
    /// When a failed pod was last deleted.
    pub last_update: DateTime<Utc>,
}

impl BackoffEntry {
    /// How long until the back-off ends, if it has not (`IsInBackOffSinceUpdate`).
    pub fn remaining(&self, now: DateTime<Utc>) -> Option<Duration> {
        let elapsed = (now - self.last_update).to_std().unwrap_or(Duration::ZERO);
        self.delay.checked_sub(elapsed).filter(|d| !d.is_zero())
    }

    /// Unused for twice the longest wait: forgotten (Kubernetes' GC), and a new failure
    /// starts again at the first wait.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        (now - self.last_update).to_std().unwrap_or(Duration::ZERO) > 2 * BACKOFF_MAX
    }

    /// The entry after one more failed pod deleted at `now` (`Next`): 1 s, then doubling
    /// to 15 min.
    pub fn next(prev: Option<&BackoffEntry>, now: DateTime<Utc>) -> BackoffEntry {
        let delay = match prev {
            Some(p) if !p.expired(now) => (p.delay * 2).min(BACKOFF_MAX),
            _ => BACKOFF_INITIAL,
        };
        BackoffEntry {
            delay,
            last_update: now,
        }
    }
}

/// What manage reads.
#[derive(Debug)]
pub struct ManageInputs<'a> {
    pub nodes: &'a [NodeFacts],
    pub pods: &'a [PodFacts],
    /// The current revision's hash.
    pub hash: &'a str,
    /// maxSurge > 0: a node may keep one old and one new pod.
    pub surge_allowed: bool,
    pub backoff: &'a BTreeMap<String, BackoffEntry>,
    pub now: DateTime<Utc>,
}

/// What manage decides.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Manage {
    /// Nodes that need a pod.
    pub create: Vec<String>,
    pub delete: Vec<Deletion>,
    /// Back-off entries to store.
    pub backoff: Vec<(String, BackoffEntry)>,
    pub events: Vec<Event>,
    /// When a back-off ends.
    pub requeue_after: Option<Duration>,
}

impl Manage {
    fn delete(&mut self, pod: &PodFacts, reason: DeleteReason) {
        self.delete.push(Deletion {
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            node: pod.node.clone(),
            reason,
        });
    }

    fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |r| r.min(after)));
    }
}

/// Decides, node by node, in node-name order.
pub fn manage(i: &ManageInputs<'_>) -> Manage {
    let mut out = Manage::default();
    let by_node = pods_by_node(i.pods, true);
    let none = Vec::new();
    for node in i.nodes {
        let pods = by_node.get(&Some(node.name.as_str())).unwrap_or(&none);
        on_node(i, node, pods, &mut out);
    }
    // Pods pinned to a node that is gone, or to none: nobody else deletes an unbound one.
    let known: BTreeSet<&str> = i.nodes.iter().map(|n| n.name.as_str()).collect();
    for (node, pods) in &by_node {
        if node.is_some_and(|n| known.contains(n)) {
            continue;
        }
        for p in pods.iter().filter(|p| !p.deleting) {
            out.delete(p, DeleteReason::NodeGone);
        }
    }
    out
}

/// One node (`pods`: its daemon pods, oldest first, including those being deleted).
fn on_node(i: &ManageInputs<'_>, node: &NodeFacts, pods: &[&PodFacts], out: &mut Manage) {
    let exists = !pods.is_empty();
    let p = node.placement;
    if !p.should_continue_running {
        for pod in pods.iter().filter(|p| !p.deleting) {
            out.delete(pod, DeleteReason::NodeIneligible);
        }
        return;
    }
    if p.should_run && !exists {
        out.create.push(node.name.clone());
        return;
    }
    let mut running: Vec<&PodFacts> = Vec::new();
    for pod in pods.iter().filter(|p| !p.deleting) {
        if pod.failed() {
            let prev = i.backoff.get(&node.name);
            if let Some(wait) = prev.and_then(|b| b.remaining(i.now)) {
                out.requeue(wait);
                continue;
            }
            let next = BackoffEntry::next(prev, i.now);
            out.requeue(next.delay);
            out.backoff.push((node.name.clone(), next));
            out.events.push(Event {
                warning: true,
                reason: "FailedDaemonPod",
                message: format!(
                    "Found failed daemon pod {} on node {}, will try to kill it",
                    pod.name, node.name
                ),
            });
            out.delete(pod, DeleteReason::Failed);
        } else if pod.succeeded() {
            out.events.push(Event {
                warning: false,
                reason: "SucceededDaemonPod",
                message: format!(
                    "Found succeeded daemon pod {} on node {}, will try to delete it",
                    pod.name, node.name
                ),
            });
            out.delete(pod, DeleteReason::Succeeded);
        } else {
            running.push(pod);
        }
    }
    if running.len() <= 1 {
        return;
    }
    if !i.surge_allowed {
        // One pod per node: the oldest stays.
        for pod in &running[1..] {
            out.delete(pod, DeleteReason::Surplus);
        }
        return;
    }
    // With surge: the oldest new pod and the oldest old pod stay.
    let (mut new_kept, mut old_kept) = (false, false);
    for pod in running {
        let kept = if pod.hash == i.hash {
            &mut new_kept
        } else {
            &mut old_kept
        };
        if !*kept {
            *kept = true;
            continue;
        }
        out.delete(pod, DeleteReason::Surplus);
    }
}
