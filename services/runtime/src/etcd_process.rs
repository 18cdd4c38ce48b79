//! etcd as a child process: what `bosun up` and the end-to-end tests run so that nobody has
//! to start an etcd by hand.
//!
//! [`EtcdProcess::start`] finds the binary, launches it with its own data directory and
//! ports, and waits (up to a deadline, polling `/health`) until it answers. The child is
//! killed when the handle is dropped or [`EtcdProcess::stop`] is called: etcd's WAL makes a
//! hard stop safe. It is also killed when this process dies without a word (`kill -9`, a
//! crash): a [`Lifeline`] watcher kills it then, so no etcd is left holding the ports and
//! the data folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::lifeline::{Lifeline, LifelineError};

/// The `--max-txn-ops` an etcd started here runs with (etcd's default is 128): the broker
/// batches up to several hundred writes into one transaction (its `--etcd-max-txn-ops`).
pub const MAX_TXN_OPS: usize = 1024;

/// The lifeline's script: `$1` is etcd's pid, `$2` its data directory. It kills the process
/// only while that pid is still our etcd (its command line names the data directory), never
/// a process that reused the number.
const KILL_ETCD: &str =
    r#"tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2" && kill -KILL "$1""#;

/// How to run one single-member etcd.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// The etcd binary; `None`: `BOSUN_ETCD_BIN`, then `etcd` on `PATH`, then `/usr/bin/etcd`.
    pub binary: Option<PathBuf>,
    /// Where etcd keeps its data (created if missing).
    pub data_dir: PathBuf,
    /// Client URL address (`127.0.0.1:2379`).
    pub client_addr: SocketAddr,
    /// Peer URL address (`127.0.0.1:2380`).
    pub peer_addr: SocketAddr,
    /// The member name.
    pub name: String,
    /// Where etcd's own log goes; `None`: discarded.
    pub log_file: Option<PathBuf>,
    /// How long to wait for etcd to answer before giving up.
    pub startup_timeout: Duration,
}

impl EtcdConfig {
    /// A config with the defaults: binary looked up, member `bosun`, no log, 20 s to start.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        client_addr: SocketAddr,
        peer_addr: SocketAddr,
    ) -> Self {
        EtcdConfig {
            binary: None,
            data_dir: data_dir.into(),
            client_addr,
            peer_addr,
            name: "bosun".into(),
            log_file: None,
            startup_timeout: Duration::from_secs(20),
        }
    }
}

/// Why etcd could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error(
        "etcd not found (looked at {looked_at}); install it with `apt-get install etcd-server` \
         (Debian/Ubuntu) or point BOSUN_ETCD_BIN at an etcd binary"
    )]
    NotFound { looked_at: String },
    #[error("cannot create etcd's data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open etcd's log file {path}: {source}")]
    LogFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "etcd exited during startup ({status}); is {client} or {peer} already taken? {log_hint}"
    )]
    Exited {
        status: String,
        client: SocketAddr,
        peer: SocketAddr,
        log_hint: String,
    },
    #[error("cannot find free loopback ports for etcd: {source}")]
    Ports { source: std::io::Error },
    #[error("etcd was started but cannot be tied to this process: {0}")]
    Lifeline(#[from] LifelineError),
    #[error("etcd did not answer on {client} within {timeout:?}. {log_hint}")]
    Timeout {
        client: SocketAddr,
        timeout: Duration,
        log_hint: String,
    },
}

/// A running etcd child process; killed on drop, and when this process dies.
#[derive(Debug)]
pub struct EtcdProcess {
    child: Option<Child>,
    /// Kills etcd if this process dies before [`EtcdProcess::stop`]; declared after `child`
    /// so that a drop kills etcd first.
    lifeline: Option<Lifeline>,
    config: EtcdConfig,
}

