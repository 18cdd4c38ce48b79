//! Container runtimes behind one trait: `process` (local processes, the default), `docker`
//! (the Docker Engine API) and `sim` (pods that only pretend to run, for tests and
//! benchmarks).
//!
//! A runtime starts a container instance ([`Runtime::start`]), finds one a previous agent
//! left running ([`Runtime::adopt`]), and names its log files ([`Runtime::log_paths`]); an
//! [`Instance`] is waited for and stopped with a grace period. A container that cannot
//! start *yet* (its image pull failed) is [`RuntimeError::Waiting`]: the worker shows the
//! reason in the container's waiting state and calls `start` again after `retry_in`.

pub mod docker;
pub mod image;
pub mod process;
pub mod sim;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bosun_api::v1;
use futures::future::BoxFuture;

/// One container to run, everything resolved.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub pod_uid: String,
    /// `namespace/name`, for logs and messages.
    pub pod_key: String,
    pub name: String,
    pub image: String,
    /// `imagePullPolicy` as the pod names it (empty: the API's default for the image).
    pub image_pull_policy: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// The environment, resolved (valueFrom included), in order.
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    /// hostPath volumes mounted into the container.
    pub binds: Vec<Bind>,
    /// Sim runtime: how long the pod "runs" and its exit code.
    pub sim: Option<(Duration, i32)>,
}

/// A hostPath volume mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub volume: String,
    pub host_path: String,
    pub mount_path: String,
    pub read_only: bool,
}

/// Why a container cannot be started at all (the pod fails with this reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub message: String,
}

/// A runtime failure while starting a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot prepare {path}: {source}")]
    Prepare {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start the container: {0}")]
    Start(String),
    /// Not started yet, and no attempt counts as a start: the container waits with
    /// `reason` (ErrImagePull, ImagePullBackOff, ErrImageNeverPull) and `message`, and
    /// `start` is called again after `retry_in`.
    #[error("{reason}: {message}")]
    Waiting {
        reason: String,
        message: String,
        retry_in: Duration,
    },
}

/// Where a container's output is kept.
#[derive(Debug, Clone)]
pub struct LogPaths {
    pub current: PathBuf,
    /// The current log's older half: where `current` is moved when it passes its cap.
    pub rotated: PathBuf,
    pub previous: PathBuf,
}

/// One running (or finished) container instance.
pub trait Instance: Send + Sync {
    /// The container ID as Kubernetes shows it (`process://1234`, `docker://abc`).
    fn id(&self) -> String;
    /// Resolves with the exit code once the instance has stopped (128+n when killed by n).
    fn wait(&self) -> BoxFuture<'_, i32>;
    /// SIGTERM, then SIGKILL after `grace` if it still runs.
    fn stop(&self, grace: Duration) -> BoxFuture<'_, ()>;
}

/// A container runtime.
pub trait Runtime: Send + Sync {
    /// `process`, `docker` or `sim`.
    fn name(&self) -> &'static str;
    /// Refuses a container that cannot run here (no command, image missing).
    fn check<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), Refusal>>;
    /// Starts a new instance of the container (the previous one's log becomes `previous`).
    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Instance>, RuntimeError>>;
    /// The instance a previous agent started for this container, if any (running or exited).
    fn adopt<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Option<Arc<dyn Instance>>>;
    /// The container's log files.
    fn log_paths(&self, pod_uid: &str, container: &str) -> LogPaths;
    /// Removes what is left of a deleted pod.
    fn cleanup<'a>(&'a self, pod_uid: &'a str) -> BoxFuture<'a, ()>;
}

/// The directory of one container of one pod under `data_dir`.
pub fn container_dir(data_dir: &Path, pod_uid: &str, container: &str) -> PathBuf {
    data_dir.join("pods").join(pod_uid).join(container)
}

/// Log paths inside a container directory.
pub fn dir_log_paths(dir: &Path) -> LogPaths {
    LogPaths {
        current: dir.join("current.log"),
        rotated: dir.join("current.log.1"),
        previous: dir.join("previous.log"),
    }
}

/// Where the pod runs, for `status.hostIP` / `status.podIP` and the downward API.
#[derive(Debug, Clone, Default)]
pub struct PodPlace {
    pub host_ip: String,
    pub pod_ip: String,
    /// KUBERNETES_SERVICE_HOST / _PORT: the broker.
    pub service_host: String,
    pub service_port: String,
}

/// Resolves a downward-API field path (`metadata.name`, `metadata.labels['x']`...);
/// `None` for a path bosun does not support.
pub fn field_ref(pod: &v1::Pod, place: &PodPlace, path: &str) -> Option<String> {
    let meta = pod.metadata.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let quoted = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(k) = quoted("metadata.labels['") {
        return Some(meta.labels.get(&k).cloned().unwrap_or_default());
    }
    if let Some(k) = quoted("metadata.annotations['") {
        return Some(meta.annotations.get(&k).cloned().unwrap_or_default());
    }
    Some(match path {
        "metadata.name" => meta.name,
        "metadata.namespace" => meta.namespace,
        "metadata.uid" => meta.uid,
        "spec.nodeName" => spec.node_name,
        "spec.serviceAccountName" => {
            if spec.service_account_name.is_empty() {
                spec.service_account
            } else {
                spec.service_account_name
            }
        }
        "status.podIP" => place.pod_ip.clone(),
        "status.hostIP" => place.host_ip.clone(),
        _ => return None,
    })
}

