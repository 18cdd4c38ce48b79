//! The controller runtime every bosun service builds on: the broker client, informers and
//! their indexed caches (of whole objects or compact projections, with an interner for their
//! repeated strings), the work queue, telemetry (tracing + OpenTelemetry, W3C trace context
//! on every gRPC call), Prometheus metrics, graceful shutdown, an etcd child process
//! launcher for `bosun up` and the tests, and lifelines (watchers that clean up after a
//! process that died without a word). For every controller: the controller-ref manager
//! ([`claim`]: adopt and release by selector), in-flight [`expectations`], a non-blocking
//! event recorder ([`events`]) and the [`writer::Writer`] trait with its recording fake. For
//! scale-out: [`sharded`] (the fence on writes, shard filters, the reconcile gate).

pub mod alloc;
pub mod balance;
pub mod cache;
pub mod claim;
pub mod client;
pub mod config;
pub mod controller;
pub mod etcd_process;
pub mod events;
pub mod expectations;
pub mod informer;
pub mod intern;
pub mod lifeline;
pub mod metrics;
pub mod ports;
pub mod procfs;
pub mod queue;
pub mod rt;
pub mod sharded;
pub mod shards;
pub mod shutdown;
pub mod telemetry;
pub mod writer;
