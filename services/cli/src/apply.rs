//! `bosun apply -f` and `bosun create -f`: decode every manifest first (nothing is written
//! if any document is bad), then create, or for `apply` update what exists.
//!
//! Apply without kubectl's last-applied annotation: the manifest is the truth for labels,
//! annotations and the spec; ownerReferences and finalizers are the manifest's when it names
//! any, else the live object's (so references a controller added survive); the status and
//! server-set metadata (uid, generation, creationTimestamp) are the live object's; and values
//! the server generated into the spec (a Job's selector and its template's labels, a pod's
//! nodeName) are kept when the manifest leaves them out.

use anyhow::bail;
use bosun_api::KindInfo;
use bosun_api::codec::Manifest;
use bosun_api::v1::{self, CreateRequest, GetRequest, Object, UpdateRequest};
use clap::{Args, ValueEnum};
use tonic::Code;

use crate::Ctx;
use crate::printers::resource_name;
use crate::sources;

/// `apply` / `create` flags.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Files, folders, `-` for stdin, or http(s) URLs.
    #[arg(short = 'f', long = "filename", required = true)]
    pub filenames: Vec<String>,
    /// Descend into subfolders of folders given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// `client`: decide and print, send nothing; `server`: the broker validates, writes nothing.
    #[arg(long, value_enum, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: DryRun,
}

/// `--dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    None,
    Client,
    Server,
}

impl DryRun {
    /// What kubectl adds after `created` for this dry run.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        }
    }
}

/// Which verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Create,
}

/// What apply did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// How many times apply re-reads and retries after a concurrent write.
const CONFLICT_RETRIES: usize = 5;

/// Runs `bosun apply` or `bosun create`.
pub async fn apply(ctx: &mut Ctx<'_>, args: ApplyArgs, mode: Mode) -> anyhow::Result<i32> {
    let manifests = read_manifests(ctx, &args.filenames, args.recursive, mode).await?;
    apply_manifests(ctx, manifests, mode, args.dry_run).await
}

/// Reads and decodes every `-f` input (warnings go to `ctx.err`); any bad document fails the
/// whole lot, so nothing is written when one manifest is wrong.
pub async fn read_manifests(
    ctx: &mut Ctx<'_>,
    filenames: &[String],
    recursive: bool,
    mode: Mode,
) -> anyhow::Result<Vec<Manifest>> {
    let inputs = sources::read_all(filenames, recursive).await?;
    let manifests = match sources::decode_all(&inputs) {
        Ok(m) => m,
        Err(problems) => {
            for p in &problems {
                writeln!(ctx.err, "error: {p}")?;
            }
            bail!(
                "{} problem(s) found; nothing was {}",
                problems.len(),
                if mode == Mode::Apply {
                    "applied"
                } else {
                    "created"
                }
            );
        }
    };
    if manifests.is_empty() {
        bail!(
            "no objects passed to {}",
            if mode == Mode::Apply {
                "apply"
            } else {
                "create"
            }
        );
    }
    for m in &manifests {
        for w in &m.warnings {
            writeln!(ctx.err, "Warning: {w}")?;
        }
    }
    Ok(manifests)
}

/// Creates or applies decoded manifests one by one, printing `kind/name created` (or
/// `configured`, `unchanged`) per object; returns 1 when any object failed (each failure is
/// reported on `ctx.err` and the others still go through).
pub async fn apply_manifests(
    ctx: &mut Ctx<'_>,
    manifests: Vec<Manifest>,
    mode: Mode,
    dry_run: DryRun,
) -> anyhow::Result<i32> {
    // Namespaces are settled for every object before the first write, too.
    let mut objects = Vec::with_capacity(manifests.len());
    for m in manifests {
        objects.push(place(m, ctx.namespace_flag.as_deref())?);
    }
    let mut code = 0;
    for obj in objects {
        let result = match mode {
            Mode::Create => create_one(ctx, &obj, dry_run).await,
            Mode::Apply => apply_one(ctx, &obj, dry_run).await,
        };
        match result {
            Ok((name, outcome)) => {
                writeln!(ctx.out, "{name} {}{}", outcome.word(), dry_run.suffix())?;
            }
            Err(e) => {
                code = 1;
                crate::report(&mut *ctx.err, &e);
            }
        }
    }
    Ok(code)
}

