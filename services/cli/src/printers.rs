//! kubectl's table columns for each kind (`pkg/printers/internalversion/printers.go`), as
//! pure functions of an object and the time "now": headers, one row per object, and the
//! derived values (pod STATUS, node STATUS and ROLES, job COMPLETIONS and DURATION...).

use bosun_api::KindInfo;
use bosun_api::v1::{self, Kind, Object};
use bosun_api::vocab::{condition, phase, status};
use chrono::{DateTime, Utc};

use crate::format::{age, format_labels, format_selector, human_duration, parse_time, until};

/// Which optional columns a table has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Columns {
    /// `-o wide`.
    pub wide: bool,
    /// `-A`: a NAMESPACE column first.
    pub namespace: bool,
    /// `--show-labels`: a LABELS column last.
    pub labels: bool,
    /// Several kinds in one output: names print as `job.batch/pi`.
    pub kind_prefix: bool,
}

/// The header row for `kind`.
pub fn headers(kind: Kind, cols: Columns) -> Vec<String> {
    let (base, wide): (&[&str], &[&str]) = match kind {
        Kind::Pod => (
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            &["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        ),
        Kind::Node => (
            &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
            &[
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME",
            ],
        ),
        Kind::Job => (
            &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            &["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        Kind::CronJob => (
            &[
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            // kubectl's wide columns, then bosun's status.nextScheduleTime.
            &["CONTAINERS", "IMAGES", "SELECTOR", "NEXT SCHEDULE"],
        ),
        Kind::DaemonSet => (
            &[
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE SELECTOR",
                "AGE",
            ],
            &["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        Kind::Event => (
            &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            &["FIRST SEEN", "COUNT", "NAME"],
        ),
        Kind::ControllerRevision => (&["NAME", "CONTROLLER", "REVISION", "AGE"], &[]),
        Kind::Lease => (&["NAME", "HOLDER", "AGE"], &[]),
        Kind::Unspecified => (&["NAME", "AGE"], &[]),
    };
    let mut out = Vec::new();
    if cols.namespace {
        out.push("NAMESPACE".to_string());
    }
    out.extend(base.iter().map(ToString::to_string));
    if cols.wide {
        if kind == Kind::Event {
            // kubectl's wide event columns interleave with the base ones.
            out = event_wide_headers(cols.namespace);
        } else {
            out.extend(wide.iter().map(ToString::to_string));
        }
    }
    if cols.labels {
        out.push("LABELS".to_string());
    }
    out
}

fn event_wide_headers(namespace: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if namespace {
        out.push("NAMESPACE".into());
    }
    for h in [
        "LAST SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "SUBOBJECT",
        "SOURCE",
        "MESSAGE",
        "FIRST SEEN",
        "COUNT",
        "NAME",
    ] {
        out.push(h.into());
    }
    out
}

/// The row for `obj` at time `now`, matching [`headers`] for its kind.
pub fn row(obj: &Object, cols: Columns, now: DateTime<Utc>) -> Vec<String> {
    let meta = obj.meta().cloned().unwrap_or_default();
    let name = if cols.kind_prefix {
        obj.info().map_or(meta.name.clone(), |i| {
            format!("{}/{}", i.resource_word(), meta.name)
        })
    } else {
        meta.name.clone()
    };
    let created = age(&meta.creation_timestamp, now);
    let mut cells = Vec::new();
    if cols.namespace {
        cells.push(meta.namespace.clone());
    }
    match &obj.object {
        Some(v1::object::Object::Pod(p)) => pod_row(p, name, created, cols.wide, now, &mut cells),
        Some(v1::object::Object::Node(n)) => node_row(n, name, created, cols.wide, &mut cells),
        Some(v1::object::Object::Job(j)) => job_row(j, name, created, cols.wide, now, &mut cells),
        Some(v1::object::Object::CronJob(c)) => {
            cronjob_row(c, name, created, cols.wide, now, &mut cells)
        }
        Some(v1::object::Object::DaemonSet(d)) => {
            daemonset_row(d, name, created, cols.wide, &mut cells)
        }
        Some(v1::object::Object::Event(e)) => event_row(e, cols.wide, now, &mut cells),
        Some(v1::object::Object::ControllerRevision(r)) => {
            cells.push(name);
            cells.push(controller_name(obj));
            cells.push(r.revision.to_string());
            cells.push(created);
        }
        Some(v1::object::Object::Lease(l)) => {
            cells.push(name);
            let holder = l.spec.as_ref().and_then(|s| s.holder_identity.clone());
            cells.push(holder.unwrap_or_default());
            cells.push(created);
        }
        None => {
            cells.push(name);
            cells.push(created);
        }
    }
    if cols.labels {
        cells.push(format_labels(&meta.labels));
    }
    cells
}

fn pod_row(
    p: &v1::Pod,
    name: String,
    created: String,
    wide: bool,
    now: DateTime<Utc>,
    cells: &mut Vec<String>,
) {
    let s = pod_summary(p);
    let restarts = match s.last_restart {
        Some(t) if s.restarts > 0 => {
            format!("{} ({} ago)", s.restarts, human_duration(now - t))
        }
        _ => s.restarts.to_string(),
    };
    cells.extend([
        name,
        format!("{}/{}", s.ready, s.total),
        s.status,
        restarts,
        created,
    ]);
    if wide {
        let status = p.status.clone().unwrap_or_default();
        let spec = p.spec.clone().unwrap_or_default();
        cells.push(or_none(&status.pod_ip));
        cells.push(or_none(&spec.node_name));
        cells.push(or_none(&status.nominated_node_name));
        cells.push("<none>".to_string());
    }
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "<unknown>".to_string()
    } else {
        s.to_string()
    }
}

/// What kubectl shows for a pod: ready containers, the derived STATUS and restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    pub ready: usize,
    pub total: usize,
    pub status: String,
    pub restarts: i32,
    /// When a container last terminated before a restart (for `3 (5m ago)`).
    pub last_restart: Option<DateTime<Utc>>,
}

/// kubectl's pod STATUS derivation: the phase, overridden by the status reason, the first
/// failing init container (`Init:Error`, `Init:1/3`), the last container's waiting or
/// terminated reason (`CrashLoopBackOff`, `Completed`, `Error`, `ExitCode:3`), and
/// `Terminating` once a deletion timestamp is set.
pub fn pod_summary(p: &v1::Pod) -> PodSummary {
    let spec = p.spec.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let mut reason = if status.reason.is_empty() {
        status.phase.clone()
    } else {
        status.reason.clone()
    };
    let mut restarts = 0;
    let mut ready = 0;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut note_restart = |cs: &v1::ContainerStatus| {
        let finished = cs
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| parse_time(&t.finished_at));
        if let Some(t) = finished {
            last_restart = Some(last_restart.map_or(t, |l| l.max(t)));
        }
    };

    let mut initializing = false;
    for (i, cs) in status.init_container_statuses.iter().enumerate() {
        restarts += cs.restart_count;
        note_restart(cs);
        let state = cs.state.clone().unwrap_or_default();
        if let Some(t) = &state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            reason = if !t.reason.is_empty() {
                format!("Init:{}", t.reason)
            } else if t.signal != 0 {
                format!("Init:Signal:{}", t.signal)
            } else {
                format!("Init:ExitCode:{}", t.exit_code)
            };
        } else if let Some(w) = state
            .waiting
            .as_ref()
            .filter(|w| !w.reason.is_empty() && w.reason != "PodInitializing")
        {
            reason = format!("Init:{}", w.reason);
        } else {
            reason = format!("Init:{}/{}", i, spec.init_containers.len());
        }
        initializing = true;
        break;
    }

    if !initializing {
        restarts = 0;
        let mut has_running = false;
        for cs in status.container_statuses.iter().rev() {
            restarts += cs.restart_count;
            note_restart(cs);
            let state = cs.state.clone().unwrap_or_default();
            if let Some(w) = state.waiting.as_ref().filter(|w| !w.reason.is_empty()) {
                reason = w.reason.clone();
            } else if let Some(t) = &state.terminated {
                reason = if !t.reason.is_empty() {
                    t.reason.clone()
                } else if t.signal != 0 {
                    format!("Signal:{}", t.signal)
                } else {
                    format!("ExitCode:{}", t.exit_code)
                };
            } else if cs.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose finished container sits beside running ones is still running.
        if reason == "Completed" && has_running {
            let pod_ready = status
                .conditions
                .iter()
                .any(|c| c.r#type == condition::READY && c.status == status::TRUE);
            reason = if pod_ready {
                phase::RUNNING
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    let deleting = p
        .metadata
        .as_ref()
        .is_some_and(|m| !m.deletion_timestamp.is_empty());
    if deleting && status.reason == "NodeLost" {
        reason = phase::UNKNOWN.to_string();
    } else if deleting {
        reason = "Terminating".to_string();
    }
    if reason.is_empty() {
        reason = phase::PENDING.to_string();
    }
    PodSummary {
        ready,
        total: spec.containers.len(),
        status: reason,
        restarts,
        last_restart,
    }
}

fn node_row(n: &v1::Node, name: String, created: String, wide: bool, cells: &mut Vec<String>) {
    let status = n.status.clone().unwrap_or_default();
    let info = status.node_info.clone().unwrap_or_default();
    cells.extend([
        name,
        node_status(n),
        node_roles(n),
        created,
        info.kubelet_version.clone(),
    ]);
    if wide {
        let addr = |t: &str| {
            status
                .addresses
                .iter()
                .find(|a| a.r#type == t)
                .map_or("<none>".to_string(), |a| a.address.clone())
        };
        cells.push(addr("InternalIP"));
        cells.push(addr("ExternalIP"));
        cells.push(or_unknown(&info.os_image));
        cells.push(or_unknown(&info.kernel_version));
        cells.push(or_unknown(&info.container_runtime_version));
    }
}

/// `Ready`, `NotReady`, `Unknown`, with `,SchedulingDisabled` for a cordoned node.
pub fn node_status(n: &v1::Node) -> String {
    let conditions = n
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let mut parts = Vec::new();
    match conditions.iter().find(|c| c.r#type == condition::READY) {
        Some(c) if c.status == status::TRUE => parts.push("Ready"),
        Some(_) => parts.push("NotReady"),
        None => parts.push("Unknown"),
    }
    if n.spec.as_ref().is_some_and(|s| s.unschedulable) {
        parts.push("SchedulingDisabled");
    }
    parts.join(",")
}

/// Roles from `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels.
pub fn node_roles(n: &v1::Node) -> String {
    let mut roles: Vec<String> = Vec::new();
    if let Some(m) = &n.metadata {
        for (k, v) in &m.labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_string());
                }
            } else if k == "kubernetes.io/role" && !v.is_empty() {
                roles.push(v.clone());
            }
        }
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    }
}

fn has_condition(conditions: &[v1::Condition], t: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.r#type == t && c.status == status::TRUE)
}

/// kubectl's job STATUS: Complete, Failed, Terminating, Suspended, FailureTarget,
/// SuccessCriteriaMet, else Running.
pub fn job_status(j: &v1::Job) -> String {
    let conditions = j
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let deleting = j
        .metadata
        .as_ref()
        .is_some_and(|m| !m.deletion_timestamp.is_empty());
    if has_condition(conditions, condition::COMPLETE) {
        condition::COMPLETE
    } else if has_condition(conditions, condition::FAILED) {
        condition::FAILED
    } else if deleting {
        "Terminating"
    } else if has_condition(conditions, condition::SUSPENDED) {
        condition::SUSPENDED
    } else if has_condition(conditions, condition::FAILURE_TARGET) {
        condition::FAILURE_TARGET
    } else if has_condition(conditions, condition::SUCCESS_CRITERIA_MET) {
        condition::SUCCESS_CRITERIA_MET
    } else if has_condition(conditions, "Waiting") {
        // bosun: a Job held back by spec.dependsOn runs nothing yet; kubectl would say Running.
        "Waiting"
    } else {
        phase::RUNNING
    }
    .to_string()
}

/// `succeeded/completions`, or `succeeded/1 of parallelism` for a work-queue job.
pub fn job_completions(j: &v1::Job) -> String {
    let spec = j.spec.clone().unwrap_or_default();
    let succeeded = j.status.as_ref().map_or(0, |s| s.succeeded);
    match spec.completions {
        Some(c) => format!("{succeeded}/{c}"),
        None => match spec.parallelism.unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// From start to completion (or to now while running); empty before the job starts.
pub fn job_duration(j: &v1::Job, now: DateTime<Utc>) -> String {
    let status = j.status.clone().unwrap_or_default();
    match (
        parse_time(&status.start_time),
        parse_time(&status.completion_time),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    }
}

fn containers_images(spec: Option<&v1::PodSpec>) -> (String, String) {
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let names = containers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>();
    let images = containers
        .iter()
        .map(|c| c.image.as_str())
        .collect::<Vec<_>>();
    (names.join(","), images.join(","))
}

fn job_row(
    j: &v1::Job,
    name: String,
    created: String,
    wide: bool,
    now: DateTime<Utc>,
    cells: &mut Vec<String>,
) {
    cells.extend([
        name,
        job_status(j),
        job_completions(j),
        job_duration(j, now),
        created,
    ]);
    if wide {
        let spec = j.spec.clone().unwrap_or_default();
        let pod_spec = spec.template.as_ref().and_then(|t| t.spec.as_ref());
        let (names, images) = containers_images(pod_spec);
        cells.extend([names, images, format_selector(spec.selector.as_ref())]);
    }
}

fn cronjob_row(
    c: &v1::CronJob,
    name: String,
    created: String,
    wide: bool,
    now: DateTime<Utc>,
    cells: &mut Vec<String>,
) {
    let spec = c.spec.clone().unwrap_or_default();
    let status = c.status.clone().unwrap_or_default();
    let last = if status.last_schedule_time.is_empty() {
        "<none>".to_string()
    } else {
        age(&status.last_schedule_time, now)
    };
    cells.extend([
        name,
        spec.schedule.clone(),
        spec.time_zone.clone().unwrap_or_else(|| "<none>".into()),
        bool_ptr(spec.suspend),
        status.active.len().to_string(),
        last,
        created,
    ]);
    if wide {
        let job_spec = spec.job_template.and_then(|t| t.spec).unwrap_or_default();
        let pod_spec = job_spec.template.as_ref().and_then(|t| t.spec.as_ref());
        let (names, images) = containers_images(pod_spec);
        cells.extend([
            names,
            images,
            format_selector(job_spec.selector.as_ref()),
            until(&status.next_schedule_time, now),
        ]);
    }
}

fn bool_ptr(b: Option<bool>) -> String {
    match b {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

fn daemonset_row(
    d: &v1::DaemonSet,
    name: String,
    created: String,
    wide: bool,
    cells: &mut Vec<String>,
) {
    let spec = d.spec.clone().unwrap_or_default();
    let s = d.status.clone().unwrap_or_default();
    let pod_spec = spec.template.as_ref().and_then(|t| t.spec.as_ref());
    let node_selector = pod_spec
        .map(|p| p.node_selector.clone())
        .unwrap_or_default();
    cells.extend([
        name,
        s.desired_number_scheduled.to_string(),
        s.current_number_scheduled.to_string(),
        s.number_ready.to_string(),
        s.updated_number_scheduled.to_string(),
        s.number_available.to_string(),
        format_labels(&node_selector),
        created,
    ]);
    if wide {
        let (names, images) = containers_images(pod_spec);
        cells.extend([names, images, format_selector(spec.selector.as_ref())]);
    }
}

/// An event's LAST SEEN: `5s`, or `5s (x3 over 2m)` when it repeated.
pub fn event_last_seen(e: &v1::Event, now: DateTime<Utc>) -> String {
    let first = age(&e.first_timestamp, now);
    let last = if e.last_timestamp.is_empty() {
        first.clone()
    } else {
        age(&e.last_timestamp, now)
    };
    if e.count > 1 {
        format!("{last} (x{} over {first})", e.count)
    } else {
        last
    }
}

/// An event's SOURCE / From: `component, host`, falling back to the reporting controller
/// and instance when `source` is empty (kubectl's `formatEventSource`).
pub fn event_source(e: &v1::Event) -> String {
    let source = e.source.clone().unwrap_or_default();
    let first = |a: String, b: &str| if a.is_empty() { b.to_string() } else { a };
    let component = first(source.component, &e.reporting_component);
    let instance = first(source.host, &e.reporting_instance);
    if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    }
}

fn event_row(e: &v1::Event, wide: bool, now: DateTime<Utc>, cells: &mut Vec<String>) {
    let inv = e.involved_object.clone().unwrap_or_default();
    let object = format!("{}/{}", inv.kind.to_ascii_lowercase(), inv.name);
    cells.extend([
        event_last_seen(e, now),
        e.r#type.clone(),
        e.reason.clone(),
        object,
    ]);
    if wide {
        cells.push(inv.field_path.clone());
        cells.push(event_source(e));
        cells.push(e.message.clone());
        cells.push(age(&e.first_timestamp, now));
        cells.push(e.count.to_string());
        cells.push(
            e.metadata
                .as_ref()
                .map_or(String::new(), |m| m.name.clone()),
        );
    } else {
        cells.push(e.message.clone());
    }
}

/// `daemonset.apps/name` for the object's controller, `<none>` without one.
pub fn controller_name(obj: &Object) -> String {
    match obj.controller_ref() {
        Some(r) => {
            let group = r.api_version.split_once('/').map_or("", |(g, _)| g);
            let kind = r.kind.to_ascii_lowercase();
            if group.is_empty() {
                format!("{kind}/{}", r.name)
            } else {
                format!("{kind}.{group}/{}", r.name)
            }
        }
        None => "<none>".to_string(),
    }
}

/// `job.batch/pi`: what `-o name` prints and what apply/create report.
pub fn resource_name(obj: &Object) -> String {
    let word = obj
        .info()
        .map_or_else(|| "object".to_string(), KindInfo::resource_word);
    format!("{word}/{}", obj.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::{ContainerState, ContainerStatus, ObjectMeta};

    fn now() -> DateTime<Utc> {
        parse_time("2024-01-01T01:00:00Z").unwrap()
    }

    fn running() -> ContainerState {
        ContainerState {
            running: Some(v1::ContainerStateRunning {
                started_at: "2024-01-01T00:00:00Z".into(),
            }),
            ..Default::default()
        }
    }

    fn terminated(exit_code: i32, reason: &str) -> ContainerState {
        ContainerState {
            terminated: Some(v1::ContainerStateTerminated {
                exit_code,
                reason: reason.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn waiting(reason: &str) -> ContainerState {
        ContainerState {
            waiting: Some(v1::ContainerStateWaiting {
                reason: reason.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn cs(state: ContainerState, ready: bool, restarts: i32) -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            state: Some(state),
            ready,
            restart_count: restarts,
            ..Default::default()
        }
    }

    fn pod(
        phase: &str,
        containers: Vec<ContainerStatus>,
        init: Vec<ContainerStatus>,
        deleting: bool,
    ) -> v1::Pod {
        v1::Pod {
            metadata: Some(ObjectMeta {
                name: "p".into(),
                deletion_timestamp: if deleting {
                    "2024-01-01T00:59:00Z".into()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                containers: (0..containers.len().max(1))
                    .map(|_| v1::Container::default())
                    .collect(),
                init_containers: (0..init.len()).map(|_| v1::Container::default()).collect(),
                ..Default::default()
            })),
            status: Some(v1::PodStatus {
                phase: phase.into(),
                container_statuses: containers,
                init_container_statuses: init,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_status_is_derived_like_kubectl() {
        let table: Vec<(&str, v1::Pod, &str, usize, i32)> = vec![
            (
                "no status yet",
                pod("", vec![], vec![], false),
                "Pending",
                0,
                0,
            ),
            (
                "pending",
                pod("Pending", vec![], vec![], false),
                "Pending",
                0,
                0,
            ),
            (
                "running and ready",
                pod("Running", vec![cs(running(), true, 0)], vec![], false),
                "Running",
                1,
                0,
            ),
            (
                "completed",
                pod(
                    "Succeeded",
                    vec![cs(terminated(0, "Completed"), false, 0)],
                    vec![],
                    false,
                ),
                "Completed",
                0,
                0,
            ),
            (
                "error",
                pod(
                    "Failed",
                    vec![cs(terminated(1, "Error"), false, 0)],
                    vec![],
                    false,
                ),
                "Error",
                0,
                0,
            ),
            (
                "exit code without reason",
                pod(
                    "Failed",
                    vec![cs(terminated(3, ""), false, 0)],
                    vec![],
                    false,
                ),
                "ExitCode:3",
                0,
                0,
            ),
            (
                "crash loop",
                pod(
                    "Running",
                    vec![cs(waiting("CrashLoopBackOff"), false, 4)],
                    vec![],
                    false,
                ),
                "CrashLoopBackOff",
                0,
                4,
            ),
            (
                "init container failed",
                pod(
                    "Pending",
                    vec![],
                    vec![cs(terminated(1, "Error"), false, 2)],
                    false,
                ),
                "Init:Error",
                0,
                2,
            ),
            (
                "init container running",
                pod("Pending", vec![], vec![cs(running(), false, 0)], false),
                "Init:0/1",
                0,
                0,
            ),
            (
                "terminating",
                pod("Running", vec![cs(running(), true, 0)], vec![], true),
                "Terminating",
                1,
                0,
            ),
            (
                "one completed beside a running one, not ready",
                pod(
                    "Running",
                    vec![
                        cs(running(), true, 0),
                        cs(terminated(0, "Completed"), false, 0),
                    ],
                    vec![],
                    false,
                ),
                "NotReady",
                1,
                0,
            ),
        ];
        for (what, p, status, ready, restarts) in table {
            let s = pod_summary(&p);
            assert_eq!(s.status, status, "{what}");
            assert_eq!(s.ready, ready, "{what}");
            assert_eq!(s.restarts, restarts, "{what}");
        }
    }

    #[test]
    fn pod_restarts_show_how_long_ago_the_last_one_was() {
        let mut c = cs(running(), true, 2);
        c.last_state = Some(terminated(1, "Error"));
        if let Some(t) = c.last_state.as_mut().and_then(|s| s.terminated.as_mut()) {
            t.finished_at = "2024-01-01T00:55:00Z".into();
        }
        let obj: Object = pod("Running", vec![c], vec![], false).into();
        let cells = row(&obj, Columns::default(), now());
        assert_eq!(
            cells,
            vec!["p", "1/1", "Running", "2 (5m ago)", "<unknown>"]
        );
    }

    fn node(ready: Option<&str>, unschedulable: bool, labels: &[(&str, &str)]) -> v1::Node {
        v1::Node {
            metadata: Some(ObjectMeta {
                name: "n".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            spec: Some(v1::NodeSpec {
                unschedulable,
                ..Default::default()
            }),
            status: Some(v1::NodeStatus {
                conditions: ready
                    .map(|s| v1::Condition {
                        r#type: "Ready".into(),
                        status: s.into(),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn node_status_and_roles_follow_kubectl() {
        let table = [
            (node(Some("True"), false, &[]), "Ready", "<none>"),
            (node(Some("False"), false, &[]), "NotReady", "<none>"),
            (node(Some("Unknown"), false, &[]), "NotReady", "<none>"),
            (node(None, false, &[]), "Unknown", "<none>"),
            (
                node(
                    Some("True"),
                    true,
                    &[
                        ("node-role.kubernetes.io/worker", ""),
                        ("node-role.kubernetes.io/control-plane", ""),
                    ],
                ),
                "Ready,SchedulingDisabled",
                "control-plane,worker",
            ),
            (
                node(Some("True"), false, &[("kubernetes.io/role", "gpu")]),
                "Ready",
                "gpu",
            ),
        ];
        for (n, status, roles) in table {
            assert_eq!(node_status(&n), status);
            assert_eq!(node_roles(&n), roles);
        }
    }

    fn job(
        completions: Option<i32>,
        parallelism: Option<i32>,
        succeeded: i32,
        conditions: &[&str],
        times: (&str, &str),
        deleting: bool,
    ) -> v1::Job {
        v1::Job {
            metadata: Some(ObjectMeta {
                name: "pi".into(),
                creation_timestamp: "2024-01-01T00:00:00Z".into(),
                deletion_timestamp: if deleting { "x".into() } else { String::new() },
                ..Default::default()
            }),
            spec: Some(v1::JobSpec {
                completions,
                parallelism,
                ..Default::default()
            }),
            status: Some(v1::JobStatus {
                succeeded,
                start_time: times.0.into(),
                completion_time: times.1.into(),
                conditions: conditions
                    .iter()
                    .map(|t| v1::Condition {
                        r#type: t.to_string(),
                        status: "True".into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn job_status_completions_and_duration_follow_kubectl() {
        let start = "2024-01-01T00:59:00Z";
        let end = "2024-01-01T00:59:20Z";
        let table = [
            (
                job(Some(1), Some(1), 0, &[], ("", ""), false),
                "Running",
                "0/1",
                "",
            ),
            (
                job(Some(5), Some(2), 2, &[], (start, ""), false),
                "Running",
                "2/5",
                "60s",
            ),
            (
                job(None, Some(3), 1, &[], (start, ""), false),
                "Running",
                "1/1 of 3",
                "60s",
            ),
            (
                job(None, None, 0, &[], ("", ""), false),
                "Running",
                "0/1",
                "",
            ),
            (
                job(Some(1), None, 1, &["Complete"], (start, end), false),
                "Complete",
                "1/1",
                "20s",
            ),
            (
                job(
                    Some(1),
                    None,
                    0,
                    &["FailureTarget", "Failed"],
                    (start, end),
                    false,
                ),
                "Failed",
                "0/1",
                "20s",
            ),
            (
                job(Some(1), None, 0, &["Suspended"], ("", ""), false),
                "Suspended",
                "0/1",
                "",
            ),
            (
                job(Some(1), None, 0, &["Suspended"], ("", ""), true),
                "Terminating",
                "0/1",
                "",
            ),
            (
                job(Some(1), None, 0, &["FailureTarget"], (start, ""), false),
                "FailureTarget",
                "0/1",
                "60s",
            ),
            (
                job(
                    Some(3),
                    None,
                    2,
                    &["SuccessCriteriaMet"],
                    (start, ""),
                    false,
                ),
                "SuccessCriteriaMet",
                "2/3",
                "60s",
            ),
            // A finished Job being deleted still shows how it ended.
            (
                job(Some(1), None, 1, &["Complete"], (start, end), true),
                "Complete",
                "1/1",
                "20s",
            ),
            (
                job(Some(1), None, 0, &["Failed"], (start, end), true),
                "Failed",
                "0/1",
                "20s",
            ),
            (
                job(Some(1), None, 0, &[], (start, ""), true),
                "Terminating",
                "0/1",
                "60s",
            ),
            // Terminating outranks the conditions that are not an end.
            (
                job(Some(1), None, 0, &["FailureTarget"], (start, ""), true),
                "Terminating",
                "0/1",
                "60s",
            ),
            // Suspended outranks FailureTarget, which outranks SuccessCriteriaMet.
            (
                job(
                    Some(1),
                    None,
                    0,
                    &["SuccessCriteriaMet", "FailureTarget", "Suspended"],
                    ("", ""),
                    false,
                ),
                "Suspended",
                "0/1",
                "",
            ),
            (
                job(
                    Some(1),
                    None,
                    0,
                    &["SuccessCriteriaMet", "FailureTarget"],
                    (start, ""),
                    false,
                ),
                "FailureTarget",
                "0/1",
                "60s",
            ),
            // bosun's Waiting (spec.dependsOn not Complete yet).
            (
                job(Some(1), None, 0, &["Waiting"], ("", ""), false),
                "Waiting",
                "0/1",
                "",
            ),
        ];
        for (j, status, completions, duration) in table {
            let conditions = &j.status.as_ref().unwrap().conditions;
            assert_eq!(job_status(&j), status, "{conditions:?}");
            assert_eq!(job_completions(&j), completions);
            assert_eq!(job_duration(&j, now()), duration);
        }
        // Only a condition whose status is True counts.
        let mut not_yet = job(
            Some(1),
            None,
            0,
            &["Complete", "Failed", "Suspended"],
            ("", ""),
            false,
        );
        for c in &mut not_yet.status.as_mut().unwrap().conditions {
            c.status = "False".into();
        }
        assert_eq!(job_status(&not_yet), "Running");
        let obj: Object = job(Some(1), None, 1, &["Complete"], (start, end), false).into();
        assert_eq!(
            row(
                &obj,
                Columns {
                    namespace: true,
                    kind_prefix: true,
                    ..Default::default()
                },
                now()
            ),
            vec!["", "job.batch/pi", "Complete", "1/1", "20s", "60m"]
        );
    }

    #[test]
    fn cronjob_rows_show_schedule_suspend_and_last_schedule() {
        let c: Object = v1::CronJob {
            metadata: Some(ObjectMeta {
                name: "hello".into(),
                creation_timestamp: "2024-01-01T00:00:00Z".into(),
                ..Default::default()
            }),
            spec: Some(v1::CronJobSpec {
                schedule: "*/1 * * * *".into(),
                suspend: Some(false),
                ..Default::default()
            }),
            status: Some(v1::CronJobStatus {
                active: vec![v1::ObjectReference::default()],
                last_schedule_time: "2024-01-01T00:59:30Z".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into();
        assert_eq!(
            row(&c, Columns::default(), now()),
            vec!["hello", "*/1 * * * *", "<none>", "False", "1", "30s", "60m"]
        );
        assert_eq!(headers(Kind::CronJob, Columns::default()).len(), 7);
    }

    #[test]
    fn wide_cronjob_rows_add_kubectls_columns_and_the_next_schedule() {
        let cj = |next: &str| -> Object {
            v1::CronJob {
                metadata: Some(ObjectMeta {
                    name: "hello".into(),
                    creation_timestamp: "2024-01-01T00:00:00Z".into(),
                    ..Default::default()
                }),
                spec: Some(v1::CronJobSpec {
                    schedule: "0 * * * *".into(),
                    time_zone: Some("Europe/London".into()),
                    suspend: Some(true),
                    job_template: Some(v1::JobTemplateSpec {
                        metadata: None,
                        spec: Some(v1::JobSpec {
                            template: Some(v1::PodTemplateSpec {
                                metadata: None,
                                spec: Some(v1::PodSpec {
                                    containers: vec![v1::Container {
                                        name: "c".into(),
                                        image: "busybox".into(),
                                        ..Default::default()
                                    }],
                                    ..Default::default()
                                }),
                            }),
                            ..Default::default()
                        }),
                    }),
                    ..Default::default()
                }),
                status: Some(v1::CronJobStatus {
                    next_schedule_time: next.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into()
        };
        let wide = Columns {
            wide: true,
            ..Default::default()
        };
        assert_eq!(
            headers(Kind::CronJob, wide),
            vec![
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR",
                "NEXT SCHEDULE"
            ]
        );
        let rows = [
            ("due in 30s", "2024-01-01T01:00:30Z", "in 30s"),
            ("overdue", "2024-01-01T00:59:00Z", "in 0s"),
            ("never again or suspended", "", "<none>"),
        ];
        for (name, next, want) in rows {
            assert_eq!(
                row(&cj(next), wide, now()),
                vec![
                    "hello",
                    "0 * * * *",
                    "Europe/London",
                    "True",
                    "0",
                    "<none>",
                    "60m",
                    "c",
                    "busybox",
                    "<none>",
                    want
                ],
                "{name}"
            );
        }
    }

    #[test]
    fn daemonset_rows_show_counts_and_node_selector() {
        let d: Object = v1::DaemonSet {
            metadata: Some(ObjectMeta {
                name: "agent".into(),
                ..Default::default()
            }),
            spec: Some(v1::DaemonSetSpec {
                template: Some(v1::PodTemplateSpec {
                    spec: Some(v1::PodSpec {
                        node_selector: [("disk".to_string(), "ssd".to_string())].into(),
                        containers: vec![v1::Container {
                            name: "a".into(),
                            image: "busybox".into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(v1::DaemonSetStatus {
                desired_number_scheduled: 3,
                current_number_scheduled: 3,
                number_ready: 2,
                updated_number_scheduled: 3,
                number_available: 2,
                ..Default::default()
            }),
            ..Default::default()
        }
        .into();
        let wide = Columns {
            wide: true,
            ..Default::default()
        };
        assert_eq!(
            row(&d, wide, now()),
            vec![
                "agent",
                "3",
                "3",
                "2",
                "3",
                "2",
                "disk=ssd",
                "<unknown>",
                "a",
                "busybox",
                "<none>"
            ]
        );
        assert_eq!(headers(Kind::DaemonSet, wide).len(), 11);
    }

    #[test]
    fn events_show_repeats_and_the_lowercased_object() {
        let e = v1::Event {
            involved_object: Some(v1::ObjectReference {
                kind: "Job".into(),
                name: "pi".into(),
                ..Default::default()
            }),
            r#type: "Normal".into(),
            reason: "SuccessfulCreate".into(),
            message: "Created pod: pi-x".into(),
            first_timestamp: "2024-01-01T00:50:00Z".into(),
            last_timestamp: "2024-01-01T00:59:55Z".into(),
            count: 3,
            ..Default::default()
        };
        let obj: Object = e.into();
        assert_eq!(
            row(&obj, Columns::default(), now()),
            vec![
                "5s (x3 over 10m)",
                "Normal",
                "SuccessfulCreate",
                "job/pi",
                "Created pod: pi-x"
            ]
        );
    }

    #[test]
    fn an_events_source_falls_back_to_the_reporting_controller() {
        let src = |component: &str, host: &str, rc: &str, ri: &str| {
            event_source(&v1::Event {
                source: Some(v1::EventSource {
                    component: component.into(),
                    host: host.into(),
                }),
                reporting_component: rc.into(),
                reporting_instance: ri.into(),
                ..Default::default()
            })
        };
        assert_eq!(src("kubelet", "node-1", "", ""), "kubelet, node-1");
        assert_eq!(src("job-controller", "", "", ""), "job-controller");
        assert_eq!(
            src("", "", "job-controller", "host-a"),
            "job-controller, host-a"
        );
        assert_eq!(src("scheduler", "", "other", "host-b"), "scheduler, host-b");
        assert_eq!(src("", "", "", ""), "");
    }

    #[test]
    fn controller_revisions_name_their_controller_with_its_group() {
        let r: Object = v1::ControllerRevision {
            metadata: Some(ObjectMeta {
                name: "agent-5d8f".into(),
                owner_references: vec![v1::OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "DaemonSet".into(),
                    name: "agent".into(),
                    controller: Some(true),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            revision: 2,
            ..Default::default()
        }
        .into();
        assert_eq!(
            row(&r, Columns::default(), now()),
            vec!["agent-5d8f", "daemonset.apps/agent", "2", "<unknown>"]
        );
    }

    #[test]
    fn namespace_and_labels_columns_wrap_the_row() {
        let mut obj: Object = job(Some(1), None, 0, &[], ("", ""), false).into();
        obj.meta_mut().namespace = "team".into();
        obj.meta_mut().labels.insert("app".into(), "pi".into());
        let cols = Columns {
            namespace: true,
            labels: true,
            ..Default::default()
        };
        let h = headers(Kind::Job, cols);
        let r = row(&obj, cols, now());
        assert_eq!(h.first().map(String::as_str), Some("NAMESPACE"));
        assert_eq!(h.last().map(String::as_str), Some("LABELS"));
        assert_eq!(r.first().map(String::as_str), Some("team"));
        assert_eq!(r.last().map(String::as_str), Some("app=pi"));
        assert_eq!(h.len(), r.len());
    }
}
