//! The informer's in-memory, indexed copy of one kind: [`Store`] is the read side any number
//! of workers share, [`StoreWriter`] the single writer (the informer) that applies watch
//! events and relists and reports each [`Change`].
//!
//! A store holds whole objects (`Store<Object>`, the default) or, for a controller that
//! caches many objects and reads few of their fields, a compact projection of each (any type
//! implementing [`Cached`], built by `Informer::projected`). Entries are held as `Arc`s and
//! must never be mutated: clone one to change it (sample-controller's rule: the cache is the
//! informer's, not the worker's).
//! Indexes: owner uid (ownerReferences), label `key=value`, and node (`spec.nodeName` of
//! pods), each as far as the entry type reports them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bosun_api::Object;
use bosun_api::object::object_key;
use tokio::sync::watch;

/// An owner reference as a cache entry reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerRef<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    /// `controller: true`: this owner is the object's controller.
    pub controller: bool,
}

/// What a [`Store`] needs of an entry: its identity, its version, and what it is indexed by.
pub trait Cached: Send + Sync + 'static {
    /// `metadata.namespace` (empty when cluster-scoped).
    fn namespace(&self) -> &str;
    /// `metadata.name`.
    fn name(&self) -> &str;
    /// `metadata.resourceVersion` as a number: older events never replace newer entries.
    fn resource_version(&self) -> i64;
    /// Its ownerReferences (the [`Store::by_owner`] index; owner handlers read the controller).
    fn owners(&self) -> Vec<OwnerRef<'_>>;
    /// The node a pod is bound to (the [`Store::by_node`] index); none unless the entry keeps
    /// it.
    fn node_name(&self) -> Option<&str> {
        None
    }

    /// `namespace/name`, or `name` when cluster-scoped: the store key.
    fn key(&self) -> String {
        object_key(self.namespace(), self.name())
    }
    /// The owner reference with `controller: true`.
    fn controller(&self) -> Option<OwnerRef<'_>> {
        self.owners().into_iter().find(|o| o.controller)
    }
}

