//! `TriggerCronJob`: start a run of a CronJob now, once per idempotency key
//! (kubernetes/kubernetes#47538 asks for this verb; Kubernetes has only the CLI).
//!
//! The key is turned into the Job's name (`<cronjob>-manual-<hash>`,
//! [`bosun_api::cronjob::manual_job_name`]), so etcd's create-if-absent is the lock: a
//! retried trigger, or two callers racing with one key, find the name taken. A taken name
//! is success only when the Job there is a run of *this* CronJob (its controlling
//! ownerReference has the CronJob's uid); anything else is reported, never overwritten.

use bosun_api::cronjob::{IDEMPOTENCY_KEY_ANNOTATION, manual_job_name, triggered_job};
use bosun_api::v1::{self, Kind, Object, TriggerCronJobRequest, TriggerCronJobResponse};

use crate::error::{Error, Result};
use crate::store::Store;

/// The longest idempotency key accepted (it is stored as an annotation).
pub const MAX_KEY_BYTES: usize = 1024;

/// Creates (or finds) the run for `req`; `stamp` adds the request's trace context to a Job
/// about to be created.
pub async fn trigger(
    store: &Store,
    req: &TriggerCronJobRequest,
    stamp: impl FnOnce(&mut Object),
) -> Result<TriggerCronJobResponse> {
    check_request(req)?;
    let namespace = if req.namespace.is_empty() {
        "default"
    } else {
        req.namespace.as_str()
    };
    let cronjob = match store.get(Kind::CronJob, namespace, &req.name).await? {
        Object {
            object: Some(v1::object::Object::CronJob(c)),
        } => c,
        other => {
            return Err(Error::BadRequest(format!(
                "{} is not a CronJob",
                other.key()
            )));
        }
    };
    check_cronjob(&cronjob)?;
    let cronjob_uid = cronjob
        .metadata
        .as_ref()
        .map(|m| m.uid.clone())
        .unwrap_or_default();
    let name = manual_job_name(&req.name, &req.idempotency_key);
    // The retry's path: the run is there already. Checked first so a dry run answers the
    // same as the real trigger would.
    if let Some(existing) = find(store, namespace, &name).await? {
        return already_made(&existing, &cronjob_uid, &req.name, &req.idempotency_key);
    }
    let job = triggered_job(&cronjob, &req.idempotency_key);
    let mut obj = Object {
        object: Some(v1::object::Object::Job(Box::new(job))),
    };
    stamp(&mut obj);
    match store.create(obj, req.dry_run).await {
        Ok(created) => Ok(TriggerCronJobResponse {
            job: Some(job_of(created)?),
            created: true,
        }),
        // Another trigger with the same key won the race between our read and our write.
        Err(Error::AlreadyExists { .. }) => match find(store, namespace, &name).await? {
            Some(existing) => {
                already_made(&existing, &cronjob_uid, &req.name, &req.idempotency_key)
            }
            None => Err(Error::Contended {
                resource: "jobs.batch".into(),
                name: format!("{namespace}/{name}"),
            }),
        },
        Err(e) => Err(e),
    }
}

/// A request names a CronJob and carries a usable key.
fn check_request(req: &TriggerCronJobRequest) -> Result<()> {
    if req.name.is_empty() {
        return Err(Error::BadRequest(
            "the CronJob's name is required to trigger it".into(),
        ));
    }
    if req.idempotency_key.is_empty() {
        return Err(Error::BadRequest(
            "an idempotency key is required: send the same key when retrying a trigger (a request or event id), a new one for a new run".into(),
        ));
    }
    if req.idempotency_key.len() > MAX_KEY_BYTES {
        return Err(Error::BadRequest(format!(
            "the idempotency key is {} bytes long; at most {MAX_KEY_BYTES} are accepted",
            req.idempotency_key.len()
        )));
    }
    Ok(())
}

/// A CronJob being deleted starts no run: its Job would be collected with it at once.
fn check_cronjob(cronjob: &v1::CronJob) -> Result<()> {
    let meta = cronjob.metadata.clone().unwrap_or_default();
    if meta.deletion_timestamp.is_empty() {
        return Ok(());
    }
    Err(Error::Precondition {
        resource: "cronjobs.batch".into(),
        name: format!("{}/{}", meta.namespace, meta.name),
        reason: format!(
            "it is being deleted (since {}); a run started now would be deleted with it",
            meta.deletion_timestamp
        ),
    })
}

