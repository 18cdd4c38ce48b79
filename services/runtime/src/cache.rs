//! The informer's in-memory, indexed copy of one kind: [`Store`] is the read side any number
//! of workers share, [`StoreWriter`] the single writer (the informer) that applies watch
//! events and relists and reports each [`Change`].
//!
//! Objects are held as `Arc<Object>` and must never be mutated: clone one to change it
//! (sample-controller's rule: the cache is the informer's, not the worker's).
//! Indexes: owner uid (ownerReferences), label `key=value`, and node (`spec.nodeName` of
//! pods).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bosun_api::Object;
use tokio::sync::watch;

use crate::client::WatchEvent;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One change to the store, with the object before and after (for a delete found by a
/// relist, `old` is the last state this cache saw: Kubernetes' `DeletedFinalStateUnknown`).
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: ChangeKind,
    /// `namespace/name` (or `name` when cluster-scoped).
    pub key: String,
    pub old: Option<Arc<Object>>,
    pub new: Option<Arc<Object>>,
}

impl Change {
    /// The object's latest known state: the new one, or for a delete the old one.
    pub fn object(&self) -> Option<&Arc<Object>> {
        self.new.as_ref().or(self.old.as_ref())
    }
}

#[derive(Default)]
struct Inner {
    objects: HashMap<String, Arc<Object>>,
    by_owner: HashMap<String, BTreeSet<String>>,
    by_label: HashMap<(String, String), BTreeSet<String>>,
    by_node: HashMap<String, BTreeSet<String>>,
    /// The revision the store reflects (last list or event or bookmark).
    revision: i64,
}

