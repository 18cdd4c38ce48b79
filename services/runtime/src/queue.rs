//! The work queue every controller drains (client-go's `workqueue` semantics):
//!
//! - a key waiting in the queue is held once, however often it is added;
//! - a key is never handed to two workers at once: added while a worker holds it, it is
//!   marked dirty and queued again when that worker calls [`WorkQueue::done`];
//! - a failing key is retried after a per-key exponential backoff
//!   ([`WorkQueue::requeue_with_backoff`]), reset by [`WorkQueue::forget`] on success;
//! - [`WorkQueue::add_after`] is a timer: the key comes back after the delay (for one key,
//!   the earliest pending timer wins);
//! - after [`WorkQueue::shutdown`], workers waiting in [`WorkQueue::next`] get `None`.
//!
//! Memory is bounded by the number of distinct keys: each key has at most one place in the
//! ready queue, one pending timer and one failure count.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::{Counter, Gauge, Metrics};

/// Per-key exponential backoff: `base * 2^(failures-1)`, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    /// client-go's per-item default: 5 ms doubling up to 1000 s.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_secs(1000),
        }
    }
}

impl Backoff {
    /// A backoff from `base` doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap }
    }

    /// The delay before retry number `failures` (1 = the first retry).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(63);
        let factor = 1u64.checked_shl(exp).unwrap_or(u64::MAX);
        let nanos = (self.base.as_nanos() as u64).saturating_mul(factor);
        Duration::from_nanos(nanos).min(self.cap)
    }
}

/// The queue's optional metrics.
#[derive(Clone)]
struct QueueMetrics {
    depth: Gauge,
    adds: Counter,
    retries: Counter,
}

struct State<K> {
    /// Keys ready to be handed out, in order.
    ready: VecDeque<K>,
    /// Keys that need processing: those in `ready`, plus held keys re-added (dirty).
    dirty: HashSet<K>,
    /// Keys a worker holds right now.
    processing: HashSet<K>,
    /// Pending timers, ordered by due time (the sequence number breaks ties).
    timers: BTreeSet<(Instant, u64, K)>,
    /// Each key's pending timer, so a key has one at most.
    timer_of: HashMap<K, (Instant, u64)>,
    next_seq: u64,
    /// Consecutive failures per key.
    failures: HashMap<K, u32>,
    shut_down: bool,
}

struct Inner<K> {
    state: Mutex<State<K>>,
    /// Wakes workers waiting in `next`.
    wake: Notify,
    backoff: Backoff,
    metrics: Option<QueueMetrics>,
}

/// A deduplicating, per-key-exclusive, delayed and rate-limited work queue. Cheap to clone;
/// clones share the queue.
pub struct WorkQueue<K = String> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord + Send + 'static> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue::new(Backoff::default())
    }
}

