//! `bosun patch KIND NAME --type merge|json -p '…'`, as `kubectl patch`.
//!
//! The patch is applied in the broker (the `Patch` call): the broker reads the object,
//! applies the patch to its Kubernetes JSON form, validates the result as an update and
//! writes it guarded by the resourceVersion it read, applying the patch again on a fresh
//! read when another writer got in between. So nothing here reads or writes the object: the
//! command checks its flags ([`plan`], pure and table-tested), sends the patch and prints.
//!
//! kubectl's default `--type` is `strategic` (strategic merge patch, which needs the
//! Kubernetes schemas' merge keys); bosun does not serve it yet (it comes with the
//! Kubernetes REST API), so a patch without `--type merge` or `--type json` is refused with
//! what to use instead, rather than silently treated as another type.

use anyhow::{Context as _, bail};
use bosun_api::v1::{PatchRequest, PatchType};
use bosun_api::{KindInfo, Object};
use clap::Args;

use crate::Ctx;
use crate::label::object_ref;
use crate::output::{Output, json_to_yaml, value_of};

/// `bosun patch` flags.
#[derive(Debug, Args)]
pub struct PatchArgs {
    /// `KIND NAME` or `KIND/NAME`.
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// The patch, JSON text.
    #[arg(short = 'p', long)]
    pub patch: Option<String>,
    /// A file holding the patch (`-` for standard input).
    #[arg(long)]
    pub patch_file: Option<String>,
    /// `merge` (RFC 7386 JSON merge patch) or `json` (RFC 6902 JSON patch). kubectl's
    /// default, `strategic`, is not supported yet.
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
    /// `status` to patch the status subresource (everything else is kept).
    #[arg(long)]
    pub subresource: Option<String>,
    /// Output format: `yaml`, `json`, `name`, `jsonpath=…`; default: `KIND/NAME patched`.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// A checked `bosun patch` command line: what to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub info: &'static KindInfo,
    pub name: String,
    pub patch_type: PatchType,
    pub status: bool,
}

/// Checks the target words, `--type` and `--subresource` (kubectl's wording where it has
/// one), before anything is sent.
pub fn plan(args: &PatchArgs) -> anyhow::Result<Plan> {
    let (kind, name) = match args.resource.as_slice() {
        [one] => one.split_once('/').map(|(k, n)| (k, n.to_string())).with_context(|| {
            format!("name the object as KIND NAME or KIND/NAME (e.g. `bosun patch job/pi ...`); got {one:?}")
        })?,
        [kind, name] if !kind.contains('/') => (kind.as_str(), name.clone()),
        _ => bail!(
            "name one object as KIND NAME or KIND/NAME (e.g. `bosun patch job pi ...`); got {:?}",
            args.resource.join(" ")
        ),
    };
    if name.is_empty() {
        bail!("the object's name is empty: bosun patch KIND NAME --type merge -p '...'");
    }
    let info = KindInfo::lookup(kind)
        .ok_or_else(|| anyhow::anyhow!("the server doesn't have a resource type \"{kind}\""))?;
    let patch_type = match args.patch_type.as_str() {
        "merge" => PatchType::Merge,
        "json" => PatchType::Json,
        "strategic" => bail!(
            "strategic merge patch (kubectl's default --type) is not supported yet: it comes with the Kubernetes REST API; use --type merge (an RFC 7386 JSON merge patch, which replaces lists whole) or --type json (an RFC 6902 JSON patch)"
        ),
        other => bail!("--type must be one of [json merge strategic], not \"{other}\""),
    };
    let status = match args.subresource.as_deref() {
        None | Some("") => false,
        Some("status") => true,
        Some(other) => bail!(
            "--subresource {other:?} is not served: the only subresource bosun patches is \"status\""
        ),
    };
    Ok(Plan {
        info,
        name,
        patch_type,
        status,
    })
}

/// The patch text from `-p` or `--patch-file` (exactly one), checked to be JSON.
fn patch_text(args: &PatchArgs) -> anyhow::Result<String> {
    let text = match (&args.patch, &args.patch_file) {
        (Some(p), None) => p.clone(),
        (None, Some(f)) if f == "-" => std::io::read_to_string(std::io::stdin())
            .context("cannot read the patch from standard input")?,
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read the patch file {f}"))?
        }
        (None, None) => {
            bail!("must specify --patch or --patch-file containing the contents of the patch")
        }
        (Some(_), Some(_)) => bail!("--patch and --patch-file are mutually exclusive: give one"),
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .with_context(|| format!("unable to parse {text:?} as JSON"))?;
    Ok(text)
}

/// What `bosun patch` prints for the patched object: kubectl's `KIND/NAME patched`, with
/// ` (no change)` when nothing changed, or the object in the `-o` format.
pub fn render(output: &Output, info: &KindInfo, obj: &Object, changed: bool) -> String {
    match output {
        Output::Table | Output::Wide => {
            let note = if changed { "" } else { " (no change)" };
            format!("{} patched{note}\n", object_ref(info, obj.name()))
        }
        Output::Name => format!("{}\n", object_ref(info, obj.name())),
        Output::Json => format!("{:#}\n", value_of(std::slice::from_ref(obj), true)),
        Output::Yaml => json_to_yaml(&value_of(std::slice::from_ref(obj), true)),
        Output::JsonPath(t) => t.render(&value_of(std::slice::from_ref(obj), true)),
    }
}

