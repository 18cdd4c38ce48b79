//! The broker against a real etcd: the watch API.

use std::time::{Duration, Instant};

use bosun_runtime::client::BrokerClient;
use bosun_tests::{Broker, Etcd, collect_events, create, next_events, pod, v1, with_label};
use prost::Message;
use tonic::Code;

fn watch_req(from: i64) -> v1::WatchRequest {
    v1::WatchRequest {
        kind: v1::Kind::Pod as i32,
        resource_version: from,
        ..Default::default()
    }
}

async fn watch(c: &mut BrokerClient, req: v1::WatchRequest) -> tonic::Streaming<v1::WatchResponse> {
    c.watch(req).await.expect("watch opens").into_inner()
}

async fn list_revision(c: &mut BrokerClient) -> i64 {
    c.list(v1::ListRequest {
        kind: v1::Kind::Pod as i32,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .revision
}

fn names(events: &[v1::WatchEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| v1::Object::decode(e.object.as_ref()).unwrap().key())
        .collect()
}

/// Reads a stream until it ends with a status (skipping data), within `deadline`.
async fn final_status(
    stream: &mut tonic::Streaming<v1::WatchResponse>,
    deadline: Duration,
) -> tonic::Status {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        match next_events(stream, left).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without a status"),
            Err(status) => return status,
        }
    }
}

