//! The `process` runtime: each container's `command` + `args` as a local process.
//!
//! Every instance runs under a tiny `sh` shim, in its own process group, detached from the
//! agent's lifetime: the shim writes the exit code to `exit_code` when the command ends, the
//! agent writes the shim's pid to `pid`, both under
//! `<data-dir>/pods/<pod-uid>/<container>/`. A restarted agent re-adopts a live pid (or reads
//! the exit code of one that finished meanwhile) instead of starting a second copy.
//!
//! An agent run by `bosun up` ([`ProcessRuntime::dying_with_agent`]) ties its pods to its
//! own life instead: a [`Lifeline`] watcher kills every pod's process group once the agent's
//! process is gone, however it ended (see `bosun_runtime::lifeline` for why a watcher and
//! not the parent-death signal, which would reach the shim but not the group).
//!
//! hostPath volumes are not mounted anywhere: the process sees them at their host path
//! (and in `BOSUN_VOLUME_<NAME>`). Output (stdout and stderr) is appended to
//! `current.log`, truncated when it grows past the cap; a restart moves it to `previous.log`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bosun_runtime::lifeline::{Lifeline, LifelineError};
use futures::future::BoxFuture;
use std::os::unix::process::CommandExt as _;

use super::{
    ContainerSpec, Instance, LogPaths, Refusal, Runtime, RuntimeError, container_dir, dir_log_paths,
};

/// The shim: `$0` is the exit-code file, `"$@"` the command. Trapping TERM (with a handler,
/// which exec resets, unlike an ignore) keeps the shim alive to record the exit code when
/// the whole process group is sent SIGTERM.
const SHIM: &str = r#"trap true TERM; "$@"; c=$?; echo $c > "$0.tmp" && mv "$0.tmp" "$0""#;

/// How often a waiter looks at the exit-code file.
const POLL: Duration = Duration::from_millis(50);

/// The lifeline's script, `$1` the data directory: SIGKILL to the process group of every
/// container still running (a `pid` file and no `exit_code`), but only while that pid is
/// still its shim (the shim's command line names the container's exit-code file), never a
/// process that reused the number.
const KILL_PODS: &str = r#"root=${1%/}
for f in "$root"/pods/*/*/pid; do
  [ -f "$f" ] || continue
  d=${f%/pid}
  [ -f "$d/exit_code" ] && continue
  p=$(cat "$f")
  tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$d/exit_code" || continue
  kill -KILL "-$p" 2>/dev/null
done"#;

/// Runs containers as local processes.
pub struct ProcessRuntime {
    data_dir: PathBuf,
    log_max_bytes: u64,
    /// Set when the pods die with the agent: fires (kills them) when this process ends or
    /// the runtime is dropped.
    lifeline: Option<Lifeline>,
}

impl ProcessRuntime {
    /// A runtime keeping its files under `data_dir`; its pods outlive the agent.
    pub fn new(data_dir: PathBuf, log_max_bytes: u64) -> ProcessRuntime {
        ProcessRuntime {
            data_dir,
            log_max_bytes,
            lifeline: None,
        }
    }

    /// This runtime, with every pod process group killed once the agent's process is gone
    /// (or the runtime dropped): `--pods-die-with-agent`, what `bosun up` runs.
    pub fn dying_with_agent(mut self) -> Result<ProcessRuntime, LifelineError> {
        self.lifeline = Some(Lifeline::spawn(
            "the pods of this node agent",
            KILL_PODS,
            [self.data_dir.as_os_str()],
        )?);
        Ok(self)
    }

    fn dir(&self, spec: &ContainerSpec) -> PathBuf {
        container_dir(&self.data_dir, &spec.pod_uid, &spec.name)
    }

    fn spawn(&self, spec: &ContainerSpec) -> Result<Arc<dyn Instance>, RuntimeError> {
        let dir = self.dir(spec);
        let io = |source| RuntimeError::Prepare {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let logs = dir_log_paths(&dir);
        if logs.current.exists() {
            std::fs::rename(&logs.current, &logs.previous).map_err(io)?;
        }
        let _ = std::fs::remove_file(&logs.rotated);
        let _ = std::fs::remove_file(dir.join("exit_code"));
        let _ = std::fs::remove_file(dir.join("pid"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&logs.current)
            .map_err(io)?;
        let log_err = log.try_clone().map_err(io)?;

        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(SHIM)
            .arg(dir.join("exit_code"))
            .args(&spec.command)
            .args(&spec.args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: the agent signals the whole tree, and a Ctrl-C meant
            // for the agent does not reach it.
            .process_group(0);
        if !spec.working_dir.is_empty() {
            cmd.current_dir(&spec.working_dir);
        }
        let child = cmd
            .spawn()
            .map_err(|e| RuntimeError::Start(format!("{}: {e}", spec.command.join(" "))))?;
        let pid = child.id();
        std::fs::write(dir.join("pid"), pid.to_string()).map_err(io)?;
        // The child is reaped by a thread so no zombie is left; the exit code file is the
        // source of truth (it survives an agent restart, the Child does not).
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        Ok(Arc::new(ProcessInstance {
            pid,
            dir,
            log: logs,
            log_max_bytes: self.log_max_bytes,
        }))
    }
}

impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn check<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async move {
            if spec.command.is_empty() {
                return Err(Refusal {
                    reason: "NoCommand".into(),
                    message: format!(
                        "container {:?} has no command: the process runtime runs `command` \
                         (+ `args`) as a local process, so add one, or use the docker runtime",
                        spec.name
                    ),
                });
            }
            Ok(())
        })
    }

    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Instance>, RuntimeError>> {
        Box::pin(async move { self.spawn(spec) })
    }

