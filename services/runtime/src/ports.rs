//! Free loopback ports for child processes (etcd, brokers, agents) started by `bosun up`,
//! the tests and the benchmarks.
//!
//! A port is found by binding `127.0.0.1:0` and releasing it for the child to take. Linux
//! readily hands the same just-released port to the next `bind(0)`, so two consecutive
//! picks can collide (CI once gave etcd the same client and peer port). Every port handed
//! out by this process is remembered and never handed out again.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, OnceLock};

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static SET: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    SET.get_or_init(Default::default)
}

/// A loopback address whose port was free a moment ago and was never handed out before by
/// this process.
pub fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    let mut seen = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    // Hold every rejected listener until a new port turns up, so the kernel moves on.
    let mut held = Vec::new();
    loop {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        if seen.insert(addr.port()) {
            return Ok(addr);
        }
        held.push(listener);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_picks_never_repeat_a_port() {
        let mut ports = HashSet::new();
        for _ in 0..200 {
            let addr = free_loopback_addr().unwrap();
            assert!(addr.ip().is_loopback());
            assert!(
                ports.insert(addr.port()),
                "port {} handed out twice",
                addr.port()
            );
        }
    }
}
