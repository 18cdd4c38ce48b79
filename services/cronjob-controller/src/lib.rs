//! bosun's CronJob controller (Kubernetes' CronJob controller "v2", KUBERNETES.md B.3, plus
//! an explicit catch-up policy for missed slots).
//!
//! An informer over CronJobs feeds the controller runtime's work queue; an informer over
//! Jobs wakes the CronJob controlling a Job that changed (`owns(.., "CronJob")`). One
//! reconcile gathers the CronJob's Jobs from the cache (plus a fresh read of any Job in
//! `status.active` the cache has not shown yet), parses the schedule in its time zone, and
//! asks [`plan::plan`] what to do. It then acts through the runtime's [`Writer`] (so the act
//! half is tested in-process with a recording fake): **deletions** first (history, Replace),
//! then **creations** (each appended to `status.active`; `AlreadyExists` means another
//! attempt made it: the Job name is the idempotency key), then the **events** and the
//! **status**, written once and conflict-checked, after every creation in flight in the
//! controller has returned ([`burst`]: at a minute boundary the Jobs go first). The key is
//! requeued for the next slot: timers, not polling.
//!
//! Time comes from a [`Clock`] (the wall clock; tests move it, see `clock.rs`).
//!
//! Scale-out (issue 12; `bosun_runtime::sharded`): the controller runs as one of several
//! replicas, each reconciling the CronJobs of the shards it holds ([`Config::sharding`]: the
//! membership's, or a test's). Both informers are sharded: a
//! CronJob's Jobs follow the CronJob (Jobs without a CronJob are seen by every replica and
//! ignored). Every write is made in the reconcile's task, so under its fence; events go
//! through the recorder's own task, unfenced. The test hook that requeues every CronJob on
//! a clock step enqueues only the cached (held) ones, and the gate drops the rest.
//!
//! Tracing: each Job creation runs in a root span `fire` of its own, linked to the reconcile
//! it was decided in, so each run of a CronJob is one trace from its fire to its pods' starts
//! (a reconcile's trace is the request that created the CronJob).

pub mod burst;
pub mod clock;
pub mod config;
pub mod error;
pub mod fire;
pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use bosun_api::{Kind, Object, shard, v1};
use bosun_runtime::cache::Store;
use bosun_runtime::client::{Broker, DeleteOptions, Selector};
use bosun_runtime::controller::{Action, Controller, backoff_on_error};
use bosun_runtime::events::{EventRecorder, EventType};
use bosun_runtime::informer::Informer;
use bosun_runtime::metrics::{Counter, Histogram, Metrics};
use bosun_runtime::sharded::Replica;
use bosun_runtime::writer::Writer;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub use clock::Clock;
pub use config::Config;
pub use error::{Error, Result};
use plan::{DeleteReason, Inputs, JobFacts, Plan};

/// The component name on events.
pub const COMPONENT: &str = "cronjob-controller";
/// Events waiting to be written at most (beyond, dropped and counted: never waited for).
const EVENTS_QUEUED: usize = 4096;
/// How long before a slot its CronJob is reconciled: the reconcile plans the slot, waits
/// for it, and only creates the Job when it comes (the plan is the cache's view this much
/// before the slot; a Job that changes meanwhile queues the CronJob again).
pub const PREPARE_AHEAD: Duration = Duration::from_millis(250);
/// How soon a reconcile that lost a status write race looks again.
const CONFLICT_RETRY: Duration = Duration::from_millis(20);

struct CronMetrics {
    skew: Histogram,
    jobs_created: Counter,
    jobs_deleted: Counter,
    conflicts: Counter,
}

