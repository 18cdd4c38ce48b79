//! The runtime side of scale-out (issue 12): what a replica does with the shards it holds.
//!
//! The membership (`shards.rs`) publishes the replica's [`Held`] shards on a
//! `tokio::sync::watch` channel; this module turns that into behaviour:
//!
//! - **the fence**: a task-local current [`Fence`]; every broker call made inside
//!   [`fenced`] carries it as the `bosun-fence` gRPC metadata (`Broker::request`). Work
//!   spawned off a fenced task (a `JoinSet` of pod creations) is wrapped in
//!   [`carry_fence`], since a task-local does not cross `tokio::spawn`.
//! - **the filter**: [`filter_of`] is what a sharded informer sends as `ShardFilter` on
//!   list and watch (`None` for a lone replica holding every shard).
//! - **the gate**: [`gate`] decides, for a key popped from the work queue, whether this
//!   replica reconciles it and under which fence.
//!
//! A shard held with token 0 is **unfenced**: a single replica running without the
//! membership ([`Sharding::single`]) holds every shard with token 0 and sends no fence
//! header, exactly as before scale-out.

use std::collections::BTreeMap;
use std::future::Future;

use bosun_api::shard::{Controller, Fence, SHARDS};
use tokio::sync::watch;

pub use crate::shards::Held;

tokio::task_local! {
    /// The fence of the reconcile (or the work spawned off it) running on this task.
    static FENCE: Option<Fence>;
}

/// The fence the broker calls of the current task carry, if any.
pub fn current_fence() -> Option<Fence> {
    FENCE.try_with(|f| *f).ok().flatten()
}

/// Runs `fut` with `fence` as the current fence (`None`: unfenced, even inside another
/// fenced scope).
pub async fn fenced<F: Future>(fence: Option<Fence>, fut: F) -> F::Output {
    FENCE.scope(fence, fut).await
}

/// Runs the synchronous `f` with `fence` as the current fence.
pub fn fenced_sync<R>(fence: Option<Fence>, f: impl FnOnce() -> R) -> R {
    FENCE.sync_scope(fence, f)
}

/// Wraps `fut` so it runs under the fence current *now*: for work handed to `tokio::spawn`
/// or a `JoinSet` from inside a fenced reconcile (a task-local does not follow a spawn).
pub fn carry_fence<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    FENCE.scope(current_fence(), fut)
}

/// A controller replica's place among the replicas of its kind, for the length of its
/// `run()`: the [`Sharding`] its informers and controller follow, and the membership behind
/// it, which leaves (revokes its lease, handing every shard over at once) as soon as the
/// shutdown token fires.
pub struct Replica {
    pub sharding: Sharding,
    leaving: Option<tokio::task::JoinHandle<()>>,
    queue_depth: Option<tokio::task::JoinHandle<()>>,
    membership: Option<std::sync::Arc<crate::shards::Membership>>,
}

impl Replica {
    /// Joins the replicas of `controller` through the broker at `server` as `args.replica`
    /// with a lease of `args.lease_ttl` — unless `given` (a test's hand-made shards, or
    /// [`Sharding::single`] for a plane that runs one replica by construction).
    pub fn join(
        controller: Controller,
        server: &str,
        args: &crate::config::ReplicaArgs,
        given: Option<Sharding>,
        metrics: &crate::metrics::Metrics,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Replica, crate::client::ClientError> {
        if let Some(sharding) = given {
            return Ok(Replica {
                sharding,
                leaving: None,
                queue_depth: None,
                membership: None,
            });
        }
        let config = crate::shards::MembershipConfig {
            replica: args.replica.clone(),
            ttl: args.lease_ttl,
            ..crate::shards::MembershipConfig::new(controller)
        };
        let membership =
            crate::shards::Membership::start(crate::shards::connect_lazy(server)?, config, metrics);
        let sharding = Sharding::new(controller, membership.held());
        let membership = std::sync::Arc::new(membership);
        // A graceful stop hands the shards over at once, while the controller drains.
        let leaving = tokio::spawn({
            let (membership, shutdown) = (membership.clone(), shutdown.clone());
            async move {
                shutdown.cancelled().await;
                membership.start_leaving();
            }
        });
        Ok(Replica {
            sharding,
            leaving: Some(leaving),
            queue_depth: None,
            membership: Some(membership),
        })
    }

    /// Reports `queue`'s depth on the member key every second (`bosun get controllers`).
    pub fn report_queue(&mut self, queue: crate::queue::WorkQueue<String>) {
        let Some(membership) = self.membership.clone() else {
            return;
        };
        self.queue_depth = Some(tokio::spawn(async move {
            loop {
                membership.set_queue_depth(queue.len() as u64);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }));
    }

    /// Leaves (if the shutdown has not made it leave already) and waits until the lease is
    /// revoked: call after the controller's `run` returned.
    pub async fn left(mut self) {
        for task in [self.queue_depth.take(), self.leaving.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
            let _ = task.await;
        }
        if let Some(m) = self
            .membership
            .take()
            .and_then(|m| std::sync::Arc::try_unwrap(m).ok())
        {
            m.leave().await;
        }
    }
}

/// How a controller replica learns which shards it holds: the controller kind and the
/// membership's channel. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sharding {
    pub controller: Controller,
    pub held: watch::Receiver<Held>,
}

impl Sharding {
    /// Follows `held` (the membership's channel, or a test's).
    pub fn new(controller: Controller, held: watch::Receiver<Held>) -> Sharding {
        Sharding { controller, held }
    }

