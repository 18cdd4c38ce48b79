//! The `docker` runtime, through the Docker Engine API ([`bollard`], over the unix socket:
//! `DOCKER_HOST=unix://…` or `/var/run/docker.sock`).
//!
//! Starting a container: its image is looked up and pulled per `imagePullPolicy` (the
//! decisions, back-off and waiting reasons are in [`super::image`]; a failed pull is
//! [`RuntimeError::Waiting`] with `ErrImagePull`, then `ImagePullBackOff`), the previous
//! instances of the same container are removed, a new one is created (env, command as the
//! entrypoint and args as its arguments, as Kubernetes maps them, hostPath binds, working
//! directory, the pod's hostname) and started. Its output is streamed from the engine into
//! the same log files the process runtime writes (`current.log`, rotated past the cap into
//! `current.log.1`, the previous instance's in `previous.log`), so `bosun logs` reads both
//! alike. Waiting gives the exit code (128+n when killed by signal n); stopping sends the
//! container's stop signal (SIGTERM unless the image says otherwise), then SIGKILL after the
//! grace period. Containers carry the pod uid and container name as labels: a restarted
//! agent re-adopts them, and a deleted pod's containers are removed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, KillContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, StopContainerOptions, WaitContainerOptions,
};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::image::{self, PullBackoff, PullPolicy, PullStep};
use super::{
    ContainerSpec, Instance, LogPaths, Refusal, Runtime, RuntimeError, container_dir, dir_log_paths,
};

/// The label naming the pod uid on every container bosun starts.
const UID_LABEL: &str = "bosun.dev/pod-uid";
/// The label naming the container.
const NAME_LABEL: &str = "bosun.dev/container";
/// The label naming the pod (`namespace/name`), for people reading `docker ps`.
const POD_LABEL: &str = "bosun.dev/pod";

/// The engine's socket when `DOCKER_HOST` is unset.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long a finished container's last output may take to reach its log file before its
/// exit is reported anyway.
const LOG_DRAIN: Duration = Duration::from_secs(5);

/// How long the engine may take beyond the grace period to stop a container.
const STOP_SLACK: Duration = Duration::from_secs(30);

/// Runs containers through the Docker Engine API.
pub struct DockerRuntime {
    data_dir: PathBuf,
    log_max_bytes: u64,
    pull_backoff_base: Duration,
    pull_backoff_cap: Duration,
    /// Connected (and API version negotiated) on first use, so an engine that starts after
    /// the agent is found; a failed connection is tried again at the next use.
    engine: OnceCell<Docker>,
    /// The last failed pull per (pod uid, image), as the kubelet keys its back-off.
    pulls: Mutex<HashMap<(String, String), PullBackoff>>,
    /// Cancelled on drop: the log copiers stop with the runtime (an agent stopped and
    /// started again in one process must not copy twice).
    stop: CancellationToken,
}

impl Drop for DockerRuntime {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The engine's address: `DOCKER_HOST`, or the default socket.
fn engine_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

/// Connects to the engine at `DOCKER_HOST` (a unix socket) and negotiates the API version.
async fn connect() -> Result<Docker, String> {
    let host = engine_host();
    if !host.starts_with("unix://") {
        return Err(format!(
            "DOCKER_HOST={host}: bosun's docker runtime reaches the engine through a unix \
             socket only (unix:///path/to/docker.sock)"
        ));
    }
    let docker = Docker::connect_with_unix_defaults()
        .map_err(|e| format!("cannot reach the Docker engine at {host}: {e}"))?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| format!("the Docker engine at {host} does not answer: {e}"))
}

