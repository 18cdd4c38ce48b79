//! The broker against a real etcd: the object API.

use std::time::Duration;

use bosun_api::kind::KINDS;
use bosun_runtime::client::BrokerClient;
use bosun_tests::{Broker, Etcd, create, object_of, pod, v1, with_label};
use tonic::Code;

fn get_req(kind: v1::Kind, ns: &str, name: &str) -> v1::GetRequest {
    v1::GetRequest {
        kind: kind as i32,
        namespace: ns.into(),
        name: name.into(),
    }
}

fn update_req(obj: v1::Object) -> v1::UpdateRequest {
    v1::UpdateRequest {
        object: Some(obj),
        dry_run: false,
    }
}

fn delete_req(kind: v1::Kind, ns: &str, name: &str) -> v1::DeleteRequest {
    v1::DeleteRequest {
        kind: kind as i32,
        namespace: ns.into(),
        name: name.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_kind_round_trips_through_create_get_list_update_and_delete() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    for info in KINDS {
        let kind = info.kind;
        let created = create(&mut c, object_of(kind, "", "one")).await;
        assert_eq!(created.kind(), kind);
        assert_eq!(
            created.namespace(),
            if info.namespaced { "default" } else { "" }
        );
        assert!(!created.uid().is_empty(), "{}: uid", info.name);
        assert!(created.resource_version() > 0);
        let m = created.meta().unwrap();
        assert_eq!(m.generation, 1);
        assert!(!m.creation_timestamp.is_empty());
        assert_eq!(created.type_meta(), (info.api_version, info.name));

        let got = c
            .get(get_req(kind, "", "one"))
            .await
            .unwrap()
            .into_inner()
            .object
            .unwrap();
        assert_eq!(
            got, created,
            "{}: get returns what create returned",
            info.name
        );

        let list = c
            .list(v1::ListRequest {
                kind: kind as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.items, vec![created.clone()]);
        assert!(list.revision >= created.resource_version());

        let changed = with_label(got, "touched", "yes");
        let updated = c
            .update(update_req(changed))
            .await
            .unwrap()
            .into_inner()
            .object
            .unwrap();
        assert!(updated.resource_version() > created.resource_version());
        assert_eq!(updated.meta().unwrap().labels["touched"], "yes");

        let gone = c
            .delete(delete_req(kind, "", "one"))
            .await
            .unwrap()
            .into_inner();
        assert!(gone.deleted, "{}", info.name);
        let err = c.get(get_req(kind, "", "one")).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{}", info.name);
    }
}

#[tokio::test]
async fn creating_an_existing_name_is_already_exists_naming_the_object() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    create(&mut c, pod("default", "dup")).await;
    let err = c
        .create(v1::CreateRequest {
            object: Some(pod("default", "dup")),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("default/dup"), "{}", err.message());
}

#[tokio::test]
async fn generate_name_appends_five_random_lowercase_alphanumerics() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let mut p = pod("default", "");
        p.meta_mut().generate_name = "pi-".into();
        let created = create(&mut c, p).await;
        let suffix = created.name().strip_prefix("pi-").expect("prefix kept");
        assert_eq!(suffix.len(), 5);
        assert!(
            suffix
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        );
        names.insert(created.name().to_string());
    }
    assert_eq!(names.len(), 5);
}