impl CronMetrics {
    fn new(m: &Metrics) -> CronMetrics {
        CronMetrics {
            skew: m.histogram(
                "bosun_cronjob_job_creation_skew_seconds",
                "Time between a Job's scheduled time and its creation (Kubernetes' cronjob_job_creation_skew, in finer buckets).",
                &[],
            ),
            jobs_created: m.counter(
                "bosun_cronjob_jobs_created_total",
                "Jobs created for CronJobs.",
                &[],
            ),
            jobs_deleted: m.counter(
                "bosun_cronjob_jobs_deleted_total",
                "Jobs the CronJob controller deleted (history limits, Replace).",
                &[],
            ),
            conflicts: m.counter(
                "bosun_cronjob_status_conflicts_total",
                "CronJob status writes that lost a race and were retried.",
                &[],
            ),
        }
    }
}

struct Ctx {
    writer: Arc<dyn Writer>,
    jobs: Store,
    recorder: EventRecorder,
    clock: Clock,
    metrics: CronMetrics,
    creations: burst::Creations,
}

/// Runs the CronJob controller against the broker in `config` until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let broker = Broker::connect_lazy(&config.broker.server)?;
    let registry = Metrics::new();
    let metrics_task = config.metrics.serve(&registry, &shutdown).await?;
    // Scale-out: this replica's shards (see `bosun_runtime::sharded::Replica`).
    const KIND: shard::Controller = shard::Controller::CronJob;
    let mut replica = Replica::join(
        KIND,
        &config.broker.server,
        &config.replica,
        config.sharding.clone(),
        &registry,
        &shutdown,
    )?;
    let sharding = replica.sharding.clone();
    let cronjobs = Informer::for_broker(&broker, Kind::CronJob, Selector::all());
    let jobs = Informer::for_broker(&broker, Kind::Job, Selector::all())
        .sharded(sharding.held.clone(), KIND);
    let job_store = jobs.store();
    let controller = Controller::new("cronjob", cronjobs, &registry)
        .sharded(sharding.held.clone(), KIND)
        .owns(jobs, "CronJob")
        .workers(config.workers);
    replica.report_queue(controller.queue());
    // Test hook: a moved clock makes every timer stale; look at every CronJob again.
    let requeue_all = tokio::spawn({
        let (queue, store, mut changes) = (
            controller.queue(),
            controller.store(),
            config.clock.changes(),
        );
        let shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = changes.changed() => if r.is_err() { return },
                }
                for key in store.keys() {
                    queue.add(key);
                }
            }
        }
    });
    let writer: Arc<dyn Writer> = Arc::new(broker);
    let ctx = Arc::new(Ctx {
        recorder: EventRecorder::with_writer(
            writer.clone(),
            COMPONENT,
            &config.replica.replica,
            EVENTS_QUEUED,
        )
        .with_metrics(&registry),
        writer,
        jobs: job_store,
        clock: config.clock.clone(),
        metrics: CronMetrics::new(&registry),
        creations: burst::Creations::default(),
    });
    controller
        .run(reconcile, backoff_on_error, ctx, shutdown)
        .await;
    replica.left().await;
    requeue_all.abort();
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    Ok(())
}

async fn reconcile(obj: Arc<Object>, ctx: Arc<Ctx>) -> Result<Action> {
    let Some(cronjob) = obj.as_cron_job() else {
        return Ok(Action::AwaitChange);
    };
    let jobs = owned_jobs(&ctx, cronjob).await?;
    let spec = cronjob.spec.clone().unwrap_or_default();
    let schedule = fire::parse(&spec);
    let plan_at = |now| {
        plan::plan(&Inputs {
            cronjob,
            jobs: &jobs,
            now,
            schedule: schedule
                .as_ref()
                .map(|s| s as &dyn plan::FireTimes)
                .map_err(Clone::clone),
        })
    };
    let now = ctx.clock.now();
    let mut plan = plan_at(now);
    match plan.requeue_after {
        // The next slot is close: plan for it now, wait for it, and act at once (at a minute
        // boundary, only the creations are left to do).
        Some(wait) if plan.create.is_empty() && wait <= PREPARE_AHEAD => {
            let at = now + wait;
            plan = plan_at(at);
            let jobs = build_jobs(cronjob, &plan);
            if !ctx.clock.sleep_until(at).await {
                // The clock was stepped back while waiting: plan again.
                return Ok(Action::Requeue(Duration::ZERO));
            }
            return act(&ctx, &obj, cronjob, plan, jobs).await;
        }
        // Wake up a little before the next slot, to prepare it.
        Some(wait) if wait > PREPARE_AHEAD => plan.requeue_after = Some(wait - PREPARE_AHEAD),
        _ => {}
    }
    tracing::debug!(
        cronjob = %obj.key(),
        create = plan.create.len(),
        delete = plan.delete.len(),
        next = %plan.status.next_schedule_time,
        "planned"
    );
    let jobs = build_jobs(cronjob, &plan);
    act(&ctx, &obj, cronjob, plan, jobs).await
}

