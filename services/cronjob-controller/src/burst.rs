//! Job creations first: the writes of a minute boundary in the order that keeps skew low.
//!
//! At a minute boundary every CronJob of that schedule is due at once, and each reconcile
//! makes three writes: the Job, the CronJob's status, a `SuccessfulCreate` Event. The broker
//! serves writes in arrival order, so when each reconcile writes its status right after its
//! Job, the last CronJobs' Jobs queue behind the first ones' status writes and events (and
//! behind the Job controller's pods for the first Jobs). The skew a user sees is the
//! creation of the Job: the status and the event can wait a moment.
//!
//! [`Creations`] counts the Job creations in flight; a reconcile that created one waits for
//! [`Creations::settled`] (no creation in flight, or a bounded wait) before its status write
//! and events. Nothing is lost if the controller stops in between: the Job's name is its
//! idempotency key, and the next reconcile finds it (`AlreadyExists`) and records it.
//!
//! Waiters are woken only when the count reaches zero, not at every change: a thousand
//! waiters and a thousand creations cost a thousand wake-ups, not a million.

use std::time::Duration;

use tokio::sync::watch;

/// The longest a status write waits for other CronJobs' creations: a steady stream of
/// creations (many schedules, each firing at its own second) must not starve status writes.
pub const SETTLE_AT_MOST: Duration = Duration::from_millis(500);

/// Job creations in flight across all of the controller's workers.
#[derive(Debug)]
pub struct Creations {
    count: watch::Sender<usize>,
}

impl Default for Creations {
    fn default() -> Creations {
        Creations {
            count: watch::channel(0).0,
        }
    }
}

impl Creations {
    /// Counts one creation until the returned guard drops.
    pub fn start(&self) -> InFlight<'_> {
        self.count.send_if_modified(|n| {
            *n += 1;
            false
        });
        InFlight(self)
    }

    /// How many creations are in flight.
    pub fn in_flight(&self) -> usize {
        *self.count.borrow()
    }

    /// Resolves when no creation is in flight, or after `at_most`.
    pub async fn settled(&self, at_most: Duration) {
        let mut rx = self.count.subscribe();
        let _ = tokio::time::timeout(at_most, rx.wait_for(|n| *n == 0)).await;
    }
}

/// One creation in flight (dropping it, even on an error or a cancelled future, ends it).
#[derive(Debug)]
pub struct InFlight<'a>(&'a Creations);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.count.send_if_modified(|n| {
            *n -= 1;
            *n == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn settled_waits_for_the_last_creation_and_no_longer() {
        let c = Creations::default();
        // Nothing in flight: at once.
        tokio::time::timeout(Duration::from_millis(1), c.settled(SETTLE_AT_MOST))
            .await
            .expect("settled at once");
        let a = c.start();
        let b = c.start();
        assert_eq!(c.in_flight(), 2);
        let waiter = async {
            let t0 = tokio::time::Instant::now();
            c.settled(Duration::from_secs(10)).await;
            t0.elapsed()
        };
        let ender = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(a);
            tokio::time::sleep(Duration::from_millis(40)).await;
            drop(b);
        };
        let (waited, ()) = tokio::join!(waiter, ender);
        assert_eq!(
            waited,
            Duration::from_millis(70),
            "woken by the last one only"
        );
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_creation_that_never_ends_delays_the_status_by_the_bound_only() {
        let c = Creations::default();
        let _stuck = c.start();
        let t0 = tokio::time::Instant::now();
        c.settled(SETTLE_AT_MOST).await;
        assert_eq!(t0.elapsed(), SETTLE_AT_MOST);
    }
}
