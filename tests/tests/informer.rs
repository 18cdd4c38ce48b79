//! The runtime's Informer against the real broker over a real etcd: it lists and watches, it
//! resumes after a broker restart without missing anything, it relists when its revision
//! has left the broker's window or etcd compacted it, and its indexes follow the objects.
//!
//! The informer watches broker `a` (in-process, stopped and restarted on its address);
//! writes made while `a` is down go through broker `b` on the same etcd.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_runtime::cache::{ChangeKind, Store};
use bosun_runtime::client::{Broker as Client, Selector};
use bosun_runtime::informer::Informer;
use bosun_runtime::metrics::{Counter, Metrics};
use bosun_runtime::queue::Backoff;
use bosun_tests::{Broker, Etcd, create, pod, v1, wait_for, with_label};
use tokio_util::sync::CancellationToken;

type Changes = Arc<Mutex<Vec<(ChangeKind, String)>>>;

/// A running informer over pods and what it reported.
struct Watched {
    store: Store,
    changes: Changes,
    relists: Counter,
    shutdown: CancellationToken,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Watched {
    /// The changes reported since `from`.
    fn changes_since(&self, from: usize) -> Vec<(ChangeKind, String)> {
        self.changes.lock().expect("changes")[from..].to_vec()
    }

    fn count(&self) -> usize {
        self.changes.lock().expect("changes").len()
    }
}

/// Starts a pod informer on `broker` (retrying quickly) and waits for its first list.
async fn watch_pods(broker: &Broker) -> Watched {
    let client = Client::connect_lazy(&broker.url()).expect("broker address");
    let metrics = Metrics::new();
    let mut informer = Informer::for_broker(&client, v1::Kind::Pod, Selector::all())
        .with_metrics(&metrics)
        .with_retry(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ));
    let changes: Changes = Arc::default();
    {
        let changes = changes.clone();
        informer.on_change(move |c| {
            changes
                .lock()
                .expect("changes")
                .push((c.kind, c.key.clone()))
        });
    }
    let shutdown = CancellationToken::new();
    let (store, _task) = informer.spawn(shutdown.clone());
    tokio::time::timeout(Duration::from_secs(10), store.wait_until_ready())
        .await
        .expect("the informer lists within 10 s");
    Watched {
        store,
        changes,
        relists: metrics.counter("bosun_informer_relists_total", "", &[("kind", "Pod")]),
        shutdown,
    }
}

