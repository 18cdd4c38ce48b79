//! What a controller has just created or deleted and its cache does not show yet
//! (Kubernetes' `ControllerExpectations`, keyed by owner): without it, a reconcile that
//! runs before the watch delivers its own creations creates the same pods again, and one
//! that runs before a deletion shows counts the victim as still active.
//!
//! A creation is remembered once it succeeded (the name comes from the broker with
//! `generateName`), so a failed create leaves nothing behind and the next reconcile simply
//! creates again. Each entry ends when the cache catches up, or after a time to live (a
//! watch event lost for good must not block an owner forever). Time is tokio's, so tests
//! run on a paused clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// What the cache shows of one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not in the cache.
    Absent,
    /// In the cache, not being deleted.
    Present,
    /// In the cache with a deletionTimestamp.
    Deleting,
}

/// The in-flight creations (with what the controller knows of each, `V`) and deletions of
/// every owner.
#[derive(Debug)]
pub struct Expectations<V> {
    ttl: Duration,
    owners: Mutex<HashMap<String, Pending<V>>>,
}

#[derive(Debug)]
struct Pending<V> {
    created: HashMap<String, (V, Instant)>,
    deleted: HashMap<String, Instant>,
}

impl<V> Default for Pending<V> {
    fn default() -> Self {
        Pending {
            created: HashMap::new(),
            deleted: HashMap::new(),
        }
    }
}

/// What an owner has in flight, once the cache has been compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight<V> {
    /// Created and not in the cache yet: count them as present.
    pub created: Vec<(String, V)>,
    /// Deleted and still shown without a deletionTimestamp: count them as going.
    pub deleted: Vec<String>,
}

impl<V> Default for InFlight<V> {
    fn default() -> Self {
        InFlight {
            created: Vec::new(),
            deleted: Vec::new(),
        }
    }
}

impl<V: Clone> Expectations<V> {
    /// Entries are forgotten after `ttl` even when the cache never shows them.
    pub fn new(ttl: Duration) -> Expectations<V> {
        Expectations {
            ttl,
            owners: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending<V>>> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `owner` created `name` (with `value`).
    pub fn created(&self, owner: &str, name: &str, value: V) {
        self.lock()
            .entry(owner.to_string())
            .or_default()
            .created
            .insert(name.to_string(), (value, Instant::now()));
    }

    /// `owner` is deleting `names`.
    pub fn deleting<'a>(&self, owner: &str, names: impl IntoIterator<Item = &'a str>) {
        let now = Instant::now();
        let mut all = self.lock();
        let pending = all.entry(owner.to_string()).or_default();
        for name in names {
            pending.deleted.insert(name.to_string(), now);
        }
    }

    /// Compares `owner`'s entries with the cache (`seen` says what it shows of a name),
    /// drops those it has caught up with or that expired, and returns the rest.
    pub fn observe(&self, owner: &str, seen: impl Fn(&str) -> Seen) -> InFlight<V> {
        let mut all = self.lock();
        let Some(pending) = all.get_mut(owner) else {
            return InFlight::default();
        };
        let now = Instant::now();
        let ttl = self.ttl;
        let fresh = |at: &Instant| now.duration_since(*at) < ttl;
        pending
            .created
            .retain(|name, (_, at)| fresh(at) && seen(name) == Seen::Absent);
        pending
            .deleted
            .retain(|name, at| fresh(at) && seen(name) == Seen::Present);
        let mut out = InFlight {
            created: pending
                .created
                .iter()
                .map(|(n, (v, _))| (n.clone(), v.clone()))
                .collect(),
            deleted: pending.deleted.keys().cloned().collect(),
        };
        out.created.sort_by(|a, b| a.0.cmp(&b.0));
        out.deleted.sort();
        if pending.created.is_empty() && pending.deleted.is_empty() {
            all.remove(owner);
        }
        out
    }

    /// Forgets everything about `owner` (it is gone).
    pub fn forget(&self, owner: &str) {
        self.lock().remove(owner);
    }

    /// How many owners have something in flight.
    pub fn owners(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_creation_counts_until_the_cache_shows_it() {
        let e = Expectations::<Option<i32>>::new(Duration::from_secs(60));
        e.created("job", "p-1", Some(1));
        let in_flight = e.observe("job", |_| Seen::Absent);
        assert_eq!(in_flight.created, [("p-1".to_string(), Some(1))]);
        let in_flight = e.observe("job", |_| Seen::Present);
        assert!(in_flight.created.is_empty());
        assert_eq!(
            e.owners(),
            0,
            "an owner with nothing in flight is forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deletion_counts_until_the_cache_shows_it_going_or_gone() {
        let e = Expectations::<()>::new(Duration::from_secs(60));
        e.deleting("job", ["a", "b"]);
        let in_flight = e.observe("job", |_| Seen::Present);
        assert_eq!(in_flight.deleted, ["a", "b"]);
        let in_flight = e.observe("job", |n| {
            if n == "a" {
                Seen::Deleting
            } else {
                Seen::Absent
            }
        });
        assert!(in_flight.deleted.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn entries_the_cache_never_shows_expire() {
        let e = Expectations::<()>::new(Duration::from_secs(60));
        e.created("job", "lost", ());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(e.observe("job", |_| Seen::Absent).created.len(), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(e.observe("job", |_| Seen::Absent).created.is_empty());
    }

    #[test]
    fn owners_are_kept_apart_and_forgotten_on_request() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let e = Expectations::<()>::new(Duration::from_secs(60));
            e.created("a", "p", ());
            e.created("b", "p", ());
            e.forget("a");
            assert!(e.observe("a", |_| Seen::Absent).created.is_empty());
            assert_eq!(e.observe("b", |_| Seen::Absent).created.len(), 1);
        });
    }
}
