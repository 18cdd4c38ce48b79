//! A Job's pods: what the controller reads from each ([`PodFacts`]), what its cache keeps of
//! each ([`CachedPod`]), and how it builds a new one from the template (Kubernetes' names,
//! labels, annotations, ownerReference, tracking finalizer, `JOB_COMPLETION_INDEX`, Indexed
//! hostname). Pure functions.

use std::collections::BTreeMap;
use std::sync::Arc;

use bosun_api::defaults::{
    JOB_CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};
use bosun_api::selector::LabelSelector;
use bosun_api::vocab::{condition, phase, status};
use bosun_api::{Kind, Object, v1};
use bosun_runtime::cache::{Cached, OwnerRef};
use bosun_runtime::claim::{self, Candidate, Claim, Owner};
use bosun_runtime::intern::Interner;
use chrono::{DateTime, Utc};

/// The finalizer on every pod the controller creates: the pod cannot disappear before it
/// has been counted.
pub const TRACKING_FINALIZER: &str = bosun_api::vocab::finalizer::JOB_TRACKING;
/// The completion index, as annotation and as label.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Failures of this index so far (backoffLimitPerIndex), carried to its replacement pod.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// Failures of this index ignored by the podFailurePolicy.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";
/// The env var every container of an Indexed Job's pod gets.
pub const JOB_COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Kubernetes' limit on a generateName prefix so the random suffix still fits 63 chars.
const MAX_PREFIX: usize = 58;

/// The phase of a pod as the Job controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// One terminated container with a non-zero exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitCode {
    pub container: String,
    pub code: i32,
}

/// What the controller needs of one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    pub name: String,
    pub uid: String,
    /// The completion index (Indexed Jobs); `None` when absent or not a number.
    pub index: Option<i32>,
    pub phase: Phase,
    /// Marked for deletion.
    pub deleting: bool,
    /// Still carries [`TRACKING_FINALIZER`]: not yet released (counted, or about to be).
    pub tracked: bool,
    pub ready: bool,
    /// Bound to a node.
    pub scheduled: bool,
    /// Container restarts (app and init), for OnFailure's backoffLimit.
    pub restarts: i32,
    /// When it finished (latest container finishedAt, else its deletion or creation time).
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub exit_codes: Vec<ExitCode>,
    /// Its conditions as (type, status); the list is shared, all pods in one state have
    /// the same.
    pub conditions: Arc<[(String, String)]>,
    /// `batch.kubernetes.io/job-index-failure-count` (0 when absent).
    pub index_failures: i32,
    /// `batch.kubernetes.io/job-index-ignored-failure-count` (0 when absent).
    pub index_ignored_failures: i32,
}

