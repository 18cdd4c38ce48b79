//! The broker's side of controller scale-out against a real etcd: the `Shards` service, the
//! `bosun-fence` check on writes, and shard filters on list and watch.

use std::time::Duration;

use bosun_api::shard::{self, SHARDS};
use bosun_runtime::client::BrokerClient;
use bosun_runtime::shards::ShardsClient;
use bosun_tests::{Broker, Etcd, create, free_addr, job, metric, pod, v1, wait_for};
use tonic::Code;

struct Shards {
    client: ShardsClient,
}

impl Shards {
    async fn connect(broker: &Broker) -> Shards {
        Shards {
            client: ShardsClient::connect(broker.url()).await.expect("connect"),
        }
    }

    async fn join(&mut self, replica: &str) -> i64 {
        self.client
            .join(v1::JoinRequest {
                controller: "job".into(),
                replica: replica.into(),
                ttl_ms: 10_000,
            })
            .await
            .expect("join")
            .into_inner()
            .lease_id
    }

    /// Acquires `shards`; the tokens of those it holds afterwards.
    async fn acquire(&mut self, replica: &str, lease: i64, shards: &[u32]) -> Vec<(u32, i64)> {
        self.client
            .acquire(v1::AcquireRequest {
                controller: "job".into(),
                replica: replica.into(),
                lease_id: lease,
                shards: shards.to_vec(),
            })
            .await
            .expect("acquire")
            .into_inner()
            .held
            .into_iter()
            .map(|o| (o.shard, o.token))
            .collect()
    }

    async fn release(&mut self, lease: i64, shards: &[u32]) {
        self.client
            .release(v1::ReleaseRequest {
                controller: "job".into(),
                lease_id: lease,
                shards: shards.to_vec(),
            })
            .await
            .expect("release");
    }
}

fn fenced<T>(msg: T, fence: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert(shard::FENCE_HEADER, fence.parse().expect("ascii"));
    req
}

async fn get_job(c: &mut BrokerClient, name: &str) -> v1::Object {
    c.get(v1::GetRequest {
        kind: v1::Kind::Job as i32,
        namespace: "default".into(),
        name: name.into(),
    })
    .await
    .expect("get")
    .into_inner()
    .object
    .expect("object")
}

fn labelled(mut obj: v1::Object, value: &str) -> v1::UpdateRequest {
    obj.meta_mut().labels.insert("v".into(), value.into());
    v1::UpdateRequest {
        object: Some(obj),
        dry_run: false,
    }
}

/// An update-status setting `status.active` (a change the store writes).
fn with_active(obj: v1::Object, active: i32) -> v1::UpdateRequest {
    let mut job = obj.as_job().expect("a job").clone();
    job.status.get_or_insert_with(Default::default).active = active;
    v1::UpdateRequest {
        object: Some(job.into()),
        dry_run: false,
    }
}

fn label(obj: &v1::Object) -> Option<String> {
    obj.meta().and_then(|m| m.labels.get("v").cloned())
}

const FENCED: &str = "bosun_broker_fenced_writes_total{controller=\"job\"}";

