//! The tokio runtime of a controller or agent binary.
//!
//! A controller (scheduler, Job controller, gc, node agent) runs on one worker thread unless
//! `TOKIO_WORKER_THREADS` says otherwise. Its work is many small steps (a watch event, a
//! reconcile, a broker call), each woken from I/O: with a worker per core, most wake-ups
//! crossed threads, and the futex calls, context switches and work stealing cost more than
//! the second thread gave. Measured on `bosun-bench jobs` (2 cores, every process of the
//! plane on them): 0.83 CPU-s per 1,000 pod lifecycles with a worker per core, 0.73 with one.
//! The broker, which every component talks to, keeps tokio's default of a worker per core.

/// A multi-thread runtime with one worker (or `TOKIO_WORKER_THREADS`), every driver on.
pub fn controller() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    builder.enable_all().build()
}
