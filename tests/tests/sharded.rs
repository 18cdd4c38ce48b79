//! Scale-out end to end (issue 12), the runtime side: real etcd, the broker, and two
//! in-process replicas of one controller kind (the Job controller, with the scheduler and
//! process-runtime nodes; the CronJob controller; the DaemonSet controller), each given its
//! shards by hand through a
//! `watch` channel the test owns (the membership is not part of this test). Today's broker
//! sends every object whatever the shard filter, so this checks the replicas' own gating:
//! each object's children are created by the replica holding its shard, and when shards
//! move, the new holder takes their objects over and the old one stops touching them.
//!
//! Which replica created a child is read from its `SuccessfulCreate` event: each replica
//! names itself as the event's `source.host` (`--replica`).

// `held(&[0..128])` is a list of shard ranges that happens to have one member.
#![allow(clippy::single_range_in_vec_init)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use bosun_api::shard::{Controller, SHARDS, of_uid};
use bosun_api::v1::{self, Kind, Object};
use bosun_cronjob_controller::Clock;
use bosun_runtime::client::Selector;
use bosun_runtime::sharded::{Held, Sharding};
use bosun_tests::{free_addr, job_condition_true, metric, wait_for};
use chrono::{DateTime, Timelike, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

/// The Job controller's shards of `ranges`.
fn held(ranges: &[Range<u32>]) -> Held {
    held_of(Controller::Job, ranges)
}

/// `controller`'s shards of `ranges`.
///
/// Token 0 (unfenced): these shards are handed out by the test, not taken through the
/// broker's Shards service, so no owner key in etcd backs them and the broker would refuse
/// any real token as fenced. The fence itself is tested in shards_broker.rs and under
/// faults in compose_scale.rs.
fn held_of(controller: Controller, ranges: &[Range<u32>]) -> Held {
    Held {
        controller,
        count: SHARDS,
        tokens: ranges
            .iter()
            .flat_map(|r| r.clone().map(|s| (s, 0)))
            .collect(),
    }
}

/// One replica of a controller, running in-process until the test ends.
struct Replica {
    name: &'static str,
    controller: Controller,
    metrics: SocketAddr,
    held: watch::Sender<Held>,
}

impl Replica {
    /// A replica of the Job controller.
    fn start(
        plane: &bosun_tests::Plane,
        name: &'static str,
        shards: Held,
        stop: &CancellationToken,
    ) -> Replica {
        let (replica, sharding) = Replica::new(name, shards);
        let mut config = bosun_job_controller::Config::for_server(plane.url());
        config.metrics.metrics_listen = Some(replica.metrics);
        config.replica.replica = name.to_string();
        config.sharding = Some(sharding);
        tokio::spawn(bosun_job_controller::run(config, stop.clone()));
        replica
    }

    /// A replica of the CronJob controller on `clock`.
    fn start_cronjobs(
        plane: &bosun_tests::Plane,
        name: &'static str,
        shards: Held,
        clock: &Clock,
        stop: &CancellationToken,
    ) -> Replica {
        let (replica, sharding) = Replica::new(name, shards);
        let mut config = bosun_cronjob_controller::Config::for_server(plane.url());
        config.metrics.metrics_listen = Some(replica.metrics);
        config.replica.replica = name.to_string();
        config.sharding = Some(sharding);
        config.clock = clock.clone();
        tokio::spawn(bosun_cronjob_controller::run(config, stop.clone()));
        replica
    }

    /// A replica of the DaemonSet controller.
    fn start_daemonsets(
        plane: &bosun_tests::Plane,
        name: &'static str,
        shards: Held,
        stop: &CancellationToken,
    ) -> Replica {
        let (replica, sharding) = Replica::new(name, shards);
        let mut config = bosun_daemonset_controller::Config::for_server(plane.url());
        config.metrics.metrics_listen = Some(replica.metrics);
        config.replica.replica = name.to_string();
        config.sharding = Some(sharding);
        tokio::spawn(bosun_daemonset_controller::run(config, stop.clone()));
        replica
    }

    fn new(name: &'static str, shards: Held) -> (Replica, Sharding) {
        let controller = shards.controller;
        let (tx, rx) = watch::channel(shards);
        let replica = Replica {
            name,
            controller,
            metrics: free_addr(),
            held: tx,
        };
        (replica, Sharding::new(controller, rx))
    }

    async fn metric(&self, name: &str) -> f64 {
        metric(self.metrics, name).await.unwrap_or(0.0)
    }

    /// Waits until its controller reports `n` shards held.
    async fn wait_holding(&self, n: usize) {
        let name = format!(
            "bosun_controller_shards_held{{controller=\"{}\"}}",
            self.controller
        );
        let name = name.as_str();
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

/// Child name → the replica whose `SuccessfulCreate` event reports creating it, for the
/// object with `uid` (a Job's pods, a CronJob's Jobs).
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
            let msg = &e.message;
            let pod = msg
                .strip_prefix("Created pod: ")
                .or_else(|| msg.strip_prefix("Created job "))?
                .to_string();
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
    let a = Replica::start(&plane, "replica-a", held(&[0..128]), &stop);
    let b = Replica::start(&plane, "replica-b", held(&[128..SHARDS]), &stop);

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
    a.held.send(held(&[64..128])).expect("A runs");
    b.held.send(held(&[0..64, 128..SHARDS])).expect("B runs");
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
    // The broker filters each replica's list and watch: a cache holds its holder's Jobs only.
    let cached = "bosun_informer_objects{kind=\"Job\"}";
    for r in [&a, &b] {
        let want = count(&owner_after, r.name);
        wait_for(
            &format!("{} caching its {want} Jobs only", r.name),
            WAIT,
            || async {
                let n = r.metric(cached).await;
                if n == want {
                    Ok(())
                } else {
                    Err(format!("{n}"))
                }
            },
        )
        .await;
    }
    stop.cancel();
}

/// `t` to the minute (down).
fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("a minute")
}

/// A clock 5 s past the minute the real clock is in 10 s from now (after waiting for that
/// minute), as `tests/cronjob.rs` sets it: CronJobs made in that real minute have the next
/// one as their first slot, 55 s away on the moved clock, so none passes on its own.
async fn test_clock() -> Clock {
    let clock = Clock::default();
    let base = minute_of(Utc::now() + chrono::Duration::seconds(10));
    let what = format!("the real clock to reach {base}");
    wait_for(&what, WAIT, || async { Utc::now() >= base }).await;
    clock.jump_to(base + chrono::Duration::seconds(5));
    clock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_cronjob_replicas_make_one_job_per_slot_each_by_the_holder_of_its_shard() {
    let plane = bosun_tests::Plane::builder("sharded-cronjobs")
        .start()
        .await;
    let clock = test_clock().await;
    let stop = CancellationToken::new();
    let half = |r: Range<u32>| held_of(Controller::CronJob, &[r]);
    let a = Replica::start_cronjobs(&plane, "replica-a", half(0..128), &clock, &stop);
    let b = Replica::start_cronjobs(&plane, "replica-b", half(128..SHARDS), &clock, &stop);

    // 10 CronJobs at least, with one in each quarter that matters (as for Jobs above).
    let mut cronjobs: BTreeMap<String, (u32, String)> = BTreeMap::new();
    let quarter = |s: u32| (s / 64).min(2);
    for i in 0..40 {
        let covered = (0..3).all(|q| cronjobs.values().any(|(s, _)| quarter(*s) == q));
        if cronjobs.len() >= 10 && covered {
            break;
        }
        let name = format!("c{i:02}");
        let created = plane
            .client()
            .create(bosun_tests::cron_job("default", &name))
            .await
            .expect("create cronjob");
        let uid = created.uid().to_string();
        cronjobs.insert(name, (of_uid(&uid, SHARDS), uid));
    }
    let owner_before = |s: u32| if s < 128 { a.name } else { b.name };
    let owner_after = |s: u32| {
        if (64..128).contains(&s) {
            a.name
        } else {
            b.name
        }
    };

    // The first slot: one Job per CronJob, made by the holder of its shard.
    let slot = minute_of(clock.now()) + chrono::Duration::minutes(1);
    clock.jump_to(slot - chrono::Duration::milliseconds(300));
    let mut first_job = HashMap::new();
    for (name, (shard, uid)) in &cronjobs {
        let made = wait_for(
            &format!("the first Job of {name} reported"),
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
        let (job, by) = made.into_iter().next().expect("one");
        assert_eq!(
            by,
            owner_before(*shard),
            "{name} (shard {shard}): Job {job}"
        );
        first_job.insert(name.clone(), job);
    }

    // A gives its first quarter to B; the next slot's Jobs are the new holders'.
    a.held.send(half(64..128)).expect("A runs");
    b.held
        .send(held_of(Controller::CronJob, &[0..64, 128..SHARDS]))
        .expect("B runs");
    a.wait_holding(64).await;
    b.wait_holding(192).await;
    let next = slot + chrono::Duration::minutes(1);
    clock.jump_to(next - chrono::Duration::milliseconds(300));
    for (name, (shard, uid)) in &cronjobs {
        let made = wait_for(&format!("both Jobs of {name} reported"), WAIT, || async {
            let made = creators(&plane, uid).await;
            if made.len() == 2 {
                Ok(made)
            } else {
                Err(format!("{made:?}"))
            }
        })
        .await;
        let (second, by) = made
            .iter()
            .find(|(job, _)| **job != first_job[name])
            .expect("a second Job");
        assert_eq!(
            by,
            owner_after(*shard),
            "{name} (shard {shard}): Job {second}"
        );
    }
    // One Job per CronJob per slot, whoever made it.
    let jobs = plane
        .client()
        .list(Kind::Job, &Selector::namespace("default"))
        .await
        .expect("list jobs")
        .items;
    for (name, (_, uid)) in &cronjobs {
        let mine = jobs
            .iter()
            .filter(|j| j.controller_ref().is_some_and(|r| r.uid == *uid))
            .count();
        assert_eq!(mine, 2, "{name}: one Job per slot");
    }
    let created = "bosun_cronjob_jobs_created_total";
    let count = |owner: &dyn Fn(u32) -> &'static str, who: &str| {
        cronjobs.values().filter(|(s, _)| owner(*s) == who).count() as f64
    };
    for r in [&a, &b] {
        let want = count(&owner_before, r.name) + count(&owner_after, r.name);
        assert_eq!(r.metric(created).await, want, "{}", r.name);
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemonset_replicas_place_each_daemonsets_pods_by_the_holder_of_its_shard() {
    let mut plane = bosun_tests::Plane::builder("sharded-daemonsets")
        .scheduler()
        .nodes(&["node-1", "node-2"])
        .start()
        .await;
    let stop = CancellationToken::new();
    let half = |r: Range<u32>| held_of(Controller::DaemonSet, &[r]);
    let a = Replica::start_daemonsets(&plane, "replica-a", half(0..128), &stop);
    let b = Replica::start_daemonsets(&plane, "replica-b", half(128..SHARDS), &stop);

    // 6 DaemonSets at least, with one in each quarter that matters; their pods wait (and
    // are restarted in place), never replaced.
    let mut daemonsets: BTreeMap<String, (u32, String)> = BTreeMap::new();
    let quarter = |s: u32| (s / 64).min(2);
    for i in 0..40 {
        let covered = (0..3).all(|q| daemonsets.values().any(|(s, _)| quarter(*s) == q));
        if daemonsets.len() >= 6 && covered {
            break;
        }
        let name = format!("d{i:02}");
        let mut ds = bosun_tests::daemon_set("default", &name)
            .into_daemon_set()
            .expect("a DaemonSet");
        let spec = ds
            .spec
            .as_mut()
            .and_then(|s| s.template.as_mut()?.spec.as_mut());
        spec.expect("a pod spec").containers[0].command =
            vec!["sh".into(), "-c".into(), plane.wait_for_file("never")];
        let created = plane
            .client()
            .create(ds.into())
            .await
            .expect("create daemonset");
        let uid = created.uid().to_string();
        daemonsets.insert(name, (of_uid(&uid, SHARDS), uid));
    }
    let owner_before = |s: u32| if s < 128 { a.name } else { b.name };
    let owner_after = |s: u32| {
        if (64..128).contains(&s) {
            a.name
        } else {
            b.name
        }
    };

    // A pod per node, each made by the holder of its DaemonSet's shard.
    let mut first_pods = HashMap::new();
    for (name, (shard, uid)) in &daemonsets {
        let made = wait_for(&format!("2 pods of {name} reported"), WAIT, || async {
            let made = creators(&plane, uid).await;
            if made.len() == 2 {
                Ok(made)
            } else {
                Err(format!("{made:?}"))
            }
        })
        .await;
        for (pod, by) in &made {
            assert_eq!(
                by,
                owner_before(*shard),
                "{name} (shard {shard}): pod {pod}"
            );
        }
        first_pods.insert(name.clone(), made);
    }

    // A gives its first quarter to B; a new node's pods are the new holders'.
    a.held.send(half(64..128)).expect("A runs");
    b.held
        .send(held_of(Controller::DaemonSet, &[0..64, 128..SHARDS]))
        .expect("B runs");
    a.wait_holding(64).await;
    b.wait_holding(192).await;
    plane.add_nodes(&["node-3"]).await;
    for (name, (shard, uid)) in &daemonsets {
        let made = wait_for(&format!("3 pods of {name} reported"), WAIT, || async {
            let made = creators(&plane, uid).await;
            if made.len() == 3 {
                Ok(made)
            } else {
                Err(format!("{made:?}"))
            }
        })
        .await;
        let (third, by) = made
            .iter()
            .find(|(pod, _)| !first_pods[name].contains_key(*pod))
            .expect("a pod for node-3");
        assert_eq!(
            by,
            owner_after(*shard),
            "{name} (shard {shard}): pod {third}"
        );
    }
    let created = "bosun_daemonset_pods_created_total";
    let count = |owner: &dyn Fn(u32) -> &'static str, who: &str| {
        daemonsets
            .values()
            .filter(|(s, _)| owner(*s) == who)
            .count() as f64
    };
    for r in [&a, &b] {
        let want = 2.0 * count(&owner_before, r.name) + count(&owner_after, r.name);
        assert_eq!(r.metric(created).await, want, "{}", r.name);
    }
    stop.cancel();
}
