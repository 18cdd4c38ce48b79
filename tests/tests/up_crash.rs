//! `bosun up` leaves nothing running behind it, however it ends: the real binary runs a pod
//! (`sleep 3600`) on one local node and is killed with SIGKILL; its etcd and every process of
//! the pod's process group must be gone within a deadline, and a second `up` on the same data
//! folder and the same ports must start and run pods. A second `up` while the first still
//! runs must say which process to stop. When even the watchers that clean up after `up` are
//! killed with it, the next `up` stops the etcd the dead one recorded and takes over its pods.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_api::v1::Kind;
use bosun_api::vocab::phase;
use bosun_runtime::client::Broker;
use bosun_runtime::procfs::{self, alive, group_members};
use bosun_tests::{bosun_binary, free_addr, temp_dir, wait_for};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

/// The four addresses one `up` listens on.
#[derive(Debug, Clone, Copy)]
struct Ports {
    broker: SocketAddr,
    etcd_client: SocketAddr,
    etcd_peer: SocketAddr,
    metrics: SocketAddr,
}

impl Ports {
    fn free() -> Ports {
        Ports {
            broker: free_addr(),
            etcd_client: free_addr(),
            etcd_peer: free_addr(),
            metrics: free_addr(),
        }
    }
}

/// A running `bosun up` and what it printed so far.
struct Up {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

impl Up {
    fn start(dir: &Path, ports: Ports, manifest: &Path) -> Up {
        let mut cmd = Command::new(bosun_binary());
        for var in [
            "BOSUN_SERVER",
            "BOSUN_LISTEN",
            "BOSUN_DATA_DIR",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("RUST_LOG", "warn")
            .arg("up")
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(ports.broker.to_string())
            .arg("--etcd-client")
            .arg(ports.etcd_client.to_string())
            .arg("--etcd-peer")
            .arg(ports.etcd_peer.to_string())
            .arg("--metrics-listen")
            .arg(ports.metrics.to_string())
            .args(["--nodes", "1", "-f"])
            .arg(manifest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("bosun up runs");
        let out = collect(child.stdout.take().expect("piped"));
        let err = collect(child.stderr.take().expect("piped"));
        Up { child, out, err }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    fn printed(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.out.lock().unwrap(),
            self.err.lock().unwrap()
        )
    }

    /// Waits for the banner `up` prints once everything answers; panics at once if `up`
    /// exits first.
    async fn wait_ready(&mut self) {
        let exited = wait_for(
            "bosun up's banner (\"Ctrl-C stops\")",
            Duration::from_secs(90),
            || {
                // `Ok(Some(status))`: up exited before its banner, nothing more to wait for.
                let seen = if self.out.lock().unwrap().contains("Ctrl-C stops") {
                    Ok(None)
                } else if let Ok(Some(status)) = self.child.try_wait() {
                    Ok(Some(status))
                } else {
                    Err(self.printed())
                };
                async move { seen }
            },
        )
        .await;
        if let Some(status) = exited {
            panic!(
                "bosun up exited ({status}) before it was up;\n{}",
                self.printed()
            );
        }
    }
}

/// Collects everything `pipe` says, in the background.
fn collect(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    text
}

/// A pod manifest running `command` once (restartPolicy Never).
fn pod_manifest(dir: &Path, name: &str, command: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  containers:\n    - name: main\n      image: busybox\n      command: [\"sh\", \"-c\", \"{command}\"]\n"
        ),
    )
    .expect("manifest written");
    path
}

/// Every live process, with its `/proc/<pid>/stat` fields after `(comm)`.
fn processes() -> Vec<(u32, Vec<String>)> {
    procfs::pids()
        .into_iter()
        .filter(|&pid| procfs::alive(pid))
        .filter_map(|pid| Some((pid, procfs::stat_fields(pid)?)))
        .collect()
}

/// The etcd child of `parent`.
fn etcd_of(parent: u32) -> Option<u32> {
    processes().into_iter().find_map(|(pid, f)| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (f[1] == parent.to_string() && comm.trim() == "etcd").then_some(pid)
    })
}

/// The process group of the one running container under `dir`'s local nodes (its shim's
/// pid, recorded by the process runtime).
fn pod_group(dir: &Path) -> Option<u32> {
    let nodes = std::fs::read_dir(dir.join("nodes")).ok()?;
    for node in nodes.flatten() {
        for pod in std::fs::read_dir(node.path().join("pods")).ok()?.flatten() {
            let pid = std::fs::read_to_string(pod.path().join("main").join("pid"));
            if let Ok(pid) = pid {
                return pid.trim().parse().ok();
            }
        }
    }
    None
}

/// The lifeline watchers `parent` started (`sh` processes named `bosun-lifeline (...)`).
fn lifelines_of(parent: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(pid, f)| {
            f[1] == parent.to_string()
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("bosun-lifeline"))
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// Sends `signal` to `pid`.
fn signal(signal: &str, pid: u32) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Starts `up` with a `sleep 3600` pod and waits until it runs; returns `up`, its etcd's pid
/// and the pod's process group.
async fn up_with_a_sleeping_pod(dir: &Path, data: &Path, ports: Ports) -> (Up, u32, u32) {
    let sleeper = pod_manifest(dir, "sleeper", "sleep 3600");
    let broker = format!("http://{}", ports.broker);
    let mut up = Up::start(data, ports, &sleeper);
    up.wait_ready().await;
    wait_phase(&broker, "sleeper", phase::RUNNING).await;
    let etcd = etcd_of(up.pid()).expect("up runs etcd as its child");
    let pgid = pod_group(data).expect("the pod's shim pid is recorded");
    assert!(!group_members(pgid).is_empty(), "the pod's processes run");
    (up, etcd, pgid)
}

/// Stops `up` with SIGTERM; it must exit 0 within 30 s.
async fn terminate(mut up: Up) {
    signal("TERM", up.pid());
    let status = tokio::time::timeout(Duration::from_secs(30), up.child.wait())
        .await
        .unwrap_or_else(|_| panic!("bosun up ignored SIGTERM;\n{}", up.printed()))
        .expect("reaped");
    assert!(status.success(), "{status};\n{}", up.printed());
}

async fn pod_phase(broker: &str, name: &str) -> Option<String> {
    let client = Broker::connect(broker).await.ok()?;
    let pod = client.get_opt(Kind::Pod, "default", name).await.ok()??;
    Some(pod.into_pod()?.status?.phase)
}

/// Waits (60 s) until pod `name` is in phase `want`, as the broker at `broker` says.
async fn wait_phase(broker: &str, name: &str, want: &str) {
    wait_for(
        &format!("pod {name} {want}"),
        Duration::from_secs(60),
        || async {
            match pod_phase(broker, name).await {
                Some(phase) if phase == want => Ok(()),
                other => Err(format!("phase {other:?}")),
            }
        },
    )
    .await
}

/// Waits (20 s) until process `pid` (`what`) has ended.
async fn wait_dead(what: &str, pid: u32) {
    wait_for(
        &format!("{what} (pid {pid}) to end"),
        Duration::from_secs(20),
        || async {
            if alive(pid) {
                Err(format!("pid {pid} alive"))
            } else {
                Ok(())
            }
        },
    )
    .await
}

/// Waits (20 s) until no process of group `pgid` (the pod's) is left.
async fn wait_group_gone(pgid: u32) {
    wait_for(
        &format!("every process of the pod's group {pgid} to end"),
        Duration::from_secs(20),
        || async {
            match group_members(pgid) {
                left if left.is_empty() => Ok(()),
                left => Err(format!("still running: {left:?}")),
            }
        },
    )
    .await
}

/// Kills what a failed run left behind, so a failing test does not leak processes.
struct Leftovers(Vec<u32>, Vec<u32>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        for pgid in &self.1 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
        }
    }
}