    /// A lone replica without the membership: every shard held, with token 0, so nothing is
    /// filtered and no write is fenced (the behaviour before scale-out).
    pub fn single(controller: Controller) -> Sharding {
        // The sender is dropped: the value never changes, and `changed()` ends at once.
        let (_, held) = watch::channel(single_replica(controller));
        Sharding::new(controller, held)
    }
}

/// Every shard of `controller`, each with token 0 (unfenced).
pub fn single_replica(controller: Controller) -> Held {
    Held {
        controller,
        count: SHARDS,
        tokens: (0..SHARDS).map(|s| (s, 0)).collect::<BTreeMap<_, _>>(),
    }
}

/// The shards of a list or watch, as the informer keeps them (`ShardFilter` on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSet {
    pub controller: Controller,
    pub count: u32,
    pub shards: Vec<u32>,
}

impl ShardSet {
    /// The wire form.
    pub fn to_proto(&self) -> bosun_api::v1::ShardFilter {
        bosun_api::v1::ShardFilter {
            controller: self.controller.name().to_string(),
            shard_count: self.count,
            shards: self.shards.clone(),
        }
    }
}

/// The filter an informer of `held`'s replica lists and watches with: `None` when every
/// shard is held (nothing to filter), else the held shards (possibly none: then only the
/// unsharded objects come).
pub fn filter_of(held: &Held) -> Option<ShardSet> {
    (!held.all()).then(|| ShardSet {
        controller: held.controller,
        count: held.count,
        shards: held.tokens.keys().copied().collect(),
    })
}

/// What a sharded informer's cache reflects: the shard filter of its last completed list
/// (`Some(None)`: every shard; `None`: not listed yet). A controller reconciles a key of a
/// shard only once every one of its sharded caches covers that shard: a replica that just
/// took a shard must not act on a Job whose pods its pod cache has not listed yet (it would
/// see none and create them again).
#[derive(Debug, Clone)]
pub struct Coverage(watch::Receiver<Option<Option<ShardSet>>>);

impl Coverage {
    /// A channel an informer reports its coverage on, and the coverage read from it.
    pub fn channel() -> (watch::Sender<Option<Option<ShardSet>>>, Coverage) {
        let (tx, rx) = watch::channel(None);
        (tx, Coverage(rx))
    }

    /// Whether the cache holds every object of `shard` (as of its last list and the watch
    /// since).
    pub fn covers(&self, shard: u32) -> bool {
        match &*self.0.borrow() {
            None => false,
            Some(None) => true,
            Some(Some(set)) => set.shards.contains(&shard),
        }
    }
}

/// What a worker does with a popped key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Reconcile it, with this fence on its writes (`None`: unfenced).
    Reconcile(Option<Fence>),
    /// Drop it: its shard is not held by this replica (another replica's, or nobody's yet).
    NotHeld(u32),
    /// Not yet: the shard is held but a cache has not listed it yet; look again shortly.
    NotCovered(u32),
}

/// Whether the replica holding `held` reconciles an object of shard `shard` (`None`:
/// unsharded, or its object is gone and its shard unknown), and under which fence. A token
/// of 0 or less means unfenced (a lone replica without the membership).
pub fn gate(held: &Held, shard: Option<u32>, caches: &[Coverage]) -> Gate {
    let Some(shard) = shard else {
        return Gate::Reconcile(None);
    };
    match held.fence(shard) {
        None => Gate::NotHeld(shard),
        Some(_) if !caches.iter().all(|c| c.covers(shard)) => Gate::NotCovered(shard),
        Some(fence) if fence.token > 0 => Gate::Reconcile(Some(fence)),
        Some(_) => Gate::Reconcile(None),
    }
}

