//! `bosun_runtime::shards::Membership` against a real broker and etcd: replicas of one
//! controller kind split the 256 shards, hand them over when one leaves or dies, and a
//! replica whose lease was lost drops everything and comes back.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bosun_api::shard::{Controller, SHARDS};
use bosun_runtime::metrics::Metrics;
use bosun_runtime::shards::{Held, Membership, MembershipConfig, connect_lazy};
use bosun_tests::{Broker, Etcd, wait_for};

const TTL: Duration = Duration::from_secs(2);

fn start(broker: &Broker, replica: &str) -> Membership {
    start_with(broker, replica, &Metrics::new())
}

fn start_with(broker: &Broker, replica: &str, metrics: &Metrics) -> Membership {
    let config = MembershipConfig {
        replica: replica.into(),
        ttl: TTL,
        report_every: Duration::from_millis(200),
        ..MembershipConfig::new(Controller::Job)
    };
    Membership::start(
        connect_lazy(&broker.url()).expect("address"),
        config,
        metrics,
    )
}

fn held(m: &Membership) -> Held {
    m.held().borrow().clone()
}

fn shards(h: &Held) -> BTreeSet<u32> {
    h.tokens.keys().copied().collect()
}

/// Waits until `a` and `b` each hold their rendezvous share (all 256 between them), and
/// checks at every look that no shard is held by both.
async fn wait_split(a: &Membership, b: &Membership) {
    let names = [a.replica(), b.replica()];
    let share = |m: &Membership| -> BTreeSet<u32> {
        bosun_api::shard::assigned(m.replica(), &names, SHARDS)
            .into_iter()
            .collect()
    };
    let (want_a, want_b) = (share(a), share(b));
    assert_eq!(want_a.len() + want_b.len(), SHARDS as usize);
    wait_for(
        "the two replicas to split the shards",
        Duration::from_secs(10),
        || async {
            let (ha, hb) = (shards(&held(a)), shards(&held(b)));
            let overlap = ha.intersection(&hb).count();
            assert_eq!(overlap, 0, "shards held twice");
            if ha == want_a && hb == want_b {
                Ok(())
            } else {
                Err(format!("a holds {}, b holds {}", ha.len(), hb.len()))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_the_shards_and_one_leaving_hands_all_to_the_other_at_once() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let a = start(&broker, "a");
    let b = start(&broker, "b");
    wait_split(&a, &b).await;

    let left = Instant::now();
    a.leave().await;
    wait_for("b to hold all 256", Duration::from_secs(1), || async {
        held(&b).all()
    })
    .await;
    report_took("leave → all held by b", left);
}

fn report_took(what: &str, since: Instant) {
    eprintln!("{what}: {:?}", since.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_without_leaving_loses_its_shards_after_its_ttl() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let a = start(&broker, "a");
    let b = start(&broker, "b");
    wait_split(&a, &b).await;
    let gone = Instant::now();
    drop(a);
    wait_for(
        "b to hold all 256 after a's lease expired",
        TTL + Duration::from_secs(1),
        || async { held(&b).all() },
    )
    .await;
    report_took("drop → all held by b", gone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_lease_was_revoked_drops_every_shard_then_comes_back() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let metrics = Metrics::new();
    let a = start_with(&broker, "a", &metrics);
    wait_for("a to hold all 256", Duration::from_secs(10), || async {
        held(&a).all()
    })
    .await;
    let before = held(&a);
    let lease = a.lease_id();
    assert_ne!(lease, 0);

    // Watch every published value, so a short-lived "none" is not missed.
    let mut rx = a.held();
    let saw_none = tokio::spawn(async move {
        loop {
            if rx.changed().await.is_err() {
                return false;
            }
            if rx.borrow_and_update().tokens.is_empty() {
                return true;
            }
        }
    });
    etcd.client()
        .await
        .lease_revoke(lease)
        .await
        .expect("revoke a's lease");
    assert!(
        tokio::time::timeout(TTL * 2, saw_none)
            .await
            .expect("a published none in time")
            .expect("observer"),
        "a never published none"
    );
    wait_for(
        "a to hold all 256 again, on a new lease",
        Duration::from_secs(10),
        || async { held(&a).all() && a.lease_id() != 0 && a.lease_id() != lease },
    )
    .await;
    let text = metrics.render();
    for line in [
        "bosun_shards_held{controller=\"job\"} 256",
        "bosun_shard_lease_losses_total{controller=\"job\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert!(
        text.lines().any(
            |l| l.starts_with("bosun_shard_handoffs_total{controller=\"job\"} ")
                && !l.ends_with(" 0")
        ),
        "no handoff counted in\n{text}"
    );
    let after = held(&a);
    for (shard, token) in &after.tokens {
        assert!(*token > before.tokens[shard], "shard {shard}: a new token");
    }
    a.leave().await;
}