    fn adopt<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Option<Arc<dyn Instance>>> {
        Box::pin(async move {
            let dir = self.dir(spec);
            let pid: u32 = std::fs::read_to_string(dir.join("pid"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let inst = ProcessInstance {
                pid,
                log: dir_log_paths(&dir),
                dir,
                log_max_bytes: self.log_max_bytes,
            };
            Some(Arc::new(inst) as Arc<dyn Instance>)
        })
    }

    fn log_paths(&self, pod_uid: &str, container: &str) -> LogPaths {
        dir_log_paths(&container_dir(&self.data_dir, pod_uid, container))
    }

    fn cleanup<'a>(&'a self, pod_uid: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = tokio::fs::remove_dir_all(self.data_dir.join("pods").join(pod_uid)).await;
        })
    }
}

/// One shim process and its files.
struct ProcessInstance {
    pid: u32,
    dir: PathBuf,
    log: LogPaths,
    log_max_bytes: u64,
}

/// Whether `pid` is a live (not zombie) process.
pub use bosun_runtime::lifeline::alive;

fn read_exit_code(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("exit_code"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sends `signal` to the process group `pgid` (the shim is its leader).
async fn kill_group(pgid: u32, signal: &str) {
    let _ = tokio::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
}

impl Instance for ProcessInstance {
    fn id(&self) -> String {
        format!("process://{}", self.pid)
    }

    fn wait(&self) -> BoxFuture<'_, i32> {
        Box::pin(async move {
            let mut ticks: u32 = 0;
            loop {
                if let Some(code) = read_exit_code(&self.dir) {
                    return code;
                }
                if !alive(self.pid) {
                    // The shim may have just written the file; else it was killed (SIGKILL).
                    return read_exit_code(&self.dir).unwrap_or(137);
                }
                ticks = ticks.wrapping_add(1);
                if ticks.is_multiple_of(20) {
                    self.bound_log();
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }

    fn stop(&self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !alive(self.pid) {
                return;
            }
            kill_group(self.pid, "TERM").await;
            let deadline = tokio::time::Instant::now() + grace;
            while tokio::time::Instant::now() < deadline {
                if read_exit_code(&self.dir).is_some() || !alive(self.pid) {
                    return;
                }
                tokio::time::sleep(POLL).await;
            }
            kill_group(self.pid, "KILL").await;
        })
    }
}

impl ProcessInstance {
    /// Rotates the log once it passes the cap: its content becomes `current.log.1`
    /// (replacing the older one) and it starts over at 0 (the writer appends). `bosun logs`
    /// reads both, so a capped container keeps between one and two caps of its latest output.
    fn bound_log(&self) {
        if let Ok(meta) = std::fs::metadata(&self.log.current)
            && meta.len() > self.log_max_bytes
            && std::fs::copy(&self.log.current, &self.log.rotated).is_ok()
            && let Ok(f) = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.log.current)
        {
            let _ = f.set_len(0);
            tracing::info!(log = %self.log.current.display(), "container log passed its cap: rotated");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bosun-process-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A container whose shim starts a command that itself starts a grandchild: the whole
    /// group must go, not just the shim.
    fn spec(uid: &str) -> ContainerSpec {
        ContainerSpec {
            pod_uid: uid.into(),
            pod_key: "default/p".into(),
            name: "main".into(),
            command: vec!["sh".into(), "-c".into()],
            args: vec!["sleep 3600 & sleep 3600".into()],
            ..Default::default()
        }
    }

    use bosun_runtime::procfs::group_members;

    /// Waits up to 10 s for `done`.
    async fn within_10s(mut done: impl FnMut() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        done()
    }

    fn pgid_of(inst: &Arc<dyn Instance>) -> u32 {
        inst.id().trim_start_matches("process://").parse().unwrap()
    }

    #[tokio::test]
    async fn pods_of_an_agent_that_dies_with_them_are_killed_group_and_all() {
        let dir = temp_dir("dies");
        let runtime = ProcessRuntime::new(dir.clone(), 1 << 20)
            .dying_with_agent()
            .unwrap();
        let inst = runtime.start(&spec("uid-1")).await.unwrap();
        let pgid = pgid_of(&inst);
        assert!(
            within_10s(|| group_members(pgid).len() >= 3).await,
            "the pod never started"
        );
        // What the kernel does when the agent's process dies: the lifeline's pipe closes.
        drop(runtime);
        assert!(
            within_10s(|| group_members(pgid).is_empty()).await,
            "left running: {:?}",
            group_members(pgid)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn pods_of_a_standalone_agent_outlive_it() {
        let dir = temp_dir("outlive");
        let runtime = ProcessRuntime::new(dir.clone(), 1 << 20);
        let inst = runtime.start(&spec("uid-2")).await.unwrap();
        let pgid = pgid_of(&inst);
        assert!(
            within_10s(|| group_members(pgid).len() >= 3).await,
            "the pod never started"
        );
        drop(runtime);
        // A restarted agent re-adopts it; it still runs, and stops when asked.
        let again = ProcessRuntime::new(dir.clone(), 1 << 20);
        let adopted = again.adopt(&spec("uid-2")).await.expect("adopted");
        assert_eq!(pgid_of(&adopted), pgid);
        assert!(!group_members(pgid).is_empty());
        adopted.stop(Duration::from_secs(5)).await;
        assert!(within_10s(|| group_members(pgid).is_empty()).await);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
