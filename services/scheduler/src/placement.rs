//! Where a pod may go and where it should go: the scheduler's filters and scores as pure
//! functions over a pod's scheduling facts ([`PodFacts`]), a node's facts ([`NodeFacts`]) and
//! what is already placed on it ([`Usage`]).
//!
//! Filters run in Kubernetes' plugin order (NodeUnschedulable, TaintToleration, NodeAffinity,
//! NodeResourcesFit); a node fails on the first filter that rejects it, with Kubernetes'
//! reason strings, and [`unschedulable_message`] folds the reasons of every node into
//! Kubernetes' `0/3 nodes are available: ...` message.
//!
//! Departure from Kubernetes: a node without `cpu`, `memory` or `pods` in its allocatable has
//! no limit on that resource (Kubernetes would treat it as zero and place nothing there).

use std::collections::{BTreeMap, HashMap};

pub use bosun_api::nodematch::{Readiness, node_readiness, term_matches, tolerates};
use bosun_api::nodematch::{
    first_untolerated, node_selector_matches, pinned_node_names, tolerated,
};
use bosun_api::units::{cpu_millis, parse_quantity, whole_units};
use bosun_api::v1;
use bosun_api::vocab::{effect, taint};

/// CPU in millicores and memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_milli: i64,
    pub memory: i64,
}

/// What the scheduler needs to know about a pod, extracted once per attempt.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    pub requests: Resources,
    pub node_selector: BTreeMap<String, String>,
    /// requiredDuringSchedulingIgnoredDuringExecution, if any.
    pub required: Option<v1::NodeSelector>,
    /// preferredDuringSchedulingIgnoredDuringExecution.
    pub preferred: Vec<v1::PreferredSchedulingTerm>,
    pub tolerations: Vec<v1::Toleration>,
    /// The uid of the pod's controller (for spreading), if it has one.
    pub owner: Option<String>,
}

/// What the scheduler needs to know about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<v1::Taint>,
    pub unschedulable: bool,
    pub readiness: Readiness,
    /// CPU (millicores) and memory (bytes) allocatable; `None`: no limit.
    pub cpu_milli: Option<i64>,
    pub memory: Option<i64>,
    /// How many pods fit; `None`: no limit.
    pub pods: Option<i64>,
}

/// What is already placed on a node (bound or assumed, non-terminal pods).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub requested: Resources,
    pub pods: i64,
    /// Pods per controller uid.
    pub owners: HashMap<String, u32>,
}

impl Usage {
    /// Counts a pod in.
    pub fn add(&mut self, requests: Resources, owner: Option<&str>) {
        self.requested.cpu_milli += requests.cpu_milli;
        self.requested.memory += requests.memory;
        self.pods += 1;
        if let Some(owner) = owner {
            *self.owners.entry(owner.to_string()).or_default() += 1;
        }
    }

    /// Counts a pod out.
    pub fn remove(&mut self, requests: Resources, owner: Option<&str>) {
        self.requested.cpu_milli -= requests.cpu_milli;
        self.requested.memory -= requests.memory;
        self.pods -= 1;
        if let Some(owner) = owner
            && let Some(n) = self.owners.get_mut(owner)
        {
            *n -= 1;
            if *n == 0 {
                self.owners.remove(owner);
            }
        }
    }
}

/// Why one node cannot take the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Unschedulable,
    UntoleratedTaint { key: String, value: String },
    NodeAffinity,
    InsufficientCpu,
    InsufficientMemory,
    TooManyPods,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Unschedulable => write!(f, "node(s) were unschedulable"),
            Reason::UntoleratedTaint { key, value } => {
                write!(f, "node(s) had untolerated taint {{{key}: {value}}}")
            }
            Reason::NodeAffinity => write!(f, "node(s) didn't match Pod's node affinity/selector"),
            Reason::InsufficientCpu => write!(f, "Insufficient cpu"),
            Reason::InsufficientMemory => write!(f, "Insufficient memory"),
            Reason::TooManyPods => write!(f, "Too many pods"),
        }
    }
}