/// The engine's own words for a failed request.
fn engine_message(err: &EngineError) -> String {
    match err {
        EngineError::DockerResponseServerError { message, .. } => message.clone(),
        EngineError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Whether the engine answered 404 (no such image or container).
fn not_found(err: &EngineError) -> bool {
    matches!(
        err,
        EngineError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The container-creation body for `spec` (pure, tested). Kubernetes' mapping: `command`
/// replaces the image's entrypoint (and then its default arguments too), `args` replace
/// its default arguments.
pub fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let labels = HashMap::from([
        (UID_LABEL.to_string(), spec.pod_uid.clone()),
        (NAME_LABEL.to_string(), spec.name.clone()),
        (POD_LABEL.to_string(), spec.pod_key.clone()),
    ]);
    let binds: Vec<String> = spec
        .binds
        .iter()
        .map(|b| {
            let ro = if b.read_only { ":ro" } else { "" };
            format!("{}:{}{ro}", b.host_path, b.mount_path)
        })
        .collect();
    let hostname = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "HOSTNAME")
        .map(|(_, v)| v.clone())
        .filter(|h| !h.is_empty());
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname,
        entrypoint: (!spec.command.is_empty()).then(|| spec.command.clone()),
        cmd: (!spec.args.is_empty()).then(|| spec.args.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: (!spec.working_dir.is_empty()).then(|| spec.working_dir.clone()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container name people can read in `docker ps`: pod, container, start time.
fn container_name(spec: &ContainerSpec) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let pod: String = spec
        .pod_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("bosun_{pod}_{}_{millis}", spec.name)
}

/// The label filters selecting the containers of `pod_uid` (and of `container`, if given).
fn label_filter(pod_uid: &str, container: Option<&str>) -> ListContainersOptions {
    let mut labels = vec![format!("{UID_LABEL}={pod_uid}")];
    if let Some(c) = container {
        labels.push(format!("{NAME_LABEL}={c}"));
    }
    ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_string(), labels)])),
        ..Default::default()
    }
}

impl DockerRuntime {
    /// A runtime keeping its log files under `data_dir` (each capped near `log_max_bytes`),
    /// backing off failed image pulls from `pull_backoff_base`, doubling up to
    /// `pull_backoff_cap` (the kubelet: 10 s up to 300 s).
    pub fn new(
        data_dir: PathBuf,
        log_max_bytes: u64,
        pull_backoff_base: Duration,
        pull_backoff_cap: Duration,
    ) -> DockerRuntime {
        DockerRuntime {
            data_dir,
            log_max_bytes,
            pull_backoff_base,
            pull_backoff_cap,
            engine: OnceCell::new(),
            pulls: Mutex::new(HashMap::new()),
            stop: CancellationToken::new(),
        }
    }

    /// Whether a Docker engine answers at `DOCKER_HOST` (or the default socket); the error
    /// says why not.
    pub async fn reachable() -> Result<(), String> {
        let docker = connect().await?;
        docker.ping().await.map(|_| ()).map_err(|e| {
            format!(
                "the Docker engine at {} does not answer: {e}",
                engine_host()
            )
        })
    }

    async fn engine(&self) -> Result<&Docker, RuntimeError> {
        self.engine
            .get_or_try_init(connect)
            .await
            .map_err(RuntimeError::Start)
    }

