//! The `process` runtime: each container's `command` + `args` as a local process.
//!
//! Every instance runs under a tiny `sh` shim, in its own process group, detached from the
//! agent's lifetime: the shim writes the exit code to `exit_code` when the command ends, the
//! agent writes the shim's pid to `pid`, both under
//! `<data-dir>/pods/<pod-uid>/<container>/`. A restarted agent re-adopts a live pid (or reads
//! the exit code of one that finished meanwhile) instead of starting a second copy.
//!
//! hostPath volumes are not mounted anywhere: the process sees them at their host path
//! (and in `BOSUN_VOLUME_<NAME>`). Output (stdout and stderr) is appended to
//! `current.log`, truncated when it grows past the cap; a restart moves it to `previous.log`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// Runs containers as local processes.
pub struct ProcessRuntime {
    data_dir: PathBuf,
    log_max_bytes: u64,
}

impl ProcessRuntime {
    /// A runtime keeping its files under `data_dir`.
    pub fn new(data_dir: PathBuf, log_max_bytes: u64) -> ProcessRuntime {
        ProcessRuntime {
            data_dir,
            log_max_bytes,
        }
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
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the `(comm)` field.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

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
