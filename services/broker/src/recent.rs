//! The broker's memory of objects as it last wrote or read them: the stored bytes and their
//! mod_revision per etcd key, so a read-merge-write (update, update-status, bind, finalizers,
//! delete) can start from memory instead of an etcd read.
//!
//! Nothing trusts an entry blindly. Every write it feeds is guarded by the mod_revision the
//! entry carries: when the entry went stale (another broker wrote the key, or someone wrote
//! etcd directly), the compare fails, the entry is dropped and the write starts over from a
//! fresh etcd read. So does anything other than a clean write decided on an entry (a conflict,
//! a refusal, "nothing changed"): the store decides those again on a fresh read (see
//! `Store::write_existing`).
//!
//! Memory is bounded by a byte budget; the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// One remembered object: its stored bytes and their mod_revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub bytes: Arc<[u8]>,
    pub revision: i64,
}

/// See the module docs. Cheap to share behind an `Arc`; every call takes a short lock.
pub struct Recent {
    inner: Mutex<Inner>,
    budget: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Arc<str>, (Entry, u64)>,
    /// Keys in the order they were put, each with the sequence number of that put (an older
    /// put of a key put again since no longer matches the map and is skipped).
    order: VecDeque<(Arc<str>, u64)>,
    bytes: usize,
    seq: u64,
}

impl Recent {
    /// Remembers at most `budget` bytes of object values (0: nothing).
    pub fn new(budget: usize) -> Recent {
        Recent {
            inner: Mutex::new(Inner::default()),
            budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The remembered state of `key`.
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.lock().map.get(key).map(|(e, _)| e.clone())
    }

    /// Remembers `key` as stored at `revision`, unless an entry of a later revision is
    /// already there. A value larger than the whole budget is not kept.
    pub fn put(&self, key: &str, bytes: Arc<[u8]>, revision: i64) {
        if bytes.len() > self.budget {
            self.remove(key);
            return;
        }
        let mut inner = self.lock();
        if inner
            .map
            .get(key)
            .is_some_and(|(e, _)| e.revision > revision)
        {
            return;
        }
        inner.seq += 1;
        let seq = inner.seq;
        let key: Arc<str> = Arc::from(key);
        inner.bytes += bytes.len();
        if let Some((old, _)) = inner
            .map
            .insert(key.clone(), (Entry { bytes, revision }, seq))
        {
            inner.bytes -= old.bytes.len();
        }
        inner.order.push_back((key, seq));
        while inner.bytes > self.budget {
            let Some((key, seq)) = inner.order.pop_front() else {
                break;
            };
            if inner.map.get(&key).is_some_and(|(_, s)| *s == seq)
                && let Some((old, _)) = inner.map.remove(&key)
            {
                inner.bytes -= old.bytes.len();
            }
        }
        // Keys put again leave stale places in the order: rebuild it before it outgrows
        // the map.
        if inner.order.len() > 2 * inner.map.len() + 1024 {
            let mut order: Vec<(Arc<str>, u64)> = inner
                .map
                .iter()
                .map(|(k, (_, s))| (k.clone(), *s))
                .collect();
            order.sort_unstable_by_key(|(_, s)| *s);
            inner.order = order.into();
        }
    }

    /// Forgets `key` (deleted, or its entry proved stale).
    pub fn remove(&self, key: &str) {
        let mut inner = self.lock();
        if let Some((old, _)) = inner.map.remove(key) {
            inner.bytes -= old.bytes.len();
        }
    }

    /// Entries and bytes held (for metrics and tests).
    pub fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.map.len(), inner.bytes)
    }

    #[cfg(test)]
    fn order_len(&self) -> usize {
        self.lock().order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(n: usize) -> Arc<[u8]> {
        vec![7u8; n].into()
    }

    #[test]
    fn a_put_is_read_back_and_a_later_revision_wins() {
        let r = Recent::new(1000);
        r.put("/a", val(10), 5);
        assert_eq!(r.get("/a").map(|e| e.revision), Some(5));
        r.put("/a", val(20), 7);
        r.put("/a", val(30), 6); // older than what is held: ignored
        let e = r.get("/a").expect("entry");
        assert_eq!((e.revision, e.bytes.len()), (7, 20));
        assert_eq!(r.size(), (1, 20));
        r.remove("/a");
        assert_eq!(r.get("/a"), None);
        assert_eq!(r.size(), (0, 0));
    }

    #[test]
    fn the_budget_evicts_the_oldest_puts_first() {
        let r = Recent::new(100);
        for (i, key) in ["/a", "/b", "/c", "/d"].iter().enumerate() {
            r.put(key, val(30), i as i64 + 1);
        }
        // 4 × 30 > 100: /a went first.
        assert_eq!(r.get("/a"), None);
        assert!(r.get("/b").is_some() && r.get("/d").is_some());
        // Put again, /b is the newest: /c goes next.
        r.put("/b", val(30), 10);
        r.put("/e", val(30), 11);
        assert_eq!(r.get("/c"), None);
        assert!(r.get("/b").is_some() && r.get("/e").is_some());
        assert_eq!(r.size(), (3, 90));
        // A value over the whole budget is not kept, and drops what was there.
        r.put("/b", val(101), 12);
        assert_eq!(r.get("/b"), None);
        assert_eq!(Recent::new(0).size(), (0, 0));
    }

    #[test]
    fn keys_put_again_and_again_do_not_grow_the_order_without_bound() {
        let r = Recent::new(1 << 20);
        for rev in 1..10_000 {
            r.put("/node", val(10), rev);
        }
        assert_eq!(r.size(), (1, 10));
        assert!(r.order_len() <= 2 + 1024, "{}", r.order_len());
    }
}
