//! `bosun create`: objects from manifests (`-f`, shared with apply), or a Job from a
//! CronJob's template (`bosun create job NAME --from=cronjob/CJ`, kubectl's manual trigger).
//!
//! `create job --from` builds the Job here with [`bosun_api::cronjob::manual_job`], the
//! builder the broker's `TriggerCronJob` and the CronJob controller use too, and creates it
//! itself, because kubectl's contract is the user's name with `AlreadyExists` as an error
//! and a client dry run that sends nothing. With `--idempotency-key` it calls
//! `TriggerCronJob` instead: the Job is then named from the key and a repeated command
//! finds the Job the first one made (printed `unchanged`) rather than failing.

use anyhow::bail;
use bosun_api::KindInfo;
use bosun_api::cronjob;
use bosun_api::v1::{self, CreateRequest, Kind, Object};
use clap::{Args, Subcommand};

use crate::Ctx;
use crate::apply::{ApplyArgs, DryRun, Mode};
use crate::label::{fetch, object_ref};
use crate::output::{Output, json_to_yaml, value_of};

/// `create` flags: `-f` manifests, or a generator subcommand.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub what: Option<CreateWhat>,
    #[command(flatten)]
    pub files: ApplyArgs,
}

/// What `create` can make without a manifest.
#[derive(Debug, Subcommand)]
pub enum CreateWhat {
    /// Create a Job from a CronJob's jobTemplate (`--from=cronjob/NAME`), a manual run.
    Job(CreateJobArgs),
}

