//! Every binary refuses a setting it cannot run with before it binds a port or starts
//! anything: it exits non-zero with a message naming the flag and what it must be, and never
//! panics (`--sim-nodes 0` used to index an empty node list).

use std::process::Stdio;
use std::time::Duration;

use bosun_tests::{free_addr, temp_dir, workspace_binary};

#[tokio::test]
async fn a_setting_no_service_can_run_with_is_an_error_naming_the_flag_not_a_panic() {
    let dir = temp_dir("config-errors");
    let data = dir.join("data").display().to_string();
    let shared = free_addr().to_string();
    let table: [(&str, &str, Vec<&str>, &str); 8] = [
        (
            "a node agent with zero sim nodes",
            "bosun-node-agent",
            vec!["--sim-nodes", "0"],
            "--sim-nodes 0: must be at least 1",
        ),
        (
            "a node agent whose heartbeat never pauses",
            "bosun-node-agent",
            vec!["--heartbeat-interval", "0s"],
            "--heartbeat-interval 0ns: must be longer than zero",
        ),
        (
            "a garbage collector without workers",
            "bosun-gc",
            vec!["--workers", "0"],
            "--workers 0: must be at least 1",
        ),
        (
            "a Job controller without workers",
            "bosun-job-controller",
            vec!["--workers", "0"],
            "--workers 0: must be at least 1",
        ),
        (
            "a DaemonSet controller without workers",
            "bosun-daemonset-controller",
            vec!["--workers", "0"],
            "--workers 0: must be at least 1",
        ),
        (
            "a scheduler without workers",
            "bosun-scheduler",
            vec!["--workers", "0"],
            "--workers",
        ),
        (
            "a broker no object fits",
            "bosun-broker",
            vec!["--max-object-bytes", "0"],
            "--max-object-bytes 0: must be at least 1",
        ),
        (
            "up with metrics on the broker's address",
            "bosun",
            vec![
                "up",
                "--data-dir",
                &data,
                "--listen",
                &shared,
                "--metrics-listen",
                &shared,
            ],
            "is also --listen",
        ),
    ];
    for (name, binary, args, want) in table {
        let run = tokio::process::Command::new(workspace_binary(binary))
            .args(&args)
            .env_clear()
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .unwrap_or_else(|_| panic!("{name}: {binary} {args:?} ran on instead of refusing"))
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: exited 0; {stderr}");
        assert!(
            stderr.contains(want),
            "{name}: wanted {want:?} in\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    assert!(
        !dir.join("data").exists(),
        "up touched its data folder before refusing"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
