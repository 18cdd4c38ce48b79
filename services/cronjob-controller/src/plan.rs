//! Every decision the CronJob controller makes, as pure functions: given a CronJob, the
//! facts of the Jobs it owns, the time and its schedule, [`plan`] says what the status
//! becomes, which Jobs to create (by scheduled time) and delete, which events to record and
//! when to look again. `lib.rs` only gathers the facts and carries the plan out: deletions,
//! then creations, then the status (once, conflict-checked), then events.
//!
//! The steps, in Kubernetes' order (`syncCronJob`, KUBERNETES.md B.3), each its own function
//! with its own table test:
//!
//! 1. [`active`]: `status.active` against the owned Jobs: finished ones leave
//!    (`SawCompletedJob`), deleted ones leave (`MissingJob`), unfinished owned Jobs missing from
//!    it are **added** (`UnexpectedJob`; Kubernetes only warns, which lets Forbid overlap a Job
//!    created just before a crash), unless started by hand (`instantiate: manual`);
//! 2. [`last_successful`]: `lastSuccessfulTime`, the newest completion of a Complete Job;
//! 3. [`history`]: finished Jobs beyond `successfulJobsHistoryLimit` (3) /
//!    `failedJobsHistoryLimit` (1) are deleted, oldest (by start time) first;
//! 4. stop when the CronJob is being deleted, suspended, or its schedule or zone is unusable;
//! 5. [`due`]: the slots after `lastScheduleTime` (or the creation time), no older than
//!    `startingDeadlineSeconds`, up to now; more than 100 ⇒ `TooManyMissedTimes`;
//! 6. [`catch_up`]: which of them run, by `spec.catchUp.policy` (bosun extension):
//!    `Latest` (default, Kubernetes: the most recent), `None` (only a slot at most
//!    [`ON_TIME`] old, or `startingDeadlineSeconds` if shorter; older ones: `MissSchedule`),
//!    `All` (every one, oldest first, at most `maxRuns`, the most recent ones);
//! 7. [`concurrency`]: `Allow` runs them, `Forbid` waits while a Job is active
//!    (`JobAlreadyActive`; `lastScheduleTime` stays, so the latest unmet slot runs when it
//!    ends; with `All`, the missed slots run one at a time, oldest first), `Replace` deletes
//!    the active Jobs first and runs the newest slot only;
//! 8. the requeue: at the next slot (+100 ms, Kubernetes' pad for clock skew), also written as
//!    `status.nextScheduleTime`.
//!
//! A Job's name is `<cronjob>-<scheduled time in Unix minutes>`: the idempotency key. A slot
//! whose Job exists already is never created again, so a retry, a restart, a second replica
//! or a clock stepped backwards never runs one slot twice.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bosun_api::v1;
use bosun_api::vocab::propagation;
use chrono::{DateTime, SecondsFormat, Utc};

/// The CronJob words bosun's API module does not have yet (concurrency and catch-up policies,
/// the scheduled-time annotation).
pub mod words {
    /// `catchUp.policy` (bosun): Latest, None, All (the api's words).
    pub use bosun_api::cronjob::catch_up::{ALL, LATEST, NONE};
    /// `concurrencyPolicy`: Allow (the default), Forbid, Replace (the api's words).
    pub use bosun_api::cronjob::concurrency::{ALLOW, FORBID, REPLACE};
    /// The annotations on a CronJob's Jobs: the scheduled time (RFC 3339), and kubectl's
    /// mark of a Job started by hand (`instantiate: manual`).
    pub use bosun_api::cronjob::{
        INSTANTIATE_ANNOTATION as INSTANTIATE, INSTANTIATE_MANUAL as MANUAL,
        SCHEDULED_TIMESTAMP_ANNOTATION as SCHEDULED_TIMESTAMP,
    };
    /// The CronJob's `apiVersion` on the Jobs' ownerReference.
    pub const BATCH_V1: &str = "batch/v1";
}