impl Cached for Object {
    fn namespace(&self) -> &str {
        Object::namespace(self)
    }
    fn name(&self) -> &str {
        Object::name(self)
    }
    fn resource_version(&self) -> i64 {
        Object::resource_version(self)
    }
    fn owners(&self) -> Vec<OwnerRef<'_>> {
        self.meta()
            .map(|m| {
                m.owner_references
                    .iter()
                    .map(|r| OwnerRef {
                        kind: &r.kind,
                        name: &r.name,
                        uid: &r.uid,
                        controller: r.controller == Some(true),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    fn node_name(&self) -> Option<&str> {
        self.as_pod()
            .and_then(|p| p.spec.as_ref())
            .map(|s| s.node_name.as_str())
            .filter(|n| !n.is_empty())
    }
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One change to the store, with the entry before and after (for a delete found by a
/// relist, `old` is the last state this cache saw: Kubernetes' `DeletedFinalStateUnknown`).
#[derive(Debug)]
pub struct Change<T = Object> {
    pub kind: ChangeKind,
    /// `namespace/name` (or `name` when cluster-scoped).
    pub key: String,
    pub old: Option<Arc<T>>,
    pub new: Option<Arc<T>>,
}

// Not derived: a derive would ask for `T: Clone`, and only the `Arc`s are cloned.
impl<T> Clone for Change<T> {
    fn clone(&self) -> Self {
        Change {
            kind: self.kind,
            key: self.key.clone(),
            old: self.old.clone(),
            new: self.new.clone(),
        }
    }
}

impl<T> Change<T> {
    /// The entry's latest known state: the new one, or for a delete the old one.
    pub fn object(&self) -> Option<&Arc<T>> {
        self.new.as_ref().or(self.old.as_ref())
    }
}

/// A set of keys. A key is allocated once per entry and shared by the map and the indexes.
type Keys = BTreeSet<Arc<str>>;

struct Inner<T> {
    objects: HashMap<Arc<str>, Arc<T>>,
    by_owner: HashMap<String, Keys>,
    by_node: HashMap<String, Keys>,
    /// The revision the store reflects (last list or event or bookmark).
    revision: i64,
}

impl<T> Default for Inner<T> {
    fn default() -> Self {
        Inner {
            objects: HashMap::new(),
            by_owner: HashMap::new(),
            by_node: HashMap::new(),
            revision: 0,
        }
    }
}

fn index<K: Eq + std::hash::Hash>(map: &mut HashMap<K, Keys>, index: K, key: &Arc<str>) {
    map.entry(index).or_default().insert(key.clone());
}

/// Whether two entries of one key sit in the same index entries (owners and node).
fn same_indexes<T: Cached>(a: &T, b: &T) -> bool {
    a.node_name() == b.node_name()
        && a.owners()
            .iter()
            .map(|r| r.uid)
            .eq(b.owners().iter().map(|r| r.uid))
}

fn unindex<K, Q>(map: &mut HashMap<K, Keys>, index: &Q, key: &str)
where
    K: Eq + std::hash::Hash + std::borrow::Borrow<Q>,
    Q: Eq + std::hash::Hash + ?Sized,
{
    if let Some(set) = map.get_mut(index) {
        set.remove(key);
        if set.is_empty() {
            map.remove(index);
        }
    }
}

impl<T: Cached> Inner<T> {
    /// Stores `obj` at `key`: the change it makes (Added or Modified).
    fn put(&mut self, key: String, obj: T) -> Change<T> {
        let new = Arc::new(obj);
        let old = self.insert(&key, new.clone());
        let kind = if old.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        Change {
            kind,
            key,
            old,
            new: Some(new),
        }
    }

    fn insert(&mut self, key: &str, obj: Arc<T>) -> Option<Arc<T>> {
        // Most updates (status, finalizers) keep owners and node: only the entry changes.
        if let Some(slot) = self.objects.get_mut(key)
            && same_indexes(slot.as_ref(), obj.as_ref())
        {
            return Some(std::mem::replace(slot, obj));
        }
        let old = self.remove(key);
        let key: Arc<str> = Arc::from(key);
        for owner in obj.owners() {
            index(&mut self.by_owner, owner.uid.to_string(), &key);
        }
        if let Some(node) = obj.node_name() {
            index(&mut self.by_node, node.to_string(), &key);
        }
        self.objects.insert(key, obj);
        old
    }

    fn remove(&mut self, key: &str) -> Option<Arc<T>> {
        let old = self.objects.remove(key)?;
        for owner in old.owners() {
            unindex(&mut self.by_owner, owner.uid, key);
        }
        if let Some(node) = old.node_name() {
            unindex(&mut self.by_node, node, key);
        }
        Some(old)
    }

    fn lookup(&self, keys: Option<&Keys>) -> Vec<Arc<T>> {
        keys.into_iter()
            .flatten()
            .filter_map(|k| self.objects.get(k).cloned())
            .collect()
    }
}

/// The read side of an informer's cache. Cheap to clone.
pub struct Store<T = Object> {
    inner: Arc<RwLock<Inner<T>>>,
    ready: watch::Receiver<bool>,
}

// Not derived: a derive would ask for `T: Clone`.
impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        Store {
            inner: self.inner.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<T: Cached> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("len", &self.len())
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// The single writer of a [`Store`].
pub struct StoreWriter<T = Object> {
    inner: Arc<RwLock<Inner<T>>>,
    ready: watch::Sender<bool>,
}

/// A new empty store and its writer.
pub fn store<T: Cached>() -> (Store<T>, StoreWriter<T>) {
    let inner = Arc::new(RwLock::new(Inner::default()));
    let (tx, rx) = watch::channel(false);
    (
        Store {
            inner: inner.clone(),
            ready: rx,
        },
        StoreWriter { inner, ready: tx },
    )
}

// A panic mid-update could leave an index half-updated, but never unsafe to read: keep
// serving rather than poisoning every worker.
fn read<T>(lock: &RwLock<Inner<T>>) -> RwLockReadGuard<'_, Inner<T>> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(lock: &RwLock<Inner<T>>) -> RwLockWriteGuard<'_, Inner<T>> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl<T: Cached> Store<T> {
    /// The entry at `key` (`namespace/name`, or `name` when cluster-scoped).
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        read(&self.inner).objects.get(key).cloned()
    }

    /// Every entry, in no particular order.
    pub fn list(&self) -> Vec<Arc<T>> {
        read(&self.inner).objects.values().cloned().collect()
    }

    /// Every entry in `namespace`.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<T>> {
        read(&self.inner)
            .objects
            .values()
            .filter(|o| o.namespace() == namespace)
            .cloned()
            .collect()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = read(&self.inner)
            .objects
            .keys()
            .map(|k| k.to_string())
            .collect();
        keys.sort();
        keys
    }

    /// The entries that list `uid` among their ownerReferences.
    pub fn by_owner(&self, uid: &str) -> Vec<Arc<T>> {
        let inner = read(&self.inner);
        inner.lookup(inner.by_owner.get(uid))
    }

    /// The pods bound to `node` (`spec.nodeName`).
    pub fn by_node(&self, node: &str) -> Vec<Arc<T>> {
        let inner = read(&self.inner);
        inner.lookup(inner.by_node.get(node))
    }

    /// How many entries the store holds.
    pub fn len(&self) -> usize {
        read(&self.inner).objects.len()
    }

    /// The store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The revision the store reflects.
    pub fn revision(&self) -> i64 {
        read(&self.inner).revision
    }

    /// Whether the first list has been loaded.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first list has been loaded (workers start after this, so they never
    /// act on a partial view). Returns at once if the writer is gone.
    pub async fn wait_until_ready(&self) {
        let mut rx = self.ready.clone();
        // Err: the writer was dropped; there will be nothing more to wait for.
        let _ = rx.wait_for(|ready| *ready).await;
    }
}

impl<T: Cached> StoreWriter<T> {
    /// A reader of this store.
    pub fn reader(&self) -> Store<T> {
        Store {
            inner: self.inner.clone(),
            ready: self.ready.subscribe(),
        }
    }

    /// Applies an added or modified entry (from a watch event); returns the change it made,
    /// if any. An entry not newer than what the store holds for its key (a replay after a
    /// resume) changes nothing.
    pub fn upsert(&self, obj: T) -> Option<Change<T>> {
        let mut inner = write(&self.inner);
        let rv = obj.resource_version();
        inner.revision = inner.revision.max(rv);
        let key = obj.key();
        let current = inner
            .objects
            .get(key.as_str())
            .map(|o| o.resource_version());
        if current.is_some_and(|current| current >= rv) {
            return None;
        }
        Some(inner.put(key, obj))
    }

    /// Applies a deletion (the entry's last state, from a watch event); returns the change
    /// it made, if any. Deleting what is absent, or older than what is held, changes nothing.
    pub fn delete(&self, obj: T) -> Option<Change<T>> {
        let mut inner = write(&self.inner);
        let rv = obj.resource_version();
        inner.revision = inner.revision.max(rv);
        let key = obj.key();
        let current = inner.objects.get(key.as_str())?.resource_version();
        if current > rv {
            return None;
        }
        let old = inner.remove(&key);
        Some(Change {
            kind: ChangeKind::Deleted,
            key,
            old,
            new: None,
        })
    }

    /// Nothing changed up to `revision` (a watch bookmark).
    pub fn bookmark(&self, revision: i64) {
        let mut inner = write(&self.inner);
        inner.revision = inner.revision.max(revision);
    }

    /// Replaces the whole content with a fresh list read at `revision`; returns the changes
    /// against the previous content: entries added, entries whose resourceVersion moved, and
    /// a synthetic delete for every key the list no longer has.
    pub fn replace(&self, items: Vec<T>, revision: i64) -> Vec<Change<T>> {
        let mut inner = write(&self.inner);
        let mut changes = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        for obj in items {
            let key = obj.key();
            let unchanged = inner
                .objects
                .get(key.as_str())
                .is_some_and(|o| o.resource_version() == obj.resource_version());
            if unchanged {
                seen.insert(key);
                continue;
            }
            seen.insert(key.clone());
            changes.push(inner.put(key, obj));
        }
        let gone: Vec<Arc<str>> = inner
            .objects
            .keys()
            .filter(|k| !seen.contains(&***k))
            .cloned()
            .collect();
        for key in gone {
            let old = inner.remove(&key);
            changes.push(Change {
                kind: ChangeKind::Deleted,
                key: key.to_string(),
                old,
                new: None,
            });
        }
        inner.revision = revision;
        changes
    }

    /// Marks the store ready (after the first list).
    pub fn mark_ready(&self) {
        self.ready.send_replace(true);
    }

    /// The revision the store reflects.
    pub fn revision(&self) -> i64 {
        read(&self.inner).revision
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::client::WatchEvent;
    use bosun_api::v1;

    /// Applies one watch event the way the informer does.
    fn apply(w: &StoreWriter, event: WatchEvent) -> Option<Change> {
        match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => w.upsert(o),
            WatchEvent::Deleted(o) => w.delete(o),
            WatchEvent::Bookmark(rev) => {
                w.bookmark(rev);
                None
            }
        }
    }

    /// A pod `ns/name` at `rv`, with labels, owner uids and a node.
    pub(crate) fn pod(
        name: &str,
        rv: i64,
        labels: &[(&str, &str)],
        owners: &[&str],
        node: &str,
    ) -> Object {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "ns".into(),
                resource_version: rv.to_string(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                owner_references: owners
                    .iter()
                    .map(|uid| v1::OwnerReference {
                        uid: uid.to_string(),
                        kind: "Job".into(),
                        controller: Some(true),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                node_name: node.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }

    fn names(objs: Vec<Arc<Object>>) -> Vec<String> {
        let mut n: Vec<String> = objs.iter().map(|o| o.name().to_string()).collect();
        n.sort();
        n
    }

    #[test]
    fn events_add_modify_and_delete_with_the_matching_change() {
        let (store, w) = store();
        // (event, expected change kind, expected keys after)
        let table = [
            (
                WatchEvent::Added(pod("a", 2, &[], &[], "")),
                Some(ChangeKind::Added),
                vec!["ns/a"],
            ),
            (
                WatchEvent::Added(pod("b", 3, &[], &[], "")),
                Some(ChangeKind::Added),
                vec!["ns/a", "ns/b"],
            ),
            (
                WatchEvent::Modified(pod("a", 4, &[], &[], "")),
                Some(ChangeKind::Modified),
                vec!["ns/a", "ns/b"],
            ),
            // A replayed, older event changes nothing.
            (
                WatchEvent::Modified(pod("a", 3, &[], &[], "")),
                None,
                vec!["ns/a", "ns/b"],
            ),
            (
                WatchEvent::Deleted(pod("b", 5, &[], &[], "")),
                Some(ChangeKind::Deleted),
                vec!["ns/a"],
            ),
            // Deleting what is not there changes nothing.
            (
                WatchEvent::Deleted(pod("zz", 6, &[], &[], "")),
                None,
                vec!["ns/a"],
            ),
            (WatchEvent::Bookmark(9), None, vec!["ns/a"]),
        ];
        for (event, want, keys) in table {
            let what = format!("{event:?}");
            let change = apply(&w, event);
            assert_eq!(change.map(|c| c.kind), want, "{what}");
            assert_eq!(store.keys(), keys, "{what}");
        }
        assert_eq!(store.revision(), 9, "bookmarks advance the revision");
        assert_eq!(store.get("ns/a").unwrap().resource_version(), 4);
    }

    #[test]
    fn indexes_follow_updates_and_deletes() {
        let (store, w) = store();
        apply(
            &w,
            WatchEvent::Added(pod("a", 1, &[("app", "x")], &["job-1"], "n1")),
        );
        apply(
            &w,
            WatchEvent::Added(pod("b", 2, &[("app", "x")], &["job-2"], "n1")),
        );
        apply(
            &w,
            WatchEvent::Added(pod("c", 3, &[("app", "y")], &["job-1"], "")),
        );
        // (query, expected names)
        type Row<'a> = (&'a str, Vec<Arc<Object>>, &'a [&'a str]);
        let check = |when: &str, table: &[Row]| {
            for (query, got, want) in table {
                assert_eq!(names(got.clone()), *want, "{when}: {query}");
            }
        };
        check(
            "initially",
            &[
                ("owner job-1", store.by_owner("job-1"), &["a", "c"]),
                ("owner job-2", store.by_owner("job-2"), &["b"]),
                ("node n1", store.by_node("n1"), &["a", "b"]),
                ("node none", store.by_node(""), &[]),
            ],
        );
        // a moves: new label, new owner, new node; b goes away.
        apply(
            &w,
            WatchEvent::Modified(pod("a", 4, &[("app", "y")], &["job-2"], "n2")),
        );
        apply(&w, WatchEvent::Deleted(pod("b", 5, &[], &[], "")));
        check(
            "after changes",
            &[
                ("owner job-1", store.by_owner("job-1"), &["c"]),
                ("owner job-2", store.by_owner("job-2"), &["a"]),
                ("node n1", store.by_node("n1"), &[]),
                ("node n2", store.by_node("n2"), &["a"]),
            ],
        );
        // A change that keeps owners and node (labels are not indexed) keeps a where it is.
        apply(
            &w,
            WatchEvent::Modified(pod("a", 6, &[("app", "z")], &["job-2"], "n2")),
        );
        check(
            "after an update in place",
            &[
                ("owner job-2", store.by_owner("job-2"), &["a"]),
                ("node n2", store.by_node("n2"), &["a"]),
            ],
        );
        assert_eq!(store.get("ns/a").map(|o| o.resource_version()), Some(6));
    }

    #[test]
    fn a_relist_reports_adds_updates_and_synthetic_deletes() {
        let (store, w) = store();
        let first = w.replace(
            vec![
                pod("a", 1, &[], &[], ""),
                pod("b", 2, &[], &[], ""),
                pod("c", 3, &[], &[], ""),
            ],
            3,
        );
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|c| c.kind == ChangeKind::Added));
        // a unchanged, b updated, c gone, d new.
        let second = w.replace(
            vec![
                pod("a", 1, &[], &[], ""),
                pod("b", 7, &[], &[], ""),
                pod("d", 8, &[], &[], ""),
            ],
            9,
        );
        let mut got: Vec<(ChangeKind, String)> =
            second.iter().map(|c| (c.kind, c.key.clone())).collect();
        got.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(
            got,
            [
                (ChangeKind::Modified, "ns/b".to_string()),
                (ChangeKind::Deleted, "ns/c".to_string()),
                (ChangeKind::Added, "ns/d".to_string()),
            ]
        );
        let deleted = second
            .iter()
            .find(|c| c.kind == ChangeKind::Deleted)
            .unwrap();
        assert_eq!(
            deleted.object().unwrap().resource_version(),
            3,
            "last known state"
        );
        assert_eq!(store.keys(), ["ns/a", "ns/b", "ns/d"]);
        assert_eq!(store.revision(), 9);
    }

    /// A compact entry: name, version and controller uid, nothing else.
    struct Slim {
        name: String,
        rv: i64,
        owner: Option<String>,
    }

    impl Cached for Slim {
        fn namespace(&self) -> &str {
            "ns"
        }
        fn name(&self) -> &str {
            &self.name
        }
        fn resource_version(&self) -> i64 {
            self.rv
        }
        fn owners(&self) -> Vec<OwnerRef<'_>> {
            self.owner
                .iter()
                .map(|uid| OwnerRef {
                    kind: "Job",
                    name: "j",
                    uid,
                    controller: true,
                })
                .collect()
        }
    }

    #[test]
    fn a_store_of_projected_entries_indexes_what_they_report() {
        let (store, w) = store::<Slim>();
        let slim = |name: &str, rv, owner: Option<&str>| Slim {
            name: name.into(),
            rv,
            owner: owner.map(String::from),
        };
        w.replace(vec![slim("a", 1, Some("u1")), slim("b", 2, Some("u1"))], 2);
        assert!(w.upsert(slim("c", 3, None)).is_some());
        assert!(w.upsert(slim("a", 1, Some("u2"))).is_none(), "not newer");
        let change = w.upsert(slim("a", 4, Some("u2"))).expect("newer");
        assert_eq!(change.kind, ChangeKind::Modified);
        assert_eq!(change.new.as_ref().unwrap().controller().unwrap().uid, "u2");
        let owned = |uid: &str| {
            let mut n: Vec<String> = store.by_owner(uid).iter().map(|o| o.name.clone()).collect();
            n.sort();
            n
        };
        assert_eq!(owned("u1"), ["b"]);
        assert_eq!(owned("u2"), ["a"]);
        assert!(store.by_node("n1").is_empty());
        assert!(w.delete(slim("b", 5, Some("u1"))).is_some());
        assert!(owned("u1").is_empty());
        assert_eq!(store.keys(), ["ns/a", "ns/c"]);
        assert_eq!(store.revision(), 5);
    }

    #[tokio::test]
    async fn readers_wait_until_the_first_list_is_loaded() {
        let (store, w) = store();
        assert!(!store.is_ready());
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.wait_until_ready().await })
        };
        w.replace(vec![pod("a", 1, &[], &[], "")], 1);
        w.mark_ready();
        waiter.await.unwrap();
        assert!(store.is_ready());
        assert_eq!(store.len(), 1);
        // A dropped writer releases waiters too.
        let (never, w2) = super::store::<Object>();
        drop(w2);
        never.wait_until_ready().await;
    }
}
