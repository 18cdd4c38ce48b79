//! Node maintenance the kubectl way: `taint`, `cordon`, `uncordon`, `drain`.

use std::time::Duration;

use anyhow::bail;
use bosun_api::v1::{self, DeleteRequest, GetRequest, Kind, ListRequest, Taint};
use bosun_api::vocab::effect;
use bosun_api::{KindInfo, Object};
use clap::Args;
use tonic::Code;

use crate::Ctx;
use crate::delete::parse_duration;
use crate::label::{fetch, store};

const EFFECTS: &[&str] = &[
    effect::NO_SCHEDULE,
    effect::PREFER_NO_SCHEDULE,
    effect::NO_EXECUTE,
];

/// `bosun taint` flags.
#[derive(Debug, Args)]
pub struct TaintArgs {
    /// `nodes NAME key=value:Effect key:Effect- key-` (or `node/NAME ...`).
    #[arg(required = true)]
    pub args: Vec<String>,
    /// Replace taints with the same key and effect.
    #[arg(long)]
    pub overwrite: bool,
}

/// `bosun cordon` / `bosun uncordon` flags.
#[derive(Debug, Args)]
pub struct CordonArgs {
    /// The node.
    pub node: String,
}

/// `bosun drain` flags.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The node.
    pub node: String,
    /// Leave DaemonSet-managed pods (they would come back anyway).
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Also delete pods no controller manages (they are gone for good).
    #[arg(long)]
    pub force: bool,
    /// Seconds each pod gets to stop; -1 uses the pod's own.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// How long to wait for the pods to go; 0 waits forever.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// What one taint argument asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaintChange {
    Add(Taint),
    /// Remove taints with this key (and this effect, if given).
    Remove {
        key: String,
        effect: Option<String>,
    },
}

fn check_effect(effect: &str) -> anyhow::Result<()> {
    if !EFFECTS.contains(&effect) {
        bail!("invalid taint effect: {effect}, unsupported taint effect");
    }
    Ok(())
}

/// Parses `key=value:Effect`, `key:Effect`, `key:Effect-`, `key-` as kubectl does.
pub fn parse_taint(spec: &str) -> anyhow::Result<TaintChange> {
    if let Some(rest) = spec.strip_suffix('-') {
        let (key, effect) = match rest.split_once(':') {
            Some((k, e)) => {
                check_effect(e)?;
                (k, Some(e.to_string()))
            }
            None => (rest, None),
        };
        if key.is_empty() {
            bail!("invalid taint spec: {spec}");
        }
        let key = key.split_once('=').map_or(key, |(k, _)| k);
        return Ok(TaintChange::Remove {
            key: key.to_string(),
            effect,
        });
    }
    let Some((kv, effect)) = spec.rsplit_once(':') else {
        bail!("invalid taint spec: {spec}, unknown taint spec");
    };
    check_effect(effect)?;
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if key.is_empty() {
        bail!("invalid taint spec: {spec}");
    }
    Ok(TaintChange::Add(Taint {
        key: key.into(),
        value: value.into(),
        effect: effect.into(),
        time_added: String::new(),
    }))
}

/// Applies taint changes to `taints` (node `node`); returns the message word: `tainted`,
/// `untainted` or `modified`. `now` stamps NoExecute taints' timeAdded.
pub fn apply_taints(
    node: &str,
    taints: &mut Vec<Taint>,
    changes: &[TaintChange],
    overwrite: bool,
    now: &str,
) -> anyhow::Result<&'static str> {
    let adds: Vec<&Taint> = changes
        .iter()
        .filter_map(|c| match c {
            TaintChange::Add(t) => Some(t),
            TaintChange::Remove { .. } => None,
        })
        .collect();
    if !overwrite {
        let clash: Vec<&str> = adds
            .iter()
            .filter(|a| {
                taints
                    .iter()
                    .any(|t| t.key == a.key && t.effect == a.effect)
            })
            .map(|a| a.key.as_str())
            .collect();
        if !clash.is_empty() {
            bail!(
                "node {node} already has {} taint(s) with same effect(s) and --overwrite is false",
                clash.join(",")
            );
        }
    }
    let mut added = false;
    for a in &adds {
        let mut t = (*a).clone();
        if t.effect == effect::NO_EXECUTE {
            t.time_added = now.to_string();
        }
        match taints
            .iter_mut()
            .find(|x| x.key == t.key && x.effect == t.effect)
        {
            Some(existing) => *existing = t,
            None => taints.push(t),
        }
        added = true;
    }
    let mut removed = false;
    for c in changes {
        if let TaintChange::Remove { key, effect } = c {
            let before = taints.len();
            taints.retain(|t| !(t.key == *key && effect.as_ref().is_none_or(|e| *e == t.effect)));
            if taints.len() == before {
                match effect {
                    Some(e) => bail!("taint \"{key}:{e}\" not found"),
                    None => bail!("taint \"{key}\" not found"),
                }
            }
            removed = true;
        }
    }
    Ok(if added && (removed || overwrite) {
        "modified"
    } else if added {
        "tainted"
    } else {
        "untainted"
    })
}