/// Kubernetes' `successfulJobsHistoryLimit` default.
pub const DEFAULT_SUCCESSFUL_HISTORY: i32 = 3;
/// Kubernetes' `failedJobsHistoryLimit` default.
pub const DEFAULT_FAILED_HISTORY: i32 = 1;
/// `catchUp.maxRuns` default with `All`.
pub use bosun_api::cronjob::catch_up::DEFAULT_MAX_RUNS;
/// More missed slots than this: Kubernetes' `TooManyMissedTimes` warning (the Job still runs).
pub const TOO_MANY_MISSED: usize = 100;
/// The requeue's pad after a slot. Kubernetes pads 100 ms (`nextScheduleDelta`), which every
/// fire then starts late by; bosun's queue timers never fire early (tokio rounds a delay up to
/// the millisecond), and a reconcile woken a moment before its slot (the wall clock behind the
/// monotonic one) finds nothing due and is requeued for the rest, so 1 ms is enough.
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(1);
/// With `catchUp.policy: None`, a slot at most this old is on time (a reconcile woken by its
/// timer runs just after it; a busy controller may take longer); older ones were missed. `startingDeadlineSeconds`, if
/// shorter, wins.
pub const ON_TIME: Duration = Duration::from_secs(10);

/// When a CronJob fires. Implemented by bosun's parsed schedule
/// (`bosun_api::schedule::Schedule`), and by closures in tests.
pub trait FireTimes {
    /// The first slot strictly after `t`; `None` if it never fires again.
    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>>;

    /// The slots in `(after, until]`, oldest first, at most `limit` (the most recent); the
    /// bool says whether older ones were left out. `@every` slots count from `after`.
    ///
    /// The default walks forward from a window before `until`, widened fourfold until it
    /// holds `limit` slots or reaches `after` (right for wall-clock schedules; the real
    /// schedule walks back from `until` instead).
    fn times_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> (Vec<DateTime<Utc>>, bool) {
        let mut span = chrono::Duration::hours(1);
        loop {
            let start = until
                .checked_sub_signed(span)
                .map_or(after, |s| s.max(after));
            let mut slots = Vec::new();
            let mut t = self.next_after(start);
            while let Some(s) = t {
                if s > until {
                    break;
                }
                slots.push(s);
                t = self.next_after(s);
            }
            if slots.len() >= limit || start == after {
                let from = slots.len().saturating_sub(limit);
                let more = from > 0 || start > after;
                return (slots.split_off(from), more);
            }
            span = span * 4;
        }
    }
}

impl<F: Fn(DateTime<Utc>) -> Option<DateTime<Utc>>> FireTimes for F {
    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self(t)
    }
}

impl FireTimes for bosun_api::schedule::Schedule {
    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        bosun_api::schedule::Schedule::next_after(self, t)
    }

    fn times_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> (Vec<DateTime<Utc>>, bool) {
        bosun_api::schedule::Schedule::times_between(self, after, until, limit)
    }
}

/// Why a CronJob cannot be scheduled now (an event with Kubernetes' reason, no Jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    /// `InvalidSchedule`, `UnknownTimeZone`, `UnparseableSchedule`.
    pub reason: &'static str,
    pub message: String,
}

/// Whether a Job has finished, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Complete,
    Failed,
}

/// What the plan needs to know about one Job the CronJob controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFacts {
    pub name: String,
    pub uid: String,
    pub finished: Option<Finished>,
    pub start_time: Option<DateTime<Utc>>,
    pub completion_time: Option<DateTime<Utc>>,
    /// Marked for deletion (not counted as active, never deleted again).
    pub deleting: bool,
    /// Started by hand (`bosun create job --from=cronjob/..`, annotation
    /// `cronjob.kubernetes.io/instantiate: manual`): never put into `status.active`.
    pub manual: bool,
}

