//! `bosun delete`: by name, `KIND/NAME`, `-f FILE`, `-l SELECTOR` or `--all`, with
//! kubectl's cascade, grace period, ignore-not-found and wait-until-gone behaviour.

use std::time::Duration;

use anyhow::bail;
use bosun_api::KindInfo;
use bosun_api::v1::{DeleteRequest, GetRequest, ListRequest};
use bosun_api::vocab::propagation;
use clap::{Args, ValueEnum};
use tonic::Code;

use crate::Ctx;
use crate::sources;

/// `bosun delete` flags.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `KIND NAME...` or `KIND/NAME...`.
    pub resource: Vec<String>,
    /// Delete the objects these manifests describe.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Descend into subfolders of folders given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Delete every object of the kind matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete every object of the kind (in the namespace, or everywhere with -A).
    #[arg(long)]
    pub all: bool,
    /// What happens to dependents: background (default), foreground, orphan.
    #[arg(long, value_enum, default_value = "background")]
    pub cascade: Cascade,
    /// Seconds the object gets to stop; -1 uses its own default.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Immediate deletion (grace period 1).
    #[arg(long)]
    pub now: bool,
    /// A missing object is not an error.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Wait until the objects are gone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
    /// How long --wait waits (`30s`, `2m`, `1h`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `--cascade`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cascade {
    Background,
    Foreground,
    Orphan,
    /// Legacy spelling of background.
    #[value(name = "true", hide = true)]
    True,
    /// Legacy spelling of orphan.
    #[value(name = "false", hide = true)]
    False,
}

impl Cascade {
    /// The propagation policy sent to the broker.
    pub fn policy(self) -> &'static str {
        match self {
            Cascade::Background | Cascade::True => propagation::BACKGROUND,
            Cascade::Foreground => propagation::FOREGROUND,
            Cascade::Orphan | Cascade::False => propagation::ORPHAN,
        }
    }
}

pub use bosun_api::units::parse_duration;

/// One object to delete.
struct Target {
    info: &'static KindInfo,
    namespace: String,
    name: String,
}

/// Runs `bosun delete`.
pub async fn delete(ctx: &mut Ctx<'_>, args: DeleteArgs) -> anyhow::Result<i32> {
    let targets = resolve(ctx, &args).await?;
    let mut code = 0;
    let mut pending = Vec::new();
    let mut client = ctx.client().await?;
    for t in targets {
        let req = DeleteRequest {
            kind: t.info.kind as i32,
            namespace: t.namespace.clone(),
            name: t.name.clone(),
            preconditions: None,
            propagation_policy: args.cascade.policy().to_string(),
            grace_period_seconds: if args.now {
                Some(1)
            } else {
                (args.grace_period >= 0).then_some(args.grace_period)
            },
        };
        match client.delete(req).await {
            Ok(r) => {
                writeln!(ctx.out, "{} \"{}\" deleted", t.info.resource_word(), t.name)?;
                ctx.out.flush()?;
                let r = r.into_inner();
                if !r.deleted {
                    let finalizers = r
                        .object
                        .as_ref()
                        .and_then(|o| o.meta())
                        .map(|m| m.finalizers.clone())
                        .unwrap_or_default();
                    pending.push((t, finalizers));
                }
            }
            Err(s) if s.code() == Code::NotFound && args.ignore_not_found => {}
            Err(s) => {
                code = 1;
                let e = ctx.status_error(&s, Some(t.info), &t.name);
                crate::report(&mut *ctx.err, &e);
            }
        }
    }
    if args.wait {
        for (t, finalizers) in pending {
            if !wait_gone(ctx, &t, &finalizers, args.timeout).await? {
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Which objects the arguments name.
async fn resolve(ctx: &mut Ctx<'_>, args: &DeleteArgs) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    if !args.filenames.is_empty() {
        if !args.resource.is_empty() {
            bail!("names cannot be given together with -f");
        }
        let inputs = sources::read_all(&args.filenames, args.recursive).await?;
        let manifests =
            sources::decode_all(&inputs).map_err(|p| anyhow::anyhow!("{}", p.join("\n")))?;
        for m in manifests {
            let obj = crate::apply::place(m, ctx.namespace_flag.as_deref())?;
            let Some(info) = obj.info() else { continue };
            out.push(Target {
                info,
                namespace: obj.namespace().to_string(),
                name: obj.name().to_string(),
            });
        }
        return Ok(out);
    }
    let groups = crate::parse_targets(&args.resource)?;
    for (info, names) in groups {
        let namespace = if info.namespaced {
            ctx.namespace()
        } else {
            String::new()
        };
        if !names.is_empty() {
            if args.all || args.selector.is_some() {
                bail!("names cannot be given together with --all or -l");
            }
            out.extend(names.into_iter().map(|name| Target {
                info,
                namespace: namespace.clone(),
                name,
            }));
            continue;
        }
        if !args.all && args.selector.is_none() {
            bail!(
                "resource(s) were provided, but no name was specified; name them, or use -l or --all"
            );
        }
        let mut client = ctx.client().await?;
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
        if list.items.is_empty() {
            writeln!(ctx.err, "No resources found")?;
        }
        out.extend(list.items.iter().map(|o| Target {
            info,
            namespace: o.namespace().to_string(),
            name: o.name().to_string(),
        }));
    }
    Ok(out)
}

/// Polls until the object is gone or `timeout` passes; says what it waits on.
async fn wait_gone(
    ctx: &mut Ctx<'_>,
    t: &Target,
    finalizers: &[String],
    timeout: Duration,
) -> anyhow::Result<bool> {
    let what = format!("{} \"{}\"", t.info.resource_word(), t.name);
    if finalizers.is_empty() {
        writeln!(ctx.err, "waiting for {what} to be removed...")?;
    } else {
        writeln!(
            ctx.err,
            "waiting for {what} to be removed: finalizers [{}] must be cleared first",
            finalizers.join(", ")
        )?;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut client = ctx.client().await?;
    loop {
        let r = client
            .get(GetRequest {
                kind: t.info.kind as i32,
                namespace: t.namespace.clone(),
                name: t.name.clone(),
            })
            .await;
        match r {
            Err(s) if s.code() == Code::NotFound => return Ok(true),
            Err(s) => return Err(ctx.status_error(&s, Some(t.info), &t.name)),
            Ok(_) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            writeln!(
                ctx.err,
                "error: timed out after {}s waiting for {what} to be removed; it is marked for deletion and goes once its finalizers are cleared (--wait=false does not wait)",
                timeout.as_secs()
            )?;
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn cascade_maps_to_propagation_policies() {
        assert_eq!(Cascade::Background.policy(), "Background");
        assert_eq!(Cascade::Foreground.policy(), "Foreground");
        assert_eq!(Cascade::Orphan.policy(), "Orphan");
        assert_eq!(Cascade::False.policy(), "Orphan");
    }
}
