//! The DaemonSet's status (C.1, Kubernetes' `updateDaemonSetStatus`), counted over the nodes
//! that should run the pod, each by its oldest pod.

use std::time::Duration;

use bosun_api::v1;
use chrono::{DateTime, Utc};

use super::{NodeFacts, PodFacts, pods_by_node};

/// The counters of the status (collisionCount, conditions and observedGeneration are the
/// plan's), and how long until a Ready pod counted here becomes available (minReadySeconds:
/// look again then).
pub fn status(
    nodes: &[NodeFacts],
    pods: &[PodFacts],
    hash: &str,
    min_ready_seconds: i32,
    now: DateTime<Utc>,
) -> (v1::DaemonSetStatus, Option<Duration>) {
    let by_node = pods_by_node(pods, true);
    let mut s = v1::DaemonSetStatus::default();
    let mut next_available: Option<Duration> = None;
    for node in nodes {
        let scheduled = by_node
            .get(&Some(node.name.as_str()))
            .filter(|p| !p.is_empty());
        if !node.placement.should_run {
            s.number_misscheduled += i32::from(scheduled.is_some());
            continue;
        }
        s.desired_number_scheduled += 1;
        let Some(pods) = scheduled else { continue };
        s.current_number_scheduled += 1;
        let oldest = pods[0];
        if oldest.ready_since.is_some() {
            s.number_ready += 1;
            match oldest.available_in(min_ready_seconds, now) {
                Some(Duration::ZERO) => s.number_available += 1,
                Some(wait) => {
                    next_available = Some(next_available.map_or(wait, |n| n.min(wait)));
                }
                None => {}
            }
        }
        s.updated_number_scheduled += i32::from(oldest.hash == hash);
    }
    s.number_unavailable = s.desired_number_scheduled - s.number_available;
    (s, next_available)
}