#[tokio::test]
async fn a_write_whose_shard_was_re_taken_is_refused_and_not_applied() {
    let etcd = Etcd::start().await;
    let metrics = free_addr();
    let mut config = Broker::config(&etcd);
    config.metrics.metrics_listen = Some(metrics);
    let broker = Broker::start_with(config).await;
    let mut c = broker.client().await;
    let mut shards = Shards::connect(&broker).await;

    let a = shards.join("a").await;
    let held = shards.acquire("a", a, &[17]).await;
    let [(17, token_a)] = held[..] else {
        panic!("a holds {held:?}")
    };
    let created = create(&mut c, job("default", "j")).await;

    // The holder's write goes through.
    let stale = format!("job/17/{token_a}");
    let updated = c
        .update(fenced(labelled(created.clone(), "a1"), &stale))
        .await
        .expect("the holder's write")
        .into_inner()
        .object
        .unwrap();
    assert_eq!(label(&updated).as_deref(), Some("a1"));

    // Released and free: refused, "free".
    shards.release(a, &[17]).await;
    let err = c
        .update(fenced(labelled(updated.clone(), "a2"), &stale))
        .await
        .expect_err("a write after the release");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message()
            .starts_with("fenced: shard 17 of the job controller"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("now free"), "{}", err.message());

    // Taken by b: a's write is refused (and says the new token), b's goes through.
    let b = shards.join("b").await;
    let held = shards.acquire("b", b, &[17]).await;
    let [(17, token_b)] = held[..] else {
        panic!("b holds {held:?}")
    };
    assert!(token_b > token_a);
    for (what, result) in [
        (
            "update",
            c.update(fenced(labelled(updated.clone(), "a3"), &stale))
                .await
                .err(),
        ),
        (
            "update_status",
            c.update_status(fenced(with_active(updated.clone(), 4), &stale))
                .await
                .err(),
        ),
        (
            "patch",
            c.patch(fenced(
                v1::PatchRequest {
                    kind: v1::Kind::Job as i32,
                    namespace: "default".into(),
                    name: "j".into(),
                    r#type: v1::PatchType::Merge as i32,
                    patch: r#"{"metadata":{"labels":{"v":"a5"}}}"#.into(),
                    ..Default::default()
                },
                &stale,
            ))
            .await
            .err(),
        ),
        (
            "delete",
            c.delete(fenced(
                v1::DeleteRequest {
                    kind: v1::Kind::Job as i32,
                    namespace: "default".into(),
                    name: "j".into(),
                    ..Default::default()
                },
                &stale,
            ))
            .await
            .err(),
        ),
        (
            "create",
            c.create(fenced(
                v1::CreateRequest {
                    object: Some(pod("default", "p")),
                    dry_run: false,
                },
                &stale,
            ))
            .await
            .err(),
        ),
    ] {
        let err = result.unwrap_or_else(|| panic!("{what}: the stale write was applied"));
        assert_eq!(err.code(), Code::FailedPrecondition, "{what}: {err:?}");
        assert!(
            err.message()
                .contains(&format!("token {token_a}, now {token_b}")),
            "{what}: {}",
            err.message()
        );
    }
    assert_eq!(
        label(&get_job(&mut c, "j").await).as_deref(),
        Some("a1"),
        "nothing applied"
    );

    let current = format!("job/17/{token_b}");
    let by_b = c
        .update(fenced(labelled(updated, "b1"), &current))
        .await
        .expect("the new holder's write")
        .into_inner()
        .object
        .unwrap();
    assert_eq!(label(&by_b).as_deref(), Some("b1"));

    // A malformed fence is refused with the parse message.
    let err = c
        .update(fenced(labelled(by_b, "x"), "job/17"))
        .await
        .expect_err("a malformed fence");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("<controller>/<shard>/<token>"),
        "{}",
        err.message()
    );

    wait_for(
        "the fenced writes counted",
        Duration::from_secs(5),
        || async { metric(metrics, FENCED).await == Some(6.0) },
    )
    .await;
}

#[tokio::test]
async fn conflicts_and_fenced_writes_are_told_apart_in_one_batch() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let mut shards = Shards::connect(&broker).await;
    let a = shards.join("a").await;
    let token_a = shards.acquire("a", a, &[3]).await[0].1;
    shards.release(a, &[3]).await;
    let b = shards.join("b").await;
    let token_b = shards.acquire("b", b, &[3]).await[0].1;

    const N: usize = 40;
    let mut jobs = Vec::new();
    for i in 0..N {
        let j = create(&mut c, job("default", &format!("j{i}"))).await;
        // Stale resourceVersions for the odd ones: someone wrote since.
        if i % 2 == 1 {
            let mut newer = j.clone();
            newer.meta_mut().labels.insert("bump".into(), "1".into());
            c.update(tonic::Request::new(v1::UpdateRequest {
                object: Some(newer),
                dry_run: false,
            }))
            .await
            .expect("bump");
        }
        jobs.push(j);
    }
    // Even: current rv; i % 4 < 2 → current token.
    let writes = jobs.iter().enumerate().map(|(i, j)| {
        let mut c = c.clone();
        let fence = if i % 4 < 2 {
            format!("job/3/{token_b}")
        } else {
            format!("job/3/{token_a}")
        };
        let req = fenced(labelled(j.clone(), "w"), &fence);
        async move { (i, c.update(req).await) }
    });
    for (i, result) in futures::future::join_all(writes).await {
        let stale_rv = i % 2 == 1;
        let stale_fence = i % 4 >= 2;
        match (stale_fence, stale_rv, result) {
            (false, false, Ok(_)) => {}
            (false, true, Err(e)) => {
                assert_eq!(e.code(), Code::Aborted, "j{i}: {e:?}");
                assert!(
                    e.message().contains("has been modified"),
                    "j{i}: {}",
                    e.message()
                );
            }
            (true, _, Err(e)) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "j{i}: {e:?}");
                assert!(e.message().starts_with("fenced:"), "j{i}: {}", e.message());
            }
            (sf, sr, r) => panic!("j{i} (stale fence {sf}, stale rv {sr}): {r:?}"),
        }
        let stored = get_job(&mut c, &format!("j{i}")).await;
        let applied = label(&stored).as_deref() == Some("w");
        assert_eq!(applied, !stale_fence && !stale_rv, "j{i}");
    }
}

