//! The controller-ref manager (Kubernetes' `pkg/controller/controller_ref_manager.go`): which
//! objects a controller (a Job, a DaemonSet) may call its own. An object it controls whose
//! labels stop matching its selector is **released** (its controlling ownerReference
//! dropped: the controller then replaces it); an orphan that matches is **adopted** (a
//! controlling ownerReference added), so an owner's set of objects always follows its
//! selector.
//!
//! [`claim`] decides, purely, for one candidate; [`adopt`] and [`release`] write, each after
//! a fresh read of the candidate (its uid must be the one decided on: a replacement of the
//! same name is never touched), deciding again on that read and writing with its
//! resourceVersion as precondition. Two owners racing to adopt one orphan therefore never
//! both win: the second write fails with a conflict, the loser reads again, sees the other
//! controller and lets the object be. Before adopting, [`owner_can_adopt`] re-reads the owner
//! itself (uid unchanged, not being deleted), as Kubernetes' `canAdopt` does.
//!
//! [`OrphanIndex`] keeps, per namespace, the keys of cached objects with no controller, so a
//! controller finds adoption candidates without scanning every object of a namespace; and
//! [`wake_adopters`] wakes the owners an orphan may be adopted by when it changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use bosun_api::selector::LabelSelector;
use bosun_api::{Kind, Object, v1};

use crate::cache::{Cached, Change, Store};
use crate::client::ClientError;
use crate::queue::WorkQueue;
use crate::writer::Writer;

/// A fresh read and a write are tried this many times when the write loses a race.
const ATTEMPTS: usize = 3;

/// What a claim write can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The read or the write failed.
    #[error("{action} {key}: {source}")]
    Write {
        action: &'static str,
        key: String,
        source: ClientError,
    },
    /// Every attempt lost a race with another writer; the caller should look again later.
    #[error("{action} {key}: still conflicting after {ATTEMPTS} fresh reads; retry later")]
    Conflict { action: &'static str, key: String },
}

/// The controller that claims: its identity and whether it is being deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `batch/v1`, `apps/v1`.
    pub api_version: String,
    /// `Job`, `DaemonSet`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// It has a deletionTimestamp: it adopts and releases nothing.
    pub deleting: bool,
}

impl Owner {
    /// The owner `obj` (a Job, a DaemonSet...) as its ownerReferences will name it.
    pub fn of(obj: &Object) -> Owner {
        let (api_version, kind) = obj.type_meta();
        let info = obj.info();
        Owner {
            api_version: match api_version {
                "" => info.map_or("", |i| i.api_version).to_string(),
                v => v.to_string(),
            },
            kind: match kind {
                "" => info.map_or("", |i| i.name).to_string(),
                k => k.to_string(),
            },
            namespace: obj.namespace().to_string(),
            name: obj.name().to_string(),
            uid: obj.uid().to_string(),
            deleting: obj.meta().is_some_and(|m| !m.deletion_timestamp.is_empty()),
        }
    }

    /// The controlling ownerReference adoption writes (blockOwnerDeletion: foreground
    /// deletion of the owner waits for the object).
    pub fn controller_ref(&self) -> v1::OwnerReference {
        v1::OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

/// What the claim decision reads of one candidate.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The uid of its controller (ownerReference with `controller: true`), if any.
    pub controller_uid: Option<&'a str>,
    pub labels: &'a BTreeMap<String, String>,
    /// It has a deletionTimestamp.
    pub deleting: bool,
}

impl<'a> Candidate<'a> {
    /// The candidate `obj` is.
    pub fn of(obj: &'a Object, empty: &'a BTreeMap<String, String>) -> Candidate<'a> {
        Candidate {
            controller_uid: obj.controller_ref().map(|r| r.uid.as_str()),
            labels: obj.meta().map_or(empty, |m| &m.labels),
            deleting: obj.meta().is_some_and(|m| !m.deletion_timestamp.is_empty()),
        }
    }
}