/// Runs `bosun taint`.
pub async fn taint(ctx: &mut Ctx<'_>, args: TaintArgs) -> anyhow::Result<i32> {
    let (kind, name, specs) = match args.args.first() {
        Some(first) if first.contains('/') => {
            let (k, n) = first.split_once('/').unwrap_or_default();
            (k.to_string(), n.to_string(), &args.args[1..])
        }
        Some(first) if args.args.len() >= 2 => {
            (first.clone(), args.args[1].clone(), &args.args[2..])
        }
        _ => bail!("at least one taint update is required"),
    };
    if KindInfo::lookup(&kind).map(|i| i.kind) != Some(Kind::Node) {
        bail!("taints apply only to nodes (bosun taint nodes NAME key=value:Effect)");
    }
    if specs.is_empty() {
        bail!("at least one taint update is required");
    }
    let changes = specs
        .iter()
        .map(|s| parse_taint(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let info = node_info()?;
    let mut node = fetch(ctx, info, "", &name).await?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let word = {
        let spec = node_spec_mut(&mut node)?;
        apply_taints(&name, &mut spec.taints, &changes, args.overwrite, &now)?
    };
    store(ctx, node).await?;
    writeln!(ctx.out, "node/{name} {word}")?;
    Ok(0)
}

fn node_info() -> anyhow::Result<&'static KindInfo> {
    KindInfo::of(Kind::Node).ok_or_else(|| anyhow::anyhow!("no Node kind"))
}

fn node_spec_mut(obj: &mut Object) -> anyhow::Result<&mut v1::NodeSpec> {
    match obj.object.as_mut() {
        Some(v1::object::Object::Node(n)) => Ok(n.spec.get_or_insert_with(Default::default)),
        _ => bail!("not a node"),
    }
}

/// Sets the node's `spec.unschedulable`; prints `node/x cordoned` (or `already cordoned`).
async fn set_unschedulable(ctx: &mut Ctx<'_>, name: &str, on: bool) -> anyhow::Result<()> {
    let mut node = fetch(ctx, node_info()?, "", name).await?;
    let word = if on { "cordoned" } else { "uncordoned" };
    let spec = node_spec_mut(&mut node)?;
    if spec.unschedulable == on {
        writeln!(ctx.out, "node/{name} already {word}")?;
        return Ok(());
    }
    spec.unschedulable = on;
    store(ctx, node).await?;
    writeln!(ctx.out, "node/{name} {word}")?;
    Ok(())
}

/// Runs `bosun cordon`.
pub async fn cordon(ctx: &mut Ctx<'_>, args: CordonArgs) -> anyhow::Result<i32> {
    set_unschedulable(ctx, &args.node, true).await?;
    Ok(0)
}

/// Runs `bosun uncordon`.
pub async fn uncordon(ctx: &mut Ctx<'_>, args: CordonArgs) -> anyhow::Result<i32> {
    set_unschedulable(ctx, &args.node, false).await?;
    Ok(0)
}

/// What drain does with the pods of a node.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DrainPlan {
    /// `namespace/name` of the pods to evict.
    pub evict: Vec<String>,
    /// Warnings to print (`Warning: ignoring DaemonSet-managed Pods: ...`).
    pub warnings: Vec<String>,
    /// Reasons the drain cannot go on (kubectl refuses the whole node).
    pub errors: Vec<String>,
}

