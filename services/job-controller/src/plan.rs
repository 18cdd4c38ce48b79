//! Every decision the Job controller makes, as one pure function: given a Job, the facts of
//! its pods, the state of the Jobs it depends on and the time, [`plan`] says what the status
//! becomes, which pods to create, delete and release, which events to record, and when to
//! look again. The reconcile in `lib.rs` only gathers facts and carries the plan out.
//!
//! ## Counting each finished pod exactly once
//!
//! Every pod the controller creates carries the tracking finalizer, so it cannot disappear
//! before it has been counted. A finished, tracked pod is counted in two steps:
//!
//! 1. its uid goes into `status.uncountedTerminatedPods` (Indexed successes go straight into
//!    `completedIndexes`, a set, which needs no uid) — written, conflict-checked, *before*
//!    anything else happens to the pod;
//! 2. its finalizer is removed ("released");
//! 3. a later status write moves every uid whose pod is released or gone from the uncounted
//!    lists into `succeeded` / `failed`, in the same write that drops it from the list.
//!
//! A crash between any two steps leaves enough in etcd to finish the job: a uid already in
//! the lists is never added twice, a released pod is never counted again, and the move is
//! one atomic write. Pods the controller deletes itself (suspend, scale-down, a finishing
//! Job) are released first and therefore never counted as failures.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use bosun_api::v1;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::indexes::Indexes;
use crate::pods::{IndexFailures, Phase, PodFacts};

/// Pods created or deleted in one reconcile at most (Kubernetes' MaxPodCreateDeletePerSync).
pub const MAX_POD_CHANGES_PER_SYNC: usize = 500;
/// Kubernetes' retry delay: 10 s doubling up to 10 min.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(600);
pub const DEFAULT_BACKOFF_FACTOR: u32 = 2;

/// Condition types.
pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const SUSPENDED: &str = "Suspended";
/// bosun extension: the Job waits for the Jobs in `spec.dependsOn`.
pub const WAITING: &str = "Waiting";

/// Where a Job this one depends on stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyState {
    Complete,
    /// Failed, with its reason.
    Failed(String),
    /// Anything else: `Running`, `Suspended`, `not found`...
    Pending(String),
}

/// One entry of `spec.dependsOn` with its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub state: DependencyState,
}

/// A pod to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPod {
    pub index: Option<i32>,
    pub failures: IndexFailures,
}

/// An event to record on the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// The status to store (written only if it differs from the stored one).
    pub status: v1::JobStatus,
    /// Pods whose tracking finalizer is removed (after the status is written).
    pub release: Vec<String>,
    /// Pods the controller deletes (released first: never counted as failures).
    pub delete: Vec<String>,
    pub create: Vec<NewPod>,
    pub events: Vec<JobEvent>,
    /// Look again after this long (retry delay, deadline), unless a change comes first.
    pub requeue: Option<Duration>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The condition `ty` when its status is True.
pub fn true_condition<'a>(status: &'a v1::JobStatus, ty: &str) -> Option<&'a v1::Condition> {
    status
        .conditions
        .iter()
        .find(|c| c.r#type == ty && c.status == "True")
}

/// Whether the Job is finished (Complete or Failed), and how.
pub fn finished(status: &v1::JobStatus) -> Option<&'static str> {
    if true_condition(status, COMPLETE).is_some() {
        Some(COMPLETE)
    } else if true_condition(status, FAILED).is_some() {
        Some(FAILED)
    } else {
        None
    }
}

/// Sets condition `ty` (keeping lastTransitionTime when its status does not change);
/// returns true when anything changed.
fn set_condition(
    status: &mut v1::JobStatus,
    ty: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: &str,
) -> bool {
    match status.conditions.iter_mut().find(|c| c.r#type == ty) {
        Some(c) if c.status == value && c.reason == reason && c.message == message => false,
        Some(c) => {
            if c.status != value {
                c.last_transition_time = now.to_string();
            }
            c.status = value.to_string();
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.last_probe_time = now.to_string();
            true
        }
        None => {
            status.conditions.push(v1::Condition {
                r#type: ty.to_string(),
                status: value.to_string(),
                reason: reason.to_string(),
                message: message.to_string(),
                last_probe_time: now.to_string(),
                last_transition_time: now.to_string(),
                ..Default::default()
            });
            true
        }
    }
}

