//! The garbage collector's decisions, free of I/O (Kubernetes' `attemptToDeleteItem` and
//! `processDeletingDependentsItem`/`attemptToOrphan`, `pkg/controller/garbagecollector`).
//!
//! The reconciler gathers facts (the item's latest metadata, what became of each owner,
//! the item's own dependents) and these functions say what to do.

use bosun_api::v1::ObjectMeta;

/// The finalizers of a Foreground delete (the owner waits for its blocking dependents) and of
/// an Orphan delete (the owner waits for its dependents to be released).
pub use bosun_api::vocab::finalizer::{
    FOREGROUND as FOREGROUND_FINALIZER, ORPHAN as ORPHAN_FINALIZER,
};
use bosun_api::vocab::propagation;

/// A delete propagation policy, as the broker's `propagationPolicy` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    /// The wire spelling (`"Background"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Background => propagation::BACKGROUND,
            Propagation::Foreground => propagation::FOREGROUND,
            Propagation::Orphan => propagation::ORPHAN,
        }
    }
}

/// What became of one owner an item references, as verified against the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists (same uid) and is not waiting for its dependents.
    Solid,
    /// No object with that uid exists: the reference dangles.
    Dangling,
    /// The owner is being deleted in the foreground: its dependents must go first.
    WaitingForDependents,
    /// The owner's kind is unknown to bosun: it cannot be checked, so it holds the item.
    Unverifiable,
}

/// What to do with an item looked at as a dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependentAction {
    /// Leave it alone.
    Keep,
    /// Remove the ownerReferences with these uids (a solid owner still holds the item).
    RemoveReferences(Vec<String>),
    /// Delete the item with this propagation.
    Delete(Propagation),
}

/// Whether `meta` is marked for deletion.
pub fn is_being_deleted(meta: &ObjectMeta) -> bool {
    !meta.deletion_timestamp.is_empty()
}

/// Whether `meta` carries finalizer `name`.
pub fn has_finalizer(meta: &ObjectMeta, name: &str) -> bool {
    meta.finalizers.iter().any(|f| f == name)
}

/// Whether `meta` is an owner being deleted in the foreground.
pub fn is_deleting_dependents(meta: &ObjectMeta) -> bool {
    is_being_deleted(meta) && has_finalizer(meta, FOREGROUND_FINALIZER)
}

/// Whether `meta` is an owner being deleted with its dependents orphaned.
pub fn is_orphaning(meta: &ObjectMeta) -> bool {
    is_being_deleted(meta) && has_finalizer(meta, ORPHAN_FINALIZER)
}

/// Decides the fate of an item with ownerReferences (`owners`: each reference's uid and
/// what became of that owner); `has_dependents` says whether anything references the item.
pub fn plan_dependent(
    meta: &ObjectMeta,
    owners: &[(String, OwnerState)],
    has_dependents: bool,
) -> DependentAction {
    // Already on its way out (graceful termination, other finalizers): nothing to add.
    if is_being_deleted(meta) || owners.is_empty() {
        return DependentAction::Keep;
    }
    let holds = |s: &OwnerState| matches!(s, OwnerState::Solid | OwnerState::Unverifiable);
    if owners.iter().any(|(_, s)| holds(s)) {
        // Kubernetes: a solid owner keeps the item; references to owners that are gone
        // or leaving are removed so they stop mattering.
        let stale: Vec<String> = owners
            .iter()
            .filter(|(_, s)| !holds(s))
            .map(|(uid, _)| uid.clone())
            .collect();
        return if stale.is_empty() {
            DependentAction::Keep
        } else {
            DependentAction::RemoveReferences(stale)
        };
    }
    let waiting = owners
        .iter()
        .any(|(_, s)| *s == OwnerState::WaitingForDependents);
    if waiting && has_dependents {
        // Cascade: the item's own dependents must go before it does.
        return DependentAction::Delete(Propagation::Foreground);
    }
    // Every owner is gone (or leaving): delete, honouring the item's own policy finalizer.
    let policy = if has_finalizer(meta, FOREGROUND_FINALIZER) {
        Propagation::Foreground
    } else if has_finalizer(meta, ORPHAN_FINALIZER) {
        Propagation::Orphan
    } else {
        Propagation::Background
    };
    DependentAction::Delete(policy)
}

/// One dependent of an owner, as the owner's reconcile sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependentRef {
    /// The dependent's work-queue key.
    pub key: String,
    /// Whether its reference to the owner has `blockOwnerDeletion: true`.
    pub blocks: bool,
    /// Whether it is already marked for deletion.
    pub being_deleted: bool,
}

/// What to do with an item looked at as an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerAction {
    /// Not being deleted with a garbage-collector finalizer: nothing to do as an owner.
    None,
    /// Foreground: these dependents (not yet being deleted) must be deleted; the owner
    /// waits for its blocking dependents.
    DeleteDependents(Vec<String>),
    /// Foreground, every blocking dependent gone: remove `foregroundDeletion`.
    FinishForeground,
    /// Orphan: remove the owner's reference from these dependents, then the finalizer.
    Orphan(Vec<String>),
}

/// Decides what an owner marked for deletion needs, from its dependents.
pub fn plan_owner(meta: &ObjectMeta, dependents: &[DependentRef]) -> OwnerAction {
    // Kubernetes handles the orphan finalizer first when both are present.
    if is_orphaning(meta) {
        return OwnerAction::Orphan(dependents.iter().map(|d| d.key.clone()).collect());
    }
    if !is_deleting_dependents(meta) {
        return OwnerAction::None;
    }
    if !dependents.iter().any(|d| d.blocks) {
        return OwnerAction::FinishForeground;
    }
    OwnerAction::DeleteDependents(
        dependents
            .iter()
            .filter(|d| !d.being_deleted)
            .map(|d| d.key.clone())
            .collect(),
    )
}

