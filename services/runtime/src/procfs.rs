//! What Linux's `/proc` says about processes: which exist, whether one still runs, and the
//! members of a process group. `bosun up`, its lifelines, the process runtime and the tests
//! that check nothing outlives `up` all ask it here.

/// The pids of every process `/proc` lists (zombies included).
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// Whether `pid` is a live process: one of its threads still runs. A zombie is not: it
/// has ended and only waits for its parent to reap it (an orphan's new parent may never do
/// so). Every thread is looked at because a thread-group leader that ended before its
/// other threads already shows as a zombie while they still hold the process's files and
/// sockets (a SIGKILLed etcd, for a few milliseconds).
pub fn alive(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the `(comm)` field.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
        })
    })
}

/// The fields of `/proc/PID/stat` after `(comm)`: state, ppid, pgrp, session, …
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The live processes of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let pgid = pgid.to_string();
    pids()
        .into_iter()
        .filter(|&pid| stat_fields(pid).is_some_and(|f| f.get(2) == Some(&pgid)) && alive(pid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_listed_alive_and_in_its_group() {
        let me = std::process::id();
        assert!(pids().contains(&me));
        assert!(alive(me));
        let pgrp: u32 = stat_fields(me).expect("own stat")[2].parse().expect("pgrp");
        assert!(group_members(pgrp).contains(&me));
        assert!(!alive(u32::MAX), "no such process");
    }
}
