//! Every decision the DaemonSet controller makes, as pure functions: given a DaemonSet, the
//! facts of the nodes, of its pods and of its ControllerRevisions, the failure back-off of
//! its nodes and the time, [`plan`] says which revision is current (and which revisions to
//! create, renumber and delete), which nodes get a pod, which pods go and why, what the
//! status becomes, which events to record and when to look again. The reconcile in `lib.rs`
//! only gathers the facts and carries the plan out.
//!
//! ## The steps
//!
//! [`plan`] is a pipeline of small steps, each in its own module with its own table tests:
//!
//! 1. **history** (`history::current`): the current revision is the newest one whose
//!    template equals the DaemonSet's; none: one is created, `<ds>-<hash>` with revision
//!    max+1; an older one (after `undo`) is renumbered max+1. A revision of that name with
//!    another template is a hash collision: `status.collisionCount` goes up by one and
//!    nothing else happens in this reconcile (the next one hashes again).
//! 2. **manage** (`manage`, C.3), only when nothing the controller created or deleted is
//!    still unseen by its caches (expectations satisfied): per node, create a pod where one
//!    should run and none exists; delete failed pods (per-node back-off 1 s doubling to
//!    15 min) and succeeded pods; keep one pod per node (two with surge: the oldest old and
//!    the oldest new); delete every pod on a node that should not keep it, and every pod
//!    pinned to a node that no longer exists.
//! 3. **rolling** (`rolling`, C.4), only when manage changed nothing (as Kubernetes, whose
//!    rollout waits for manage's expectations), the strategy is RollingUpdate and the
//!    rollout is not paused: "delete first" (maxSurge 0) or "create first" (maxSurge > 0).
//! 4. **burst**: at most [`BURST`] creations and [`BURST`] deletions per reconcile (the
//!    next reconcile, woken by the pods' watch events, does the rest).
//! 5. **history cleanup** (`history::cleanup`): old revisions beyond
//!    `revisionHistoryLimit`, oldest first, never one a live pod still carries.
//! 6. **status** (`status`, C.1), and the requeue: the end of a failure back-off, the moment
//!    a Ready pod becomes available (minReadySeconds), a surged new pod too (its old pod
//!    goes then).
//!
//! ## NotReady nodes during a rollout (kubernetes#117204)
//!
//! A pod on a node whose Ready condition is not True (its agent stopped, or says it cannot
//! run pods) is treated by the rollout as **unavailable**, whatever its last reported
//! status: nobody vouches for it. C.4's rules then apply unchanged: an old unavailable pod is
//! always replaced, outside the maxUnavailable budget, and such a node's slot (old pod
//! going, new pod pending) is not counted against the budget either — it had no available
//! pod to lose. So the rollout does not stall behind an unreachable node, and pods on Ready
//! nodes that are available are only ever taken down within maxUnavailable (with maxSurge,
//! a new pod is created on the NotReady node at once, as for any unavailable old pod). When
//! the agent comes back, its node's pods are already of the new revision. Status counts
//! (numberReady, numberAvailable) read the pods' own conditions, as Kubernetes does: the
//! node lifecycle controller turns Ready False on the pods of a node gone Unknown, so such a
//! pod counts as unavailable there too.

mod history;
mod manage;
mod rolling;
mod status;

use std::collections::BTreeMap;
use std::time::Duration;

use bosun_api::daemonset::{self as ds_api, Placement};
use bosun_api::v1;
use bosun_api::vocab::daemonset::REVISION_HASH_LABEL;
use bosun_api::vocab::phase;
use chrono::{DateTime, Utc};

pub use history::{Current, NewRevision};
pub use manage::{BACKOFF_INITIAL, BACKOFF_MAX, BackoffEntry};

/// Pod creations, and pod deletions, per reconcile at most (Kubernetes' BurstReplicas is
/// 250, sized for its client's rate limits). bosun's broker batches concurrent writes into
/// few etcd transactions, so a larger burst costs little and saves reconciles: each one
/// waits for the watch to show everything the previous one wrote, and walks every pod. The
/// creations still go in slow-start batches of 1, 2, 4, … so a broken template fails after
/// one pod, not a thousand.
pub const BURST: usize = 1000;

/// What the plan reads of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    /// C.2's answer for the DaemonSet's template on this node.
    pub placement: Placement,
    /// Its Ready condition is True.
    pub ready: bool,
}

impl NodeFacts {
    /// The facts of `node` for pods of `template`.
    pub fn of(template: &v1::PodTemplateSpec, node: &v1::Node) -> NodeFacts {
        NodeFacts {
            name: node
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            placement: ds_api::placement(template, node),
            ready: bosun_api::nodematch::node_readiness(node)
                == bosun_api::nodematch::Readiness::Ready,
        }
    }
}

