//! End-to-end tests of the node agent's docker runtime (the Docker Engine API): real etcd,
//! the real broker and scheduler, a node agent with `--runtime docker`, and a Docker engine.
//!
//! No registry is reachable here, so each test builds its own tiny image from the host's
//! files (`dash` as `/bin/sh`, `sleep`, their libraries) with `docker import`, under a tag of
//! its own, and removes it and its containers when it ends (also on failure). Each test
//! passes with a note when no Docker engine answers.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bosun_api::v1::{self, Kind, Object};
use bosun_api::vocab::{phase, policy};
use bosun_node_agent::RuntimeKind;
use bosun_node_agent::runtime::docker::DockerRuntime;
use bosun_runtime::client::{DeleteOptions, Selector, WatchEvent};
use bosun_tests::{Agent, Recording, temp_dir, wait_for};

const WAIT: Duration = Duration::from_secs(30);
const NODE: &str = "docker-node";
/// The agent's log cap: more than the other tests print, less than the chatty one.
const LOG_CAP: u64 = 4096;

/// An image built for one test from the host's files; removed (with every container made
/// from it) on drop.
struct TestImage {
    tag: String,
}

impl TestImage {
    /// Builds `bosun-e2e-docker:<label>-<pid>`; `None` (with the reason printed) when the
    /// host lacks what it takes.
    fn build(label: &str) -> Option<TestImage> {
        let tag = format!("bosun-e2e-docker:{label}-{}", std::process::id());
        let root = temp_dir("docker-rootfs");
        let tools = ["/bin/dash", "/bin/sleep"];
        for tool in tools {
            if !Path::new(tool).exists() {
                eprintln!("skipped: {tool} is missing on this host (needed for the test image)");
                return None;
            }
            copy_with_libraries(tool, &root);
        }
        std::os::unix::fs::symlink("dash", root.join("bin/sh")).expect("sh link");
        std::fs::create_dir_all(root.join("tmp")).expect("tmp");
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-cf", "-", "."])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("tar");
        let out = Command::new("docker")
            .args(["import", "-", &tag])
            .stdin(tar.stdout.take().expect("tar output"))
            .output()
            .expect("docker import");
        let tarred = tar.wait().expect("tar");
        assert!(tarred.success(), "tar of the test image's files: {tarred}");
        let _ = std::fs::remove_dir_all(&root);
        assert!(
            out.status.success(),
            "docker import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(TestImage { tag })
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("ancestor={}", self.tag)])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

/// Copies `binary` and the shared libraries it loads into `root`, at the same paths.
fn copy_with_libraries(binary: &str, root: &Path) {
    let ldd = Command::new("ldd").arg(binary).output().expect("ldd");
    let text = String::from_utf8_lossy(&ldd.stdout);
    let libs = text
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(str::to_string);
    for file in std::iter::once(binary.to_string()).chain(libs) {
        let to = root.join(file.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("dir");
        // `cp -L`: a library path is often a symlink; the image needs the file.
        std::fs::copy(&file, &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
}

/// Whether the test can run: a Docker engine answers and the `docker` CLI (used here to
/// build and remove the test image) is there.
async fn docker_ready() -> bool {
    if let Err(why) = DockerRuntime::reachable().await {
        eprintln!("skipped: no Docker engine is reachable ({why})");
        return false;
    }
    if Command::new("docker").arg("version").output().is_err() {
        eprintln!("skipped: the docker CLI is missing (the test builds its image with it)");
        return false;
    }
    true
}

/// etcd, the broker, the scheduler and a docker node agent (stoppable: [`Plane::restart_agent`]).
struct Plane {
    plane: bosun_tests::Plane,
    agent: Option<Agent>,
}

impl std::ops::Deref for Plane {
    type Target = bosun_tests::Plane;
    fn deref(&self) -> &bosun_tests::Plane {
        &self.plane
    }
}

impl Plane {
    async fn start() -> Plane {
        let plane = bosun_tests::Plane::builder("docker-agent")
            .scheduler()
            .agent_config(|c| {
                c.runtime = RuntimeKind::Docker;
                // The image pull back-off too: short, so a test sees a second pull.
                c.backoff_base = Duration::from_millis(400);
                c.backoff_cap = Duration::from_secs(2);
                c.log_max_bytes = LOG_CAP;
            })
            .start()
            .await;
        let agent = plane.start_node(NODE).await;
        Plane {
            plane,
            agent: Some(agent),
        }
    }

    /// Stops the node agent (its containers keep running), waits until it has, and starts
    /// it again: same node, same data dir.
    async fn restart_agent(&mut self) {
        self.agent.take().expect("an agent runs").stop().await;
        self.agent = Some(self.plane.start_node(NODE).await);
    }

    async fn create(&self, pod: v1::Pod) {
        self.client()
            .create(Object::from(pod))
            .await
            .expect("create pod");
    }

    async fn pod(&self, name: &str) -> Option<v1::Pod> {
        self.client()
            .get_opt(Kind::Pod, "default", name)
            .await
            .expect("get pod")
            .and_then(|o| o.into_pod())
    }

    async fn status(&self, name: &str) -> v1::PodStatus {
        self.pod(name)
            .await
            .and_then(|p| p.status)
            .unwrap_or_default()
    }

    async fn wait_phase(&self, name: &str, phase: &str) -> v1::PodStatus {
        wait_for(&format!("pod {name} {phase}"), WAIT, || async {
            let s = self.status(name).await;
            if s.phase == phase {
                Ok(s)
            } else {
                Err(format!("{s:#?}"))
            }
        })
        .await
    }

    /// Waits until the pod's logs are exactly `want`.
    async fn wait_logs(&self, name: &str, want: &str) {
        wait_for(&format!("logs of {name}: {want:?}"), WAIT, || async {
            let logs = self.logs(name).await.expect("logs");
            if logs == want {
                Ok(())
            } else {
                Err(format!("{logs:?}"))
            }
        })
        .await
    }
}

/// A pod (not bound: the scheduler places it) running `sh -c script` in `image`.
fn pod(name: &str, image: &str, pull_policy: &str, script: &str) -> v1::Pod {
    v1::Pod {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(Box::new(v1::PodSpec {
            restart_policy: policy::NEVER.into(),
            containers: vec![v1::Container {
                name: "main".into(),
                image: image.into(),
                image_pull_policy: pull_policy.into(),
                command: vec!["sh".into(), "-c".into(), script.into()],
                ..Default::default()
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Mounts the host folder `out` at `/out` in the pod's container (a hostPath volume).
fn mount_out(pod: &mut v1::Pod, out: &Path) {
    let spec = pod.spec.as_mut().expect("spec");
    spec.volumes = vec![v1::Volume {
        name: "out".into(),
        host_path: Some(v1::HostPathVolumeSource {
            path: out.display().to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }];
    spec.containers[0].volume_mounts = vec![v1::VolumeMount {
        name: "out".into(),
        mount_path: "/out".into(),
        ..Default::default()
    }];
}

fn main_status(s: &v1::PodStatus) -> v1::ContainerStatus {
    s.container_statuses
        .iter()
        .find(|c| c.name == "main")
        .cloned()
        .unwrap_or_else(|| panic!("no status for container main: {s:#?}"))
}

fn terminated(s: &v1::PodStatus) -> v1::ContainerStateTerminated {
    main_status(s)
        .state
        .and_then(|st| st.terminated)
        .unwrap_or_else(|| panic!("container main has not terminated: {s:#?}"))
}

fn waiting(pod: &v1::Pod) -> Option<v1::ContainerStateWaiting> {
    pod.status
        .as_ref()?
        .container_statuses
        .iter()
        .find(|c| c.name == "main")?
        .state
        .as_ref()?
        .waiting
        .clone()
}

/// What the pods of a failing pull went through, from their watch events.
#[derive(Debug, Default)]
struct PullHistory {
    /// Each pod's waiting states (ContainerCreating left out), in order, repeats folded.
    waiting: BTreeMap<String, Vec<v1::ContainerStateWaiting>>,
    /// Each pod seen in a phase other than Pending (or none), with that phase.
    not_pending: Vec<(String, String)>,
}

fn pull_history(events: &[WatchEvent]) -> PullHistory {
    let mut history = PullHistory::default();
    for ev in events {
        let (WatchEvent::Added(o) | WatchEvent::Modified(o)) = ev else {
            continue;
        };
        let Some(p) = o.as_pod() else { continue };
        let name = p
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let now = p
            .status
            .as_ref()
            .map(|s| s.phase.clone())
            .unwrap_or_default();
        if !(now.is_empty() || now == phase::PENDING) {
            history.not_pending.push((name.clone(), now));
        }
        if let Some(w) = waiting(p)
            && w.reason != "ContainerCreating"
            && history.waiting.get(&name).and_then(|v| v.last()) != Some(&w)
        {
            history.waiting.entry(name).or_default().push(w);
        }
    }
    history
}

/// Whether both pods went ErrImagePull, ImagePullBackOff, then a second pull after the
/// back-off.
fn pulled_twice(seen: &BTreeMap<String, Vec<v1::ContainerStateWaiting>>) -> bool {
    ["missing", "always"].iter().all(|name| {
        let reasons: Vec<&str> = seen
            .get(*name)
            .map(|w| w.iter().map(|w| w.reason.as_str()).collect())
            .unwrap_or_default();
        let first = reasons.iter().position(|r| *r == "ErrImagePull");
        let backoff = reasons.iter().position(|r| *r == "ImagePullBackOff");
        let again = reasons.iter().rposition(|r| *r == "ErrImagePull");
        matches!((first, backoff, again), (Some(a), Some(b), Some(c)) if a < b && b < c)
    })
}

/// The engine's message for a pull of `image`, as the docker CLI shows it (without the
/// CLI's own prefix).
fn engine_pull_message(image: &str) -> String {
    let out = Command::new("docker")
        .args(["pull", image])
        .output()
        .expect("docker pull");
    assert!(
        !out.status.success(),
        "{image} was pulled: is a registry reachable?"
    );
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    err.strip_prefix("Error response from daemon: ")
        .unwrap_or(&err)
        .to_string()
}

/// The containers of pod `uid` the engine still has.
fn containers_of(uid: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=bosun.dev/pod-uid={uid}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_pod_on_a_local_image_runs_to_completion_with_its_logs_and_exit_code() {
    if !docker_ready().await {
        return;
    }
    let Some(image) = TestImage::build("run") else {
        return;
    };
    let plane = Plane::start().await;
    // The default policy for a tagged image is IfNotPresent: the local image is used.
    plane
        .create(pod(
            "ok",
            &image.tag,
            "",
            "echo hello from docker; echo on stderr >&2",
        ))
        .await;
    plane
        .create(pod(
            "fails",
            &image.tag,
            policy::NEVER,
            "echo failing; exit 3",
        ))
        .await;

    let s = plane.wait_phase("ok", phase::SUCCEEDED).await;
    let t = terminated(&s);
    assert_eq!((t.exit_code, t.reason.as_str()), (0, "Completed"), "{s:#?}");
    assert!(
        t.container_id.starts_with("docker://"),
        "{}",
        t.container_id
    );
    let logs = plane.logs("ok").await.expect("logs");
    assert!(logs.contains("hello from docker\n"), "{logs:?}");
    assert!(logs.contains("on stderr\n"), "{logs:?}");

    let s = plane.wait_phase("fails", phase::FAILED).await;
    let t = terminated(&s);
    assert_eq!((t.exit_code, t.reason.as_str()), (3, "Error"), "{s:#?}");
    assert_eq!(plane.logs("fails").await.expect("logs"), "failing\n");
}

#[tokio::test]
async fn a_missing_image_is_err_image_pull_then_image_pull_back_off_with_the_engines_message() {
    if !docker_ready().await {
        return;
    }
    let Some(image) = TestImage::build("pull") else {
        return;
    };
    let plane = Plane::start().await;
    let missing = "bosun.invalid/no-such-image:1";
    let engine_says = engine_pull_message(missing);
    // Always pulls even an image that is present: with no registry, that fails too.
    let local_always = engine_pull_message(&image.tag);
    let watch = Recording::start(plane.client(), Kind::Pod, &Selector::namespace("default")).await;
    plane
        .create(pod("missing", missing, policy::IF_NOT_PRESENT, "true"))
        .await;
    plane
        .create(pod("always", &image.tag, policy::ALWAYS, "true"))
        .await;

    // Every waiting state each pod went through, in order; a phase other than Pending ends
    // the wait at once (and fails below).
    let seen = wait_for(
        "ErrImagePull → ImagePullBackOff → ErrImagePull for both pods",
        WAIT,
        || async {
            let history = pull_history(&watch.events());
            if pulled_twice(&history.waiting) || !history.not_pending.is_empty() {
                Ok(history)
            } else {
                Err(format!("{:#?}", history.waiting))
            }
        },
    )
    .await;
    assert!(
        seen.not_pending.is_empty(),
        "a pod whose image cannot be pulled stays Pending: {:?}",
        seen.not_pending
    );
    let seen = seen.waiting;
    for (name, image, engine_says) in [
        ("missing", missing, &engine_says),
        ("always", image.tag.as_str(), &local_always),
    ] {
        for w in &seen[name] {
            match w.reason.as_str() {
                "ErrImagePull" => assert_eq!(&w.message, engine_says, "{name}"),
                "ImagePullBackOff" => assert_eq!(
                    w.message,
                    format!("Back-off pulling image {image:?}: ErrImagePull: {engine_says}"),
                    "{name}"
                ),
                other => panic!("{name}: unexpected waiting reason {other}: {w:?}"),
            }
        }
    }
    // No container was ever created for them.
    for name in ["missing", "always"] {
        let uid = plane
            .pod(name)
            .await
            .and_then(|p| p.metadata)
            .map(|m| m.uid);
        assert_eq!(
            containers_of(&uid.unwrap_or_default()),
            Vec::<String>::new()
        );
    }
}

#[tokio::test]
async fn never_on_a_missing_image_is_err_image_never_pull() {
    if !docker_ready().await {
        return;
    }
    let plane = Plane::start().await;
    let missing = "bosun.invalid/no-such-image:never";
    plane
        .create(pod("never", missing, policy::NEVER, "true"))
        .await;
    // bosun fails the pod at once (the kubelet would keep it Pending): a Job sees it fail.
    let s = plane.wait_phase("never", phase::FAILED).await;
    let w = main_status(&s)
        .state
        .and_then(|st| st.waiting)
        .unwrap_or_else(|| panic!("container main is not waiting: {s:#?}"));
    assert_eq!(w.reason, "ErrImageNeverPull");
    assert_eq!(
        w.message,
        format!("Container image {missing:?} is not present with pull policy of Never")
    );
    assert_eq!(s.reason, "ErrImageNeverPull");
}

#[tokio::test]
async fn a_deleted_pod_gets_sigterm_then_sigkill_after_its_grace_period_and_its_container_is_removed()
 {
    if !docker_ready().await {
        return;
    }
    let Some(image) = TestImage::build("stop") else {
        return;
    };
    let plane = Plane::start().await;
    let out = temp_dir("docker-stop-out");
    // Both record the SIGTERM in a hostPath file; `quits` exits on it, `stays` does not.
    let script = |name: &str, exit: &str| {
        format!(
            "trap 'echo TERM >> /out/{name}{exit}' TERM; echo up; while true; do sleep 0.2; done"
        )
    };
    for (name, exit) in [("quits", "; exit 143"), ("stays", "")] {
        let mut p = pod(name, &image.tag, "", &script(name, exit));
        mount_out(&mut p, &out);
        plane.create(p).await;
    }
    let mut uids = Vec::new();
    for name in ["quits", "stays"] {
        plane.wait_phase(name, phase::RUNNING).await;
        plane.wait_logs(name, "up\n").await;
        let uid = plane
            .pod(name)
            .await
            .and_then(|p| p.metadata)
            .map(|m| m.uid);
        let uid = uid.expect("uid");
        assert_eq!(containers_of(&uid).len(), 1, "{name} has its container");
        uids.push(uid);
    }

    let grace = Duration::from_secs(3);
    let mut took = Vec::new();
    for name in ["quits", "stays"] {
        let started = Instant::now();
        let opts = DeleteOptions {
            grace_period_seconds: Some(grace.as_secs() as i64),
            ..Default::default()
        };
        plane
            .client()
            .delete(Kind::Pod, "default", name, opts)
            .await
            .expect("delete");
        wait_for(&format!("pod {name} gone"), WAIT, || async {
            match plane.pod(name).await {
                None => Ok(()),
                Some(p) => Err(format!("{:#?}", p.status)),
            }
        })
        .await;
        took.push(started.elapsed());
    }
    assert!(
        took[0] < grace,
        "a container that exits on SIGTERM is not kept for the grace period ({:?})",
        took[0]
    );
    assert!(
        took[1] >= grace,
        "a container that ignores SIGTERM runs until its grace period ends ({:?})",
        took[1]
    );
    for name in ["quits", "stays"] {
        let term = std::fs::read_to_string(out.join(name)).unwrap_or_default();
        assert!(
            term.starts_with("TERM\n"),
            "{name} got SIGTERM first: {term:?}"
        );
    }
    for uid in &uids {
        assert_eq!(containers_of(uid), Vec::<String>::new(), "removed");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test]
async fn a_restarted_agent_re_adopts_its_running_container_and_copies_the_rest_of_its_output_once()
{
    if !docker_ready().await {
        return;
    }
    let Some(image) = TestImage::build("adopt") else {
        return;
    };
    let mut plane = Plane::start().await;
    let out = temp_dir("docker-adopt-out");
    // It prints, then waits for the test's go-ahead, prints again and exits 4.
    let script = "echo before; while [ ! -e /out/go ]; do sleep 0.1; done; echo after; exit 4";
    let mut p = pod("long", &image.tag, "", script);
    mount_out(&mut p, &out);
    plane.create(p).await;
    let s = plane.wait_phase("long", phase::RUNNING).await;
    let first_id = main_status(&s).container_id;
    plane.wait_logs("long", "before\n").await;

    plane.restart_agent().await;
    std::fs::write(out.join("go"), "").expect("go");

    let s = plane.wait_phase("long", phase::FAILED).await;
    let main = main_status(&s);
    assert_eq!(
        main.container_id, first_id,
        "the same container, not a second one"
    );
    assert_eq!(main.restart_count, 0);
    assert_eq!(terminated(&s).exit_code, 4, "{s:#?}");
    assert_eq!(
        plane.logs("long").await.expect("logs"),
        "before\nafter\n",
        "the output after the restart is copied, and what was copied is not repeated"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test]
async fn a_log_past_its_cap_is_rotated_and_logs_show_the_latest_output_in_order() {
    if !docker_ready().await {
        return;
    }
    let Some(image) = TestImage::build("chatty") else {
        return;
    };
    let plane = Plane::start().await;
    let script = "i=0; while [ $i -lt 1000 ]; do echo line-$i; i=$((i+1)); done; echo line-end";
    plane.create(pod("chatty", &image.tag, "", script)).await;
    plane.wait_phase("chatty", phase::SUCCEEDED).await;
    let full: String = (0..1000)
        .map(|i| format!("line-{i}\n"))
        .chain(["line-end\n".to_string()])
        .collect();
    let logs = plane.logs("chatty").await.expect("logs");
    assert!(
        (logs.len() as u64) < full.len() as u64 && logs.len() as u64 >= LOG_CAP / 2,
        "between one and two caps of output are kept: {} bytes",
        logs.len()
    );
    assert!(
        full.ends_with(&logs) && logs.starts_with("line-"),
        "the kept output is the latest, whole and in order: {logs:?}"
    );
    let uid = plane
        .pod("chatty")
        .await
        .and_then(|p| p.metadata)
        .map(|m| m.uid);
    let rotated = plane
        .node_dir(NODE)
        .join("pods")
        .join(uid.unwrap_or_default())
        .join("main/current.log.1");
    assert!(rotated.exists(), "{} exists", rotated.display());
}
