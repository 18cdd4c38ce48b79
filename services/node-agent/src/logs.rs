//! The node agent's `Logs` gRPC server: the output of the containers of this node's pods,
//! read from the runtime's log files (current or previous instance), optionally only the
//! last N lines, with timestamps, or followed until the container stops or the client goes
//! away.
//!
//! Timestamps: the files hold raw output, so a line's timestamp is when the agent read it
//! (following) or the file's last modification (older output): close, not exact.

use std::collections::HashSet;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_api::v1::logs_server::Logs;
use bosun_api::v1::{LogChunk, LogsRequest};
use bosun_runtime::cache::Store;
use futures::Stream;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::runtime::Runtime;

/// How often a followed log is checked for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Serves the logs of the pods in `pods`.
pub struct LogsService {
    pub pods: Store,
    pub runtime: Arc<dyn Runtime>,
    /// `uid/container` of the running container instances.
    pub running: Arc<Mutex<HashSet<String>>>,
}

/// The stream of log chunks.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogChunk, Status>> + Send>>;

/// Picks the container a logs request is about, in the API server's words on failure.
pub fn pick_container(pod: &str, names: &[String], wanted: &str) -> Result<String, Status> {
    if wanted.is_empty() {
        return match names {
            [only] => Ok(only.clone()),
            _ => Err(Status::invalid_argument(format!(
                "a container name must be specified for pod {pod}, choose one of: [{}]",
                names.join(" ")
            ))),
        };
    }
    if names.iter().any(|n| n == wanted) {
        Ok(wanted.to_string())
    } else {
        Err(Status::invalid_argument(format!(
            "container {wanted} is not valid for pod {pod}"
        )))
    }
}

/// The last `n` lines of `data`.
pub fn tail_lines(data: &[u8], n: i64) -> &[u8] {
    if n < 0 {
        return data;
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &data[i + 1..];
            }
        }
    }
    if n == 0 { &data[data.len()..] } else { data }
}

/// Prefixes every line start in `data` with `ts ` (`at_start`: whether `data` begins a line).
pub fn stamp(data: &[u8], ts: &str, at_start: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 40);
    for b in data {
        if *at_start {
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
        }
        out.push(*b);
        *at_start = *b == b'\n';
    }
    out
}

#[tonic::async_trait]
impl Logs for LogsService {
    type PodLogsStream = LogStream;

    async fn pod_logs(&self, req: Request<LogsRequest>) -> Result<Response<LogStream>, Status> {
        let req = req.into_inner();
        let key = format!("{}/{}", req.namespace, req.pod);
        let pod = self
            .pods
            .get(&key)
            .and_then(|o| o.as_pod().cloned())
            .ok_or_else(|| Status::not_found(format!("pods \"{}\" not found", req.pod)))?;
        let spec = pod.spec.clone().unwrap_or_default();
        let names: Vec<String> = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter())
            .map(|c| c.name.clone())
            .collect();
        let main_names: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
        let container = if req.container.is_empty() {
            pick_container(&req.pod, &main_names, "")?
        } else {
            pick_container(&req.pod, &names, &req.container)?
        };
        let uid = pod.metadata.map(|m| m.uid).unwrap_or_default();
        let paths = self.runtime.log_paths(&uid, &container);
        let path: PathBuf = if req.previous {
            paths.previous
        } else {
            paths.current
        };
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(_) if req.previous => {
                return Err(Status::invalid_argument(format!(
                    "previous terminated container \"{container}\" in pod \"{}\" not found",
                    req.pod
                )));
            }
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "container \"{container}\" in pod \"{}\" is waiting to start: ContainerCreating",
                    req.pod
                )));
            }
        };
        // A log that passed its cap was rotated: its older half comes first.
        let mut data = if req.previous {
            Vec::new()
        } else {
            tokio::fs::read(&paths.rotated).await.unwrap_or_default()
        };
        let rotated_len = data.len();
        file.read_to_end(&mut data)
            .await
            .map_err(|e| Status::internal(format!("reading {}: {e}", path.display())))?;
        // Where following continues in the current file.
        let mut offset = (data.len() - rotated_len) as u64;
        let mut at_start = true;
        let first = {
            let slice = match req.tail_lines {
                Some(n) => tail_lines(&data, n),
                None => &data[..],
            };
            if req.timestamps {
                let ts = file
                    .metadata()
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339())
                    .unwrap_or_default();
                stamp(slice, &ts, &mut at_start)
            } else {
                slice.to_vec()
            }
        };
        let (tx, rx) = mpsc::channel::<Result<LogChunk, Status>>(16);
        let running = self.running.clone();
        let running_key = format!("{uid}/{container}");
        let follow = req.follow && !req.previous;
        let timestamps = req.timestamps;
        tokio::spawn(async move {
            if !first.is_empty() && tx.send(Ok(LogChunk { data: first })).await.is_err() {
                return;
            }
            if !follow {
                return;
            }
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let still_running = running
                    .lock()
                    .map(|s| s.contains(&running_key))
                    .unwrap_or(false);
                // A truncated (capped) file starts over.
                if let Ok(meta) = tokio::fs::metadata(&path).await
                    && meta.len() < offset
                {
                    offset = 0;
                }
                let mut got = false;
                if file.seek(std::io::SeekFrom::Start(offset)).await.is_ok() {
                    while let Ok(n) = file.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        got = true;
                        offset += n as u64;
                        let chunk = if timestamps {
                            stamp(&buf[..n], &crate::node::now(), &mut at_start)
                        } else {
                            buf[..n].to_vec()
                        };
                        if tx.send(Ok(LogChunk { data: chunk })).await.is_err() {
                            return;
                        }
                    }
                }
                if !still_running && !got {
                    return;
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(FOLLOW_POLL) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_is_named_or_the_only_one() {
        let one = vec!["a".to_string()];
        let two = vec!["a".to_string(), "b".to_string()];
        assert_eq!(pick_container("p", &one, "").unwrap(), "a");
        assert_eq!(pick_container("p", &two, "b").unwrap(), "b");
        let err = pick_container("p", &two, "").unwrap_err();
        assert!(
            err.message().contains("choose one of: [a b]"),
            "{}",
            err.message()
        );
        assert!(pick_container("p", &two, "c").is_err());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let data = b"1\n2\n3\n";
        assert_eq!(tail_lines(data, 2), b"2\n3\n");
        assert_eq!(tail_lines(data, 5), b"1\n2\n3\n");
        assert_eq!(tail_lines(data, 0), b"");
        assert_eq!(tail_lines(b"1\n2", 1), b"2");
    }

    #[test]
    fn timestamps_prefix_each_line() {
        let mut at = true;
        assert_eq!(stamp(b"a\nb", "T", &mut at), b"T a\nT b");
        assert!(!at);
        assert_eq!(stamp(b"c\n", "U", &mut at), b"c\n");
        assert!(at);
    }
}