/// `create job` flags (kubectl's, plus `--idempotency-key`).
#[derive(Debug, Args)]
pub struct CreateJobArgs {
    /// The Job's name (left out with --idempotency-key: the name comes from the key).
    pub name: Option<String>,
    /// The resource to create the Job from (only cronjob is supported): `cronjob/NAME`.
    #[arg(long, required = true)]
    pub from: String,
    /// `client`: print the Job that would be sent, send nothing; `server`: the broker
    /// defaults and validates it, writes nothing.
    #[arg(long, value_enum, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: DryRun,
    /// Output format: json, yaml, name, jsonpath=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// bosun: trigger through the broker with this key (the same key never starts two
    /// runs); the Job is named `<cronjob>-manual-<hash of the key>`.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// Runs `bosun create`.
pub async fn create(ctx: &mut Ctx<'_>, args: CreateArgs) -> anyhow::Result<i32> {
    match args.what {
        Some(CreateWhat::Job(a)) => create_job(ctx, a).await,
        None => crate::apply::apply(ctx, args.files, Mode::Create).await,
    }
}

/// The CronJob a `--from` value names: `cronjob/NAME` (or any spelling of the kind kubectl
/// takes: `cj`, `cronjobs`, `cronjob.batch`).
pub fn from_cronjob(from: &str) -> anyhow::Result<String> {
    let Some((word, name)) = from.split_once('/') else {
        bail!("--from must be of the form cronjob/NAME, got {from:?}");
    };
    match KindInfo::lookup(word) {
        Some(info) if info.kind == Kind::CronJob && !name.is_empty() => Ok(name.to_string()),
        Some(info) if info.kind == Kind::CronJob => {
            bail!("--from must be of the form cronjob/NAME, got {from:?}")
        }
        Some(info) => bail!(
            "cannot create a job from {}: only cronjob is supported (--from=cronjob/NAME)",
            info.resource_word()
        ),
        None => bail!("the server doesn't have a resource type {word:?}"),
    }
}

/// What `create job` prints for the Job: kubectl's `job.batch/NAME created` (with the dry
/// run's suffix), `unchanged` when an earlier trigger with the key made it, or the Job in
/// the `-o` format.
pub fn render(output: &Output, obj: &Object, created: bool, dry_run: DryRun) -> String {
    let info = KindInfo::of(Kind::Job).expect("Job is a known kind");
    match output {
        Output::Table | Output::Wide => {
            let word = if created {
                "created"
            } else {
                "unchanged (already triggered with this idempotency key)"
            };
            format!(
                "{} {word}{}\n",
                object_ref(info, obj.name()),
                dry_run.suffix()
            )
        }
        Output::Name => format!("{}\n", object_ref(info, obj.name())),
        Output::Json => format!("{:#}\n", value_of(std::slice::from_ref(obj), true)),
        Output::Yaml => json_to_yaml(&value_of(std::slice::from_ref(obj), true)),
        Output::JsonPath(t) => t.render(&value_of(std::slice::from_ref(obj), true)),
    }
}

fn job_object(job: v1::Job) -> Object {
    Object {
        object: Some(v1::object::Object::Job(Box::new(job))),
    }
}

async fn create_job(ctx: &mut Ctx<'_>, args: CreateJobArgs) -> anyhow::Result<i32> {
    let output = Output::parse(args.output.as_deref())?;
    if output == Output::Wide {
        bail!(
            "unable to match a printer suitable for the output format \"wide\", allowed formats are: json, jsonpath, name, yaml"
        );
    }
    let cj_name = from_cronjob(&args.from)?;
    let namespace = ctx.namespace();
    let cj_info = KindInfo::of(Kind::CronJob).expect("CronJob is a known kind");
    if let Some(key) = args.idempotency_key.as_deref() {
        if let Some(name) = &args.name {
            bail!(
                "NAME ({name}) cannot be given with --idempotency-key: the Job is named from the key ({})",
                cronjob::manual_job_name(&cj_name, key)
            );
        }
        return trigger(ctx, &namespace, &cj_name, key, args.dry_run, &output).await;
    }
    let Some(name) = args.name else {
        bail!("exactly one NAME is required, got 0 (or give --idempotency-key)");
    };
    let cj = match fetch(ctx, cj_info, &namespace, &cj_name).await?.object {
        Some(v1::object::Object::CronJob(c)) => c,
        _ => bail!("{} is not a CronJob", object_ref(cj_info, &cj_name)),
    };
    let job = job_object(cronjob::manual_job(&cj, &name));
    let job_info = KindInfo::of(Kind::Job).expect("Job is a known kind");
    let made = if args.dry_run == DryRun::Client {
        job
    } else {
        let mut client = ctx.client().await?;
        client
            .create(CreateRequest {
                object: Some(job.clone()),
                dry_run: args.dry_run == DryRun::Server,
            })
            .await
            .map_err(|s| ctx.status_error(&s, Some(job_info), &name))?
            .into_inner()
            .object
            .unwrap_or(job)
    };
    write!(ctx.out, "{}", render(&output, &made, true, args.dry_run))?;
    Ok(0)
}

async fn trigger(
    ctx: &mut Ctx<'_>,
    namespace: &str,
    cj_name: &str,
    key: &str,
    dry_run: DryRun,
    output: &Output,
) -> anyhow::Result<i32> {
    let cj_info = KindInfo::of(Kind::CronJob).expect("CronJob is a known kind");
    let (job, created) = if dry_run == DryRun::Client {
        let cj = match fetch(ctx, cj_info, namespace, cj_name).await?.object {
            Some(v1::object::Object::CronJob(c)) => c,
            _ => bail!("{} is not a CronJob", object_ref(cj_info, cj_name)),
        };
        (cronjob::triggered_job(&cj, key), true)
    } else {
        let mut client = ctx.client().await?;
        let resp = client
            .trigger_cron_job(v1::TriggerCronJobRequest {
                namespace: namespace.to_string(),
                name: cj_name.to_string(),
                idempotency_key: key.to_string(),
                dry_run: dry_run == DryRun::Server,
            })
            .await
            .map_err(|s| {
                // NOT_FOUND is about the CronJob; ALREADY_EXISTS about the Job.
                let info = if s.code() == tonic::Code::NotFound {
                    cj_info
                } else {
                    KindInfo::of(Kind::Job).expect("Job is a known kind")
                };
                ctx.status_error(&s, Some(info), cj_name)
            })?
            .into_inner();
        let job = resp
            .job
            .ok_or_else(|| anyhow::anyhow!("the broker sent no Job"))?;
        (job, resp.created)
    };
    write!(
        ctx.out,
        "{}",
        render(output, &job_object(job), created, dry_run)
    )?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_names_a_cronjob_in_any_spelling_kubectl_takes() {
        let rows = [
            ("cronjob/hello", Ok("hello")),
            ("cronjobs/hello", Ok("hello")),
            ("cj/hello", Ok("hello")),
            ("cronjob.batch/hello", Ok("hello")),
            ("hello", Err("--from must be of the form cronjob/NAME")),
            ("cronjob/", Err("--from must be of the form cronjob/NAME")),
            ("job/hello", Err("cannot create a job from job.batch")),
            (
                "widget/hello",
                Err("the server doesn't have a resource type"),
            ),
        ];
        for (from, want) in rows {
            match (from_cronjob(from), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{from}"),
                (Err(e), Err(w)) => assert!(e.to_string().starts_with(w), "{from}: {e}"),
                (got, want) => panic!("{from}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_job_prints_as_kubectl_prints_a_created_object() {
        let job = job_object(v1::Job {
            metadata: Some(v1::ObjectMeta {
                name: "by-hand".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let rows = [
            (
                Output::Table,
                true,
                DryRun::None,
                "job.batch/by-hand created\n",
            ),
            (
                Output::Table,
                true,
                DryRun::Client,
                "job.batch/by-hand created (dry run)\n",
            ),
            (
                Output::Table,
                true,
                DryRun::Server,
                "job.batch/by-hand created (server dry run)\n",
            ),
            (
                Output::Table,
                false,
                DryRun::None,
                "job.batch/by-hand unchanged (already triggered with this idempotency key)\n",
            ),
            (Output::Name, true, DryRun::None, "job.batch/by-hand\n"),
        ];
        for (output, created, dry, want) in rows {
            assert_eq!(render(&output, &job, created, dry), want);
        }
        assert!(render(&Output::Yaml, &job, true, DryRun::None).contains("name: by-hand"));
    }
}
