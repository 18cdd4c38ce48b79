//! What a CronJob's Jobs look like, in one place: the CronJob controller builds its scheduled
//! Jobs, `bosun create job --from=cronjob/CJ` and the broker's `TriggerCronJob` their manual
//! ones, all with [`job_from_template`]. Also the CronJob words bosun adds to Kubernetes'
//! (the catch-up policies) and the annotations Kubernetes puts on a CronJob's Jobs.

use std::collections::BTreeMap;

use crate::v1;

/// The annotation `kubectl create job --from=cronjob/CJ` puts on a manually started Job.
pub const INSTANTIATE_ANNOTATION: &str = "cronjob.kubernetes.io/instantiate";
/// The value of [`INSTANTIATE_ANNOTATION`] on a manually started Job.
pub const INSTANTIATE_MANUAL: &str = "manual";
/// The annotation the CronJob controller puts on each scheduled Job: the scheduled (nominal)
/// time, RFC 3339.
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// The annotation a Job started by `TriggerCronJob` carries: the idempotency key it was made
/// for, so a person reading the Job can tell which request started it.
pub const IDEMPOTENCY_KEY_ANNOTATION: &str = "bosun.dev/idempotency-key";
/// The longest Job name: a Job's name is a label value on its pods (63 characters).
pub const MAX_JOB_NAME: usize = 63;

/// bosun's catch-up policies for missed schedule slots (`spec.catchUp.policy`).
pub mod catch_up {
    /// Only the most recent missed slot runs: Kubernetes' behaviour, and the default (an
    /// empty policy means this one).
    pub const LATEST: &str = "Latest";
    /// Every missed slot is skipped; the next slot runs on time.
    pub const NONE: &str = "None";
    /// Every missed slot runs, oldest first, at most `maxRuns` of them (the most recent).
    pub const ALL: &str = "All";
    /// Every policy, in the order error messages list them.
    pub const POLICIES: [&str; 3] = [LATEST, NONE, ALL];
    /// `maxRuns` when the policy is All and it is unset: Kubernetes' "too many missed" limit.
    pub const DEFAULT_MAX_RUNS: i32 = 100;
}

/// The CronJob's catch-up policy, with the default spelled out (empty or unset = Latest).
pub fn catch_up_policy(spec: &v1::CronJobSpec) -> &str {
    match spec.catch_up.as_ref().map(|c| c.policy.as_str()) {
        None | Some("") => catch_up::LATEST,
        Some(p) => p,
    }
}

/// The controlling ownerReference a CronJob's Job carries.
pub fn controller_ref(cronjob: &v1::CronJob, block_owner_deletion: bool) -> v1::OwnerReference {
    let meta = cronjob.metadata.clone().unwrap_or_default();
    v1::OwnerReference {
        api_version: "batch/v1".into(),
        kind: "CronJob".into(),
        name: meta.name,
        uid: meta.uid,
        controller: Some(true),
        block_owner_deletion: block_owner_deletion.then_some(true),
    }
}

