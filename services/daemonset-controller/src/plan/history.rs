//! ControllerRevisions (C.5): which one is current, which to create or renumber, which old
//! ones to delete.

use std::collections::BTreeSet;

use bosun_api::daemonset::template_hash;
use bosun_api::v1;

use super::{PodFacts, RevisionFacts};

/// A revision to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevision {
    /// `<ds>-<hash>`.
    pub name: String,
    pub hash: String,
    /// max(existing) + 1.
    pub revision: i64,
}

/// The current revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// An existing revision records the DaemonSet's template. `renumber`: it is older than
    /// the newest revision (the template went back to it, `rollout undo`), so its
    /// `revision` becomes max + 1 (Kubernetes' behaviour).
    Existing {
        name: String,
        hash: String,
        renumber: Option<i64>,
    },
    /// No revision records the template: this one is created.
    Create(NewRevision),
    /// The name `<ds>-<hash>` is taken by a revision of another template: the collision
    /// count goes up by one and the next reconcile hashes again.
    Collision { name: String },
}

impl Current {
    /// The hash new pods are labelled with (empty for a collision).
    pub fn hash(&self) -> &str {
        match self {
            Current::Existing { hash, .. } => hash,
            Current::Create(n) => &n.hash,
            Current::Collision { .. } => "",
        }
    }

    /// The current revision's name.
    pub fn name(&self) -> &str {
        match self {
            Current::Existing { name, .. } | Current::Collision { name } => name,
            Current::Create(n) => &n.name,
        }
    }
}

/// Which revision is current for `ds` among its `revisions`.
pub fn current(ds: &v1::DaemonSet, revisions: &[RevisionFacts]) -> Current {
    let max = revisions.iter().map(|r| r.revision).max().unwrap_or(0);
    // The newest of the revisions recording this template (several can after a collision
    // count bump; the others become history).
    if let Some(r) = revisions
        .iter()
        .filter(|r| r.same_template)
        .max_by_key(|r| (r.revision, r.name.clone()))
    {
        let hash = if r.hash.is_empty() {
            // A revision without its label: its name carries the hash.
            let ds_name = ds.metadata.as_ref().map_or("", |m| m.name.as_str());
            r.name
                .strip_prefix(ds_name)
                .and_then(|s| s.strip_prefix('-'))
                .unwrap_or(&r.name)
                .to_string()
        } else {
            r.hash.clone()
        };
        return Current::Existing {
            name: r.name.clone(),
            hash,
            renumber: (r.revision < max).then_some(max + 1),
        };
    }
    let template = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let collision_count = ds.status.as_ref().and_then(|s| s.collision_count);
    let hash = template_hash(&template, collision_count);
    let name = format!(
        "{}-{hash}",
        ds.metadata.as_ref().map_or("", |m| m.name.as_str())
    );
    if revisions.iter().any(|r| r.name == name) {
        return Current::Collision { name };
    }
    Current::Create(NewRevision {
        name,
        hash,
        revision: max + 1,
    })
}

/// The old revisions to delete: beyond `limit` (revisionHistoryLimit) of them, oldest
/// (smallest `revision`) first, never one whose hash a live pod still carries.
pub fn cleanup(
    revisions: &[RevisionFacts],
    current: &Current,
    pods: &[PodFacts],
    limit: i32,
) -> Vec<String> {
    if matches!(current, Current::Collision { .. }) {
        return Vec::new();
    }
    let mut old: Vec<&RevisionFacts> = revisions
        .iter()
        .filter(|r| r.name != current.name())
        .collect();
    let mut to_kill = old.len().saturating_sub(limit.max(0) as usize);
    if to_kill == 0 {
        return Vec::new();
    }
    let live: BTreeSet<&str> = pods
        .iter()
        .map(|p| p.hash.as_str())
        .filter(|h| !h.is_empty())
        .collect();
    old.sort_by(|a, b| a.revision.cmp(&b.revision).then(a.name.cmp(&b.name)));
    let mut out = Vec::new();
    for r in old {
        if to_kill == 0 {
            break;
        }
        if live.contains(r.hash.as_str()) {
            continue;
        }
        out.push(r.name.clone());
        to_kill -= 1;
    }
    out
}