#[tokio::test]
async fn with_the_unsafe_skip_flag_a_stale_fence_is_accepted() {
    let etcd = Etcd::start().await;
    let mut config = Broker::config(&etcd);
    config.unsafe_skip_fence_check = true;
    let broker = Broker::start_with(config).await;
    let mut c = broker.client().await;
    let mut shards = Shards::connect(&broker).await;
    let a = shards.join("a").await;
    let token_a = shards.acquire("a", a, &[5]).await[0].1;
    shards.release(a, &[5]).await;
    let created = create(&mut c, job("default", "j")).await;
    let written = c
        .update(fenced(
            labelled(created, "stale"),
            &format!("job/5/{token_a}"),
        ))
        .await
        .expect("a stale fence is not checked")
        .into_inner()
        .object
        .unwrap();
    assert_eq!(label(&written).as_deref(), Some("stale"));
    assert_eq!(label(&get_job(&mut c, "j").await).as_deref(), Some("stale"));
    // Still parsed.
    let err = c
        .update(fenced(labelled(written, "x"), "nonsense"))
        .await
        .expect_err("malformed");
    assert_eq!(err.code(), Code::InvalidArgument);
}

fn owned_pod(name: &str, owner: &v1::Object) -> v1::Object {
    let mut p = pod("default", name);
    p.meta_mut().owner_references.push(v1::OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: owner.name().into(),
        uid: owner.uid().into(),
        controller: Some(true),
        ..Default::default()
    });
    p
}

fn filter(shards: Vec<u32>) -> Option<v1::ShardFilter> {
    Some(v1::ShardFilter {
        controller: "job".into(),
        shard_count: SHARDS,
        shards,
    })
}

