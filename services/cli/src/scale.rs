//! `bosun scale job NAME --replicas N`: kubectl's habit for Jobs, which sets the Job's
//! `spec.parallelism` (how many of its pods may run at once).
//!
//! The write is a read-modify-write guarded by the Job's resourceVersion: when another
//! writer (a controller updating the Job, another `scale`) gets in between, the broker
//! answers `ABORTED`, and the Job is read again and the change re-applied on top, a few
//! times; a conflict that persists is reported as such and nothing is written. The
//! decisions (is the count valid, does `--current-replicas` hold, is a write needed) are
//! pure functions; the loop runs against a small [`JobStore`] so it can be tested with a
//! store that conflicts on cue.

use anyhow::bail;
use bosun_api::v1::{self, GetRequest, Kind, Object, UpdateRequest, object::Object as O};
use bosun_runtime::client::BrokerClient;
use clap::Args;
use tonic::{Code, Status};

use crate::Ctx;
use crate::label::object_ref;

/// How many times a write that lost a race is retried on a fresh read.
pub const CONFLICT_RETRIES: usize = 5;

/// `bosun scale` flags.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// `job NAME...` or `job/NAME...`.
    #[arg(required = true)]
    pub resource: Vec<String>,
    /// The new size: the Job's spec.parallelism (how many of its pods may run at once).
    #[arg(long, allow_negative_numbers = true)]
    pub replicas: i64,
    /// Scale only if the current size is this (kubectl's precondition); -1: no condition.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i64,
}

/// The new size, checked before anything is read or written.
pub fn checked_replicas(replicas: i64) -> anyhow::Result<i32> {
    if replicas < 0 {
        bail!(
            "--replicas={replicas}: the count must be 0 or more (it sets how many of the Job's pods run at once); nothing was changed"
        );
    }
    i32::try_from(replicas).map_err(|_| {
        anyhow::anyhow!(
            "--replicas={replicas} is too large (at most {}); nothing was changed",
            i32::MAX
        )
    })
}

/// `--current-replicas`: `None` for -1 (no condition).
pub fn checked_current(current: i64) -> anyhow::Result<Option<i32>> {
    match current {
        -1 => Ok(None),
        c if c < -1 => bail!("--current-replicas={c}: must be 0 or more, or -1 for no condition"),
        c => i32::try_from(c)
            .map(Some)
            .map_err(|_| anyhow::anyhow!("--current-replicas={c} is too large")),
    }
}

/// What scaling a Job `job` to `replicas` does, given the `--current-replicas` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Set spec.parallelism from the first value to the second.
    Write { from: i32, to: i32 },
    /// spec.parallelism is already `replicas`: nothing to write.
    Unchanged,
}

/// Why a scale was refused or did not happen.
#[derive(Debug)]
pub enum ScaleError {
    /// `--current-replicas` does not match the Job (kubectl's wording).
    Precondition { expected: i32, actual: i32 },
    /// The object is not a Job (the broker sent something else).
    NotAJob,
    /// Every attempt lost a race with another writer; the last conflict.
    Conflict { attempts: usize, last: Status },
    /// The broker refused a read or a write (not found, invalid, unreachable...).
    Server(Status),
}

/// Decides the change for `job` (its spec.parallelism; unset counts as Kubernetes' default 1).
pub fn plan(job: &v1::Job, replicas: i32, current: Option<i32>) -> Result<Plan, ScaleError> {
    let actual = job.spec.as_ref().and_then(|s| s.parallelism).unwrap_or(1);
    if let Some(expected) = current
        && expected != actual
    {
        return Err(ScaleError::Precondition { expected, actual });
    }
    let set = job.spec.as_ref().and_then(|s| s.parallelism);
    if set == Some(replicas) {
        Ok(Plan::Unchanged)
    } else {
        Ok(Plan::Write {
            from: actual,
            to: replicas,
        })
    }
}

/// What the scale loop needs from the broker: read one Job, write it back conditionally.
pub(crate) trait JobStore {
    async fn get(&mut self, namespace: &str, name: &str) -> Result<Object, Status>;
    async fn update(&mut self, obj: Object) -> Result<Object, Status>;
}