/// The retry delay after `failures` consecutive failed pods (bosun: per Job, `podBackoff`).
pub fn retry_delay(spec: &v1::JobSpec, failures: i32) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let b = spec.pod_backoff.unwrap_or_default();
    let secs = |v: Option<i64>, d: Duration| v.map_or(d, |s| Duration::from_secs(s.max(0) as u64));
    let initial = secs(b.initial_seconds, DEFAULT_BACKOFF_INITIAL);
    let max = secs(b.max_seconds, DEFAULT_BACKOFF_MAX);
    let factor = b.factor.map_or(DEFAULT_BACKOFF_FACTOR, |f| f.max(1) as u32);
    let mut delay = initial;
    for _ in 1..failures {
        delay = delay.saturating_mul(factor);
        if delay >= max {
            break;
        }
    }
    delay.min(max)
}

/// What the podFailurePolicy says about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureAction {
    /// No rule matched, or `Count`: count it against backoffLimit.
    Count,
    /// Fail the Job, with the message Kubernetes writes.
    FailJob(String),
    FailIndex,
    Ignore,
}

/// Evaluates the rules in order; the first match wins (KUBERNETES.md A.1).
pub fn failure_action(
    policy: Option<&v1::PodFailurePolicy>,
    namespace: &str,
    pod: &PodFacts,
) -> FailureAction {
    let Some(policy) = policy else {
        return FailureAction::Count;
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        let matched: Option<String> = if let Some(req) = &rule.on_exit_codes {
            pod.exit_codes
                .iter()
                .filter(|e| req.container_name.as_ref().is_none_or(|c| *c == e.container))
                .find(|e| match req.operator.as_str() {
                    "In" => req.values.contains(&e.code),
                    "NotIn" => !req.values.contains(&e.code),
                    _ => false,
                })
                .map(|e| {
                    format!(
                        "Container {} for pod {namespace}/{} failed with exit code {} matching {} rule at index {i}",
                        e.container, pod.name, e.code, rule.action
                    )
                })
        } else {
            rule.on_pod_conditions
                .iter()
                .find(|p| {
                    let want = if p.status.is_empty() {
                        "True"
                    } else {
                        &p.status
                    };
                    pod.conditions
                        .iter()
                        .any(|(t, s)| *t == p.r#type && s == want)
                })
                .map(|p| {
                    format!(
                        "Pod {namespace}/{} has condition {} matching {} rule at index {i}",
                        pod.name, p.r#type, rule.action
                    )
                })
        };
        let Some(message) = matched else { continue };
        match rule.action.as_str() {
            "FailJob" => return FailureAction::FailJob(message),
            "FailIndex" => return FailureAction::FailIndex,
            "Ignore" => return FailureAction::Ignore,
            "Count" => return FailureAction::Count,
            // An action this version does not know: clients skip the rule.
            _ => continue,
        }
    }
    FailureAction::Count
}

/// Whether a success policy rule holds; returns the index of the first that does.
pub fn success_rule_met(
    policy: Option<&v1::SuccessPolicy>,
    completed: &Indexes,
    completions: i32,
) -> Option<usize> {
    let policy = policy?;
    policy.rules.iter().position(|rule| {
        let set = rule
            .succeeded_indexes
            .as_deref()
            .map(|s| Indexes::parse(s, completions));
        match (&set, rule.succeeded_count) {
            (Some(set), Some(n)) => {
                set.iter().filter(|i| completed.contains(*i)).count() >= n as usize
            }
            (Some(set), None) => set.iter().all(|i| completed.contains(i)),
            (None, Some(n)) => completed.len() >= n as usize,
            (None, None) => false,
        }
    })
}

/// Everything [`plan`] looks at.
pub struct Inputs<'a> {
    pub job: &'a v1::Job,
    /// The Job's pods (cached, plus those created a moment ago and not yet seen).
    pub pods: &'a [PodFacts],
    /// `spec.dependsOn`, each with its state.
    pub dependencies: &'a [Dependency],
    pub now: DateTime<Utc>,
}