/// The environment of `container` in `pod`: HOSTNAME, the KUBERNETES_SERVICE_* variables,
/// `BOSUN_VOLUME_<NAME>` per hostPath volume, then the container's own env (values and
/// downward-API `fieldRef`s; later entries win, as in Kubernetes).
pub fn container_env(
    pod: &v1::Pod,
    container: &v1::Container,
    place: &PodPlace,
) -> Vec<(String, String)> {
    let meta = pod.metadata.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let hostname = if spec.hostname.is_empty() {
        meta.name.clone()
    } else {
        spec.hostname.clone()
    };
    let mut env = vec![
        ("HOSTNAME".to_string(), hostname),
        (
            "KUBERNETES_SERVICE_HOST".to_string(),
            place.service_host.clone(),
        ),
        (
            "KUBERNETES_SERVICE_PORT".to_string(),
            place.service_port.clone(),
        ),
    ];
    for v in &spec.volumes {
        if let Some(hp) = &v.host_path {
            env.push((volume_env_name(&v.name), hp.path.clone()));
        }
    }
    for e in &container.env {
        let value = match e.value_from.as_ref().and_then(|f| f.field_ref.as_ref()) {
            Some(fr) => field_ref(pod, place, &fr.field_path).unwrap_or_default(),
            None => e.value.clone(),
        };
        env.retain(|(k, _)| k != &e.name);
        env.push((e.name.clone(), value));
    }
    env
}

/// `BOSUN_VOLUME_<NAME>`: the volume name upper-cased, `-` and `.` as `_`.
pub fn volume_env_name(volume: &str) -> String {
    let name: String = volume
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("BOSUN_VOLUME_{name}")
}

/// The hostPath volumes `container` mounts.
pub fn binds(pod: &v1::Pod, container: &v1::Container) -> Vec<Bind> {
    let volumes = pod
        .spec
        .as_ref()
        .map(|s| s.volumes.as_slice())
        .unwrap_or(&[]);
    container
        .volume_mounts
        .iter()
        .filter_map(|m| {
            let v = volumes.iter().find(|v| v.name == m.name)?;
            let hp = v.host_path.as_ref()?;
            Some(Bind {
                volume: v.name.clone(),
                host_path: hp.path.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> v1::Pod {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: "p".into(),
                namespace: "ns".into(),
                uid: "u1".into(),
                labels: [("app".to_string(), "x".to_string())].into(),
                annotations: [(
                    "batch.kubernetes.io/job-completion-index".to_string(),
                    "3".to_string(),
                )]
                .into(),
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                node_name: "n1".into(),
                service_account_name: "sa".into(),
                volumes: vec![v1::Volume {
                    name: "data-dir".into(),
                    host_path: Some(v1::HostPathVolumeSource {
                        path: "/tmp/d".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn place() -> PodPlace {
        PodPlace {
            host_ip: "10.0.0.1".into(),
            pod_ip: "127.0.0.1".into(),
            service_host: "127.0.0.1".into(),
            service_port: "7440".into(),
        }
    }

    #[test]
    fn field_refs_resolve_the_downward_api() {
        let p = pod();
        for (path, want) in [
            ("metadata.name", Some("p")),
            ("metadata.namespace", Some("ns")),
            ("metadata.uid", Some("u1")),
            ("metadata.labels['app']", Some("x")),
            ("metadata.labels['missing']", Some("")),
            (
                "metadata.annotations['batch.kubernetes.io/job-completion-index']",
                Some("3"),
            ),
            ("spec.nodeName", Some("n1")),
            ("spec.serviceAccountName", Some("sa")),
            ("status.podIP", Some("127.0.0.1")),
            ("status.hostIP", Some("10.0.0.1")),
            ("status.phase", None),
        ] {
            assert_eq!(field_ref(&p, &place(), path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn the_environment_has_hostname_volumes_and_container_env() {
        let c = v1::Container {
            name: "c".into(),
            env: vec![
                v1::EnvVar {
                    name: "A".into(),
                    value: "1".into(),
                    ..Default::default()
                },
                v1::EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value_from: Some(v1::EnvVarSource {
                        field_ref: Some(v1::ObjectFieldSelector {
                            field_path:
                                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                                    .into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let env = container_env(&pod(), &c, &place());
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HOSTNAME"), Some("p"));
        assert_eq!(get("KUBERNETES_SERVICE_PORT"), Some("7440"));
        assert_eq!(get("BOSUN_VOLUME_DATA_DIR"), Some("/tmp/d"));
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("JOB_COMPLETION_INDEX"), Some("3"));
    }
}