/// The decision about one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours, and it matches: part of the owner's set.
    Keep,
    /// An orphan that matches: take it (then part of the set).
    Adopt,
    /// Ours, but it no longer matches: let it go (not part of the set).
    Release,
    /// Not ours and not to take (another controller's, not matching, or one of the two
    /// being deleted).
    Ignore,
}

/// Kubernetes' `ClaimObject`, as a pure decision.
pub fn claim(owner: &Owner, selector: &LabelSelector, candidate: &Candidate<'_>) -> Claim {
    let matches = selector.matches(candidate.labels);
    decide(owner, matches, candidate.controller_uid, candidate.deleting)
}

/// [`claim`] once the selector has been matched (`matches`) against the candidate's labels
/// (for callers that match many candidates sharing one label set only once).
pub fn decide(owner: &Owner, matches: bool, controller_uid: Option<&str>, deleting: bool) -> Claim {
    match controller_uid {
        Some(uid) if uid != owner.uid => Claim::Ignore,
        Some(_) if matches => Claim::Keep,
        // An owner being deleted changes nothing: its objects go with it.
        Some(_) if owner.deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if !matches || owner.deleting || deleting => Claim::Ignore,
        None => Claim::Adopt,
    }
}

/// How a claim write ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Written: the object as now stored.
    Done(Object),
    /// The fresh read decided otherwise (another controller adopted it, its labels match
    /// again...): nothing written; the decision and the object as read.
    Now(Claim, Object),
    /// The object is gone, or replaced by another of the same name.
    Gone,
}

/// Kubernetes' `canAdopt`: re-reads the owner from the broker (not a cache) and says
/// whether it may adopt: same uid, not being deleted.
pub async fn owner_can_adopt(
    writer: &dyn Writer,
    kind: Kind,
    owner: &Owner,
) -> Result<bool, ClaimError> {
    let key = bosun_api::object::object_key(&owner.namespace, &owner.name);
    let fresh = writer
        .get_opt(kind, &owner.namespace, &owner.name)
        .await
        .map_err(|source| ClaimError::Write {
            action: "re-read owner",
            key,
            source,
        })?;
    Ok(fresh.is_some_and(|o| {
        o.uid() == owner.uid && o.meta().is_none_or(|m| m.deletion_timestamp.is_empty())
    }))
}

/// Adopts `target` for `owner`: adds the controlling ownerReference and `finalizers`, on a
/// fresh read, with that read's resourceVersion as precondition. Call [`owner_can_adopt`]
/// first.
pub async fn adopt(
    writer: &dyn Writer,
    owner: &Owner,
    selector: &LabelSelector,
    target: &Target<'_>,
    finalizers: &[&str],
) -> Result<Outcome, ClaimError> {
    rewrite(writer, owner, selector, target, Claim::Adopt, |meta| {
        meta.owner_references.retain(|r| r.uid != owner.uid);
        meta.owner_references.push(owner.controller_ref());
        for f in finalizers {
            if !meta.finalizers.iter().any(|have| have == f) {
                meta.finalizers.push(f.to_string());
            }
        }
    })
    .await
}

/// Releases `target` from `owner`: drops its ownerReference and `finalizers`, on a fresh
/// read, with that read's resourceVersion as precondition.
pub async fn release(
    writer: &dyn Writer,
    owner: &Owner,
    selector: &LabelSelector,
    target: &Target<'_>,
    finalizers: &[&str],
) -> Result<Outcome, ClaimError> {
    rewrite(writer, owner, selector, target, Claim::Release, |meta| {
        meta.owner_references.retain(|r| r.uid != owner.uid);
        meta.finalizers
            .retain(|f| !finalizers.contains(&f.as_str()));
    })
    .await
}

/// The object a claim writes: its kind, place, and the uid the decision was made on (a
/// replacement under the same name is never adopted or released).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The object's kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its uid when the claim was decided.
    pub uid: &'a str,
}

