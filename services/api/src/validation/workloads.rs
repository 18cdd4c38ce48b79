//! Job, CronJob and DaemonSet specs (`pkg/apis/batch/validation`, `pkg/apis/apps/validation`).

use std::collections::HashSet;

use super::Errs;
use super::meta::{
    is_dns1123_label, selector_matches, validate_labels, validate_selector, validate_subdomain,
};
use super::pod::validate_pod_spec;
use crate::v1::{self, CronJobSpec, DaemonSetSpec, JobSpec, ObjectMeta};
use crate::vocab;

const MAX_PARALLELISM_INDEXED: i32 = 100_000;
/// `maxFailedIndexesForIndexedJob`.
const MAX_FAILED_INDEXES: i32 = 100_000;
/// `completionsSoftLimit`: above it, an Indexed Job with backoffLimitPerIndex must cap
/// parallelism and name maxFailedIndexes (both at most 10000).
const COMPLETIONS_SOFT_LIMIT: i32 = 100_000;
/// `parallelismLimitForHighCompletions` and `maxFailedIndexesLimitForHighCompletions`.
const LIMIT_FOR_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_RULES: usize = 20;

fn template_labels(t: Option<&v1::PodTemplateSpec>) -> std::collections::BTreeMap<String, String> {
    t.and_then(|t| t.metadata.as_ref())
        .map(|m| m.labels.clone())
        .unwrap_or_default()
}

/// The rules for Indexed Jobs with more than [`COMPLETIONS_SOFT_LIMIT`] completions and a
/// per-index backoff limit: maxFailedIndexes is required, and it and parallelism are capped.
fn validate_high_completions(e: &mut Errs, s: &JobSpec, p: &str) {
    let high = s.completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT);
    if !high || s.backoff_limit_per_index.is_none() {
        return;
    }
    let detail = "must be less than or equal to 10000 when completions are above 100000 and used with backoff limit per index";
    match s.max_failed_indexes {
        None => e.required(
            format!("{p}.maxFailedIndexes"),
            "must be specified when completions is above 100000",
        ),
        Some(mfi) if mfi > LIMIT_FOR_HIGH_COMPLETIONS => {
            e.invalid(format!("{p}.maxFailedIndexes"), mfi, detail);
        }
        Some(_) => {}
    }
    if let Some(par) = s.parallelism.filter(|v| *v > LIMIT_FOR_HIGH_COMPLETIONS) {
        e.invalid(format!("{p}.parallelism"), par, detail);
    }
}