    /// Whether `image` is present in the engine.
    async fn image_present(docker: &Docker, image: &str) -> Result<bool, RuntimeError> {
        match docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(RuntimeError::Start(format!(
                "cannot inspect image {image:?}: {}",
                engine_message(&e)
            ))),
        }
    }

    /// Makes sure the container's image is there, pulling it per its policy; a failed pull
    /// (or one backing off) is a [`RuntimeError::Waiting`].
    async fn ensure_image(
        &self,
        docker: &Docker,
        spec: &ContainerSpec,
    ) -> Result<(), RuntimeError> {
        let policy = PullPolicy::of(&spec.image_pull_policy, &spec.image);
        let present = Self::image_present(docker, &spec.image).await?;
        let key = (spec.pod_uid.clone(), spec.image.clone());
        let prev = self.pulls.lock().ok().and_then(|p| p.get(&key).cloned());
        let step = image::pull_step(
            &spec.image,
            policy,
            present,
            prev.as_ref(),
            Instant::now(),
            self.pull_backoff_base,
        );
        let waiting = |w: image::Waiting| RuntimeError::Waiting {
            reason: w.reason.to_string(),
            message: w.message,
            retry_in: w.retry_in,
        };
        match step {
            PullStep::UseLocal => Ok(()),
            PullStep::Wait(w) => Err(waiting(w)),
            PullStep::Pull => match pull(docker, &spec.image).await {
                Ok(()) => {
                    if let Ok(mut p) = self.pulls.lock() {
                        p.remove(&key);
                    }
                    tracing::info!(image = %spec.image, "pulled image");
                    Ok(())
                }
                Err(error) => {
                    tracing::warn!(image = %spec.image, %error, "image pull failed");
                    let (backoff, w) = image::pull_failed(
                        prev.as_ref(),
                        error,
                        Instant::now(),
                        self.pull_backoff_base,
                        self.pull_backoff_cap,
                    );
                    if let Ok(mut p) = self.pulls.lock() {
                        p.insert(key, backoff);
                    }
                    Err(waiting(w))
                }
            },
        }
    }

    /// Removes the earlier instances of a container (their output is in the log files).
    async fn remove_instances(docker: &Docker, pod_uid: &str, container: Option<&str>) {
        let Ok(found) = docker
            .list_containers(Some(label_filter(pod_uid, container)))
            .await
        else {
            return;
        };
        for id in found.into_iter().filter_map(|c| c.id) {
            let opts = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            match docker.remove_container(&id, Some(opts)).await {
                Ok(()) => tracing::debug!(%id, "removed container"),
                Err(e) if not_found(&e) => {}
                Err(e) => tracing::warn!(%id, err = %engine_message(&e), "cannot remove container"),
            }
        }
    }

    async fn run(&self, spec: &ContainerSpec) -> Result<Arc<dyn Instance>, RuntimeError> {
        let docker = self.engine().await?;
        self.ensure_image(docker, spec).await?;
        Self::remove_instances(docker, &spec.pod_uid, Some(&spec.name)).await;

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
        let _ = std::fs::remove_file(&logs.rotated);
        let _ = std::fs::remove_file(offset_path(&logs));
        // The file exists from the start: `bosun logs` on a quiet container shows nothing,
        // not "waiting to start".
        std::fs::File::create(&logs.current).map_err(io)?;

        let opts = CreateContainerOptions {
            name: Some(container_name(spec)),
            ..Default::default()
        };
        let created = docker
            .create_container(Some(opts), create_body(spec))
            .await
            .map_err(|e| RuntimeError::Start(engine_message(&e)))?;
        let id = created.id;
        if let Err(e) = docker.start_container(&id, None).await {
            let _ = docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await;
            return Err(RuntimeError::Start(engine_message(&e)));
        }
        tracing::info!(container = %spec.name, %id, image = %spec.image, "started container");
        Ok(self.instance(docker, id, logs, 0))
    }

    /// An instance of container `id`, its output to be copied into `logs` once someone
    /// waits for it, skipping the first `skip` bytes (already copied).
    fn instance(
        &self,
        docker: &Docker,
        id: String,
        logs: LogPaths,
        skip: u64,
    ) -> Arc<dyn Instance> {
        let copier = LogCopier {
            docker: docker.clone(),
            id: id.clone(),
            logs,
            cap: self.log_max_bytes,
            skip,
            stop: self.stop.child_token(),
        };
        Arc::new(DockerInstance {
            docker: docker.clone(),
            id,
            copier: Mutex::new(Some(copier)),
        })
    }
}

/// Pulls `image`, returning the engine's message on failure.
async fn pull(docker: &Docker, image: &str) -> Result<(), String> {
    let (from_image, tag) = image::pull_reference(image);
    let opts = CreateImageOptions {
        from_image: Some(from_image),
        tag: (!tag.is_empty()).then_some(tag),
        ..Default::default()
    };
    let mut progress = docker.create_image(Some(opts), None, None);
    while let Some(step) = progress.next().await {
        step.map_err(|e| engine_message(&e))?;
    }
    Ok(())
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    /// Refuses (the pod fails) a missing image with `imagePullPolicy: Never`: bosun fails the
    /// pod at once where the kubelet would keep it Pending, so a Job learns of it.
    fn check<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async move {
            if PullPolicy::of(&spec.image_pull_policy, &spec.image) != PullPolicy::Never {
                return Ok(());
            }
            // An engine that does not answer is reported by `start`.
            let Ok(docker) = self.engine().await else {
                return Ok(());
            };
            match Self::image_present(docker, &spec.image).await {
                Ok(false) => Err(Refusal {
                    reason: image::ERR_IMAGE_NEVER_PULL.into(),
                    message: image::never_pull_message(&spec.image),
                }),
                Ok(true) | Err(_) => Ok(()),
            }
        })
    }

    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Instance>, RuntimeError>> {
        Box::pin(self.run(spec))
    }

    /// The newest container of this pod and name, running or exited. Its output is copied
    /// on from where the previous agent stopped: the engine's log of it is read again,
    /// skipping the bytes already in the files.
    fn adopt<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Option<Arc<dyn Instance>>> {
        Box::pin(async move {
            let docker = self.engine().await.ok()?;
            let found = docker
                .list_containers(Some(label_filter(&spec.pod_uid, Some(&spec.name))))
                .await
                .ok()?;
            let newest = found.into_iter().max_by_key(|c| c.created.unwrap_or(0))?;
            let id = newest.id?;
            let logs = self.log_paths(&spec.pod_uid, &spec.name);
            let skip = copied_bytes(&logs);
            Some(self.instance(docker, id, logs, skip))
        })
    }

    fn log_paths(&self, pod_uid: &str, container: &str) -> LogPaths {
        dir_log_paths(&container_dir(&self.data_dir, pod_uid, container))
    }

    fn cleanup<'a>(&'a self, pod_uid: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(mut p) = self.pulls.lock() {
                p.retain(|(uid, _), _| uid != pod_uid);
            }
            if let Ok(docker) = self.engine().await {
                Self::remove_instances(docker, pod_uid, None).await;
            }
            let _ = tokio::fs::remove_dir_all(self.data_dir.join("pods").join(pod_uid)).await;
        })
    }
}

