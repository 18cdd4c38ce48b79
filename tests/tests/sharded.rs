//! Scale-out end to end (issue 12), the runtime side: real etcd, the broker, the scheduler
//! and process-runtime nodes, and two in-process replicas of the Job controller, each given
//! its shards by hand through a `watch` channel the test owns (the membership is not part
//! of this test). Today's broker sends every object whatever the shard filter, so this
//! checks the replicas' own gating: each Job's pods are created by the replica holding the
//! Job's shard, and when shards move, the new holder takes their Jobs over and the old one
//! stops touching them.
//!
//! Which replica created a pod is read from its `SuccessfulCreate` event: each replica
//! names itself as the event's `source.host` (`--replica`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use bosun_api::shard::{Controller, SHARDS, of_uid};
use bosun_api::v1::{self, Kind, Object};
use bosun_runtime::client::Selector;
use bosun_runtime::sharded::{Held, Sharding};
use bosun_tests::{free_addr, job_condition_true, metric, wait_for};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

/// The shards of `ranges`, each held with `token`.
fn held(ranges: &[(Range<u32>, i64)]) -> Held {
    Held {
        controller: Controller::Job,
        count: SHARDS,
        tokens: ranges
            .iter()
            .flat_map(|(r, token)| r.clone().map(move |s| (s, *token)))
            .collect(),
    }
}

/// One replica of the Job controller, running in-process until the test ends.
struct Replica {
    name: &'static str,
    metrics: SocketAddr,
    held: watch::Sender<Held>,
}

impl Replica {
    fn start(
        plane: &bosun_tests::Plane,
        name: &'static str,
        shards: Held,
        stop: &CancellationToken,
    ) -> Replica {
        let (tx, rx) = watch::channel(shards);
        let mut config = bosun_job_controller::Config::for_server(plane.url());
        config.metrics.metrics_listen = Some(free_addr());
        config.replica.replica = name.to_string();
        config.sharding = Some(Sharding::new(Controller::Job, rx));
        let metrics = config.metrics.metrics_listen.expect("set above");
        tokio::spawn(bosun_job_controller::run(config, stop.clone()));
        Replica {
            name,
            metrics,
            held: tx,
        }
    }

    async fn metric(&self, name: &str) -> f64 {
        metric(self.metrics, name).await.unwrap_or(0.0)
    }

    /// Waits until its controller reports `n` shards held.
    async fn wait_holding(&self, n: usize) {
        let name = "bosun_controller_shards_held{controller=\"job\"}";
        wait_for(
            &format!("{} holding {n} shards", self.name),
            WAIT,
            || async {
                let held = self.metric(name).await;
                if held == n as f64 {
                    Ok(())
                } else {
                    Err(format!("{held}"))
                }
            },
        )
        .await;
    }
}