/// Read, decide again, write with the read's resourceVersion; again on a conflict.
async fn rewrite(
    writer: &dyn Writer,
    owner: &Owner,
    selector: &LabelSelector,
    target: &Target<'_>,
    want: Claim,
    change: impl Fn(&mut v1::ObjectMeta),
) -> Result<Outcome, ClaimError> {
    let action = match want {
        Claim::Adopt => "adopt",
        _ => "release",
    };
    let key = bosun_api::object::object_key(target.namespace, target.name);
    let failed = |source| ClaimError::Write {
        action,
        key: key.clone(),
        source,
    };
    for _ in 0..ATTEMPTS {
        let fresh = writer
            .get_opt(target.kind, target.namespace, target.name)
            .await
            .map_err(failed)?;
        let Some(mut fresh) = fresh.filter(|o| o.uid() == target.uid) else {
            return Ok(Outcome::Gone);
        };
        let empty = BTreeMap::new();
        let now = claim(owner, selector, &Candidate::of(&fresh, &empty));
        if now != want {
            return Ok(Outcome::Now(now, fresh));
        }
        change(fresh.meta_mut());
        match writer.update(fresh).await {
            Ok(stored) => return Ok(Outcome::Done(stored)),
            Err(e) if e.is_conflict() => {
                tracing::debug!(%key, action, "lost a race; reading again");
            }
            Err(e) if e.is_not_found() => return Ok(Outcome::Gone),
            Err(e) => return Err(failed(e)),
        }
    }
    Err(ClaimError::Conflict { action, key })
}

