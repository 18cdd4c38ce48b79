//! The garbage collector against a real etcd and broker, started in-process through
//! `bosun_gc::run`: background, foreground and orphan deletes of an owner, dependents of
//! owners that never existed, dependents with two owners, and owners replaced by namesakes.
//!
//! Pods are never bound here, so deleting one removes it at once (no node agent needed).

use std::time::Duration;

use bosun_runtime::client::{Broker as Client, DeleteOptions};
use bosun_tests::{Plane, job, pod, v1, wait_for};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(15);

/// etcd + broker + gc, stopped on drop.
async fn plane() -> Plane {
    Plane::builder("gc").gc().start().await
}

/// An ownerReference to `owner`, blocking its deletion.
fn owner_ref(owner: &v1::Object) -> v1::OwnerReference {
    let info = owner.info().expect("a known kind");
    v1::OwnerReference {
        api_version: info.api_version.into(),
        kind: info.name.into(),
        name: owner.name().into(),
        uid: owner.uid().into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Creates the pod `name` owned by `owners`.
async fn owned_pod(client: &Client, name: &str, owners: &[&v1::Object]) -> v1::Object {
    let mut p = pod("default", name);
    p.meta_mut().owner_references = owners.iter().map(|o| owner_ref(o)).collect();
    if owners.len() > 1 {
        for r in &mut p.meta_mut().owner_references[1..] {
            r.controller = Some(false);
        }
    }
    client.create(p).await.expect("create pod")
}

async fn exists(client: &Client, kind: v1::Kind, name: &str) -> Option<v1::Object> {
    client.get_opt(kind, "default", name).await.expect("get")
}

async fn delete(client: &Client, kind: v1::Kind, name: &str, policy: &str) {
    client
        .delete(
            kind,
            "default",
            name,
            DeleteOptions {
                propagation_policy: Some(policy.into()),
                ..Default::default()
            },
        )
        .await
        .expect("delete");
}

async fn wait_gone(client: &Client, kind: v1::Kind, name: &str) {
    wait_for(&format!("{kind:?} {name} to be gone"), DEADLINE, || async {
        match exists(client, kind, name).await {
            None => Ok(()),
            Some(o) => Err(format!("{:#?}", o.meta())),
        }
    })
    .await;
}

#[tokio::test]
async fn a_background_delete_of_a_job_removes_its_pods() {
    let p = plane().await;
    let owner = p.client().create(job("default", "j")).await.expect("job");
    owned_pod(p.client(), "j-1", &[&owner]).await;
    owned_pod(p.client(), "j-2", &[&owner]).await;
    let bystander = p
        .client()
        .create(pod("default", "free"))
        .await
        .expect("pod");

    delete(p.client(), v1::Kind::Job, "j", "Background").await;
    assert!(exists(p.client(), v1::Kind::Job, "j").await.is_none());
    wait_gone(p.client(), v1::Kind::Pod, "j-1").await;
    wait_gone(p.client(), v1::Kind::Pod, "j-2").await;
    let still = exists(p.client(), v1::Kind::Pod, "free").await;
    assert_eq!(
        still.map(|o| o.uid().to_string()),
        Some(bystander.uid().into())
    );
}

#[tokio::test]
async fn a_foreground_delete_keeps_the_owner_until_its_pods_are_gone() {
    let p = plane().await;
    let owner = p.client().create(job("default", "j")).await.expect("job");
    // A finalizer of someone else's keeps one pod around until we say so.
    let mut held = pod("default", "j-held");
    held.meta_mut().owner_references = vec![owner_ref(&owner)];
    held.meta_mut().finalizers = vec!["example.com/hold".into()];
    p.client().create(held).await.expect("held pod");
    owned_pod(p.client(), "j-1", &[&owner]).await;

    delete(p.client(), v1::Kind::Job, "j", "Foreground").await;
    wait_gone(p.client(), v1::Kind::Pod, "j-1").await;
    // The held pod is marked, and the job waits for it, visibly being deleted.
    wait_for("pod j-held marked for deletion", DEADLINE, || async {
        match exists(p.client(), v1::Kind::Pod, "j-held").await {
            Some(o) if o.meta().is_some_and(|m| !m.deletion_timestamp.is_empty()) => Ok(()),
            other => Err(format!("{:#?}", other.map(|o| o.meta().cloned()))),
        }
    })
    .await;
    let waiting = exists(p.client(), v1::Kind::Job, "j")
        .await
        .expect("job still there");
    let m = waiting.meta().expect("meta");
    assert!(!m.deletion_timestamp.is_empty());
    assert!(m.finalizers.contains(&"foregroundDeletion".to_string()));

    // Releasing the pod lets it go, and then the job.
    let mut latest = exists(p.client(), v1::Kind::Pod, "j-held")
        .await
        .expect("pod");
    latest.meta_mut().finalizers.clear();
    p.client().update(latest).await.expect("release pod");
    wait_gone(p.client(), v1::Kind::Pod, "j-held").await;
    wait_gone(p.client(), v1::Kind::Job, "j").await;
}

#[tokio::test]
async fn a_foreground_delete_waits_for_dependents_created_just_before_it() {
    // The pod is created a moment before its owner's delete: the collector's pod cache may
    // not have it yet when it handles the owner, and must not let the owner go without it.
    let p = plane().await;
    const OWNERS: usize = 20;
    for i in 0..OWNERS {
        let owner = p
            .client()
            .create(job("default", &format!("fg-{i}")))
            .await
            .expect("job");
        let mut held = pod("default", &format!("fg-{i}-held"));
        held.meta_mut().owner_references = vec![owner_ref(&owner)];
        held.meta_mut().finalizers = vec!["example.com/hold".into()];
        p.client().create(held).await.expect("held pod");
        delete(p.client(), v1::Kind::Job, &format!("fg-{i}"), "Foreground").await;
    }
    for i in 0..OWNERS {
        let pod_name = format!("fg-{i}-held");
        wait_for(&format!("pod {pod_name} marked for deletion"), DEADLINE, || async {
            match exists(p.client(), v1::Kind::Pod, &pod_name).await {
                Some(o) if o.meta().is_some_and(|m| !m.deletion_timestamp.is_empty()) => Ok(()),
                other => Err(format!("{:#?}", other.map(|o| o.meta().cloned()))),
            }
        })
        .await;
    }
    for i in 0..OWNERS {
        let owner = exists(p.client(), v1::Kind::Job, &format!("fg-{i}")).await;
        assert!(
            owner.is_some(),
            "job fg-{i} went while its blocking pod fg-{i}-held was still there"
        );
    }
    for i in 0..OWNERS {
        let mut held = exists(p.client(), v1::Kind::Pod, &format!("fg-{i}-held"))
            .await
            .expect("held pod");
        held.meta_mut().finalizers.clear();
        p.client().update(held).await.expect("release pod");
    }
    for i in 0..OWNERS {
        wait_gone(p.client(), v1::Kind::Job, &format!("fg-{i}")).await;
    }
}

#[tokio::test]
async fn an_orphan_delete_keeps_the_pods_without_their_owner_reference() {
    let p = plane().await;
    let owner = p.client().create(job("default", "j")).await.expect("job");
    owned_pod(p.client(), "j-1", &[&owner]).await;
    owned_pod(p.client(), "j-2", &[&owner]).await;

    delete(p.client(), v1::Kind::Job, "j", "Orphan").await;
    wait_gone(p.client(), v1::Kind::Job, "j").await;
    for name in ["j-1", "j-2"] {
        let pod = exists(p.client(), v1::Kind::Pod, name)
            .await
            .expect("pod kept");
        assert!(
            pod.meta().expect("meta").owner_references.is_empty(),
            "{name} still has an owner"
        );
    }
}

#[tokio::test]
async fn a_dependent_of_an_owner_that_never_existed_is_deleted() {
    let p = plane().await;
    let mut ghost = job("default", "ghost");
    ghost.meta_mut().uid = "00000000-0000-4000-8000-000000000000".into();
    owned_pod(p.client(), "lost", &[&ghost]).await;
    wait_gone(p.client(), v1::Kind::Pod, "lost").await;
}

#[tokio::test]
async fn a_dependent_with_two_owners_survives_while_one_remains() {
    let p = plane().await;
    let a = p.client().create(job("default", "a")).await.expect("job a");
    let b = p.client().create(job("default", "b")).await.expect("job b");
    let shared = owned_pod(p.client(), "shared", &[&a, &b]).await;

    delete(p.client(), v1::Kind::Job, "a", "Background").await;
    // The reference to the gone owner is dropped; the pod stays.
    let kept = wait_for("pod shared with one owner left", DEADLINE, || async {
        match exists(p.client(), v1::Kind::Pod, "shared").await {
            Some(o) if o.meta().is_some_and(|m| m.owner_references.len() == 1) => Ok(o),
            other => Err(format!("{:#?}", other.map(|o| o.meta().cloned()))),
        }
    })
    .await;
    assert_eq!(kept.uid(), shared.uid());
    assert_eq!(kept.meta().expect("meta").owner_references[0].uid, b.uid());

    delete(p.client(), v1::Kind::Job, "b", "Background").await;
    wait_gone(p.client(), v1::Kind::Pod, "shared").await;
}

#[tokio::test]
async fn a_new_owner_reusing_the_name_does_not_save_the_old_dependents() {
    // No collector yet, so the old owner's delete and the namesake's create both happen
    // before it looks: it must compare uids, not names.
    let p = Plane::builder("gc").start().await;
    let old = p.client().create(job("default", "j")).await.expect("job");
    owned_pod(p.client(), "j-old", &[&old]).await;
    delete(p.client(), v1::Kind::Job, "j", "Background").await;
    let new = p
        .client()
        .create(job("default", "j"))
        .await
        .expect("new job");
    assert_ne!(new.uid(), old.uid());
    let new_dependent = owned_pod(p.client(), "j-new", &[&new]).await;

    let shutdown = CancellationToken::new();
    tokio::spawn(bosun_gc::run(
        bosun_gc::Config::for_server(p.url()),
        shutdown.clone(),
    ));
    let _stop = shutdown.drop_guard();
    wait_gone(p.client(), v1::Kind::Pod, "j-old").await;
    let kept = exists(p.client(), v1::Kind::Pod, "j-new")
        .await
        .expect("new pod");
    assert_eq!(kept.uid(), new_dependent.uid());
    assert!(exists(p.client(), v1::Kind::Job, "j").await.is_some());
}