#[tokio::test]
async fn a_watch_from_a_list_revision_sees_added_modified_and_deleted_in_order() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let rev = list_revision(&mut c).await;
    let mut stream = watch(&mut c, watch_req(rev)).await;
    let p = create(&mut c, pod("default", "w")).await;
    c.update(v1::UpdateRequest {
        object: Some(with_label(p, "a", "b")),
        dry_run: false,
    })
    .await
    .unwrap();
    c.delete(v1::DeleteRequest {
        kind: v1::Kind::Pod as i32,
        namespace: "default".into(),
        name: "w".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let events = collect_events(&mut stream, 3, Duration::from_secs(10)).await;
    let types: Vec<i32> = events.iter().map(|e| e.r#type).collect();
    assert_eq!(
        types,
        vec![
            v1::EventType::Added as i32,
            v1::EventType::Modified as i32,
            v1::EventType::Deleted as i32
        ]
    );
    assert!(events.windows(2).all(|w| w[0].revision < w[1].revision));
    // The DELETED event carries the last stored state.
    let last = v1::Object::decode(events[2].object.as_ref()).unwrap();
    assert_eq!(last.meta().unwrap().labels["a"], "b");
    // Stored bytes carry no resourceVersion: the revision is the event's.
    assert!(last.meta().unwrap().resource_version.is_empty());
}

#[tokio::test]
async fn a_watch_resumed_after_a_broker_restart_misses_nothing() {
    let etcd = Etcd::start().await;
    let mut broker = Broker::start(&etcd).await;
    let writer = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let mut w = writer.client().await;
    let rev = list_revision(&mut c).await;
    let mut stream = watch(&mut c, watch_req(rev)).await;
    create(&mut w, pod("default", "before")).await;
    let seen = collect_events(&mut stream, 1, Duration::from_secs(10)).await;
    let resume_from = seen[0].revision;

    broker.stop().await;
    for name in ["during-1", "during-2", "during-3"] {
        create(&mut w, pod("default", name)).await;
    }
    broker.restart().await;
    let mut c = broker.client().await;
    let mut stream = watch(&mut c, watch_req(resume_from)).await;
    create(&mut w, pod("default", "after")).await;
    let events = collect_events(&mut stream, 4, Duration::from_secs(10)).await;
    assert_eq!(
        names(&events),
        vec![
            "default/during-1",
            "default/during-2",
            "default/during-3",
            "default/after"
        ]
    );
}

#[tokio::test]
async fn a_revision_compacted_in_etcd_is_answered_with_expired_after_a_restart() {
    let etcd = Etcd::start().await;
    let mut broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let old = create(&mut c, pod("default", "old"))
        .await
        .resource_version();
    create(&mut c, pod("default", "newer")).await;
    let head = create(&mut c, pod("default", "newest"))
        .await
        .resource_version();
    etcd.client().await.compact(head, None).await.unwrap();
    broker.restart().await;
    let mut c = broker.client().await;
    let err = match c.watch(watch_req(old - 1)).await {
        Err(status) => status,
        Ok(resp) => final_status(&mut resp.into_inner(), Duration::from_secs(10)).await,
    };
    assert_eq!(err.code(), Code::OutOfRange);
    assert!(err.message().starts_with("expired:"), "{}", err.message());
    assert!(err.message().contains("list again"), "{}", err.message());
    // From the compact revision on, the watch works.
    let mut stream = watch(&mut c, watch_req(head)).await;
    create(&mut c, pod("default", "later")).await;
    assert_eq!(
        names(&collect_events(&mut stream, 1, Duration::from_secs(10)).await),
        vec!["default/later"]
    );
}

#[tokio::test]
async fn a_revision_older_than_the_window_is_answered_with_expired() {
    let etcd = Etcd::start().await;
    let mut config = Broker::config(&etcd);
    config.window_events = 2;
    let broker = Broker::start_with(config).await;
    let mut c = broker.client().await;
    let rev = list_revision(&mut c).await;
    for i in 0..5 {
        create(&mut c, pod("default", &format!("p{i}"))).await;
    }
    // Once the broker delivers a later marker, it has seen the five before it and its
    // window (two events) has moved past them. (A watcher of all six from `rev` would be
    // cut off: nobody is served from further back than the window.)
    let now = list_revision(&mut c).await;
    let mut live = watch(&mut c, watch_req(now)).await;
    create(&mut c, pod("default", "marker")).await;
    collect_events(&mut live, 1, Duration::from_secs(10)).await;
    let err = match c.watch(watch_req(rev)).await {
        Err(status) => status,
        Ok(resp) => final_status(&mut resp.into_inner(), Duration::from_secs(10)).await,
    };
    assert_eq!(err.code(), Code::OutOfRange);
    assert!(err.message().starts_with("expired:"), "{}", err.message());
}

#[tokio::test]
async fn a_stalled_subscriber_does_not_delay_the_others_and_is_cut_off() {
    // Big events fill the stalled stream's HTTP/2 window and socket buffers quickly, so 1500
    // of them overflow the broker-side buffer (256 events) of a subscriber that reads nothing.
    const EVENTS: usize = 1500;
    let etcd = Etcd::start().await;
    let mut config = Broker::config(&etcd);
    config.window_events = 256;
    let broker = Broker::start_with(config).await;
    let mut writer = broker.client().await;
    let rev = list_revision(&mut writer).await;
    // Separate connections, so HTTP/2 flow control of one cannot hold the other.
    let mut stalled_client = broker.client().await;
    let mut stalled = watch(&mut stalled_client, watch_req(rev)).await;
    let mut fast_client = broker.client().await;
    let mut fast = watch(&mut fast_client, watch_req(rev)).await;

    let reader = tokio::spawn(async move {
        let events = collect_events(&mut fast, EVENTS, Duration::from_secs(120)).await;
        (events.len(), Instant::now())
    });
    let payload = "x".repeat(16 * 1024);
    let mut writers = Vec::new();
    for w in 0..16 {
        let mut c = writer.clone();
        let payload = payload.clone();
        writers.push(tokio::spawn(async move {
            for i in (w..EVENTS).step_by(16) {
                let mut p = pod("default", &format!("p{i}"));
                p.meta_mut()
                    .annotations
                    .insert("pad".into(), payload.clone());
                create(&mut c, p).await;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let last_write = Instant::now();
    let (got, last_read) = reader.await.unwrap();
    assert_eq!(got, EVENTS);
    let lag = last_read.saturating_duration_since(last_write);
    assert!(
        lag < Duration::from_secs(2),
        "the reading subscriber lagged {lag:?} behind the last write"
    );

    let status = final_status(&mut stalled, Duration::from_secs(10)).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(
        status
            .message()
            .starts_with("too slow: resume from revision"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn watch_filters_by_namespace_labels_and_node_name_in_the_broker() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let rev = list_revision(&mut c).await;
    let mut by_label = watch(
        &mut c,
        v1::WatchRequest {
            label_selector: "app=web".into(),
            ..watch_req(rev)
        },
    )
    .await;
    let mut by_ns = watch(
        &mut c,
        v1::WatchRequest {
            namespace: "b".into(),
            ..watch_req(rev)
        },
    )
    .await;
    let mut by_node = watch(
        &mut c,
        v1::WatchRequest {
            field_selector: "spec.nodeName=n1".into(),
            ..watch_req(rev)
        },
    )
    .await;

    let on_node = |mut o: v1::Object, node: &str| {
        if let Some(v1::object::Object::Pod(p)) = &mut o.object {
            p.spec.as_mut().unwrap().node_name = node.into();
        }
        o
    };
    create(&mut c, with_label(pod("a", "web-a"), "app", "web")).await;
    create(&mut c, on_node(pod("a", "db-n1"), "n1")).await;
    create(&mut c, pod("b", "plain-b")).await;
    create(
        &mut c,
        on_node(with_label(pod("b", "web-b-n1"), "app", "web"), "n1"),
    )
    .await;

    let d = Duration::from_secs(10);
    assert_eq!(
        names(&collect_events(&mut by_label, 2, d).await),
        vec!["a/web-a", "b/web-b-n1"]
    );
    assert_eq!(
        names(&collect_events(&mut by_ns, 2, d).await),
        vec!["b/plain-b", "b/web-b-n1"]
    );
    assert_eq!(
        names(&collect_events(&mut by_node, 2, d).await),
        vec!["a/db-n1", "b/web-b-n1"]
    );

    let err = c
        .watch(v1::WatchRequest {
            kind: v1::Kind::Job as i32,
            field_selector: "spec.nodeName=n1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_idle_stream_gets_bookmarks_carrying_the_current_revision() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    // A write to another kind moves etcd's revision without any pod event.
    let node: v1::Object = v1::Node {
        metadata: Some(v1::ObjectMeta {
            name: "n1".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into();
    let rev = list_revision(&mut c).await;
    let mut stream = watch(
        &mut c,
        v1::WatchRequest {
            allow_bookmarks: true,
            ..watch_req(rev)
        },
    )
    .await;
    let node_rev = create(&mut c, node).await.resource_version();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let events = next_events(&mut stream, left)
            .await
            .unwrap()
            .expect("stream open");
        assert!(
            events
                .iter()
                .all(|e| e.r#type == v1::EventType::Bookmark as i32)
        );
        if events.iter().any(|e| e.revision >= node_rev) {
            assert!(events.iter().all(|e| e.object.is_empty()));
            break;
        }
    }
}

#[tokio::test]
async fn a_watch_on_one_broker_sees_writes_made_through_another() {
    let etcd = Etcd::start().await;
    let one = Broker::start(&etcd).await;
    let two = Broker::start(&etcd).await;
    let (mut c1, mut c2) = (one.client().await, two.client().await);
    let rev = list_revision(&mut c2).await;
    let mut stream = watch(&mut c2, watch_req(rev)).await;
    create(&mut c1, pod("default", "via-one")).await;
    assert_eq!(
        names(&collect_events(&mut stream, 1, Duration::from_secs(10)).await),
        vec!["default/via-one"]
    );
}

#[tokio::test]
async fn stopping_the_broker_ends_watches_with_unavailable_and_a_resume_revision() {
    let etcd = Etcd::start().await;
    let mut broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let rev = list_revision(&mut c).await;
    let mut stream = watch(&mut c, watch_req(rev)).await;
    create(&mut c, pod("default", "x")).await;
    collect_events(&mut stream, 1, Duration::from_secs(10)).await;
    broker.stop().await;
    let status = final_status(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(
        status.message().contains("resume from revision"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_share_revisions_and_every_event_reaches_a_resuming_watcher() {
    let etcd = Etcd::start().await;
    let broker = Broker::start(&etcd).await;
    let mut c = broker.client().await;
    let from = list_revision(&mut c).await;
    let mut stream = watch(&mut c, watch_req(from)).await;

    // 400 creates at once: the broker coalesces them into few etcd txns.
    let mut tasks = Vec::new();
    for i in 0..400 {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            create(&mut c, pod("batch", &format!("p{i:03}"))).await
        }));
    }
    let mut revisions = Vec::new();
    for t in tasks {
        revisions.push(t.await.unwrap().resource_version());
    }
    let distinct: std::collections::BTreeSet<i64> = revisions.iter().copied().collect();
    assert!(
        distinct.len() < revisions.len(),
        "400 concurrent creates took {} etcd revisions: nothing was batched",
        distinct.len()
    );

    // The live watcher sees all 400, once each.
    let events = collect_events(&mut stream, 400, Duration::from_secs(20)).await;
    let mut seen = names(&events);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 400);

    // Resuming from a revision that several creates share yields exactly the later ones.
    let shared = *distinct
        .iter()
        .find(|r| revisions.iter().filter(|x| x == r).count() > 1)
        .expect("a revision shared by several creates");
    let later = revisions.iter().filter(|r| **r > shared).count();
    let mut resumed = watch(&mut c, watch_req(shared)).await;
    let events = collect_events(&mut resumed, later, Duration::from_secs(20)).await;
    assert_eq!(events.len(), later);
    assert!(events.iter().all(|e| e.revision > shared));
    // Resuming from the revision before it includes every create made at it.
    let at = revisions.iter().filter(|r| **r == shared).count();
    let mut resumed = watch(&mut c, watch_req(shared - 1)).await;
    let events = collect_events(&mut resumed, later + at, Duration::from_secs(20)).await;
    assert_eq!(
        events.iter().filter(|e| e.revision == shared).count(),
        at,
        "a revision's events arrive together"
    );
}