/// The facts of `pod`: summed requests (init containers as Kubernetes counts them: the larger
/// of the containers' sum and the largest init container), selector, affinity, tolerations.
pub fn pod_facts(pod: &v1::Pod) -> PodFacts {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut sum = Resources::default();
    for c in &spec.containers {
        let r = container_requests(c);
        sum.cpu_milli += r.cpu_milli;
        sum.memory += r.memory;
    }
    for c in &spec.init_containers {
        let r = container_requests(c);
        sum.cpu_milli = sum.cpu_milli.max(r.cpu_milli);
        sum.memory = sum.memory.max(r.memory);
    }
    let node_affinity = spec.affinity.and_then(|a| a.node_affinity);
    let (required, preferred) = match node_affinity {
        Some(na) => (
            na.required_during_scheduling_ignored_during_execution,
            na.preferred_during_scheduling_ignored_during_execution,
        ),
        None => (None, Vec::new()),
    };
    let owner = pod.metadata.as_ref().and_then(|m| {
        m.owner_references
            .iter()
            .find(|r| r.controller == Some(true))
            .map(|r| r.uid.clone())
    });
    PodFacts {
        requests: sum,
        node_selector: spec.node_selector,
        required,
        preferred,
        tolerations: spec.tolerations,
        owner,
    }
}

/// One container's requests (its limits where no request is given, as Kubernetes defaults).
fn container_requests(c: &v1::Container) -> Resources {
    let Some(res) = &c.resources else {
        return Resources::default();
    };
    let get = |name: &str| {
        res.requests
            .get(name)
            .or_else(|| res.limits.get(name))
            .map(String::as_str)
    };
    Resources {
        cpu_milli: get("cpu").and_then(cpu_millis).unwrap_or(0),
        memory: get("memory").and_then(whole_units).unwrap_or(0),
    }
}

/// The facts of `node`.
pub fn node_facts(node: &v1::Node) -> NodeFacts {
    let meta = node.metadata.clone().unwrap_or_default();
    let spec = node.spec.clone().unwrap_or_default();
    let status = node.status.as_ref();
    let readiness = node_readiness(node);
    let alloc = |name: &str| {
        status
            .and_then(|s| s.allocatable.get(name))
            .and_then(|q| parse_quantity(q))
    };
    NodeFacts {
        name: meta.name,
        labels: meta.labels,
        taints: spec.taints,
        unschedulable: spec.unschedulable,
        readiness,
        cpu_milli: alloc("cpu").map(|v| (v * 1000.0).floor() as i64),
        memory: alloc("memory").map(|v| v.floor() as i64),
        pods: alloc("pods").map(|v| v.floor() as i64),
    }
}

/// nodeSelector (every pair) and required node affinity (any term).
pub fn matches_affinity(pod: &PodFacts, node: &NodeFacts) -> bool {
    node_selector_matches(
        &pod.node_selector,
        pod.required.as_ref(),
        &node.labels,
        &node.name,
    )
}

/// The taint a node's readiness implies before the lifecycle controller has written it.
fn readiness_taint(node: &NodeFacts) -> Option<v1::Taint> {
    let key = match node.readiness {
        Readiness::Ready => return None,
        Readiness::NotReady => taint::NOT_READY,
        Readiness::Unknown => taint::UNREACHABLE,
    };
    Some(v1::Taint {
        key: key.into(),
        effect: effect::NO_SCHEDULE.into(),
        ..Default::default()
    })
}

