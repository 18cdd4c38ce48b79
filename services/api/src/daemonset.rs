//! A DaemonSet's pure decisions (KUBERNETES.md C.2–C.4), shared by the DaemonSet controller
//! and the CLI: whether a node should run the daemon pod ([`placement`]), the tolerations
//! every daemon pod gets ([`daemon_tolerations`]), the pod made for one node
//! ([`pod_for_node`]), the template's hash naming its ControllerRevision ([`template_hash`]),
//! the rolling update's budgets ([`resolve_rolling`]) and when a pod counts as available
//! ([`pod_available`]). Nothing here does I/O.
//!
//! Node matching (selectors, affinity, taints) is [`crate::nodematch`]: the scheduler's
//! code, so the controller and the scheduler never disagree about a node.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::nodematch;
use crate::v1;
use crate::vocab::daemonset::{ON_DELETE, PAUSED_ANNOTATION, REVISION_HASH_LABEL};
use crate::vocab::{condition, effect, status, taint};

/// The apiVersion of a DaemonSet, as its dependents' ownerReferences name it.
pub const API_VERSION: &str = "apps/v1";
/// The kind, as ownerReferences name it.
pub const KIND: &str = "DaemonSet";
/// The alphabet Kubernetes renders hashes in (`rand.SafeEncodeString`: no vowels, no
/// look-alikes, so a hash never spells a word).
pub const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Whether a node should run a DaemonSet's pod (Kubernetes' `NodeShouldRunDaemonPod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// A pod should be created there if none runs.
    pub should_run: bool,
    /// A pod already there may stay (false: every daemon pod on the node is deleted).
    pub should_continue_running: bool,
}

impl Placement {
    const NEITHER: Placement = Placement {
        should_run: false,
        should_continue_running: false,
    };
}

/// The tolerations the controller adds to every daemon pod (C.2 table), all `Exists` without
/// `tolerationSeconds`, so a daemon pod is never evicted for them: not-ready and unreachable
/// (NoExecute), disk, memory and pid pressure and unschedulable (NoSchedule: daemon pods run
/// on cordoned nodes), and network-unavailable (NoSchedule) only for `hostNetwork` pods.
pub fn daemon_tolerations(host_network: bool) -> Vec<v1::Toleration> {
    let exists = |key: &str, effect: &str| v1::Toleration {
        key: key.to_string(),
        operator: "Exists".to_string(),
        value: String::new(),
        effect: effect.to_string(),
        toleration_seconds: None,
    };
    let mut out = vec![
        exists(taint::NOT_READY, effect::NO_EXECUTE),
        exists(taint::UNREACHABLE, effect::NO_EXECUTE),
        exists(taint::DISK_PRESSURE, effect::NO_SCHEDULE),
        exists(taint::MEMORY_PRESSURE, effect::NO_SCHEDULE),
        exists(taint::PID_PRESSURE, effect::NO_SCHEDULE),
        exists(taint::UNSCHEDULABLE, effect::NO_SCHEDULE),
    ];
    if host_network {
        out.push(exists(taint::NETWORK_UNAVAILABLE, effect::NO_SCHEDULE));
    }
    out
}

/// `tolerations` with the daemon tolerations added (Kubernetes'
/// `AddOrUpdateDaemonPodTolerations`: one of the same key and effect is replaced).
pub fn with_daemon_tolerations(
    tolerations: &[v1::Toleration],
    host_network: bool,
) -> Vec<v1::Toleration> {
    let mut out: Vec<v1::Toleration> = tolerations.to_vec();
    for t in daemon_tolerations(host_network) {
        out.retain(|have| !(have.key == t.key && have.effect == t.effect));
        out.push(t);
    }
    out
}

/// Whether `node` should run (and may keep running) the pod of `template` (C.2): the
/// template's `nodeName`, its nodeSelector and required node affinity against the node's
/// labels, and the node's taints against the template's tolerations plus the daemon
/// tolerations. Readiness, cordoning (tolerated) and resources are not considered.
pub fn placement(template: &v1::PodTemplateSpec, node: &v1::Node) -> Placement {
    let empty = v1::PodSpec::default();
    let spec = template.spec.as_ref().unwrap_or(&empty);
    let no_labels = BTreeMap::new();
    let (name, labels) = node
        .metadata
        .as_ref()
        .map_or(("", &no_labels), |m| (m.name.as_str(), &m.labels));
    if !spec.node_name.is_empty() && spec.node_name != name {
        return Placement::NEITHER;
    }
    if !nodematch::node_selector_matches(
        &spec.node_selector,
        nodematch::required_node_affinity(spec),
        labels,
        name,
    ) {
        return Placement::NEITHER;
    }
    let tolerations = with_daemon_tolerations(&spec.tolerations, spec.host_network);
    let taints = node
        .spec
        .as_ref()
        .map(|s| s.taints.as_slice())
        .unwrap_or_default();
    Placement {
        should_run: nodematch::first_untolerated(&tolerations, taints).is_none(),
        should_continue_running: nodematch::first_untolerated_no_execute(&tolerations, taints)
            .is_none(),
    }
}

/// The controlling ownerReference of a DaemonSet's pods and revisions.
pub fn controller_ref(ds: &v1::DaemonSet) -> v1::OwnerReference {
    let meta = ds.metadata.clone().unwrap_or_default();
    v1::OwnerReference {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        name: meta.name,
        uid: meta.uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The affinity of a daemon pod pinned to `node_name` (Kubernetes'
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`): the required node affinity becomes one term
/// `matchFields: metadata.name In [node]`; preferred terms and pod (anti-)affinity are kept.
pub fn pin_to_node(affinity: Option<v1::Affinity>, node_name: &str) -> v1::Affinity {
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity.node_affinity.get_or_insert_with(Default::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(v1::NodeSelector {
        node_selector_terms: vec![v1::NodeSelectorTerm {
            match_expressions: Vec::new(),
            match_fields: vec![v1::NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: vec![node_name.to_string()],
            }],
        }],
    });
    affinity
}

