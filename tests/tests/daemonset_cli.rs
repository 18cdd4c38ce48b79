//! DaemonSet rollouts from the command line, end to end: the real `bosun` binary against a
//! real broker over a real etcd. No DaemonSet controller runs here: the tests write what one
//! would — ControllerRevisions owned by the DaemonSet, its status, its pods — and check what
//! `rollout status|history|undo|restart|pause|resume`, `describe ds` and `get ds` make of it.

use std::process::Stdio;
use std::time::Duration;

use bosun_api::Kind;
use bosun_api::v1;
use bosun_api::vocab::daemonset::{
    CHANGE_CAUSE_ANNOTATION, PAUSED_ANNOTATION, RESTARTED_AT_ANNOTATION, REVISION_HASH_LABEL,
};
use bosun_tests::Plane;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

async fn plane() -> Plane {
    Plane::builder("daemonset-cli").start().await
}

/// The DaemonSet `agent` running `image`, its template labelled `app=agent`, with `extra`
/// spec lines and the change-cause `cause`.
fn agent_yaml(image: &str, cause: &str, extra: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  annotations: {{{CHANGE_CAUSE_ANNOTATION}: \"{cause}\"}}
spec:
  selector:
    matchLabels: {{app: agent}}
{extra}  template:
    metadata:
      labels: {{app: agent}}
    spec:
      nodeSelector: {{disk: ssd}}
      containers:
      - name: agent
        image: {image}
        command: [sleep, \"3600\"]
"
    )
}

async fn apply(p: &Plane, text: &str) {
    let out = p
        .bosun()
        .run_with_stdin(&["apply", "-f", "-"], Some(text))
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
}

async fn agent(p: &Plane) -> v1::DaemonSet {
    match p
        .client()
        .get(Kind::DaemonSet, "default", "agent")
        .await
        .expect("get daemonset")
        .object
    {
        Some(v1::object::Object::DaemonSet(d)) => *d,
        other => panic!("not a daemonset: {other:?}"),
    }
}

fn template(ds: &v1::DaemonSet) -> v1::PodTemplateSpec {
    ds.spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .expect("a template")
}

fn image(ds: &v1::DaemonSet) -> String {
    template(ds).spec.expect("a pod spec").containers[0]
        .image
        .clone()
}

fn owner(ds: &v1::DaemonSet) -> v1::OwnerReference {
    let m = ds.metadata.as_ref().expect("metadata");
    v1::OwnerReference {
        api_version: "apps/v1".into(),
        kind: "DaemonSet".into(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Writes what the controller would for `ds`'s current template: revision `n`, named
/// `agent-<hash>`, owned by `ds`, with the DaemonSet's change-cause.
async fn record_revision(p: &Plane, ds: &v1::DaemonSet, n: i64, hash: &str) {
    let m = ds.metadata.as_ref().expect("metadata");
    let revision = v1::ControllerRevision {
        metadata: Some(v1::ObjectMeta {
            name: format!("agent-{hash}"),
            namespace: "default".into(),
            labels: [
                ("app".to_string(), "agent".to_string()),
                (REVISION_HASH_LABEL.to_string(), hash.to_string()),
            ]
            .into(),
            annotations: m
                .annotations
                .iter()
                .filter(|(k, _)| *k == CHANGE_CAUSE_ANNOTATION)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            owner_references: vec![owner(ds)],
            ..Default::default()
        }),
        data: Some(v1::RevisionData {
            template: Some(template(ds)),
        }),
        revision: n,
        ..Default::default()
    };
    p.client()
        .create(revision.into())
        .await
        .expect("create revision");
}

/// Writes the DaemonSet's status as a controller would.
async fn write_status(p: &Plane, observed: i64, desired: i32, updated: i32, available: i32) {
    let mut ds = agent(p).await;
    ds.status = Some(v1::DaemonSetStatus {
        observed_generation: observed,
        desired_number_scheduled: desired,
        current_number_scheduled: desired,
        number_ready: available,
        updated_number_scheduled: updated,
        number_available: available,
        number_unavailable: desired - available,
        ..Default::default()
    });
    p.client()
        .update_status(ds.into())
        .await
        .expect("write status");
}

/// The next line `bosun` prints (within 20 s).
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a line within 20 s")
        .expect("read stdout")
        .expect("a line, not the end")
}

fn generation(ds: &v1::DaemonSet) -> i64 {
    ds.metadata.as_ref().map_or(0, |m| m.generation)
}

/// `agent` with two revisions recorded: 1 (`agent:v1`) and 2 (`agent:v2`, current).
async fn agent_with_two_revisions(p: &Plane) -> v1::DaemonSet {
    apply(p, &agent_yaml("agent:v1", "first", "")).await;
    let v1 = agent(p).await;
    record_revision(p, &v1, 1, "aaa111").await;
    apply(p, &agent_yaml("agent:v2", "second", "")).await;
    let v2 = agent(p).await;
    record_revision(p, &v2, 2, "bbb222").await;
    v2
}

#[tokio::test]
async fn history_lists_the_owned_revisions_and_shows_one_template() {
    let p = plane().await;
    let ds = agent_with_two_revisions(&p).await;
    // A revision with the same labels owned by another DaemonSet is not agent's history.
    let mut stranger = ds.clone();
    stranger.metadata.as_mut().unwrap().uid = "someone-else".into();
    record_revision(&p, &stranger, 7, "ccc333").await;

    let out = p.ok(&["rollout", "history", "ds/agent"]).await;
    assert_eq!(
        out,
        "daemonset.apps/agent\nREVISION  CHANGE-CAUSE\n1         first\n2         second\n\n"
    );
    // kubectl's other spellings name the same DaemonSet.
    for spelling in [
        &["ds", "agent"][..],
        &["daemonset/agent"],
        &["daemonsets.apps/agent"],
    ] {
        let mut args = vec!["rollout", "history"];
        args.extend_from_slice(spelling);
        assert_eq!(p.ok(&args).await, out, "{spelling:?}");
    }

    let one = p
        .ok(&["rollout", "history", "ds/agent", "--revision=1"])
        .await;
    assert!(
        one.starts_with("daemonset.apps/agent with revision #1\nPod Template:\n"),
        "{one}"
    );
    assert!(one.contains("Image:") && one.contains("agent:v1"), "{one}");
    assert!(!one.contains("agent:v2"), "{one}");

    let missing = p
        .run(&["rollout", "history", "ds/agent", "--revision=9"])
        .await;
    assert_eq!(missing.code, 1, "{missing:#?}");
    assert_eq!(
        missing.stderr,
        "error: unable to find the specified revision\n"
    );
}

#[tokio::test]
async fn undo_writes_the_previous_template_or_skips_or_names_the_missing_revision() {
    let p = plane().await;
    agent_with_two_revisions(&p).await;

    let out = p.ok(&["rollout", "undo", "ds/agent"]).await;
    assert_eq!(out, "daemonset.apps/agent rolled back\n");
    assert_eq!(image(&agent(&p).await), "agent:v1");

    let again = p
        .ok(&["rollout", "undo", "ds/agent", "--to-revision=1"])
        .await;
    assert_eq!(
        again,
        "daemonset.apps/agent skipped rollback (current template already matches revision 1)\n"
    );

    let forward = p
        .ok(&["rollout", "undo", "daemonset/agent", "--to-revision=2"])
        .await;
    assert_eq!(forward, "daemonset.apps/agent rolled back\n");
    assert_eq!(image(&agent(&p).await), "agent:v2");

    let missing = p
        .run(&["rollout", "undo", "ds/agent", "--to-revision=5"])
        .await;
    assert_eq!(missing.code, 1, "{missing:#?}");
    assert_eq!(
        missing.stderr,
        "error: unable to find specified revision 5 in history\n"
    );
    assert_eq!(image(&agent(&p).await), "agent:v2", "nothing written");

    let gone = p.run(&["rollout", "undo", "ds/nope"]).await;
    assert_eq!(gone.code, 1, "{gone:#?}");
    assert_eq!(
        gone.stderr,
        "Error from server (NotFound): daemonsets.apps \"nope\" not found\n"
    );
}

#[tokio::test]
async fn status_follows_the_watch_until_the_rollout_is_done() {
    let p = plane().await;
    apply(&p, &agent_yaml("agent:v1", "first", "")).await;
    let gen_ = generation(&agent(&p).await);

    let mut child = p
        .bosun()
        .command(&["rollout", "status", "ds/agent", "--timeout=60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bosun runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(
        next_line(&mut lines).await,
        "Waiting for daemon set spec update to be observed..."
    );
    write_status(&p, gen_, 3, 1, 1).await;
    assert_eq!(
        next_line(&mut lines).await,
        "Waiting for daemon set \"agent\" rollout to finish: 1 out of 3 new pods have been updated..."
    );
    write_status(&p, gen_, 3, 3, 2).await;
    assert_eq!(
        next_line(&mut lines).await,
        "Waiting for daemon set \"agent\" rollout to finish: 2 of 3 updated pods are available..."
    );
    write_status(&p, gen_, 3, 3, 3).await;
    assert_eq!(
        next_line(&mut lines).await,
        "daemon set \"agent\" successfully rolled out"
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("bosun exits once the rollout is done")
        .expect("exit status");
    assert_eq!(status.code(), Some(0));

    // Done already: one line, exit 0.
    assert_eq!(
        p.ok(&["rollout", "status", "ds", "agent"]).await,
        "daemon set \"agent\" successfully rolled out\n"
    );
}

#[tokio::test]
async fn status_stops_with_an_error_when_the_daemon_set_is_deleted() {
    let p = plane().await;
    apply(&p, &agent_yaml("agent:v1", "first", "")).await;
    let mut child = p
        .bosun()
        .command(&["rollout", "status", "ds/agent"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bosun runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // Printed once the DaemonSet is read; the watch starts from that read.
    assert_eq!(
        next_line(&mut lines).await,
        "Waiting for daemon set spec update to be observed..."
    );
    p.client()
        .delete(Kind::DaemonSet, "default", "agent", Default::default())
        .await
        .expect("delete");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("bosun exits once the daemon set is gone")
        .expect("output");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: object has been deleted\n"
    );
}

#[tokio::test]
async fn status_once_times_out_refuses_on_delete_and_says_paused() {
    let p = plane().await;
    apply(&p, &agent_yaml("agent:v1", "first", "")).await;
    let gen_ = generation(&agent(&p).await);
    write_status(&p, gen_, 2, 1, 1).await;

    let once = p
        .ok(&["rollout", "status", "ds/agent", "--watch=false"])
        .await;
    assert_eq!(
        once,
        "Waiting for daemon set \"agent\" rollout to finish: 1 out of 2 new pods have been updated...\n"
    );

    let timed_out = p
        .run(&["rollout", "status", "ds/agent", "--timeout=1s"])
        .await;
    assert_eq!(timed_out.code, 1, "{timed_out:#?}");
    assert_eq!(timed_out.stdout, once);
    assert_eq!(
        timed_out.stderr,
        "error: timed out waiting for the condition\n"
    );

    let wrong_revision = p
        .run(&["rollout", "status", "ds/agent", "--revision=2"])
        .await;
    assert_eq!(wrong_revision.code, 1, "{wrong_revision:#?}");
    assert!(
        wrong_revision
            .stderr
            .contains("desired revision (2) is different from the running revision"),
        "{wrong_revision:#?}"
    );

    record_revision(&p, &agent(&p).await, 1, "aaa111").await;
    let at_revision = p
        .run(&[
            "rollout",
            "status",
            "ds/agent",
            "--revision=1",
            "--watch=false",
        ])
        .await;
    assert_eq!(at_revision.code, 0, "{at_revision:#?}");
    assert_eq!(at_revision.stdout, once);

    p.ok(&["rollout", "pause", "ds/agent"]).await;
    let paused = p
        .ok(&["rollout", "status", "ds/agent", "--watch=false"])
        .await;
    assert_eq!(
        paused,
        "daemon set \"agent\" rollout is paused: 1 out of 2 new pods have been updated (bosun rollout resume ds/agent lets it continue)\n"
    );

    apply(
        &p,
        &agent_yaml("agent:v1", "first", "  updateStrategy: {type: OnDelete}\n"),
    )
    .await;
    let on_delete = p.run(&["rollout", "status", "ds/agent"]).await;
    assert_eq!(on_delete.code, 1, "{on_delete:#?}");
    assert_eq!(
        on_delete.stderr,
        "error: rollout status is only available for RollingUpdate strategy type\n"
    );
}

#[tokio::test]
async fn pause_resume_and_restart_write_the_annotations_and_refuse_like_kubectl() {
    let p = plane().await;
    apply(&p, &agent_yaml("agent:v1", "first", "")).await;
    let paused_value = |ds: &v1::DaemonSet| {
        ds.metadata
            .as_ref()
            .and_then(|m| m.annotations.get(PAUSED_ANNOTATION).cloned())
    };

    assert_eq!(
        p.ok(&["rollout", "pause", "ds/agent"]).await,
        "daemonset.apps/agent paused\n"
    );
    assert_eq!(paused_value(&agent(&p).await).as_deref(), Some("true"));
    let again = p.run(&["rollout", "pause", "ds/agent"]).await;
    assert_eq!(again.code, 1, "{again:#?}");
    assert_eq!(
        again.stderr,
        "error: daemonsets.apps \"agent\" is already paused\n"
    );
    let described = p.ok(&["describe", "ds", "agent"]).await;
    assert!(
        described.contains("Rollout:") && described.contains("Paused"),
        "{described}"
    );
    let refused = p.run(&["rollout", "restart", "ds/agent"]).await;
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(
        refused
            .stderr
            .contains("can't restart paused daemon set (run rollout resume first"),
        "{refused:#?}"
    );

    assert_eq!(
        p.ok(&["rollout", "resume", "ds/agent"]).await,
        "daemonset.apps/agent resumed\n"
    );
    assert_eq!(paused_value(&agent(&p).await), None);
    let not_paused = p.run(&["rollout", "resume", "ds/agent"]).await;
    assert_eq!(not_paused.code, 1, "{not_paused:#?}");
    assert_eq!(
        not_paused.stderr,
        "error: daemonsets.apps \"agent\" is not paused\n"
    );

    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert_eq!(
        p.ok(&["rollout", "restart", "ds/agent"]).await,
        "daemonset.apps/agent restarted\n"
    );
    let ds = agent(&p).await;
    let at = template(&ds)
        .metadata
        .and_then(|m| m.annotations.get(RESTARTED_AT_ANNOTATION).cloned())
        .expect("restartedAt on the pod template");
    let at = chrono::DateTime::parse_from_rfc3339(&at).expect("RFC 3339");
    assert!(at >= before, "{at} is before {before}");
    assert_eq!(generation(&ds), 2, "a template change is a new generation");
}

#[tokio::test]
async fn other_kinds_have_no_rollouts() {
    let p = plane().await;
    // (arguments, what stderr must say)
    let table = [
        (
            &["rollout", "status", "job/pi"][..],
            "jobs.batch: rollouts are for daemonsets only",
        ),
        (
            &["rollout", "history", "cj", "hello"],
            "cronjobs.batch: rollouts are for daemonsets only",
        ),
        (
            &["rollout", "undo", "pod/x"],
            "pods: rollouts are for daemonsets only",
        ),
        (
            &["rollout", "restart", "deployment/web"],
            "doesn't have a resource type \"deployment\"",
        ),
        (
            &["rollout", "pause", "agent"],
            "name the daemon set as ds/NAME",
        ),
    ];
    for (args, want) in table {
        let out = p.run(args).await;
        assert_eq!(out.code, 1, "{args:?}: {out:#?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out:#?}");
        assert!(out.stderr.contains(want), "{args:?}: {out:#?}");
    }
}

#[tokio::test]
async fn describe_and_get_show_kubectls_fields() {
    let p = plane().await;
    apply(&p, &agent_yaml("agent:v1", "first", "")).await;
    let gen_ = generation(&agent(&p).await);
    write_status(&p, gen_, 4, 3, 2).await;
    let ds = agent(&p).await;
    // Its pods in each phase, and one with its labels that it does not control.
    for (name, phase, owned) in [
        ("agent-a", "Running", true),
        ("agent-b", "Running", true),
        ("agent-c", "Pending", true),
        ("agent-d", "Failed", true),
        ("stray", "Running", false),
    ] {
        let mut pod = bosun_tests::pod("default", name).into_pod().expect("a pod");
        let m = pod.metadata.as_mut().unwrap();
        m.labels.insert("app".into(), "agent".into());
        if owned {
            m.owner_references = vec![owner(&ds)];
        }
        pod.status = Some(v1::PodStatus {
            phase: phase.into(),
            ..Default::default()
        });
        p.client().create(pod.into()).await.expect("create pod");
    }

    let text = p.ok(&["describe", "ds", "agent"]).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["Name:", "agent"],
        "{text}"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["Namespace:", "default"],
        "{text}"
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["Selector:", "app=agent"],
        "{text}"
    );
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["Node-Selector:", "disk=ssd"],
        "{text}"
    );
    for want in [
        "\nDesired Number of Nodes Scheduled: 4\n",
        "\nCurrent Number of Nodes Scheduled: 4\n",
        "\nNumber of Nodes Scheduled with Up-to-date Pods: 3\n",
        "\nNumber of Nodes Scheduled with Available Pods: 2\n",
        "\nNumber of Nodes Misscheduled: 0\n",
        "2 Running / 1 Waiting / 0 Succeeded / 1 Failed\n",
        "\nPod Template:\n",
        "agent:v1",
        "\nEvents:",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    assert!(!text.contains("Rollout:"), "not paused:\n{text}");

    let wide = p.ok(&["get", "ds", "-o", "wide"]).await;
    let rows: Vec<Vec<&str>> = wide
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0],
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE SELECTOR",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ],
        "{wide}"
    );
    assert_eq!(
        rows[1][..7],
        ["agent", "4", "4", "2", "3", "2", "disk=ssd"],
        "{wide}"
    );
    assert_eq!(rows[1][8..], ["agent", "agent:v1", "app=agent"], "{wide}");
}