impl JobFacts {
    /// The facts of a Job object.
    pub fn of(job: &v1::Job) -> JobFacts {
        let meta = job.metadata.clone().unwrap_or_default();
        let status = job.status.clone().unwrap_or_default();
        let true_condition = |ty: &str| {
            bosun_api::condition::find_condition(&status.conditions, ty)
                .is_some_and(|c| c.status == bosun_api::vocab::status::TRUE)
        };
        let finished = if true_condition(bosun_api::vocab::condition::COMPLETE) {
            Some(Finished::Complete)
        } else if true_condition(bosun_api::vocab::condition::FAILED) {
            Some(Finished::Failed)
        } else {
            None
        };
        JobFacts {
            name: meta.name,
            uid: meta.uid,
            finished,
            start_time: parse_time(&status.start_time),
            completion_time: parse_time(&status.completion_time),
            deleting: !meta.deletion_timestamp.is_empty(),
            manual: meta.annotations.get(words::INSTANTIATE).map(String::as_str)
                == Some(words::MANUAL),
        }
    }
}

/// Everything a decision depends on.
pub struct Inputs<'a> {
    pub cronjob: &'a v1::CronJob,
    /// The Jobs the CronJob controls (cached, plus the active ones a fresh read found).
    pub jobs: &'a [JobFacts],
    pub now: DateTime<Utc>,
    /// The parsed `schedule` in `timeZone`, or why it cannot be used.
    pub schedule: Result<&'a dyn FireTimes, Unschedulable>,
}

/// An event to record on the CronJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Event {
    fn normal(reason: &'static str, message: String) -> Event {
        Event {
            warning: false,
            reason,
            message,
        }
    }
    fn warning(reason: &'static str, message: String) -> Event {
        Event {
            warning: true,
            reason,
            message,
        }
    }
}

/// Why a Job is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Beyond its history limit.
    History,
    /// Active under `Replace` when a new slot runs.
    Replaced,
}

/// A Job to delete (by uid, with Background propagation as Kubernetes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub name: String,
    pub uid: String,
    pub reason: DeleteReason,
}

impl Delete {
    /// The propagation policy of the delete (Kubernetes uses Background for both).
    pub fn propagation(&self) -> &'static str {
        propagation::BACKGROUND
    }
}

/// What to do, in order: delete, create (each appended to `status.active` once created),
/// write `status`, record `events`, look again after `requeue_after`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub status: v1::CronJobStatus,
    pub delete: Vec<Delete>,
    /// Scheduled times to create Jobs for, oldest first.
    pub create: Vec<DateTime<Utc>>,
    pub events: Vec<Event>,
    pub requeue_after: Option<Duration>,
}