/// A Job of `completions` pods one at a time, each waiting for the plane's file `go`.
fn job(plane: &bosun_tests::Plane, name: &str, completions: i32) -> Object {
    let mut template = bosun_tests::pod_template(name, "Never");
    let spec = template.spec.as_mut().expect("spec");
    spec.containers[0].command = vec!["sh".into(), "-c".into(), plane.wait_for_file("go")];
    v1::Job {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(v1::JobSpec {
            completions: Some(completions),
            parallelism: Some(1),
            template: Some(template),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into()
}

/// Pod name → the replica whose `SuccessfulCreate` event reports creating it, for the Job
/// with `uid`.
async fn creators(plane: &bosun_tests::Plane, uid: &str) -> HashMap<String, String> {
    plane
        .client()
        .list(Kind::Event, &Selector::namespace("default"))
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter_map(Object::into_event)
        .filter(|e| e.reason == "SuccessfulCreate")
        .filter(|e| e.involved_object.as_ref().is_some_and(|o| o.uid == uid))
        .filter_map(|e| {
            let pod = e.message.strip_prefix("Created pod: ")?.to_string();
            Some((pod, e.source.map(|s| s.host).unwrap_or_default()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_split_the_jobs_by_shard_and_hand_them_over_when_shards_move() {
    let plane = bosun_tests::Plane::builder("sharded-jobs")
        .scheduler()
        .nodes(&["node-1", "node-2"])
        .start()
        .await;
    let stop = CancellationToken::new();
    // A holds the first half of the shards, B the second.
    let a = Replica::start(&plane, "replica-a", held(&[(0..128, 1)]), &stop);
    let b = Replica::start(&plane, "replica-b", held(&[(128..SHARDS, 2)]), &stop);

    // 20 Jobs at least, and at least one in each quarter that will matter: A's moving
    // quarter (0..64), A's staying one (64..128), B's (128..).
    let mut jobs: BTreeMap<String, u32> = BTreeMap::new();
    let quarter = |s: u32| (s / 64).min(2);
    for i in 0..60 {
        let covered = (0..3).all(|q| jobs.values().any(|s| quarter(*s) == q));
        if jobs.len() >= 20 && covered {
            break;
        }
        let name = format!("j{i:02}");
        let created = plane
            .client()
            .create(job(&plane, &name, 2))
            .await
            .expect("create job");
        jobs.insert(name, of_uid(created.uid(), SHARDS));
    }
    let uid_of = {
        let mut uids = HashMap::new();
        for name in jobs.keys() {
            let job = plane.job(name).await;
            uids.insert(name.clone(), job.metadata.expect("meta").uid);
        }
        uids
    };
    let owner_before = |s: u32| if s < 128 { a.name } else { b.name };
    let owner_after = |s: u32| {
        if (64..128).contains(&s) {
            a.name
        } else {
            b.name
        }
    };

    // Each Job's first pod, made by the replica holding its shard, and by no other.
    let mut first_pod = HashMap::new();
    for (name, shard) in &jobs {
        let uid = &uid_of[name];
        let made = wait_for(
            &format!("the first pod of {name} reported"),
            WAIT,
            || async {
                let made = creators(&plane, uid).await;
                if made.len() == 1 {
                    Ok(made)
                } else {
                    Err(format!("{made:?}"))
                }
            },
        )
        .await;
        let (pod, by) = made.into_iter().next().expect("one");
        assert_eq!(
            by,
            owner_before(*shard),
            "{name} (shard {shard}): pod {pod}"
        );
        first_pod.insert(name.clone(), pod);
    }
    let count = |owner: &dyn Fn(u32) -> &'static str, who: &str| {
        jobs.values().filter(|s| owner(**s) == who).count() as f64
    };
    let created = "bosun_job_pods_created_total";
    assert_eq!(a.metric(created).await, count(&owner_before, a.name));
    assert_eq!(b.metric(created).await, count(&owner_before, b.name));
    a.wait_holding(128).await;
    b.wait_holding(128).await;

    // A gives its first quarter to B: released first, then taken (as the membership does).
    a.held.send(held(&[(64..128, 1)])).expect("A runs");
    b.held
        .send(held(&[(0..64, 3), (128..SHARDS, 2)]))
        .expect("B runs");
    a.wait_holding(64).await;
    b.wait_holding(192).await;

    // The first pods finish; each Job's second pod is made by its shard's holder now.
    plane.touch("go");
    for (name, shard) in &jobs {
        let job = plane
            .wait_job(name, |j| job_condition_true(j, "Complete"))
            .await;
        let status = job.status.expect("status");
        assert_eq!((status.succeeded, status.failed), (2, 0), "{name}");
        let uid = &uid_of[name];
        let made = wait_for(&format!("both pods of {name} reported"), WAIT, || async {
            let made = creators(&plane, uid).await;
            if made.len() == 2 {
                Ok(made)
            } else {
                Err(format!("{made:?}"))
            }
        })
        .await;
        let first = &first_pod[name];
        let (second, by) = made
            .iter()
            .find(|(pod, _)| *pod != first)
            .expect("a second pod");
        assert_eq!(
            by,
            owner_after(*shard),
            "{name} (shard {shard}): pod {second}"
        );
        assert_eq!(
            plane.job_pods(name).await.len(),
            2,
            "{name}: no pod made twice"
        );
    }
    let total = |who: &str| count(&owner_before, who) + count(&owner_after, who);
    assert_eq!(a.metric(created).await, total(a.name));
    assert_eq!(b.metric(created).await, total(b.name));
    let skipped =
        "bosun_controller_reconciles_skipped_total{controller=\"job\",reason=\"shard_not_held\"}";
    assert!(
        a.metric(skipped).await > 0.0 && b.metric(skipped).await > 0.0,
        "each replica saw (and dropped) the other's Jobs: today's broker does not filter"
    );
    stop.cancel();
}