/// kubectl's drain filters: finished pods always go; DaemonSet pods need
/// `--ignore-daemonsets` (and stay); pods without a controller need `--force`.
pub fn plan_drain(pods: &[v1::Pod], ignore_daemonsets: bool, force: bool) -> DrainPlan {
    let mut plan = DrainPlan::default();
    let (mut ds, mut bare) = (Vec::new(), Vec::new());
    for p in pods {
        let Some(m) = &p.metadata else { continue };
        let id = format!("{}/{}", m.namespace, m.name);
        let phase = p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
        let controller = m
            .owner_references
            .iter()
            .find(|r| r.controller == Some(true));
        if bosun_api::object::phase_finished(phase) || !m.deletion_timestamp.is_empty() {
            plan.evict.push(id);
        } else if controller.is_some_and(|c| c.kind == "DaemonSet") {
            ds.push(id);
        } else if controller.is_none() {
            bare.push(id.clone());
            if force {
                plan.evict.push(id);
            }
        } else {
            plan.evict.push(id);
        }
    }
    if !ds.is_empty() {
        if ignore_daemonsets {
            plan.warnings.push(format!(
                "ignoring DaemonSet-managed Pods: {}",
                ds.join(", ")
            ));
        } else {
            plan.errors.push(format!(
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {}",
                ds.join(", ")
            ));
        }
    }
    if !bare.is_empty() {
        if force {
            plan.warnings.push(format!(
                "deleting Pods that declare no controller: {}",
                bare.join(", ")
            ));
        } else {
            plan.errors.push(format!(
                "cannot delete Pods that declare no controller (use --force to override): {}",
                bare.join(", ")
            ));
        }
    }
    plan
}