/// Puts a manifest's object in its namespace: its own, else `-n`, else `default`; a
/// manifest namespace that contradicts `-n` is an error, as in kubectl.
pub fn place(m: Manifest, flag: Option<&str>) -> anyhow::Result<Object> {
    let mut obj = m.object;
    let Some(info) = obj.info() else {
        bail!("{}:{}: the object has no kind", m.source, m.line);
    };
    let own = obj.namespace().to_string();
    if !info.namespaced {
        obj.meta_mut().namespace.clear();
    } else if own.is_empty() {
        obj.meta_mut().namespace = flag.unwrap_or("default").to_string();
    } else if let Some(f) = flag.filter(|f| *f != own) {
        bail!(
            "{}:{}: the namespace from the provided object \"{own}\" does not match the namespace \"{f}\". You must pass '--namespace={own}' to perform this operation.",
            m.source,
            m.line
        );
    }
    Ok(obj)
}

async fn create_one(
    ctx: &mut Ctx<'_>,
    obj: &Object,
    dry_run: DryRun,
) -> anyhow::Result<(String, Outcome)> {
    let info = kind_info(obj)?;
    if dry_run == DryRun::Client {
        return Ok((resource_name(obj), Outcome::Created));
    }
    let mut client = ctx.client().await?;
    let resp = client
        .create(CreateRequest {
            object: Some(obj.clone()),
            dry_run: dry_run == DryRun::Server,
        })
        .await
        .map_err(|s| ctx.status_error(&s, Some(info), obj.name()))?
        .into_inner();
    print_warnings(ctx, &resp.warnings)?;
    let created = resp.object.unwrap_or_else(|| obj.clone());
    Ok((resource_name(&created), Outcome::Created))
}

async fn apply_one(
    ctx: &mut Ctx<'_>,
    obj: &Object,
    dry_run: DryRun,
) -> anyhow::Result<(String, Outcome)> {
    let info = kind_info(obj)?;
    if obj.name().is_empty() {
        bail!(
            "{}: cannot use generateName with apply; use `bosun create`",
            info.resource_word()
        );
    }
    let mut client = ctx.client().await?;
    for _ in 0..CONFLICT_RETRIES {
        let live = client
            .get(GetRequest {
                kind: info.kind as i32,
                namespace: obj.namespace().to_string(),
                name: obj.name().to_string(),
            })
            .await;
        let live = match live {
            Ok(r) => r.into_inner().object,
            Err(s) if s.code() == Code::NotFound => None,
            Err(s) => return Err(ctx.status_error(&s, Some(info), obj.name())),
        };
        let Some(live) = live else {
            return create_one(ctx, obj, dry_run).await;
        };
        let merged = merge_for_apply(&live, obj);
        if merged == live {
            return Ok((resource_name(obj), Outcome::Unchanged));
        }
        if dry_run == DryRun::Client {
            return Ok((resource_name(obj), Outcome::Configured));
        }
        match client
            .update(UpdateRequest {
                object: Some(merged),
                dry_run: dry_run == DryRun::Server,
            })
            .await
        {
            Ok(r) => {
                print_warnings(ctx, &r.into_inner().warnings)?;
                return Ok((resource_name(obj), Outcome::Configured));
            }
            // Someone wrote in between: read again and re-apply on top of their write.
            Err(s) if s.code() == Code::Aborted => {
                tracing::warn!(object = %obj.key(), "conflict on apply, retrying");
                continue;
            }
            Err(s) => return Err(ctx.status_error(&s, Some(info), obj.name())),
        }
    }
    bail!(
        "{} changed {CONFLICT_RETRIES} times while being applied; try again",
        resource_name(obj)
    )
}