/// Every pod in etcd as `namespace/name` → (resourceVersion, labels).
async fn pods_in_etcd(etcd: &Etcd) -> BTreeMap<String, (i64, BTreeMap<String, String>)> {
    let mut client = etcd.client().await;
    let resp = client
        .get(
            "/bosun/pods/",
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .expect("etcd get");
    resp.kvs()
        .iter()
        .map(|kv| {
            let obj = v1::Object::decode_stored(kv.value(), kv.mod_revision()).expect("decode");
            let labels = obj.meta().map(|m| m.labels.clone()).unwrap_or_default();
            (obj.key(), (kv.mod_revision(), labels))
        })
        .collect()
}

/// The store's pods in the same shape as [`pods_in_etcd`].
fn pods_in_store(store: &Store) -> BTreeMap<String, (i64, BTreeMap<String, String>)> {
    store
        .list()
        .iter()
        .map(|o| {
            let labels = o.meta().map(|m| m.labels.clone()).unwrap_or_default();
            (o.key(), (o.resource_version(), labels))
        })
        .collect()
}

/// Waits until the store holds exactly what etcd holds.
async fn store_matches_etcd(store: &Store, etcd: &Etcd) {
    wait_for(
        "the store to match etcd",
        Duration::from_secs(10),
        || async {
            let want = pods_in_etcd(etcd).await;
            let have = pods_in_store(store);
            if want == have {
                Ok(())
            } else {
                Err(format!(
                    "the store (at revision {}):\n store {have:#?}\n etcd  {want:#?}",
                    store.revision()
                ))
            }
        },
    )
    .await;
}

async fn update(client: &mut bosun_runtime::client::BrokerClient, obj: v1::Object) -> v1::Object {
    client
        .update(v1::UpdateRequest {
            object: Some(obj),
            dry_run: false,
        })
        .await
        .unwrap_or_else(|s| panic!("update: {s}"))
        .into_inner()
        .object
        .expect("object")
}

/// Deletes a pod at once: a bound pod would otherwise wait out its grace period for a node
/// agent, and these tests run none.
async fn delete(client: &mut bosun_runtime::client::BrokerClient, name: &str) {
    let out = client
        .delete(v1::DeleteRequest {
            kind: v1::Kind::Pod as i32,
            namespace: "default".into(),
            name: name.into(),
            grace_period_seconds: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("delete: {s}"))
        .into_inner();
    assert!(out.deleted);
}

#[tokio::test]
async fn the_informer_store_matches_etcd_after_creates_updates_and_deletes() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    for name in ["before-1", "before-2"] {
        create(&mut c, pod("default", name)).await;
    }
    let w = watch_pods(&broker).await;
    assert_eq!(w.store.keys(), ["default/before-1", "default/before-2"]);

    let mut made = Vec::new();
    for i in 0..5 {
        made.push(create(&mut c, pod("default", &format!("p{i}"))).await);
    }
    create(&mut c, pod("other", "elsewhere")).await;
    update(&mut c, with_label(made[0].clone(), "tier", "gold")).await;
    delete(&mut c, "p1").await;
    delete(&mut c, "before-2").await;
    store_matches_etcd(&w.store, &etcd).await;
    assert_eq!(
        w.store
            .get("default/p0")
            .expect("p0")
            .meta()
            .expect("meta")
            .labels["tier"],
        "gold"
    );
    assert!(w.store.get("default/p1").is_none());
    assert_eq!(w.relists.get(), 1, "one list, then only watch events");
}

#[tokio::test]
async fn after_a_broker_restart_the_informer_resumes_and_misses_nothing() {
    let etcd = Etcd::start().await;
    let mut a = Broker::start(&etcd).await;
    let b = Broker::start(&etcd).await;
    let mut c = b.client().await;
    let kept = create(&mut c, pod("default", "kept")).await;
    create(&mut c, pod("default", "doomed")).await;
    let w = watch_pods(&a).await;
    store_matches_etcd(&w.store, &etcd).await;
    let seen = w.count();

    a.stop().await;
    create(&mut c, pod("default", "born")).await;
    update(&mut c, with_label(kept, "while", "down")).await;
    delete(&mut c, "doomed").await;
    a.restart().await;

    store_matches_etcd(&w.store, &etcd).await;
    let mut after = w.changes_since(seen);
    after.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        after,
        [
            (ChangeKind::Added, "default/born".to_string()),
            (ChangeKind::Deleted, "default/doomed".to_string()),
            (ChangeKind::Modified, "default/kept".to_string()),
        ]
    );
    assert_eq!(w.relists.get(), 1, "resumed from its revision, no relist");
}

