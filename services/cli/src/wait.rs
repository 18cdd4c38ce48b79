//! `bosun wait --for=condition=X[=value] KIND/NAME --timeout=30s` and `--for=delete`, as
//! kubectl does.

use std::time::Duration;

use anyhow::bail;
use bosun_api::KindInfo;
use bosun_api::v1::GetRequest;
use clap::Args;
use serde_json::Value;
use tonic::Code;

use crate::Ctx;
use crate::delete::parse_duration;
use crate::label::object_ref;

/// `bosun wait` flags.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// `KIND/NAME...` or `KIND NAME...`.
    #[arg(required = true)]
    pub resource: Vec<String>,
    /// `condition=Complete`, `condition=Ready=false`, or `delete`.
    #[arg(long = "for", required = true)]
    pub for_: String,
    /// How long to wait (`30s`, `5m`); 0 checks once.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// What to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    Delete,
    /// A `status.conditions` entry of this type with this status (case-insensitive).
    Condition {
        kind: String,
        status: String,
    },
}

/// Parses `--for`.
pub fn parse_for(s: &str) -> anyhow::Result<WaitFor> {
    if s.eq_ignore_ascii_case("delete") {
        return Ok(WaitFor::Delete);
    }
    if let Some(rest) = s.strip_prefix("condition=") {
        let (kind, status) = rest.split_once('=').unwrap_or((rest, "true"));
        if kind.is_empty() {
            bail!("unrecognized condition: {s:?}");
        }
        return Ok(WaitFor::Condition {
            kind: kind.to_string(),
            status: status.to_string(),
        });
    }
    bail!("unrecognized condition: {s:?}; use --for=condition=NAME[=VALUE] or --for=delete")
}

/// Whether the object (as JSON) has condition `kind` with `status` (both case-insensitive).
pub fn condition_met(obj: &Value, kind: &str, status: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conds| {
            conds.iter().any(|c| {
                // kubectl compares both case-insensitively (`condition=complete` works).
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case(kind))
                    && c.get("status")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case(status))
            })
        })
}

/// Runs `bosun wait`.
pub async fn wait(ctx: &mut Ctx<'_>, args: WaitArgs) -> anyhow::Result<i32> {
    let what = parse_for(&args.for_)?;
    let targets = crate::parse_targets(&args.resource)?;
    let deadline = tokio::time::Instant::now() + args.timeout;
    let ns = ctx.namespace();
    let mut code = 0;
    for (info, names) in targets {
        if names.is_empty() {
            bail!("resource name may not be empty");
        }
        for name in names {
            if !wait_one(ctx, info, &ns, &name, &what, deadline).await? {
                writeln!(
                    ctx.err,
                    "error: timed out waiting for the condition on {}/{name}",
                    info.plural
                )?;
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Polls one object until the wait is over (true) or the deadline passes (false).
async fn wait_one(
    ctx: &mut Ctx<'_>,
    info: &'static KindInfo,
    namespace: &str,
    name: &str,
    what: &WaitFor,
    deadline: tokio::time::Instant,
) -> anyhow::Result<bool> {
    let mut client = ctx.client().await?;
    let ns = if info.namespaced { namespace } else { "" };
    loop {
        let got = client
            .get(GetRequest {
                kind: info.kind as i32,
                namespace: ns.to_string(),
                name: name.to_string(),
            })
            .await;
        let done = match (got, what) {
            (Err(s), WaitFor::Delete) if s.code() == Code::NotFound => true,
            (Err(s), _) => return Err(ctx.status_error(&s, Some(info), name)),
            (Ok(_), WaitFor::Delete) => false,
            (Ok(resp), WaitFor::Condition { kind, status }) => {
                let obj = resp.into_inner().object;
                let value = crate::output::value_of(&obj.into_iter().collect::<Vec<_>>(), true);
                condition_met(&value, kind, status)
            }
        };
        if done {
            writeln!(ctx.out, "{} condition met", object_ref(info, name))?;
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn for_flags_parse_like_kubectl() {
        assert_eq!(parse_for("delete").unwrap(), WaitFor::Delete);
        assert_eq!(
            parse_for("condition=Complete").unwrap(),
            WaitFor::Condition {
                kind: "Complete".into(),
                status: "true".into()
            }
        );
        assert_eq!(
            parse_for("condition=Ready=false").unwrap(),
            WaitFor::Condition {
                kind: "Ready".into(),
                status: "false".into()
            }
        );
        assert!(parse_for("jsonpath={.x}").is_err());
        assert!(parse_for("condition=").is_err());
    }

    #[test]
    fn conditions_match_by_type_and_status() {
        let job = json!({"status": {"conditions": [
            {"type": "Complete", "status": "True"},
            {"type": "Failed", "status": "False"},
        ]}});
        assert!(condition_met(&job, "Complete", "true"));
        assert!(condition_met(&job, "complete", "TRUE"));
        assert!(condition_met(&job, "Failed", "False"));
        assert!(!condition_met(&job, "Failed", "true"));
        assert!(!condition_met(&job, "Suspended", "true"));
        assert!(!condition_met(&json!({"status": {}}), "Complete", "true"));
    }
}
