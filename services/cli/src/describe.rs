//! `bosun describe`: kubectl's layout (Name, Namespace, Labels, Annotations, Controlled By,
//! a per-kind summary, the pod template) followed by the object's Events. A Job also shows
//! bosun's own fields: `Depends On` (each dependency with its current state, read from the
//! broker), `Pod Backoff`, the consecutive failures behind the retry delay, and its
//! conditions (incl. `Waiting`/`WaitingForDependencies`).

use std::collections::BTreeMap;

use bosun_api::v1::{self, GetRequest, Kind, ListRequest, Object, object::Object as O};
use bosun_api::vocab::daemonset::PAUSED_ANNOTATION;
use bosun_api::vocab::phase;
use chrono::{DateTime, Utc};
use clap::Args;
use tonic::Code;

use crate::Ctx;
use crate::format::{
    describe_time, format_selector, human_duration, parse_time, render_table, until,
};
use crate::printers;

/// `bosun describe` flags.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// `KIND [NAME...]` or `KIND/NAME...`; without names, every object of the kind.
    pub resource: Vec<String>,
    /// Only objects matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

/// Runs `bosun describe`.
pub async fn describe(ctx: &mut Ctx<'_>, args: DescribeArgs) -> anyhow::Result<i32> {
    let groups = crate::parse_targets(&args.resource)?;
    let mut client = ctx.client().await?;
    let mut objects = Vec::new();
    let mut code = 0;
    for (info, names) in groups {
        if names.is_empty() {
            let list = client
                .list(ListRequest {
                    shards: None,
                    kind: info.kind as i32,
                    namespace: ctx.list_namespace(info),
                    label_selector: args.selector.clone().unwrap_or_default(),
                    field_selector: String::new(),
                })
                .await
                .map_err(|s| ctx.status_error(&s, Some(info), ""))?
                .into_inner();
            objects.extend(list.items);
            continue;
        }
        for name in names {
            let r = client
                .get(GetRequest {
                    kind: info.kind as i32,
                    namespace: if info.namespaced {
                        ctx.namespace()
                    } else {
                        String::new()
                    },
                    name: name.clone(),
                })
                .await;
            match r {
                Ok(r) => objects.extend(r.into_inner().object),
                Err(s) => {
                    code = 1;
                    let e = ctx.status_error(&s, Some(info), &name);
                    crate::report(&mut *ctx.err, &e);
                }
            }
        }
    }
    let now = Utc::now();
    for (i, obj) in objects.iter().enumerate() {
        // Events are listed per namespace and matched here: by uid, else by kind and name.
        let events = client
            .list(ListRequest {
                shards: None,
                kind: Kind::Event as i32,
                namespace: obj.namespace().to_string(),
                label_selector: String::new(),
                field_selector: String::new(),
            })
            .await
            .map(|r| r.into_inner().items)
            .unwrap_or_default();
        let mine: Vec<v1::Event> = events
            .into_iter()
            .filter_map(Object::into_event)
            .filter(|e| is_about(e, obj))
            .collect();
        let mut related = Related::default();
        if obj.kind() == Kind::Node {
            related.lease = client
                .get(GetRequest {
                    kind: Kind::Lease as i32,
                    namespace: "kube-node-lease".into(),
                    name: obj.name().to_string(),
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().object)
                .and_then(Object::into_lease);
            related.pods = client
                .list(ListRequest {
                    shards: None,
                    kind: Kind::Pod as i32,
                    namespace: String::new(),
                    label_selector: String::new(),
                    field_selector: format!("spec.nodeName={}", obj.name()),
                })
                .await
                .map(|r| r.into_inner().items)
                .unwrap_or_default()
                .into_iter()
                .filter_map(Object::into_pod)
                .collect();
        }
        if let Some(O::DaemonSet(ds)) = &obj.object {
            // kubectl counts the pods matching the selector whose controller is the
            // DaemonSet.
            let selector = ds
                .spec
                .as_ref()
                .map(|s| format_selector(s.selector.as_ref()))
                .filter(|s| s != "<none>")
                .unwrap_or_default();
            related.pods = client
                .list(ListRequest {
                    shards: None,
                    kind: Kind::Pod as i32,
                    namespace: obj.namespace().to_string(),
                    label_selector: selector,
                    field_selector: String::new(),
                })
                .await
                .map(|r| r.into_inner().items)
                .unwrap_or_default()
                .into_iter()
                .filter_map(Object::into_pod)
                .collect();
        }
        if let Some(O::Job(j)) = &obj.object {
            for dep in j.spec.iter().flat_map(|s| s.depends_on.iter()) {
                let got = client
                    .get(GetRequest {
                        kind: Kind::Job as i32,
                        namespace: obj.namespace().to_string(),
                        name: dep.clone(),
                    })
                    .await;
                let state = match got {
                    Ok(r) => {
                        dependency_state(r.into_inner().object.and_then(Object::into_job).as_ref())
                    }
                    Err(s) if s.code() == Code::NotFound => dependency_state(None),
                    Err(s) => format!("unknown: {}", s.message()),
                };
                related.dependencies.insert(dep.clone(), state);
            }
        }
        if i > 0 {
            writeln!(ctx.out, "\n")?;
        }
        write!(ctx.out, "{}", render_with(obj, &related, &mine, now))?;
    }
    Ok(code)
}

/// Whether event `e` is about `obj`.
pub fn is_about(e: &v1::Event, obj: &Object) -> bool {
    let Some(r) = &e.involved_object else {
        return false;
    };
    if !r.uid.is_empty() && !obj.uid().is_empty() {
        return r.uid == obj.uid();
    }
    let kind = obj.info().map_or("", |i| i.name);
    r.kind == kind && r.name == obj.name() && r.namespace == obj.namespace()
}

/// Lines of `key: value` at an indent level, aligned per level like kubectl's tabwriter.
#[derive(Default)]
struct Doc {
    lines: Vec<(usize, Option<String>, String)>,
}

impl Doc {
    fn field(&mut self, level: usize, key: &str, value: impl Into<String>) {
        self.lines
            .push((level, Some(format!("{key}:")), value.into()));
    }
    fn text(&mut self, level: usize, text: impl Into<String>) {
        self.lines.push((level, None, text.into()));
    }
    /// `key:` followed by one value per line (the first on the key's line).
    fn multi(&mut self, level: usize, key: &str, values: Vec<String>) {
        let mut it = values.into_iter();
        self.field(level, key, it.next().unwrap_or_else(|| "<none>".into()));
        for v in it {
            self.lines.push((level, Some(String::new()), v));
        }
    }
    fn render(&self) -> String {
        let mut width: BTreeMap<usize, usize> = BTreeMap::new();
        for (lvl, key, _) in &self.lines {
            if let Some(k) = key {
                let w = width.entry(*lvl).or_default();
                *w = (*w).max(k.len());
            }
        }
        let mut out = String::new();
        for (lvl, key, value) in &self.lines {
            let indent = "  ".repeat(*lvl);
            match key {
                Some(k) => {
                    let w = width.get(lvl).copied().unwrap_or(0) + 2;
                    let line = if value.is_empty() {
                        format!("{indent}{k}")
                    } else {
                        format!("{indent}{k:<w$}{value}")
                    };
                    out.push_str(line.trim_end());
                }
                None => out.push_str(&format!("{indent}{value}")),
            }
            out.push('\n');
        }
        out
    }
}

fn kv_lines(m: &BTreeMap<String, String>) -> Vec<String> {
    m.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn kv_annotations(m: &BTreeMap<String, String>) -> Vec<String> {
    m.iter().map(|(k, v)| format!("{k}: {v}")).collect()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("<unset>".to_string(), |v| v.to_string())
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.into()
    }
}

/// What `describe` shows beside the object itself, read from the broker: a node's heartbeat
/// Lease and pods, a Job's dependencies.
#[derive(Debug, Default, Clone)]
pub struct Related {
    pub lease: Option<v1::Lease>,
    /// Every pod bound to the node (finished ones are left out when printing); for a
    /// DaemonSet, the pods its selector matches (those it controls are counted).
    pub pods: Vec<v1::Pod>,
    /// A Job's `spec.dependsOn`, each with its state ([`dependency_state`]); a dependency
    /// missing here is printed by name alone.
    pub dependencies: BTreeMap<String, String>,
}

/// A dependency's state as `Depends On` shows it: the STATUS `bosun get jobs` shows for it
/// (Complete, Failed, Running, Suspended...), or `not found`.
pub fn dependency_state(job: Option<&v1::Job>) -> String {
    job.map_or_else(|| "not found".to_string(), printers::job_status)
}

/// The whole describe text for `obj` with its `events`, at time `now`.
pub fn render(obj: &Object, events: &[v1::Event], now: DateTime<Utc>) -> String {
    render_with(obj, &Related::default(), events, now)
}

/// [`render`], with what was read beside the object (a node's Lease and pods, a Job's
/// dependencies).
pub fn render_with(
    obj: &Object,
    related: &Related,
    events: &[v1::Event],
    now: DateTime<Utc>,
) -> String {
    let meta = obj.meta().cloned().unwrap_or_default();
    let mut d = Doc::default();
    d.field(0, "Name", meta.name.clone());
    if obj.info().is_some_and(|i| i.namespaced) {
        d.field(0, "Namespace", meta.namespace.clone());
    }
    match &obj.object {
        Some(O::Job(j)) => {
            let spec = j.spec.clone().unwrap_or_default();
            d.field(0, "Selector", format_selector(spec.selector.as_ref()));
        }
        Some(O::DaemonSet(ds)) => {
            let spec = ds.spec.clone().unwrap_or_default();
            d.field(0, "Selector", format_selector(spec.selector.as_ref()));
            let node_selector = spec
                .template
                .as_ref()
                .and_then(|t| t.spec.as_ref())
                .map(|s| crate::format::format_labels(&s.node_selector))
                .unwrap_or_else(|| "<none>".into());
            d.field(0, "Node-Selector", node_selector);
        }
        _ => {}
    }
    d.multi(0, "Labels", kv_lines(&meta.labels));
    d.multi(0, "Annotations", kv_annotations(&meta.annotations));
    if let Some(r) = obj.controller_ref() {
        d.field(0, "Controlled By", format!("{}/{}", r.kind, r.name));
    }
    if !meta.creation_timestamp.is_empty() {
        d.field(
            0,
            "CreationTimestamp",
            describe_time(&meta.creation_timestamp),
        );
    }
    if !meta.deletion_timestamp.is_empty() {
        d.field(
            0,
            "Terminating Since",
            describe_time(&meta.deletion_timestamp),
        );
    }
    if !meta.finalizers.is_empty() {
        d.field(0, "Finalizers", format!("[{}]", meta.finalizers.join(" ")));
    }
    match &obj.object {
        Some(O::Job(j)) => job(&mut d, j, related, now),
        Some(O::CronJob(c)) => cronjob(&mut d, c, now),
        Some(O::DaemonSet(ds)) => daemonset(&mut d, ds, obj.uid(), &related.pods),
        Some(O::Pod(p)) => pod(&mut d, p),
        Some(O::Node(n)) => node(&mut d, n, related, now),
        Some(O::ControllerRevision(r)) => {
            d.field(0, "Revision", r.revision.to_string());
            if let Some(t) = r.data.as_ref().and_then(|x| x.template.as_ref()) {
                pod_template(&mut d, 0, "Pod Template", t);
            }
        }
        Some(O::Event(e)) => {
            let inv = e.involved_object.clone().unwrap_or_default();
            d.field(0, "Involved Object", format!("{}/{}", inv.kind, inv.name));
            d.field(0, "Type", e.r#type.clone());
            d.field(0, "Reason", e.reason.clone());
            d.field(0, "Message", e.message.clone());
            d.field(0, "Count", e.count.to_string());
        }
        Some(O::Lease(l)) => {
            let spec = l.spec.clone().unwrap_or_default();
            d.field(
                0,
                "Holder Identity",
                spec.holder_identity.unwrap_or_default(),
            );
            let duration = spec.lease_duration_seconds.map(|s| format!("{s}s"));
            d.field(0, "Lease Duration", duration.unwrap_or_default());
            d.field(0, "Renew Time", spec.renew_time);
        }
        None => {}
    }
    let mut out = d.render();
    out.push_str(&events_section(events, now));
    out
}

fn job(d: &mut Doc, j: &v1::Job, related: &Related, now: DateTime<Utc>) {
    let spec = j.spec.clone().unwrap_or_default();
    let st = j.status.clone().unwrap_or_default();
    d.field(0, "Parallelism", opt(spec.parallelism));
    d.field(0, "Completions", opt(spec.completions));
    d.field(0, "Completion Mode", or_none(&spec.completion_mode));
    d.field(0, "Suspend", opt(spec.suspend));
    d.field(0, "Backoff Limit", opt(spec.backoff_limit));
    if let Some(b) = &spec.pod_backoff {
        d.field(0, "Pod Backoff", pod_backoff(b));
    }
    if let Some(ttl) = spec.ttl_seconds_after_finished {
        d.field(0, "TTL Seconds After Finished", ttl.to_string());
    }
    if !spec.depends_on.is_empty() {
        d.field(0, "Depends On", depends_on(&spec.depends_on, related));
    }
    if !st.start_time.is_empty() {
        d.field(0, "Start Time", describe_time(&st.start_time));
    }
    if !st.completion_time.is_empty() {
        d.field(0, "Completed At", describe_time(&st.completion_time));
    }
    let duration = printers::job_duration(j, now);
    if !duration.is_empty() {
        d.field(0, "Duration", duration);
    }
    if let Some(ads) = spec.active_deadline_seconds {
        d.field(0, "Active Deadline Seconds", format!("{ads}s"));
    }
    d.field(
        0,
        "Pods Statuses",
        format!(
            "{} Active ({} Ready) / {} Succeeded / {} Failed",
            st.active,
            st.ready.unwrap_or(0),
            st.succeeded,
            st.failed
        ),
    );
    if st.consecutive_failures != 0 {
        d.field(
            0,
            "Consecutive Failures",
            st.consecutive_failures.to_string(),
        );
    }
    if !st.last_failure_time.is_empty() {
        d.field(0, "Last Failure Time", describe_time(&st.last_failure_time));
    }
    if spec.completion_mode == "Indexed" {
        let mut idx = st.completed_indexes.clone();
        // kubectl caps the list so one line stays readable.
        if idx.len() > 50 {
            idx.truncate(47);
            idx.push_str("...");
        }
        d.field(0, "Completed Indexes", or_none(&idx));
    }
    if let Some(t) = &spec.template {
        pod_template(d, 0, "Pod Template", t);
    }
    conditions(d, &st.conditions);
}

/// `initial 10s, factor 2, max 600s`: the retry delay, unset parts at their defaults.
pub fn pod_backoff(b: &v1::PodBackoff) -> String {
    format!(
        "initial {}s, factor {}, max {}s",
        b.initial_seconds.unwrap_or(10),
        b.factor.unwrap_or(2),
        b.max_seconds.unwrap_or(600)
    )
}

/// `prepare (Complete), fetch (not found)`: each dependency with its state, in spec order.
pub fn depends_on(names: &[String], related: &Related) -> String {
    names
        .iter()
        .map(|n| match related.dependencies.get(n) {
            Some(state) => format!("{n} ({state})"),
            None => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A conditions table like `describe deployment`'s (with when and why); nothing when there
/// are none.
fn conditions(d: &mut Doc, conditions: &[v1::Condition]) {
    if conditions.is_empty() {
        return;
    }
    d.text(0, "Conditions:");
    let mut rows = vec![
        ["Type", "Status", "LastTransitionTime", "Reason", "Message"]
            .map(String::from)
            .to_vec(),
        ["----", "------", "------------------", "------", "-------"]
            .map(String::from)
            .to_vec(),
    ];
    for c in conditions {
        rows.push(vec![
            c.r#type.clone(),
            c.status.clone(),
            describe_time(&c.last_transition_time),
            c.reason.clone(),
            c.message.trim().to_string(),
        ]);
    }
    for l in render_table(&rows).lines() {
        d.text(1, l);
    }
}

/// kubectl's `describeCronJob`, field for field, with bosun's additions: the Time Zone (unset
/// reads as UTC in bosun), the Catch Up policy, and the Next Schedule Time.
fn cronjob(d: &mut Doc, c: &v1::CronJob, now: DateTime<Utc>) {
    let spec = c.spec.clone().unwrap_or_default();
    let st = c.status.clone().unwrap_or_default();
    d.field(0, "Schedule", spec.schedule.clone());
    d.field(
        0,
        "Time Zone",
        spec.time_zone
            .clone()
            .unwrap_or_else(|| "<unset> (UTC)".into()),
    );
    d.field(0, "Concurrency Policy", or_none(&spec.concurrency_policy));
    d.field(0, "Suspend", bool_ptr(spec.suspend));
    d.field(
        0,
        "Successful Job History Limit",
        opt(spec.successful_jobs_history_limit),
    );
    d.field(
        0,
        "Failed Job History Limit",
        opt(spec.failed_jobs_history_limit),
    );
    d.field(
        0,
        "Starting Deadline Seconds",
        spec.starting_deadline_seconds
            .map_or("<unset>".into(), |s| format!("{s}s")),
    );
    d.field(0, "Catch Up", catch_up(&spec));
    // kubectl's describeJobTemplate.
    let js = spec
        .job_template
        .as_ref()
        .and_then(|t| t.spec.clone())
        .unwrap_or_default();
    d.field(
        0,
        "Selector",
        js.selector
            .as_ref()
            .map_or("<unset>".into(), |s| format_selector(Some(s))),
    );
    d.field(0, "Parallelism", opt(js.parallelism));
    d.field(0, "Completions", opt(js.completions));
    if let Some(ads) = js.active_deadline_seconds {
        d.field(0, "Active Deadline Seconds", format!("{ads}s"));
    }
    if let Some(t) = &js.template {
        pod_template(d, 0, "Pod Template", t);
    }
    d.field(
        0,
        "Last Schedule Time",
        if st.last_schedule_time.is_empty() {
            "<unset>".to_string()
        } else {
            describe_time(&st.last_schedule_time)
        },
    );
    d.field(
        0,
        "Next Schedule Time",
        if st.next_schedule_time.is_empty() {
            "<unset>".to_string()
        } else {
            format!(
                "{} ({})",
                describe_time(&st.next_schedule_time),
                until(&st.next_schedule_time, now)
            )
        },
    );
    let active: Vec<String> = st.active.iter().map(|r| r.name.clone()).collect();
    d.field(
        0,
        "Active Jobs",
        if active.is_empty() {
            "<none>".into()
        } else {
            active.join(", ")
        },
    );
}

/// bosun's catch-up policy as `describe` shows it: `Latest` (the default, Kubernetes'
/// behaviour), `None`, or `All (at most N runs)`.
fn catch_up(spec: &v1::CronJobSpec) -> String {
    let policy = bosun_api::cronjob::catch_up_policy(spec);
    match spec.catch_up.as_ref().and_then(|c| c.max_runs) {
        Some(n) if policy == bosun_api::cronjob::catch_up::ALL => {
            format!("{policy} (at most {n} runs)")
        }
        _ => policy.to_string(),
    }
}

/// kubectl's `printBoolPtr`.
fn bool_ptr(b: Option<bool>) -> String {
    match b {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// kubectl's DaemonSet lines (the counts unaligned, as kubectl prints them), `Pods Status`
/// counted from the DaemonSet's own pods (`pods` with it as controller), and bosun's paused
/// state.
fn daemonset(d: &mut Doc, ds: &v1::DaemonSet, uid: &str, pods: &[v1::Pod]) {
    let spec = ds.spec.clone().unwrap_or_default();
    let st = ds.status.clone().unwrap_or_default();
    for (what, n) in [
        (
            "Desired Number of Nodes Scheduled",
            st.desired_number_scheduled,
        ),
        (
            "Current Number of Nodes Scheduled",
            st.current_number_scheduled,
        ),
        (
            "Number of Nodes Scheduled with Up-to-date Pods",
            st.updated_number_scheduled,
        ),
        (
            "Number of Nodes Scheduled with Available Pods",
            st.number_available,
        ),
        ("Number of Nodes Misscheduled", st.number_misscheduled),
    ] {
        d.text(0, format!("{what}: {n}"));
    }
    d.field(0, "Pods Status", pods_status(uid, pods));
    if crate::rollout::is_paused(ds) {
        d.field(
            0,
            "Rollout",
            format!(
                "Paused ({PAUSED_ANNOTATION}=true; bosun rollout resume ds/{} continues it)",
                ds.metadata.as_ref().map_or("", |m| m.name.as_str())
            ),
        );
    }
    if let Some(u) = &spec.update_strategy {
        d.field(0, "Update Strategy", or_none(&u.r#type));
    }
    if let Some(t) = &spec.template {
        pod_template(d, 0, "Pod Template", t);
    }
}

/// `N Running / N Waiting / N Succeeded / N Failed` over the pods whose controller has `uid`
/// (kubectl's count: Pending is Waiting).
pub fn pods_status(uid: &str, pods: &[v1::Pod]) -> String {
    let mut counts = [0; 4];
    for p in pods {
        let owned = p
            .metadata
            .as_ref()
            .into_iter()
            .flat_map(|m| m.owner_references.iter())
            .any(|r| r.controller == Some(true) && !uid.is_empty() && r.uid == uid);
        if !owned {
            continue;
        }
        let phase = p.status.as_ref().map_or("", |s| s.phase.as_str());
        match phase {
            phase::RUNNING => counts[0] += 1,
            phase::PENDING => counts[1] += 1,
            phase::SUCCEEDED => counts[2] += 1,
            phase::FAILED => counts[3] += 1,
            _ => {}
        }
    }
    format!(
        "{} Running / {} Waiting / {} Succeeded / {} Failed",
        counts[0], counts[1], counts[2], counts[3]
    )
}

fn pod(d: &mut Doc, p: &v1::Pod) {
    let spec = p.spec.clone().unwrap_or_default();
    let st = p.status.clone().unwrap_or_default();
    d.field(0, "Node", or_none(&spec.node_name));
    if !st.start_time.is_empty() {
        d.field(0, "Start Time", describe_time(&st.start_time));
    }
    d.field(0, "Status", printers::pod_summary(p).status);
    if !st.reason.is_empty() {
        d.field(0, "Reason", st.reason.clone());
    }
    if !st.message.is_empty() {
        d.field(0, "Message", st.message.clone());
    }
    d.field(0, "IP", st.pod_ip.clone());
    if !spec.restart_policy.is_empty() {
        d.field(0, "Restart Policy", spec.restart_policy.clone());
    }
    containers(d, 0, "Containers", &spec.containers, &st.container_statuses);
    if !st.conditions.is_empty() {
        d.text(0, "Conditions:");
        d.text(1, "Type    Status");
        for c in &st.conditions {
            d.text(1, format!("{}    {}", c.r#type, c.status));
        }
    }
    d.multi(0, "Node-Selectors", kv_lines(&spec.node_selector));
    let tolerations: Vec<String> = spec
        .tolerations
        .iter()
        .map(|t| {
            let mut s = t.key.clone();
            if !t.value.is_empty() {
                s.push_str(&format!("={}", t.value));
            } else if t.operator == "Exists" && !t.key.is_empty() {
                s.push_str(" op=Exists");
            }
            if !t.effect.is_empty() {
                s.push_str(&format!(":{}", t.effect));
            }
            if let Some(secs) = t.toleration_seconds {
                s.push_str(&format!(" for {secs}s"));
            }
            s
        })
        .collect();
    d.multi(0, "Tolerations", tolerations);
}

fn node(d: &mut Doc, n: &v1::Node, related: &Related, now: DateTime<Utc>) {
    let spec = n.spec.clone().unwrap_or_default();
    let st = n.status.clone().unwrap_or_default();
    d.field(0, "Roles", printers::node_roles(n));
    let taints: Vec<String> = spec
        .taints
        .iter()
        .map(|t| {
            if t.value.is_empty() {
                format!("{}:{}", t.key, t.effect)
            } else {
                format!("{}={}:{}", t.key, t.value, t.effect)
            }
        })
        .collect();
    d.multi(0, "Taints", taints);
    d.field(0, "Unschedulable", spec.unschedulable.to_string());
    d.text(0, "Lease:");
    let lease = related
        .lease
        .as_ref()
        .and_then(|l| l.spec.clone())
        .unwrap_or_default();
    d.field(
        1,
        "HolderIdentity",
        or_unset(lease.holder_identity.as_deref()),
    );
    d.field(1, "AcquireTime", or_unset(non_empty(&lease.acquire_time)));
    d.field(1, "RenewTime", or_unset(non_empty(&lease.renew_time)));
    d.text(0, "Conditions:");
    let mut rows = vec![vec![
        "Type".to_string(),
        "Status".into(),
        "LastHeartbeatTime".into(),
        "Reason".into(),
        "Message".into(),
    ]];
    for c in &st.conditions {
        rows.push(vec![
            c.r#type.clone(),
            c.status.clone(),
            describe_time(&c.last_heartbeat_time),
            c.reason.clone(),
            c.message.clone(),
        ]);
    }
    for l in render_table(&rows).lines() {
        d.text(1, l);
    }
    d.text(0, "Addresses:");
    for a in &st.addresses {
        d.field(1, &a.r#type, a.address.clone());
    }
    d.text(0, "Capacity:");
    for (k, v) in &st.capacity {
        d.field(1, k, v.clone());
    }
    d.text(0, "Allocatable:");
    for (k, v) in &st.allocatable {
        d.field(1, k, v.clone());
    }
    if let Some(info) = &st.node_info {
        d.text(0, "System Info:");
        d.field(1, "Kernel Version", info.kernel_version.clone());
        d.field(1, "OS Image", info.os_image.clone());
        d.field(1, "Operating System", info.operating_system.clone());
        d.field(1, "Architecture", info.architecture.clone());
        d.field(
            1,
            "Container Runtime Version",
            info.container_runtime_version.clone(),
        );
        d.field(1, "Kubelet Version", info.kubelet_version.clone());
    }
    node_pods(d, &st, related, now);
}

fn or_unset(s: Option<&str>) -> String {
    s.map_or("<unset>".to_string(), str::to_string)
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The sum of the containers' requests (`cpu` in millicores, `memory` in bytes) and limits.
fn pod_resources(p: &v1::Pod) -> [i64; 4] {
    let mut sums = [0i64; 4];
    for c in p.spec.iter().flat_map(|s| s.containers.iter()) {
        let r = c.resources.clone().unwrap_or_default();
        let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).map_or(0, |v| quantity(k, v));
        sums[0] += get(&r.requests, "cpu");
        sums[1] += get(&r.limits, "cpu");
        sums[2] += get(&r.requests, "memory");
        sums[3] += get(&r.limits, "memory");
    }
    sums
}

/// A cpu quantity in millicores, or a memory quantity in bytes (0 when unreadable).
pub fn quantity(resource: &str, v: &str) -> i64 {
    let parsed = if resource == "cpu" {
        bosun_api::units::cpu_millis(v)
    } else {
        bosun_api::units::whole_units(v)
    };
    parsed.unwrap_or(0)
}

/// `100m (5%)`: a cpu (millicores) or memory (bytes) amount and its share of `total`.
fn share(resource: &str, amount: i64, total: i64) -> String {
    let pct = if total > 0 { amount * 100 / total } else { 0 };
    let shown = if resource == "cpu" {
        if amount % 1000 == 0 {
            (amount / 1000).to_string()
        } else {
            format!("{amount}m")
        }
    } else if amount != 0 && amount % (1 << 20) == 0 {
        format!("{}Mi", amount >> 20)
    } else {
        amount.to_string()
    };
    format!("{shown} ({pct}%)")
}

/// kubectl's "Non-terminated Pods" table and "Allocated resources".
fn node_pods(d: &mut Doc, st: &v1::NodeStatus, related: &Related, now: DateTime<Utc>) {
    let running: Vec<&v1::Pod> = related
        .pods
        .iter()
        .filter(|p| !bosun_api::object::pod_finished(p))
        .collect();
    let alloc = |k: &str| st.allocatable.get(k).map_or(0, |v| quantity(k, v));
    let (cpu, mem) = (alloc("cpu"), alloc("memory"));
    d.text(
        0,
        format!("Non-terminated Pods:          ({} in total)", running.len()),
    );
    let mut rows = vec![
        [
            "Namespace",
            "Name",
            "CPU Requests",
            "CPU Limits",
            "Memory Requests",
            "Memory Limits",
            "Age",
        ]
        .map(String::from)
        .to_vec(),
        [
            "---------",
            "----",
            "------------",
            "----------",
            "---------------",
            "-------------",
            "---",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut total = [0i64; 4];
    for p in &running {
        let m = p.metadata.clone().unwrap_or_default();
        let r = pod_resources(p);
        for i in 0..4 {
            total[i] += r[i];
        }
        rows.push(vec![
            m.namespace.clone(),
            m.name.clone(),
            share("cpu", r[0], cpu),
            share("cpu", r[1], cpu),
            share("memory", r[2], mem),
            share("memory", r[3], mem),
            crate::format::age(&m.creation_timestamp, now),
        ]);
    }
    for l in render_table(&rows).lines() {
        d.text(1, l);
    }
    d.text(0, "Allocated resources:");
    d.text(
        1,
        "(Total limits may be over 100 percent, i.e., overcommitted.)",
    );
    let rows = vec![
        ["Resource", "Requests", "Limits"]
            .map(String::from)
            .to_vec(),
        ["--------", "--------", "------"]
            .map(String::from)
            .to_vec(),
        vec![
            "cpu".into(),
            share("cpu", total[0], cpu),
            share("cpu", total[1], cpu),
        ],
        vec![
            "memory".into(),
            share("memory", total[2], mem),
            share("memory", total[3], mem),
        ],
    ];
    for l in render_table(&rows).lines() {
        d.text(1, l);
    }
}

/// A pod template as `describe` prints it (`Pod Template:` and its lines), for `rollout
/// history --revision`.
pub fn pod_template_text(t: &v1::PodTemplateSpec) -> String {
    let mut d = Doc::default();
    pod_template(&mut d, 0, "Pod Template", t);
    d.render()
}

fn pod_template(d: &mut Doc, level: usize, title: &str, t: &v1::PodTemplateSpec) {
    let meta = t.metadata.clone().unwrap_or_default();
    let spec = t.spec.clone().unwrap_or_default();
    d.text(level, format!("{title}:"));
    d.multi(level + 1, "Labels", kv_lines(&meta.labels));
    if !meta.annotations.is_empty() {
        d.multi(level + 1, "Annotations", kv_annotations(&meta.annotations));
    }
    if !spec.init_containers.is_empty() {
        containers(d, level + 1, "Init Containers", &spec.init_containers, &[]);
    }
    containers(d, level + 1, "Containers", &spec.containers, &[]);
    let volumes: Vec<String> = spec
        .volumes
        .iter()
        .map(|v| match &v.host_path {
            Some(h) => format!("{}: HostPath {}", v.name, h.path),
            None if v.empty_dir.is_some() => format!("{}: EmptyDir", v.name),
            None => v.name.clone(),
        })
        .collect();
    d.multi(level + 1, "Volumes", volumes);
    if !spec.node_selector.is_empty() {
        d.multi(level + 1, "Node-Selectors", kv_lines(&spec.node_selector));
    }
}

fn containers(
    d: &mut Doc,
    level: usize,
    title: &str,
    cs: &[v1::Container],
    statuses: &[v1::ContainerStatus],
) {
    d.text(level, format!("{title}:"));
    for c in cs {
        d.text(level + 1, format!("{}:", c.name));
        let l = level + 2;
        d.field(l, "Image", c.image.clone());
        if let Some(s) = statuses.iter().find(|s| s.name == c.name) {
            let state = s.state.clone().unwrap_or_default();
            let text = if let Some(w) = &state.waiting {
                format!("Waiting ({})", w.reason)
            } else if let Some(r) = &state.running {
                format!("Running (since {})", describe_time(&r.started_at))
            } else if let Some(t) = &state.terminated {
                format!("Terminated ({}, exit code {})", t.reason, t.exit_code)
            } else {
                "<unknown>".to_string()
            };
            d.field(l, "State", text);
            d.field(l, "Ready", s.ready.to_string());
            d.field(l, "Restart Count", s.restart_count.to_string());
        }
        if !c.command.is_empty() {
            d.text(l, "Command:");
            for a in &c.command {
                d.text(l + 1, a.clone());
            }
        }
        if !c.args.is_empty() {
            d.text(l, "Args:");
            for a in &c.args {
                d.text(l + 1, a.clone());
            }
        }
        let env: Vec<String> = c
            .env
            .iter()
            .map(|e| {
                if e.value_from.is_some() {
                    format!("{}:  (from a reference)", e.name)
                } else {
                    format!("{}:  {}", e.name, e.value)
                }
            })
            .collect();
        if env.is_empty() {
            d.field(l, "Environment", "<none>");
        } else {
            d.text(l, "Environment:");
            for e in env {
                d.text(l + 1, e);
            }
        }
        let mounts: Vec<String> = c
            .volume_mounts
            .iter()
            .map(|m| {
                format!(
                    "{} from {} ({})",
                    m.mount_path,
                    m.name,
                    if m.read_only { "ro" } else { "rw" }
                )
            })
            .collect();
        d.multi(l, "Mounts", mounts);
    }
}

/// kubectl's Events table for `describe` (Type, Reason, Age, From, Message), oldest first;
/// `Events:  <none>` when empty.
pub fn events_section(events: &[v1::Event], now: DateTime<Utc>) -> String {
    if events.is_empty() {
        return "Events:  <none>\n".to_string();
    }
    let mut sorted: Vec<&v1::Event> = events.iter().collect();
    let when =
        |e: &v1::Event| parse_time(&e.last_timestamp).or_else(|| parse_time(&e.first_timestamp));
    sorted.sort_by_key(|e| when(e));
    let mut rows = vec![
        ["Type", "Reason", "Age", "From", "Message"]
            .map(String::from)
            .to_vec(),
        ["----", "------", "----", "----", "-------"]
            .map(String::from)
            .to_vec(),
    ];
    for e in sorted {
        let age = match (parse_time(&e.first_timestamp), e.count) {
            (Some(first), c) if c > 1 => format!(
                "{} (x{c} over {})",
                crate::format::age(&e.last_timestamp, now),
                human_duration(now - first)
            ),
            // kubectl: when it first happened, for an event seen once.
            _ if e.first_timestamp.is_empty() => printers::event_last_seen(e, now),
            _ => crate::format::age(&e.first_timestamp, now),
        };
        // kubectl's describe names the component only (the host is in `get events -o wide`).
        let from = match e.source.as_ref().map(|s| s.component.as_str()) {
            Some(c) if !c.is_empty() => c.to_string(),
            _ => e.reporting_component.clone(),
        };
        rows.push(vec![
            e.r#type.clone(),
            e.reason.clone(),
            age,
            from,
            e.message.trim().to_string(),
        ]);
    }
    let mut out = "Events:\n".to_string();
    for l in render_table(&rows).lines() {
        out.push_str("  ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::ObjectMeta;

    fn now() -> DateTime<Utc> {
        parse_time("2024-01-01T01:00:00Z").unwrap()
    }

    fn pi() -> Object {
        v1::Job {
            metadata: Some(ObjectMeta {
                name: "pi".into(),
                namespace: "default".into(),
                uid: "u1".into(),
                labels: [
                    ("a".to_string(), "1".to_string()),
                    ("b".to_string(), "2".to_string()),
                ]
                .into(),
                owner_references: vec![v1::OwnerReference {
                    kind: "CronJob".into(),
                    name: "hourly".into(),
                    controller: Some(true),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            spec: Some(v1::JobSpec {
                parallelism: Some(1),
                completions: Some(1),
                backoff_limit: Some(4),
                completion_mode: "NonIndexed".into(),
                suspend: Some(false),
                template: Some(v1::PodTemplateSpec {
                    metadata: None,
                    spec: Some(v1::PodSpec {
                        containers: vec![v1::Container {
                            name: "pi".into(),
                            image: "perl:5.34".into(),
                            command: vec!["perl".into(), "-Mbignum=bpi".into()],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: Some(v1::JobStatus {
                start_time: "2024-01-01T00:59:00Z".into(),
                completion_time: "2024-01-01T00:59:20Z".into(),
                succeeded: 1,
                ready: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn a_job_describes_with_kubectls_fields_and_its_events() {
        let ev = v1::Event {
            involved_object: Some(v1::ObjectReference {
                kind: "Job".into(),
                name: "pi".into(),
                uid: "u1".into(),
                ..Default::default()
            }),
            r#type: "Normal".into(),
            reason: "SuccessfulCreate".into(),
            message: "Created pod: pi-abcde".into(),
            source: Some(v1::EventSource {
                component: "job-controller".into(),
                ..Default::default()
            }),
            first_timestamp: "2024-01-01T00:59:00Z".into(),
            last_timestamp: "2024-01-01T00:59:00Z".into(),
            count: 1,
            ..Default::default()
        };
        assert!(is_about(&ev, &pi()));
        let text = render(&pi(), &[ev], now());
        for want in [
            "Name:             pi\n",
            "Namespace:        default\n",
            "Labels:           a=1\n                  b=2\n",
            "Controlled By:    CronJob/hourly\n",
            "Completion Mode:  NonIndexed\n",
            "Duration:         20s\n",
            "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed\n",
            "Pod Template:\n  Labels:   <none>\n  Containers:\n    pi:\n      Image:        perl:5.34\n      Command:\n        perl\n",
            "Events:\n  Type     Reason             Age    From             Message\n",
            "  Normal   SuccessfulCreate   60s    job-controller   Created pod: pi-abcde\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    fn hourly(catch_up: Option<v1::CatchUp>, next: &str) -> Object {
        v1::CronJob {
            metadata: Some(ObjectMeta {
                name: "hourly".into(),
                namespace: "default".into(),
                uid: "c1".into(),
                ..Default::default()
            }),
            spec: Some(v1::CronJobSpec {
                schedule: "0 * * * *".into(),
                concurrency_policy: "Forbid".into(),
                suspend: Some(false),
                successful_jobs_history_limit: Some(3),
                failed_jobs_history_limit: Some(1),
                catch_up,
                job_template: Some(v1::JobTemplateSpec {
                    metadata: None,
                    spec: Some(v1::JobSpec {
                        parallelism: Some(2),
                        template: Some(v1::PodTemplateSpec {
                            metadata: None,
                            spec: Some(v1::PodSpec {
                                containers: vec![v1::Container {
                                    name: "hello".into(),
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
                active: vec![v1::ObjectReference {
                    name: "hourly-28401060".into(),
                    ..Default::default()
                }],
                last_schedule_time: "2024-01-01T01:00:00Z".into(),
                next_schedule_time: next.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn a_cronjob_describes_with_kubectls_fields_then_bosuns() {
        let text = render(&hourly(None, "2024-01-01T02:00:00Z"), &[], now());
        let want = [
            "Schedule:                      0 * * * *\n",
            "Time Zone:                     <unset> (UTC)\n",
            "Concurrency Policy:            Forbid\n",
            "Suspend:                       False\n",
            "Successful Job History Limit:  3\n",
            "Failed Job History Limit:      1\n",
            "Starting Deadline Seconds:     <unset>\n",
            "Catch Up:                      Latest\n",
            "Selector:                      <unset>\n",
            "Parallelism:                   2\n",
            "Completions:                   <unset>\n",
            "Pod Template:\n",
            "Last Schedule Time:            Mon, 01 Jan 2024 01:00:00 +0000\n",
            "Next Schedule Time:            Mon, 01 Jan 2024 02:00:00 +0000 (in 60m)\n",
            "Active Jobs:                   hourly-28401060\n",
        ];
        // In kubectl's order.
        let mut at = 0;
        for w in want {
            let found = text[at..]
                .find(w)
                .unwrap_or_else(|| panic!("missing {w:?} after byte {at} in\n{text}"));
            at += found + w.len();
        }
        let rows = [
            ("unset", None, "Latest"),
            (
                "None",
                Some(v1::CatchUp {
                    policy: "None".into(),
                    max_runs: None,
                }),
                "None",
            ),
            (
                "All",
                Some(v1::CatchUp {
                    policy: "All".into(),
                    max_runs: Some(100),
                }),
                "All (at most 100 runs)",
            ),
        ];
        for (name, c, want) in rows {
            let text = render(&hourly(c, ""), &[], now());
            assert!(
                text.contains(&format!("Catch Up:                      {want}\n")),
                "{name}: {text}"
            );
            assert!(
                text.contains("Next Schedule Time:            <unset>\n"),
                "{name}"
            );
        }
    }

    fn job_with(name: &str, conditions: &[(&str, &str)]) -> v1::Job {
        v1::Job {
            metadata: Some(ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            status: Some(v1::JobStatus {
                conditions: conditions
                    .iter()
                    .map(|(t, s)| v1::Condition {
                        r#type: t.to_string(),
                        status: s.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_dependency_shows_the_status_get_jobs_shows_or_not_found() {
        for (conditions, want) in [
            (&[("Complete", "True")][..], "Complete"),
            (&[("Failed", "True")], "Failed"),
            (&[("Suspended", "True")], "Suspended"),
            (&[("Waiting", "True")], "Waiting"),
            (&[("Complete", "False")], "Running"),
            (&[], "Running"),
        ] {
            let j = job_with("dep", conditions);
            assert_eq!(dependency_state(Some(&j)), want, "{conditions:?}");
        }
        assert_eq!(dependency_state(None), "not found");
    }

    #[test]
    fn a_job_shows_its_dependencies_backoff_failures_and_conditions() {
        let mut obj = pi();
        if let Some(O::Job(j)) = obj.object.as_mut() {
            let spec = j.spec.as_mut().unwrap();
            spec.depends_on = vec!["prepare".into(), "fetch".into(), "gone".into()];
            spec.pod_backoff = Some(v1::PodBackoff {
                initial_seconds: Some(5),
                max_seconds: None,
                factor: Some(3),
            });
            let st = j.status.as_mut().unwrap();
            st.consecutive_failures = 2;
            st.last_failure_time = "2024-01-01T00:58:00Z".into();
            st.conditions = vec![v1::Condition {
                r#type: "Waiting".into(),
                status: "True".into(),
                reason: "WaitingForDependencies".into(),
                message: "waiting for fetch (Running), gone (not found)".into(),
                last_transition_time: "2024-01-01T00:59:00Z".into(),
                ..Default::default()
            }];
        }
        let related = Related {
            dependencies: [
                ("prepare".to_string(), "Complete".to_string()),
                ("fetch".to_string(), "Running".to_string()),
                ("gone".to_string(), "not found".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let text = render_with(&obj, &related, &[], now());
        for want in [
            "Pod Backoff:           initial 5s, factor 3, max 600s\n",
            "Depends On:            prepare (Complete), fetch (Running), gone (not found)\n",
            "Consecutive Failures:  2\n",
            "Last Failure Time:     Mon, 01 Jan 2024 00:58:00 +0000\n",
            "Conditions:\n  Type      Status   LastTransitionTime                Reason                   Message\n",
            "  ----      ------   ------------------                ------                   -------\n",
            "  Waiting   True     Mon, 01 Jan 2024 00:59:00 +0000   WaitingForDependencies   waiting for fetch (Running), gone (not found)\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // The conditions come after the pod template, the events last (kubectl's order).
        let at = |s: &str| {
            text.find(s)
                .unwrap_or_else(|| panic!("no {s:?} in\n{text}"))
        };
        assert!(at("Pod Template:") < at("Conditions:") && at("Conditions:") < at("Events:"));

        // Unfetched dependencies print by name; a plain Job shows none of bosun's fields.
        assert!(render(&obj, &[], now()).contains("prepare, fetch, gone\n"));
        let plain = render(&pi(), &[], now());
        for absent in [
            "Depends On",
            "Pod Backoff",
            "Consecutive",
            "Last Failure",
            "Conditions",
        ] {
            assert!(!plain.contains(absent), "{absent} in\n{plain}");
        }
    }

    #[test]
    fn pod_backoff_fills_unset_parts_with_the_defaults() {
        assert_eq!(
            pod_backoff(&v1::PodBackoff::default()),
            "initial 10s, factor 2, max 600s"
        );
        assert_eq!(
            pod_backoff(&v1::PodBackoff {
                initial_seconds: Some(1),
                max_seconds: Some(60),
                factor: Some(1),
            }),
            "initial 1s, factor 1, max 60s"
        );
    }

    #[test]
    fn event_rows_read_like_kubectl_describe() {
        let ev = |reason: &str, count: i32, first: &str, last: &str| v1::Event {
            r#type: "Warning".into(),
            reason: reason.into(),
            message: "  Job has reached the specified backoff limit\n".into(),
            reporting_component: "job-controller".into(),
            first_timestamp: first.into(),
            last_timestamp: last.into(),
            count,
            ..Default::default()
        };
        let text = events_section(
            &[
                ev(
                    "BackoffLimitExceeded",
                    1,
                    "2024-01-01T00:59:30Z",
                    "2024-01-01T00:59:30Z",
                ),
                ev(
                    "FailedCreate",
                    3,
                    "2024-01-01T00:50:00Z",
                    "2024-01-01T00:59:00Z",
                ),
            ],
            now(),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Events:");
        assert!(lines[1].starts_with("  Type "), "{text}");
        assert!(lines[2].starts_with("  ----"), "{text}");
        // Oldest last-seen first; a repeat says how often and over how long; From falls back
        // to the reporting component; the message is trimmed.
        assert!(
            lines[3].contains("FailedCreate") && lines[3].contains("60s (x3 over 10m)"),
            "{text}"
        );
        assert!(
            lines[4].contains("BackoffLimitExceeded") && lines[4].contains("30s"),
            "{text}"
        );
        assert!(
            lines[4].ends_with("job-controller   Job has reached the specified backoff limit"),
            "{text}"
        );
    }

    #[test]
    fn events_of_other_objects_are_not_shown() {
        let other = v1::Event {
            involved_object: Some(v1::ObjectReference {
                kind: "Job".into(),
                name: "pi".into(),
                uid: "someone-else".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(!is_about(&other, &pi()));
        assert_eq!(events_section(&[], now()), "Events:  <none>\n");
    }

    #[test]
    fn quantities_read_as_millicores_and_bytes() {
        for (res, v, want) in [
            ("cpu", "100m", 100),
            ("cpu", "2", 2000),
            ("cpu", "0.5", 500),
            ("memory", "128Mi", 128 << 20),
            ("memory", "1Gi", 1 << 30),
            ("memory", "1000", 1000),
            ("memory", "junk", 0),
        ] {
            assert_eq!(quantity(res, v), want, "{res} {v}");
        }
    }

    #[test]
    fn a_node_describes_its_lease_pods_and_allocated_resources() {
        let node: Object = v1::Node {
            metadata: Some(v1::ObjectMeta {
                name: "n1".into(),
                ..Default::default()
            }),
            status: Some(v1::NodeStatus {
                allocatable: [
                    ("cpu".to_string(), "2".to_string()),
                    ("memory".to_string(), "1Gi".to_string()),
                ]
                .into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into();
        let pod = |name: &str, phase: &str| v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                containers: vec![v1::Container {
                    name: "c".into(),
                    resources: Some(v1::ResourceRequirements {
                        requests: [
                            ("cpu".to_string(), "500m".to_string()),
                            ("memory".to_string(), "256Mi".to_string()),
                        ]
                        .into(),
                        limits: Default::default(),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            status: Some(v1::PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let related = Related {
            lease: Some(v1::Lease {
                spec: Some(v1::LeaseSpec {
                    holder_identity: Some("n1".into()),
                    renew_time: "2026-01-01T00:00:00.000000Z".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            pods: vec![pod("web", "Running"), pod("done", "Succeeded")],
            ..Default::default()
        };
        let text = render_with(&node, &related, &[], now());
        for want in [
            "Lease:\n  HolderIdentity:  n1\n  AcquireTime:     <unset>\n  RenewTime:       2026-01-01T00:00:00.000000Z\n",
            "Non-terminated Pods:          (1 in total)\n",
            "  default     web    500m (25%)     0 (0%)       256Mi (25%)       0 (0%)",
            "  cpu        500m (25%)    0 (0%)\n",
            "  memory     256Mi (25%)   0 (0%)\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("done"), "{text}");
    }

    fn daemon_pod(name: &str, owner_uid: &str, phase: &str) -> v1::Pod {
        v1::Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                owner_references: vec![v1::OwnerReference {
                    kind: "DaemonSet".into(),
                    name: "agent".into(),
                    uid: owner_uid.into(),
                    controller: Some(true),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(v1::PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_daemonset_describes_with_kubectls_fields_its_pods_and_its_pause() {
        let mut ds = v1::DaemonSet {
            metadata: Some(ObjectMeta {
                name: "agent".into(),
                namespace: "default".into(),
                uid: "ds-1".into(),
                ..Default::default()
            }),
            spec: Some(v1::DaemonSetSpec {
                selector: Some(v1::LabelSelector {
                    match_labels: [("app".to_string(), "agent".to_string())].into(),
                    ..Default::default()
                }),
                template: Some(v1::PodTemplateSpec {
                    metadata: None,
                    spec: Some(v1::PodSpec {
                        node_selector: [("disk".to_string(), "ssd".to_string())].into(),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: Some(v1::DaemonSetStatus {
                desired_number_scheduled: 3,
                current_number_scheduled: 3,
                updated_number_scheduled: 2,
                number_available: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let related = Related {
            pods: vec![
                daemon_pod("a", "ds-1", "Running"),
                daemon_pod("b", "ds-1", "Pending"),
                daemon_pod("c", "ds-1", "Succeeded"),
                daemon_pod("d", "ds-1", "Failed"),
                daemon_pod("e", "ds-1", "Running"),
                daemon_pod("other", "ds-2", "Running"),
            ],
            ..Default::default()
        };
        let text = render_with(&ds.clone().into(), &related, &[], now());
        assert!(
            text.starts_with(
                "Name:           agent\nNamespace:      default\nSelector:       app=agent\nNode-Selector:  disk=ssd\nLabels:         <none>\n"
            ),
            "{text}"
        );
        for want in [
            "\nDesired Number of Nodes Scheduled: 3\nCurrent Number of Nodes Scheduled: 3\nNumber of Nodes Scheduled with Up-to-date Pods: 2\nNumber of Nodes Scheduled with Available Pods: 1\nNumber of Nodes Misscheduled: 0\n",
            "Pods Status:    2 Running / 1 Waiting / 1 Succeeded / 1 Failed\n",
            "Pod Template:\n",
            "Events:  <none>\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("Rollout:"), "{text}");
        ds.metadata
            .as_mut()
            .unwrap()
            .annotations
            .insert(PAUSED_ANNOTATION.into(), "true".into());
        let paused = render_with(&ds.into(), &related, &[], now());
        assert!(
            paused.contains("Rollout:        Paused (bosun.dev/rollout-paused=true; bosun rollout resume ds/agent continues it)\n"),
            "{paused}"
        );
    }
}