/// Streams one container's output from the engine into its log file.
struct LogCopier {
    docker: Docker,
    id: String,
    logs: LogPaths,
    cap: u64,
    /// How many bytes of the container's output are already in the files.
    skip: u64,
    /// Cancelled when the runtime is dropped: an agent that stopped writes no more.
    stop: CancellationToken,
}

/// Where the log copier records, at each rotation, how many bytes of the container's output
/// came before the current file.
fn offset_path(logs: &LogPaths) -> PathBuf {
    logs.current.with_extension("log.offset")
}

/// How many bytes of a container's output its log files already hold: those before the
/// last rotation, and the current file.
fn copied_bytes(logs: &LogPaths) -> u64 {
    let before: u64 = std::fs::read_to_string(offset_path(logs))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let current = std::fs::metadata(&logs.current).map_or(0, |m| m.len());
    before + current
}

impl LogCopier {
    /// Copies until the container's output ends (it stopped) or the engine goes away.
    async fn run(self) {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.logs.current)
            .await;
        let mut file = match file {
            Ok(f) => f,
            Err(err) => {
                tracing::warn!(log = %self.logs.current.display(), %err, "cannot open the container log");
                return;
            }
        };
        let mut size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let opts = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut output = self.docker.logs(&self.id, Some(opts));
        // Bytes of the output seen so far, skipped ones included.
        let mut seen: u64 = 0;
        loop {
            let chunk = tokio::select! {
                _ = self.stop.cancelled() => return,
                chunk = output.next() => chunk,
            };
            let chunk = match chunk {
                None => break,
                Some(Ok(c)) => c.into_bytes(),
                Some(Err(e)) => {
                    tracing::warn!(id = %self.id, err = %engine_message(&e), "container log stream ended");
                    return;
                }
            };
            let start = usize::try_from(self.skip.saturating_sub(seen))
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            seen += chunk.len() as u64;
            let new = &chunk[start..];
            if new.is_empty() {
                continue;
            }
            // Flushed at once: `bosun logs -f` reads the file as it grows.
            let written = match file.write_all(new).await {
                Ok(()) => file.flush().await,
                Err(e) => Err(e),
            };
            if let Err(err) = written {
                tracing::warn!(log = %self.logs.current.display(), %err, "cannot write the container log");
                return;
            }
            size += new.len() as u64;
            if size > self.cap {
                size = 0;
                self.rotate(&file, seen).await;
            }
        }
        let _ = file.flush().await;
    }

    /// Moves the log's content to `current.log.1` and starts it over (as the process
    /// runtime does): `bosun logs` reads both.
    /// `seen`: the bytes of output so far, all before the current file once it starts over.
    async fn rotate(&self, file: &tokio::fs::File, seen: u64) {
        if tokio::fs::copy(&self.logs.current, &self.logs.rotated)
            .await
            .is_ok()
            && tokio::fs::write(offset_path(&self.logs), seen.to_string())
                .await
                .is_ok()
            && file.set_len(0).await.is_ok()
        {
            tracing::info!(log = %self.logs.current.display(), "container log passed its cap: rotated");
        }
    }
}

/// One container of the engine.
struct DockerInstance {
    docker: Docker,
    id: String,
    /// Its output's copier, started by the first `wait`: an instance `adopt` found but the
    /// worker does not use (its exit was already recorded) copies nothing.
    copier: Mutex<Option<LogCopier>>,
}