/// `ValidateJobSpec`; `in_cron` when it is a CronJob's jobTemplate (no selector there).
pub(crate) fn validate_job_spec(
    e: &mut Errs,
    s: &JobSpec,
    meta: &ObjectMeta,
    p: &str,
    in_cron: bool,
) {
    for (name, v) in [
        ("parallelism", s.parallelism.map(i64::from)),
        ("completions", s.completions.map(i64::from)),
        ("activeDeadlineSeconds", s.active_deadline_seconds),
        ("backoffLimit", s.backoff_limit.map(i64::from)),
        (
            "backoffLimitPerIndex",
            s.backoff_limit_per_index.map(i64::from),
        ),
        ("maxFailedIndexes", s.max_failed_indexes.map(i64::from)),
        (
            "ttlSecondsAfterFinished",
            s.ttl_seconds_after_finished.map(i64::from),
        ),
    ] {
        e.non_negative(&format!("{p}.{name}"), v);
    }
    let indexed = s.completion_mode == "Indexed";
    if !s.completion_mode.is_empty() {
        e.one_of(
            &format!("{p}.completionMode"),
            &s.completion_mode,
            &["NonIndexed", "Indexed"],
        );
    }
    if indexed {
        match s.completions {
            None => e.required(
                format!("{p}.completions"),
                "when completion mode is Indexed",
            ),
            Some(c) if c > MAX_PARALLELISM_INDEXED && s.backoff_limit_per_index.is_none() => {
                e.invalid(
                    format!("{p}.completions"),
                    c,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                );
            }
            _ => {}
        }
        if let Some(par) = s.parallelism.filter(|v| *v > MAX_PARALLELISM_INDEXED) {
            e.invalid(
                format!("{p}.parallelism"),
                par,
                "must be less than or equal to 100000 when completion mode is Indexed",
            );
        }
        if let Some(mfi) = s.max_failed_indexes.filter(|v| *v > MAX_FAILED_INDEXES) {
            e.invalid(
                format!("{p}.maxFailedIndexes"),
                mfi,
                "must be less than or equal to 100000",
            );
        }
        validate_high_completions(e, s, p);
        // The controller names pods `<job>-<index>`... and their hostnames; the largest index
        // must still make a DNS label, or pods could never be created.
        if let Some(c) = s
            .completions
            .filter(|c| *c > 0 && !in_cron && !meta.name.is_empty())
        {
            let hostname = format!("{}-{}", meta.name, c - 1);
            if !is_dns1123_label(&hostname) {
                e.invalid(
                    "metadata.name",
                    &meta.name,
                    &format!("will not able to create pod with invalid DNS label: {hostname}"),
                );
            }
        }
    }
    if s.backoff_limit_per_index.is_some() && !indexed {
        e.invalid(
            format!("{p}.backoffLimitPerIndex"),
            s.backoff_limit_per_index.unwrap_or(0),
            "requires indexed completion mode",
        );
    }
    if let Some(mfi) = s.max_failed_indexes {
        if s.backoff_limit_per_index.is_none() {
            e.required(
                format!("{p}.backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            );
        }
        if !indexed {
            e.invalid(
                format!("{p}.maxFailedIndexes"),
                mfi,
                "requires indexed completion mode",
            );
        }
        if let Some(c) = s.completions.filter(|c| mfi > *c) {
            e.invalid(
                format!("{p}.maxFailedIndexes"),
                mfi,
                &format!("must be less than or equal to completions ({c})"),
            );
        }
    }

    // Selector and template labels.
    let labels = template_labels(s.template.as_ref());
    if in_cron {
        if let Some(sel) = &s.selector {
            e.invalid(
                format!("{p}.selector"),
                format!("{sel:?}"),
                "`selector` will be auto-generated",
            );
        }
        if s.manual_selector == Some(true) {
            e.unsupported(format!("{p}.manualSelector"), "true", &["nil", "false"]);
        }
    } else {
        match &s.selector {
            None if s.manual_selector == Some(true) || !meta.uid.is_empty() => {
                e.required(format!("{p}.selector"), "")
            }
            None => {}
            Some(sel) => {
                validate_selector(e, &format!("{p}.selector"), sel);
                if !selector_matches(sel, &labels) {
                    e.invalid(
                        format!("{p}.template.metadata.labels"),
                        &labels,
                        "`selector` does not match template `labels`",
                    );
                }
            }
        }
    }

    // The pod template.
    let tp = format!("{p}.template");
    match s.template.as_ref() {
        None => e.required(&tp, ""),
        Some(t) => {
            if let Some(m) = &t.metadata {
                validate_labels(e, &format!("{tp}.metadata.labels"), &m.labels);
            }
            match &t.spec {
                None => e.required(format!("{tp}.spec.containers"), ""),
                Some(ps) => {
                    validate_pod_spec(e, ps, &format!("{tp}.spec"));
                    let rp = format!("{tp}.spec.restartPolicy");
                    if !matches!(
                        ps.restart_policy.as_str(),
                        "OnFailure" | "Never" | "Always" | ""
                    ) {
                        // Already reported by the pod spec rules.
                    } else if ps.restart_policy != "OnFailure" && ps.restart_policy != "Never" {
                        e.unsupported(&rp, &ps.restart_policy, &["OnFailure", "Never"]);
                    } else if s.pod_failure_policy.is_some() && ps.restart_policy != "Never" {
                        e.invalid(
                            &rp,
                            &ps.restart_policy,
                            "only \"Never\" is supported when podFailurePolicy is specified",
                        );
                    }
                }
            }
        }
    }

    if let Some(pfp) = &s.pod_failure_policy {
        validate_pod_failure_policy(e, s, pfp, &format!("{p}.podFailurePolicy"));
    }
    if let Some(sp) = &s.success_policy {
        validate_success_policy(e, s, sp, &format!("{p}.successPolicy"));
    }
    if !s.pod_replacement_policy.is_empty() {
        let pp = format!("{p}.podReplacementPolicy");
        if s.pod_failure_policy.is_some() {
            if s.pod_replacement_policy != "Failed" {
                e.unsupported(&pp, &s.pod_replacement_policy, &["Failed"]);
            }
        } else {
            e.one_of(
                &pp,
                &s.pod_replacement_policy,
                &["Failed", "TerminatingOrFailed"],
            );
        }
    }
    if let Some(mb) = &s.managed_by {
        validate_managed_by(e, mb, &format!("{p}.managedBy"));
    }
    if let Some(b) = &s.pod_backoff {
        let bp = format!("{p}.podBackoff");
        if let Some(i) = b.initial_seconds.filter(|i| *i <= 0) {
            e.invalid(format!("{bp}.initialSeconds"), i, "must be greater than 0");
        }
        if let Some(m) = b.max_seconds {
            let initial = b.initial_seconds.unwrap_or(10);
            if m < initial {
                e.invalid(
                    format!("{bp}.maxSeconds"),
                    m,
                    &format!("must be greater than or equal to initialSeconds ({initial})"),
                );
            }
        }
        if let Some(f) = b.factor.filter(|f| *f < 1) {
            e.invalid(
                format!("{bp}.factor"),
                f,
                "must be greater than or equal to 1",
            );
        }
    }
    let mut seen = HashSet::new();
    for (i, d) in s.depends_on.iter().enumerate() {
        let dp = format!("{p}.dependsOn[{i}]");
        validate_subdomain(e, &dp, d);
        if !meta.name.is_empty() && *d == meta.name && !in_cron {
            e.invalid(&dp, d, "a Job cannot depend on itself");
        }
        if !seen.insert(d.clone()) {
            e.duplicate(&dp, d);
        }
    }
}

fn validate_pod_failure_policy(e: &mut Errs, s: &JobSpec, pfp: &v1::PodFailurePolicy, p: &str) {
    let rp = format!("{p}.rules");
    if pfp.rules.len() > MAX_RULES {
        e.push(
            &rp,
            format!(
                "Too many: {}: must have at most {MAX_RULES} items",
                pfp.rules.len()
            ),
        );
    }
    let containers: HashSet<&str> = s
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|ps| {
            ps.containers
                .iter()
                .chain(ps.init_containers.iter())
                .map(|c| c.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    for (i, rule) in pfp.rules.iter().enumerate() {
        let p = format!("{rp}[{i}]");
        e.one_of(
            &format!("{p}.action"),
            &rule.action,
            &["Count", "FailIndex", "FailJob", "Ignore"],
        );
        if rule.action == "FailIndex" && s.backoff_limit_per_index.is_none() {
            e.invalid(
                format!("{p}.action"),
                &rule.action,
                "requires the backoffLimitPerIndex to be set",
            );
        }
        match (&rule.on_exit_codes, rule.on_pod_conditions.is_empty()) {
            (None, true) => e.invalid(
                &p,
                "",
                "specifying one of OnExitCodes and OnPodConditions is required",
            ),
            (Some(_), false) => e.invalid(
                &p,
                "",
                "specifying both OnExitCodes and OnPodConditions is not supported",
            ),
            _ => {}
        }
        if let Some(oec) = &rule.on_exit_codes {
            let op = format!("{p}.onExitCodes");
            e.one_of(&format!("{op}.operator"), &oec.operator, &["In", "NotIn"]);
            if let Some(c) = &oec.container_name
                && !containers.contains(c.as_str())
            {
                e.invalid(
                    format!("{op}.containerName"),
                    c,
                    "must be one of the container or initContainer names in the pod template",
                );
            }
            let vp = format!("{op}.values");
            if oec.values.is_empty() {
                e.invalid(&vp, "", "at least one value is required");
            } else if oec.values.len() > 255 {
                e.push(
                    &vp,
                    format!(
                        "Too many: {}: must have at most 255 items",
                        oec.values.len()
                    ),
                );
            }
            for (j, v) in oec.values.iter().enumerate() {
                if oec.operator == "In" && *v == 0 {
                    e.invalid(format!("{vp}[{j}]"), v, "must not be 0 for the In operator");
                }
                if j > 0 {
                    let prev = oec.values[j - 1];
                    if *v == prev {
                        e.duplicate(format!("{vp}[{j}]"), v);
                    } else if *v < prev {
                        e.invalid(format!("{vp}[{j}]"), v, "must be ordered");
                    }
                }
            }
        }
        if rule.on_pod_conditions.len() > MAX_RULES {
            e.push(
                format!("{p}.onPodConditions"),
                format!(
                    "Too many: {}: must have at most {MAX_RULES} items",
                    rule.on_pod_conditions.len()
                ),
            );
        }
        for (j, pat) in rule.on_pod_conditions.iter().enumerate() {
            let pp = format!("{p}.onPodConditions[{j}]");
            if pat.r#type.is_empty() {
                e.required(format!("{pp}.type"), "");
            } else {
                super::meta::validate_label_key(e, &format!("{pp}.type"), &pat.r#type);
            }
            e.one_of(
                &format!("{pp}.status"),
                &pat.status,
                &["False", "True", "Unknown"],
            );
        }
    }
}

/// Parses `1,3-5,7` into sorted, non-overlapping intervals.
pub(crate) fn parse_indexes(s: &str) -> Result<Vec<(i64, i64)>, String> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: i64 = a
            .parse()
            .map_err(|_| format!("cannot convert string to integer for index: {a:?}"))?;
        let b: i64 = b
            .parse()
            .map_err(|_| format!("cannot convert string to integer for index: {b:?}"))?;
        if a > b {
            return Err(format!("non-increasing order, previous: {a}, current: {b}"));
        }
        if let Some(&(_, prev)) = out.last()
            && a <= prev
        {
            return Err(format!(
                "overlapping intervals, previous: {prev}, current: {a}"
            ));
        }
        out.push((a, b));
    }
    Ok(out)
}

fn validate_success_policy(e: &mut Errs, s: &JobSpec, sp: &v1::SuccessPolicy, p: &str) {
    if s.completion_mode != "Indexed" {
        e.invalid(p, "", "requires indexed completion mode");
        return;
    }
    let rp = format!("{p}.rules");
    if sp.rules.is_empty() {
        e.required(
            &rp,
            "at least one rules must be specified when the successPolicy is specified",
        );
    }
    if sp.rules.len() > MAX_RULES {
        e.push(
            &rp,
            format!(
                "Too many: {}: must have at most {MAX_RULES} items",
                sp.rules.len()
            ),
        );
    }
    let completions = i64::from(s.completions.unwrap_or(0));
    for (i, rule) in sp.rules.iter().enumerate() {
        let p = format!("{rp}[{i}]");
        if rule.succeeded_indexes.is_none() && rule.succeeded_count.is_none() {
            e.required(
                &p,
                "at least one of succeededCount or succeededIndexes must be specified",
            );
        }
        let mut size = None;
        if let Some(idx) = &rule.succeeded_indexes {
            let ip = format!("{p}.succeededIndexes");
            if idx.len() > 64 * 1024 {
                e.push(&ip, "Too long: must have at most 65536 bytes".to_string());
            }
            match parse_indexes(idx) {
                Err(msg) => e.invalid(&ip, idx, &format!("error parsing succeededIndexes: {msg}")),
                Ok(iv) => {
                    if iv.last().is_some_and(|&(_, hi)| hi >= completions) {
                        e.invalid(
                            &ip,
                            idx,
                            &format!(
                                "too large index: must be less than completions ({completions})"
                            ),
                        );
                    }
                    size = Some(iv.iter().map(|(a, b)| b - a + 1).sum::<i64>());
                }
            }
        }
        if let Some(c) = rule.succeeded_count {
            let cp = format!("{p}.succeededCount");
            if c < 0 {
                e.invalid(&cp, c, "must be greater than or equal to 0");
            }
            if i64::from(c) > completions {
                e.invalid(&cp, c, &format!("must be less than or equal to {completions} (the number of specified completions)"));
            }
            if let Some(sz) = size.filter(|sz| i64::from(c) > *sz) {
                e.invalid(&cp, c, &format!("must be less than or equal to {sz} (the number of indexes in the specified succeededIndexes field)"));
            }
        }
    }
}

fn validate_managed_by(e: &mut Errs, mb: &str, p: &str) {
    if mb.len() > 63 {
        e.push(p, "Too long: may not be more than 63 bytes".to_string());
    }
    let ok = match mb.split_once('/') {
        Some((domain, path)) => {
            super::meta::is_dns1123_subdomain(domain)
                && !path.is_empty()
                && path.split('/').all(|seg| {
                    !seg.is_empty()
                        && seg
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:@".contains(c))
                })
        }
        None => false,
    };
    if !ok {
        e.invalid(
            p,
            mb,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        );
    }
}

/// `ValidateCronJobSpec`.
pub(crate) fn validate_cron_job_spec(e: &mut Errs, s: &CronJobSpec) {
    if s.schedule.is_empty() {
        e.required("spec.schedule", "");
    } else if let Err(err) = crate::schedule::validate_schedule(&s.schedule) {
        e.invalid("spec.schedule", &s.schedule, &err.to_string());
    }
    if let Some(tz) = &s.time_zone {
        validate_time_zone(e, tz);
    }
    e.non_negative("spec.startingDeadlineSeconds", s.starting_deadline_seconds);
    e.non_negative(
        "spec.successfulJobsHistoryLimit",
        s.successful_jobs_history_limit.map(i64::from),
    );
    e.non_negative(
        "spec.failedJobsHistoryLimit",
        s.failed_jobs_history_limit.map(i64::from),
    );
    e.one_of(
        "spec.concurrencyPolicy",
        &s.concurrency_policy,
        &crate::cronjob::concurrency::POLICIES,
    );
    if let Some(c) = &s.catch_up {
        validate_catch_up(e, c);
    }
    match s.job_template.as_ref() {
        None => e.required("spec.jobTemplate", ""),
        Some(t) => {
            if let Some(m) = &t.metadata {
                validate_labels(e, "spec.jobTemplate.metadata.labels", &m.labels);
            }
            match &t.spec {
                None => e.required("spec.jobTemplate.spec.template", ""),
                Some(js) => {
                    validate_job_spec(e, js, &ObjectMeta::default(), "spec.jobTemplate.spec", true)
                }
            }
        }
    }
}

/// bosun's `spec.catchUp`: a known policy (empty means Latest), and `maxRuns` (at least 1)
/// only with All, where it means something.
fn validate_catch_up(e: &mut Errs, c: &v1::CatchUp) {
    use crate::cronjob::catch_up;
    if !c.policy.is_empty() {
        e.one_of("spec.catchUp.policy", &c.policy, &catch_up::POLICIES);
    }
    if let Some(max) = c.max_runs {
        if c.policy != catch_up::ALL {
            e.forbidden(
                "spec.catchUp.maxRuns",
                "may only be set when spec.catchUp.policy is All",
            );
        } else if max < 1 {
            e.invalid(
                "spec.catchUp.maxRuns",
                max,
                "must be greater than or equal to 1",
            );
        }
    }
}

/// `validateTimeZone`, with Kubernetes' messages: `time.LoadLocation`'s "unknown time zone X"
/// for a name the zone database does not know.
fn validate_time_zone(e: &mut Errs, tz: &str) {
    let p = "spec.timeZone";
    if tz.is_empty() {
        e.invalid(p, tz, "timeZone must be nil or non-empty string");
        return;
    }
    let part_ok = |part: &str| {
        part != "."
            && part != ".."
            && !part.starts_with('-')
            && (1..=14).contains(&part.len())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    };
    if !tz.split('/').all(part_ok) {
        e.invalid(p, tz, &format!("unknown time zone {tz}"));
        return;
    }
    if tz.eq_ignore_ascii_case("Local") {
        e.invalid(
            p,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        );
    }
    // Go's LoadLocation("Local") succeeds; every other name must be in the zone database.
    if tz != "Local" && tz.parse::<chrono_tz::Tz>().is_err() {
        e.invalid(p, tz, &format!("unknown time zone {tz}"));
    }
}

/// `ValidateDaemonSetSpec`.
pub(crate) fn validate_daemon_set_spec(e: &mut Errs, s: &DaemonSetSpec) {
    let labels = template_labels(s.template.as_ref());
    match &s.selector {
        None => e.required("spec.selector", ""),
        Some(sel) => {
            validate_selector(e, "spec.selector", sel);
            if sel.match_labels.is_empty() && sel.match_expressions.is_empty() {
                e.invalid(
                    "spec.selector",
                    "",
                    "empty selector is invalid for daemonset",
                );
            } else if !selector_matches(sel, &labels) {
                e.invalid(
                    "spec.template.metadata.labels",
                    &labels,
                    "`selector` does not match template `labels`",
                );
            }
        }
    }
    match s.template.as_ref() {
        None => e.required("spec.template", ""),
        Some(t) => {
            if let Some(m) = &t.metadata {
                validate_labels(e, "spec.template.metadata.labels", &m.labels);
            }
            match &t.spec {
                None => e.required("spec.template.spec.containers", ""),
                Some(ps) => {
                    validate_pod_spec(e, ps, "spec.template.spec");
                    if ps.restart_policy != "Always" {
                        e.unsupported(
                            "spec.template.spec.restartPolicy",
                            &ps.restart_policy,
                            &["Always"],
                        );
                    }
                    if ps.active_deadline_seconds.is_some() {
                        e.forbidden(
                            "spec.template.spec.activeDeadlineSeconds",
                            "activeDeadlineSeconds in DaemonSet is not Supported",
                        );
                    }
                }
            }
        }
    }
    e.non_negative("spec.minReadySeconds", Some(i64::from(s.min_ready_seconds)));
    e.non_negative(
        "spec.revisionHistoryLimit",
        s.revision_history_limit.map(i64::from),
    );
    if let Some(st) = &s.update_strategy {
        e.one_of(
            "spec.updateStrategy.type",
            &st.r#type,
            &[
                vocab::daemonset::ON_DELETE,
                vocab::daemonset::ROLLING_UPDATE,
            ],
        );
        if st.r#type == vocab::daemonset::ON_DELETE && st.rolling_update.is_some() {
            e.forbidden(
                "spec.updateStrategy.rollingUpdate",
                "may not be specified when strategy `type` is 'OnDelete'",
            );
        }
        if let (Some(ru), vocab::daemonset::ROLLING_UPDATE) =
            (&st.rolling_update, st.r#type.as_str())
        {
            let up = "spec.updateStrategy.rollingUpdate";
            let unavailable = int_or_percent(
                e,
                ru.max_unavailable.as_ref(),
                &format!("{up}.maxUnavailable"),
            );
            let surge = int_or_percent(e, ru.max_surge.as_ref(), &format!("{up}.maxSurge"));
            match (unavailable, surge) {
                (Some(0), Some(0)) => e.invalid(
                    format!("{up}.maxUnavailable"),
                    0,
                    "cannot be 0 when maxSurge is 0",
                ),
                (Some(u), Some(s)) if u != 0 && s != 0 => {
                    e.invalid(
                        format!("{up}.maxSurge"),
                        show(ru.max_surge.as_ref()),
                        "may not be set when maxUnavailable is non-zero",
                    );
                }
                _ => {}
            }
        }
    }
}

fn show(v: Option<&v1::IntOrString>) -> String {
    match v {
        Some(v) if v.is_string => v.str_val.clone(),
        Some(v) => v.int_val.to_string(),
        None => "0".into(),
    }
}

/// An int or a percentage ≤ 100%; returns its magnitude (percent or count) when valid.
fn int_or_percent(e: &mut Errs, v: Option<&v1::IntOrString>, p: &str) -> Option<i64> {
    let Some(v) = v else { return Some(0) };
    if !v.is_string {
        if v.int_val < 0 {
            e.invalid(p, v.int_val, "must be greater than or equal to 0");
            return None;
        }
        return Some(i64::from(v.int_val));
    }
    match v
        .str_val
        .strip_suffix('%')
        .and_then(|n| n.parse::<i64>().ok())
    {
        Some(n) if (0..=100).contains(&n) => Some(n),
        Some(n) if n > 100 => {
            e.invalid(p, &v.str_val, "must not be greater than 100%");
            None
        }
        _ => {
            e.invalid(p, &v.str_val, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexed(name: &str, completions: i32) -> (JobSpec, ObjectMeta) {
        let spec = JobSpec {
            completion_mode: "Indexed".into(),
            completions: Some(completions),
            ..Default::default()
        };
        let meta = ObjectMeta {
            name: name.into(),
            ..Default::default()
        };
        (spec, meta)
    }

    /// The paths of the errors `validate_job_spec` reports that mention `needle`.
    fn errors(spec: &JobSpec, meta: &ObjectMeta, in_cron: bool, needle: &str) -> Vec<String> {
        let mut e = Errs::default();
        validate_job_spec(&mut e, spec, meta, "spec", in_cron);
        e.0.into_iter()
            .map(|err| err.to_string())
            .filter(|m| m.contains(needle))
            .collect()
    }

    #[test]
    fn an_indexed_job_whose_last_pod_name_is_not_a_dns_label_is_invalid() {
        let long = "a".repeat(60);
        let table = [
            ("pi", 5, false),
            (long.as_str(), 10, false),  // aaaa…-9: 62 characters
            (long.as_str(), 1000, true), // aaaa…-999: 64 characters
            ("pi.v2", 3, true),          // a subdomain, but not a label
        ];
        for (name, completions, bad) in table {
            let (spec, meta) = indexed(name, completions);
            let found = errors(&spec, &meta, false, "invalid DNS label");
            assert_eq!(!found.is_empty(), bad, "{name} {completions}: {found:?}");
            if bad {
                assert!(found[0].starts_with("metadata.name"), "{found:?}");
            }
        }
        // A CronJob's template has no name of its own yet.
        let (spec, meta) = indexed("pi.v2", 3);
        assert!(errors(&spec, &meta, true, "invalid DNS label").is_empty());
    }

    #[test]
    fn high_completions_with_a_per_index_backoff_need_capped_failed_indexes_and_parallelism() {
        let (mut spec, meta) = indexed("big", 200_000);
        spec.backoff_limit_per_index = Some(1);
        assert_eq!(
            errors(&spec, &meta, false, "maxFailedIndexes").len(),
            1,
            "required"
        );
        spec.max_failed_indexes = Some(20_000);
        spec.parallelism = Some(20_000);
        assert_eq!(errors(&spec, &meta, false, "above 100000").len(), 2);
        spec.max_failed_indexes = Some(10_000);
        spec.parallelism = Some(10_000);
        assert!(errors(&spec, &meta, false, "above 100000").is_empty());
        assert!(errors(&spec, &meta, false, "maxFailedIndexes").is_empty());
        // Without a per-index backoff limit the soft limit rules do not apply.
        let (mut spec, meta) = indexed("small", 100);
        spec.backoff_limit_per_index = Some(1);
        spec.max_failed_indexes = Some(100_001);
        let found = errors(&spec, &meta, false, "maxFailedIndexes");
        assert!(
            found
                .iter()
                .any(|m| m.contains("less than or equal to 100000")),
            "{found:?}"
        );
    }
}