/// Decides what to do with one Job.
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let Inputs {
        job,
        pods,
        dependencies,
        now,
    } = *inputs;
    let now_s = ts(now);
    let spec = job.spec.clone().unwrap_or_default();
    let namespace = job
        .metadata
        .as_ref()
        .map_or(String::new(), |m| m.namespace.clone());
    let stored = job.status.clone().unwrap_or_default();
    let mut st = stored.clone();
    let mut out = Plan::default();

    // A finished Job only lets go of its pods.
    if finished(&stored).is_some() {
        out.release = pods
            .iter()
            .filter(|p| p.tracked)
            .map(|p| p.name.clone())
            .collect();
        st.active = 0;
        st.ready = Some(0);
        st.terminating = Some(pods.iter().filter(|p| p.deleting && !p.finished()).count() as i32);
        out.status = st;
        return out;
    }

    let indexed = spec.completion_mode == "Indexed";
    let completions = spec.completions;
    let limit = completions.unwrap_or(0);
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let on_failure = spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .is_some_and(|s| s.restart_policy == "OnFailure");
    let failure_policy = spec.pod_failure_policy.as_ref();
    let only_failed = spec.pod_replacement_policy == "Failed"
        || (spec.pod_replacement_policy.is_empty() && failure_policy.is_some());
    let per_index = spec.backoff_limit_per_index;

    // --- counting (module docs) ---
    let unc = st.uncounted_terminated_pods.clone().unwrap_or_default();
    let stored_uncounted: HashSet<&str> = unc
        .succeeded
        .iter()
        .chain(unc.failed.iter())
        .map(String::as_str)
        .collect();
    let mut unc_succeeded = unc.succeeded.clone();
    let mut unc_failed = unc.failed.clone();
    let mut completed = Indexes::parse(&st.completed_indexes, limit);
    let mut failed_indexes = Indexes::parse(st.failed_indexes.as_deref().unwrap_or(""), limit);
    let mut fail_job: Option<String> = None;
    let mut newest_success: Option<DateTime<Utc>> = None;
    let mut newest_failure: Option<DateTime<Utc>> = None;
    let mut new_failures = 0;
    // The failure counts a replacement for each index inherits.
    let mut index_failures: BTreeMap<i32, IndexFailures> = BTreeMap::new();
    let counts_as_failed = |p: &PodFacts| {
        p.phase == Phase::Failed || (!only_failed && p.deleting && p.phase != Phase::Succeeded)
    };
    for p in pods {
        if let Some(i) = p.index {
            // What a replacement for this index inherits: this pod's counts, plus this
            // pod's own failure when it failed.
            let (mut failures, mut ignored) = (p.index_failures, p.index_ignored_failures);
            if p.phase == Phase::Failed {
                match failure_action(failure_policy, &namespace, p) {
                    FailureAction::Ignore => ignored += 1,
                    _ => failures += 1,
                }
            }
            let e = index_failures.entry(i).or_default();
            e.failures = e.failures.max(failures);
            e.ignored = e.ignored.max(ignored);
        }
        if !p.tracked {
            continue;
        }
        if stored_uncounted.contains(p.uid.as_str()) {
            out.release.push(p.name.clone());
            continue;
        }
        if p.phase == Phase::Succeeded {
            if indexed {
                if let Some(i) = p
                    .index
                    .filter(|i| *i < limit && !failed_indexes.contains(*i))
                {
                    completed.insert(i);
                }
            } else {
                unc_succeeded.push(p.uid.clone());
            }
            newest_success = newest_success.max(p.finished_at.or(Some(now)));
            out.release.push(p.name.clone());
        } else if counts_as_failed(p) {
            let action = if p.phase == Phase::Failed {
                failure_action(failure_policy, &namespace, p)
            } else {
                FailureAction::Count
            };
            let mut counted = true;
            match action {
                FailureAction::Ignore => counted = false,
                FailureAction::FailJob(message) => {
                    fail_job.get_or_insert(message);
                }
                FailureAction::FailIndex => {
                    if let Some(i) = p.index.filter(|i| *i < limit) {
                        failed_indexes.insert(i);
                    }
                }
                FailureAction::Count => {
                    if let (true, Some(max), Some(i)) = (indexed, per_index, p.index)
                        && p.index_failures + 1 > max
                        && i < limit
                        && !completed.contains(i)
                    {
                        failed_indexes.insert(i);
                    }
                }
            }
            if counted {
                unc_failed.push(p.uid.clone());
                new_failures += 1;
                newest_failure = newest_failure.max(p.finished_at.or(Some(now)));
            }
            out.release.push(p.name.clone());
        }
    }
    // Step 3: uids whose pods are released or gone move into the counters.
    let still_tracked: HashSet<&str> = pods
        .iter()
        .filter(|p| p.tracked)
        .map(|p| p.uid.as_str())
        .collect();
    let before = unc_succeeded.len();
    unc_succeeded.retain(|uid| {
        !stored_uncounted.contains(uid.as_str()) || still_tracked.contains(uid.as_str())
    });
    if !indexed {
        st.succeeded += (before - unc_succeeded.len()) as i32;
    }
    let before = unc_failed.len();
    unc_failed.retain(|uid| {
        !stored_uncounted.contains(uid.as_str()) || still_tracked.contains(uid.as_str())
    });
    st.failed += (before - unc_failed.len()) as i32;
    if indexed {
        st.succeeded = completed.len() as i32;
    }
    // The retry delay's inputs, kept in status.
    let mut last_failure = parse_time(&st.last_failure_time);
    if let Some(s) = newest_success
        && last_failure.is_none_or(|f| s >= f)
    {
        st.consecutive_failures = 0;
    }
    st.consecutive_failures += new_failures;
    if newest_failure > last_failure {
        last_failure = newest_failure;
        // Microseconds: the retry delay counts from this, and a time cut to the second
        // would let the next pod start up to a second early.
        st.last_failure_time = last_failure
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
            .unwrap_or_default();
    }
    let succeeded_total = if indexed {
        completed.len() as i32
    } else {
        st.succeeded + unc_succeeded.len() as i32
    };
    let failed_total = st.failed + unc_failed.len() as i32;

    // --- the pods still running ---
    let mut active: Vec<&PodFacts> = pods
        .iter()
        .filter(|p| !p.finished() && !p.deleting)
        .collect();
    active.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
    let terminating: Vec<&PodFacts> = pods
        .iter()
        .filter(|p| !p.finished() && p.deleting)
        .collect();

    // --- suspend / resume ---
    let suspended = spec.suspend == Some(true);
    let was_suspended = true_condition(&stored, SUSPENDED).is_some();
    let mut finishing = true_condition(&st, SUCCESS_CRITERIA_MET).is_some()
        || true_condition(&st, FAILURE_TARGET).is_some();

    // --- dependencies (bosun extension): only before the Job starts ---
    let mut waiting = false;
    if !finishing && st.start_time.is_empty() && !dependencies.is_empty() {
        let failed_dep = dependencies.iter().find_map(|d| match &d.state {
            DependencyState::Failed(reason) => Some(format!("job {} failed ({reason})", d.name)),
            _ => None,
        });
        let pending: Vec<String> = dependencies
            .iter()
            .filter_map(|d| match &d.state {
                DependencyState::Pending(state) => Some(format!("{} ({state})", d.name)),
                _ => None,
            })
            .collect();
        if let Some(message) = failed_dep {
            set_condition(
                &mut st,
                WAITING,
                "False",
                "DependencyFailed",
                &message,
                &now_s,
            );
            set_condition(
                &mut st,
                FAILURE_TARGET,
                "True",
                "DependencyFailed",
                &message,
                &now_s,
            );
            out.events.push(JobEvent {
                warning: true,
                reason: "DependencyFailed",
                message,
            });
            finishing = true;
        } else if !pending.is_empty() {
            let message = format!("waiting for job(s) {}", pending.join(", "));
            set_condition(
                &mut st,
                WAITING,
                "True",
                "WaitingForDependencies",
                &message,
                &now_s,
            );
            waiting = true;
        } else if st.conditions.iter().any(|c| c.r#type == WAITING) {
            set_condition(
                &mut st,
                WAITING,
                "False",
                "DependenciesComplete",
                "every job in dependsOn is Complete",
                &now_s,
            );
        }
    }

    if !finishing && !waiting {
        if suspended {
            if !was_suspended {
                set_condition(
                    &mut st,
                    SUSPENDED,
                    "True",
                    "JobSuspended",
                    "Job suspended",
                    &now_s,
                );
                out.events.push(JobEvent {
                    warning: false,
                    reason: "Suspended",
                    message: "Job suspended".into(),
                });
            }
            // The deadline clock stops; it restarts from zero on resume.
            st.start_time.clear();
        } else {
            if was_suspended {
                set_condition(
                    &mut st,
                    SUSPENDED,
                    "False",
                    "JobResumed",
                    "Job resumed",
                    &now_s,
                );
                out.events.push(JobEvent {
                    warning: false,
                    reason: "Resumed",
                    message: "Job resumed".into(),
                });
                st.start_time = now_s.clone();
            }
            if st.start_time.is_empty() {
                st.start_time = now_s.clone();
            }
        }
    }

    // --- success and failure criteria, in Kubernetes' precedence ---
    if !finishing && !waiting && !suspended {
        let restarts: i32 = active.iter().map(|p| p.restarts).sum();
        let backoff_exceeded = failed_total > backoff_limit
            || (on_failure && restarts > 0 && restarts >= backoff_limit.max(1));
        let deadline = spec
            .active_deadline_seconds
            .zip(parse_time(&st.start_time))
            .map(|(s, start)| start + chrono::Duration::seconds(s));
        let all_indexes_done =
            indexed && (0..limit).all(|i| completed.contains(i) || failed_indexes.contains(i));
        let failure: Option<(&str, String)> = if let Some(message) = fail_job.clone() {
            Some(("PodFailurePolicy", message))
        } else if backoff_exceeded {
            Some((
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".into(),
            ))
        } else if deadline.is_some_and(|d| now >= d) {
            Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline".into(),
            ))
        } else if indexed
            && spec
                .max_failed_indexes
                .is_some_and(|m| failed_indexes.len() > m.max(0) as usize)
        {
            Some((
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes".into(),
            ))
        } else if all_indexes_done && !failed_indexes.is_empty() {
            Some(("FailedIndexes", "Job has failed indexes".into()))
        } else {
            None
        };
        let success: Option<(&str, String)> = if failure.is_some() {
            None
        } else if let Some(rule) = indexed
            .then(|| success_rule_met(spec.success_policy.as_ref(), &completed, limit))
            .flatten()
        {
            Some(("SuccessPolicy", format!("Matched rules at index {rule}")))
        } else {
            let reached = match completions {
                Some(c) if indexed => completed.len() as i32 >= c,
                Some(c) => succeeded_total >= c,
                None => succeeded_total >= 1 && active.is_empty(),
            };
            reached.then(|| {
                (
                    "CompletionsReached",
                    "Reached expected number of succeeded pods".to_string(),
                )
            })
        };
        if let Some((reason, message)) = failure {
            set_condition(&mut st, FAILURE_TARGET, "True", reason, &message, &now_s);
            out.events.push(JobEvent {
                warning: true,
                reason: match reason {
                    "PodFailurePolicy" => "PodFailurePolicy",
                    "BackoffLimitExceeded" => "BackoffLimitExceeded",
                    "DeadlineExceeded" => "DeadlineExceeded",
                    "MaxFailedIndexesExceeded" => "MaxFailedIndexesExceeded",
                    _ => "FailedIndexes",
                },
                message,
            });
            finishing = true;
        } else if let Some((reason, message)) = success {
            set_condition(
                &mut st,
                SUCCESS_CRITERIA_MET,
                "True",
                reason,
                &message,
                &now_s,
            );
            finishing = true;
        } else if let Some(d) = deadline {
            out.requeue = Some((d - now).to_std().unwrap_or_default() + Duration::from_millis(1));
        }
    }

    // --- pods to delete and create ---
    let mut deleted: BTreeSet<&str> = BTreeSet::new();
    if finishing || suspended {
        deleted.extend(active.iter().map(|p| p.name.as_str()));
    } else if !waiting {
        let mut creates: Vec<NewPod> = Vec::new();
        if indexed {
            let mut seen: BTreeSet<i32> = BTreeSet::new();
            for p in &active {
                match p.index {
                    Some(i)
                        if i < limit
                            && !completed.contains(i)
                            && !failed_indexes.contains(i)
                            && seen.insert(i) => {}
                    // No index, out of range, already done, or a duplicate: not needed.
                    _ => {
                        deleted.insert(p.name.as_str());
                    }
                }
            }
            // Too many running (parallelism lowered): the highest indexes go.
            let mut running: Vec<&&PodFacts> = active
                .iter()
                .filter(|p| !deleted.contains(p.name.as_str()))
                .collect();
            running.sort_by_key(|p| std::cmp::Reverse(p.index));
            let excess = running.len().saturating_sub(parallelism as usize);
            deleted.extend(running.iter().take(excess).map(|p| p.name.as_str()));
            let mut busy: BTreeSet<i32> = seen;
            if only_failed {
                busy.extend(terminating.iter().filter_map(|p| p.index));
            }
            let in_use =
                active.len() - deleted.len() + if only_failed { terminating.len() } else { 0 };
            let room = (parallelism as usize).saturating_sub(in_use);
            for i in (0..limit)
                .filter(|i| {
                    !completed.contains(*i) && !failed_indexes.contains(*i) && !busy.contains(i)
                })
                .take(room)
            {
                creates.push(NewPod {
                    index: Some(i),
                    failures: index_failures.get(&i).copied().unwrap_or_default(),
                });
            }
        } else {
            let want = match completions {
                Some(c) => parallelism.min((c - succeeded_total).max(0)),
                None if succeeded_total > 0 => active.len() as i32,
                None => parallelism,
            } as usize;
            if active.len() > want {
                // Kubernetes' victim order: unscheduled, then not ready, then the newest.
                let mut victims = active.clone();
                victims.sort_by(|a, b| {
                    (a.scheduled, a.ready, std::cmp::Reverse(a.created_at)).cmp(&(
                        b.scheduled,
                        b.ready,
                        std::cmp::Reverse(b.created_at),
                    ))
                });
                deleted.extend(
                    victims
                        .iter()
                        .take(active.len() - want)
                        .map(|p| p.name.as_str()),
                );
            }
            let in_use =
                active.len() - deleted.len() + if only_failed { terminating.len() } else { 0 };
            for _ in in_use..want {
                creates.push(NewPod {
                    index: None,
                    failures: IndexFailures::default(),
                });
            }
        }
        creates.truncate(MAX_POD_CHANGES_PER_SYNC);
        // The retry delay after failures (persisted in status, so it survives restarts).
        if !creates.is_empty() && st.consecutive_failures > 0 {
            let ready_at = last_failure.unwrap_or(now)
                + chrono::Duration::from_std(retry_delay(&spec, st.consecutive_failures))
                    .unwrap_or_default();
            if now < ready_at {
                let wait = (ready_at - now).to_std().unwrap_or_default() + Duration::from_millis(1);
                out.requeue = Some(out.requeue.map_or(wait, |r| r.min(wait)));
                creates.clear();
            }
        }
        out.create = creates;
    }
    out.delete = deleted
        .iter()
        .take(MAX_POD_CHANGES_PER_SYNC)
        .map(|s| s.to_string())
        .collect();

    // --- the finishing Job turns Complete / Failed once every pod is gone or released ---
    let remaining = active.len() - out.delete.len().min(active.len());
    if finishing
        && remaining == 0
        && out.delete.is_empty()
        && terminating.is_empty()
        && unc_succeeded.is_empty()
        && unc_failed.is_empty()
        && out.release.is_empty()
        && !pods.iter().any(|p| p.tracked)
    {
        if let Some(c) = true_condition(&st, SUCCESS_CRITERIA_MET).cloned() {
            set_condition(&mut st, COMPLETE, "True", &c.reason, &c.message, &now_s);
            st.completion_time = now_s.clone();
            out.events.push(JobEvent {
                warning: false,
                reason: "Completed",
                message: "Job completed".into(),
            });
        } else if let Some(c) = true_condition(&st, FAILURE_TARGET).cloned() {
            set_condition(&mut st, FAILED, "True", &c.reason, &c.message, &now_s);
        }
    }

    // --- the counters ---
    let kept: Vec<&&PodFacts> = active
        .iter()
        .filter(|p| !out.delete.contains(&p.name))
        .collect();
    st.active = (kept.len() + out.create.len()) as i32;
    st.ready = Some(kept.iter().filter(|p| p.ready).count() as i32);
    st.terminating = Some((terminating.len() + out.delete.len()) as i32);
    st.uncounted_terminated_pods = Some(v1::UncountedTerminatedPods {
        succeeded: unc_succeeded,
        failed: unc_failed,
    });
    if indexed {
        st.completed_indexes = completed.format();
    }
    if per_index.is_some() {
        st.failed_indexes = Some(failed_indexes.format());
    }
    if finished(&st).is_some() {
        st.active = 0;
        st.ready = Some(0);
        st.terminating = Some(0);
    }
    out.status = st;
    out
}

#[cfg(test)]
mod tests;