/// Runs `bosun patch`.
pub async fn patch(ctx: &mut Ctx<'_>, args: PatchArgs) -> anyhow::Result<i32> {
    let plan = plan(&args)?;
    let output = Output::parse(args.output.as_deref())?;
    let text = patch_text(&args)?;
    let namespace = if plan.info.namespaced {
        ctx.namespace()
    } else {
        String::new()
    };
    let mut client = ctx.client().await?;
    let resp = client
        .patch(PatchRequest {
            kind: plan.info.kind as i32,
            namespace,
            name: plan.name.clone(),
            r#type: plan.patch_type as i32,
            patch: text,
            subresource: if plan.status {
                "status".into()
            } else {
                String::new()
            },
            dry_run: false,
        })
        .await
        .map_err(|s| ctx.status_error(&s, Some(plan.info), &plan.name))?
        .into_inner();
    let obj = resp
        .object
        .ok_or_else(|| anyhow::anyhow!("the broker sent no object"))?;
    write!(
        ctx.out,
        "{}",
        render(&output, plan.info, &obj, resp.changed)
    )?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::v1::Kind;

    fn args(line: &str) -> PatchArgs {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            a: PatchArgs,
        }
        let words = std::iter::once("patch").chain(line.split_whitespace());
        <Wrap as clap::Parser>::try_parse_from(words).unwrap().a
    }

    #[test]
    fn patch_command_lines_name_one_object_and_a_served_patch_type() {
        type Want = Result<(Kind, &'static str, PatchType, bool), &'static str>;
        let table: [(&str, &str, Want); 10] = [
            (
                "kind and name",
                "job pi --type merge -p {}",
                Ok((Kind::Job, "pi", PatchType::Merge, false)),
            ),
            (
                "kind/name and --type=json",
                "po/x --type=json -p []",
                Ok((Kind::Pod, "x", PatchType::Json, false)),
            ),
            (
                "status subresource",
                "pod x --type merge --subresource status -p {}",
                Ok((Kind::Pod, "x", PatchType::Merge, true)),
            ),
            (
                "kubectl's default type is refused with what to use",
                "job pi -p {}",
                Err("strategic merge patch (kubectl's default --type) is not supported yet"),
            ),
            (
                "explicit strategic",
                "job pi --type strategic -p {}",
                Err("use --type merge"),
            ),
            (
                "unknown type",
                "job pi --type xml -p {}",
                Err("--type must be one of [json merge strategic], not \"xml\""),
            ),
            (
                "unknown kind",
                "widget w --type merge -p {}",
                Err("the server doesn't have a resource type \"widget\""),
            ),
            (
                "name missing",
                "job --type merge -p {}",
                Err("KIND NAME or KIND/NAME"),
            ),
            (
                "two slashes",
                "job/pi job/e --type merge -p {}",
                Err("name one object"),
            ),
            (
                "another subresource",
                "job pi --type merge --subresource scale -p {}",
                Err("the only subresource bosun patches is \"status\""),
            ),
        ];
        for (name, line, want) in table {
            match (plan(&args(line)), want) {
                (Ok(p), Ok((kind, obj, ty, status))) => {
                    assert_eq!(
                        (p.info.kind, p.name.as_str(), p.patch_type, p.status),
                        (kind, obj, ty, status),
                        "{name}"
                    );
                }
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_patch_comes_from_exactly_one_place_and_is_json() {
        let table = [
            ("-p", "job pi --type merge -p {\"a\":1}", Ok("{\"a\":1}")),
            (
                "none",
                "job pi --type merge",
                Err("must specify --patch or --patch-file"),
            ),
            (
                "not JSON",
                "job pi --type merge -p spec:",
                Err("unable to parse \"spec:\" as JSON"),
            ),
            (
                "missing file",
                "job pi --type merge --patch-file /nonexistent/p.json",
                Err("cannot read the patch file /nonexistent/p.json"),
            ),
            (
                "both",
                "job pi --type merge -p {} --patch-file x",
                Err("mutually exclusive"),
            ),
        ];
        for (name, line, want) in table {
            match (patch_text(&args(line)), want) {
                (Ok(t), Ok(w)) => assert_eq!(t, w, "{name}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_patched_object_is_reported_as_kubectl_does() {
        let job = KindInfo::lookup("jobs").unwrap();
        let mut obj: Object = bosun_api::v1::Job::default().into();
        obj.meta_mut().name = "pi".into();
        let table = [
            ("changed", None, true, "job.batch/pi patched\n"),
            (
                "unchanged",
                None,
                false,
                "job.batch/pi patched (no change)\n",
            ),
            ("name", Some("name"), true, "job.batch/pi\n"),
            ("jsonpath", Some("jsonpath={.metadata.name}"), true, "pi"),
        ];
        for (name, o, changed, want) in table {
            let output = Output::parse(o).unwrap();
            assert_eq!(render(&output, job, &obj, changed), want, "{name}");
        }
        let yaml = render(&Output::Yaml, job, &obj, true);
        assert!(
            yaml.contains("kind: Job") && yaml.contains("name: pi"),
            "{yaml}"
        );
    }
}
