//! A Job's pods follow its selector (the runtime's controller-ref manager, end to end):
//! a pod relabeled out of the selector is released and replaced, an orphan matching a
//! `manualSelector` Job is adopted and counted, and of two Jobs whose selectors overlap,
//! never both own one pod. Real etcd, the real broker, scheduler, gc, Job controller and
//! node agents with the process runtime, all in-process. Pods that must wait for the test
//! wait for a file in the plane's directory (and give up after 30 s).

use std::collections::HashMap;
use std::time::Duration;

use bosun_api::v1::{self, Kind, Object};
use bosun_api::vocab::{condition, finalizer, phase, status};
use bosun_runtime::client::{Selector, WatchEvent};
use bosun_tests::{Recording, job_status, phase as phase_of, wait_for};

const WAIT: Duration = Duration::from_secs(30);

bosun_tests::file_plane! {
    /// etcd, a broker, the scheduler, the gc, the Job controller and two process-runtime nodes.
}

impl Plane {
    async fn start(label: &str) -> Plane {
        let plane = bosun_tests::Plane::builder(&format!("adoption-{label}"))
            .controllers()
            .nodes(&["node-1", "node-2"])
            .start()
            .await;
        Plane(plane)
    }

    async fn pod(&self, name: &str) -> v1::Pod {
        self.client()
            .get(Kind::Pod, "default", name)
            .await
            .expect("get pod")
            .into_pod()
            .expect("a pod")
    }

    async fn pods(&self) -> Vec<v1::Pod> {
        self.client()
            .list(Kind::Pod, &Selector::namespace("default"))
            .await
            .expect("list pods")
            .items
            .into_iter()
            .filter_map(Object::into_pod)
            .collect()
    }

    /// The pods whose controller is the Job with `uid`.
    async fn pods_controlled_by(&self, uid: &str) -> Vec<v1::Pod> {
        self.pods()
            .await
            .into_iter()
            .filter(|p| controller_uid(p).as_deref() == Some(uid))
            .collect()
    }

    /// Waits until `ok` holds for pod `name`; returns it (panics with the pod at the deadline).
    async fn wait_pod(&self, name: &str, what: &str, ok: impl Fn(&v1::Pod) -> bool) -> v1::Pod {
        wait_for(&format!("pod {name} {what}"), WAIT, || async {
            let pod = self.pod(name).await;
            if ok(&pod) {
                Ok(pod)
            } else {
                Err(format!("{:#?}", (&pod.metadata, &pod.status)))
            }
        })
        .await
    }

    /// Changes a pod's metadata (re-read and retried when someone wrote in between).
    async fn update_pod(&self, name: &str, change: impl Fn(&mut v1::ObjectMeta)) {
        loop {
            let mut pod = self.pod(name).await;
            change(pod.metadata.as_mut().expect("meta"));
            match self.client().update(pod.into()).await {
                Ok(_) => return,
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("update pod {name}: {e}"),
            }
        }
    }
}

/// The names and phases of `pods`, for a timeout's message.
fn names_and_phases(pods: &[v1::Pod]) -> Vec<(String, String)> {
    pods.iter()
        .map(|p| (meta(p).name.clone(), phase_of(p).to_string()))
        .collect()
}

fn meta(pod: &v1::Pod) -> &v1::ObjectMeta {
    pod.metadata.as_ref().expect("meta")
}

fn uid_of(job: &v1::Job) -> String {
    job.metadata.as_ref().expect("meta").uid.clone()
}

