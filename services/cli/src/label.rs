//! `bosun label KIND NAME k=v k2- [--overwrite]` with kubectl's semantics, plus the
//! read-modify-write helpers the node commands share.

use std::collections::BTreeMap;

use anyhow::bail;
use bosun_api::v1::{GetRequest, UpdateRequest};
use bosun_api::{KindInfo, Object};
use clap::Args;

use crate::Ctx;

/// `bosun label` flags.
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// `KIND NAME k=v k2-` or `KIND/NAME k=v k2-`.
    #[arg(required = true)]
    pub args: Vec<String>,
    /// Allow changing the value of a label that is already set.
    #[arg(long)]
    pub overwrite: bool,
}

/// One label change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelChange {
    Set(String, String),
    Remove(String),
}

/// Splits `KIND NAME changes...` / `KIND/NAME changes...` into the target and the changes.
pub fn parse_label_args(
    args: &[String],
) -> anyhow::Result<(&'static KindInfo, String, Vec<LabelChange>)> {
    let (kind, name, rest) = match args.first() {
        Some(first) if first.contains('/') => {
            let (k, n) = first.split_once('/').unwrap_or_default();
            (k.to_string(), n.to_string(), &args[1..])
        }
        Some(first) if args.len() >= 2 => (first.clone(), args[1].clone(), &args[2..]),
        _ => bail!(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>"
        ),
    };
    let info = KindInfo::lookup(&kind)
        .ok_or_else(|| anyhow::anyhow!("the server doesn't have a resource type \"{kind}\""))?;
    if rest.is_empty() {
        bail!("at least one label update is required");
    }
    let mut changes = Vec::new();
    for word in rest {
        if let Some(key) = word.strip_suffix('-')
            && !word.contains('=')
        {
            changes.push(LabelChange::Remove(key.to_string()));
        } else if let Some((k, v)) = word.split_once('=') {
            if k.is_empty() {
                bail!("invalid label spec: {word}");
            }
            changes.push(LabelChange::Set(k.to_string(), v.to_string()));
        } else {
            bail!("invalid label spec: {word}");
        }
    }
    Ok((info, name, changes))
}

/// Applies `changes` to `labels` as kubectl does: changing a set value needs `overwrite`;
/// removing a missing label is a no-op. Returns the message word: `labeled`, `unlabeled`
/// or `not labeled`.
pub fn apply_label_changes(
    labels: &mut BTreeMap<String, String>,
    changes: &[LabelChange],
    overwrite: bool,
) -> anyhow::Result<&'static str> {
    let before = labels.clone();
    for c in changes {
        if let LabelChange::Set(k, v) = c
            && !overwrite
            && let Some(old) = labels.get(k)
            && old != v
        {
            bail!("'{k}' already has a value ({old}), and --overwrite is false");
        }
    }
    for c in changes {
        match c {
            LabelChange::Set(k, v) => {
                labels.insert(k.clone(), v.clone());
            }
            LabelChange::Remove(k) => {
                labels.remove(k);
            }
        }
    }
    Ok(if *labels == before {
        "not labeled"
    } else if labels.len() < before.len() {
        "unlabeled"
    } else {
        "labeled"
    })
}

/// `pod/x`, `job.batch/x`: how kubectl names an object in its messages.
pub fn object_ref(info: &KindInfo, name: &str) -> String {
    format!("{}/{name}", info.resource_word())
}

/// Reads one object, with kubectl's errors.
pub(crate) async fn fetch(
    ctx: &mut Ctx<'_>,
    info: &'static KindInfo,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Object> {
    let mut client = ctx.client().await?;
    let ns = if info.namespaced { namespace } else { "" };
    let resp = client
        .get(GetRequest {
            kind: info.kind as i32,
            namespace: ns.to_string(),
            name: name.to_string(),
        })
        .await
        .map_err(|s| ctx.status_error(&s, Some(info), name))?;
    resp.into_inner()
        .object
        .ok_or_else(|| anyhow::anyhow!("the broker sent no object"))
}