async fn find(store: &Store, namespace: &str, name: &str) -> Result<Option<Object>> {
    match store.get(Kind::Job, namespace, name).await {
        Ok(o) => Ok(Some(o)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The answer when the run's name is taken: that Job, if it is this CronJob's run for this
/// key.
fn already_made(
    existing: &Object,
    cronjob_uid: &str,
    cronjob: &str,
    key: &str,
) -> Result<TriggerCronJobResponse> {
    if is_run_of(existing, cronjob_uid, key) {
        return Ok(TriggerCronJobResponse {
            job: Some(job_of(existing.clone())?),
            created: false,
        });
    }
    Err(Error::AlreadyExists {
        resource: "jobs.batch".into(),
        name: format!(
            "{} (it is not the run of cronjob {cronjob:?} for this idempotency key; delete it or trigger with another idempotency key)",
            existing.key()
        ),
    })
}

/// Whether `obj` is the Job a trigger with `key` made for the CronJob with uid
/// `cronjob_uid`: controlled by that CronJob and annotated with that key (two keys whose
/// hashes collide name the same Job; the annotation tells them apart).
pub fn is_run_of(obj: &Object, cronjob_uid: &str, key: &str) -> bool {
    let Some(v1::object::Object::Job(job)) = &obj.object else {
        return false;
    };
    !cronjob_uid.is_empty()
        && job.metadata.as_ref().is_some_and(|m| {
            m.annotations
                .get(IDEMPOTENCY_KEY_ANNOTATION)
                .map(String::as_str)
                == Some(key)
                && m.owner_references.iter().any(|r| {
                    r.controller == Some(true) && r.kind == "CronJob" && r.uid == cronjob_uid
                })
        })
}

fn job_of(obj: Object) -> Result<v1::Job> {
    match obj.object {
        Some(v1::object::Object::Job(j)) => Ok(*j),
        _ => Err(Error::BadRequest(format!("{} is not a Job", obj.key()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(owners: Vec<v1::OwnerReference>) -> Object {
        Object {
            object: Some(v1::object::Object::Job(Box::new(v1::Job {
                metadata: Some(v1::ObjectMeta {
                    name: "hello-manual-0123456789".into(),
                    namespace: "default".into(),
                    owner_references: owners,
                    annotations: [(IDEMPOTENCY_KEY_ANNOTATION.to_string(), "k1".to_string())]
                        .into(),
                    ..Default::default()
                }),
                ..Default::default()
            }))),
        }
    }

    fn owner(kind: &str, uid: &str, controller: Option<bool>) -> v1::OwnerReference {
        v1::OwnerReference {
            api_version: "batch/v1".into(),
            kind: kind.into(),
            name: "hello".into(),
            uid: uid.into(),
            controller,
            block_owner_deletion: None,
        }
    }

    #[test]
    fn a_taken_name_is_the_same_run_only_when_this_cronjob_controls_the_job() {
        let rows = [
            (
                "controlled by this cronjob",
                vec![owner("CronJob", "u1", Some(true))],
                true,
            ),
            ("no owner", vec![], false),
            (
                "another cronjob (recreated, new uid)",
                vec![owner("CronJob", "u0", Some(true))],
                false,
            ),
            (
                "owned but not controlled",
                vec![owner("CronJob", "u1", None)],
                false,
            ),
            (
                "controlled by something else with that uid",
                vec![owner("DaemonSet", "u1", Some(true))],
                false,
            ),
        ];
        for (name, owners, want) in rows {
            assert_eq!(is_run_of(&job(owners), "u1", "k1"), want, "{name}");
        }
        assert!(
            !is_run_of(&job(vec![owner("CronJob", "", Some(true))]), "", "k1"),
            "no uid, no match"
        );
        assert!(
            !is_run_of(&job(vec![owner("CronJob", "u1", Some(true))]), "u1", "k2"),
            "made for another key whose hash collides"
        );
    }

    #[test]
    fn a_foreign_job_under_the_name_is_reported_as_already_existing() {
        let err = already_made(&job(vec![]), "u1", "hello", "k1").unwrap_err();
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::AlreadyExists);
        assert!(
            status.message().contains("another idempotency key"),
            "{}",
            status.message()
        );
        let ok = already_made(
            &job(vec![owner("CronJob", "u1", Some(true))]),
            "u1",
            "hello",
            "k1",
        )
        .unwrap();
        assert!(!ok.created);
    }

    #[test]
    fn a_cronjob_being_deleted_starts_no_run() {
        let mut cj = v1::CronJob {
            metadata: Some(v1::ObjectMeta {
                name: "hello".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(check_cronjob(&cj).is_ok());
        cj.metadata.as_mut().unwrap().deletion_timestamp = "2026-01-01T00:00:00Z".into();
        let status = tonic::Status::from(check_cronjob(&cj).unwrap_err());
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(
            status.message().contains("being deleted"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn requests_without_a_name_or_key_or_with_a_huge_key_are_refused() {
        let req = |name: &str, key: String| TriggerCronJobRequest {
            namespace: String::new(),
            name: name.into(),
            idempotency_key: key,
            dry_run: false,
        };
        assert!(check_request(&req("hello", "k".into())).is_ok());
        assert!(check_request(&req("", "k".into())).is_err());
        assert!(check_request(&req("hello", String::new())).is_err());
        assert!(check_request(&req("hello", "k".repeat(MAX_KEY_BYTES + 1))).is_err());
    }
}
