//! The memory allocator of every bosun process: mimalloc instead of glibc's malloc.
//!
//! Measured on the Job benchmark (`bosun-bench jobs`, see `bench/RESULTS.md`): with glibc's
//! allocator a third or more of the broker's, the scheduler's and the node agent's CPU went to
//! `malloc`/`free` and to the kernel zeroing pages glibc had just handed back (its heap is
//! trimmed and grown again many times a second under churn). Setting it here, in the crate
//! every service links, gives each binary the same allocator without a line in its `main`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