#[tokio::test]
async fn nothing_outlives_a_killed_up_and_the_next_up_takes_over() {
    let dir = temp_dir("up-crash");
    let data = dir.join("data");
    let ports = Ports::free();
    let broker = format!("http://{}", ports.broker);
    let (mut first, etcd, pgid) = up_with_a_sleeping_pod(&dir, &data, ports).await;
    let up_pid = first.pid();
    let _leftovers = Leftovers(vec![etcd], vec![pgid]);

    // While it runs, a second `up` on the same folder names it and how to stop it.
    let second = Command::new(bosun_binary())
        .arg("up")
        .arg("--data-dir")
        .arg(&data)
        .args(["--nodes", "0"])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("bosun up runs");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{said}");
    assert!(
        said.contains(&format!("already running as pid {up_pid}"))
            && said.contains(&format!("kill {up_pid}")),
        "{said}"
    );

    // kill -9: no chance to clean up.
    first.child.start_kill().expect("SIGKILL");
    first.child.wait().await.expect("reaped");
    wait_dead("the killed up's etcd", etcd).await;
    wait_group_gone(pgid).await;
    wait_for(
        &format!("etcd's client port {} free", ports.etcd_client),
        Duration::from_secs(20),
        || async { std::net::TcpListener::bind(ports.etcd_client).map(drop) },
    )
    .await;

    // The next `up`, same folder, same ports, starts and runs pods.
    let hello = pod_manifest(&dir, "hello", "echo hello");
    let mut next = Up::start(&data, ports, &hello);
    next.wait_ready().await;
    wait_phase(&broker, "hello", phase::SUCCEEDED).await;
    let next_etcd = etcd_of(next.pid()).expect("the next up runs etcd");

    // SIGTERM stops everything and exits 0.
    terminate(next).await;
    wait_dead("the next up's etcd", next_etcd).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn when_its_watchers_die_too_the_next_up_stops_what_the_dead_one_left() {
    let dir = temp_dir("up-takeover");
    let data = dir.join("data");
    let ports = Ports::free();
    let broker = format!("http://{}", ports.broker);
    let (mut first, etcd, pgid) = up_with_a_sleeping_pod(&dir, &data, ports).await;
    let _leftovers = Leftovers(vec![etcd], vec![pgid]);

    // Everything that could clean up dies at once: the watchers first, then `up`.
    let watchers = lifelines_of(first.pid());
    assert!(
        watchers.len() >= 2,
        "etcd's and the node's lifelines: {watchers:?}"
    );
    for pid in watchers {
        signal("KILL", pid);
    }
    first.child.start_kill().expect("SIGKILL");
    first.child.wait().await.expect("reaped");
    assert!(
        alive(etcd),
        "etcd is left running (the case to take over from)"
    );

    // The next `up` on the folder stops that etcd, starts its own on the same ports, and
    // re-adopts the pod, which then stops with it.
    let hello = pod_manifest(&dir, "hello", "echo hello");
    let mut next = Up::start(&data, ports, &hello);
    next.wait_ready().await;
    assert!(!alive(etcd), "the leftover etcd still runs");
    assert!(
        next.printed()
            .contains(&format!("stopped the etcd it left running (pid {etcd})")),
        "{}",
        next.printed()
    );
    wait_phase(&broker, "hello", phase::SUCCEEDED).await;
    terminate(next).await;
    wait_group_gone(pgid).await;
    let _ = std::fs::remove_dir_all(&dir);
}