/// Decides what to do with a CronJob (see the module docs for the steps).
pub fn plan(inputs: &Inputs) -> Plan {
    let cj = inputs.cronjob;
    let spec = cj.spec.clone().unwrap_or_default();
    let meta = cj.metadata.clone().unwrap_or_default();
    let mut status = cj.status.clone().unwrap_or_default();
    let mut events = Vec::new();

    // 1–3: bookkeeping, whatever else happens.
    let (active, mut ev) = active(&meta.namespace, &status.active, inputs.jobs);
    status.active = active;
    events.append(&mut ev);
    status.last_successful_time = last_successful(&status.last_successful_time, inputs.jobs);
    // (Each deletion's `SuccessfulDelete` is recorded by the act half once it is done.)
    let mut delete = history(&spec, inputs.jobs);
    let idle = |status: v1::CronJobStatus, delete, events| Plan {
        status: v1::CronJobStatus {
            next_schedule_time: String::new(),
            ..status
        },
        delete,
        create: Vec::new(),
        events,
        requeue_after: None,
    };

    // 4: nothing is scheduled for a CronJob being deleted, suspended or unschedulable.
    if !meta.deletion_timestamp.is_empty() || spec.suspend == Some(true) {
        return idle(status, delete, events);
    }
    let schedule = match &inputs.schedule {
        Ok(s) => *s,
        Err(why) => {
            events.push(Event::warning(why.reason, why.message.clone()));
            return idle(status, delete, events);
        }
    };
    let now = inputs.now;

    // 5: the slots due since the last one run.
    let last = parse_time(&status.last_schedule_time);
    let since = last.unwrap_or_else(|| created_at(&meta, now));
    let deadline = spec
        .starting_deadline_seconds
        .map(|s| now - chrono::Duration::seconds(s.max(0)));
    let earliest = deadline.map_or(since, |d| d.max(since));
    let policy = CatchUp::of(&spec);
    let due = due(schedule, earliest, now, policy.keep());
    // The next slot after the latest due one (for `@every`, in the series counted from
    // `earliest`; for the others, the first slot after now).
    let next = match due.slots.last() {
        Some(latest) => schedule.next_after(*latest),
        None => schedule.next_after(earliest),
    };
    status.next_schedule_time = next.map(format_time).unwrap_or_default();
    let requeue_after = next.map(|t| until(now, t) + NEXT_SCHEDULE_DELTA);
    if next.is_none() {
        events.push(Event::warning(
            "InvalidSchedule",
            format!("invalid schedule: {:?}: it never fires", spec.schedule),
        ));
    }
    if let Some(d) = deadline
        && d > since
        && schedule.next_after(since).is_some_and(|t| t < d)
    {
        events.push(Event::warning(
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {} (startingDeadlineSeconds passed)",
                format_time(schedule.next_after(since).unwrap_or(d))
            ),
        ));
    }
    if due.missed > TOO_MANY_MISSED && policy != CatchUp::None {
        events.push(Event::warning(
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
                .to_string(),
        ));
    }

    // 6: which of them run; a slot whose Job exists is done (the name is the key).
    let existing: HashSet<&str> = inputs.jobs.iter().map(|j| j.name.as_str()).collect();
    let (runs, mut ev) = catch_up(policy, &due.slots, now, spec.starting_deadline_seconds);
    events.append(&mut ev);
    let (done, runs): (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) = runs
        .into_iter()
        .partition(|t| existing.contains(job_name(&meta.name, *t).as_str()));
    // A slot whose Job exists was run (a status write lost after the create, a stale copy of
    // the CronJob): `lastScheduleTime` catches up with it, so it is not looked at again.
    if let Some(newest) = done.last()
        && parse_time(&status.last_schedule_time).is_none_or(|last| last < *newest)
    {
        status.last_schedule_time = format_time(*newest);
    }

    // 7: the concurrency policy.
    let (create, mut replaced, mut ev) =
        concurrency(&spec.concurrency_policy, &status.active, runs);
    events.append(&mut ev);
    if !replaced.is_empty() {
        let gone: HashSet<&str> = replaced.iter().map(|d| d.uid.as_str()).collect();
        status.active.retain(|r| !gone.contains(r.uid.as_str()));
    }
    delete.append(&mut replaced);
    if let Some(newest) = create.last() {
        status.last_schedule_time = format_time(*newest);
    }
    Plan {
        status,
        delete,
        create,
        events,
        requeue_after,
    }
}

/// The catch-up policy of `spec.catchUp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    Latest,
    None,
    All { max_runs: usize },
}

impl CatchUp {
    /// The policy in `spec` (unset or unknown: `Latest`, Kubernetes' behaviour).
    pub fn of(spec: &v1::CronJobSpec) -> CatchUp {
        let Some(c) = &spec.catch_up else {
            return CatchUp::Latest;
        };
        match c.policy.as_str() {
            words::NONE => CatchUp::None,
            words::ALL => CatchUp::All {
                max_runs: c.max_runs.unwrap_or(DEFAULT_MAX_RUNS).max(1) as usize,
            },
            _ => CatchUp::Latest,
        }
    }

    /// How many of the most recent due slots matter.
    fn keep(self) -> usize {
        match self {
            CatchUp::Latest | CatchUp::None => 1,
            CatchUp::All { max_runs } => max_runs,
        }
    }
}