async fn list_names(
    c: &mut BrokerClient,
    kind: v1::Kind,
    f: Option<v1::ShardFilter>,
) -> Vec<String> {
    let mut names: Vec<String> = c
        .list(v1::ListRequest {
            kind: kind as i32,
            namespace: "default".into(),
            shards: f,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .items
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn lists_and_watches_keep_the_filtered_shards_and_the_unsharded_objects() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    // Two jobs in different shards.
    let mut jobs = Vec::new();
    for i in 0.. {
        let j = create(&mut c, job("default", &format!("j{i}"))).await;
        let s = shard::of_uid(j.uid(), SHARDS);
        if jobs.iter().all(|(_, t): &(v1::Object, u32)| *t != s) {
            jobs.push((j, s));
        }
        if jobs.len() == 2 {
            break;
        }
    }
    let (mine, my_shard) = jobs[0].clone();
    let (theirs, _) = jobs[1].clone();
    create(&mut c, owned_pod("mine-1", &mine)).await;
    create(&mut c, owned_pod("theirs-1", &theirs)).await;
    create(&mut c, pod("default", "orphan-1")).await;

    // List.
    let pods = list_names(&mut c, v1::Kind::Pod, filter(vec![my_shard])).await;
    assert_eq!(pods, ["mine-1", "orphan-1"]);
    let listed_jobs = list_names(&mut c, v1::Kind::Job, filter(vec![my_shard])).await;
    assert!(listed_jobs.contains(&mine.name().to_string()));
    assert!(!listed_jobs.contains(&theirs.name().to_string()));
    assert_eq!(
        list_names(&mut c, v1::Kind::Pod, None).await.len(),
        3,
        "no filter: all"
    );
    assert_eq!(
        list_names(&mut c, v1::Kind::Pod, Some(v1::ShardFilter::default()))
            .await
            .len(),
        3,
        "an empty filter: all"
    );
    assert_eq!(
        list_names(&mut c, v1::Kind::Pod, filter(vec![])).await,
        ["orphan-1"]
    );

    // Watch from the list's revision: only mine and the orphan come through.
    let from = c
        .list(v1::ListRequest {
            kind: v1::Kind::Pod as i32,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .revision;
    let mut stream = c
        .watch(v1::WatchRequest {
            kind: v1::Kind::Pod as i32,
            namespace: "default".into(),
            resource_version: from,
            shards: filter(vec![my_shard]),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    create(&mut c, owned_pod("theirs-2", &theirs)).await;
    create(&mut c, owned_pod("mine-2", &mine)).await;
    create(&mut c, pod("default", "orphan-2")).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let resp = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("watch events in time")
            .expect("watch")
            .expect("stream open");
        for e in resp.events {
            let obj = v1::Object::decode_stored(&e.object, e.revision).expect("decode");
            seen.push(obj.name().to_string());
        }
    }
    assert_eq!(seen, ["mine-2", "orphan-2"]);

    // Bad filters.
    for (what, f) in [
        (
            "unknown controller",
            v1::ShardFilter {
                controller: "pod".into(),
                shard_count: 256,
                shards: vec![1],
            },
        ),
        (
            "no count",
            v1::ShardFilter {
                controller: "job".into(),
                shard_count: 0,
                shards: vec![1],
            },
        ),
        (
            "out of range",
            v1::ShardFilter {
                controller: "job".into(),
                shard_count: 8,
                shards: vec![8],
            },
        ),
    ] {
        let err = c
            .list(v1::ListRequest {
                kind: v1::Kind::Pod as i32,
                shards: Some(f.clone()),
                ..Default::default()
            })
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "list, {what}");
        let err = c
            .watch(v1::WatchRequest {
                kind: v1::Kind::Pod as i32,
                shards: Some(f),
                ..Default::default()
            })
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "watch, {what}");
    }
}

#[tokio::test]
async fn the_shards_service_refuses_unknown_controllers_and_lists_every_kind() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut shards = Shards::connect(&broker).await;
    let err = shards
        .client
        .join(v1::JoinRequest {
            controller: "pod".into(),
            replica: "a".into(),
            ttl_ms: 1000,
        })
        .await
        .expect_err("unknown controller");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("job, cronjob, daemonset"),
        "{}",
        err.message()
    );

    let a = shards.join("a").await;
    let err = shards
        .client
        .join(v1::JoinRequest {
            controller: "job".into(),
            replica: "a".into(),
            ttl_ms: 1000,
        })
        .await
        .expect_err("a live name");
    assert_eq!(err.code(), Code::AlreadyExists);
    shards.acquire("a", a, &[0, 1, 2]).await;
    let b = shards.join("b").await;
    // b cannot take a's shards.
    let held = shards.acquire("b", b, &[1, 2, 3]).await;
    assert_eq!(held.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [3]);
    // Nor release them.
    shards.release(b, &[1]).await;
    shards
        .client
        .report(v1::ReportRequest {
            controller: "job".into(),
            replica: "a".into(),
            lease_id: a,
            queue_depth: 7,
            last_handoff_at: "2026-12-05T00:00:00Z".into(),
            last_handoff_ms: 12,
        })
        .await
        .expect("report");
    let all = shards
        .client
        .list_controllers(v1::ListControllersRequest {})
        .await
        .expect("list")
        .into_inner()
        .controllers;
    assert_eq!(all.len(), 1);
    let job = &all[0];
    assert_eq!(job.controller, "job");
    let names: Vec<&str> = job.members.iter().map(|m| m.replica.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(job.members[0].queue_depth, 7);
    assert_eq!(job.members[0].last_handoff_ms, 12);
    let owners: Vec<(u32, &str)> = job
        .owners
        .iter()
        .map(|o| (o.shard, o.replica.as_str()))
        .collect();
    assert_eq!(owners, [(0, "a"), (1, "a"), (2, "a"), (3, "b")]);

    // Leave: the lease and its keys go; keepalive and report then say NOT_FOUND.
    shards
        .client
        .leave(v1::LeaveRequest { lease_id: a })
        .await
        .expect("leave");
    let err = shards
        .client
        .keep_alive(v1::KeepAliveRequest { lease_id: a })
        .await
        .expect_err("a revoked lease");
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    let err = shards
        .client
        .acquire(v1::AcquireRequest {
            controller: "job".into(),
            replica: "a".into(),
            lease_id: a,
            shards: vec![9],
        })
        .await
        .expect_err("acquire on a revoked lease");
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    shards
        .client
        .keep_alive(v1::KeepAliveRequest { lease_id: b })
        .await
        .expect("b's lease lives");
}