impl<K: Clone + Eq + Hash + Ord + Send + 'static> WorkQueue<K> {
    /// An empty queue retrying with `backoff`.
    pub fn new(backoff: Backoff) -> WorkQueue<K> {
        Self::build(backoff, None)
    }

    /// An empty queue that reports `bosun_queue_depth`, `bosun_queue_adds_total` and
    /// `bosun_queue_retries_total` labelled `queue=name`.
    pub fn with_metrics(backoff: Backoff, metrics: &Metrics, name: &str) -> WorkQueue<K> {
        let labels = [("queue", name)];
        let m = QueueMetrics {
            depth: metrics.gauge(
                "bosun_queue_depth",
                "Keys waiting in the work queue.",
                &labels,
            ),
            adds: metrics.counter(
                "bosun_queue_adds_total",
                "Keys added to the work queue.",
                &labels,
            ),
            retries: metrics.counter(
                "bosun_queue_retries_total",
                "Keys requeued with backoff after a failure.",
                &labels,
            ),
        };
        Self::build(backoff, Some(m))
    }

    fn build(backoff: Backoff, metrics: Option<QueueMetrics>) -> WorkQueue<K> {
        WorkQueue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    ready: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    timers: BTreeSet::new(),
                    timer_of: HashMap::new(),
                    next_seq: 0,
                    failures: HashMap::new(),
                    shut_down: false,
                }),
                wake: Notify::new(),
                backoff,
                metrics,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // A panic while holding the lock leaves consistent state (every step is a plain
        // collection update), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn report_depth(&self, state: &State<K>) {
        if let Some(m) = &self.inner.metrics {
            m.depth.set(state.ready.len() as i64);
        }
    }

    /// Marks `key` as needing processing; returns whether it became ready (a worker should
    /// be woken). Caller holds the lock.
    fn add_locked(&self, state: &mut State<K>, key: K) -> bool {
        if state.shut_down || state.dirty.contains(&key) {
            return false;
        }
        if let Some(m) = &self.inner.metrics {
            m.adds.inc();
        }
        state.dirty.insert(key.clone());
        if state.processing.contains(&key) {
            // Queued again by `done`.
            return false;
        }
        state.ready.push_back(key);
        true
    }

    /// Queues `key` (no effect if it is already waiting).
    pub fn add(&self, key: K) {
        let woke = {
            let mut state = self.lock();
            let woke = self.add_locked(&mut state, key);
            self.report_depth(&state);
            woke
        };
        if woke {
            self.inner.wake.notify_one();
        }
    }

    /// Queues `key` after `delay`; if the key already has an earlier timer, that one stays.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let due = Instant::now() + delay;
        {
            let mut state = self.lock();
            if state.shut_down {
                return;
            }
            match state.timer_of.get(&key) {
                Some((at, _)) if *at <= due => return,
                Some(&(at, seq)) => {
                    state.timers.remove(&(at, seq, key.clone()));
                }
                None => {}
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            state.timers.insert((due, seq, key.clone()));
            state.timer_of.insert(key, (due, seq));
        }
        // A worker sleeping until a later timer must now wake earlier.
        self.inner.wake.notify_waiters();
    }

    /// Records a failure of `key` and queues it after its backoff; returns that delay.
    pub fn requeue_with_backoff(&self, key: K) -> Duration {
        let delay = {
            let mut state = self.lock();
            let failures = state.failures.entry(key.clone()).or_insert(0);
            *failures = failures.saturating_add(1);
            self.inner.backoff.delay(*failures)
        };
        if let Some(m) = &self.inner.metrics {
            m.retries.inc();
        }
        self.add_after(key, delay);
        delay
    }

    /// Clears `key`'s failure count (call after it was processed successfully).
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// How many times in a row `key` has failed.
    pub fn retries(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Moves due timers to the ready queue; returns how many became ready and the next due
    /// time, if any.
    fn fire_timers(&self, state: &mut State<K>, now: Instant) -> (usize, Option<Instant>) {
        let mut fired = 0;
        while let Some(first) = state.timers.first() {
            if first.0 > now {
                return (fired, Some(first.0));
            }
            let Some((_, _, key)) = state.timers.pop_first() else {
                break;
            };
            state.timer_of.remove(&key);
            if self.add_locked(state, key) {
                fired += 1;
            }
        }
        (fired, None)
    }

    /// Waits for the next key to process and hands it to the caller, who must call
    /// [`WorkQueue::done`] with it. `None` once the queue is shut down.
    pub async fn next(&self) -> Option<K> {
        loop {
            // Register for wake-ups before looking, so an add in between is not missed.
            let notified = self.inner.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let next_due = {
                let mut state = self.lock();
                if state.shut_down {
                    return None;
                }
                let (fired, next_due) = self.fire_timers(&mut state, Instant::now());
                let key = state.ready.pop_front();
                if let Some(key) = key {
                    state.dirty.remove(&key);
                    state.processing.insert(key.clone());
                    self.report_depth(&state);
                    drop(state);
                    // Other keys just became ready: pass the wake-up on.
                    for _ in 1..fired {
                        self.inner.wake.notify_one();
                    }
                    return Some(key);
                }
                next_due
            };
            match next_due {
                Some(due) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Releases `key` after processing; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let woke = {
            let mut state = self.lock();
            state.processing.remove(key);
            let requeue = !state.shut_down && state.dirty.contains(key);
            if requeue {
                state.ready.push_back(key.clone());
            }
            self.report_depth(&state);
            requeue
        };
        if woke {
            self.inner.wake.notify_one();
        }
    }

    /// Keys ready to be processed now (not counting held keys and pending timers).
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    /// No key is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys with a pending timer.
    pub fn delayed_len(&self) -> usize {
        self.lock().timers.len()
    }

    /// Keys held by workers right now.
    pub fn processing_len(&self) -> usize {
        self.lock().processing.len()
    }

    /// Stops the queue: waiting workers get `None`, adds are ignored, pending keys and
    /// timers are dropped.
    pub fn shutdown(&self) {
        {
            let mut state = self.lock();
            state.shut_down = true;
            state.ready.clear();
            state.dirty.clear();
            state.timers.clear();
            state.timer_of.clear();
            self.report_depth(&state);
        }
        self.inner.wake.notify_waiters();
    }

    /// Whether [`WorkQueue::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn queue() -> WorkQueue<String> {
        WorkQueue::new(Backoff::new(ms(10), ms(100)))
    }

    /// The next key if one is ready right now (without advancing the paused clock).
    async fn ready_now(q: &WorkQueue<String>) -> Option<String> {
        tokio::select! {
            biased;
            k = q.next() => k,
            _ = tokio::task::yield_now() => None,
        }
    }

    #[test]
    fn backoff_doubles_per_failure_up_to_the_cap() {
        let b = Backoff::new(ms(5), Duration::from_secs(1));
        let table = [
            (0, ms(5)),
            (1, ms(5)),
            (2, ms(10)),
            (3, ms(20)),
            (8, ms(640)),
            (9, Duration::from_secs(1)),
            (200, Duration::from_secs(1)),
        ];
        for (failures, want) in table {
            assert_eq!(b.delay(failures), want, "after {failures} failures");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_many_times_is_queued_once() {
        let q = queue();
        for k in ["a", "b", "a", "a", "b", "c"] {
            q.add(k.to_string());
        }
        assert_eq!(q.len(), 3);
        let mut got = vec![];
        while let Some(k) = ready_now(&q).await {
            got.push(k);
        }
        assert_eq!(got, ["a", "b", "c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_while_held_comes_back_only_after_done() {
        let q = queue();
        q.add("a".to_string());
        let held = q.next().await.unwrap();
        q.add("a".to_string());
        q.add("a".to_string());
        assert_eq!(ready_now(&q).await, None, "not handed to a second worker");
        assert_eq!(q.len(), 0);
        q.done(&held);
        assert_eq!(
            ready_now(&q).await.as_deref(),
            Some("a"),
            "once, after done"
        );
        assert_eq!(ready_now(&q).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_done_without_readding_is_not_requeued() {
        let q = queue();
        q.add("a".to_string());
        let k = q.next().await.unwrap();
        q.done(&k);
        assert_eq!(ready_now(&q).await, None);
        assert_eq!(q.processing_len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_requeue_with_growing_backoff_until_forgotten() {
        let q = queue();
        let key = "a".to_string();
        // (action, expected delay before the key is back)
        let table = [
            (false, ms(10)),
            (false, ms(20)),
            (false, ms(40)),
            (false, ms(80)),
            (false, ms(100)),
            (true, ms(10)),
        ];
        for (forget_first, want) in table {
            if forget_first {
                q.forget(&key);
            }
            let start = Instant::now();
            assert_eq!(q.requeue_with_backoff(key.clone()), want);
            assert_eq!(ready_now(&q).await, None, "not before the backoff");
            let k = q.next().await.unwrap();
            assert_eq!(start.elapsed(), want);
            q.done(&k);
        }
        assert_eq!(q.retries(&key), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_earliest_timer_for_a_key_wins() {
        // (delays added in order, when the key comes back)
        let table: &[(&[u64], u64)] = &[
            (&[50], 50),
            (&[50, 20], 20),
            (&[20, 50], 20),
            (&[30, 30], 30),
        ];
        for (delays, want) in table {
            let q = queue();
            let start = Instant::now();
            for d in *delays {
                q.add_after("a".to_string(), ms(*d));
            }
            assert_eq!(q.delayed_len(), 1, "{delays:?}");
            let k = q.next().await.unwrap();
            assert_eq!(start.elapsed(), ms(*want), "{delays:?}");
            q.done(&k);
            // The dropped timer does not fire later.
            tokio::time::advance(ms(100)).await;
            assert_eq!(ready_now(&q).await, None, "{delays:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn timers_fire_in_due_order_and_wake_a_waiting_worker() {
        let q = queue();
        let worker = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = vec![];
                for _ in 0..3 {
                    let k = q.next().await.unwrap();
                    got.push((k.clone(), Instant::now()));
                    q.done(&k);
                }
                got
            })
        };
        let start = Instant::now();
        q.add_after("late".to_string(), ms(300));
        q.add_after("early".to_string(), ms(100));
        q.add("now".to_string());
        let got = worker.await.unwrap();
        let got: Vec<_> = got.into_iter().map(|(k, t)| (k, t - start)).collect();
        assert_eq!(
            got,
            [
                ("now".to_string(), ms(0)),
                ("early".to_string(), ms(100)),
                ("late".to_string(), ms(300))
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_workers_never_hold_the_same_key() {
        let q = queue();
        let seen = Arc::new(Mutex::new((HashSet::<String>::new(), 0usize)));
        let mut workers = vec![];
        for _ in 0..2 {
            let (q, seen) = (q.clone(), seen.clone());
            workers.push(tokio::spawn(async move {
                while let Some(k) = q.next().await {
                    assert!(seen.lock().unwrap().0.insert(k.clone()), "{k} held twice");
                    tokio::time::sleep(ms(10)).await;
                    {
                        let mut s = seen.lock().unwrap();
                        s.0.remove(&k);
                        s.1 += 1;
                    }
                    q.done(&k);
                }
            }));
        }
        for round in 0..20 {
            q.add(["a", "b", "a"][round % 3].to_string());
            tokio::time::sleep(ms(3)).await;
        }
        tokio::time::sleep(ms(100)).await;
        assert!(seen.lock().unwrap().1 >= 2);
        q.shutdown();
        for w in workers {
            w.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_releases_waiting_workers_and_ignores_later_adds() {
        let q = queue();
        let waiting = {
            let q = q.clone();
            tokio::spawn(async move { q.next().await })
        };
        tokio::task::yield_now().await;
        q.add_after("t".to_string(), ms(10));
        q.shutdown();
        assert_eq!(waiting.await.unwrap(), None);
        q.add("a".to_string());
        assert_eq!(q.len(), 0);
        assert_eq!(q.next().await, None);
        assert!(q.is_shut_down());
    }

    #[tokio::test(start_paused = true)]
    async fn queue_metrics_count_adds_retries_and_depth() {
        let m = Metrics::new();
        let q: WorkQueue<String> = WorkQueue::with_metrics(Backoff::default(), &m, "job");
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        q.requeue_with_backoff("c".into());
        let text = m.render();
        assert!(
            text.contains("bosun_queue_depth{queue=\"job\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("bosun_queue_adds_total{queue=\"job\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("bosun_queue_retries_total{queue=\"job\"} 1\n"),
            "{text}"
        );
    }
}
