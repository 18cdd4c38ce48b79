//! The `sim` runtime: a container "runs" for the pod's `bosun.dev/sim-duration` and exits
//! with `bosun.dev/sim-exit-code`, costing a timer and nothing else.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{ContainerSpec, Instance, LogPaths, Refusal, Runtime, RuntimeError};

/// The annotation giving how long a simulated pod runs (`100ms`, `2s`; default 0).
pub const SIM_DURATION: &str = "bosun.dev/sim-duration";
/// The annotation giving a simulated pod's exit code (default 0).
pub const SIM_EXIT_CODE: &str = "bosun.dev/sim-exit-code";

/// Simulated containers.
pub struct SimRuntime;

impl Runtime for SimRuntime {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn check<'a>(&'a self, _spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async { Ok(()) })
    }

    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Instance>, RuntimeError>> {
        let (duration, code) = spec.sim.unwrap_or((Duration::ZERO, 0));
        Box::pin(async move {
            Ok(Arc::new(SimInstance {
                end: tokio::time::Instant::now() + duration,
                code,
                stopped: CancellationToken::new(),
            }) as Arc<dyn Instance>)
        })
    }

    fn adopt<'a>(&'a self, _spec: &'a ContainerSpec) -> BoxFuture<'a, Option<Arc<dyn Instance>>> {
        Box::pin(async { None })
    }

    fn log_paths(&self, _pod_uid: &str, _container: &str) -> LogPaths {
        LogPaths {
            current: "/dev/null".into(),
            rotated: "/dev/null".into(),
            previous: "/dev/null".into(),
        }
    }

    fn cleanup<'a>(&'a self, _pod_uid: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

struct SimInstance {
    end: tokio::time::Instant,
    code: i32,
    stopped: CancellationToken,
}

impl Instance for SimInstance {
    fn id(&self) -> String {
        "sim://".to_string()
    }

    fn wait(&self) -> BoxFuture<'_, i32> {
        Box::pin(async move {
            // Already over (a zero duration): no timer tick to wait for, so the agent can
            // report start and exit in one status write, as a kubelet that saw both would.
            if tokio::time::Instant::now() >= self.end {
                return self.code;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(self.end) => self.code,
                _ = self.stopped.cancelled() => 143,
            }
        })
    }

    fn stop(&self, _grace: Duration) -> BoxFuture<'_, ()> {
        self.stopped.cancel();
        Box::pin(async {})
    }
}
