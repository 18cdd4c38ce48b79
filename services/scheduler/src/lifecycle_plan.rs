//! What the node lifecycle controller decides, as pure functions: a node's Ready condition
//! when its lease went stale, the taints its state implies (unreachable, not-ready,
//! unschedulable), and which of its pods a NoExecute taint evicts, now or later.
//!
//! Departure from Kubernetes: Kubernetes' admission adds a 300 s toleration of the
//! not-ready/unreachable taints to every pod; bosun does not, so a pod is evicted according to
//! its own tolerations (none: at once).

use std::time::Duration;

use bosun_api::v1;
use chrono::{DateTime, Utc};

use bosun_api::nodematch::tolerates;
use bosun_api::vocab::{condition, effect, status, taint};

/// The Ready condition's reason when the lease went stale (Kubernetes').
pub const REASON_STATUS_UNKNOWN: &str = "NodeStatusUnknown";
/// Its message (Kubernetes').
pub const MESSAGE_STATUS_UNKNOWN: &str = "Kubelet stopped posting node status.";

/// What to change on one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodePlan {
    /// The Ready condition to write (status update), when it must change.
    pub ready_condition: Option<v1::Condition>,
    /// The node's complete new taint list (spec update), when it must change.
    pub taints: Option<Vec<v1::Taint>>,
}

fn ready_condition(node: &v1::Node) -> Option<&v1::Condition> {
    node.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == condition::READY)
}

/// Decides a node's condition and taints. `lease_age` is how long since the controller last
/// saw the node's heartbeat move; `grace` is --node-monitor-grace-period; `now` stamps
/// `timeAdded` and `lastTransitionTime`.
pub fn plan_node(node: &v1::Node, lease_age: Duration, grace: Duration, now: &str) -> NodePlan {
    let mut plan = NodePlan::default();
    let current = ready_condition(node);
    let stale = lease_age > grace;
    // The status the taints follow: Unknown once the lease is stale, else what the agent said.
    let status = if stale {
        if current.is_none_or(|c| c.status != status::UNKNOWN) {
            plan.ready_condition = Some(v1::Condition {
                r#type: condition::READY.into(),
                status: status::UNKNOWN.into(),
                reason: REASON_STATUS_UNKNOWN.into(),
                message: MESSAGE_STATUS_UNKNOWN.into(),
                last_transition_time: now.into(),
                last_heartbeat_time: current
                    .map_or(String::new(), |c| c.last_heartbeat_time.clone()),
                ..Default::default()
            });
        }
        "Unknown"
    } else {
        current.map_or(status::UNKNOWN, |c| c.status.as_str())
    };
    let unschedulable = node.spec.as_ref().is_some_and(|s| s.unschedulable);
    // (key, effect, wanted)
    let managed = [
        (
            taint::UNREACHABLE,
            effect::NO_EXECUTE,
            status == status::UNKNOWN && (stale || current.is_some()),
        ),
        (
            taint::NOT_READY,
            effect::NO_EXECUTE,
            status == status::FALSE,
        ),
        (taint::UNSCHEDULABLE, effect::NO_SCHEDULE, unschedulable),
    ];
    let taints = node.spec.as_ref().map_or(&[][..], |s| &s.taints[..]);
    let mut next: Vec<v1::Taint> = taints
        .iter()
        .filter(|t| {
            managed
                .iter()
                .all(|(key, effect, wanted)| !(t.key == *key && t.effect == *effect) || *wanted)
        })
        .cloned()
        .collect();
    for (key, effect, wanted) in managed {
        if wanted && !next.iter().any(|t| t.key == key && t.effect == effect) {
            next.push(v1::Taint {
                key: key.into(),
                value: String::new(),
                effect: effect.into(),
                time_added: now.into(),
            });
        }
    }
    if next != taints {
        plan.taints = Some(next);
    }
    plan
}

/// When one pod must go because of a node's NoExecute taints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// It tolerates every NoExecute taint forever (or there are none): it stays.
    Never,
    /// Some taint is not tolerated: now.
    Now,
    /// Every taint is tolerated, the shortest for this long after the taint was added.
    At(DateTime<Utc>),
}

/// Kubernetes' taint manager: an untolerated NoExecute taint evicts at once; otherwise the
/// smallest tolerationSeconds among the tolerations in use counts from the taint's timeAdded.
pub fn eviction(
    taints: &[v1::Taint],
    tolerations: &[v1::Toleration],
    now: DateTime<Utc>,
) -> Eviction {
    let mut earliest: Option<DateTime<Utc>> = None;
    for taint in taints.iter().filter(|t| t.effect == effect::NO_EXECUTE) {
        let matching: Vec<&v1::Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Eviction::Now;
        }
        // A matching toleration without seconds tolerates forever.
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let seconds = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .unwrap_or(0)
            .max(0);
        let added = DateTime::parse_from_rfc3339(&taint.time_added)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        let at = added + chrono::Duration::seconds(seconds);
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    match earliest {
        Some(at) if at <= now => Eviction::Now,
        Some(at) => Eviction::At(at),
        None => Eviction::Never,
    }
}

/// Kubernetes' `MarkPodsNotReady`: a pod on a node whose agent stopped reporting (Ready
/// `Unknown`) has nobody vouching for its readiness, so its Ready condition turns False
/// (stamped `now`); the agent reports it again once it is back. Returns the pod's conditions
/// to write, when they must change. Departure from Kubernetes: a node whose agent reports
/// Ready=False is left to its agent, which still reports its pods.
pub fn not_ready_conditions(
    node: &v1::Node,
    pod: &v1::Pod,
    now: &str,
) -> Option<Vec<v1::Condition>> {
    if ready_condition(node).is_none_or(|c| c.status != status::UNKNOWN) {
        return None;
    }
    let conditions = &pod.status.as_ref()?.conditions;
    let ready = conditions
        .iter()
        .position(|c| c.r#type == condition::READY && c.status == status::TRUE)?;
    let mut out = conditions.clone();
    out[ready].status = status::FALSE.into();
    out[ready].last_transition_time = now.into();
    Some(out)
}

/// Whether a pod takes part in eviction: not finished, not already being deleted.
pub fn evictable(pod: &v1::Pod) -> bool {
    let deleting = pod
        .metadata
        .as_ref()
        .is_some_and(|m| !m.deletion_timestamp.is_empty());
    !deleting && !bosun_api::object::pod_finished(pod)
}

#[cfg(test)]
mod tests;
