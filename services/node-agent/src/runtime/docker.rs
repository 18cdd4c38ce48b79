//! The `docker` runtime, through the `docker` CLI: images must already be present
//! (`docker image inspect`, else the pod fails with ErrImageNeverPull), `docker run -d`
//! with env, command, args and hostPath binds, `docker wait`, `docker stop`, `docker rm -f`.
//! Output is copied by `docker logs -f` into the same log files the process runtime uses,
//! so the Logs server reads both alike.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::process::Command;

use super::{
    ContainerSpec, Instance, LogPaths, Refusal, Runtime, RuntimeError, container_dir, dir_log_paths,
};

/// The label naming the pod uid on every container bosun starts.
const UID_LABEL: &str = "bosun.dev/pod-uid";
/// The label naming the container.
const NAME_LABEL: &str = "bosun.dev/container";

/// Runs containers with the docker CLI.
pub struct DockerRuntime {
    data_dir: PathBuf,
}

impl DockerRuntime {
    /// A runtime keeping its log files under `data_dir`.
    pub fn new(data_dir: PathBuf) -> DockerRuntime {
        DockerRuntime { data_dir }
    }

    /// Whether a docker engine answers (`docker info`); the error says why not.
    pub async fn reachable() -> Result<(), String> {
        let out = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .await
            .map_err(|e| format!("cannot run docker: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// `docker logs -f` appending into the instance's log file.
    fn copy_logs(&self, spec: &ContainerSpec, id: &str) -> Result<(), RuntimeError> {
        let dir = container_dir(&self.data_dir, &spec.pod_uid, &spec.name);
        let io = |source| RuntimeError::Prepare {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let logs = dir_log_paths(&dir);
        if logs.current.exists() {
            std::fs::rename(&logs.current, &logs.previous).map_err(io)?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&logs.current)
            .map_err(io)?;
        let log_err = log.try_clone().map_err(io)?;
        let mut child = Command::new("docker")
            .args(["logs", "-f", id])
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| RuntimeError::Start(format!("docker logs: {e}")))?;
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }
}

/// Runs `docker args...`, returning trimmed stdout or stderr as the error.
async fn docker(args: &[String]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The `docker run` arguments for `spec` (pure, tested).
pub fn run_args(spec: &ContainerSpec) -> Vec<String> {
    let mut a: Vec<String> = vec!["run".into(), "-d".into()];
    a.push(format!("--label={UID_LABEL}={}", spec.pod_uid));
    a.push(format!("--label={NAME_LABEL}={}", spec.name));
    for (k, v) in &spec.env {
        a.push("-e".into());
        a.push(format!("{k}={v}"));
    }
    for b in &spec.binds {
        a.push("-v".into());
        let ro = if b.read_only { ":ro" } else { "" };
        a.push(format!("{}:{}{ro}", b.host_path, b.mount_path));
    }
    if !spec.working_dir.is_empty() {
        a.push("-w".into());
        a.push(spec.working_dir.clone());
    }
    if let Some(entry) = spec.command.first() {
        a.push("--entrypoint".into());
        a.push(entry.clone());
    }
    a.push(spec.image.clone());
    a.extend(spec.command.iter().skip(1).cloned());
    a.extend(spec.args.iter().cloned());
    a
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn check<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async move {
            let args = vec!["image".into(), "inspect".into(), spec.image.clone()];
            docker(&args).await.map(|_| ()).map_err(|_| Refusal {
                reason: "ErrImageNeverPull".into(),
                message: format!(
                    "Container image \"{}\" is not present with pull policy of Never \
                     (bosun's docker runtime does not pull: `docker pull {}` on the node)",
                    spec.image, spec.image
                ),
            })
        })
    }

    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Instance>, RuntimeError>> {
        Box::pin(async move {
            let id = docker(&run_args(spec)).await.map_err(RuntimeError::Start)?;
            self.copy_logs(spec, &id)?;
            Ok(Arc::new(DockerInstance { id }) as Arc<dyn Instance>)
        })
    }

    fn adopt<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Option<Arc<dyn Instance>>> {
        Box::pin(async move {
            let args: Vec<String> = vec![
                "ps".into(),
                "-aq".into(),
                "--latest".into(),
                format!("--filter=label={UID_LABEL}={}", spec.pod_uid),
                format!("--filter=label={NAME_LABEL}={}", spec.name),
            ];
            let id = docker(&args).await.ok().filter(|id| !id.is_empty())?;
            Some(Arc::new(DockerInstance { id }) as Arc<dyn Instance>)
        })
    }

    fn log_paths(&self, pod_uid: &str, container: &str) -> LogPaths {
        dir_log_paths(&container_dir(&self.data_dir, pod_uid, container))
    }

    fn cleanup<'a>(&'a self, pod_uid: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let args: Vec<String> = vec![
                "ps".into(),
                "-aq".into(),
                format!("--filter=label={UID_LABEL}={pod_uid}"),
            ];
            if let Ok(ids) = docker(&args).await {
                let mut rm: Vec<String> = vec!["rm".into(), "-f".into()];
                rm.extend(ids.lines().map(str::to_string));
                if rm.len() > 2 {
                    let _ = docker(&rm).await;
                }
            }
            let _ = tokio::fs::remove_dir_all(self.data_dir.join("pods").join(pod_uid)).await;
        })
    }
}

struct DockerInstance {
    id: String,
}

impl Instance for DockerInstance {
    fn id(&self) -> String {
        format!("docker://{}", self.id)
    }

    fn wait(&self) -> BoxFuture<'_, i32> {
        Box::pin(async move {
            match docker(&["wait".into(), self.id.clone()]).await {
                Ok(code) => code.parse().unwrap_or(1),
                Err(err) => {
                    tracing::warn!(id = %self.id, %err, "docker wait failed");
                    137
                }
            }
        })
    }

    fn stop(&self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let t = format!("--time={}", grace.as_secs());
            let _ = docker(&["stop".into(), t, self.id.clone()]).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Bind;

    #[test]
    fn run_arguments_carry_env_binds_entrypoint_and_args() {
        let spec = ContainerSpec {
            pod_uid: "u".into(),
            name: "c".into(),
            image: "busybox".into(),
            command: vec!["sh".into(), "-c".into()],
            args: vec!["echo hi".into()],
            env: vec![("A".into(), "1".into())],
            binds: vec![Bind {
                volume: "v".into(),
                host_path: "/h".into(),
                mount_path: "/m".into(),
                read_only: true,
            }],
            ..Default::default()
        };
        let a = run_args(&spec);
        let tail: Vec<&str> = a.iter().rev().take(4).rev().map(String::as_str).collect();
        assert_eq!(tail, ["sh", "busybox", "-c", "echo hi"]);
        assert!(a.windows(2).any(|w| w[0] == "-e" && w[1] == "A=1"));
        assert!(a.windows(2).any(|w| w[0] == "-v" && w[1] == "/h:/m:ro"));
    }
}