impl JobStore for BrokerClient {
    async fn get(&mut self, namespace: &str, name: &str) -> Result<Object, Status> {
        let r = BrokerClient::get(
            self,
            GetRequest {
                kind: Kind::Job as i32,
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
        )
        .await?;
        r.into_inner()
            .object
            .ok_or_else(|| Status::internal("the broker sent no object"))
    }

    async fn update(&mut self, obj: Object) -> Result<Object, Status> {
        let r = BrokerClient::update(
            self,
            UpdateRequest {
                object: Some(obj),
                dry_run: false,
            },
        )
        .await?;
        r.into_inner()
            .object
            .ok_or_else(|| Status::internal("the broker sent no object"))
    }
}

/// Scales Job `namespace/name` to `replicas`: read, decide, write conditionally; a write that
/// lost a race is retried on a fresh read up to [`CONFLICT_RETRIES`] times.
pub(crate) async fn scale_job<S: JobStore>(
    store: &mut S,
    namespace: &str,
    name: &str,
    replicas: i32,
    current: Option<i32>,
) -> Result<Plan, ScaleError> {
    let mut last = None;
    for attempt in 1..=CONFLICT_RETRIES {
        let mut obj = store
            .get(namespace, name)
            .await
            .map_err(ScaleError::Server)?;
        let Some(O::Job(job)) = obj.object.as_mut() else {
            return Err(ScaleError::NotAJob);
        };
        let decided = plan(job, replicas, current)?;
        if decided == Plan::Unchanged {
            return Ok(decided);
        }
        job.spec.get_or_insert_default().parallelism = Some(replicas);
        match store.update(obj).await {
            Ok(_) => return Ok(decided),
            Err(s) if s.code() == Code::Aborted => {
                tracing::warn!(namespace, name, attempt, err = %s.message(), "conflict while scaling, retrying on a fresh read");
                last = Some(s);
            }
            Err(s) => return Err(ScaleError::Server(s)),
        }
    }
    Err(ScaleError::Conflict {
        attempts: CONFLICT_RETRIES,
        last: last.unwrap_or_else(|| Status::aborted("conflict")),
    })
}

/// Runs `bosun scale`.
pub async fn scale(ctx: &mut Ctx<'_>, args: ScaleArgs) -> anyhow::Result<i32> {
    let replicas = checked_replicas(args.replicas)?;
    let current = checked_current(args.current_replicas)?;
    if ctx.all_namespaces {
        bail!("scale works in one namespace: use -n NAMESPACE instead of -A");
    }
    let groups = crate::parse_targets(&args.resource)?;
    for (info, names) in &groups {
        if info.kind != Kind::Job {
            bail!(
                "cannot scale {}: only jobs can be scaled (their spec.parallelism)",
                info.plural
            );
        }
        if names.is_empty() {
            bail!(
                "resource(s) were provided, but no name was specified: bosun scale job NAME --replicas=COUNT"
            );
        }
    }
    let ns = ctx.namespace();
    let mut client = ctx.client().await?;
    let mut code = 0;
    for (info, names) in groups {
        for name in names {
            match scale_job(&mut client, &ns, &name, replicas, current).await {
                Ok(_) => writeln!(ctx.out, "{} scaled", object_ref(info, &name))?,
                Err(e) => {
                    code = 1;
                    let e = match e {
                        ScaleError::Precondition { expected, actual } => anyhow::anyhow!(
                            "Expected replicas to be {expected}, was {actual}: {} was not scaled",
                            object_ref(info, &name)
                        ),
                        ScaleError::NotAJob => anyhow::anyhow!(
                            "the broker answered for {} with an object that is not a Job",
                            object_ref(info, &name)
                        ),
                        ScaleError::Conflict { attempts, last } => anyhow::anyhow!(
                            "{} kept changing while it was scaled ({attempts} conflicting writes in a row; last: {}); spec.parallelism was not changed: try again",
                            object_ref(info, &name),
                            last.message()
                        ),
                        ScaleError::Server(s) => ctx.status_error(&s, Some(info), &name),
                    };
                    crate::report(&mut *ctx.err, &e);
                }
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn job(parallelism: Option<i32>) -> v1::Job {
        v1::Job {
            metadata: Some(v1::ObjectMeta {
                name: "pi".into(),
                namespace: "default".into(),
                resource_version: "7".into(),
                ..Default::default()
            }),
            spec: Some(v1::JobSpec {
                parallelism,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_count_must_be_zero_or_more_and_fit_an_int32() {
        assert_eq!(checked_replicas(0).unwrap(), 0);
        assert_eq!(checked_replicas(3).unwrap(), 3);
        let neg = checked_replicas(-1).unwrap_err().to_string();
        assert!(
            neg.contains("--replicas=-1")
                && neg.contains("0 or more")
                && neg.contains("nothing was changed"),
            "{neg}"
        );
        assert!(checked_replicas(i64::from(i32::MAX) + 1).is_err());
        assert_eq!(checked_current(-1).unwrap(), None);
        assert_eq!(checked_current(2).unwrap(), Some(2));
        assert!(checked_current(-2).is_err());
    }

    #[test]
    fn a_plan_writes_only_a_change_and_honours_current_replicas() {
        // (parallelism, --replicas, --current-replicas, the plan or the (expected, actual) refusal)
        type Case = (Option<i32>, i32, Option<i32>, Result<Plan, (i32, i32)>);
        let table: [Case; 6] = [
            (Some(1), 3, None, Ok(Plan::Write { from: 1, to: 3 })),
            (Some(3), 3, None, Ok(Plan::Unchanged)),
            (Some(2), 0, Some(2), Ok(Plan::Write { from: 2, to: 0 })),
            (Some(2), 5, Some(4), Err((4, 2))),
            // Unset is Kubernetes' default of 1, and writing makes it explicit.
            (None, 1, Some(1), Ok(Plan::Write { from: 1, to: 1 })),
            (None, 4, Some(2), Err((2, 1))),
        ];
        for (par, replicas, current, want) in table {
            let got = plan(&job(par), replicas, current);
            match (got, want) {
                (Ok(p), Ok(w)) => assert_eq!(p, w, "{par:?} -> {replicas}"),
                (Err(ScaleError::Precondition { expected, actual }), Err((e, a))) => {
                    assert_eq!((expected, actual), (e, a), "{par:?} -> {replicas}")
                }
                (got, want) => panic!("{par:?} -> {replicas}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// A store holding one Job that refuses the first `conflicts` writes as stale.
    struct Racy {
        job: Option<Object>,
        conflicts: usize,
        reads: usize,
        writes: VecDeque<Object>,
    }

    impl Racy {
        fn new(conflicts: usize) -> Racy {
            Racy {
                job: Some(job(Some(1)).into()),
                conflicts,
                reads: 0,
                writes: VecDeque::new(),
            }
        }
    }

    impl JobStore for Racy {
        async fn get(&mut self, _: &str, name: &str) -> Result<Object, Status> {
            self.reads += 1;
            self.job
                .clone()
                .ok_or_else(|| Status::not_found(format!("jobs \"{name}\" not found")))
        }
        async fn update(&mut self, obj: Object) -> Result<Object, Status> {
            if self.conflicts > 0 {
                self.conflicts -= 1;
                return Err(Status::aborted("resourceVersion 7 is stale, current is 8"));
            }
            self.writes.push_back(obj.clone());
            self.job = Some(obj.clone());
            Ok(obj)
        }
    }

    fn parallelism(obj: &Object) -> Option<i32> {
        match &obj.object {
            Some(O::Job(j)) => j.spec.as_ref().and_then(|s| s.parallelism),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_conflict_is_retried_on_a_fresh_read_until_the_write_lands() {
        let mut store = Racy::new(2);
        let got = scale_job(&mut store, "default", "pi", 4, None)
            .await
            .unwrap();
        assert_eq!(got, Plan::Write { from: 1, to: 4 });
        assert_eq!(store.reads, 3, "one read per attempt");
        assert_eq!(store.writes.len(), 1);
        assert_eq!(parallelism(&store.writes[0]), Some(4));
    }

    #[tokio::test]
    async fn a_conflict_that_persists_is_reported_and_nothing_is_written() {
        let mut store = Racy::new(usize::MAX);
        match scale_job(&mut store, "default", "pi", 4, None).await {
            Err(ScaleError::Conflict { attempts, last }) => {
                assert_eq!(attempts, CONFLICT_RETRIES);
                assert!(last.message().contains("stale"), "{last:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.reads, CONFLICT_RETRIES);
        assert!(store.writes.is_empty());
    }

    #[tokio::test]
    async fn an_unchanged_size_a_failed_precondition_or_a_missing_job_write_nothing() {
        let mut store = Racy::new(0);
        let got = scale_job(&mut store, "default", "pi", 1, None)
            .await
            .unwrap();
        assert_eq!(got, Plan::Unchanged);
        assert!(matches!(
            scale_job(&mut store, "default", "pi", 3, Some(2)).await,
            Err(ScaleError::Precondition {
                expected: 2,
                actual: 1
            })
        ));
        store.job = None;
        match scale_job(&mut store, "default", "pi", 3, None).await {
            Err(ScaleError::Server(s)) => assert_eq!(s.code(), Code::NotFound),
            other => panic!("{other:?}"),
        }
        assert!(store.writes.is_empty());
    }
}