/// The Jobs `plan` creates, with their slots.
fn build_jobs(cronjob: &v1::CronJob, plan: &Plan) -> Vec<(DateTime<Utc>, v1::Job)> {
    plan.create
        .iter()
        .map(|slot| (*slot, plan::build_job(cronjob, *slot)))
        .collect()
}

/// The Jobs `cronjob` controls: the cached ones, plus those in `status.active` that the
/// cache does not show yet (read fresh: a Job created a moment ago is not "missing").
async fn owned_jobs(ctx: &Ctx, cronjob: &v1::CronJob) -> Result<Vec<JobFacts>> {
    let meta = cronjob.metadata.clone().unwrap_or_default();
    let mut jobs: Vec<JobFacts> = ctx
        .jobs
        .by_owner(&meta.uid)
        .iter()
        .filter(|o| o.controller_ref().is_some_and(|r| r.uid == meta.uid))
        .filter_map(|o| o.as_job().map(JobFacts::of))
        .collect();
    let active = cronjob
        .status
        .as_ref()
        .map(|s| s.active.clone())
        .unwrap_or_default();
    for r in active {
        if jobs.iter().any(|j| j.uid == r.uid) {
            continue;
        }
        if let Some(fresh) = ctx
            .writer
            .get_opt(Kind::Job, &meta.namespace, &r.name)
            .await?
            && fresh.uid() == r.uid
            && let Some(job) = fresh.as_job()
        {
            jobs.push(JobFacts::of(job));
        }
    }
    Ok(jobs)
}