impl EtcdProcess {
    /// Starts etcd on two fresh loopback ports, trying new ports up to three times if etcd
    /// exits during startup (another process may grab a released port before etcd binds it).
    pub async fn start_on_free_ports(
        data_dir: &Path,
        log_file: Option<PathBuf>,
    ) -> Result<EtcdProcess, EtcdError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (client, peer) = match (
                crate::ports::free_loopback_addr(),
                crate::ports::free_loopback_addr(),
            ) {
                (Ok(c), Ok(p)) => (c, p),
                (Err(source), _) | (_, Err(source)) => {
                    return Err(EtcdError::Ports { source });
                }
            };
            let mut config = EtcdConfig::new(data_dir, client, peer);
            config.log_file = log_file.clone();
            match EtcdProcess::start(config).await {
                Err(EtcdError::Exited { .. }) if attempt < 3 => {
                    tracing::warn!(attempt, %client, %peer, "etcd exited during startup; trying other ports");
                    let _ = std::fs::remove_dir_all(data_dir);
                }
                other => return other,
            }
        }
    }

    /// Starts etcd and waits until its `/health` answers `true`.
    pub async fn start(config: EtcdConfig) -> Result<EtcdProcess, EtcdError> {
        let binary = find_binary(config.binary.as_deref())?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| EtcdError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let client_url = format!("http://{}", config.client_addr);
        let peer_url = format!("http://{}", config.peer_addr);
        let mut cmd = Command::new(&binary);
        cmd.arg("--name")
            .arg(&config.name)
            .arg("--data-dir")
            .arg(&config.data_dir)
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("{}={}", config.name, peer_url))
            .arg(format!("--max-txn-ops={MAX_TXN_OPS}"))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match &config.log_file {
            Some(path) => {
                let open = || {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|source| EtcdError::LogFile {
                            path: path.clone(),
                            source,
                        })
                };
                cmd.stdout(open()?).stderr(open()?);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd.spawn().map_err(|source| EtcdError::Spawn {
            binary: binary.clone(),
            source,
        })?;
        tracing::info!(binary = %binary.display(), client = %config.client_addr,
            data_dir = %config.data_dir.display(), pid = child.id(), "etcd starting");
        // On error the child is dropped, which kills it (kill_on_drop).
        let lifeline = match child.id() {
            Some(pid) => Some(Lifeline::spawn(
                "etcd",
                KILL_ETCD,
                [pid.to_string().as_ref(), config.data_dir.as_os_str()],
            )?),
            // Already exited: wait_ready reports how.
            None => None,
        };
        let mut process = EtcdProcess {
            child: Some(child),
            lifeline,
            config,
        };
        process.wait_ready().await?;
        Ok(process)
    }

    /// Polls `/health` until etcd says it is healthy, the child exits, or the deadline passes.
    async fn wait_ready(&mut self) -> Result<(), EtcdError> {
        let deadline = Instant::now() + self.config.startup_timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(EtcdError::Exited {
                    status: status.to_string(),
                    client: self.config.client_addr,
                    peer: self.config.peer_addr,
                    log_hint: self.log_hint(),
                });
            }
            if healthy(self.config.client_addr).await {
                tracing::info!(client = %self.config.client_addr, "etcd ready");
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(EtcdError::Timeout {
                    client: self.config.client_addr,
                    timeout: self.config.startup_timeout,
                    log_hint: self.log_hint(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    fn log_hint(&self) -> String {
        match &self.config.log_file {
            Some(path) => {
                let tail = std::fs::read_to_string(path)
                    .map(|s| {
                        let lines: Vec<&str> = s.lines().collect();
                        lines[lines.len().saturating_sub(5)..].join("\n")
                    })
                    .unwrap_or_default();
                format!("etcd's log ({}) ends with:\n{tail}", path.display())
            }
            None => "Set a log file to see etcd's own messages.".into(),
        }
    }

    /// The client endpoint (`http://127.0.0.1:2379`) to hand to an etcd client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.config.client_addr)
    }

    /// The child's process id (for CPU accounting in benchmarks); `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// The configuration this process was started with.
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// Kills etcd and waits for it to exit.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            tracing::info!(client = %self.config.client_addr, "etcd stopped");
        }
        if let Some(lifeline) = self.lifeline.take() {
            lifeline.disarm();
        }
    }
}

/// Kills an etcd a dead owner left running: the process `pid`, if it is still the etcd of
/// `data_dir` (the same check as the lifeline's, by the same script), then waits up to 10 s
/// for it to be gone. Returns whether there was such an etcd.
pub async fn kill_leftover(pid: u32, data_dir: &Path) -> std::io::Result<bool> {
    let killed = Command::new("sh")
        .arg("-c")
        .arg(KILL_ETCD)
        .arg("bosun-kill-leftover-etcd")
        .arg(pid.to_string())
        .arg(data_dir)
        .stdin(Stdio::null())
        .status()
        .await?
        .success();
    if killed {
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::lifeline::alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(pid, data_dir = %data_dir.display(), "killed the etcd a previous owner left running");
    }
    Ok(killed)
}

/// One `GET /health` over plain HTTP/1.0: true when etcd reports itself healthy.
async fn healthy(addr: SocketAddr) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: etcd\r\n\r\n")
            .await
            .ok()?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await.ok()?;
        let text = String::from_utf8_lossy(&body);
        Some(text.contains("\"health\":\"true\""))
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Finds the etcd binary: explicit, `BOSUN_ETCD_BIN`, `etcd` on `PATH`, `/usr/bin/etcd`.
fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, EtcdError> {
    let mut looked = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_path_buf());
    } else {
        if let Some(p) = std::env::var_os("BOSUN_ETCD_BIN") {
            candidates.push(PathBuf::from(p));
        }
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path).map(|d| d.join("etcd")));
        }
        candidates.push(PathBuf::from("/usr/bin/etcd"));
    }
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
        looked.push(c.display().to_string());
    }
    Err(EtcdError::NotFound {
        looked_at: looked.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_says_how_to_install_etcd() {
        let err = find_binary(Some(Path::new("/nonexistent/etcd"))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("apt-get install etcd-server"), "{msg}");
        assert!(msg.contains("/nonexistent/etcd"), "{msg}");
    }

    #[tokio::test]
    async fn etcd_starts_answers_and_stops() {
        if find_binary(None).is_err() {
            eprintln!("etcd not installed; skipping");
            return;
        }
        let dir = std::env::temp_dir().join(format!("bosun-etcd-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let etcd = EtcdProcess::start_on_free_ports(&dir.join("data"), Some(dir.join("etcd.log")))
            .await
            .expect("etcd starts");
        let addr = etcd.config().client_addr;
        assert!(healthy(addr).await);
        assert_eq!(etcd.endpoint(), format!("http://{addr}"));
        etcd.stop().await;
        assert!(!healthy(addr).await);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn etcd_is_killed_when_its_owner_is_gone() {
        if find_binary(None).is_err() {
            eprintln!("etcd not installed; skipping");
            return;
        }
        let dir = std::env::temp_dir().join(format!("bosun-etcd-orphan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut etcd = EtcdProcess::start_on_free_ports(&dir.join("data"), None)
            .await
            .expect("etcd starts");
        let addr = etcd.config().client_addr;
        // What the kernel does when this process dies: the lifeline's pipe closes.
        etcd.lifeline.take().expect("armed").fire();
        let child = etcd.child.as_mut().expect("started");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "etcd still runs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(9), "{status}");
        assert!(!healthy(addr).await);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