fn kind_info(obj: &Object) -> anyhow::Result<&'static KindInfo> {
    obj.info()
        .ok_or_else(|| anyhow::anyhow!("an object without a kind cannot be sent"))
}

fn print_warnings(ctx: &mut Ctx<'_>, warnings: &[String]) -> anyhow::Result<()> {
    for w in warnings {
        writeln!(ctx.err, "Warning: {w}")?;
    }
    Ok(())
}

/// The object apply writes: the manifest's body and user metadata on the live object's
/// identity, status and server-generated spec values (see the module docs).
pub fn merge_for_apply(live: &Object, desired: &Object) -> Object {
    let mut merged = desired.clone();
    merged.set_type_meta();
    let want = desired.meta().cloned().unwrap_or_default();
    let mut meta = live.meta().cloned().unwrap_or_default();
    meta.labels = want.labels;
    // The broker's record of the trace that created the object is not the manifest's to
    // drop: without this, every re-apply would look like a change.
    let trace = meta
        .annotations
        .remove(bosun_runtime::telemetry::TRACEPARENT_ANNOTATION);
    meta.annotations = want.annotations;
    if let Some(tp) = trace {
        meta.annotations
            .entry(bosun_runtime::telemetry::TRACEPARENT_ANNOTATION.to_string())
            .or_insert(tp);
    }
    if !want.owner_references.is_empty() {
        meta.owner_references = want.owner_references;
    }
    if !want.finalizers.is_empty() {
        meta.finalizers = want.finalizers;
    }
    *merged.meta_mut() = meta;
    merged.copy_status_from(live);
    keep_server_generated(&mut merged, live);
    merged
}