fn controller_uid(pod: &v1::Pod) -> Option<String> {
    meta(pod)
        .owner_references
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

fn tracked(pod: &v1::Pod) -> bool {
    meta(pod)
        .finalizers
        .iter()
        .any(|f| f == finalizer::JOB_TRACKING)
}

fn complete(job: &v1::Job) -> bool {
    job_status(job)
        .conditions
        .iter()
        .any(|c| c.r#type == condition::COMPLETE && c.status == status::TRUE)
}

/// A standalone pod labelled `app=<app>` that waits for `file`.
fn orphan_pod(plane: &Plane, name: &str, app: &str, file: &str) -> Object {
    v1::Pod {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            labels: [("app".to_string(), app.to_string())].into(),
            ..Default::default()
        }),
        spec: Some(Box::new(v1::PodSpec {
            containers: vec![v1::Container {
                name: "main".into(),
                image: "busybox".into(),
                command: vec!["sh".into(), "-c".into(), plane.wait_for_file(file)],
                ..Default::default()
            }],
            restart_policy: "Never".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
    .into()
}

/// A Job with `manualSelector: true` selecting (and labelling its pods) `app=<app>`.
fn manual_job_yaml(plane: &Plane, name: &str, app: &str, completions: i32, file: &str) -> String {
    format!(
        r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  completions: {completions}
  parallelism: {completions}
  manualSelector: true
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "{}"]
"#,
        plane.wait_for_file(file)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_relabeled_out_of_its_jobs_selector_is_released_replaced_and_not_counted() {
    let plane = Plane::start("relabel").await;
    plane
        .apply(&format!(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: relabel
spec:
  completions: 1
  parallelism: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "{}"]
"#,
            plane.wait_for_file("go")
        ))
        .await;
    let uid = uid_of(&plane.job("relabel").await);
    let first = wait_for("the one pod of the Job Running", WAIT, || async {
        match plane.pods_controlled_by(&uid).await.as_slice() {
            [p] if phase_of(p) == phase::RUNNING => Ok(meta(p).name.clone()),
            other => Err(format!("{:?}", names_and_phases(other))),
        }
    })
    .await;

    // The generated selector is the Job's uid label: take it away.
    plane
        .update_pod(&first, |m| {
            m.labels.insert(
                bosun_api::defaults::JOB_CONTROLLER_UID_LABEL.into(),
                "someone-else".into(),
            );
        })
        .await;
    let released = plane
        .wait_pod(
            &first,
            "released (no controller, no tracking finalizer)",
            |p| controller_uid(p).is_none() && !tracked(p),
        )
        .await;
    assert!(
        meta(&released)
            .owner_references
            .iter()
            .all(|r| r.uid != uid),
        "the Job's ownerReference is dropped"
    );
    // A replacement takes its place; the released pod is not active for the Job.
    let replacement = wait_for("one replacement pod of the Job", WAIT, || async {
        match plane.pods_controlled_by(&uid).await.as_slice() {
            [p] => Ok(meta(p).name.clone()),
            other => Err(format!("{:?}", names_and_phases(other))),
        }
    })
    .await;
    assert_ne!(replacement, first);
    plane
        .wait_job("relabel", |j| job_status(j).active == 1)
        .await;

    // Both pods succeed; only the replacement is counted.
    plane.touch("go");
    let job = plane.wait_job("relabel", complete).await;
    let s = job_status(&job);
    assert_eq!((s.succeeded, s.failed, s.active), (1, 0, 0), "{s:#?}");
    plane
        .wait_pod(&first, "Succeeded", |p| phase_of(p) == phase::SUCCEEDED)
        .await;
    let job = plane.job("relabel").await;
    assert_eq!(
        job_status(&job).succeeded,
        1,
        "the released pod is never counted"
    );
    assert!(controller_uid(&plane.pod(&first).await).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_pod_matching_a_manual_selector_is_adopted_with_the_tracking_finalizer_and_counted()
 {
    let plane = Plane::start("adopt").await;
    plane
        .client()
        .create(orphan_pod(&plane, "stray", "adoptme", "go"))
        .await
        .expect("create orphan");
    plane
        .wait_pod("stray", "Running", |p| phase_of(p) == phase::RUNNING)
        .await;

    plane
        .apply(&manual_job_yaml(&plane, "adopter", "adoptme", 1, "go"))
        .await;
    let job = plane.job("adopter").await;
    let uid = uid_of(&job);
    let stray = plane
        .wait_pod("stray", "adopted by the Job", |p| {
            controller_uid(p).as_deref() == Some(uid.as_str())
        })
        .await;
    let owner = meta(&stray)
        .owner_references
        .iter()
        .find(|r| r.uid == uid)
        .expect("owner ref")
        .clone();
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.api_version.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("Job", "adopter", "batch/v1", Some(true), Some(true))
    );
    assert!(tracked(&stray), "adopted pods get the tracking finalizer");
    // Counted as the Job's one active pod: no other pod is created.
    plane
        .wait_job("adopter", |j| job_status(j).active == 1)
        .await;
    assert_eq!(plane.pods_controlled_by(&uid).await.len(), 1);

    plane.touch("go");
    let job = plane.wait_job("adopter", complete).await;
    let s = job_status(&job);
    assert_eq!((s.succeeded, s.failed), (1, 0), "{s:#?}");
    assert_eq!(
        plane.pods_controlled_by(&uid).await.len(),
        1,
        "the adopted pod was the Job's only pod"
    );
    plane
        .wait_pod("stray", "without the tracking finalizer", |p| !tracked(p))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_with_overlapping_manual_selectors_never_both_own_one_pod() {
    let plane = Plane::start("overlap").await;
    // Every version of every pod the API shows, from before anything exists.
    let watch = Recording::start(plane.client(), Kind::Pod, &Selector::namespace("default")).await;

    // Orphans first, running; then two Jobs selecting them, created back to back, race
    // to adopt them.
    let strays: Vec<String> = (0..6).map(|i| format!("stray-{i}")).collect();
    for name in &strays {
        plane
            .client()
            .create(orphan_pod(&plane, name, "shared", "go"))
            .await
            .expect("create orphan");
    }
    wait_for("every orphan Running", WAIT, || async {
        let pods = plane.pods().await;
        if pods.len() == strays.len() && pods.iter().all(|p| phase_of(p) == phase::RUNNING) {
            Ok(())
        } else {
            Err(format!("{:?}", names_and_phases(&pods)))
        }
    })
    .await;
    plane
        .apply(&format!(
            "{}---{}",
            manual_job_yaml(&plane, "left", "shared", 3, "go"),
            manual_job_yaml(&plane, "right", "shared", 3, "go")
        ))
        .await;
    let (left, right) = (
        uid_of(&plane.job("left").await),
        uid_of(&plane.job("right").await),
    );
    // Every orphan is taken (an adopted pod beyond a Job's parallelism is then deleted).
    wait_for("every orphan taken by a Job", WAIT, || async {
        let pods = plane.pods().await;
        let untaken: Vec<&String> = strays
            .iter()
            .filter(|s| {
                pods.iter()
                    .find(|p| meta(p).name == **s)
                    .is_some_and(|p| controller_uid(p).is_none())
            })
            .collect();
        if untaken.is_empty() {
            Ok(())
        } else {
            Err(format!("not taken: {untaken:?}"))
        }
    })
    .await;
    plane.touch("go");
    for name in ["left", "right"] {
        let job = plane.wait_job(name, complete).await;
        assert_eq!(job_status(&job).succeeded, 3, "{name}: {:#?}", job.status);
    }

    // No version of any pod ever had two controllers, or references to both Jobs.
    let versions: Vec<Object> = watch
        .events()
        .into_iter()
        .filter_map(|ev| match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => Some(o),
            _ => None,
        })
        .collect();
    drop(watch);
    assert!(!versions.is_empty());
    let mut owners: HashMap<String, String> = HashMap::new();
    for o in &versions {
        let refs = &o.meta().expect("meta").owner_references;
        let controllers = refs.iter().filter(|r| r.controller == Some(true)).count();
        assert!(
            controllers <= 1,
            "{} had {controllers} controllers: {refs:?}",
            o.name()
        );
        let to_jobs = refs
            .iter()
            .filter(|r| r.uid == left || r.uid == right)
            .count();
        assert!(
            to_jobs <= 1,
            "{} was owned by both Jobs: {refs:?}",
            o.name()
        );
        // Once owned, a pod never changes hands.
        if let Some(r) = refs.first() {
            let first = owners.entry(o.uid().to_string()).or_insert(r.uid.clone());
            assert_eq!(*first, r.uid, "{} changed owner", o.name());
        }
    }
    let adopted = versions
        .iter()
        .filter(|o| o.name().starts_with("stray-") && o.controller_ref().is_some())
        .count();
    assert!(adopted > 0, "the orphans were adopted");
}
