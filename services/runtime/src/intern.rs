//! Shared values for compact cache entries: a cache of thousands of pods repeats a handful
//! of values (namespace, controller, condition lists), and an [`Interner`] hands out one
//! `Arc` per distinct value instead of a fresh allocation per entry.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Below this many values the interner never prunes.
const MIN_PRUNE_AT: usize = 64;

/// One `Arc<T>` per distinct value (`Interner<str>` for strings, `Interner<[T]>` for lists,
/// or any `Eq + Hash` type). Values nobody else holds any more are dropped when the set has
/// doubled since the last pruning, so memory follows the values in use (a finished Job's
/// controller reference does not stay forever).
#[derive(Debug)]
pub struct Interner<T: ?Sized = str> {
    inner: Mutex<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T: ?Sized> {
    values: HashSet<Arc<T>>,
    /// Prune when the set reaches this size.
    prune_at: usize,
}

impl<T: ?Sized> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            inner: Mutex::new(Inner {
                values: HashSet::new(),
                prune_at: MIN_PRUNE_AT,
            }),
        }
    }
}

impl<T: ?Sized + Eq + Hash> Interner<T> {
    /// The shared copy of `value` (`&str` → `Arc<str>`, `&[T]` → `Arc<[T]>`).
    pub fn intern(&self, value: &T) -> Arc<T>
    where
        for<'a> &'a T: Into<Arc<T>>,
    {
        let mut inner = self.lock();
        match inner.values.get(value) {
            Some(shared) => shared.clone(),
            None => inner.insert(value.into()),
        }
    }

    /// The shared copy of `value`; `value` itself becomes it when no equal value is held.
    pub fn intern_owned(&self, value: T) -> Arc<T>
    where
        T: Sized,
    {
        let mut inner = self.lock();
        match inner.values.get(&value) {
            Some(shared) => shared.clone(),
            None => inner.insert(Arc::new(value)),
        }
    }

    /// How many distinct values are held.
    pub fn len(&self) -> usize {
        self.lock().values.len()
    }

    /// No value is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // The set is never left half-updated: a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T: ?Sized + Eq + Hash> Inner<T> {
    fn insert(&mut self, shared: Arc<T>) -> Arc<T> {
        if self.values.len() >= self.prune_at {
            // A count of 1 is the set's own reference: no one else can clone it now, since
            // new copies only come from the interner, under its lock.
            self.values.retain(|v| Arc::strong_count(v) > 1);
            self.prune_at = (self.values.len() * 2).max(MIN_PRUNE_AT);
        }
        self.values.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_allocation() {
        let strings: Interner = Interner::default();
        let a = strings.intern("default");
        let b = strings.intern(&String::from("default"));
        let c = strings.intern("other");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!((&*a, &*c, strings.len()), ("default", "other", 2));

        let lists: Interner<[(String, String)]> = Interner::default();
        let x = lists.intern(&[("Ready".to_string(), "True".to_string())]);
        let built: Vec<(String, String)> = vec![("Ready".into(), "True".into())];
        let y = lists.intern(&built);
        assert!(Arc::ptr_eq(&x, &y));

        let pairs: Interner<(i32, String)> = Interner::default();
        let p = pairs.intern_owned((1, "a".into()));
        assert!(Arc::ptr_eq(&p, &pairs.intern_owned((1, "a".into()))));
        assert!(!Arc::ptr_eq(&p, &pairs.intern_owned((2, "a".into()))));
    }

    #[test]
    fn values_no_one_holds_are_pruned_as_the_set_grows() {
        let strings: Interner = Interner::default();
        let kept = strings.intern("kept");
        for i in 0..10 * MIN_PRUNE_AT {
            drop(strings.intern(&format!("gone-{i}")));
        }
        assert!(
            strings.len() <= MIN_PRUNE_AT,
            "{} strings held",
            strings.len()
        );
        // What is still in use survives every pruning and is still shared.
        assert!(Arc::ptr_eq(&kept, &strings.intern("kept")));
    }
}
