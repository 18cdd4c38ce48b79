//! The act half in-process: the DaemonSet controller's writes against the runtime's
//! recording fake, on a paused clock.

use super::*;
use bosun_runtime::cache::store;
use bosun_runtime::client::ClientError;
use bosun_runtime::writer::{RecordingWriter, Verb};
use plan::NewRevision;

fn ctx(writer: Arc<RecordingWriter>) -> Arc<Ctx> {
    ctx_with_pods(writer, store::<Object>().0)
}

fn ctx_with_pods(writer: Arc<RecordingWriter>, pods: Store) -> Arc<Ctx> {
    ctx_with(writer, pods, store::<Object>().0)
}

fn ctx_with(writer: Arc<RecordingWriter>, pods: Store, revisions: Store) -> Arc<Ctx> {
    let registry = Metrics::new();
    Arc::new(Ctx {
        recorder: EventRecorder::with_writer(writer.clone(), COMPONENT, "", 64),
        writer,
        pods,
        nodes: store::<Object>().0,
        revisions,
        daemonsets: store::<Object>().0,
        node_facts: Arc::default(),
        orphans: Arc::default(),
        expectations: Expectations::new(IN_FLIGHT_TTL),
        backoff: Mutex::default(),
        metrics: DsMetrics::new(&registry),
    })
}