/// Step 1: `status.active` against the owned Jobs.
pub fn active(
    namespace: &str,
    listed: &[v1::ObjectReference],
    jobs: &[JobFacts],
) -> (Vec<v1::ObjectReference>, Vec<Event>) {
    let mut events = Vec::new();
    let by_uid: BTreeMap<&str, &JobFacts> = jobs.iter().map(|j| (j.uid.as_str(), j)).collect();
    let mut kept = Vec::new();
    for r in listed {
        match by_uid.get(r.uid.as_str()) {
            None => events.push(Event::normal(
                "MissingJob",
                format!("Active job went missing: {}", r.name),
            )),
            Some(j) if j.finished.is_some() => events.push(Event::normal(
                "SawCompletedJob",
                format!(
                    "Saw completed job: {}, condition: {}",
                    j.name,
                    match j.finished {
                        Some(Finished::Failed) => bosun_api::vocab::condition::FAILED,
                        _ => bosun_api::vocab::condition::COMPLETE,
                    }
                ),
            )),
            Some(_) => kept.push(r.clone()),
        }
    }
    let listed_uids: HashSet<&str> = listed.iter().map(|r| r.uid.as_str()).collect();
    let mut unexpected: Vec<&JobFacts> = jobs
        .iter()
        .filter(|j| {
            j.finished.is_none()
                && !j.deleting
                && !j.manual
                && !listed_uids.contains(j.uid.as_str())
        })
        .collect();
    unexpected.sort_by(|a, b| a.name.cmp(&b.name));
    for j in unexpected {
        events.push(Event::warning(
            "UnexpectedJob",
            format!(
                "Saw a job that the controller did not create or forgot: {}",
                j.name
            ),
        ));
        kept.push(job_ref(namespace, &j.name, &j.uid));
    }
    (kept, events)
}

/// The reference to a Job in `status.active`.
pub fn job_ref(namespace: &str, name: &str, uid: &str) -> v1::ObjectReference {
    v1::ObjectReference {
        api_version: words::BATCH_V1.to_string(),
        kind: "Job".to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        ..Default::default()
    }
}

/// Step 2: the newest completion time of a Complete Job (never earlier than `stored`).
pub fn last_successful(stored: &str, jobs: &[JobFacts]) -> String {
    let newest = jobs
        .iter()
        .filter(|j| j.finished == Some(Finished::Complete))
        .filter_map(|j| j.completion_time)
        .chain(parse_time(stored))
        .max();
    newest.map_or_else(|| stored.to_string(), format_time)
}

/// Step 3: finished Jobs beyond the history limits, oldest start time first (none last,
/// ties by name).
pub fn history(spec: &v1::CronJobSpec, jobs: &[JobFacts]) -> Vec<Delete> {
    let mut out = Vec::new();
    for (kind, limit) in [
        (
            Finished::Complete,
            spec.successful_jobs_history_limit
                .unwrap_or(DEFAULT_SUCCESSFUL_HISTORY),
        ),
        (
            Finished::Failed,
            spec.failed_jobs_history_limit
                .unwrap_or(DEFAULT_FAILED_HISTORY),
        ),
    ] {
        let mut finished: Vec<&JobFacts> = jobs
            .iter()
            .filter(|j| j.finished == Some(kind) && !j.deleting)
            .collect();
        let limit = limit.max(0) as usize;
        if finished.len() <= limit {
            continue;
        }
        finished.sort_by(|a, b| {
            let key = |j: &JobFacts| (j.start_time.is_none(), j.start_time);
            key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
        });
        let extra = finished.len() - limit;
        out.extend(finished.into_iter().take(extra).map(|j| Delete {
            name: j.name.clone(),
            uid: j.uid.clone(),
            reason: DeleteReason::History,
        }));
    }
    out
}

/// The due slots: the `keep` most recent, oldest first, and how many there were in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub slots: Vec<DateTime<Utc>>,
    /// The number of slots in `(earliest, now]` (exact up to 101, then a lower bound).
    pub missed: usize,
}