/// What the plan reads of one of the DaemonSet's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub name: String,
    pub uid: String,
    /// The node it is bound or pinned to (`None`: neither; it is deleted as stray).
    pub node: Option<String>,
    /// Its `controller-revision-hash` label.
    pub hash: String,
    /// `status.phase` (empty: not reported yet).
    pub phase: String,
    /// Bound to a node (`spec.nodeName` set).
    pub scheduled: bool,
    /// It has a deletionTimestamp.
    pub deleting: bool,
    pub created: Option<DateTime<Utc>>,
    /// Since when it is Ready (`None`: not Ready).
    pub ready_since: Option<DateTime<Utc>>,
}

impl PodFacts {
    /// The facts of `pod`.
    pub fn of(pod: &v1::Pod) -> PodFacts {
        // Borrowed, not cloned: this runs for every pod at every reconcile.
        let empty = v1::ObjectMeta::default();
        let meta = pod.metadata.as_ref().unwrap_or(&empty);
        PodFacts {
            node: ds_api::pod_node(pod).map(str::to_string),
            scheduled: pod.spec.as_ref().is_some_and(|s| !s.node_name.is_empty()),
            hash: meta
                .labels
                .get(REVISION_HASH_LABEL)
                .cloned()
                .unwrap_or_default(),
            phase: pod
                .status
                .as_ref()
                .map(|s| s.phase.clone())
                .unwrap_or_default(),
            deleting: !meta.deletion_timestamp.is_empty(),
            created: ds_api::parse_time(&meta.creation_timestamp),
            ready_since: ds_api::ready_since(pod),
            name: meta.name.clone(),
            uid: meta.uid.clone(),
        }
    }

    fn failed(&self) -> bool {
        self.phase == phase::FAILED
    }

    fn succeeded(&self) -> bool {
        self.phase == phase::SUCCEEDED
    }

    /// How long until it is available (`Some(0)`: it is; `None`: not Ready or deleting).
    fn available_in(&self, min_ready_seconds: i32, now: DateTime<Utc>) -> Option<Duration> {
        if self.deleting {
            return None;
        }
        let since = self.ready_since?;
        if min_ready_seconds <= 0 {
            return Some(Duration::ZERO);
        }
        let at = since + chrono::Duration::seconds(i64::from(min_ready_seconds));
        Some((at - now).to_std().unwrap_or(Duration::ZERO))
    }

    fn available(&self, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
        self.available_in(min_ready_seconds, now) == Some(Duration::ZERO)
    }
}

/// Kubernetes' `podByCreationTimestampAndPhase`: bound pods first, then the oldest, then by
/// name.
pub(crate) fn oldest_first(pods: &mut [&PodFacts]) {
    pods.sort_by(|a, b| {
        b.scheduled
            .cmp(&a.scheduled)
            .then(a.created.cmp(&b.created))
            .then(a.name.cmp(&b.name))
    });
}

/// What the plan reads of one of the DaemonSet's ControllerRevisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionFacts {
    pub name: String,
    pub uid: String,
    pub revision: i64,
    /// Its `controller-revision-hash` label.
    pub hash: String,
    /// Its template equals the DaemonSet's current one.
    pub same_template: bool,
}

impl RevisionFacts {
    /// The facts of `rev` against the DaemonSet's `template`.
    pub fn of(
        rev: &v1::ControllerRevision,
        template: Option<&v1::PodTemplateSpec>,
    ) -> RevisionFacts {
        let meta = rev.metadata.clone().unwrap_or_default();
        RevisionFacts {
            hash: meta
                .labels
                .get(REVISION_HASH_LABEL)
                .cloned()
                .unwrap_or_default(),
            same_template: rev.data.as_ref().and_then(|d| d.template.as_ref()) == template,
            name: meta.name,
            uid: meta.uid,
            revision: rev.revision,
        }
    }
}

/// Everything one decision reads.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub ds: &'a v1::DaemonSet,
    /// Every node.
    pub nodes: &'a [NodeFacts],
    /// The DaemonSet's pods (claimed: controlled by it, matching its selector).
    pub pods: &'a [PodFacts],
    pub revisions: &'a [RevisionFacts],
    /// Failure back-off per node name.
    pub backoff: &'a BTreeMap<String, BackoffEntry>,
    /// Nothing this controller created or deleted is still unseen by its caches.
    pub expectations_satisfied: bool,
    pub now: DateTime<Utc>,
}

/// Why a pod is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// It failed (event FailedDaemonPod; back-off per node).
    Failed,
    /// It succeeded: a daemon must keep running (event SucceededDaemonPod).
    Succeeded,
    /// More than one pod on the node; the oldest is kept.
    Surplus,
    /// The node should no longer run it (selector, affinity, a NoExecute taint).
    NodeIneligible,
    /// The node it is pinned to no longer exists (or it is pinned nowhere).
    NodeGone,
    /// The rolling update replaces it.
    Update,
}

