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
use crate::apply::DryRun;
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
    /// `server`: the broker applies and validates the patch and writes nothing.
    #[arg(long, value_enum, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: DryRun,
}

/// A checked `bosun patch` command line: what to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub info: &'static KindInfo,
    pub name: String,
    pub patch_type: PatchType,
    pub status: bool,
    /// `--dry-run=server`.
    pub dry_run: bool,
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
    if args.dry_run == DryRun::Client {
        bail!(
            "--dry-run=client is not supported by patch (the patch is applied in the broker): use --dry-run=server, which applies and validates it there and writes nothing"
        );
    }
    Ok(Plan {
        info,
        name,
        patch_type,
        status,
        dry_run: args.dry_run == DryRun::Server,
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
    if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
        return Ok(text);
    }
    // kubectl takes YAML too, and sends it as JSON.
    let value = yaml_to_json(&text)
        .with_context(|| format!("unable to parse {text:?}: the patch is neither JSON nor YAML"))?;
    Ok(value.to_string())
}

/// One YAML document as a JSON value (string keys only, as JSON has).
fn yaml_to_json(text: &str) -> anyhow::Result<serde_json::Value> {
    use yaml_rust2::{Yaml, YamlLoader};
    fn convert(y: &Yaml) -> anyhow::Result<serde_json::Value> {
        use serde_json::Value as J;
        Ok(match y {
            Yaml::Null => J::Null,
            Yaml::Boolean(b) => J::Bool(*b),
            Yaml::Integer(i) => J::from(*i),
            Yaml::Real(r) => r
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(J::Number)
                .with_context(|| format!("{r} is not a number JSON can hold"))?,
            Yaml::String(s) => J::String(s.clone()),
            Yaml::Array(items) => J::Array(items.iter().map(convert).collect::<Result<_, _>>()?),
            Yaml::Hash(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => anyhow::bail!("a key must be a string, got {other:?}"),
                    };
                    out.insert(key, convert(v)?);
                }
                J::Object(out)
            }
            Yaml::Alias(_) | Yaml::BadValue => anyhow::bail!("aliases and bad values are not JSON"),
        })
    }
    let docs = YamlLoader::load_from_str(text)?;
    match docs.as_slice() {
        [one] if matches!(one, Yaml::Hash(_) | Yaml::Array(_)) => convert(one),
        [_] => anyhow::bail!("a patch is an object (merge) or a list of operations (json)"),
        _ => anyhow::bail!("a patch is one document, got {}", docs.len()),
    }
}

/// What `bosun patch` prints for the patched object: kubectl's `KIND/NAME patched`, with
/// ` (no change)` when nothing changed, or the object in the `-o` format.
pub fn render(
    output: &Output,
    info: &KindInfo,
    obj: &Object,
    changed: bool,
    dry_run: bool,
) -> String {
    match output {
        Output::Table | Output::Wide => {
            let note = if changed { "" } else { " (no change)" };
            let dry = if dry_run { " (server dry run)" } else { "" };
            format!("{} patched{note}{dry}\n", object_ref(info, obj.name()))
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
            dry_run: plan.dry_run,
        })
        .await
        .map_err(|s| ctx.status_error(&s, Some(plan.info), &plan.name))?
        .into_inner();
    let obj = resp
        .object
        .ok_or_else(|| anyhow::anyhow!("the broker sent no object"))?;
    let text = render(&output, plan.info, &obj, resp.changed, plan.dry_run);
    write!(ctx.out, "{text}")?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::v1::Kind;

    /// The flags of a command line split at spaces; `·` stands for a space inside a word.
    fn args(line: &str) -> PatchArgs {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            a: PatchArgs,
        }
        let words = std::iter::once("patch".to_string())
            .chain(line.split_whitespace().map(|w| w.replace('·', " ")));
        <Wrap as clap::Parser>::try_parse_from(words).unwrap().a
    }

    #[test]
    fn patch_command_lines_name_one_object_and_a_served_patch_type() {
        type Want = Result<(Kind, &'static str, PatchType, bool), &'static str>;
        let table: [(&str, &str, Want); 11] = [
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
                "client dry run",
                "job pi --type merge --dry-run=client -p {}",
                Err("use --dry-run=server"),
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
    fn the_patch_comes_from_exactly_one_place_and_is_sent_as_json() {
        let table = [
            ("-p", "job pi --type merge -p {\"a\":1}", Ok("{\"a\":1}")),
            (
                "none",
                "job pi --type merge",
                Err("must specify --patch or --patch-file"),
            ),
            (
                "YAML is sent as JSON",
                "job pi --type merge -p {spec:·{parallelism:·2}}",
                Ok("{\"spec\":{\"parallelism\":2}}"),
            ),
            (
                "neither JSON nor YAML",
                "job pi --type merge -p {a:·[}",
                Err("the patch is neither JSON nor YAML"),
            ),
            (
                "a YAML scalar",
                "job pi --type merge -p spec",
                Err("the patch is neither JSON nor YAML"),
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
            assert_eq!(render(&output, job, &obj, changed, false), want, "{name}");
        }
        assert_eq!(
            render(&Output::Table, job, &obj, true, true),
            "job.batch/pi patched (server dry run)\n"
        );
        let yaml = render(&Output::Yaml, job, &obj, true, false);
        assert!(
            yaml.contains("kind: Job") && yaml.contains("name: pi"),
            "{yaml}"
        );
    }
}