fn ds() -> v1::DaemonSet {
    v1::DaemonSet {
        metadata: Some(v1::ObjectMeta {
            name: "agent".into(),
            namespace: "ns".into(),
            uid: "ds-uid".into(),
            annotations: [(CHANGE_CAUSE_ANNOTATION.to_string(), "v2".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(v1::DaemonSetSpec {
            template: Some(v1::PodTemplateSpec {
                metadata: Some(v1::ObjectMeta {
                    labels: [("app".to_string(), "agent".to_string())].into(),
                    ..Default::default()
                }),
                spec: Some(v1::PodSpec {
                    containers: vec![v1::Container {
                        name: "c".into(),
                        image: "agent:2".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn nodes(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn pod_creates(w: &RecordingWriter) -> Vec<bool> {
    w.calls_of(Verb::Create)
        .into_iter()
        .filter(|c| c.kind == Kind::Pod)
        .map(|c| c.ok)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn creations_are_issued_pinned_and_expected_until_the_cache_shows_them() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone());
    let ds = ds();
    let obj = Arc::new(Object::from(ds.clone()));
    create_pods(&ctx, &obj, &ds, "ds-uid", "abc", &nodes(7))
        .await
        .expect("creates");
    assert_eq!(pod_creates(&w), [true; 7]);
    let in_flight = ctx.expectations.observe("ds-uid", |_| Seen::Absent);
    assert_eq!(in_flight.created.len(), 7);
    let created = w.calls_of(Verb::Create)[0].key.clone();
    let pod = w.object(Kind::Pod, &created).expect("stored");
    assert_eq!(
        pod.meta()
            .unwrap()
            .labels
            .get(REVISION_HASH_LABEL)
            .map(String::as_str),
        Some("abc")
    );
    assert_eq!(ds_api::pod_node(pod.as_pod().unwrap()), Some("n1"));
    // A watch that never shows them does not hold the DaemonSet up forever.
    tokio::time::advance(IN_FLIGHT_TTL + Duration::from_secs(1)).await;
    assert!(
        ctx.expectations
            .observe("ds-uid", |_| Seen::Absent)
            .created
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn a_broken_template_fails_fast_after_one_creation_attempt() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone());
    let ds = ds();
    let obj = Arc::new(Object::from(ds.clone()));
    w.fail_next(
        Verb::Create,
        ClientError::Invalid("spec.containers[0].image: Required value".into()),
    );
    let err = create_pods(&ctx, &obj, &ds, "ds-uid", "abc", &nodes(100))
        .await
        .expect_err("the first batch failed");
    assert!(
        matches!(err, Error::CreatePod { ref node, .. } if node == "n1"),
        "{err}"
    );
    assert_eq!(
        pod_creates(&w),
        [false],
        "slow start: one attempt, not a hundred"
    );
    assert!(
        ctx.expectations
            .observe("ds-uid", |_| Seen::Absent)
            .created
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_failed_batch_the_rest_is_not_tried() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone());
    let ds = ds();
    let obj = Arc::new(Object::from(ds.clone()));
    // The first batch (1) succeeds; the second (2) has a failure; the rest is not tried.
    create_pods(&ctx, &obj, &ds, "ds-uid", "abc", &nodes(1))
        .await
        .expect("first");
    w.fail_next(
        Verb::Create,
        ClientError::Unavailable("etcd is away".into()),
    );
    let err = create_pods(&ctx, &obj, &ds, "ds-uid", "abc", &nodes(2))
        .await
        .expect_err("a failure");
    assert!(matches!(err, Error::CreatePod { .. }), "{err}");
    // 1 + (1 batch of 1 that failed): the second node was never tried.
    assert_eq!(pod_creates(&w), [true, false]);
}

fn new_revision_of(ds: &v1::DaemonSet) -> NewRevision {
    let hash = ds_api::template_hash(ds.spec.as_ref().unwrap().template.as_ref().unwrap(), None);
    NewRevision {
        name: format!("agent-{hash}"),
        hash,
        revision: 3,
    }
}

#[tokio::test(start_paused = true)]
async fn the_current_revision_is_created_named_labelled_owned_and_annotated() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone());
    let ds = ds();
    let new = new_revision_of(&ds);
    let out = ensure_revision(&ctx, &ds, &Current::Create(new.clone()))
        .await
        .expect("created");
    assert_eq!(out, RevisionOutcome::Ready);
    let stored = w
        .object(Kind::ControllerRevision, &format!("ns/{}", new.name))
        .expect("stored");
    let rev = stored.as_controller_revision().unwrap();
    let meta = rev.metadata.as_ref().unwrap();
    assert_eq!(rev.revision, 3);
    assert_eq!(meta.labels.get(REVISION_HASH_LABEL), Some(&new.hash));
    assert_eq!(meta.labels.get("app").map(String::as_str), Some("agent"));
    assert_eq!(
        meta.annotations
            .get(CHANGE_CAUSE_ANNOTATION)
            .map(String::as_str),
        Some("v2")
    );
    assert_eq!(meta.owner_references[0].uid, "ds-uid");
    assert_eq!(meta.owner_references[0].controller, Some(true));
    assert_eq!(
        rev.data.as_ref().and_then(|d| d.template.as_ref()),
        ds.spec.as_ref().unwrap().template.as_ref()
    );
    // Created again (the cache lagged): the same template means it is ours, no collision.
    let again = ensure_revision(&ctx, &ds, &Current::Create(new))
        .await
        .expect("exists");
    assert_eq!(again, RevisionOutcome::Ready);
}

#[tokio::test(start_paused = true)]
async fn a_revision_name_taken_by_another_template_is_a_collision() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone());
    let ds = ds();
    let new = new_revision_of(&ds);
    let mut other = ds.clone();
    other
        .spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = "agent:1".into();
    w.seed(new_revision(&other, &new).into());
    let out = ensure_revision(&ctx, &ds, &Current::Create(new))
        .await
        .expect("looked");
    assert_eq!(out, RevisionOutcome::Collided);
    // The act half then bumps the count in the status.
    let stored = w.seed(ds.clone().into());
    let obj = Arc::new(stored.clone());
    let ds = stored.as_daemon_set().unwrap();
    let hash = new_revision_of(ds);
    let plan = Plan {
        current: Current::Create(hash),
        delete_revisions: vec![],
        create: vec!["n1".into()],
        delete: vec![],
        backoff: vec![],
        status: v1::DaemonSetStatus::default(),
        events: vec![],
        requeue_after: None,
    };
    let action = act(&ctx, &obj, ds, plan).await.expect("act");
    assert!(
        matches!(action, Action::Requeue(d) if d.is_zero()),
        "{action:?}"
    );
    let after = w.object(Kind::DaemonSet, "ns/agent").unwrap();
    assert_eq!(
        after
            .as_daemon_set()
            .unwrap()
            .status
            .as_ref()
            .and_then(|s| s.collision_count),
        Some(1)
    );
    assert!(
        pod_creates(&w).is_empty(),
        "no pod is made from a colliding revision"
    );
}

#[tokio::test(start_paused = true)]
async fn deletions_are_by_uid_and_expected_until_the_cache_shows_them_going() {
    let w = RecordingWriter::new();
    let ctx = ctx(w.clone());
    let ds = ds();
    let obj = Arc::new(Object::from(ds.clone()));
    let mut pod = ds_api::pod_for_node(&ds, "n1", "abc");
    pod.metadata.as_mut().unwrap().name = "agent-x".into();
    let stored = w.seed(pod.into());
    let victim = plan::Deletion {
        name: "agent-x".into(),
        uid: stored.uid().to_string(),
        node: Some("n1".into()),
        reason: plan::DeleteReason::Failed,
    };
    let gone = plan::Deletion {
        name: "agent-gone".into(),
        uid: "nope".into(),
        node: Some("n2".into()),
        reason: plan::DeleteReason::NodeGone,
    };
    delete_pods(&ctx, &obj, "ds-uid", &[victim, gone])
        .await
        .expect("a gone pod is no error");
    assert!(w.object(Kind::Pod, "ns/agent-x").is_none());
    let in_flight = ctx.expectations.observe("ds-uid", |_| Seen::Present);
    assert_eq!(in_flight.deleted, ["agent-x"]);
}

#[test]
fn node_changes_matter_only_for_placement_and_readiness() {
    let node = |labels: &[(&str, &str)], unschedulable: bool, ready: &str, heartbeat: &str| {
        Arc::new(Object::from(v1::Node {
            metadata: Some(v1::ObjectMeta {
                name: "n1".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            spec: Some(v1::NodeSpec {
                unschedulable,
                ..Default::default()
            }),
            status: Some(v1::NodeStatus {
                conditions: vec![v1::Condition {
                    r#type: "Ready".into(),
                    status: ready.into(),
                    last_heartbeat_time: heartbeat.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }))
    };
    let base = node(&[], false, "True", "t1");
    let modified = |new: Arc<Object>| Change {
        kind: ChangeKind::Modified,
        key: "n1".into(),
        old: Some(base.clone()),
        new: Some(new),
    };
    // (row, change, matters)
    let table = [
        (
            "a heartbeat",
            modified(node(&[], false, "True", "t2")),
            false,
        ),
        (
            "a label",
            modified(node(&[("disk", "ssd")], false, "True", "t1")),
            true,
        ),
        ("cordoned", modified(node(&[], true, "True", "t1")), true),
        (
            "not ready",
            modified(node(&[], false, "Unknown", "t1")),
            true,
        ),
        (
            "added",
            Change {
                kind: ChangeKind::Added,
                key: "n1".into(),
                old: None,
                new: Some(base.clone()),
            },
            true,
        ),
        (
            "deleted",
            Change {
                kind: ChangeKind::Deleted,
                key: "n1".into(),
                old: Some(base.clone()),
                new: None,
            },
            true,
        ),
    ];
    for (row, change, want) in table {
        assert_eq!(node_change_matters(&change), want, "{row}");
    }
}

/// A pod labelled `app=<app>`, controlled by the DaemonSet `controller` (a uid) if given.
fn labelled_pod(name: &str, app: &str, controller: Option<&str>) -> Object {
    let mut pod = v1::Pod {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "ns".into(),
            labels: [("app".to_string(), app.to_string())].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Some(uid) = controller {
        let mut owner = ds_api::controller_ref(&ds());
        owner.uid = uid.into();
        pod.metadata.as_mut().unwrap().owner_references.push(owner);
    }
    pod.into()
}

#[tokio::test(start_paused = true)]
async fn the_claim_adopts_matching_orphans_releases_strays_and_keeps_the_rest() {
    let w = RecordingWriter::new();
    let ds_obj = w.seed(ds().into());
    let (pods, cache) = store::<Object>();
    let ctx = ctx_with_pods(w.clone(), pods);
    let mut owned = Vec::new();
    for (name, app, controller) in [
        ("kept", "agent", Some(ds_obj.uid())),
        ("stray", "other", Some(ds_obj.uid())),
        ("orphan", "agent", None),
        ("unrelated", "other", None),
        ("theirs", "agent", Some("other-ds")),
    ] {
        let stored = w.seed(labelled_pod(name, app, controller));
        let change = cache.upsert(stored).expect("cached");
        ctx.orphans.observe(&change);
        if controller == Some(ds_obj.uid()) {
            owned.push(change.new.expect("entry"));
        }
    }
    let selector = LabelSelector::parse("app=agent").unwrap();
    let claimed = claim_pods(&ctx, &Owner::of(&ds_obj), &selector, owned)
        .await
        .expect("claim");
    let mut names: Vec<&str> = claimed.iter().map(|p| p.name()).collect();
    names.sort();
    assert_eq!(names, ["kept", "orphan"]);
    let pod = |name: &str| w.object(Kind::Pod, &format!("ns/{name}")).unwrap();
    assert_eq!(
        pod("orphan").controller_ref().map(|r| r.uid.as_str()),
        Some(ds_obj.uid())
    );
    assert!(pod("stray").controller_ref().is_none(), "released");
    assert_eq!(
        pod("theirs").controller_ref().map(|r| r.uid.as_str()),
        Some("other-ds")
    );
    assert_eq!(ctx.metrics.pods_adopted.get(), 1);
    assert_eq!(ctx.metrics.pods_orphaned.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_older_revision_matching_the_template_is_renumbered_after_the_newest() {
    let w = RecordingWriter::new();
    let (revisions, cache) = store::<Object>();
    let ctx = ctx_with(w.clone(), store::<Object>().0, revisions);
    let ds = ds();
    let new = new_revision_of(&ds);
    let stored = w.seed(
        new_revision(
            &ds,
            &NewRevision {
                revision: 1,
                ..new.clone()
            },
        )
        .into(),
    );
    cache.upsert(stored);
    let current = Current::Existing {
        name: new.name.clone(),
        hash: new.hash.clone(),
        renumber: Some(5),
    };
    assert_eq!(
        ensure_revision(&ctx, &ds, &current)
            .await
            .expect("renumbered"),
        RevisionOutcome::Ready
    );
    let after = w
        .object(Kind::ControllerRevision, &format!("ns/{}", new.name))
        .unwrap();
    assert_eq!(after.as_controller_revision().unwrap().revision, 5);
    assert_eq!(w.calls_of(Verb::Update).len(), 1);
}
