//! Kubernetes' defaults for every kind, applied before validation and before anything is
//! written.
//!
//! The values are those of Kubernetes' `pkg/apis/{core,batch,apps}/v1/defaults.go` and the
//! Job strategy's generated selector (`pkg/registry/batch/job/strategy.go`).

use crate::v1::{self, Object, object::Object as O};
use crate::vocab::{job, policy, status};

/// The label (and selector key) a Job's pods carry: the Job's uid.
pub const JOB_CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// The label a Job's pods carry: the Job's name.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Legacy spelling of [`JOB_CONTROLLER_UID_LABEL`], still set by Kubernetes.
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
/// Legacy spelling of [`JOB_NAME_LABEL`], still set by Kubernetes.
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// Fills in every field Kubernetes defaults (restartPolicy, backoffLimit, completions and
/// parallelism, selectors and their labels, concurrencyPolicy, history limits, update
/// strategies...). Idempotent.
pub fn apply_defaults(obj: &mut Object) {
    match &mut obj.object {
        Some(O::Pod(p)) => {
            if let Some(spec) = p.spec.as_mut() {
                default_pod_spec(spec);
            }
        }
        Some(O::Job(j)) => {
            let meta = j.metadata.clone().unwrap_or_default();
            if let Some(spec) = j.spec.as_mut() {
                default_job_spec(spec);
                generate_job_selector(spec, &meta);
            }
        }
        Some(O::CronJob(c)) => {
            if let Some(spec) = c.spec.as_mut() {
                default_cron_job_spec(spec);
            }
        }
        Some(O::DaemonSet(d)) => {
            if let Some(spec) = d.spec.as_mut() {
                default_daemon_set_spec(spec);
            }
        }
        Some(O::ControllerRevision(r)) => {
            if let Some(t) = r.data.as_mut().and_then(|d| d.template.as_mut()) {
                default_template(t);
            }
        }
        Some(O::Node(_)) | Some(O::Event(_)) | Some(O::Lease(_)) | None => {}
    }
}

fn set_if_empty(field: &mut String, value: &str) {
    if field.is_empty() {
        *field = value.to_string();
    }
}

/// Pod spec defaults (`SetDefaults_PodSpec`, `SetDefaults_Container`, probes, ports).
pub fn default_pod_spec(spec: &mut v1::PodSpec) {
    set_if_empty(&mut spec.restart_policy, policy::ALWAYS);
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.scheduler_name, "default-scheduler");
    spec.termination_grace_period_seconds.get_or_insert(30);
    if spec.service_account_name.is_empty() && !spec.service_account.is_empty() {
        spec.service_account_name = spec.service_account.clone();
    }
    for c in spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
    {
        default_container(c);
    }
    for v in &mut spec.volumes {
        if let Some(s) = v.secret.as_mut() {
            s.default_mode.get_or_insert(0o644);
        }
        if let Some(c) = v.config_map.as_mut() {
            c.default_mode.get_or_insert(0o644);
        }
    }
}