/// Step 5: the slots in `(earliest, now]`, the `keep` most recent of them, and whether
/// there were more than [`TOO_MANY_MISSED`].
pub fn due(
    schedule: &dyn FireTimes,
    earliest: DateTime<Utc>,
    now: DateTime<Utc>,
    keep: usize,
) -> Due {
    let (mut slots, more) = schedule.times_between(earliest, now, keep.max(TOO_MANY_MISSED + 1));
    let missed = slots.len() + usize::from(more);
    let from = slots.len().saturating_sub(keep);
    Due {
        slots: slots.split_off(from),
        missed,
    }
}

/// Step 6: which due slots run under the catch-up policy (oldest first).
pub fn catch_up(
    policy: CatchUp,
    slots: &[DateTime<Utc>],
    now: DateTime<Utc>,
    starting_deadline_seconds: Option<i64>,
) -> (Vec<DateTime<Utc>>, Vec<Event>) {
    match policy {
        CatchUp::Latest | CatchUp::All { .. } => (slots.to_vec(), Vec::new()),
        CatchUp::None => {
            let Some(latest) = slots.last() else {
                return (Vec::new(), Vec::new());
            };
            let grace = starting_deadline_seconds.map_or(ON_TIME, |s| {
                Duration::from_secs(s.max(0) as u64).min(ON_TIME)
            });
            if until(*latest, now) <= grace {
                (vec![*latest], Vec::new())
            } else {
                let e = Event::normal(
                    "MissSchedule",
                    format!(
                        "Missed scheduled time to start a job: {} (catchUp policy None)",
                        format_time(*latest)
                    ),
                );
                (Vec::new(), vec![e])
            }
        }
    }
}

/// Step 7: the concurrency policy over the runs and the (reconciled) active Jobs: what is
/// created, which active Jobs are deleted first.
pub fn concurrency(
    policy: &str,
    active: &[v1::ObjectReference],
    runs: Vec<DateTime<Utc>>,
) -> (Vec<DateTime<Utc>>, Vec<Delete>, Vec<Event>) {
    let Some(newest) = runs.last().copied() else {
        return (Vec::new(), Vec::new(), Vec::new());
    };
    match policy {
        words::FORBID if !active.is_empty() => {
            let e = Event::normal(
                "JobAlreadyActive",
                format!(
                    "Not starting job because prior execution is running and concurrency policy is Forbid (scheduled {})",
                    format_time(runs[0])
                ),
            );
            (Vec::new(), Vec::new(), vec![e])
        }
        // One at a time: the oldest waiting slot now, the next once it has finished.
        words::FORBID => (vec![runs[0]], Vec::new(), Vec::new()),
        // Each run would replace the one before: only the newest runs.
        words::REPLACE => {
            let deletes = active
                .iter()
                .map(|r| Delete {
                    name: r.name.clone(),
                    uid: r.uid.clone(),
                    reason: DeleteReason::Replaced,
                })
                .collect();
            (vec![newest], deletes, Vec::new())
        }
        _ => (runs, Vec::new(), Vec::new()),
    }
}

/// A Job's name: `<cronjob>-<scheduled time in Unix minutes>` (the idempotency key).
pub fn job_name(cronjob: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled.timestamp().div_euclid(60))
}

/// The Job for the slot at `scheduled`: the template's labels, annotations and spec, the
/// scheduled-time annotation, the controlling ownerReference.
pub fn build_job(cronjob: &v1::CronJob, scheduled: DateTime<Utc>) -> v1::Job {
    let name = cronjob.metadata.as_ref().map_or("", |m| m.name.as_str());
    bosun_api::cronjob::job_from_template(
        cronjob,
        &job_name(name, scheduled),
        [(
            words::SCHEDULED_TIMESTAMP.to_string(),
            format_time(scheduled),
        )],
    )
}

/// How long from `from` to `to` (zero if `to` is not later).
fn until(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

/// When the CronJob was created (`now` if unknown: no slot before it was missed).
fn created_at(meta: &v1::ObjectMeta, now: DateTime<Utc>) -> DateTime<Utc> {
    parse_time(&meta.creation_timestamp).unwrap_or(now)
}

/// RFC 3339 in UTC, to the second (Kubernetes' `metav1.Time`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An RFC 3339 time; `None` when empty or malformed.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
