//! The TTL-after-finished controller (in `bosun-gc`) against a real etcd and broker, the gc
//! started in-process through `bosun_gc::run`: a finished Job with `ttlSecondsAfterFinished`
//! goes (with its pods) once the TTL has passed and not before; one without a TTL stays; one
//! whose TTL is raised before expiry outlives its old expiry.
//!
//! There is no Job controller here: the tests finish a Job by writing its status. Pods are
//! never bound, so deleting one removes it at once.

use std::time::Duration;

use bosun_runtime::client::Broker as Client;
use bosun_tests::{Plane, job, metric, pod, v1, wait_for};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(15);

/// etcd + broker + gc (metrics served at `gc_metrics()`), stopped on drop.
async fn plane() -> Plane {
    Plane::builder("ttl").gc().start().await
}

/// Creates Job `name` with `ttl` and one pod it owns (controller, blocking its deletion).
async fn job_with_pod(client: &Client, name: &str, ttl: Option<i32>) -> v1::Object {
    let mut j = job("default", name).into_job().expect("a Job");
    j.spec.get_or_insert_default().ttl_seconds_after_finished = ttl;
    let created = client.create(j.into()).await.expect("create job");
    let mut p = pod("default", &format!("{name}-pod"));
    p.meta_mut().owner_references = vec![v1::OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: created.name().into(),
        uid: created.uid().into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }];
    client.create(p).await.expect("create pod");
    created
}

/// Marks Job `name` Complete as of now (what a Job controller would write); returns when
/// that was, as an `Instant` taken before the wall-clock time written.
async fn finish(client: &Client, name: &str) -> Instant {
    let mut latest = client
        .get(v1::Kind::Job, "default", name)
        .await
        .expect("get job")
        .into_job()
        .expect("a Job");
    let started = Instant::now();
    // Millisecond precision, truncated: the written time is never later than `started`'s
    // wall-clock counterpart plus the few microseconds between the two reads.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    latest.status = Some(v1::JobStatus {
        conditions: vec![v1::Condition {
            r#type: "Complete".into(),
            status: "True".into(),
            last_transition_time: now.clone(),
            last_probe_time: now.clone(),
            ..Default::default()
        }],
        start_time: now.clone(),
        completion_time: now,
        succeeded: 1,
        ..Default::default()
    });
    client
        .update_status(latest.into())
        .await
        .expect("finish job");
    started
}

async fn exists(client: &Client, kind: v1::Kind, name: &str) -> Option<v1::Object> {
    client.get_opt(kind, "default", name).await.expect("get")
}

fn being_deleted(obj: &v1::Object) -> bool {
    obj.meta().is_some_and(|m| !m.deletion_timestamp.is_empty())
}

/// Whether Job `name` is gone or on its way (marked for a foreground delete).
async fn deleting_or_gone(client: &Client, name: &str) -> bool {
    exists(client, v1::Kind::Job, name)
        .await
        .is_none_or(|j| being_deleted(&j))
}

#[tokio::test]
async fn a_finished_job_with_a_ttl_is_deleted_with_its_pods_once_the_ttl_has_passed() {
    let p = plane().await;
    job_with_pod(p.client(), "short", Some(1)).await;
    let finished = finish(p.client(), "short").await;

    // The moment the gc acts is when the Job is first seen marked (or gone).
    wait_for("job short marked for deletion or gone", DEADLINE, || {
        deleting_or_gone(p.client(), "short")
    })
    .await;
    let acted = finished.elapsed();
    assert!(
        acted >= Duration::from_millis(950),
        "deleted {acted:?} after finishing, before its 1 s TTL"
    );
    // Foreground: the pod goes, then the Job.
    wait_for("pod short-pod and job short gone", DEADLINE, || async {
        let pod = exists(p.client(), v1::Kind::Pod, "short-pod").await;
        let job = exists(p.client(), v1::Kind::Job, "short").await;
        match (pod, job) {
            (None, None) => Ok(()),
            (pod, job) => Err(format!("pod {:?}, job {:?}", pod.is_some(), job.is_some())),
        }
    })
    .await;
    wait_for("bosun_gc_ttl_deletes_total 1", DEADLINE, || async {
        let value = metric(p.gc_metrics(), "bosun_gc_ttl_deletes_total").await;
        if value == Some(1.0) {
            Ok(())
        } else {
            Err(format!("{value:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn a_finished_job_without_a_ttl_stays() {
    let p = plane().await;
    let kept = job_with_pod(p.client(), "kept", None).await;
    finish(p.client(), "kept").await;
    // A twin with a TTL, finished after it: once the gc has deleted the twin, it has long
    // seen the Job without one.
    job_with_pod(p.client(), "twin", Some(1)).await;
    finish(p.client(), "twin").await;
    wait_for("job twin gone", DEADLINE, || async {
        exists(p.client(), v1::Kind::Job, "twin").await.is_none()
    })
    .await;

    let still = exists(p.client(), v1::Kind::Job, "kept")
        .await
        .expect("job without a ttl kept");
    assert_eq!(still.uid(), kept.uid());
    assert!(!being_deleted(&still));
    assert!(
        exists(p.client(), v1::Kind::Pod, "kept-pod")
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_job_whose_ttl_is_raised_before_expiry_outlives_its_old_expiry() {
    let p = plane().await;
    let old_ttl = Duration::from_secs(2);
    let raised = job_with_pod(p.client(), "raised", Some(2)).await;
    job_with_pod(p.client(), "control", Some(2)).await;
    let finished = finish(p.client(), "raised").await;
    finish(p.client(), "control").await;

    let mut latest = exists(p.client(), v1::Kind::Job, "raised")
        .await
        .and_then(v1::Object::into_job)
        .expect("job");
    latest
        .spec
        .get_or_insert_default()
        .ttl_seconds_after_finished = Some(3600);
    p.client().update(latest.into()).await.expect("raise ttl");
    assert!(
        finished.elapsed() < old_ttl,
        "the test machine was too slow to raise the TTL before the old expiry"
    );

    // The control Job with the old TTL goes (the gc is alive and counting), and well past
    // the old expiry the raised one is still there.
    wait_for(
        "job control gone, 1.5 s past the old expiry",
        DEADLINE,
        || async {
            exists(p.client(), v1::Kind::Job, "control").await.is_none()
                && finished.elapsed() >= old_ttl + Duration::from_millis(1500)
        },
    )
    .await;
    let still = exists(p.client(), v1::Kind::Job, "raised")
        .await
        .expect("job with a raised ttl kept");
    assert_eq!(still.uid(), raised.uid());
    assert!(!being_deleted(&still), "marked for deletion at the old TTL");
    assert!(
        exists(p.client(), v1::Kind::Pod, "raised-pod")
            .await
            .is_some()
    );
}