/// Carries `plan` out: deletions, creations (`jobs`, built from `plan.create`), the status,
/// events.
async fn act(
    ctx: &Ctx,
    obj: &Object,
    cronjob: &v1::CronJob,
    plan: Plan,
    jobs: Vec<(DateTime<Utc>, v1::Job)>,
) -> Result<Action> {
    let meta = cronjob.metadata.clone().unwrap_or_default();
    let ns = meta.namespace.as_str();
    // 1. Deletions: Replace's first (a failure stops the new run), then history's.
    for d in &plan.delete {
        let opts = DeleteOptions {
            uid: Some(d.uid.clone()),
            propagation_policy: Some(d.propagation().to_string()),
            ..Default::default()
        };
        match ctx.writer.delete(Kind::Job, ns, &d.name, opts).await {
            Ok(_) => {
                ctx.metrics.jobs_deleted.inc();
                ctx.recorder.emit(
                    obj,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted job {}", d.name),
                );
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                ctx.recorder.emit(
                    obj,
                    EventType::Warning,
                    "FailedDelete",
                    &format!("Deleted job: {e}"),
                );
                if d.reason == DeleteReason::Replaced {
                    return Err(Error::Replace {
                        job: d.name.clone(),
                        source: e,
                    });
                }
                tracing::warn!(job = %d.name, err = %e, "history cleanup failed; retried at the next reconcile");
            }
        }
    }
    // 2. Creations, oldest slot first; the first failure stops the rest.
    let mut status = plan.status;
    let mut created_up_to: Option<DateTime<Utc>> = None;
    let mut failure = None;
    let mut created_jobs = Vec::new();
    for (slot, job) in jobs {
        let name = job
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        // Each fire is a trace of its own (the reconcile's trace is the apply that made the
        // CronJob, maybe days ago): the broker stamps the fire's context on the Job, and the
        // Job's reconciles, its pods, their binds and starts follow it.
        let fire = fire_span(obj, slot, &name);
        let in_flight = ctx.creations.start();
        let outcome = ctx.writer.create(job.into()).instrument(fire).await;
        drop(in_flight);
        match outcome {
            Ok(created) => {
                let skew = (ctx.clock.now() - slot)
                    .num_microseconds()
                    .unwrap_or(i64::MAX);
                ctx.metrics.skew.observe(skew as f64 / 1e6);
                ctx.metrics.jobs_created.inc();
                status
                    .active
                    .push(plan::job_ref(ns, created.name(), created.uid()));
                created_jobs.push(created.name().to_string());
                created_up_to = Some(slot);
            }
            Err(e) if e.is_already_exists() => {
                // Another attempt made it (a retry, a restart, a stale cache): done. Kubernetes
                // re-adds it to `active` if it is ours and still running.
                if let Some(existing) = ctx.writer.get_opt(Kind::Job, ns, &name).await?
                    && existing.controller_ref().is_some_and(|r| r.uid == meta.uid)
                    && existing
                        .as_job()
                        .is_some_and(|j| JobFacts::of(j).finished.is_none())
                    && !status.active.iter().any(|r| r.uid == existing.uid())
                {
                    status
                        .active
                        .push(plan::job_ref(ns, existing.name(), existing.uid()));
                }
                created_up_to = Some(slot);
            }
            Err(e) => {
                ctx.recorder.emit(
                    obj,
                    EventType::Warning,
                    "FailedCreate",
                    &format!("Error creating job: {e}"),
                );
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_some() {
        // lastScheduleTime says what was created, so the rest is tried again.
        status.last_schedule_time = created_up_to.map(plan::format_time).unwrap_or_else(|| {
            cronjob
                .status
                .as_ref()
                .map(|s| s.last_schedule_time.clone())
                .unwrap_or_default()
        });
    }
    // 3. The status, once, and the events: after every Job creation in flight (this
    // reconcile's and other CronJobs' of the same boundary), so no Job waits behind them.
    if !created_jobs.is_empty() {
        ctx.creations.settled(burst::SETTLE_AT_MOST).await;
    }
    for name in &created_jobs {
        ctx.recorder.emit(
            obj,
            EventType::Normal,
            "SuccessfulCreate",
            &format!("Created job {name}"),
        );
    }
    // 3. The status, once.
    if cronjob.status.as_ref() != Some(&status) {
        let mut updated = cronjob.clone();
        updated.status = Some(status);
        match ctx.writer.update_status(updated.into()).await {
            Ok(_) => {}
            Err(e) if e.is_conflict() => {
                ctx.metrics.conflicts.inc();
                tracing::debug!(cronjob = %obj.key(), "status write lost a race; looking again");
                return Ok(Action::Requeue(CONFLICT_RETRY));
            }
            Err(e) if e.is_not_found() => return Ok(Action::AwaitChange),
            Err(e) => return Err(e.into()),
        }
    }
    // 4. Events about the CronJob.
    for e in plan.events {
        let ty = if e.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.recorder.emit(obj, ty, e.reason, &e.message);
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(plan
        .requeue_after
        .map_or(Action::AwaitChange, Action::Requeue))
}

/// The root span of the fire of `cronjob`'s slot `scheduled`, creating Job `job`: a new
/// trace, linked to the current (reconcile) span it was decided in.
fn fire_span(cronjob: &Object, scheduled: DateTime<Utc>, job: &str) -> tracing::Span {
    let span = tracing::info_span!(
        parent: None,
        "fire",
        cronjob = %cronjob.key(),
        scheduled = %plan::format_time(scheduled),
        job = %job,
    );
    bosun_runtime::telemetry::link_to_current(&span);
    span
}

#[cfg(test)]
mod tests;