/// The node a daemon pod is pinned to: its `nodeName` once bound, else the single node its
/// required affinity names (`matchFields metadata.name In [node]`), if any.
pub fn pod_node(pod: &v1::Pod) -> Option<&str> {
    let spec = pod.spec.as_deref()?;
    if !spec.node_name.is_empty() {
        return Some(&spec.node_name);
    }
    let required = nodematch::required_node_affinity(spec)?;
    let [term] = required.node_selector_terms.as_slice() else {
        return None;
    };
    let field = term
        .match_fields
        .iter()
        .find(|f| f.key == "metadata.name" && f.operator == "In")?;
    match field.values.as_slice() {
        [node] => Some(node),
        _ => None,
    }
}

/// The pod `ds` runs on `node_name` with its template of hash `hash`: named
/// `<ds>-<random>` (generateName), the template's labels plus `controller-revision-hash`,
/// its annotations, a controlling ownerReference, pinned to the node by required affinity
/// (bound by the scheduler, not by `nodeName`), with the daemon tolerations added.
pub fn pod_for_node(ds: &v1::DaemonSet, node_name: &str, hash: &str) -> v1::Pod {
    let meta = ds.metadata.clone().unwrap_or_default();
    let template = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut labels: BTreeMap<String, String> = tmeta.labels;
    labels.insert(REVISION_HASH_LABEL.into(), hash.to_string());
    let mut spec = template.spec.unwrap_or_default();
    spec.affinity = Some(Box::new(pin_to_node(
        spec.affinity.take().map(|a| *a),
        node_name,
    )));
    spec.tolerations = with_daemon_tolerations(&spec.tolerations, spec.host_network);
    v1::Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: Some(v1::ObjectMeta {
            generate_name: format!("{}-", meta.name),
            namespace: meta.namespace.clone(),
            labels,
            annotations: tmeta.annotations,
            owner_references: vec![controller_ref(ds)],
            ..Default::default()
        }),
        spec: Some(Box::new(spec)),
        status: None,
    }
}