#[tokio::test]
async fn dry_run_create_writes_nothing() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let out = c
        .create(v1::CreateRequest {
            object: Some(pod("default", "dry")),
            dry_run: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.object.unwrap().name(), "dry");
    let err = c
        .get(get_req(v1::Kind::Pod, "default", "dry"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn a_stale_update_is_aborted_naming_both_versions() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let first = create(&mut c, pod("default", "p")).await;
    let second = c
        .update(update_req(with_label(first.clone(), "a", "1")))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    let err = c
        .update(update_req(with_label(first.clone(), "a", "2")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let msg = err.message();
    assert!(
        msg.contains(&format!(
            "you sent resourceVersion {}",
            first.resource_version()
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("it is now {}", second.resource_version())),
        "{msg}"
    );
    assert!(msg.contains("get it again and retry"), "{msg}");
    // The write that won is intact.
    let now = c
        .get(get_req(v1::Kind::Pod, "default", "p"))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    assert_eq!(now.meta().unwrap().labels["a"], "1");
}

#[tokio::test]
async fn generation_bumps_on_spec_changes_only() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let p = create(&mut c, pod("default", "g")).await;
    let labelled = c
        .update(update_req(with_label(p, "x", "y")))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    assert_eq!(labelled.meta().unwrap().generation, 1);
    let respecced = c
        .update(update_req(set_image(labelled, "nginx")))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    assert_eq!(respecced.meta().unwrap().generation, 2);
}

fn set_phase(mut obj: v1::Object, phase: &str) -> v1::Object {
    if let Some(v1::object::Object::Pod(pod)) = &mut obj.object {
        pod.status = Some(v1::PodStatus {
            phase: phase.into(),
            ..Default::default()
        });
    }
    obj
}

fn set_image(mut obj: v1::Object, image: &str) -> v1::Object {
    if let Some(v1::object::Object::Pod(pod)) = &mut obj.object {
        pod.spec.as_mut().unwrap().containers[0].image = image.into();
    }
    obj
}

#[tokio::test]
async fn update_keeps_the_stored_status_and_update_status_keeps_the_stored_spec() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let p = create(&mut c, pod("default", "s")).await;
    let running = c
        .update_status(update_req(set_image(set_phase(p, "Running"), "ignored")))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    let pod = running.as_pod().unwrap();
    assert_eq!(pod.status.as_ref().unwrap().phase, "Running");
    assert_eq!(pod.spec.as_ref().unwrap().containers[0].image, "busybox");

    let updated = c
        .update(update_req(set_image(set_phase(running, "Failed"), "nginx")))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    let pod = updated.as_pod().unwrap();
    assert_eq!(pod.status.as_ref().unwrap().phase, "Running");
    assert_eq!(pod.spec.as_ref().unwrap().containers[0].image, "nginx");
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_the_last_one_is_removed() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let mut p = pod("default", "f");
    p.meta_mut().finalizers = vec!["example.com/a".into(), "example.com/b".into()];
    create(&mut c, p).await;
    let out = c
        .delete(delete_req(v1::Kind::Pod, "default", "f"))
        .await
        .unwrap()
        .into_inner();
    assert!(!out.deleted);
    let marked = c
        .get(get_req(v1::Kind::Pod, "default", "f"))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    assert!(!marked.meta().unwrap().deletion_timestamp.is_empty());

    let mut one_left = marked.clone();
    one_left.meta_mut().finalizers = vec!["example.com/b".into()];
    let one_left = c
        .update(update_req(one_left))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    assert_eq!(
        one_left.meta().unwrap().deletion_timestamp,
        marked.meta().unwrap().deletion_timestamp
    );
    c.get(get_req(v1::Kind::Pod, "default", "f"))
        .await
        .expect("still there");

    let mut none_left = one_left;
    none_left.meta_mut().finalizers.clear();
    c.update(update_req(none_left)).await.unwrap();
    let err = c
        .get(get_req(v1::Kind::Pod, "default", "f"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

fn finalizers_req(name: &str, uid: &str, add: &[&str], remove: &[&str]) -> v1::FinalizersRequest {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    v1::FinalizersRequest {
        kind: v1::Kind::Pod as i32,
        namespace: "default".into(),
        name: name.into(),
        uid: uid.into(),
        add: owned(add),
        remove: owned(remove),
    }
}

#[tokio::test]
async fn update_finalizers_changes_only_finalizers_checks_the_uid_and_deletes_when_released() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let mut p = pod("default", "fin");
    p.meta_mut().finalizers = vec!["example.com/a".into()];
    let created = create(&mut c, set_phase(p, "Running")).await;
    let uid = created.uid().to_string();

    let added = c
        .update_finalizers(finalizers_req(
            "fin",
            &uid,
            &["example.com/b", "example.com/a"],
            &[],
        ))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    assert_eq!(
        added.meta().unwrap().finalizers,
        vec!["example.com/a".to_string(), "example.com/b".to_string()],
        "an existing finalizer is not added twice"
    );
    assert!(added.resource_version() > created.resource_version());
    assert_eq!(
        added.as_pod().unwrap().status.as_ref().unwrap().phase,
        "Running"
    );
    assert_eq!(added.as_pod().unwrap().spec, created.as_pod().unwrap().spec);

    let other = c
        .update_finalizers(finalizers_req(
            "fin",
            "another-uid",
            &[],
            &["example.com/a"],
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound, "{other:?}");

    let kind_missing = c
        .update_finalizers(v1::FinalizersRequest {
            kind: 0,
            ..finalizers_req("fin", "", &[], &[])
        })
        .await
        .unwrap_err();
    assert_eq!(kind_missing.code(), Code::InvalidArgument);

    let out = c
        .delete(delete_req(v1::Kind::Pod, "default", "fin"))
        .await
        .unwrap()
        .into_inner();
    assert!(!out.deleted, "held by two finalizers");
    c.update_finalizers(finalizers_req("fin", &uid, &[], &["example.com/a"]))
        .await
        .unwrap();
    c.get(get_req(v1::Kind::Pod, "default", "fin"))
        .await
        .expect("still held by example.com/b");
    c.update_finalizers(finalizers_req("fin", "", &[], &["example.com/b"]))
        .await
        .unwrap();
    let gone = c
        .get(get_req(v1::Kind::Pod, "default", "fin"))
        .await
        .unwrap_err();
    assert_eq!(
        gone.code(),
        Code::NotFound,
        "the last finalizer released deletes it"
    );
    let missing = c
        .update_finalizers(finalizers_req("fin", "", &[], &["example.com/b"]))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn foreground_and_orphan_deletes_record_their_finalizer() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    for (name, policy, finalizer) in [
        ("fg", "Foreground", "foregroundDeletion"),
        ("or", "Orphan", "orphan"),
    ] {
        create(&mut c, object_of(v1::Kind::Job, "default", name)).await;
        let mut req = delete_req(v1::Kind::Job, "default", name);
        req.propagation_policy = policy.into();
        let out = c.delete(req).await.unwrap().into_inner();
        assert!(!out.deleted);
        let m = out.object.unwrap().meta().cloned().unwrap();
        assert_eq!(m.finalizers, vec![finalizer.to_string()]);
        assert!(!m.deletion_timestamp.is_empty());
    }
    let mut bad = delete_req(v1::Kind::Job, "default", "fg");
    bad.propagation_policy = "Sideways".into();
    assert_eq!(
        c.delete(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn delete_preconditions_on_uid_and_resource_version_are_enforced() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let p = create(&mut c, pod("default", "pre")).await;
    let mut wrong_uid = delete_req(v1::Kind::Pod, "default", "pre");
    wrong_uid.preconditions = Some(v1::Preconditions {
        uid: "nope".into(),
        ..Default::default()
    });
    let err = c.delete(wrong_uid).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("UID"), "{}", err.message());
    let mut wrong_rv = delete_req(v1::Kind::Pod, "default", "pre");
    wrong_rv.preconditions = Some(v1::Preconditions {
        resource_version: "1".into(),
        ..Default::default()
    });
    assert_eq!(
        c.delete(wrong_rv).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let mut right = delete_req(v1::Kind::Pod, "default", "pre");
    right.preconditions = Some(v1::Preconditions {
        uid: p.uid().into(),
        resource_version: p.resource_version().to_string(),
    });
    assert!(c.delete(right).await.unwrap().into_inner().deleted);
}

#[tokio::test]
async fn objects_over_the_size_limit_are_invalid_argument() {
    let etcd = Etcd::start().await;
    let mut config = Broker::config(&etcd);
    config.max_object_bytes = 4096;
    let broker = Broker::start_with(config).await;
    let mut c = broker.client().await;
    let mut big = pod("default", "big");
    big.meta_mut()
        .annotations
        .insert("blob".into(), "x".repeat(8192));
    let err = c
        .create(v1::CreateRequest {
            object: Some(big),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("too large"), "{}", err.message());
}

#[tokio::test]
async fn list_filters_by_namespace_label_and_field_selectors_in_the_broker() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    create(&mut c, with_label(pod("a", "web-1"), "app", "web")).await;
    create(&mut c, with_label(pod("a", "db-1"), "app", "db")).await;
    create(&mut c, with_label(pod("b", "web-2"), "app", "web")).await;
    let names = |items: Vec<v1::Object>| items.iter().map(|o| o.key()).collect::<Vec<_>>();
    let list = |ns: &str, l: &str, f: &str| v1::ListRequest {
        kind: v1::Kind::Pod as i32,
        namespace: ns.into(),
        label_selector: l.into(),
        field_selector: f.into(),
        shards: None,
    };
    let r = c.list(list("", "app=web", "")).await.unwrap().into_inner();
    assert_eq!(names(r.items), vec!["a/web-1", "b/web-2"]);
    let r = c.list(list("a", "", "")).await.unwrap().into_inner();
    assert_eq!(names(r.items), vec!["a/db-1", "a/web-1"]);
    let r = c
        .list(list("", "app in (db,web)", "metadata.namespace=b"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(r.items), vec!["b/web-2"]);
    let r = c
        .list(list("", "", "metadata.name!=web-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(r.items), vec!["a/db-1", "b/web-2"]);
    let err = c.list(list("", "app>1", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c.list(list("", "", "spec.bogus=1")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("spec.nodeName"), "{}", err.message());
}

#[tokio::test]
async fn two_brokers_on_one_etcd_see_each_others_writes() {
    let etcd = Etcd::start().await;
    let one = Broker::start(&etcd).await;
    let two = Broker::start(&etcd).await;
    let (mut c1, mut c2) = (one.client().await, two.client().await);
    let p = create(&mut c1, pod("default", "shared")).await;
    let seen = c2
        .get(get_req(v1::Kind::Pod, "default", "shared"))
        .await
        .unwrap()
        .into_inner()
        .object
        .unwrap();
    assert_eq!(seen, p);
    c2.update(update_req(with_label(seen, "by", "two")))
        .await
        .unwrap();
    let err = c1
        .update(update_req(with_label(p, "by", "one")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
}

#[tokio::test]
async fn the_real_binary_serves_health_and_objects() {
    let etcd = Etcd::start().await;
    let broker = Broker::spawn_process(&etcd).await;
    let channel = tonic::transport::Channel::from_shared(broker.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "bosun.v1.Objects".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut c = broker.client().await;
    create(&mut c, pod("default", "bin")).await;
    tokio::time::timeout(
        Duration::from_secs(5),
        c.get(get_req(v1::Kind::Pod, "default", "bin")),
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test]
async fn bind_sets_the_node_and_pod_scheduled_once_and_refuses_a_second_node() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let created = create(&mut c, pod("default", "web")).await;
    let bind = |node: &str, uid: &str| v1::BindRequest {
        namespace: "default".into(),
        name: "web".into(),
        uid: uid.into(),
        node_name: node.into(),
        resource_version: String::new(),
    };

    let bound = c
        .bind(bind("node-1", created.uid()))
        .await
        .expect("bind")
        .into_inner()
        .object
        .expect("object");
    let p = bound.as_pod().expect("a pod");
    assert_eq!(p.spec.as_ref().unwrap().node_name, "node-1");
    let cond = p
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.r#type == "PodScheduled");
    assert_eq!(cond.map(|c| c.status.as_str()), Some("True"));
    assert!(bound.resource_version() > created.resource_version());

    // The same node again is a no-op; another node is refused, as is a different pod's uid.
    let again = c
        .bind(bind("node-1", ""))
        .await
        .expect("rebind")
        .into_inner();
    assert_eq!(
        again.object.unwrap().resource_version(),
        bound.resource_version()
    );
    let other = c.bind(bind("node-2", "")).await.expect_err("second node");
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    assert!(
        other.message().contains("already bound to node \"node-1\""),
        "{}",
        other.message()
    );
    let wrong = c
        .bind(bind("node-2", "not-the-uid"))
        .await
        .expect_err("uid");
    assert_eq!(wrong.code(), Code::FailedPrecondition);
    let missing = c
        .bind(v1::BindRequest {
            name: "nope".into(),
            ..bind("node-1", "")
        })
        .await
        .expect_err("missing pod");
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_writes_keep_each_compare_and_same_key_writes_never_share_a_txn() {
    use bosun_broker::batch::{Batcher, Limits};
    use etcd_client::{Compare, CompareOp, TxnOp};

    let etcd = Etcd::start().await;
    let kv = etcd.client().await.kv_client();
    let limits = Limits::for_etcd(bosun_runtime::etcd_process::MAX_TXN_OPS);
    let batcher = Batcher::start(kv.clone(), limits);
    let create = |key: String| {
        let b = batcher.clone();
        tokio::spawn(async move {
            let cmp = Compare::version(key.clone(), CompareOp::Equal, 0);
            let op = TxnOp::put(key.clone(), "v", None);
            b.write(key.into_bytes(), 1, cmp, None, op).await.unwrap()
        })
    };
    // 300 distinct keys plus 50 creates racing for one key, all at once.
    let mut distinct = Vec::new();
    for i in 0..300 {
        distinct.push(create(format!("/t/k{i}")));
    }
    let racing: Vec<_> = (0..50).map(|_| create("/t/same".into())).collect();
    let mut revisions = std::collections::BTreeSet::new();
    for t in distinct {
        let w = t.await.unwrap();
        assert!(w.succeeded);
        revisions.insert(w.revision);
    }
    let mut winners = 0;
    for t in racing {
        winners += usize::from(t.await.unwrap().succeeded);
    }
    assert_eq!(winners, 1, "exactly one create of the same key wins");
    assert!(revisions.len() < 300, "nothing was batched");

    // Reads batch too and each gets its own key back.
    let reads: Vec<_> = (0..100)
        .map(|i| {
            let b = batcher.clone();
            tokio::spawn(async move { (i, b.read(format!("/t/k{i}").into_bytes()).await) })
        })
        .collect();
    for r in reads {
        let (i, kv) = r.await.unwrap();
        let kv = kv.unwrap().expect("the key exists");
        assert_eq!(kv.key(), format!("/t/k{i}").as_bytes());
    }
    assert!(
        batcher
            .read(b"/t/missing".to_vec())
            .await
            .unwrap()
            .is_none()
    );
}

/// etcd refuses a request over 1.5 MiB: two large writes at once must not share a txn (and
/// fail together), and a large write must not fail the small ones batched beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_writes_at_once_never_share_a_transaction_and_all_succeed() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let c = broker.client().await;
    let big = |name: &str| {
        let mut p = pod("default", name);
        if let Some(v1::object::Object::Pod(pod)) = &mut p.object
            && let Some(spec) = &mut pod.spec
        {
            spec.containers[0].args = vec!["x".repeat(800 << 10)];
        }
        p
    };
    let mut calls = Vec::new();
    for i in 0..3 {
        let mut c = c.clone();
        let obj = big(&format!("big-{i}"));
        calls.push(tokio::spawn(async move { c.create(create_req(obj)).await }));
    }
    for i in 0..50 {
        let mut c = c.clone();
        let obj = pod("default", &format!("small-{i}"));
        calls.push(tokio::spawn(async move { c.create(create_req(obj)).await }));
    }
    fn create_req(object: v1::Object) -> v1::CreateRequest {
        v1::CreateRequest {
            object: Some(object),
            dry_run: false,
        }
    }
    for call in calls {
        let resp = call.await.unwrap();
        assert!(resp.is_ok(), "a write failed: {:?}", resp.err());
    }
}

/// Each broker starts a write from the object as it last wrote it; a second broker on the same
/// etcd makes that copy stale. Nothing it wrote may be lost, and conflicts stay exact.
#[tokio::test]
async fn a_broker_whose_copy_of_an_object_went_stale_loses_nothing_and_reports_conflicts_exactly() {
    let etcd = Etcd::start().await;
    let (a, b) = (Broker::start(&etcd).await, Broker::start(&etcd).await);
    let (mut a, mut b) = (a.client().await, b.client().await);
    let updated = |resp: tonic::Response<v1::ObjectResponse>| resp.into_inner().object.unwrap();
    let created = create(&mut a, pod("default", "shared")).await;

    let uid = created.uid().to_string();
    let finalizer = |c: &BrokerClient, add: &[&str], remove: &[&str]| {
        let req = finalizers_req("shared", &uid, add, remove);
        let mut c = c.clone();
        async move { c.update_finalizers(req).await.unwrap() }
    };
    let get = |c: &BrokerClient| {
        let mut c = c.clone();
        async move {
            let req = get_req(v1::Kind::Pod, "default", "shared");
            c.get(req).await.unwrap().into_inner().object.unwrap()
        }
    };

    // B changes it behind A's back; A's unconditional write must build on B's change.
    b.update(update_req(with_label(created.clone(), "by", "b")))
        .await
        .unwrap();
    finalizer(&a, &["example.com/f"], &[]).await;
    let stored = get(&b).await;
    let meta = stored.meta().unwrap();
    assert_eq!(meta.labels.get("by").map(String::as_str), Some("b"));
    assert_eq!(meta.finalizers, vec!["example.com/f".to_string()]);
    // B removes the finalizer; to A's stale copy adding it again changes nothing, but it must.
    finalizer(&b, &[], &["example.com/f"]).await;
    finalizer(&a, &["example.com/f"], &[]).await;
    let stored = get(&b).await;
    assert_eq!(
        stored.meta().unwrap().finalizers,
        vec!["example.com/f".to_string()]
    );

    // A conditional write through A at the version B wrote last succeeds...
    let via_b = b
        .update(update_req(with_label(stored, "by", "b2")))
        .await
        .map(updated)
        .unwrap();
    let via_a = a
        .update(update_req(with_label(via_b.clone(), "then", "a")))
        .await
        .map(updated)
        .unwrap();
    assert!(via_a.resource_version() > via_b.resource_version());
    assert_eq!(
        via_a.meta().unwrap().labels.get("by").map(String::as_str),
        Some("b2")
    );
    // ...and one at an older version is a conflict, through either broker.
    for client in [&mut a, &mut b] {
        let err = client
            .update(update_req(with_label(via_b.clone(), "late", "x")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted, "{err:?}");
    }
}