impl PodFacts {
    /// Terminal phase.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Succeeded | Phase::Failed)
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Where the facts of many pods share their repeated values.
#[derive(Debug, Default)]
pub struct Shared {
    strings: Interner<str>,
    conditions: Interner<[(String, String)]>,
    controllers: Interner<ControllerRef>,
    labels: Interner<BTreeMap<String, String>>,
}

/// Reads the facts of `pod`; repeated values come from `shared`.
pub fn facts(pod: &v1::Pod, shared: &Shared) -> PodFacts {
    let empty_meta = v1::ObjectMeta::default();
    let empty_status = v1::PodStatus::default();
    let meta = pod.metadata.as_ref().unwrap_or(&empty_meta);
    let status = pod.status.as_ref().unwrap_or(&empty_status);
    let phase = match status.phase.as_str() {
        phase::RUNNING => Phase::Running,
        phase::SUCCEEDED => Phase::Succeeded,
        phase::FAILED => Phase::Failed,
        _ => Phase::Pending,
    };
    let all = || {
        status
            .init_container_statuses
            .iter()
            .chain(status.container_statuses.iter())
    };
    let mut exit_codes = Vec::new();
    let mut finished_at: Option<DateTime<Utc>> = None;
    for c in all() {
        if let Some(t) = c.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            if t.exit_code != 0 {
                exit_codes.push(ExitCode {
                    container: c.name.clone(),
                    code: t.exit_code,
                });
            }
            if let Some(at) = parse_time(&t.finished_at) {
                finished_at = Some(finished_at.map_or(at, |f| f.max(at)));
            }
        }
    }
    let created_at = parse_time(&meta.creation_timestamp);
    if finished_at.is_none() && matches!(phase, Phase::Succeeded | Phase::Failed) {
        finished_at = parse_time(&meta.deletion_timestamp).or(created_at);
    }
    let annotation_int = |key: &str| {
        meta.annotations
            .get(key)
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0)
    };
    PodFacts {
        index: meta
            .annotations
            .get(COMPLETION_INDEX)
            .or_else(|| meta.labels.get(COMPLETION_INDEX))
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|i| *i >= 0),
        phase,
        deleting: !meta.deletion_timestamp.is_empty(),
        tracked: meta.finalizers.iter().any(|f| f == TRACKING_FINALIZER),
        ready: status
            .conditions
            .iter()
            .any(|c| c.r#type == condition::READY && c.status == status::TRUE),
        scheduled: pod.spec.as_ref().is_some_and(|s| !s.node_name.is_empty()),
        restarts: all().map(|c| c.restart_count).sum(),
        finished_at,
        created_at,
        exit_codes,
        conditions: shared.conditions.intern(
            &status
                .conditions
                .iter()
                .map(|c| (c.r#type.clone(), c.status.clone()))
                .collect::<Vec<_>>(),
        ),
        index_failures: annotation_int(INDEX_FAILURE_COUNT),
        index_ignored_failures: annotation_int(INDEX_IGNORED_FAILURE_COUNT),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
    }
}

/// A pod's controller (its ownerReference with `controller: true`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControllerRef {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// A pod as the controller's cache keeps it: its [`PodFacts`] (name and uid included) and
/// the few metadata fields the controller acts on, a few hundred bytes instead of the whole
/// pod; what all the pods of a Job repeat (namespace, controller, labels, conditions) is
/// shared. Its labels are kept to decide which pods a Job claims (its selector).
/// It is not the pod: the controller never writes one back.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPod {
    pub namespace: Arc<str>,
    pub resource_version: i64,
    pub controller: Option<Arc<ControllerRef>>,
    /// `metadata.labels` but the completion index (shared: the pods of one Job have the
    /// same); see [`CachedPod::with_labels`].
    pub labels: Arc<BTreeMap<String, String>>,
    /// The completion-index label's value, kept apart so Indexed pods share `labels`.
    pub index_label: Option<Arc<str>>,
    pub facts: PodFacts,
}

impl CachedPod {
    /// This pod as the object a claim (adoption or release) writes.
    pub fn target(&self) -> claim::Target<'_> {
        claim::Target {
            kind: Kind::Pod,
            namespace: self.namespace(),
            name: self.name(),
            uid: self.uid(),
        }
    }

    /// What the cache keeps of `obj` (a pod; any other kind gives an empty entry).
    pub fn new(obj: &Object, shared: &Shared) -> CachedPod {
        let empty = v1::Pod::default();
        let pod = obj.as_pod().unwrap_or(&empty);
        let mut labels = pod
            .metadata
            .as_ref()
            .map(|m| m.labels.clone())
            .unwrap_or_default();
        let index_label = labels.remove(COMPLETION_INDEX);
        CachedPod {
            namespace: shared.strings.intern(obj.namespace()),
            resource_version: obj.resource_version(),
            controller: obj.controller_ref().map(|r| {
                shared.controllers.intern_owned(ControllerRef {
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                    uid: r.uid.clone(),
                })
            }),
            labels: shared.labels.intern_owned(labels),
            index_label: index_label.map(|v| shared.strings.intern(&v)),
            facts: facts(pod, shared),
        }
    }

    /// Runs `f` on the pod's labels as `selector` needs them: the shared map, unless the
    /// selector reads the completion-index label (then a copy with it put back).
    pub fn with_labels<R>(
        &self,
        selector: &LabelSelector,
        f: impl FnOnce(&BTreeMap<String, String>) -> R,
    ) -> R {
        match &self.index_label {
            Some(v)
                if selector
                    .requirements
                    .iter()
                    .any(|r| r.key == COMPLETION_INDEX) =>
            {
                let mut full = (*self.labels).clone();
                full.insert(COMPLETION_INDEX.into(), v.to_string());
                f(&full)
            }
            _ => f(&self.labels),
        }
    }

    /// The controller-ref manager's decision about this pod for `owner` and its `selector`.
    pub fn claim(&self, owner: &Owner, selector: &LabelSelector) -> Claim {
        self.with_labels(selector, |labels| {
            claim::claim(
                owner,
                selector,
                &Candidate {
                    controller_uid: self.controller.as_ref().map(|c| c.uid.as_str()),
                    labels,
                    deleting: self.facts.deleting,
                },
            )
        })
    }

    /// [`CachedPod::claim`] for many pods: the selector is matched once per shared label
    /// set (all the pods of one Job share theirs), remembered in `matched`.
    pub fn claim_memo(
        &self,
        owner: &Owner,
        selector: &LabelSelector,
        matched: &mut Option<(Arc<BTreeMap<String, String>>, bool)>,
    ) -> Claim {
        let reads_index = self.index_label.is_some()
            && selector
                .requirements
                .iter()
                .any(|r| r.key == COMPLETION_INDEX);
        if reads_index {
            return self.claim(owner, selector);
        }
        let matches = match matched {
            Some((labels, m)) if Arc::ptr_eq(labels, &self.labels) => *m,
            _ => {
                let m = selector.matches(&self.labels);
                *matched = Some((self.labels.clone(), m));
                m
            }
        };
        let controller = self.controller.as_ref().map(|c| c.uid.as_str());
        claim::decide(owner, matches, controller, self.facts.deleting)
    }

    pub fn uid(&self) -> &str {
        &self.facts.uid
    }
}