fn keep_server_generated(merged: &mut Object, live: &Object) {
    use v1::object::Object as O;
    match (&mut merged.object, &live.object) {
        (Some(O::Job(m)), Some(O::Job(l))) => {
            let (Some(ms), Some(ls)) = (m.spec.as_mut(), l.spec.as_ref()) else {
                return;
            };
            if ms.selector.is_none() && ms.manual_selector != Some(true) && ls.selector.is_some() {
                ms.selector.clone_from(&ls.selector);
                // The labels the server put on the template so that selector matches.
                let live_labels = ls
                    .template
                    .as_ref()
                    .and_then(|t| t.metadata.as_ref())
                    .map(|m| m.labels.clone())
                    .unwrap_or_default();
                if live_labels.is_empty() {
                    return;
                }
                let template = ms.template.get_or_insert_with(Default::default);
                let labels = &mut template
                    .metadata
                    .get_or_insert_with(Default::default)
                    .labels;
                for (k, v) in live_labels {
                    labels.entry(k).or_insert(v);
                }
            }
        }
        (Some(O::Pod(m)), Some(O::Pod(l))) => {
            let (Some(ms), Some(ls)) = (m.spec.as_mut(), l.spec.as_ref()) else {
                return;
            };
            if ms.node_name.is_empty() {
                ms.node_name.clone_from(&ls.node_name);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::ObjectMeta;

    fn job(labels: &[(&str, &str)], image: &str) -> v1::Job {
        v1::Job {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            metadata: Some(ObjectMeta {
                name: "pi".into(),
                namespace: "default".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            spec: Some(v1::JobSpec {
                template: Some(v1::PodTemplateSpec {
                    metadata: None,
                    spec: Some(v1::PodSpec {
                        containers: vec![v1::Container {
                            name: "pi".into(),
                            image: image.into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn live_job() -> Object {
        let mut j = job(&[("team", "a")], "perl");
        let meta = j.metadata.as_mut().unwrap();
        meta.uid = "u1".into();
        meta.resource_version = "7".into();
        meta.generation = 1;
        meta.creation_timestamp = "2024-01-01T00:00:00Z".into();
        meta.finalizers = vec!["keep".into()];
        let spec = j.spec.as_mut().unwrap();
        spec.selector = Some(v1::LabelSelector {
            match_labels: [("controller-uid".to_string(), "u1".to_string())].into(),
            ..Default::default()
        });
        spec.template.as_mut().unwrap().metadata = Some(ObjectMeta {
            labels: [
                ("controller-uid".to_string(), "u1".to_string()),
                ("job-name".to_string(), "pi".to_string()),
            ]
            .into(),
            ..Default::default()
        });
        j.status = Some(v1::JobStatus {
            active: 1,
            ..Default::default()
        });
        j.into()
    }

    #[test]
    fn applying_the_same_manifest_again_changes_nothing() {
        let live = live_job();
        let desired: Object = job(&[("team", "a")], "perl").into();
        assert_eq!(merge_for_apply(&live, &desired), live);
    }

    #[test]
    fn reapplying_keeps_the_trace_the_broker_recorded_at_creation() {
        let mut live = live_job();
        live.meta_mut().annotations.insert(
            bosun_runtime::telemetry::TRACEPARENT_ANNOTATION.into(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        );
        let desired: Object = job(&[("team", "a")], "perl").into();
        assert_eq!(merge_for_apply(&live, &desired), live);
    }

    #[test]
    fn apply_takes_labels_and_spec_from_the_manifest_and_identity_and_status_from_the_live_object()
    {
        let live = live_job();
        let desired: Object = job(&[("team", "b")], "python").into();
        let merged = merge_for_apply(&live, &desired);
        let m = merged.as_job().unwrap();
        let meta = m.metadata.as_ref().unwrap();
        assert_eq!(meta.labels.get("team").map(String::as_str), Some("b"));
        assert_eq!(meta.uid, "u1");
        assert_eq!(meta.resource_version, "7");
        assert_eq!(meta.finalizers, vec!["keep"]);
        let spec = m.spec.as_ref().unwrap();
        assert_eq!(
            spec.template
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .containers[0]
                .image,
            "python"
        );
        assert!(spec.selector.is_some(), "the generated selector is kept");
        let tpl_labels = &spec
            .template
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .labels;
        assert_eq!(tpl_labels.get("job-name").map(String::as_str), Some("pi"));
        assert_eq!(m.status.as_ref().unwrap().active, 1);
    }

    fn manifest(ns: &str, kind: &str) -> Manifest {
        let mut obj: Object = match kind {
            "Node" => v1::Node::default().into(),
            _ => job(&[], "perl").into(),
        };
        obj.meta_mut().name = "x".into();
        obj.meta_mut().namespace = ns.into();
        Manifest {
            object: obj,
            source: "f.yaml".into(),
            line: 3,
            warnings: vec![],
        }
    }

    #[test]
    fn objects_land_in_their_own_namespace_the_flag_or_default() {
        let table = [
            ("", None, Ok("default")),
            ("", Some("team"), Ok("team")),
            ("team", None, Ok("team")),
            ("team", Some("team"), Ok("team")),
            (
                "team",
                Some("other"),
                Err("does not match the namespace \"other\""),
            ),
        ];
        for (own, flag, want) in table {
            let got = place(manifest(own, "Job"), flag);
            match (got, want) {
                (Ok(o), Ok(ns)) => assert_eq!(o.namespace(), ns),
                (Err(e), Err(msg)) => {
                    assert!(e.to_string().contains(msg), "{e}");
                    assert!(e.to_string().starts_with("f.yaml:3:"), "{e}");
                }
                (got, want) => panic!("{own:?} {flag:?}: got {got:?}, want {want:?}"),
            }
        }
        let node = place(manifest("x", "Node"), Some("team")).unwrap();
        assert_eq!(node.namespace(), "");
    }
}
