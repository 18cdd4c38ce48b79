//! Immutable fields on update.

use super::Errs;
use crate::v1::{self, Object, object::Object as O};

/// Metadata name/namespace/uid, then the per-kind immutable spec fields.
pub(crate) fn validate_update(e: &mut Errs, old: &Object, new: &Object) {
    if old.kind() != new.kind() {
        e.invalid("kind", format!("{:?}", new.kind()), "field is immutable");
        return;
    }
    for (path, a, b) in [
        ("metadata.name", old.name(), new.name()),
        ("metadata.namespace", old.namespace(), new.namespace()),
    ] {
        if a != b {
            e.invalid(path, b, "field is immutable");
        }
    }
    if !old.uid().is_empty() && !new.uid().is_empty() && old.uid() != new.uid() {
        e.invalid("metadata.uid", new.uid(), "field is immutable");
    }
    match (&old.object, &new.object) {
        (Some(O::Job(a)), Some(O::Job(b))) => {
            if let (Some(a), Some(b)) = (&a.spec, &b.spec) {
                job_update(e, a, b, "spec");
            }
        }
        (Some(O::DaemonSet(a)), Some(O::DaemonSet(b))) => {
            let (sa, sb) = (
                a.spec.as_ref().and_then(|s| s.selector.as_ref()),
                b.spec.as_ref().and_then(|s| s.selector.as_ref()),
            );
            if sa != sb {
                e.invalid("spec.selector", format!("{sb:?}"), "field is immutable");
            }
        }
        (Some(O::Pod(a)), Some(O::Pod(b))) => {
            if let (Some(a), Some(b)) = (&a.spec, &b.spec) {
                pod_update(e, a, b);
            }
        }
        _ => {}
    }
}

fn immutable<T: PartialEq + std::fmt::Debug>(e: &mut Errs, path: &str, a: &T, b: &T) {
    if a != b {
        e.invalid(path, b, "field is immutable");
    }
}

fn job_update(e: &mut Errs, a: &v1::JobSpec, b: &v1::JobSpec, p: &str) {
    immutable(e, &format!("{p}.selector"), &a.selector, &b.selector);
    immutable(
        e,
        &format!("{p}.completionMode"),
        &a.completion_mode,
        &b.completion_mode,
    );
    immutable(
        e,
        &format!("{p}.podFailurePolicy"),
        &a.pod_failure_policy,
        &b.pod_failure_policy,
    );
    immutable(
        e,
        &format!("{p}.successPolicy"),
        &a.success_policy,
        &b.success_policy,
    );
    immutable(
        e,
        &format!("{p}.backoffLimitPerIndex"),
        &a.backoff_limit_per_index,
        &b.backoff_limit_per_index,
    );
    immutable(e, &format!("{p}.managedBy"), &a.managed_by, &b.managed_by);
    if a.completions != b.completions {
        // Elastic Indexed Jobs: completions may change together with parallelism.
        let elastic = b.completion_mode == "Indexed" && b.completions == b.parallelism;
        if !elastic {
            e.invalid(
                format!("{p}.completions"),
                b.completions,
                "field is immutable",
            );
        }
    }
    if a.template != b.template {
        // While suspended, the scheduling directives may change (Kubernetes' "mutable
        // scheduling directives"); everything else of the template is immutable.
        let mut a_t = a.template.clone().unwrap_or_default();
        let mut b_t = b.template.clone().unwrap_or_default();
        if b.suspend == Some(true) {
            for t in [&mut a_t, &mut b_t] {
                if let Some(m) = t.metadata.as_mut() {
                    m.labels.clear();
                    m.annotations.clear();
                }
                if let Some(s) = t.spec.as_mut() {
                    s.node_selector.clear();
                    s.tolerations.clear();
                    s.scheduling_gates.clear();
                    if let Some(aff) = s.affinity.as_mut() {
                        aff.node_affinity = None;
                    }
                }
            }
        }
        if a_t != b_t {
            e.invalid(format!("{p}.template"), "", "field is immutable");
        }
    }
}

fn pod_update(e: &mut Errs, a: &v1::PodSpec, b: &v1::PodSpec) {
    // Allowed: container images, activeDeadlineSeconds (set, or lowered), added tolerations.
    let mut a2 = a.clone();
    let b2 = b.clone();
    for (ca, cb) in a2.containers.iter_mut().zip(b2.containers.iter()) {
        ca.image.clone_from(&cb.image);
    }
    for (ca, cb) in a2.init_containers.iter_mut().zip(b2.init_containers.iter()) {
        ca.image.clone_from(&cb.image);
    }
    match (a.active_deadline_seconds, b.active_deadline_seconds) {
        (None, Some(_)) => a2.active_deadline_seconds = b.active_deadline_seconds,
        (Some(x), Some(y)) if y <= x => a2.active_deadline_seconds = b.active_deadline_seconds,
        _ => {}
    }
    if b.tolerations.len() >= a.tolerations.len()
        && b.tolerations[..a.tolerations.len()] == a.tolerations[..]
    {
        a2.tolerations.clone_from(&b.tolerations);
    }
    if a2 != b2 {
        e.forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations` (only additions to existing tolerations)");
    }
}