/// Runs every filter; `Ok` when the node can take the pod, else the reasons of the first
/// filter that rejects it (resources can give several).
pub fn filter(pod: &PodFacts, node: &NodeFacts, usage: &Usage) -> Result<(), Vec<Reason>> {
    // NodeUnschedulable.
    if node.unschedulable {
        let cordon = v1::Taint {
            key: taint::UNSCHEDULABLE.into(),
            effect: effect::NO_SCHEDULE.into(),
            ..Default::default()
        };
        if !tolerated(&pod.tolerations, &cordon) {
            return Err(vec![Reason::Unschedulable]);
        }
    }
    // TaintToleration: the first untolerated NoSchedule/NoExecute taint, then readiness.
    let readiness = readiness_taint(node);
    if let Some(taint) = first_untolerated(&pod.tolerations, node.taints.iter().chain(&readiness)) {
        return Err(vec![Reason::UntoleratedTaint {
            key: taint.key.clone(),
            value: taint.value.clone(),
        }]);
    }
    // NodeAffinity.
    if !matches_affinity(pod, node) {
        return Err(vec![Reason::NodeAffinity]);
    }
    // NodeResourcesFit.
    let mut reasons = Vec::new();
    if node.pods.is_some_and(|max| usage.pods + 1 > max) {
        reasons.push(Reason::TooManyPods);
    }
    let short = |alloc: Option<i64>, used: i64, want: i64| {
        want > 0 && alloc.is_some_and(|alloc| want > alloc - used)
    };
    if short(
        node.cpu_milli,
        usage.requested.cpu_milli,
        pod.requests.cpu_milli,
    ) {
        reasons.push(Reason::InsufficientCpu);
    }
    if short(node.memory, usage.requested.memory, pod.requests.memory) {
        reasons.push(Reason::InsufficientMemory);
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Each score is 0..=100; the node with the highest sum wins.
pub const MAX_SCORE: i64 = 100;

/// Least allocated: the mean free share of cpu and memory after placing the pod (a resource
/// without a limit counts as fully free).
pub fn score_least_allocated(pod: &PodFacts, node: &NodeFacts, usage: &Usage) -> i64 {
    let free = |alloc: Option<i64>, used: i64, want: i64| match alloc {
        Some(alloc) if alloc > 0 => ((alloc - used - want).max(0) * MAX_SCORE) / alloc,
        Some(_) => 0,
        None => MAX_SCORE,
    };
    (free(
        node.cpu_milli,
        usage.requested.cpu_milli,
        pod.requests.cpu_milli,
    ) + free(node.memory, usage.requested.memory, pod.requests.memory))
        / 2
}

/// Spread: fewer pods of the same controller on the node is better.
pub fn score_spread(pod: &PodFacts, usage: &Usage) -> i64 {
    let same = pod
        .owner
        .as_ref()
        .and_then(|o| usage.owners.get(o))
        .copied()
        .unwrap_or(0) as i64;
    MAX_SCORE / (1 + same)
}

/// PreferNoSchedule taints the pod does not tolerate cost half the score each.
pub fn score_prefer_no_schedule(pod: &PodFacts, node: &NodeFacts) -> i64 {
    let untolerated = node
        .taints
        .iter()
        .filter(|t| t.effect == effect::PREFER_NO_SCHEDULE && !tolerated(&pod.tolerations, t))
        .count() as u32;
    MAX_SCORE >> untolerated.min(7)
}

/// Preferred node affinity: the weight of the matching terms as a share of all weights.
pub fn score_preferred_affinity(pod: &PodFacts, node: &NodeFacts) -> i64 {
    let total: i64 = pod
        .preferred
        .iter()
        .map(|p| i64::from(p.weight.max(0)))
        .sum();
    if total == 0 {
        return 0;
    }
    let matched: i64 = pod
        .preferred
        .iter()
        .filter(|p| {
            p.preference
                .as_ref()
                .is_some_and(|t| term_matches(t, &node.labels, &node.name))
        })
        .map(|p| i64::from(p.weight.max(0)))
        .sum();
    matched * MAX_SCORE / total
}

/// The sum of every score.
pub fn score(pod: &PodFacts, node: &NodeFacts, usage: &Usage) -> i64 {
    score_least_allocated(pod, node, usage)
        + score_spread(pod, usage)
        + score_prefer_no_schedule(pod, node)
        + score_preferred_affinity(pod, node)
}

/// How many feasible nodes to find before choosing (Kubernetes' adaptive
/// percentageOfNodesToScore: 50% minus 1% per 125 nodes, at least 5%, at least 100 nodes).
pub fn feasible_nodes_to_find(nodes: usize) -> usize {
    if nodes <= 100 {
        return nodes;
    }
    let percent = 50usize.saturating_sub(nodes / 125).max(5);
    (nodes * percent / 100).max(100)
}

/// Kubernetes' FitError message: `0/3 nodes are available: 1 Insufficient cpu, 2 node(s)
/// didn't match Pod's node affinity/selector.` (reasons counted over nodes and sorted as
/// strings, like Kubernetes).
pub fn unschedulable_message(total_nodes: usize, reasons: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    if parts.is_empty() {
        format!("0/{total_nodes} nodes are available.")
    } else {
        format!("0/{total_nodes} nodes are available: {}.", parts.join(", "))
    }
}

/// A cheap, stable tie-breaker so equal nodes are chosen evenly rather than always the first.
fn tie_break(pod_seed: u64, node: &str) -> u64 {
    // FNV-1a over the node name, mixed with the pod's seed.
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ pod_seed;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The outcome of one scheduling attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Placement {
    /// The index (into the nodes given) of the chosen node.
    Node(usize),
    /// No node fits: the reasons counted over nodes.
    Unschedulable(BTreeMap<String, usize>),
}

/// Kubernetes' NodeAffinity PreFilter: when the pod's required node affinity pins it to node
/// names (a daemon pod's `matchFields: metadata.name In [node]`), the indices (via `index`,
/// name to position in the node list) of those nodes, sorted: the only ones that can take
/// it. Names of nodes that do not exist are dropped. `None`: any node may.
pub fn candidates(pod: &PodFacts, index: impl Fn(&str) -> Option<usize>) -> Option<Vec<usize>> {
    let names = pinned_node_names(pod.required.as_ref())?;
    let mut only: Vec<usize> = names.into_iter().filter_map(index).collect();
    only.sort_unstable();
    Some(only)
}

/// Chooses a node: with `candidates` (see [`candidates`]), the best of those that pass the
/// filters; without, or when none of them does, filters `nodes` starting at `start`
/// (rotating, so successive pods look at different nodes first), stops after
/// [`feasible_nodes_to_find`] feasible ones, and picks the best score. A pinned pod that fits
/// nowhere so gets the reasons of every node, as if nothing had been narrowed (the nodes
/// outside the candidates fail the affinity filter, or an earlier one).
pub fn select<'a>(
    pod: &PodFacts,
    nodes: &'a [NodeFacts],
    candidates: Option<&[usize]>,
    usage: impl Fn(&str) -> Option<&'a Usage>,
    start: usize,
    pod_seed: u64,
) -> Placement {
    if let Some(only) = candidates {
        let valid = only.iter().copied().filter(|&i| i < nodes.len());
        if let (Some(idx), _) = walk(pod, nodes, valid, &usage, pod_seed, usize::MAX, false) {
            return Placement::Node(idx);
        }
    }
    let want = feasible_nodes_to_find(nodes.len());
    let order = (0..nodes.len()).map(|i| (start + i) % nodes.len());
    match walk(pod, nodes, order, usage, pod_seed, want, true) {
        (Some(idx), _) => Placement::Node(idx),
        (None, reasons) => Placement::Unschedulable(reasons),
    }
}

/// Filters the nodes at `order` until `want` feasible ones are found; the best of them, and
/// (when `count_reasons`) the reasons of the nodes that failed.
fn walk<'a>(
    pod: &PodFacts,
    nodes: &'a [NodeFacts],
    order: impl Iterator<Item = usize>,
    usage: impl Fn(&str) -> Option<&'a Usage>,
    pod_seed: u64,
    want: usize,
    count_reasons: bool,
) -> (Option<usize>, BTreeMap<String, usize>) {
    let empty = Usage::default();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(i64, u64, usize)> = None;
    let mut found = 0;
    for idx in order {
        let node = &nodes[idx];
        let used = usage(&node.name).unwrap_or(&empty);
        match filter(pod, node, used) {
            Ok(()) => {
                let candidate = (score(pod, node, used), tie_break(pod_seed, &node.name), idx);
                if best.is_none_or(|b| (candidate.0, candidate.1) > (b.0, b.1)) {
                    best = Some(candidate);
                }
                found += 1;
                if found >= want {
                    break;
                }
            }
            Err(rs) if count_reasons => {
                for r in rs {
                    *reasons.entry(r.to_string()).or_default() += 1;
                }
            }
            Err(_) => {}
        }
    }
    (best.map(|(_, _, idx)| idx), reasons)
}

#[cfg(test)]
mod tests;