/// A pod to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub name: String,
    pub uid: String,
    pub node: Option<String>,
    pub reason: DeleteReason,
}

/// An event about the DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Every decision of one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The current revision (its hash labels new pods), and the revision writes.
    pub current: Current,
    /// Old revisions to delete (names).
    pub delete_revisions: Vec<String>,
    /// Nodes to create a pod on, in order.
    pub create: Vec<String>,
    pub delete: Vec<Deletion>,
    /// Back-off entries to store (per node name).
    pub backoff: Vec<(String, BackoffEntry)>,
    pub status: v1::DaemonSetStatus,
    pub events: Vec<Event>,
    pub requeue_after: Option<Duration>,
}

/// Decides everything for one DaemonSet (see the module docs for the steps).
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let ds = inputs.ds;
    let old_status = ds.status.clone().unwrap_or_default();
    let current = history::current(ds, inputs.revisions);
    if let Current::Collision { .. } = current {
        let mut status = old_status;
        status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
        return Plan {
            current,
            delete_revisions: Vec::new(),
            create: Vec::new(),
            delete: Vec::new(),
            backoff: Vec::new(),
            status,
            events: Vec::new(),
            requeue_after: Some(Duration::ZERO),
        };
    }
    let hash = current.hash().to_string();
    let spec = ds.spec.clone().unwrap_or_default();
    // Kubernetes' AllowsSurge: maxSurge scaled against one node.
    let surge_allowed = !ds_api::is_on_delete(ds)
        && ds_api::resolve_rolling(spec.update_strategy.as_ref(), 1).0 > 0;
    let mut out = manage::Manage::default();
    let mut delete = Vec::new();
    let mut create = Vec::new();
    let mut rolling_requeue = None;
    if inputs.expectations_satisfied {
        out = manage::manage(&manage::ManageInputs {
            nodes: inputs.nodes,
            pods: inputs.pods,
            hash: &hash,
            surge_allowed,
            backoff: inputs.backoff,
            now: inputs.now,
        });
        create = std::mem::take(&mut out.create);
        delete = std::mem::take(&mut out.delete);
        if create.is_empty()
            && delete.is_empty()
            && !ds_api::is_on_delete(ds)
            && !ds_api::is_paused(ds)
        {
            let r = rolling::rolling(&rolling::RollingInputs {
                strategy: spec.update_strategy.as_ref(),
                min_ready_seconds: spec.min_ready_seconds,
                nodes: inputs.nodes,
                pods: inputs.pods,
                hash: &hash,
                now: inputs.now,
            });
            create = r.create;
            delete = r.delete;
            rolling_requeue = r.requeue_after;
        }
    }
    create.truncate(BURST);
    delete.truncate(BURST);
    let delete_revisions = history::cleanup(
        inputs.revisions,
        &current,
        inputs.pods,
        spec.revision_history_limit.unwrap_or(10),
    );
    let (mut status, available_in) = status::status(
        inputs.nodes,
        inputs.pods,
        &hash,
        spec.min_ready_seconds,
        inputs.now,
    );
    status.collision_count = old_status.collision_count;
    status.conditions = old_status.conditions;
    status.observed_generation = if inputs.expectations_satisfied {
        ds.metadata.as_ref().map_or(0, |m| m.generation)
    } else {
        old_status.observed_generation
    };
    let requeue_after = [out.requeue_after, available_in, rolling_requeue]
        .into_iter()
        .flatten()
        .min();
    Plan {
        current,
        delete_revisions,
        create,
        delete,
        backoff: out.backoff,
        status,
        events: out.events,
        requeue_after,
    }
}

/// How many nodes should run the pod.
pub(crate) fn desired(nodes: &[NodeFacts]) -> i32 {
    nodes.iter().filter(|n| n.placement.should_run).count() as i32
}

/// The pods of each node (by pinned node name; `None`: pinned nowhere), oldest first,
/// not counting pods being deleted unless `with_deleting`.
pub(crate) fn pods_by_node(
    pods: &[PodFacts],
    with_deleting: bool,
) -> BTreeMap<Option<&str>, Vec<&PodFacts>> {
    let mut by: BTreeMap<Option<&str>, Vec<&PodFacts>> = BTreeMap::new();
    for p in pods.iter().filter(|p| with_deleting || !p.deleting) {
        by.entry(p.node.as_deref()).or_default().push(p);
    }
    for list in by.values_mut() {
        oldest_first(list);
    }
    by
}

#[cfg(test)]
pub(crate) mod tests;
