//! Whether a pod may run on a node, as far as the node's labels, name, taints and readiness
//! decide it: node selectors, required node affinity terms, and taints against tolerations.
//!
//! The scheduler filters nodes with these predicates and the DaemonSet controller decides
//! placement with them: both must read a selector or a taint the same way, so the code lives
//! here once.

use std::collections::{BTreeMap, BTreeSet};

use crate::v1;
use crate::vocab::{condition, effect, status};

/// Kubernetes' `ToleratesTaint`: effect empty matches every effect, key empty (with Exists)
/// matches every key, Exists ignores the value, Equal (or empty) compares it.
pub fn tolerates(toleration: &v1::Toleration, taint: &v1::Taint) -> bool {
    if !toleration.effect.is_empty() && toleration.effect != taint.effect {
        return false;
    }
    if !toleration.key.is_empty() && toleration.key != taint.key {
        return false;
    }
    match toleration.operator.as_str() {
        "Exists" => true,
        "" | "Equal" => toleration.value == taint.value,
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub fn tolerated(tolerations: &[v1::Toleration], taint: &v1::Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// The first of `taints` with a NoSchedule or NoExecute effect that `tolerations` do not
/// tolerate (Kubernetes' TaintToleration filter; PreferNoSchedule never rejects).
pub fn first_untolerated<'a>(
    tolerations: &[v1::Toleration],
    taints: impl IntoIterator<Item = &'a v1::Taint>,
) -> Option<&'a v1::Taint> {
    taints.into_iter().find(|t| {
        (t.effect == effect::NO_SCHEDULE || t.effect == effect::NO_EXECUTE)
            && !tolerated(tolerations, t)
    })
}

/// The first of `taints` with the NoExecute effect that `tolerations` do not tolerate: a pod
/// that meets one must leave the node (it may still stay `tolerationSeconds` when tolerated).
pub fn first_untolerated_no_execute<'a>(
    tolerations: &[v1::Toleration],
    taints: impl IntoIterator<Item = &'a v1::Taint>,
) -> Option<&'a v1::Taint> {
    taints
        .into_iter()
        .find(|t| t.effect == effect::NO_EXECUTE && !tolerated(tolerations, t))
}

/// Whether a node's labels and name satisfy one term: every expression and field must hold.
/// A term with neither matches nothing (Kubernetes).
pub fn term_matches(
    term: &v1::NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    name: &str,
) -> bool {
    if term.match_expressions.is_empty() && term.match_fields.is_empty() {
        return false;
    }
    term.match_expressions
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && term.match_fields.iter().all(|r| {
            // Only metadata.name is a node field selectors may name.
            r.key == "metadata.name" && requirement_matches(r, Some(name))
        })
}

/// One requirement against the value the node has for its key (`None`: no such label).
fn requirement_matches(r: &v1::NodeSelectorRequirement, value: Option<&str>) -> bool {
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| r.values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (value.and_then(number), r.values.as_slice()) else {
                return false;
            };
            let Some(want) = number(want) else {
                return false;
            };
            if r.operator == "Gt" {
                have > want
            } else {
                have < want
            }
        }
        _ => false,
    }
}

/// A pod's nodeSelector (every pair) and required node affinity (any term; none given:
/// every node) against a node's labels and name.
pub fn node_selector_matches(
    node_selector: &BTreeMap<String, String>,
    required: Option<&v1::NodeSelector>,
    labels: &BTreeMap<String, String>,
    name: &str,
) -> bool {
    let selector_ok = node_selector.iter().all(|(k, v)| labels.get(k) == Some(v));
    let affinity_ok = required.is_none_or(|required| {
        required
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, name))
    });
    selector_ok && affinity_ok
}

/// The only node names a required node affinity can match, when it names them (Kubernetes'
/// NodeAffinity PreFilter): every term must carry `matchFields: metadata.name In [...]`
/// (several such requirements in one term intersect; the terms unite). `None`: some term
/// does not name nodes (or there is no affinity, or no term), so any node may match. An
/// empty set: the terms' names conflict and no node matches. The names are candidates only:
/// the rest of each term (and the pod's nodeSelector) still has to hold on the node.
pub fn pinned_node_names(required: Option<&v1::NodeSelector>) -> Option<BTreeSet<&str>> {
    let terms = &required?.node_selector_terms;
    if terms.is_empty() {
        return None;
    }
    let mut names = BTreeSet::new();
    for term in terms {
        let mut in_term: Option<BTreeSet<&str>> = None;
        for r in term
            .match_fields
            .iter()
            .filter(|r| r.key == "metadata.name" && r.operator == "In")
        {
            let values: BTreeSet<&str> = r.values.iter().map(String::as_str).collect();
            in_term = Some(match in_term {
                None => values,
                Some(prev) => prev.intersection(&values).copied().collect(),
            });
        }
        names.extend(in_term?);
    }
    Some(names)
}

/// The required node affinity of a pod spec, if it has one.
pub fn required_node_affinity(spec: &v1::PodSpec) -> Option<&v1::NodeSelector> {
    spec.affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
}

/// Whether a node's agent says it is ready (its `Ready` condition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Ready=True.
    Ready,
    /// Ready=False: the agent is up and says it cannot run pods.
    NotReady,
    /// Ready=Unknown or no Ready condition: nobody has heard from the agent.
    Unknown,
}

/// The readiness a node's status reports.
pub fn node_readiness(node: &v1::Node) -> Readiness {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == condition::READY))
        .map_or(Readiness::Unknown, |c| match c.status.as_str() {
            status::TRUE => Readiness::Ready,
            status::FALSE => Readiness::NotReady,
            _ => Readiness::Unknown,
        })
}

#[cfg(test)]
mod tests;