/// Whether the image names no tag or `:latest` (then Kubernetes pulls `Always`).
fn image_is_latest(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or("");
    if image.contains('@') {
        return false;
    }
    let last = without_digest.rsplit('/').next().unwrap_or("");
    match last.rsplit_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn default_container(c: &mut v1::Container) {
    if c.image_pull_policy.is_empty() {
        c.image_pull_policy = if image_is_latest(&c.image) {
            policy::ALWAYS.into()
        } else {
            policy::IF_NOT_PRESENT.into()
        };
    }
    set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
    set_if_empty(&mut c.termination_message_policy, "File");
    for p in &mut c.ports {
        set_if_empty(&mut p.protocol, "TCP");
    }
    for probe in [
        c.readiness_probe.as_mut(),
        c.liveness_probe.as_mut(),
        c.startup_probe.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        default_probe(probe);
    }
    if let Some(l) = c.lifecycle.as_mut() {
        for h in [l.post_start.as_mut(), l.pre_stop.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(g) = h.http_get.as_mut() {
                set_if_empty(&mut g.path, "/");
                set_if_empty(&mut g.scheme, "HTTP");
            }
        }
    }
}

fn default_probe(p: &mut v1::Probe) {
    if p.timeout_seconds == 0 {
        p.timeout_seconds = 1;
    }
    if p.period_seconds == 0 {
        p.period_seconds = 10;
    }
    if p.success_threshold == 0 {
        p.success_threshold = 1;
    }
    if p.failure_threshold == 0 {
        p.failure_threshold = 3;
    }
    if let Some(g) = p.http_get.as_mut() {
        set_if_empty(&mut g.path, "/");
        set_if_empty(&mut g.scheme, "HTTP");
    }
}

fn default_template(t: &mut v1::PodTemplateSpec) {
    if let Some(spec) = t.spec.as_mut() {
        default_pod_spec(spec);
    }
}

/// Job spec defaults (`SetDefaults_Job`), without the generated selector.
pub fn default_job_spec(spec: &mut v1::JobSpec) {
    match (spec.completions, spec.parallelism) {
        (None, None) => {
            spec.completions = Some(1);
            spec.parallelism = Some(1);
        }
        (_, None) => spec.parallelism = Some(1),
        _ => {}
    }
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    set_if_empty(&mut spec.completion_mode, "NonIndexed");
    spec.suspend.get_or_insert(false);
    spec.manual_selector.get_or_insert(false);
    if spec.pod_replacement_policy.is_empty() {
        spec.pod_replacement_policy = if spec.pod_failure_policy.is_some() {
            job::REPLACE_FAILED.into()
        } else {
            "TerminatingOrFailed".into()
        };
    }
    if let Some(pfp) = spec.pod_failure_policy.as_mut() {
        for rule in &mut pfp.rules {
            for pattern in &mut rule.on_pod_conditions {
                set_if_empty(&mut pattern.status, status::TRUE);
            }
        }
    }
    if let Some(t) = spec.template.as_mut() {
        default_template(t);
    }
}

/// The selector and pod labels the API server generates for a Job without
/// `manualSelector: true`; only once the Job has a uid (in the broker).
pub fn generate_job_selector(spec: &mut v1::JobSpec, meta: &v1::ObjectMeta) {
    if meta.uid.is_empty() || spec.manual_selector == Some(true) {
        return;
    }
    let template = spec.template.get_or_insert_with(Default::default);
    let labels = &mut template
        .metadata
        .get_or_insert_with(Default::default)
        .labels;
    labels
        .entry(JOB_CONTROLLER_UID_LABEL.into())
        .or_insert_with(|| meta.uid.clone());
    labels
        .entry(JOB_NAME_LABEL.into())
        .or_insert_with(|| meta.name.clone());
    labels
        .entry(LEGACY_CONTROLLER_UID_LABEL.into())
        .or_insert_with(|| meta.uid.clone());
    labels
        .entry(LEGACY_JOB_NAME_LABEL.into())
        .or_insert_with(|| meta.name.clone());
    if spec.selector.is_none() {
        let mut sel = v1::LabelSelector::default();
        sel.match_labels
            .insert(JOB_CONTROLLER_UID_LABEL.into(), meta.uid.clone());
        spec.selector = Some(sel);
    }
}

/// CronJob spec defaults (`SetDefaults_CronJob`), and the Job template's.
pub fn default_cron_job_spec(spec: &mut v1::CronJobSpec) {
    set_if_empty(
        &mut spec.concurrency_policy,
        crate::cronjob::concurrency::ALLOW,
    );
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
    // bosun's catch-up policy: an empty policy stays empty (it reads as Latest, Kubernetes'
    // behaviour); All without maxRuns runs at most Kubernetes' "too many missed" 100.
    if let Some(c) = spec
        .catch_up
        .as_mut()
        .filter(|c| c.policy == crate::cronjob::catch_up::ALL)
    {
        c.max_runs
            .get_or_insert(crate::cronjob::catch_up::DEFAULT_MAX_RUNS);
    }
    if let Some(js) = spec.job_template.as_mut().and_then(|t| t.spec.as_mut()) {
        default_job_spec(js);
    }
}

/// DaemonSet spec defaults (`SetDefaults_DaemonSet`).
pub fn default_daemon_set_spec(spec: &mut v1::DaemonSetSpec) {
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    set_if_empty(
        &mut strategy.r#type,
        crate::vocab::daemonset::ROLLING_UPDATE,
    );
    if strategy.r#type == crate::vocab::daemonset::ROLLING_UPDATE {
        let ru = strategy.rolling_update.get_or_insert_with(Default::default);
        ru.max_unavailable.get_or_insert(v1::IntOrString {
            is_string: false,
            int_val: 1,
            str_val: String::new(),
        });
        ru.max_surge.get_or_insert(v1::IntOrString::default());
    }
    spec.revision_history_limit.get_or_insert(10);
    if let Some(t) = spec.template.as_mut() {
        default_template(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_spec(image: &str) -> v1::PodSpec {
        v1::PodSpec {
            containers: vec![v1::Container {
                name: "c".into(),
                image: image.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        let table = [
            ("busybox", "Always"),
            ("busybox:latest", "Always"),
            ("busybox:1.36", "IfNotPresent"),
            ("registry:5000/busybox", "Always"),
            ("registry:5000/busybox:1", "IfNotPresent"),
            ("busybox@sha256:abc", "IfNotPresent"),
        ];
        for (image, want) in table {
            let mut spec = pod_spec(image);
            default_pod_spec(&mut spec);
            assert_eq!(spec.containers[0].image_pull_policy, want, "{image}");
        }
    }

    #[test]
    fn pod_specs_get_kubernetes_defaults() {
        let mut spec = pod_spec("busybox");
        default_pod_spec(&mut spec);
        assert_eq!(spec.restart_policy, "Always");
        assert_eq!(spec.dns_policy, "ClusterFirst");
        assert_eq!(spec.scheduler_name, "default-scheduler");
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        assert_eq!(
            spec.containers[0].termination_message_path,
            "/dev/termination-log"
        );
        assert_eq!(spec.containers[0].termination_message_policy, "File");
    }

    #[test]
    fn job_completions_and_parallelism_follow_kubernetes_rules() {
        // (completions, parallelism) in, out.
        let table = [
            ((None, None), (Some(1), Some(1))),
            ((Some(5), None), (Some(5), Some(1))),
            ((None, Some(3)), (None, Some(3))),
            ((Some(4), Some(2)), (Some(4), Some(2))),
        ];
        for ((c, p), want) in table {
            let mut spec = v1::JobSpec {
                completions: c,
                parallelism: p,
                ..Default::default()
            };
            default_job_spec(&mut spec);
            assert_eq!((spec.completions, spec.parallelism), want);
        }
    }

    #[test]
    fn backoff_limit_is_six_or_max_with_a_per_index_limit() {
        let mut spec = v1::JobSpec::default();
        default_job_spec(&mut spec);
        assert_eq!(spec.backoff_limit, Some(6));
        assert_eq!(spec.completion_mode, "NonIndexed");
        assert_eq!(spec.suspend, Some(false));
        assert_eq!(spec.manual_selector, Some(false));
        assert_eq!(spec.pod_replacement_policy, "TerminatingOrFailed");
        let mut spec = v1::JobSpec {
            backoff_limit_per_index: Some(1),
            pod_failure_policy: Some(Default::default()),
            ..Default::default()
        };
        default_job_spec(&mut spec);
        assert_eq!(spec.backoff_limit, Some(i32::MAX));
        assert_eq!(spec.pod_replacement_policy, "Failed");
    }

    #[test]
    fn a_job_with_a_uid_gets_the_generated_selector_and_labels() {
        let mut obj: Object = v1::Job {
            metadata: Some(v1::ObjectMeta {
                name: "pi".into(),
                uid: "u-1".into(),
                ..Default::default()
            }),
            spec: Some(v1::JobSpec {
                template: Some(v1::PodTemplateSpec {
                    spec: Some(pod_spec("perl")),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into();
        apply_defaults(&mut obj);
        let once = obj.clone();
        apply_defaults(&mut obj);
        assert_eq!(obj, once, "defaulting is idempotent");
        let spec = obj.as_job().unwrap().spec.as_ref().unwrap();
        let sel = spec.selector.as_ref().unwrap();
        assert_eq!(
            sel.match_labels
                .get(JOB_CONTROLLER_UID_LABEL)
                .map(String::as_str),
            Some("u-1")
        );
        let labels = &spec
            .template
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .labels;
        assert_eq!(labels.get(JOB_NAME_LABEL).map(String::as_str), Some("pi"));
        assert_eq!(
            labels.get(LEGACY_JOB_NAME_LABEL).map(String::as_str),
            Some("pi")
        );
        assert_eq!(
            labels.get(LEGACY_CONTROLLER_UID_LABEL).map(String::as_str),
            Some("u-1")
        );
    }

    #[test]
    fn a_job_without_a_uid_gets_no_selector() {
        let mut spec = v1::JobSpec::default();
        generate_job_selector(&mut spec, &v1::ObjectMeta::default());
        assert!(spec.selector.is_none());
    }

    #[test]
    fn a_catch_up_policy_gets_max_runs_only_with_all() {
        let rows = [
            ("unset stays unset", None, None),
            (
                "empty policy stays empty",
                Some(("", None)),
                Some(("", None)),
            ),
            (
                "Latest gets nothing",
                Some(("Latest", None)),
                Some(("Latest", None)),
            ),
            (
                "None gets nothing",
                Some(("None", None)),
                Some(("None", None)),
            ),
            (
                "All gets 100",
                Some(("All", None)),
                Some(("All", Some(100))),
            ),
            (
                "All keeps its own",
                Some(("All", Some(7))),
                Some(("All", Some(7))),
            ),
        ];
        for (name, given, want) in rows {
            let mk = |c: Option<(&str, Option<i32>)>| {
                c.map(|(p, m)| v1::CatchUp {
                    policy: p.into(),
                    max_runs: m,
                })
            };
            let mut spec = v1::CronJobSpec {
                catch_up: mk(given),
                ..Default::default()
            };
            default_cron_job_spec(&mut spec);
            assert_eq!(spec.catch_up, mk(want), "{name}");
        }
    }

    #[test]
    fn cron_jobs_and_daemon_sets_get_their_defaults() {
        let mut cj = v1::CronJobSpec::default();
        default_cron_job_spec(&mut cj);
        assert_eq!(cj.concurrency_policy, "Allow");
        assert_eq!(cj.suspend, Some(false));
        assert_eq!(cj.successful_jobs_history_limit, Some(3));
        assert_eq!(cj.failed_jobs_history_limit, Some(1));
        let mut ds = v1::DaemonSetSpec::default();
        default_daemon_set_spec(&mut ds);
        let st = ds.update_strategy.as_ref().unwrap();
        assert_eq!(st.r#type, "RollingUpdate");
        let ru = st.rolling_update.as_ref().unwrap();
        assert_eq!(ru.max_unavailable.as_ref().unwrap().int_val, 1);
        assert_eq!(ru.max_surge.as_ref().unwrap().int_val, 0);
        assert_eq!(ds.revision_history_limit, Some(10));
    }
}
