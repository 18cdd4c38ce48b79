//! One `bosun up` per data folder, and a clean takeover after one that died.
//!
//! `up` holds an exclusive `flock` on `<data-dir>/up.lock` for as long as it runs (the kernel
//! drops it when the process ends, however it ends) and writes into it who it is and what it
//! started: its pid, when, and etcd's pid. A second `up` that cannot take the lock names the
//! running one and how to stop it. One that can, reads what a dead owner recorded, so that it
//! can stop whatever that owner left behind (an etcd its lifeline did not kill) before it
//! starts its own.

use std::fs::File;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// The lock file's name inside the data folder.
pub const LOCK_FILE: &str = "up.lock";

/// What a running `up` records about itself in the lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The `up` process.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started: String,
    /// The etcd it started, once started.
    pub etcd_pid: Option<u32>,
    /// That etcd's data directory (how a leftover etcd is told from a process that reused
    /// its pid).
    pub etcd_data_dir: Option<PathBuf>,
}

impl Record {
    /// `key=value` lines.
    pub fn render(&self) -> String {
        let mut text = format!("pid={}\nstarted={}\n", self.pid, self.started);
        if let Some(pid) = self.etcd_pid {
            text.push_str(&format!("etcd_pid={pid}\n"));
        }
        if let Some(dir) = &self.etcd_data_dir {
            text.push_str(&format!("etcd_data_dir={}\n", dir.display()));
        }
        text
    }

    /// Reads what [`render`](Record::render) wrote; `None` when it names no process (an
    /// empty file: no owner, or one that stopped cleanly).
    pub fn parse(text: &str) -> Option<Record> {
        let mut record = Record::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => record.pid = v.trim().parse().ok()?,
                Some(("started", v)) => record.started = v.trim().to_string(),
                Some(("etcd_pid", v)) => record.etcd_pid = v.trim().parse().ok(),
                Some(("etcd_data_dir", v)) => record.etcd_data_dir = Some(PathBuf::from(v)),
                _ => {}
            }
        }
        (record.pid != 0).then_some(record)
    }
}

/// Why the data folder could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "bosun up is already running as pid {pid} on this data folder ({dir}, started {started}): \
         stop it with `kill {pid}`, or give this one another --data-dir"
    )]
    Running {
        pid: u32,
        dir: PathBuf,
        started: String,
    },
    #[error(
        "another bosun up is starting on this data folder ({dir}); wait for it, stop it, or \
         give this one another --data-dir"
    )]
    Starting { dir: PathBuf },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The data folder, held by this `up` until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
    record: Record,
}

impl DataDirLock {
    /// Takes `data_dir` for this process (creating it if missing) and records `record`.
    /// Returns what the previous owner, now gone, had recorded (`None`: it stopped cleanly,
    /// or there was none). Fails, naming it, when a live `up` holds the folder.
    pub fn take(
        data_dir: &Path,
        record: Record,
    ) -> Result<(DataDirLock, Option<Record>), LockError> {
        std::fs::create_dir_all(data_dir).map_err(|source| LockError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.clone(),
                source,
            })?;
        let previous = Record::parse(&std::fs::read_to_string(&path).unwrap_or_default());
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
                return Err(match previous {
                    Some(owner) => LockError::Running {
                        pid: owner.pid,
                        dir,
                        started: owner.started,
                    },
                    None => LockError::Starting { dir },
                });
            }
            Err(e) => {
                return Err(LockError::Lock {
                    path,
                    source: e.into(),
                });
            }
        }
        let mut lock = DataDirLock { file, path, record };
        lock.write()?;
        Ok((lock, previous))
    }

    /// Records the etcd this `up` started.
    pub fn record_etcd(&mut self, pid: Option<u32>, data_dir: &Path) -> Result<(), LockError> {
        self.record.etcd_pid = pid;
        self.record.etcd_data_dir = Some(data_dir.to_path_buf());
        self.write()
    }

    /// Everything this `up` started has stopped: the record is cleared (the next `up` has
    /// nothing to clean) and the lock released.
    pub fn release(self) {
        if let Err(err) = self.file.set_len(0) {
            tracing::warn!(%err, path = %self.path.display(), "cannot clear the lock file");
        }
    }

    fn write(&mut self) -> Result<(), LockError> {
        let text = self.record.render();
        let write = |file: &mut File| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(text.as_bytes())?;
            file.flush()
        };
        write(&mut self.file).map_err(|source| LockError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bosun-up-lock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn me() -> Record {
        Record {
            pid: std::process::id(),
            started: "2026-01-02T03:04:05Z".into(),
            ..Record::default()
        }
    }

    #[test]
    fn records_read_back_what_was_written() {
        let table = [
            ("just started", me()),
            (
                "with etcd",
                Record {
                    etcd_pid: Some(42),
                    etcd_data_dir: Some("/data/etcd".into()),
                    ..me()
                },
            ),
        ];
        for (name, record) in table {
            assert_eq!(Record::parse(&record.render()), Some(record), "{name}");
        }
        assert_eq!(Record::parse(""), None, "a cleared record names nobody");
        assert_eq!(Record::parse("pid=x\n"), None, "garbage names nobody");
    }

    #[test]
    fn a_second_up_on_a_held_folder_is_told_who_holds_it_and_how_to_stop_it() {
        let dir = temp_dir("held");
        let (first, previous) = DataDirLock::take(&dir, me()).unwrap();
        assert_eq!(previous, None);
        let err = DataDirLock::take(&dir, me()).unwrap_err().to_string();
        let pid = std::process::id();
        assert!(
            err.contains(&format!("already running as pid {pid}"))
                && err.contains(&format!("kill {pid}"))
                && err.contains("2026-01-02T03:04:05Z"),
            "{err}"
        );
        drop(first);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_folder_left_by_a_dead_owner_is_taken_with_what_it_recorded() {
        let dir = temp_dir("dead");
        let (mut first, _) = DataDirLock::take(&dir, me()).unwrap();
        first.record_etcd(Some(4242), &dir.join("etcd")).unwrap();
        // What the kernel does when the owner dies: the lock goes, the record stays.
        drop(first);
        let (second, previous) = DataDirLock::take(&dir, me()).unwrap();
        let previous = previous.expect("the dead owner's record");
        assert_eq!(previous.etcd_pid, Some(4242));
        assert_eq!(previous.etcd_data_dir, Some(dir.join("etcd")));
        // A clean stop leaves nothing to clean.
        second.release();
        let (_third, previous) = DataDirLock::take(&dir, me()).unwrap();
        assert_eq!(previous, None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
