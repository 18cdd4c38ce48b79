//! A watcher process that cleans up after this process once it is gone, however it ends:
//! a clean exit, a panic, or `kill -9`.
//!
//! [`Lifeline::spawn`] starts `sh -c SCRIPT` in its own process group with the read end of
//! a pipe as its stdin, and keeps the write end in this process (close-on-exec, so no other
//! child inherits it). The watcher blocks reading that pipe. When this process ends, the
//! kernel closes the write end, the watcher reads end-of-file and runs the script (kill
//! etcd, kill the process groups of the pods). [`Lifeline::disarm`] writes a line instead:
//! the owner cleaned up by itself and the watcher exits without acting.
//!
//! Why a pipe and not Linux's parent-death signal (`PR_SET_PDEATHSIG`): that signal is set
//! in the child between `fork` and `exec`, which needs `unsafe` `pre_exec` (the workspace
//! forbids `unsafe`) or an exec wrapper (`setpriv`, or a re-exec of our own binary, which a
//! library used from tests cannot count on); it fires when the *thread* that forked ends
//! (a tokio blocking thread retires after 10 s idle), not the process; and it reaches only
//! the direct child, while a pod is a whole process group (the shim and everything its
//! command started). The pipe needs no `unsafe`, fires on the death of the process, never
//! misses a parent that died before the child was ready (the pipe is already closed), and
//! its script can kill whole groups. Its cost: one small `sh` per lifeline.
//!
//! The watcher sits in its own process group so that a Ctrl-C in the terminal, which goes to
//! the whole foreground group, does not kill it before its owner has stopped.

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};

/// Why a lifeline could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LifelineError {
    #[error("cannot create the pipe of the watcher that cleans up after {what}: {source}")]
    Pipe {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot start `sh`, the watcher that cleans up after {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
}

/// The `sh` program around a lifeline's script: a line on stdin disarms it, end-of-file
/// (the owner is gone) runs the script.
const WRAPPER: &str = "if read -r _; then exit 0; fi\n";

/// A watcher that runs its script once this process ends or the lifeline is dropped,
/// unless [`disarm`](Lifeline::disarm)ed first.
#[derive(Debug)]
pub struct Lifeline {
    /// Held open for as long as the owner lives; closing it fires the watcher.
    writer: Option<std::io::PipeWriter>,
    watcher: Option<Child>,
    what: String,
}

impl Lifeline {
    /// Starts a watcher running `script` (as `sh -c`, with `args` as `$1`..) once this process
    /// is gone. `what` names the owner in errors and logs (`etcd`, `the pods of node-1`).
    pub fn spawn<I, S>(what: &str, script: &str, args: I) -> Result<Lifeline, LifelineError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (reader, writer) = std::io::pipe().map_err(|source| LifelineError::Pipe {
            what: what.to_string(),
            source,
        })?;
        let watcher = Command::new("sh")
            .arg("-c")
            .arg(format!("{WRAPPER}{script}"))
            .arg(format!("bosun-lifeline ({what})"))
            .args(args)
            .stdin(reader)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Not in our group: a terminal's Ctrl-C must not take the watcher down first.
            .process_group(0)
            .spawn()
            .map_err(|source| LifelineError::Spawn {
                what: what.to_string(),
                source,
            })?;
        tracing::debug!(what, watcher = watcher.id(), "lifeline armed");
        Ok(Lifeline {
            writer: Some(writer),
            watcher: Some(watcher),
            what: what.to_string(),
        })
    }

    /// The watcher's process id.
    pub fn watcher_pid(&self) -> Option<u32> {
        self.watcher.as_ref().map(Child::id)
    }

    /// The owner cleaned up by itself: the watcher exits without running its script.
    /// Waits for it to exit (it does at once).
    pub fn disarm(mut self) {
        if let Some(mut writer) = self.writer.take()
            && writer.write_all(b"done\n").is_err()
        {
            // The watcher is gone already (killed by hand): nothing to disarm.
            tracing::debug!(what = %self.what, "lifeline watcher already gone");
        }
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.wait();
        }
    }

    /// Runs the script now and waits until it has finished (for a clean stop that wants
    /// the same cleanup as a crash).
    pub fn fire(mut self) {
        self.writer.take();
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.wait();
        }
    }
}

impl Drop for Lifeline {
    /// Dropping an armed lifeline fires it (without waiting for the script).
    fn drop(&mut self) {
        self.writer.take();
        if let Some(mut watcher) = self.watcher.take() {
            // Reaped by a thread so no zombie is left behind a long-lived owner.
            let spawned = std::thread::Builder::new()
                .name("lifeline-reaper".into())
                .spawn(move || {
                    let _ = watcher.wait();
                });
            if let Err(err) = spawned {
                tracing::debug!(%err, what = %self.what, "cannot reap the lifeline watcher");
            }
        }
    }
}

pub use crate::procfs::alive;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bosun-lifeline-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Waits up to 10 s for `path` to exist.
    fn appears(path: &Path) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if path.exists() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    const TOUCH: &str = "touch \"$1\"";

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(alive(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn a_dropped_lifeline_runs_its_script() {
        let dir = temp_dir("drop");
        let mark = dir.join("fired");
        let lifeline = Lifeline::spawn("a test", TOUCH, [&mark]).unwrap();
        assert!(!mark.exists());
        drop(lifeline);
        assert!(appears(&mark), "the script never ran");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fired_lifeline_has_run_its_script_when_fire_returns() {
        let dir = temp_dir("fire");
        let mark = dir.join("fired");
        Lifeline::spawn("a test", TOUCH, [&mark]).unwrap().fire();
        assert!(mark.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_disarmed_lifeline_does_nothing() {
        let dir = temp_dir("disarm");
        let mark = dir.join("fired");
        let lifeline = Lifeline::spawn("a test", TOUCH, [&mark]).unwrap();
        let pid = lifeline.watcher_pid().unwrap();
        lifeline.disarm();
        // disarm waited for the watcher: it is gone, and it did not touch the file.
        assert!(!alive(pid));
        assert!(!mark.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
