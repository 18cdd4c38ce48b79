//! Table tests for the rollout decisions, and the conflict loop against a store that loses
//! races on cue.

use std::collections::BTreeMap;

use super::*;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn template(image: &str) -> v1::PodTemplateSpec {
    v1::PodTemplateSpec {
        metadata: Some(v1::ObjectMeta {
            labels: [("app".to_string(), "agent".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(v1::PodSpec {
            containers: vec![v1::Container {
                name: "agent".into(),
                image: image.into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

/// `agent`, generation 2, running `image`, with `strategy` and `annotations`.
fn ds(image: &str, strategy: &str, annotations: &[(&str, &str)]) -> v1::DaemonSet {
    v1::DaemonSet {
        metadata: Some(v1::ObjectMeta {
            name: "agent".into(),
            namespace: "default".into(),
            uid: "u-1".into(),
            generation: 2,
            resource_version: "7".into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
        spec: Some(v1::DaemonSetSpec {
            template: Some(template(image)),
            update_strategy: (!strategy.is_empty()).then(|| v1::DaemonSetUpdateStrategy {
                r#type: strategy.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn with_status(
    mut d: v1::DaemonSet,
    observed: i64,
    desired: i32,
    updated: i32,
    available: i32,
) -> v1::DaemonSet {
    d.status = Some(v1::DaemonSetStatus {
        observed_generation: observed,
        desired_number_scheduled: desired,
        current_number_scheduled: desired,
        updated_number_scheduled: updated,
        number_available: available,
        ..Default::default()
    });
    d
}

fn revision(n: i64, image: &str, cause: Option<&str>) -> v1::ControllerRevision {
    let mut annotations = BTreeMap::new();
    if let Some(c) = cause {
        annotations.insert(CHANGE_CAUSE_ANNOTATION.to_string(), c.to_string());
    }
    v1::ControllerRevision {
        metadata: Some(v1::ObjectMeta {
            name: format!("agent-{n}"),
            namespace: "default".into(),
            annotations,
            ..Default::default()
        }),
        data: Some(v1::RevisionData {
            template: Some(template(image)),
        }),
        revision: n,
        ..Default::default()
    }
}

#[test]
fn targets_are_daemonsets_in_kubectls_spellings() {
    for ok in [
        "ds/agent",
        "ds agent",
        "daemonset/agent",
        "daemonsets.apps/agent",
        "DaemonSet agent",
        "daemonsets agent",
    ] {
        assert_eq!(parse_target(&words(ok)).unwrap(), "agent", "{ok}");
    }
    // (words, what the message must say)
    let refused = [
        ("job/pi", "jobs.batch: rollouts are for daemonsets only"),
        (
            "cj hello",
            "cronjobs.batch: rollouts are for daemonsets only",
        ),
        ("po/x", "pods: rollouts are for daemonsets only"),
        (
            "deployment/web",
            "doesn't have a resource type \"deployment\"",
        ),
        ("agent", "name the daemon set as ds/NAME"),
        ("ds/a ds/b", "one daemon set at a time"),
        ("ds/", "may not be empty"),
    ];
    for (w, want) in refused {
        let e = parse_target(&words(w)).unwrap_err().to_string();
        assert!(e.contains(want), "{w}: {e}");
    }
}

#[test]
fn status_messages_read_like_kubectls_per_status() {
    let rolling = ds("v2", "RollingUpdate", &[]);
    let paused = ds("v2", "", &[(PAUSED_ANNOTATION, "true")]);
    // (row, daemon set, the message, done)
    let table: Vec<(&str, v1::DaemonSet, &str, bool)> = vec![
        (
            "generation not observed yet",
            with_status(rolling.clone(), 1, 3, 3, 3),
            "Waiting for daemon set spec update to be observed...",
            false,
        ),
        (
            "no status at all",
            rolling.clone(),
            "Waiting for daemon set spec update to be observed...",
            false,
        ),
        (
            "pods still being updated",
            with_status(rolling.clone(), 2, 3, 1, 3),
            "Waiting for daemon set \"agent\" rollout to finish: 1 out of 3 new pods have been updated...",
            false,
        ),
        (
            "updated, not all available",
            with_status(rolling.clone(), 2, 3, 3, 2),
            "Waiting for daemon set \"agent\" rollout to finish: 2 of 3 updated pods are available...",
            false,
        ),
        (
            "done",
            with_status(rolling.clone(), 2, 3, 3, 3),
            "daemon set \"agent\" successfully rolled out",
            true,
        ),
        (
            "observed a newer generation than asked",
            with_status(rolling.clone(), 5, 0, 0, 0),
            "daemon set \"agent\" successfully rolled out",
            true,
        ),
        (
            "no strategy means RollingUpdate (the default)",
            with_status(ds("v2", "", &[]), 2, 1, 1, 1),
            "daemon set \"agent\" successfully rolled out",
            true,
        ),
        (
            "paused part way",
            with_status(paused.clone(), 2, 3, 1, 3),
            "daemon set \"agent\" rollout is paused: 1 out of 3 new pods have been updated (bosun rollout resume ds/agent lets it continue)",
            false,
        ),
        (
            "paused but nothing left to do",
            with_status(paused.clone(), 2, 3, 3, 3),
            "daemon set \"agent\" successfully rolled out",
            true,
        ),
    ];
    for (row, d, want, done) in table {
        let got = status_view(&d).unwrap_or_else(|e| panic!("{row}: {e}"));
        assert_eq!(got.message, want, "{row}");
        assert_eq!(got.done, done, "{row}");
    }
    let on_delete = with_status(ds("v2", ON_DELETE, &[]), 2, 3, 1, 3);
    assert_eq!(
        status_view(&on_delete).unwrap_err().to_string(),
        "rollout status is only available for RollingUpdate strategy type"
    );
}

#[test]
fn history_is_kubectls_table_oldest_first() {
    let table = history_table(&[
        revision(3, "v3", Some("bosun apply -f v3.yaml")),
        revision(1, "v1", None),
        revision(2, "v2", Some("")),
    ]);
    assert_eq!(
        table,
        "REVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n3         bosun apply -f v3.yaml\n"
    );
    assert_eq!(history_table(&[]), "No rollout history found.\n");
}

#[test]
fn undo_picks_the_revision_before_the_newest_or_the_one_asked() {
    let h = [
        revision(1, "v1", None),
        revision(3, "v3", None),
        revision(2, "v2", None),
    ];
    // (row, history, --to-revision, the revision chosen or the error)
    type Case<'a> = (
        &'a str,
        &'a [v1::ControllerRevision],
        i64,
        Result<i64, &'a str>,
    );
    let table: [Case; 7] = [
        ("previous of three", &h, 0, Ok(2)),
        ("asked for", &h, 1, Ok(1)),
        ("asked for the newest", &h, 3, Ok(3)),
        (
            "missing",
            &h,
            7,
            Err("unable to find specified revision 7 in history"),
        ),
        (
            "negative",
            &h,
            -1,
            Err("unable to find specified revision -1 in history"),
        ),
        (
            "only one",
            &h[..1],
            0,
            Err("no last revision to roll back to"),
        ),
        ("none", &[], 0, Err("no last revision to roll back to")),
    ];
    for (row, history, to, want) in table {
        let got = revision_to_undo(history, to)
            .map(|r| r.revision)
            .map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(String::from), "{row}");
    }
}

#[test]
fn undo_writes_the_revisions_template_or_skips_when_it_already_runs() {
    let h = [revision(1, "v1", None), revision(2, "v2", None)];
    let mut d = ds("v2", "", &[]);
    assert_eq!(
        undo(&mut d, &h, 0).unwrap(),
        Change::Write("rolled back".into())
    );
    assert_eq!(d.spec.as_ref().unwrap().template, Some(template("v1")));
    assert_eq!(
        undo(&mut d, &h, 1).unwrap(),
        Change::Skip("skipped rollback (current template already matches revision 1)".into())
    );
    assert_eq!(current_revision(&d, &h), Some(1));
    assert_eq!(current_revision(&ds("v9", "", &[]), &h), None);
}

#[test]
fn pause_resume_and_restart_refuse_like_kubectl() {
    let mut d = ds("v1", "", &[]);
    assert!(matches!(resume(&mut d), Err(RolloutError::NotPaused(_))));
    assert_eq!(pause(&mut d).unwrap(), Change::Write("paused".into()));
    assert!(is_paused(&d));
    assert_eq!(
        pause(&mut d).unwrap_err().to_string(),
        "daemonsets.apps \"agent\" is already paused"
    );
    let refused = restart(&mut d, "2026-12-05T11:00:00Z")
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("can't restart paused daemon set (run rollout resume first"),
        "{refused}"
    );
    assert_eq!(resume(&mut d).unwrap(), Change::Write("resumed".into()));
    assert!(!is_paused(&d));
    assert_eq!(
        resume(&mut d).unwrap_err().to_string(),
        "daemonsets.apps \"agent\" is not paused"
    );
    assert_eq!(
        restart(&mut d, "2026-12-05T11:00:00Z").unwrap(),
        Change::Write("restarted".into())
    );
    let annotations = &d
        .spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap()
        .annotations;
    assert_eq!(
        annotations.get(RESTARTED_AT_ANNOTATION).map(String::as_str),
        Some("2026-12-05T11:00:00Z")
    );
    assert!(matches!(
        restart(&mut d, "2026-12-05T11:00:00Z"),
        Err(RolloutError::RestartTooSoon(_))
    ));
    // A paused annotation with another value is not a pause.
    assert!(!is_paused(&ds("v1", "", &[(PAUSED_ANNOTATION, "false")])));
}

#[test]
fn only_revisions_the_daemon_set_controls_are_its_history() {
    let owned = |uid: &str, controller: bool, n: i64| -> Object {
        let mut r = revision(n, "v1", None);
        r.metadata.as_mut().unwrap().owner_references = vec![v1::OwnerReference {
            kind: "DaemonSet".into(),
            name: "agent".into(),
            uid: uid.into(),
            controller: Some(controller),
            ..Default::default()
        }];
        r.into()
    };
    let got = owned_revisions(
        "u-1",
        vec![
            owned("u-1", true, 1),
            owned("u-2", true, 2),
            owned("u-1", false, 3),
            revision(4, "v", None).into(),
        ],
    );
    assert_eq!(got.iter().map(|r| r.revision).collect::<Vec<_>>(), vec![1]);
}

/// A store holding one DaemonSet and its history that refuses the first `conflicts` writes.
struct Racy {
    ds: Option<Object>,
    history: Vec<v1::ControllerRevision>,
    conflicts: usize,
    reads: usize,
    writes: Vec<Object>,
}

impl Racy {
    fn new(conflicts: usize) -> Racy {
        Racy {
            ds: Some(ds("v2", "", &[]).into()),
            history: vec![revision(1, "v1", None), revision(2, "v2", None)],
            conflicts,
            reads: 0,
            writes: Vec::new(),
        }
    }
}

impl DsStore for Racy {
    async fn get(&mut self, _: &str, name: &str) -> Result<Object, Status> {
        self.reads += 1;
        self.ds
            .clone()
            .ok_or_else(|| Status::not_found(format!("daemonsets \"{name}\" not found")))
    }
    async fn revisions(
        &mut self,
        _: &v1::DaemonSet,
    ) -> Result<Vec<v1::ControllerRevision>, Status> {
        Ok(self.history.clone())
    }
    async fn update(&mut self, obj: Object) -> Result<Object, Status> {
        if self.conflicts > 0 {
            self.conflicts -= 1;
            return Err(Status::aborted("resourceVersion 7 is stale, current is 8"));
        }
        self.writes.push(obj.clone());
        self.ds = Some(obj.clone());
        Ok(obj)
    }
}

fn image_of(obj: &Object) -> String {
    match &obj.object {
        Some(O::DaemonSet(d)) => d
            .spec
            .as_ref()
            .unwrap()
            .template
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn a_lost_race_is_redone_on_a_fresh_read_until_the_write_lands() {
    let mut store = Racy::new(2);
    let got = write_daemonset(&mut store, "default", "agent", true, |d, h| undo(d, h, 0))
        .await
        .unwrap();
    assert_eq!(got, Change::Write("rolled back".into()));
    assert_eq!(store.reads, 3, "one read per attempt");
    assert_eq!(store.writes.len(), 1);
    assert_eq!(image_of(&store.writes[0]), "v1");
}

#[tokio::test]
async fn a_conflict_that_persists_is_reported_and_nothing_is_written() {
    let mut store = Racy::new(usize::MAX);
    match write_daemonset(&mut store, "default", "agent", false, |d, _| pause(d)).await {
        Err(WriteError::Conflict { attempts, last }) => {
            assert_eq!(attempts, CONFLICT_RETRIES);
            assert!(last.message().contains("stale"), "{last:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(store.writes.is_empty());
}

#[tokio::test]
async fn a_refusal_a_skip_or_a_missing_daemon_set_write_nothing() {
    let mut store = Racy::new(0);
    assert!(matches!(
        write_daemonset(&mut store, "default", "agent", false, |d, _| resume(d)).await,
        Err(WriteError::Refused(RolloutError::NotPaused(_)))
    ));
    assert!(matches!(
        write_daemonset(&mut store, "default", "agent", true, |d, h| undo(d, h, 2)).await,
        Ok(Change::Skip(_))
    ));
    store.ds = None;
    match write_daemonset(&mut store, "default", "agent", false, |d, _| pause(d)).await {
        Err(WriteError::Server(s)) => assert_eq!(s.code(), Code::NotFound),
        other => panic!("{other:?}"),
    }
    assert!(store.writes.is_empty());
}