/// Writes `obj` back (conditional on its resourceVersion), with kubectl's errors.
pub(crate) async fn store(ctx: &mut Ctx<'_>, obj: Object) -> anyhow::Result<Object> {
    let info = obj.info();
    let name = obj.name().to_string();
    let mut client = ctx.client().await?;
    let resp = client
        .update(UpdateRequest {
            object: Some(obj),
            dry_run: false,
        })
        .await
        .map_err(|s| ctx.status_error(&s, info, &name))?;
    resp.into_inner()
        .object
        .ok_or_else(|| anyhow::anyhow!("the broker sent no object"))
}

/// Runs `bosun label`.
pub async fn label(ctx: &mut Ctx<'_>, args: LabelArgs) -> anyhow::Result<i32> {
    let (info, name, changes) = parse_label_args(&args.args)?;
    let ns = ctx.namespace();
    let mut obj = fetch(ctx, info, &ns, &name).await?;
    let word = apply_label_changes(&mut obj.meta_mut().labels, &changes, args.overwrite)?;
    if word != "not labeled" {
        store(ctx, obj).await?;
    }
    writeln!(ctx.out, "{} {word}", object_ref(info, &name))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LabelChange::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn label_arguments_name_the_object_and_the_changes() {
        let (info, name, ch) = parse_label_args(&words("nodes n1 disk=ssd zone-")).unwrap();
        assert_eq!((info.name, name.as_str()), ("Node", "n1"));
        assert_eq!(
            ch,
            vec![Set("disk".into(), "ssd".into()), Remove("zone".into())]
        );
        let (info, name, ch) = parse_label_args(&words("job/pi a=")).unwrap();
        assert_eq!((info.name, name.as_str()), ("Job", "pi"));
        assert_eq!(ch, vec![Set("a".into(), String::new())]);
        assert!(parse_label_args(&words("pods x")).is_err());
        assert!(parse_label_args(&words("pods x novalue")).is_err());
        assert!(parse_label_args(&words("widgets x a=b")).is_err());
    }

    #[test]
    fn changing_a_value_needs_overwrite_like_kubectl() {
        let base: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        type Case<'a> = (
            &'a str,
            Vec<LabelChange>,
            bool,
            Result<(&'a str, Vec<(&'a str, &'a str)>), &'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "add",
                vec![Set("b".into(), "2".into())],
                false,
                Ok(("labeled", vec![("a", "1"), ("b", "2")])),
            ),
            (
                "same value",
                vec![Set("a".into(), "1".into())],
                false,
                Ok(("not labeled", vec![("a", "1")])),
            ),
            (
                "change refused",
                vec![Set("a".into(), "9".into())],
                false,
                Err("'a' already has a value (1), and --overwrite is false"),
            ),
            (
                "change with overwrite",
                vec![Set("a".into(), "9".into())],
                true,
                Ok(("labeled", vec![("a", "9")])),
            ),
            (
                "remove",
                vec![Remove("a".into())],
                false,
                Ok(("unlabeled", vec![])),
            ),
            (
                "remove missing",
                vec![Remove("zz".into())],
                false,
                Ok(("not labeled", vec![("a", "1")])),
            ),
        ];
        for (name, changes, overwrite, want) in cases {
            let mut labels = base.clone();
            let got = apply_label_changes(&mut labels, &changes, overwrite);
            match want {
                Ok((word, after)) => {
                    assert_eq!(got.unwrap(), word, "{name}");
                    let after: BTreeMap<String, String> = after
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    assert_eq!(labels, after, "{name}");
                }
                Err(msg) => {
                    assert_eq!(got.unwrap_err().to_string(), msg, "{name}");
                    assert_eq!(labels, base, "{name}: unchanged on error");
                }
            }
        }
    }

    #[test]
    fn objects_are_named_as_kubectl_prints_them() {
        let node = KindInfo::lookup("no").unwrap();
        let job = KindInfo::lookup("jobs").unwrap();
        assert_eq!(object_ref(node, "n1"), "node/n1");
        assert_eq!(object_ref(job, "pi"), "job.batch/pi");
    }
}