/// Stops `a`, changes things through `b` (deleting `doomed`), lets `between` make the
/// informer's revision unusable, restarts `a`, and checks the informer relisted and caught up.
async fn relist_after<F, Fut>(window_events: usize, between: F)
where
    F: FnOnce(Etcd) -> Fut,
    Fut: Future<Output = Etcd>,
{
    let etcd = Etcd::start().await;
    let mut config = Broker::config(&etcd);
    config.window_events = window_events;
    let mut a = Broker::start_with(config).await;
    let b = Broker::start(&etcd).await;
    let mut c = b.client().await;
    create(&mut c, pod("default", "kept")).await;
    create(&mut c, pod("default", "doomed")).await;
    let w = watch_pods(&a).await;
    store_matches_etcd(&w.store, &etcd).await;
    let seen = w.count();

    a.stop().await;
    delete(&mut c, "doomed").await;
    for i in 0..6 {
        create(&mut c, pod("default", &format!("new-{i}"))).await;
    }
    let etcd = between(etcd).await;
    a.restart().await;

    store_matches_etcd(&w.store, &etcd).await;
    wait_for("the second relist", Duration::from_secs(10), || async {
        match w.relists.get() {
            2 => Ok(()),
            n => Err(format!("{n} relists")),
        }
    })
    .await;
    let after = w.changes_since(seen);
    assert!(
        after.contains(&(ChangeKind::Deleted, "default/doomed".to_string())),
        "the delete missed while away is reported: {after:?}"
    );
    for i in 0..6 {
        let key = format!("default/new-{i}");
        assert!(
            after.contains(&(ChangeKind::Added, key.clone())),
            "{key}: {after:?}"
        );
    }
    assert!(
        !after.iter().any(|(_, k)| k == "default/kept"),
        "an unchanged object is not reported again: {after:?}"
    );
}

#[tokio::test]
async fn when_the_informers_revision_left_the_broker_window_it_relists_and_recovers() {
    relist_after(3, |etcd| async move { etcd }).await;
}

#[tokio::test]
async fn when_etcd_compacted_the_informers_revision_it_relists_and_recovers() {
    relist_after(10_000, |etcd| async move {
        let mut client = etcd.client().await;
        let head = client
            .get("/", None)
            .await
            .expect("etcd get")
            .header()
            .expect("header")
            .revision();
        client
            .compact(
                head,
                Some(etcd_client::CompactionOptions::new().with_physical()),
            )
            .await
            .expect("compact");
        etcd
    })
    .await;
}

fn owned_by(mut obj: v1::Object, uid: &str) -> v1::Object {
    obj.meta_mut().owner_references.push(v1::OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: format!("job-{uid}"),
        uid: uid.into(),
        controller: Some(true),
        ..Default::default()
    });
    obj
}

fn on_node(mut obj: v1::Object, node: &str) -> v1::Object {
    if let Some(v1::object::Object::Pod(p)) = &mut obj.object
        && let Some(spec) = &mut p.spec
    {
        spec.node_name = node.into();
    }
    obj
}

fn names(objs: Vec<Arc<v1::Object>>) -> Vec<String> {
    let mut names: Vec<String> = objs.iter().map(|o| o.name().to_string()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_owner_and_node_indexes_reflect_the_real_objects() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let w = watch_pods(&broker).await;
    let one = create(
        &mut c,
        on_node(
            owned_by(with_label(pod("default", "one"), "app", "web"), "uid-1"),
            "node-a",
        ),
    )
    .await;
    create(
        &mut c,
        on_node(
            owned_by(with_label(pod("default", "two"), "app", "web"), "uid-1"),
            "node-b",
        ),
    )
    .await;
    create(
        &mut c,
        on_node(
            owned_by(with_label(pod("default", "three"), "app", "db"), "uid-2"),
            "node-a",
        ),
    )
    .await;
    store_matches_etcd(&w.store, &etcd).await;
    assert_eq!(names(w.store.by_owner("uid-1")), ["one", "two"]);
    assert_eq!(names(w.store.by_owner("uid-2")), ["three"]);
    assert_eq!(names(w.store.by_node("node-a")), ["one", "three"]);
    assert_eq!(names(w.store.by_node("node-b")), ["two"]);

    // A relabel keeps the object in its index entries; a delete leaves every index.
    update(&mut c, with_label(one, "app", "db")).await;
    delete(&mut c, "two").await;
    store_matches_etcd(&w.store, &etcd).await;
    assert_eq!(names(w.store.by_owner("uid-1")), ["one"]);
    assert_eq!(names(w.store.by_node("node-a")), ["one", "three"]);
    assert!(w.store.by_node("node-b").is_empty());
}