impl DockerInstance {
    /// The exit code, once the container is not running.
    async fn exit_code(&self) -> i32 {
        loop {
            let mut waited = self
                .docker
                .wait_container(&self.id, None::<WaitContainerOptions>);
            match waited.next().await {
                Some(Ok(r)) => return r.status_code as i32,
                // bollard reports a non-zero exit as an error carrying the code.
                Some(Err(EngineError::DockerContainerWaitError { code, .. })) => {
                    return code as i32;
                }
                Some(Err(e)) if not_found(&e) => {
                    tracing::warn!(id = %self.id, "the container is gone: reported as killed");
                    return 137;
                }
                other => {
                    // A dropped connection or a timeout: ask again, unless it already ended.
                    match &other {
                        // The client's request timeout, on a long-running container.
                        Some(Err(EngineError::RequestTimeoutError)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(id = %self.id, err = %engine_message(e), "waiting for the container failed: retrying");
                        }
                        _ => {}
                    }
                    if let Ok(info) = self.docker.inspect_container(&self.id, None).await
                        && let Some(state) = info.state
                        && state.running == Some(false)
                        && let Some(code) = state.exit_code
                    {
                        return code as i32;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

impl Instance for DockerInstance {
    fn id(&self) -> String {
        format!("docker://{}", self.id)
    }

    /// The exit code, once the container stopped and its output reached the log file.
    fn wait(&self) -> BoxFuture<'_, i32> {
        Box::pin(async move {
            let copier = self.copier.lock().ok().and_then(|mut c| c.take());
            let copied = copier.map(|c| tokio::spawn(c.run()));
            let code = self.exit_code().await;
            if let Some(copied) = copied {
                let _ = tokio::time::timeout(LOG_DRAIN, copied).await;
            }
            code
        })
    }

    fn stop(&self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // The engine answers once the container stopped: up to the grace period and the
            // kill, longer than the client's default request timeout allows.
            let docker = self.docker.clone().with_timeout(grace + STOP_SLACK);
            let t = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
            let opts = StopContainerOptions {
                t: Some(t),
                signal: None,
            };
            match docker.stop_container(&self.id, Some(opts)).await {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => {
                    tracing::warn!(id = %self.id, err = %engine_message(&e), "stopping the container failed: killing it");
                    let kill = KillContainerOptions {
                        signal: "SIGKILL".into(),
                    };
                    let _ = self.docker.kill_container(&self.id, Some(kill)).await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Bind;

    fn spec(command: &[&str], args: &[&str]) -> ContainerSpec {
        ContainerSpec {
            pod_uid: "u".into(),
            pod_key: "ns/p".into(),
            name: "c".into(),
            image: "busybox:1".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("HOSTNAME".into(), "p".into()), ("A".into(), "1".into())],
            binds: vec![Bind {
                volume: "v".into(),
                host_path: "/h".into(),
                mount_path: "/m".into(),
                read_only: true,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn command_and_args_map_to_entrypoint_and_cmd_as_kubernetes_does() {
        type Want = (Option<Vec<String>>, Option<Vec<String>>);
        let v = |s: &[&str]| Some(s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let cases: &[(&str, &[&str], &[&str], Want)] = &[
            ("neither: the image's own", &[], &[], (None, None)),
            (
                "command only: no image args",
                &["sh"],
                &[],
                (v(&["sh"]), None),
            ),
            (
                "args only: the image's entrypoint",
                &[],
                &["-c", "x"],
                (None, v(&["-c", "x"])),
            ),
            ("both", &["sh"], &["-c", "x"], (v(&["sh"]), v(&["-c", "x"]))),
        ];
        for (row, command, args, (entrypoint, cmd)) in cases {
            let body = create_body(&spec(command, args));
            assert_eq!(&body.entrypoint, entrypoint, "{row}");
            assert_eq!(&body.cmd, cmd, "{row}");
        }
    }

    #[test]
    fn the_body_carries_env_binds_labels_and_the_pod_hostname() {
        let body = create_body(&spec(&["sh"], &[]));
        assert_eq!(body.image.as_deref(), Some("busybox:1"));
        assert_eq!(body.hostname.as_deref(), Some("p"));
        assert_eq!(
            body.env,
            Some(vec!["HOSTNAME=p".to_string(), "A=1".to_string()])
        );
        let binds = body.host_config.and_then(|h| h.binds);
        assert_eq!(binds, Some(vec!["/h:/m:ro".to_string()]));
        let labels = body.labels.unwrap_or_default();
        assert_eq!(labels.get(UID_LABEL).map(String::as_str), Some("u"));
        assert_eq!(labels.get(NAME_LABEL).map(String::as_str), Some("c"));
        assert_eq!(labels.get(POD_LABEL).map(String::as_str), Some("ns/p"));
    }

    #[test]
    fn container_names_are_valid_for_the_engine() {
        let name = container_name(&spec(&[], &[]));
        assert!(name.starts_with("bosun_ns_p_c_"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "{name}"
        );
    }
}
