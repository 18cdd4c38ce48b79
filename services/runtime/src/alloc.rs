//! Memory settings of a bosun process.
//!
//! The allocator itself is chosen in each binary's `main.rs` (`#[global_allocator]`, mimalloc
//! instead of glibc's malloc), not here: a library that sets the global allocator imposes it
//! on every program that links it, tests and embedders included. Why mimalloc, measured on the
//! Job benchmark (`bosun-bench jobs`, see `bench/RESULTS.md`): with glibc's allocator a third
//! or more of the broker's, the scheduler's and the node agent's CPU went to `malloc`/`free`
//! and to the kernel zeroing pages glibc had just handed back (its heap is trimmed and grown
//! again many times a second under churn).
//!
//! A process whose heap is mostly a large cache of small entries can also turn off
//! transparent huge pages ([`disable_huge_pages`]).

/// Stops the kernel from backing this process's memory with transparent huge pages (from
/// now on; Linux `PR_SET_THP_DISABLE`, kept across `fork` and `exec`). Call it first thing in
/// `main`.
///
/// mimalloc asks for huge pages on its arenas (`MADV_HUGEPAGE`), and a 2 MiB page is resident
/// in full as soon as one byte of it is touched. That pays off for a big, dense heap; a
/// controller's heap is a few MB of small cache entries and short-lived requests spread over
/// the arena, and most of each huge page stays empty. Measured on `bosun-bench jobs`: the Job
/// controller's arena held 10 MiB resident for 0.25 MB of live heap before the Job started,
/// and its RSS per cached pod went from 1.5–1.9 KB to 1.3 KB without huge pages.
pub fn disable_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
}