/// `finalizers` without `name`.
pub fn without_finalizer(finalizers: &[String], name: &str) -> Vec<String> {
    finalizers.iter().filter(|f| *f != name).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use OwnerState::*;

    fn meta(deleting: bool, finalizers: &[&str]) -> ObjectMeta {
        ObjectMeta {
            name: "x".into(),
            deletion_timestamp: if deleting {
                "2026-01-01T00:00:00Z".into()
            } else {
                String::new()
            },
            finalizers: finalizers.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    fn owners(list: &[(&str, OwnerState)]) -> Vec<(String, OwnerState)> {
        list.iter().map(|(u, s)| (u.to_string(), *s)).collect()
    }

    #[test]
    fn a_dependent_is_deleted_only_when_no_owner_holds_it() {
        use DependentAction::*;
        use Propagation::*;
        type Case<'a> = (
            &'a str,
            ObjectMeta,
            Vec<(String, OwnerState)>,
            bool,
            DependentAction,
        );
        let cases: Vec<Case> = vec![
            ("no owners", meta(false, &[]), owners(&[]), false, Keep),
            (
                "owner alive",
                meta(false, &[]),
                owners(&[("a", Solid)]),
                false,
                Keep,
            ),
            (
                "owner gone",
                meta(false, &[]),
                owners(&[("a", Dangling)]),
                false,
                Delete(Background),
            ),
            (
                "one of two owners gone",
                meta(false, &[]),
                owners(&[("a", Dangling), ("b", Solid)]),
                false,
                RemoveReferences(vec!["a".into()]),
            ),
            (
                "unknown owner kinds hold",
                meta(false, &[]),
                owners(&[("a", Dangling), ("b", Unverifiable)]),
                false,
                RemoveReferences(vec!["a".into()]),
            ),
            (
                "owner gone but item already terminating",
                meta(true, &[]),
                owners(&[("a", Dangling)]),
                false,
                Keep,
            ),
            (
                "owner deleting in the foreground, item has no dependents",
                meta(false, &[]),
                owners(&[("a", WaitingForDependents)]),
                false,
                Delete(Background),
            ),
            (
                "owner deleting in the foreground, item has dependents: cascade",
                meta(false, &[]),
                owners(&[("a", WaitingForDependents)]),
                true,
                Delete(Foreground),
            ),
            (
                "foreground owner and a solid one: the reference to the leaving one goes",
                meta(false, &[]),
                owners(&[("a", WaitingForDependents), ("b", Solid)]),
                false,
                RemoveReferences(vec!["a".into()]),
            ),
            (
                "item carries the orphan finalizer",
                meta(false, &[ORPHAN_FINALIZER]),
                owners(&[("a", Dangling)]),
                true,
                Delete(Orphan),
            ),
        ];
        for (name, m, o, has_deps, want) in cases {
            assert_eq!(plan_dependent(&m, &o, has_deps), want, "{name}");
        }
    }

    fn dep(key: &str, blocks: bool, being_deleted: bool) -> DependentRef {
        DependentRef {
            key: key.into(),
            blocks,
            being_deleted,
        }
    }

    #[test]
    fn an_owner_being_deleted_waits_for_or_releases_its_dependents() {
        use OwnerAction::*;
        let cases: Vec<(&str, ObjectMeta, Vec<DependentRef>, OwnerAction)> = vec![
            ("alive", meta(false, &[]), vec![dep("p", true, false)], None),
            (
                "finalizer but not marked",
                meta(false, &[FOREGROUND_FINALIZER]),
                vec![dep("p", true, false)],
                None,
            ),
            (
                "marked by another finalizer",
                meta(true, &["example.com/x"]),
                vec![dep("p", true, false)],
                None,
            ),
            (
                "foreground with blocking dependents",
                meta(true, &[FOREGROUND_FINALIZER]),
                vec![
                    dep("p1", true, false),
                    dep("p2", true, true),
                    dep("p3", false, false),
                ],
                DeleteDependents(vec!["p1".into(), "p3".into()]),
            ),
            (
                "foreground, only terminating blockers left",
                meta(true, &[FOREGROUND_FINALIZER]),
                vec![dep("p2", true, true)],
                DeleteDependents(vec![]),
            ),
            (
                "foreground, only non-blocking dependents left",
                meta(true, &[FOREGROUND_FINALIZER]),
                vec![dep("p3", false, false)],
                FinishForeground,
            ),
            (
                "foreground, no dependents",
                meta(true, &[FOREGROUND_FINALIZER]),
                vec![],
                FinishForeground,
            ),
            (
                "orphan",
                meta(true, &[ORPHAN_FINALIZER]),
                vec![dep("p1", true, false), dep("p2", false, true)],
                Orphan(vec!["p1".into(), "p2".into()]),
            ),
            (
                "orphan wins over foreground",
                meta(true, &[FOREGROUND_FINALIZER, ORPHAN_FINALIZER]),
                vec![],
                Orphan(vec![]),
            ),
        ];
        for (name, m, deps, want) in cases {
            assert_eq!(plan_owner(&m, &deps), want, "{name}");
        }
    }

    #[test]
    fn removing_a_finalizer_keeps_the_others_in_order() {
        let f: Vec<String> = ["a", FOREGROUND_FINALIZER, "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(without_finalizer(&f, FOREGROUND_FINALIZER), vec!["a", "b"]);
        assert_eq!(without_finalizer(&f, "zzz"), f);
    }
}