/// Indexed by its controller's uid only (the one owner the controller looks pods up by).
impl Cached for CachedPod {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.facts.name
    }
    fn resource_version(&self) -> i64 {
        self.resource_version
    }
    fn owners(&self) -> Vec<OwnerRef<'_>> {
        self.controller
            .iter()
            .map(|c| OwnerRef {
                kind: &c.kind,
                name: &c.name,
                uid: &c.uid,
                controller: true,
            })
            .collect()
    }
}

/// The generateName prefix of a pod: `<job>-` or, Indexed, `<job>-<index>-`, cut to 58.
pub fn generate_name(job: &str, index: Option<i32>) -> String {
    let mut prefix = match index {
        Some(i) => format!("{job}-{i}-"),
        None => format!("{job}-"),
    };
    if prefix.len() > MAX_PREFIX {
        prefix.truncate(MAX_PREFIX);
    }
    prefix
}

/// Per-index failure annotations a replacement pod inherits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexFailures {
    pub failures: i32,
    pub ignored: i32,
}

/// The pod the Job creates (for `index` when Indexed). `traceparent`, when given, is put on
/// the pod so the scheduler and node agent continue the Job's trace.
pub fn build_pod(job: &v1::Job, index: Option<i32>, failures: IndexFailures) -> v1::Pod {
    let job_meta = job.metadata.clone().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let template = spec.template.unwrap_or_default();
    let t_meta = template.metadata.unwrap_or_default();
    let mut pod_spec = template.spec.unwrap_or_default();

    let mut labels: BTreeMap<String, String> = t_meta.labels.into_iter().collect();
    labels.insert(JOB_CONTROLLER_UID_LABEL.into(), job_meta.uid.clone());
    labels.insert(LEGACY_CONTROLLER_UID_LABEL.into(), job_meta.uid.clone());
    labels.insert(JOB_NAME_LABEL.into(), job_meta.name.clone());
    labels.insert(LEGACY_JOB_NAME_LABEL.into(), job_meta.name.clone());
    let mut annotations: BTreeMap<String, String> = t_meta.annotations.into_iter().collect();
    if let Some(i) = index {
        labels.insert(COMPLETION_INDEX.into(), i.to_string());
        annotations.insert(COMPLETION_INDEX.into(), i.to_string());
        if failures.failures > 0 || spec.backoff_limit_per_index.is_some() {
            annotations.insert(INDEX_FAILURE_COUNT.into(), failures.failures.to_string());
        }
        if failures.ignored > 0 {
            annotations.insert(
                INDEX_IGNORED_FAILURE_COUNT.into(),
                failures.ignored.to_string(),
            );
        }
        if pod_spec.hostname.is_empty() {
            pod_spec.hostname = format!("{}-{i}", job_meta.name);
        }
        let env = v1::EnvVar {
            name: JOB_COMPLETION_INDEX_ENV.into(),
            value: String::new(),
            value_from: Some(v1::EnvVarSource {
                field_ref: Some(v1::ObjectFieldSelector {
                    api_version: "v1".into(),
                    field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                }),
                ..Default::default()
            }),
        };
        for c in pod_spec
            .init_containers
            .iter_mut()
            .chain(pod_spec.containers.iter_mut())
        {
            if !c.env.iter().any(|e| e.name == JOB_COMPLETION_INDEX_ENV) {
                c.env.push(env.clone());
            }
        }
    }
    v1::Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: Some(v1::ObjectMeta {
            generate_name: generate_name(&job_meta.name, index),
            namespace: job_meta.namespace.clone(),
            labels: labels.into_iter().collect(),
            annotations: annotations.into_iter().collect(),
            owner_references: vec![v1::OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: job_meta.name.clone(),
                uid: job_meta.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }],
            finalizers: vec![TRACKING_FINALIZER.into()],
            ..Default::default()
        }),
        spec: Some(Box::new(pod_spec)),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> v1::Job {
        v1::Job {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "ns".into(),
                uid: "u-1".into(),
                ..Default::default()
            }),
            spec: Some(v1::JobSpec {
                template: Some(v1::PodTemplateSpec {
                    metadata: Some(v1::ObjectMeta {
                        labels: [("app".to_string(), "x".to_string())].into(),
                        ..Default::default()
                    }),
                    spec: Some(v1::PodSpec {
                        containers: vec![v1::Container {
                            name: "main".into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: None,
            ..Default::default()
        }
    }

    #[test]
    fn generated_names_follow_kubernetes() {
        let table = [
            ("pi", None, "pi-"),
            ("pi", Some(3), "pi-3-"),
            (&"a".repeat(70) as &str, None, &"a".repeat(58) as &str),
        ];
        for (job, index, want) in table {
            assert_eq!(generate_name(job, index), want);
        }
    }

    #[test]
    fn an_indexed_pod_carries_its_index_hostname_env_owner_and_finalizer() {
        let pod = build_pod(&job("work"), Some(2), IndexFailures::default());
        let meta = pod.metadata.as_ref().unwrap();
        assert_eq!(meta.generate_name, "work-2-");
        assert_eq!(meta.labels["job-name"], "work");
        assert_eq!(meta.labels["batch.kubernetes.io/job-name"], "work");
        assert_eq!(meta.labels["controller-uid"], "u-1");
        assert_eq!(meta.labels["app"], "x");
        assert_eq!(meta.labels[COMPLETION_INDEX], "2");
        assert_eq!(meta.annotations[COMPLETION_INDEX], "2");
        assert_eq!(meta.finalizers, vec![TRACKING_FINALIZER.to_string()]);
        let owner = &meta.owner_references[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Job", "u-1", Some(true))
        );
        assert_eq!(owner.block_owner_deletion, Some(true));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname, "work-2");
        let env = &spec.containers[0].env[0];
        assert_eq!(env.name, JOB_COMPLETION_INDEX_ENV);
        assert_eq!(
            env.value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
        // Read back, it is index 2, tracked, pending.
        let f = facts(&pod, &Shared::default());
        assert_eq!(
            (f.index, f.tracked, f.phase),
            (Some(2), true, Phase::Pending)
        );
    }

    #[test]
    fn a_non_indexed_pod_has_no_index_and_no_hostname() {
        let pod = build_pod(&job("pi"), None, IndexFailures::default());
        let meta = pod.metadata.as_ref().unwrap();
        assert_eq!(meta.generate_name, "pi-");
        assert!(!meta.annotations.contains_key(COMPLETION_INDEX));
        assert!(pod.spec.unwrap().hostname.is_empty());
    }

    #[test]
    fn facts_read_exit_codes_restarts_finish_time_and_readiness() {
        let term = |code: i32, at: &str| v1::ContainerState {
            terminated: Some(v1::ContainerStateTerminated {
                exit_code: code,
                finished_at: at.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: "p".into(),
                deletion_timestamp: "2026-01-01T00:00:09Z".into(),
                ..Default::default()
            }),
            status: Some(v1::PodStatus {
                phase: "Failed".into(),
                conditions: vec![v1::Condition {
                    r#type: "Ready".into(),
                    status: "False".into(),
                    ..Default::default()
                }],
                container_statuses: vec![
                    v1::ContainerStatus {
                        name: "a".into(),
                        state: Some(term(0, "2026-01-01T00:00:05Z")),
                        restart_count: 2,
                        ..Default::default()
                    },
                    v1::ContainerStatus {
                        name: "b".into(),
                        state: Some(term(42, "2026-01-01T00:00:07Z")),
                        restart_count: 1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        let f = facts(&pod, &Shared::default());
        assert_eq!(f.phase, Phase::Failed);
        assert!(f.deleting && !f.ready && !f.tracked);
        assert_eq!(f.restarts, 3);
        assert_eq!(
            f.exit_codes,
            vec![ExitCode {
                container: "b".into(),
                code: 42
            }]
        );
        assert_eq!(
            f.finished_at.unwrap().to_rfc3339(),
            "2026-01-01T00:00:07+00:00"
        );
    }

    /// A pod as the cluster shows it: built from the Job, scheduled, run, with every field
    /// the controller ignores filled in.
    fn full_pod(index: Option<i32>, node: &str, phase: &str) -> v1::Pod {
        let failures = IndexFailures {
            failures: 2,
            ignored: 1,
        };
        let mut pod = build_pod(&job("j"), index, failures);
        let meta = pod.metadata.get_or_insert_with(Default::default);
        meta.name = "j-abc".into();
        meta.uid = "pod-uid".into();
        meta.resource_version = "42".into();
        meta.creation_timestamp = "2026-01-01T00:00:01Z".into();
        meta.annotations.insert("other".into(), "x".repeat(100));
        meta.labels.insert("other".into(), "y".into());
        let spec = pod.spec.get_or_insert_with(Default::default);
        spec.node_name = node.into();
        let term = |code: i32, at: &str| v1::ContainerState {
            terminated: Some(v1::ContainerStateTerminated {
                exit_code: code,
                finished_at: at.into(),
                reason: "Error".into(),
                message: "boom".into(),
                started_at: "2026-01-01T00:00:02Z".into(),
                container_id: "cid".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        pod.status = Some(v1::PodStatus {
            phase: phase.into(),
            host_ip: "10.0.0.1".into(),
            pod_ip: "10.1.0.1".into(),
            message: "m".into(),
            conditions: vec![
                v1::Condition {
                    r#type: "Ready".into(),
                    status: "True".into(),
                    reason: "r".into(),
                    last_transition_time: "2026-01-01T00:00:03Z".into(),
                    ..Default::default()
                },
                v1::Condition {
                    r#type: "DisruptionTarget".into(),
                    status: "True".into(),
                    ..Default::default()
                },
            ],
            init_container_statuses: vec![v1::ContainerStatus {
                name: "init".into(),
                state: Some(term(0, "2026-01-01T00:00:04Z")),
                restart_count: 1,
                image: "busybox".into(),
                ..Default::default()
            }],
            container_statuses: vec![v1::ContainerStatus {
                name: "main".into(),
                state: Some(term(3, "2026-01-01T00:00:08Z")),
                last_state: Some(term(1, "2026-01-01T00:00:06Z")),
                restart_count: 2,
                image: "busybox".into(),
                ready: true,
                ..Default::default()
            }],
            ..Default::default()
        });
        pod
    }

    #[test]
    fn a_cached_pod_keeps_the_facts_identity_version_and_controller_of_the_pod() {
        let shared = Shared::default();
        let cases = [
            (Some(3), "node-1", "Failed"),
            (None, "node-1", "Running"),
            (Some(0), "", "Pending"),
            (None, "", "Succeeded"),
        ];
        for (index, node, phase) in cases {
            let full = full_pod(index, node, phase);
            let cached = CachedPod::new(&Object::from(full.clone()), &shared);
            let what = format!("{index:?} {node} {phase}");
            assert_eq!(cached.facts, facts(&full, &shared), "{what}");
            assert_eq!(cached.facts.scheduled, !node.is_empty(), "{what}");
            assert_eq!(
                (cached.key(), cached.uid(), cached.resource_version()),
                ("ns/j-abc".to_string(), "pod-uid", 42)
            );
            let owner = cached.controller.as_ref().expect("controller");
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
                ("Job", "j", "u-1")
            );
            assert_eq!(
                Cached::owners(&cached),
                [OwnerRef {
                    kind: "Job",
                    name: "j",
                    uid: "u-1",
                    controller: true
                }]
            );
        }
    }

    #[test]
    fn cached_pods_share_their_repeated_strings_and_keep_only_the_controller_owner() {
        let shared = Shared::default();
        let mut other = full_pod(None, "n", "Running");
        let meta = other.metadata.as_mut().unwrap();
        meta.name = "j-def".into();
        meta.owner_references.push(v1::OwnerReference {
            kind: "Thing".into(),
            name: "t".into(),
            uid: "t-1".into(),
            controller: None,
            ..Default::default()
        });
        let a = CachedPod::new(&Object::from(full_pod(None, "n", "Running")), &shared);
        let b = CachedPod::new(&Object::from(other), &shared);
        assert!(Arc::ptr_eq(&a.namespace, &b.namespace));
        let (ca, cb) = (
            a.controller.as_ref().unwrap(),
            b.controller.as_ref().unwrap(),
        );
        assert!(Arc::ptr_eq(ca, cb));
        assert!(Arc::ptr_eq(&a.facts.conditions, &b.facts.conditions));
        assert!(Arc::ptr_eq(&a.labels, &b.labels));
        // Indexed pods too: the completion index is kept apart from the shared labels...
        let i0 = CachedPod::new(&Object::from(full_pod(Some(0), "n", "Running")), &shared);
        let i1 = CachedPod::new(&Object::from(full_pod(Some(1), "n", "Running")), &shared);
        assert!(Arc::ptr_eq(&i0.labels, &i1.labels));
        assert_eq!(i1.index_label.as_deref(), Some("1"));
        // ... and put back for a selector that reads it.
        let by_index = LabelSelector::parse(&format!("{COMPLETION_INDEX}=1")).unwrap();
        let by_app = LabelSelector::parse("app=x").unwrap();
        assert!(!i0.with_labels(&by_index, |l| by_index.matches(l)));
        assert!(i1.with_labels(&by_index, |l| by_index.matches(l)));
        assert!(i0.with_labels(&by_app, |l| by_app.matches(l)));
        assert_eq!(
            Cached::owners(&b).len(),
            1,
            "only the controller is indexed"
        );
        let orphan = v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: "o".into(),
                namespace: "ns".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let orphan = CachedPod::new(&Object::from(orphan), &shared);
        assert!(orphan.controller.is_none() && Cached::owners(&orphan).is_empty());
    }

    #[test]
    fn the_memoized_claim_decides_as_the_claim_does() {
        let shared = Shared::default();
        let owner = Owner {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            namespace: "ns".into(),
            name: "j".into(),
            uid: "u-1".into(),
            deleting: false,
        };
        let cached = |index: Option<i32>, app: &str, controller: bool| {
            let mut pod = full_pod(index, "n", "Running");
            let meta = pod.metadata.as_mut().unwrap();
            meta.labels.insert("app".into(), app.into());
            if !controller {
                meta.owner_references.clear();
            }
            CachedPod::new(&Object::from(pod), &shared)
        };
        let pods = [
            cached(None, "x", true),
            cached(None, "x", true),
            cached(None, "y", true),
            cached(None, "x", false),
            cached(Some(1), "x", true),
            cached(Some(2), "x", true),
        ];
        for sel in ["app=x", &format!("app=x,{COMPLETION_INDEX}=1")] {
            let selector = LabelSelector::parse(sel).unwrap();
            let mut memo = None;
            for (i, p) in pods.iter().enumerate() {
                assert_eq!(
                    p.claim_memo(&owner, &selector, &mut memo),
                    p.claim(&owner, &selector),
                    "{sel}: pod {i}"
                );
            }
        }
        let selector = LabelSelector::parse("app=x").unwrap();
        assert_eq!(pods[2].claim(&owner, &selector), Claim::Release);
        assert_eq!(pods[3].claim(&owner, &selector), Claim::Adopt);
    }
}