/// The shards in `new` that were not in `old` (taken since).
pub fn gained(old: &Held, new: &Held) -> Vec<u32> {
    new.tokens
        .keys()
        .filter(|s| !old.tokens.contains_key(s))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(pairs: &[(u32, i64)]) -> Held {
        Held {
            controller: Controller::Job,
            count: 4,
            tokens: pairs.iter().copied().collect(),
        }
    }

    fn fence(shard: u32, token: i64) -> Option<Fence> {
        Some(Fence {
            controller: Controller::Job,
            shard,
            token,
        })
    }

    #[test]
    fn the_gate_reconciles_held_and_unsharded_keys_and_drops_the_rest() {
        let cases: &[(&str, Held, Option<u32>, Gate)] = &[
            (
                "a held shard, fenced with its token",
                held(&[(1, 42)]),
                Some(1),
                Gate::Reconcile(fence(1, 42)),
            ),
            (
                "a shard held by another replica",
                held(&[(1, 42)]),
                Some(2),
                Gate::NotHeld(2),
            ),
            ("nothing held yet", held(&[]), Some(0), Gate::NotHeld(0)),
            (
                "an unsharded object: every replica, unfenced",
                held(&[]),
                None,
                Gate::Reconcile(None),
            ),
            (
                "token 0: a lone replica, unfenced",
                held(&[(3, 0)]),
                Some(3),
                Gate::Reconcile(None),
            ),
        ];
        for (what, held, shard, want) in cases {
            assert_eq!(gate(held, *shard, &[]), *want, "{what}");
        }
        let lone = single_replica(Controller::CronJob);
        assert!((0..SHARDS).all(|s| gate(&lone, Some(s), &[]) == Gate::Reconcile(None)));
    }

    #[test]
    fn a_held_shard_waits_until_every_cache_has_listed_it() {
        let covering = |c: Option<Option<Vec<u32>>>| {
            let (tx, coverage) = Coverage::channel();
            tx.send_replace(c.map(|set| {
                set.map(|shards| ShardSet {
                    controller: Controller::Job,
                    count: 4,
                    shards,
                })
            }));
            (tx, coverage)
        };
        let held = held(&[(1, 42), (2, 7)]);
        let (_a, listed_1_2) = covering(Some(Some(vec![1, 2])));
        let (_b, listed_1) = covering(Some(Some(vec![1])));
        let (_c, everything) = covering(Some(None));
        let (_d, not_listed) = covering(None);
        let cases: &[(&str, Option<u32>, Vec<Coverage>, Gate)] = &[
            (
                "every cache listed it",
                Some(2),
                vec![listed_1_2.clone(), everything.clone()],
                Gate::Reconcile(fence(2, 7)),
            ),
            (
                "the pod cache has not listed it yet",
                Some(2),
                vec![listed_1_2.clone(), listed_1.clone()],
                Gate::NotCovered(2),
            ),
            (
                "a cache not listed at all",
                Some(1),
                vec![not_listed.clone()],
                Gate::NotCovered(1),
            ),
            (
                "not held: dropped, whatever the caches",
                Some(3),
                vec![everything.clone()],
                Gate::NotHeld(3),
            ),
            (
                "unsharded: at once",
                None,
                vec![not_listed.clone()],
                Gate::Reconcile(None),
            ),
        ];
        for (what, shard, caches, want) in cases {
            assert_eq!(gate(&held, *shard, caches), *want, "{what}");
        }
    }

    #[test]
    fn the_filter_is_the_held_shards_unless_all_are_held() {
        let cases: &[(&str, Held, Option<Vec<u32>>)] = &[
            ("some held", held(&[(0, 1), (2, 5)]), Some(vec![0, 2])),
            ("none held: only unsharded objects", held(&[]), Some(vec![])),
            (
                "all held: no filter",
                held(&[(0, 1), (1, 1), (2, 1), (3, 1)]),
                None,
            ),
        ];
        for (what, held, want) in cases {
            let got = filter_of(held);
            assert_eq!(got.as_ref().map(|f| f.shards.clone()), *want, "{what}");
            if let Some(f) = got {
                let wire = f.to_proto();
                assert_eq!(
                    (wire.controller.as_str(), wire.shard_count),
                    ("job", 4),
                    "{what}"
                );
            }
        }
        assert_eq!(filter_of(&single_replica(Controller::Job)), None);
    }

    #[test]
    fn gained_lists_the_shards_taken_since() {
        assert_eq!(
            gained(&held(&[(0, 1), (1, 1)]), &held(&[(1, 2), (2, 3), (3, 3)])),
            [2, 3]
        );
        assert!(gained(&held(&[(0, 1)]), &held(&[])).is_empty());
    }

    #[tokio::test]
    async fn the_fence_follows_its_scope_and_is_carried_into_spawned_work() {
        assert_eq!(current_fence(), None);
        let f = fence(7, 9);
        let (inside, spawned, plain) = fenced(f, async {
            let carried = tokio::spawn(carry_fence(async { current_fence() }));
            let bare = tokio::spawn(async { current_fence() });
            (current_fence(), carried.await.unwrap(), bare.await.unwrap())
        })
        .await;
        assert_eq!(inside, f);
        assert_eq!(
            spawned, f,
            "carry_fence takes the fence into the spawned task"
        );
        assert_eq!(plain, None, "a bare spawn does not");
        assert_eq!(fenced_sync(f, current_fence), f);
        assert_eq!(
            fenced(f, fenced(None, async { current_fence() })).await,
            None
        );
    }
}
