//! The `bosun-broker` binary's command line, before it touches etcd or a port. (Having an
//! integration test also makes `cargo test --workspace` build the binary that the
//! end-to-end tests in `tests/` run as a child process.)

use std::process::Command;

fn broker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bosun-broker"))
}

#[test]
fn help_lists_every_setting_and_exits_zero() {
    let out = broker().arg("--help").output().expect("bosun-broker runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--etcd-endpoints",
        "--window-events",
        "--bookmark-interval",
        "--max-object-bytes",
        "--etcd-max-txn-ops",
        "--metrics-listen",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}

#[test]
fn a_bad_duration_is_rejected_with_what_to_write_instead() {
    let out = broker()
        .args(["--bookmark-interval", "5y"])
        .env_remove("BOSUN_BOOKMARK_INTERVAL")
        .output()
        .expect("bosun-broker runs");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("write e.g. 500ms, 30s"), "{text}");
}