/// 32-bit FNV-1a.
fn fnv1a32(bytes: impl IntoIterator<Item = u8>, mut hash: u32) -> u32 {
    for b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Renders `s` in [`SAFE_ALPHABET`], one letter per byte (Kubernetes' `SafeEncodeString`).
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// The hash of a pod template naming its ControllerRevision (`<ds>-<hash>`) and labelling
/// its pods: FNV-1a (32 bits) over the template's protobuf encoding (deterministic: maps are
/// ordered, fields in number order), then the collision count's 4 bytes (little endian) when
/// set, the number's decimal digits rendered in [`SAFE_ALPHABET`] (as Kubernetes'
/// `ComputeHash`). Stable across processes and versions as long as the template's fields
/// and their numbers are; a bumped collision count gives another name.
pub fn template_hash(template: &v1::PodTemplateSpec, collision_count: Option<i32>) -> String {
    let encoded = prost::Message::encode_to_vec(template);
    let mut hash = fnv1a32(encoded, 0x811c_9dc5);
    if let Some(c) = collision_count {
        hash = fnv1a32((c as u32).to_le_bytes(), hash);
    }
    safe_encode(&hash.to_string())
}

/// An int-or-percent against `total`, percentages rounded **up** (`GetScaledValueFromIntOrPercent`
/// with roundUp). A malformed percentage counts as 0 (validation refuses it anyway).
pub fn scaled_value(value: Option<&v1::IntOrString>, total: i32) -> i32 {
    let Some(v) = value else { return 0 };
    if !v.is_string {
        return v.int_val.max(0);
    }
    let Some(Ok(pct)) = v.str_val.strip_suffix('%').map(|p| p.trim().parse::<i64>()) else {
        return 0;
    };
    let scaled = (i64::from(total.max(0)) * pct.max(0) + 99) / 100;
    scaled.min(i64::from(i32::MAX)) as i32
}

/// The rolling update's budgets for `desired` scheduled nodes: `(max_surge,
/// max_unavailable)`, each an int or a percentage of `desired` rounded up; both zero (never
/// valid, but defensive, as Kubernetes) means max_unavailable 1.
pub fn resolve_rolling(strategy: Option<&v1::DaemonSetUpdateStrategy>, desired: i32) -> (i32, i32) {
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let surge = scaled_value(ru.and_then(|r| r.max_surge.as_ref()), desired);
    let unavailable = match ru.and_then(|r| r.max_unavailable.as_ref()) {
        Some(v) => scaled_value(Some(v), desired),
        // Unset: the default, 1 (only when surge is not in use).
        None if surge == 0 => 1,
        None => 0,
    };
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

/// Whether the DaemonSet updates its pods itself (RollingUpdate, the default) rather than
/// waiting for them to be deleted (OnDelete).
pub fn is_on_delete(ds: &v1::DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .is_some_and(|s| s.r#type == ON_DELETE)
}

/// Whether the DaemonSet's rollout is paused (bosun's `bosun.dev/rollout-paused: "true"`).
pub fn is_paused(ds: &v1::DaemonSet) -> bool {
    ds.metadata
        .as_ref()
        .and_then(|m| m.annotations.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Parses an RFC 3339 timestamp as stored in the API.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// When the pod last turned Ready, if it is Ready now (`None`: not ready). A Ready
/// condition without a transition time counts as ready since ever.
pub fn ready_since(pod: &v1::Pod) -> Option<DateTime<Utc>> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == condition::READY)?;
    if c.status != status::TRUE {
        return None;
    }
    Some(parse_time(&c.last_transition_time).unwrap_or(DateTime::<Utc>::MIN_UTC))
}

/// Whether `pod` is available at `now`: Ready, and Ready for at least `min_ready_seconds`
/// (Kubernetes' `IsPodAvailable`), and not being deleted.
pub fn pod_available(pod: &v1::Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    available_in(pod, min_ready_seconds, now) == Some(Duration::ZERO)
}

/// How long until `pod` becomes available: `Some(0)` when it is, `Some(d)` when it is
/// Ready and will be in `d`, `None` when it is not Ready (or is being deleted).
pub fn available_in(pod: &v1::Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> Option<Duration> {
    if pod
        .metadata
        .as_ref()
        .is_some_and(|m| !m.deletion_timestamp.is_empty())
    {
        return None;
    }
    let since = ready_since(pod)?;
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    let at = since + chrono::Duration::seconds(i64::from(min_ready_seconds));
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests;