/// The index entries of one object.
fn index_entries(obj: &Object) -> (Vec<String>, Vec<(String, String)>, Option<String>) {
    let owners = obj
        .meta()
        .map(|m| m.owner_references.iter().map(|r| r.uid.clone()).collect())
        .unwrap_or_default();
    let labels = obj
        .meta()
        .map(|m| {
            m.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let node = obj
        .as_pod()
        .and_then(|p| p.spec.as_ref())
        .map(|s| s.node_name.clone())
        .filter(|n| !n.is_empty());
    (owners, labels, node)
}

fn unindex<K: Eq + std::hash::Hash>(map: &mut HashMap<K, BTreeSet<String>>, index: K, key: &str) {
    if let Some(set) = map.get_mut(&index) {
        set.remove(key);
        if set.is_empty() {
            map.remove(&index);
        }
    }
}

impl Inner {
    fn insert(&mut self, key: String, obj: Arc<Object>) -> Option<Arc<Object>> {
        let old = self.remove(&key);
        let (owners, labels, node) = index_entries(&obj);
        for uid in owners {
            self.by_owner.entry(uid).or_default().insert(key.clone());
        }
        for label in labels {
            self.by_label.entry(label).or_default().insert(key.clone());
        }
        if let Some(node) = node {
            self.by_node.entry(node).or_default().insert(key.clone());
        }
        self.objects.insert(key, obj);
        old
    }

    fn remove(&mut self, key: &str) -> Option<Arc<Object>> {
        let old = self.objects.remove(key)?;
        let (owners, labels, node) = index_entries(&old);
        for uid in owners {
            unindex(&mut self.by_owner, uid, key);
        }
        for label in labels {
            unindex(&mut self.by_label, label, key);
        }
        if let Some(node) = node {
            unindex(&mut self.by_node, node, key);
        }
        Some(old)
    }

    fn lookup(&self, keys: Option<&BTreeSet<String>>) -> Vec<Arc<Object>> {
        keys.into_iter()
            .flatten()
            .filter_map(|k| self.objects.get(k).cloned())
            .collect()
    }
}

/// The read side of an informer's cache. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<RwLock<Inner>>,
    ready: watch::Receiver<bool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("len", &self.len())
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// The single writer of a [`Store`].
pub struct StoreWriter {
    inner: Arc<RwLock<Inner>>,
    ready: watch::Sender<bool>,
}

/// A new empty store and its writer.
pub fn store() -> (Store, StoreWriter) {
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
fn read(lock: &RwLock<Inner>) -> RwLockReadGuard<'_, Inner> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}
fn write(lock: &RwLock<Inner>) -> RwLockWriteGuard<'_, Inner> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// The object at `key` (`namespace/name`, or `name` when cluster-scoped).
    pub fn get(&self, key: &str) -> Option<Arc<Object>> {
        read(&self.inner).objects.get(key).cloned()
    }

    /// Every object, in no particular order.
    pub fn list(&self) -> Vec<Arc<Object>> {
        read(&self.inner).objects.values().cloned().collect()
    }

    /// Every object in `namespace`.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<Object>> {
        read(&self.inner)
            .objects
            .values()
            .filter(|o| o.namespace() == namespace)
            .cloned()
            .collect()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = read(&self.inner).objects.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// The objects that list `uid` among their ownerReferences.
    pub fn by_owner(&self, uid: &str) -> Vec<Arc<Object>> {
        let inner = read(&self.inner);
        inner.lookup(inner.by_owner.get(uid))
    }

    /// The objects labelled `key=value`.
    pub fn by_label(&self, key: &str, value: &str) -> Vec<Arc<Object>> {
        let inner = read(&self.inner);
        inner.lookup(inner.by_label.get(&(key.to_string(), value.to_string())))
    }

    /// The pods bound to `node` (`spec.nodeName`).
    pub fn by_node(&self, node: &str) -> Vec<Arc<Object>> {
        let inner = read(&self.inner);
        inner.lookup(inner.by_node.get(node))
    }

    /// How many objects the store holds.
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

impl StoreWriter {
    /// A reader of this store.
    pub fn reader(&self) -> Store {
        Store {
            inner: self.inner.clone(),
            ready: self.ready.subscribe(),
        }
    }

    /// Applies one watch event; returns the change it made, if any. Events not newer than
    /// what the store holds for that key (a replay after a resume) change nothing.
    pub fn apply(&self, event: WatchEvent) -> Option<Change> {
        let mut inner = write(&self.inner);
        inner.revision = inner.revision.max(event.revision());
        match event {
            WatchEvent::Bookmark(_) => None,
            WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                let key = obj.key();
                let current = inner.objects.get(&key).map(|o| o.resource_version());
                if current.is_some_and(|rv| rv >= obj.resource_version()) {
                    return None;
                }
                let new = Arc::new(obj);
                let old = inner.insert(key.clone(), new.clone());
                let kind = if old.is_some() {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                };
                Some(Change {
                    kind,
                    key,
                    old,
                    new: Some(new),
                })
            }
            WatchEvent::Deleted(obj) => {
                let key = obj.key();
                let current = inner.objects.get(&key)?.resource_version();
                if current > obj.resource_version() {
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
        }
    }

    /// Replaces the whole content with a fresh list read at `revision`; returns the changes
    /// against the previous content: objects added, objects whose resourceVersion moved, and
    /// a synthetic delete for every key the list no longer has.
    pub fn replace(&self, items: Vec<Object>, revision: i64) -> Vec<Change> {
        let mut inner = write(&self.inner);
        let mut changes = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        for obj in items {
            let key = obj.key();
            seen.insert(key.clone());
            let unchanged = inner
                .objects
                .get(&key)
                .is_some_and(|o| o.resource_version() == obj.resource_version());
            if unchanged {
                continue;
            }
            let new = Arc::new(obj);
            let old = inner.insert(key.clone(), new.clone());
            let kind = if old.is_some() {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            };
            changes.push(Change {
                kind,
                key,
                old,
                new: Some(new),
            });
        }
        let gone: Vec<String> = inner
            .objects
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            let old = inner.remove(&key);
            changes.push(Change {
                kind: ChangeKind::Deleted,
                key,
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
    use bosun_api::v1;

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
            let change = w.apply(event);
            assert_eq!(change.map(|c| c.kind), want, "{what}");
            assert_eq!(store.keys(), keys, "{what}");
        }
        assert_eq!(store.revision(), 9, "bookmarks advance the revision");
        assert_eq!(store.get("ns/a").unwrap().resource_version(), 4);
    }

    #[test]
    fn indexes_follow_updates_and_deletes() {
        let (store, w) = store();
        w.apply(WatchEvent::Added(pod(
            "a",
            1,
            &[("app", "x")],
            &["job-1"],
            "n1",
        )));
        w.apply(WatchEvent::Added(pod(
            "b",
            2,
            &[("app", "x")],
            &["job-2"],
            "n1",
        )));
        w.apply(WatchEvent::Added(pod(
            "c",
            3,
            &[("app", "y")],
            &["job-1"],
            "",
        )));
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
                ("label app=x", store.by_label("app", "x"), &["a", "b"]),
                ("label app=y", store.by_label("app", "y"), &["c"]),
                ("node n1", store.by_node("n1"), &["a", "b"]),
                ("node none", store.by_node(""), &[]),
            ],
        );
        // a moves: new label, new owner, new node; b goes away.
        w.apply(WatchEvent::Modified(pod(
            "a",
            4,
            &[("app", "y")],
            &["job-2"],
            "n2",
        )));
        w.apply(WatchEvent::Deleted(pod("b", 5, &[], &[], "")));
        check(
            "after changes",
            &[
                ("owner job-1", store.by_owner("job-1"), &["c"]),
                ("owner job-2", store.by_owner("job-2"), &["a"]),
                ("label app=x", store.by_label("app", "x"), &[]),
                ("label app=y", store.by_label("app", "y"), &["a", "c"]),
                ("node n1", store.by_node("n1"), &[]),
                ("node n2", store.by_node("n2"), &["a"]),
            ],
        );
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
        let (never, w2) = super::store();
        drop(w2);
        never.wait_until_ready().await;
    }
}