/// The keys of the cached objects that have no controller, per namespace: the adoption
/// candidates. Feed it every change of the cache ([`OrphanIndex::observe`]).
#[derive(Debug, Default)]
pub struct OrphanIndex {
    by_namespace: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl OrphanIndex {
    /// Applies one change of the cache.
    pub fn observe<T: Cached>(&self, change: &Change<T>) {
        let mut all = self.by_namespace.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = &change.old
            && let Some(keys) = all.get_mut(old.namespace())
        {
            keys.remove(&change.key);
            if keys.is_empty() {
                all.remove(old.namespace());
            }
        }
        if let Some(new) = &change.new
            && new.controller().is_none()
        {
            all.entry(new.namespace().to_string())
                .or_default()
                .insert(change.key.clone());
        }
    }

    /// The keys of the orphans in `namespace`, sorted.
    pub fn in_namespace(&self, namespace: &str) -> Vec<String> {
        let all = self.by_namespace.lock().unwrap_or_else(|p| p.into_inner());
        all.get(namespace)
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The keys of the owners (in `owners`) an orphan, before or after `change`, may be adopted
/// by: same namespace, and a selector (`selector_of`; `None`: the owner adopts nothing) that
/// matches it (`matches`: the object's labels against a selector). Kubernetes'
/// `getPodJobs`/`getPodDaemonSets`. An object with a controller wakes nobody here: it wakes
/// its controller through `Controller::owns`.
pub fn adopters<T: Cached>(
    owners: &Store,
    change: &Change<T>,
    selector_of: impl Fn(&Object) -> Option<LabelSelector>,
    matches: impl Fn(&T, &LabelSelector) -> bool,
) -> Vec<String> {
    let orphans: Vec<&T> = [&change.old, &change.new]
        .into_iter()
        .flatten()
        .map(|o| &**o)
        .filter(|o| o.controller().is_none())
        .collect();
    let Some(first) = orphans.first() else {
        return Vec::new();
    };
    owners
        .list_namespace(first.namespace())
        .into_iter()
        .filter(|owner| selector_of(owner).is_some_and(|s| orphans.iter().any(|o| matches(o, &s))))
        .map(|owner| owner.key())
        .collect()
}

/// Enqueues the [`adopters`] of `change` on the owners' controller `queue` (feed it every
/// change of the cache of the objects they adopt).
pub fn wake_adopters<T: Cached>(
    owners: &Store,
    queue: &WorkQueue<String>,
    change: &Change<T>,
    selector_of: impl Fn(&Object) -> Option<LabelSelector>,
    matches: impl Fn(&T, &LabelSelector) -> bool,
) {
    for key in adopters(owners, change, selector_of, matches) {
        queue.add(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pod `ns/p` as decided on with uid `uid`.
    fn pod_p(uid: &str) -> Target<'_> {
        Target {
            kind: Kind::Pod,
            namespace: "ns",
            name: "p",
            uid,
        }
    }
    use crate::cache::ChangeKind;
    use crate::writer::{RecordingWriter, Verb};
    use std::sync::Arc;

    fn owner(uid: &str, deleting: bool) -> Owner {
        Owner {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            namespace: "ns".into(),
            name: format!("job-{uid}"),
            uid: uid.into(),
            deleting,
        }
    }

    fn labels(app: &str) -> BTreeMap<String, String> {
        [("app".to_string(), app.to_string())].into()
    }

    /// One row of the claim table: the owner, the candidate, the decision.
    struct Row {
        name: &'static str,
        owner_deleting: bool,
        controller: Option<&'static str>,
        app: &'static str,
        deleting: bool,
        want: Claim,
    }

    const fn row(
        name: &'static str,
        owner_deleting: bool,
        controller: Option<&'static str>,
        app: &'static str,
        deleting: bool,
        want: Claim,
    ) -> Row {
        Row {
            name,
            owner_deleting,
            controller,
            app,
            deleting,
            want,
        }
    }

    #[test]
    fn the_claim_follows_kubernetes_controller_ref_manager() {
        let sel = LabelSelector::parse("app=x").expect("selector");
        #[rustfmt::skip]
        let table = [
            row("owned and matching: keep", false, Some("me"), "x", false, Claim::Keep),
            row("owned, no longer matching: release", false, Some("me"), "y", false, Claim::Release),
            row("owned, being deleted, not matching: still release", false, Some("me"), "y", true, Claim::Release),
            row("owned, not matching, owner being deleted: ignore", true, Some("me"), "y", false, Claim::Ignore),
            row("owned and matching, owner being deleted: keep", true, Some("me"), "x", false, Claim::Keep),
            row("orphan matching: adopt", false, None, "x", false, Claim::Adopt),
            row("orphan matching, owner being deleted: never adopt", true, None, "x", false, Claim::Ignore),
            row("orphan matching, being deleted: never adopt", false, None, "x", true, Claim::Ignore),
            row("orphan not matching: ignore", false, None, "y", false, Claim::Ignore),
            row("another controller's, matching: ignore", false, Some("other"), "x", false, Claim::Ignore),
            row("another controller's, not matching: ignore", false, Some("other"), "y", false, Claim::Ignore),
        ];
        for r in table {
            let labels = labels(r.app);
            let c = Candidate {
                controller_uid: r.controller,
                labels: &labels,
                deleting: r.deleting,
            };
            assert_eq!(
                claim(&owner("me", r.owner_deleting), &sel, &c),
                r.want,
                "{}",
                r.name
            );
        }
    }

    fn pod(name: &str, app: &str) -> Object {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "ns".into(),
                labels: [("app".to_string(), app.to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    fn controller_of(obj: &Object) -> Option<String> {
        obj.controller_ref().map(|r| r.uid.clone())
    }

    #[tokio::test]
    async fn adoption_writes_the_controller_ref_and_finalizer_and_release_drops_them() {
        let w = RecordingWriter::new();
        let p = w.seed(pod("p", "x"));
        let sel = LabelSelector::parse("app=x").expect("selector");
        let me = owner("me", false);
        let out = adopt(&*w, &me, &sel, &pod_p(p.uid()), &["fin"])
            .await
            .expect("adopt");
        let Outcome::Done(adopted) = out else {
            panic!("not adopted: {out:?}")
        };
        let r = adopted.controller_ref().expect("controller ref");
        assert_eq!(
            (r.uid.as_str(), r.controller, r.block_owner_deletion),
            ("me", Some(true), Some(true))
        );
        assert_eq!(adopted.meta().unwrap().finalizers, ["fin"]);

        // Still matching: a release decided on a stale cache keeps it.
        let out = release(&*w, &me, &sel, &pod_p(p.uid()), &["fin"])
            .await
            .expect("release");
        assert!(matches!(out, Outcome::Now(Claim::Keep, _)), "{out:?}");

        let mut relabeled = w.object(Kind::Pod, "ns/p").unwrap();
        relabeled.meta_mut().labels.insert("app".into(), "y".into());
        w.update(relabeled).await.expect("relabel");
        let out = release(&*w, &me, &sel, &pod_p(p.uid()), &["fin"])
            .await
            .expect("release");
        let Outcome::Done(released) = out else {
            panic!("not released: {out:?}")
        };
        assert_eq!(controller_of(&released), None);
        assert!(released.meta().unwrap().finalizers.is_empty());
    }

    #[tokio::test]
    async fn a_replacement_of_the_same_name_is_never_adopted() {
        let w = RecordingWriter::new();
        w.seed(pod("p", "x"));
        let sel = LabelSelector::parse("app=x").expect("selector");
        let out = adopt(&*w, &owner("me", false), &sel, &pod_p("old-uid"), &[])
            .await
            .expect("adopt");
        assert!(matches!(out, Outcome::Gone), "{out:?}");
        assert!(w.calls_of(Verb::Update).is_empty());
    }

    #[tokio::test]
    async fn of_two_owners_adopting_one_orphan_the_loser_sees_the_winner_and_lets_go() {
        let w = RecordingWriter::new();
        let p = w.seed(pod("p", "x"));
        let sel = LabelSelector::parse("app=x").expect("selector");
        // The first owner wins; the second decided on the same (orphan) state, but its
        // fresh read shows the winner: it ignores the pod.
        let a = adopt(&*w, &owner("a", false), &sel, &pod_p(p.uid()), &[])
            .await
            .expect("a");
        assert!(matches!(a, Outcome::Done(_)));
        let b = adopt(&*w, &owner("b", false), &sel, &pod_p(p.uid()), &[])
            .await
            .expect("b");
        assert!(matches!(b, Outcome::Now(Claim::Ignore, _)), "{b:?}");
        let stored = w.object(Kind::Pod, "ns/p").unwrap();
        assert_eq!(controller_of(&stored).as_deref(), Some("a"));
        assert_eq!(stored.meta().unwrap().owner_references.len(), 1);
    }

    /// A writer where another controller (`rival`) adopts the object between this one's
    /// fresh read and its write, once.
    struct Racing {
        inner: Arc<RecordingWriter>,
        rival: Mutex<Option<Owner>>,
    }

    type Fut<'a, T> = futures::future::BoxFuture<'a, crate::writer::WriteResult<T>>;

    impl Writer for Racing {
        fn get_opt<'a>(
            &'a self,
            kind: Kind,
            ns: &'a str,
            name: &'a str,
        ) -> Fut<'a, Option<Object>> {
            self.inner.get_opt(kind, ns, name)
        }
        fn create(&self, object: Object) -> Fut<'_, Object> {
            self.inner.create(object)
        }
        fn update(&self, object: Object) -> Fut<'_, Object> {
            if let Some(rival) = self.rival.lock().unwrap().take()
                && let Some(mut now) = self.inner.object(object.kind(), &object.key())
            {
                now.meta_mut().owner_references.push(rival.controller_ref());
                // The rival's write, straight to the store (its own version guard holds).
                drop(futures::FutureExt::now_or_never(self.inner.update(now)));
            }
            self.inner.update(object)
        }
        fn update_status(&self, object: Object) -> Fut<'_, Object> {
            self.inner.update_status(object)
        }
        fn update_finalizers<'a>(
            &'a self,
            kind: Kind,
            ns: &'a str,
            name: &'a str,
            uid: &'a str,
            add: &'a [&'a str],
            remove: &'a [&'a str],
        ) -> Fut<'a, Object> {
            self.inner
                .update_finalizers(kind, ns, name, uid, add, remove)
        }
        fn delete<'a>(
            &'a self,
            kind: Kind,
            ns: &'a str,
            name: &'a str,
            options: crate::client::DeleteOptions,
        ) -> Fut<'a, crate::client::Deleted> {
            self.inner.delete(kind, ns, name, options)
        }
    }

    #[tokio::test]
    async fn an_adoption_that_loses_the_race_to_a_rival_writes_nothing_and_lets_the_rival_keep_it()
    {
        let inner = RecordingWriter::new();
        let p = inner.seed(pod("p", "x"));
        let racing = Racing {
            inner: inner.clone(),
            rival: Mutex::new(Some(owner("rival", false))),
        };
        let sel = LabelSelector::parse("app=x").expect("selector");
        // Read as an orphan; the rival adopts before the write; the write's version guard
        // fails; the fresh read shows the rival.
        let out = adopt(&racing, &owner("me", false), &sel, &pod_p(p.uid()), &[])
            .await
            .expect("adopt");
        assert!(matches!(out, Outcome::Now(Claim::Ignore, _)), "{out:?}");
        let stored = inner.object(Kind::Pod, "ns/p").unwrap();
        let refs = &stored.meta().unwrap().owner_references;
        assert_eq!(refs.len(), 1, "{refs:?}");
        assert_eq!(refs[0].uid, "rival");
    }

    #[tokio::test]
    async fn a_write_that_loses_a_race_reads_again_and_decides_again() {
        let w = RecordingWriter::new();
        let p = w.seed(pod("p", "x"));
        let sel = LabelSelector::parse("app=x").expect("selector");
        w.fail_next(
            Verb::Update,
            tonic::Status::aborted("resourceVersion changed"),
        );
        let out = adopt(&*w, &owner("me", false), &sel, &pod_p(p.uid()), &[])
            .await
            .expect("adopt");
        assert!(matches!(out, Outcome::Done(_)), "{out:?}");
        let verbs: Vec<Verb> = w.calls().iter().map(|c| c.verb).collect();
        assert_eq!(verbs, [Verb::Get, Verb::Update, Verb::Get, Verb::Update]);
        let mut orphaned = w.object(Kind::Pod, "ns/p").unwrap();
        orphaned.meta_mut().owner_references.clear();
        w.update(orphaned).await.expect("orphan it again");
        for _ in 0..ATTEMPTS {
            w.fail_next(Verb::Update, tonic::Status::aborted("again"));
        }
        let err = adopt(&*w, &owner("me", false), &sel, &pod_p(p.uid()), &[])
            .await
            .expect_err("always losing");
        assert!(matches!(err, ClaimError::Conflict { .. }), "{err}");
    }

    #[tokio::test]
    async fn an_owner_being_deleted_or_replaced_cannot_adopt() {
        let w = RecordingWriter::new();
        let job: Object = v1::Job {
            metadata: Some(v1::ObjectMeta {
                name: "job-me".into(),
                namespace: "ns".into(),
                uid: "me".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into();
        let stored = w.seed(job);
        assert!(
            owner_can_adopt(&*w, Kind::Job, &owner("me", false))
                .await
                .unwrap()
        );
        assert!(
            !owner_can_adopt(&*w, Kind::Job, &owner("older", false))
                .await
                .unwrap()
        );
        let mut deleting = stored.clone();
        deleting.meta_mut().deletion_timestamp = "2026-01-01T00:00:00Z".into();
        w.seed(deleting);
        assert!(
            !owner_can_adopt(&*w, Kind::Job, &owner("me", false))
                .await
                .unwrap()
        );
    }

    #[test]
    fn the_orphan_index_follows_controller_refs() {
        let idx = OrphanIndex::default();
        let orphan = Arc::new(pod("p", "x"));
        let mut owned = pod("p", "x");
        owned
            .meta_mut()
            .owner_references
            .push(owner("me", false).controller_ref());
        let owned = Arc::new(owned);
        let change = |old: Option<&Arc<Object>>, new: Option<&Arc<Object>>| Change {
            kind: ChangeKind::Modified,
            key: "ns/p".into(),
            old: old.cloned(),
            new: new.cloned(),
        };
        idx.observe(&change(None, Some(&orphan)));
        assert_eq!(idx.in_namespace("ns"), ["ns/p"]);
        idx.observe(&change(Some(&orphan), Some(&owned)));
        assert!(idx.in_namespace("ns").is_empty());
        idx.observe(&change(Some(&owned), Some(&orphan)));
        assert_eq!(idx.in_namespace("ns"), ["ns/p"]);
        idx.observe(&change(Some(&orphan), None));
        assert!(idx.in_namespace("ns").is_empty());
    }

    #[tokio::test]
    async fn an_orphan_wakes_the_owners_whose_selector_matches_it() {
        let (owners, writer) = crate::cache::store();
        for name in ["job-x", "job-y", "job-none"] {
            writer.upsert(
                v1::Job {
                    metadata: Some(v1::ObjectMeta {
                        name: name.into(),
                        namespace: "ns".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
                .into(),
            );
        }
        // How the test reads an owner's selector: by its name; `job-none` has none.
        let selector_of = |o: &Object| match o.name() {
            "job-x" => LabelSelector::parse("app=x").ok(),
            "job-y" => LabelSelector::parse("app=y").ok(),
            _ => None,
        };
        let matches =
            |p: &Object, s: &LabelSelector| p.meta().is_some_and(|m| s.matches(&m.labels));
        let orphan = |app: &str| Some(Arc::new(pod("p", app)));
        let owned = |app: &str| {
            let mut p = pod("p", app);
            p.meta_mut()
                .owner_references
                .push(owner("other", false).controller_ref());
            Some(Arc::new(p))
        };
        let elsewhere = {
            let mut p = pod("p", "x");
            p.meta_mut().namespace = "other".into();
            Some(Arc::new(p))
        };
        type Row = (
            &'static str,
            Option<Arc<Object>>,
            Option<Arc<Object>>,
            &'static [&'static str],
        );
        let table: [Row; 8] = [
            ("a new orphan", None, orphan("x"), &["ns/job-x"]),
            ("an orphan no selector matches", None, orphan("z"), &[]),
            (
                "a relabelled orphan",
                orphan("x"),
                orphan("y"),
                &["ns/job-x", "ns/job-y"],
            ),
            ("a deleted orphan", orphan("y"), None, &["ns/job-y"]),
            ("a controlled pod", owned("x"), owned("x"), &[]),
            ("a released pod", owned("x"), orphan("x"), &["ns/job-x"]),
            ("a pod just adopted", orphan("y"), owned("y"), &["ns/job-y"]),
            ("an orphan in another namespace", None, elsewhere, &[]),
        ];
        let queue = WorkQueue::new(crate::queue::Backoff::new(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(1),
        ));
        for (name, old, new, want) in table {
            let change = Change {
                kind: ChangeKind::Modified,
                key: "ns/p".into(),
                old,
                new,
            };
            let mut got = adopters(&owners, &change, selector_of, matches);
            got.sort();
            assert_eq!(got, want, "{name}");
            wake_adopters(&owners, &queue, &change, selector_of, matches);
            let mut queued = Vec::new();
            while !queue.is_empty() {
                let key = queue.next().await.expect("a queued key");
                queue.done(&key);
                queued.push(key);
            }
            queued.sort();
            assert_eq!(queued, want, "{name}: queued");
        }
    }
}
