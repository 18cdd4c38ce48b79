//! The controller's clock: the wall clock plus an offset that only tests move.
//!
//! **Test hook.** Schedules fire at most once a minute, and a test cannot wait for real
//! minutes. The end-to-end tests hold a clone of [`Config::clock`](crate::Config::clock) and
//! set an offset ([`Clock::set_offset`], [`Clock::jump_to`]): the controller's "now" moves,
//! and every CronJob is reconciled again at once (its timers were computed on the old time).
//! A service started from the command line always has offset zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// The wall clock plus a test-set offset (cheap to clone; clones share the offset).
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Milliseconds added to the wall clock.
    offset_ms: AtomicI64,
    /// Bumped at each change, so the controller can requeue everything.
    changed: watch::Sender<u64>,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock {
            inner: Arc::new(Inner {
                offset_ms: AtomicI64::new(0),
                changed: watch::channel(0).0,
            }),
        }
    }
}

impl Clock {
    /// The controller's now: the wall clock plus the offset.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.inner.offset_ms.load(Ordering::SeqCst))
    }

    /// Test hook: sets the offset from the wall clock (negative: the past).
    pub fn set_offset(&self, offset: chrono::Duration) {
        self.inner
            .offset_ms
            .store(offset.num_milliseconds(), Ordering::SeqCst);
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Test hook: moves the clock so that now is `at` (and runs on from there).
    pub fn jump_to(&self, at: DateTime<Utc>) {
        self.set_offset(at - Utc::now());
    }

    /// Sleeps until now is `at`: false when the clock was stepped back meanwhile and `at` has
    /// not come (the caller plans again), true once it has.
    pub async fn sleep_until(&self, at: DateTime<Utc>) -> bool {
        if let Ok(wait) = (at - self.now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        self.now() >= at
    }

    /// Resolves at each change of the offset (for the controller's requeue-everything).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_jump_moves_now_and_signals_the_change() {
        let clock = Clock::default();
        let mut changes = clock.changes();
        let target = Utc::now() + chrono::Duration::hours(3);
        clock.clone().jump_to(target);
        changes.changed().await.expect("signalled");
        let drift = (clock.now() - target).num_milliseconds().abs();
        assert!(drift < 1000, "{drift} ms");
    }
}
