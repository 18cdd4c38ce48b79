//! The controller runtime every bosun service builds on: the broker client, informers and
//! their indexed caches, the work queue, telemetry (tracing + OpenTelemetry, W3C trace
//! context on every gRPC call), Prometheus metrics, graceful shutdown, and an etcd child
//! process launcher for `bosun up` and the tests.

mod alloc;
pub mod cache;
pub mod client;
pub mod controller;
pub mod etcd_process;
pub mod events;
pub mod informer;
pub mod metrics;
pub mod ports;
pub mod queue;
pub mod shutdown;
pub mod telemetry;