/// Runs `bosun drain`: cordon, then evict every pod on the node and wait until gone.
pub async fn drain(ctx: &mut Ctx<'_>, args: DrainArgs) -> anyhow::Result<i32> {
    let name = args.node.clone();
    set_unschedulable(ctx, &name, true).await?;
    let mut client = ctx.client().await?;
    let pods_info = KindInfo::of(Kind::Pod).ok_or_else(|| anyhow::anyhow!("no pod kind"))?;
    let list = client
        .list(ListRequest {
            shards: None,
            kind: Kind::Pod as i32,
            namespace: String::new(),
            label_selector: String::new(),
            field_selector: format!("spec.nodeName={name}"),
        })
        .await
        .map_err(|s| ctx.status_error(&s, Some(pods_info), ""))?
        .into_inner();
    let pods: Vec<v1::Pod> = list
        .items
        .into_iter()
        .filter_map(|o| o.into_pod())
        .collect();
    let plan = plan_drain(&pods, args.ignore_daemonsets, args.force);
    if !plan.errors.is_empty() {
        let errs = plan.errors.join(", ");
        writeln!(
            ctx.err,
            "error: unable to drain node \"{name}\" due to error: [{errs}], continuing command...\nThere are pending nodes to be drained:\n {name}"
        )?;
        for e in &plan.errors {
            writeln!(ctx.err, "{e}")?;
        }
        return Ok(1);
    }
    for w in &plan.warnings {
        writeln!(ctx.err, "Warning: {w}")?;
    }
    for id in &plan.evict {
        let (ns, pod) = id.split_once('/').unwrap_or(("default", id));
        writeln!(ctx.out, "evicting pod {id}")?;
        let r = client
            .delete(DeleteRequest {
                kind: Kind::Pod as i32,
                namespace: ns.into(),
                name: pod.into(),
                preconditions: None,
                propagation_policy: String::new(),
                grace_period_seconds: (args.grace_period >= 0).then_some(args.grace_period),
            })
            .await;
        match r {
            Ok(_) => {}
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Err(ctx.status_error(&s, Some(pods_info), pod)),
        }
    }
    let deadline = (!args.timeout.is_zero()).then(|| tokio::time::Instant::now() + args.timeout);
    for id in &plan.evict {
        let (ns, pod) = id.split_once('/').unwrap_or(("default", id));
        loop {
            let r = client
                .get(GetRequest {
                    kind: Kind::Pod as i32,
                    namespace: ns.into(),
                    name: pod.into(),
                })
                .await;
            match r {
                Err(s) if s.code() == Code::NotFound => break,
                Err(s) => return Err(ctx.status_error(&s, Some(pods_info), pod)),
                Ok(_) => {}
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                writeln!(
                    ctx.err,
                    "error: unable to drain node \"{name}\" due to error: global timeout reached: {}s, continuing command...\nThere are pending nodes to be drained:\n {name}",
                    args.timeout.as_secs()
                )?;
                return Ok(1);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        writeln!(ctx.out, "pod/{pod} evicted")?;
    }
    writeln!(ctx.out, "node/{name} drained")?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(k: &str, v: &str, e: &str) -> Taint {
        Taint {
            key: k.into(),
            value: v.into(),
            effect: e.into(),
            time_added: String::new(),
        }
    }

    #[test]
    fn taint_specs_parse_like_kubectl() {
        let cases: &[(&str, Result<TaintChange, &str>)] = &[
            (
                "a=b:NoSchedule",
                Ok(TaintChange::Add(taint("a", "b", "NoSchedule"))),
            ),
            (
                "a:NoExecute",
                Ok(TaintChange::Add(taint("a", "", "NoExecute"))),
            ),
            (
                "a:NoSchedule-",
                Ok(TaintChange::Remove {
                    key: "a".into(),
                    effect: Some("NoSchedule".into()),
                }),
            ),
            (
                "a-",
                Ok(TaintChange::Remove {
                    key: "a".into(),
                    effect: None,
                }),
            ),
            (
                "a=b:Sometimes",
                Err("invalid taint effect: Sometimes, unsupported taint effect"),
            ),
            ("a=b", Err("invalid taint spec: a=b, unknown taint spec")),
        ];
        for (spec, want) in cases {
            match (parse_taint(spec), want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{spec}"),
                (Err(got), Err(want)) => assert_eq!(got.to_string(), *want, "{spec}"),
                (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn taints_are_added_replaced_and_removed_with_kubectls_words() {
        let now = "2026-01-01T00:00:00Z";
        let p = |s: &str| parse_taint(s).unwrap();
        let base = vec![taint("a", "1", "NoSchedule")];
        type Case<'a> = (
            &'a str,
            Vec<TaintChange>,
            bool,
            Result<(&'a str, Vec<Taint>), &'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "add",
                vec![p("b=2:NoSchedule")],
                false,
                Ok((
                    "tainted",
                    vec![taint("a", "1", "NoSchedule"), taint("b", "2", "NoSchedule")],
                )),
            ),
            (
                "clash",
                vec![p("a=2:NoSchedule")],
                false,
                Err("node n1 already has a taint(s) with same effect(s) and --overwrite is false"),
            ),
            (
                "overwrite",
                vec![p("a=2:NoSchedule")],
                true,
                Ok(("modified", vec![taint("a", "2", "NoSchedule")])),
            ),
            (
                "remove by key",
                vec![p("a-")],
                false,
                Ok(("untainted", vec![])),
            ),
            (
                "remove by key and effect",
                vec![p("a:NoSchedule-")],
                false,
                Ok(("untainted", vec![])),
            ),
            (
                "remove missing",
                vec![p("z-")],
                false,
                Err("taint \"z\" not found"),
            ),
            (
                "remove other effect",
                vec![p("a:NoExecute-")],
                false,
                Err("taint \"a:NoExecute\" not found"),
            ),
            (
                "NoExecute is stamped",
                vec![p("x:NoExecute")],
                false,
                Ok((
                    "tainted",
                    vec![
                        taint("a", "1", "NoSchedule"),
                        Taint {
                            time_added: now.into(),
                            ..taint("x", "", "NoExecute")
                        },
                    ],
                )),
            ),
        ];
        for (name, changes, overwrite, want) in cases {
            let mut taints = base.clone();
            let got = apply_taints("n1", &mut taints, &changes, overwrite, now);
            match want {
                Ok((word, after)) => {
                    assert_eq!(got.unwrap(), word, "{name}");
                    assert_eq!(taints, after, "{name}");
                }
                Err(msg) => assert_eq!(got.unwrap_err().to_string(), msg, "{name}"),
            }
        }
    }

    fn pod(name: &str, owner: Option<&str>, phase: &str) -> v1::Pod {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                owner_references: owner
                    .map(|k| v1::OwnerReference {
                        kind: k.into(),
                        name: "o".into(),
                        controller: Some(true),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            status: Some(v1::PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn drain_refuses_daemonset_and_bare_pods_unless_told() {
        let pods = vec![
            pod("job-1", Some("Job"), "Running"),
            pod("ds-1", Some("DaemonSet"), "Running"),
            pod("bare", None, "Running"),
            pod("done", None, "Succeeded"),
        ];
        let strict = plan_drain(&pods, false, false);
        assert_eq!(strict.errors, vec![
            "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/ds-1".to_string(),
            "cannot delete Pods that declare no controller (use --force to override): default/bare".to_string(),
        ]);
        let lenient = plan_drain(&pods, true, true);
        assert!(lenient.errors.is_empty());
        assert_eq!(
            lenient.evict,
            vec!["default/job-1", "default/bare", "default/done"]
        );
        assert_eq!(
            lenient.warnings,
            vec![
                "ignoring DaemonSet-managed Pods: default/ds-1".to_string(),
                "deleting Pods that declare no controller: default/bare".to_string(),
            ]
        );
    }
}