/// A Job built from the CronJob's `jobTemplate`, as Kubernetes' CronJob controller builds
/// one (`getJobFromTemplate2`): named `name`, in the CronJob's namespace, with the
/// template's labels and annotations plus `annotations`, the template's spec, and a
/// controlling ownerReference to the CronJob (blockOwnerDeletion set, as the controller does).
/// Nothing is defaulted or validated here: the broker does that on create.
pub fn job_from_template(
    cronjob: &v1::CronJob,
    name: &str,
    annotations: impl IntoIterator<Item = (String, String)>,
) -> v1::Job {
    let cj_meta = cronjob.metadata.clone().unwrap_or_default();
    let template = cronjob
        .spec
        .as_ref()
        .and_then(|s| s.job_template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut all_annotations: BTreeMap<String, String> = tmeta.annotations;
    all_annotations.extend(annotations);
    v1::Job {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        metadata: Some(v1::ObjectMeta {
            name: name.to_string(),
            namespace: cj_meta.namespace,
            labels: tmeta.labels,
            annotations: all_annotations,
            owner_references: vec![controller_ref(cronjob, true)],
            ..Default::default()
        }),
        spec: template.spec,
        status: None,
    }
}

/// A manually started Job (`kubectl create job NAME --from=cronjob/CJ`): the template's Job
/// with the `cronjob.kubernetes.io/instantiate: manual` annotation and a controlling
/// ownerReference *without* blockOwnerDeletion, as kubectl makes it.
/// As kubectl, a template annotation by the same name wins over `manual`.
pub fn manual_job(cronjob: &v1::CronJob, name: &str) -> v1::Job {
    let mut job = job_from_template(cronjob, name, []);
    if let Some(meta) = job.metadata.as_mut() {
        meta.annotations
            .entry(INSTANTIATE_ANNOTATION.to_string())
            .or_insert_with(|| INSTANTIATE_MANUAL.to_string());
        meta.owner_references = vec![controller_ref(cronjob, false)];
    }
    job
}

/// The Job `TriggerCronJob` creates for `idempotency_key`: a [`manual_job`] named
/// [`manual_job_name`], with the key as the [`IDEMPOTENCY_KEY_ANNOTATION`].
pub fn triggered_job(cronjob: &v1::CronJob, idempotency_key: &str) -> v1::Job {
    let cj_name = cronjob.metadata.as_ref().map_or("", |m| m.name.as_str());
    let mut job = manual_job(cronjob, &manual_job_name(cj_name, idempotency_key));
    if let Some(meta) = job.metadata.as_mut() {
        meta.annotations.insert(
            IDEMPOTENCY_KEY_ANNOTATION.to_string(),
            idempotency_key.to_string(),
        );
    }
    job
}

/// The name of the Job a `TriggerCronJob` with `idempotency_key` creates:
/// `<cronjob>-manual-<10 hex digits of a stable hash of the key>`, the CronJob's name cut
/// so the whole fits in [`MAX_JOB_NAME`]. The same key always gives the same name, so a
/// retried trigger finds the Job it made the first time.
pub fn manual_job_name(cronjob: &str, idempotency_key: &str) -> String {
    const SUFFIX: &str = "-manual-";
    const HASH_LEN: usize = 10;
    let hash = format!("{:016x}", fnv1a64(idempotency_key.as_bytes()));
    let keep = MAX_JOB_NAME - SUFFIX.len() - HASH_LEN;
    // Names are ASCII (DNS subdomains); cut, and never end the prefix on a separator.
    let prefix = cronjob
        .get(..keep.min(cronjob.len()))
        .unwrap_or(cronjob)
        .trim_end_matches(['-', '.']);
    format!("{prefix}{SUFFIX}{}", &hash[..HASH_LEN])
}

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cronjob() -> v1::CronJob {
        v1::CronJob {
            api_version: "batch/v1".into(),
            kind: "CronJob".into(),
            metadata: Some(v1::ObjectMeta {
                name: "hello".into(),
                namespace: "team".into(),
                uid: "u-1".into(),
                labels: [("cj".to_string(), "only".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(v1::CronJobSpec {
                schedule: "*/1 * * * *".into(),
                job_template: Some(v1::JobTemplateSpec {
                    metadata: Some(v1::ObjectMeta {
                        labels: [("app".to_string(), "hello".to_string())].into(),
                        annotations: [("note".to_string(), "x".to_string())].into(),
                        ..Default::default()
                    }),
                    spec: Some(v1::JobSpec {
                        parallelism: Some(2),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn a_scheduled_job_carries_the_template_and_a_blocking_controller_ref() {
        let job = job_from_template(
            &cronjob(),
            "hello-27845595",
            [(SCHEDULED_TIMESTAMP_ANNOTATION.to_string(), "t".to_string())],
        );
        let meta = job.metadata.unwrap();
        assert_eq!(meta.name, "hello-27845595");
        assert_eq!(meta.namespace, "team");
        assert_eq!(meta.labels.get("app").map(String::as_str), Some("hello"));
        assert!(
            !meta.labels.contains_key("cj"),
            "the CronJob's own labels stay"
        );
        assert_eq!(meta.annotations.get("note").map(String::as_str), Some("x"));
        assert_eq!(
            meta.annotations
                .get(SCHEDULED_TIMESTAMP_ANNOTATION)
                .map(String::as_str),
            Some("t")
        );
        let owner = &meta.owner_references[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("CronJob", "hello", "u-1")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
        assert_eq!(job.spec.unwrap().parallelism, Some(2));
    }

    #[test]
    fn a_manual_job_is_annotated_and_does_not_block_owner_deletion() {
        let job = manual_job(&cronjob(), "by-hand");
        let meta = job.metadata.unwrap();
        assert_eq!(
            meta.annotations
                .get(INSTANTIATE_ANNOTATION)
                .map(String::as_str),
            Some(INSTANTIATE_MANUAL)
        );
        assert_eq!(meta.owner_references[0].controller, Some(true));
        assert_eq!(meta.owner_references[0].block_owner_deletion, None);
    }

    #[test]
    fn a_triggered_job_is_named_for_its_key_and_carries_it() {
        let job = triggered_job(&cronjob(), "req-42");
        let meta = job.metadata.unwrap();
        assert_eq!(meta.name, manual_job_name("hello", "req-42"));
        assert_eq!(
            meta.annotations
                .get(IDEMPOTENCY_KEY_ANNOTATION)
                .map(String::as_str),
            Some("req-42")
        );
        assert_eq!(
            meta.annotations
                .get(INSTANTIATE_ANNOTATION)
                .map(String::as_str),
            Some(INSTANTIATE_MANUAL)
        );
    }

    #[test]
    fn manual_job_names_are_stable_per_key_and_fit_a_label_value() {
        struct Row {
            name: &'static str,
            cronjob: &'static str,
            key: &'static str,
        }
        let long = "a".repeat(52);
        let rows = [
            Row {
                name: "short name",
                cronjob: "hello",
                key: "k1",
            },
            Row {
                name: "longest cronjob name",
                cronjob: Box::leak(long.into_boxed_str()),
                key: "k1",
            },
            Row {
                name: "cut on a dash",
                cronjob: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbb",
                key: "",
            },
        ];
        for row in rows {
            let a = manual_job_name(row.cronjob, row.key);
            assert_eq!(a, manual_job_name(row.cronjob, row.key), "{}", row.name);
            assert!(a.len() <= MAX_JOB_NAME, "{}: {a}", row.name);
            assert!(!a.contains("--"), "{}: {a}", row.name);
            assert!(a.contains("-manual-"), "{}: {a}", row.name);
        }
        assert_ne!(
            manual_job_name("hello", "k1"),
            manual_job_name("hello", "k2")
        );
        // Pinned: a new build must keep giving a retried key its old name.
        assert_eq!(manual_job_name("hello", "k1"), "hello-manual-08be0f07b5");
    }

    #[test]
    fn an_unset_or_empty_catch_up_policy_is_latest() {
        let mut spec = v1::CronJobSpec::default();
        assert_eq!(catch_up_policy(&spec), catch_up::LATEST);
        spec.catch_up = Some(v1::CatchUp::default());
        assert_eq!(catch_up_policy(&spec), catch_up::LATEST);
        spec.catch_up = Some(v1::CatchUp {
            policy: "All".into(),
            max_runs: None,
        });
        assert_eq!(catch_up_policy(&spec), catch_up::ALL);
    }
}
