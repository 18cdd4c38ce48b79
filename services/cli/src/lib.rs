//! `bosun`, the kubectl-like command line: `apply`, `create`, `get`, `describe`, `delete`,
//! `scale`, `label`, `patch`, `rollout` and the node verbs against the broker, and `up` to run the whole plane in one
//! process.
//!
//! The binary is a thin wrapper over [`run`], which takes the arguments and the two output
//! streams so every command can be tested in-process. What gets printed is decided by pure
//! functions ([`printers`], [`format`], [`jsonpath`], [`apply::merge_for_apply`]) with table
//! tests; the command modules only fetch, call those, and write.

pub mod apply;
pub mod controllers;
pub mod create;
pub mod delete;
pub mod describe;
pub mod errors;
pub mod format;
pub mod get;
pub mod health;
pub mod jsonpath;
pub mod label;
pub mod logs;
pub mod nodes;
pub mod output;
pub mod patch;
pub mod printers;
pub mod rollout;
pub mod scale;
pub mod sources;
pub mod up;
pub mod wait;

use std::io::Write;

use anyhow::Context as _;
use bosun_api::KindInfo;
use bosun_runtime::client::{self, BrokerClient, ClientError};
use clap::{Parser, Subcommand};
use tracing::Instrument;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "bosun",
    version,
    about = "bosun: Jobs, CronJobs and DaemonSets, the kubectl way"
)]
pub struct Cli {
    /// The broker's address.
    #[arg(
        long,
        global = true,
        env = "BOSUN_SERVER",
        default_value = bosun_api::vocab::DEFAULT_SERVER
    )]
    pub server: String,
    /// The namespace to work in (default: `default`).
    #[arg(short = 'n', long, global = true, env = "BOSUN_NAMESPACE")]
    pub namespace: Option<String>,
    /// Every namespace (get, describe, delete with -l/--all).
    #[arg(short = 'A', long, global = true, env = "BOSUN_ALL_NAMESPACES")]
    pub all_namespaces: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update objects from manifests.
    Apply(apply::ApplyArgs),
    /// Create objects from manifests (an existing object is an error), or a Job from a
    /// CronJob (`create job NAME --from=cronjob/CJ`).
    Create(create::CreateArgs),
    /// List objects, or show some by name.
    Get(get::GetArgs),
    /// Show an object in detail, with its events.
    Describe(describe::DescribeArgs),
    /// Delete objects by name, label, file or all of them.
    Delete(delete::DeleteArgs),
    /// Run etcd, the broker and every service in this process.
    Up(up::UpArgs),
    /// Add, change (--overwrite) or remove (`key-`) labels.
    Label(label::LabelArgs),
    /// Add or remove node taints (`key=value:Effect`, `key:Effect-`, `key-`).
    Taint(nodes::TaintArgs),
    /// Mark a node unschedulable.
    Cordon(nodes::CordonArgs),
    /// Mark a node schedulable again.
    Uncordon(nodes::CordonArgs),
    /// Cordon a node and evict its pods.
    Drain(nodes::DrainArgs),
    /// Print the logs of a pod's container, or of every pod of a job or daemonset.
    Logs(logs::LogsArgs),
    /// Wait until objects meet a condition, or are deleted.
    Wait(wait::WaitArgs),
    /// Set how many pods of a Job run at once (its spec.parallelism), as `kubectl scale job`.
    Scale(scale::ScaleArgs),
    /// Change an object with a JSON merge patch (`--type merge`) or a JSON patch (`--type json`).
    Patch(patch::PatchArgs),
    /// Follow, list, undo, restart, pause or resume a DaemonSet's rollout.
    Rollout(rollout::RolloutArgs),
    /// Probe a service's metrics endpoint (the compose stack's health check): exit 0 when it
    /// answers 2xx.
    Health(health::HealthArgs),
}

/// What every command needs: flags, the output streams and a lazily connected broker client.
pub struct Ctx<'a> {
    pub server: String,
    /// `-n`, if given.
    pub namespace_flag: Option<String>,
    pub all_namespaces: bool,
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
    client: Option<BrokerClient>,
}

impl Ctx<'_> {
    /// The namespace to use: `-n`, else `default`.
    pub fn namespace(&self) -> String {
        self.namespace_flag
            .clone()
            .unwrap_or_else(|| "default".to_string())
    }

    /// The namespace to list in: empty with `-A`.
    pub fn list_namespace(&self, info: &KindInfo) -> String {
        if self.all_namespaces || !info.namespaced {
            String::new()
        } else {
            self.namespace()
        }
    }

    /// The broker client, connected on first use.
    pub async fn client(&mut self) -> anyhow::Result<BrokerClient> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c = client::connect(&self.server).await.map_err(|e| match e {
            ClientError::Connect { .. } | ClientError::Unreachable { .. } => {
                anyhow::anyhow!(errors::unreachable(&self.server))
            }
            other => anyhow::Error::new(other),
        })?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// A broker error as kubectl prints it.
    pub fn status_error(
        &self,
        status: &tonic::Status,
        info: Option<&KindInfo>,
        name: &str,
    ) -> anyhow::Error {
        anyhow::anyhow!(errors::server_error(status, info, name, &self.server))
    }
}

/// Runs `bosun` with `args` (the first is the program name), writing to `out` and `err`;
/// returns the process exit code.
pub async fn run<I, T>(args: I, out: &mut (dyn Write + Send), err: &mut (dyn Write + Send)) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = write!(err, "{text}");
            } else {
                let _ = write!(out, "{text}");
            }
            return code;
        }
    };
    let mut ctx = Ctx {
        server: cli.server,
        namespace_flag: cli.namespace,
        all_namespaces: cli.all_namespaces,
        out,
        err,
        client: None,
    };
    let name = command_name(&cli.command);
    let span = tracing::info_span!("bosun", command = name);
    let result = async {
        match cli.command {
            Command::Apply(a) => apply::apply(&mut ctx, a, apply::Mode::Apply).await,
            Command::Create(a) => create::create(&mut ctx, a).await,
            Command::Get(a) => get::get(&mut ctx, a).await,
            Command::Describe(a) => describe::describe(&mut ctx, a).await,
            Command::Delete(a) => delete::delete(&mut ctx, a).await,
            Command::Up(a) => up::up(&mut ctx, a).await,
            Command::Label(a) => label::label(&mut ctx, a).await,
            Command::Taint(a) => nodes::taint(&mut ctx, a).await,
            Command::Cordon(a) => nodes::cordon(&mut ctx, a).await,
            Command::Uncordon(a) => nodes::uncordon(&mut ctx, a).await,
            Command::Drain(a) => nodes::drain(&mut ctx, a).await,
            Command::Logs(a) => logs::logs(&mut ctx, a).await,
            Command::Wait(a) => wait::wait(&mut ctx, a).await,
            Command::Scale(a) => scale::scale(&mut ctx, a).await,
            Command::Patch(a) => patch::patch(&mut ctx, a).await,
            Command::Rollout(a) => rollout::rollout(&mut ctx, a).await,
            Command::Health(a) => health::health(&mut ctx, a).await,
        }
    }
    .instrument(span)
    .await;
    let _ = ctx.out.flush();
    match result {
        Ok(code) => code,
        Err(e) => {
            report(ctx.err, &e);
            1
        }
    }
}

/// The log filter when `RUST_LOG` is unset, given the command line (program name first):
/// `up` runs services and logs their lifecycle (`info`); every other command is one-shot and
/// prints only warnings, while its span is still recorded, exported when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and carried to the broker as `traceparent`.
pub fn default_log_filter<I, T>(args: I) -> &'static str
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(Cli {
            command: Command::Up(_),
            ..
        }) => bosun_runtime::telemetry::SERVICE_DEFAULT_FILTER,
        _ => bosun_runtime::telemetry::CLI_DEFAULT_FILTER,
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Apply(_) => "apply",
        Command::Create(_) => "create",
        Command::Get(_) => "get",
        Command::Describe(_) => "describe",
        Command::Delete(_) => "delete",
        Command::Up(_) => "up",
        Command::Label(_) => "label",
        Command::Taint(_) => "taint",
        Command::Cordon(_) => "cordon",
        Command::Uncordon(_) => "uncordon",
        Command::Drain(_) => "drain",
        Command::Logs(_) => "logs",
        Command::Wait(_) => "wait",
        Command::Scale(_) => "scale",
        Command::Patch(_) => "patch",
        Command::Rollout(_) => "rollout",
        Command::Health(_) => "health",
    }
}

/// Prints an error the way kubectl does: server errors as they are, others after `error: `.
pub fn report(err: &mut dyn Write, e: &anyhow::Error) {
    let text = format!("{e:#}");
    if text.starts_with("Error from server") || text.starts_with("cannot reach the broker") {
        let _ = writeln!(err, "{text}");
    } else {
        let _ = writeln!(err, "error: {text}");
    }
}

/// Splits `get`/`describe`/`delete` positional words into `(kind, names)` groups: either
/// `KIND [NAME...]` or `KIND/NAME...` (kinds may differ).
pub fn parse_targets(words: &[String]) -> anyhow::Result<Vec<(&'static KindInfo, Vec<String>)>> {
    let Some(first) = words.first() else {
        anyhow::bail!(
            "you must specify the type of resource to get. Valid types: pods (po), nodes (no), jobs, cronjobs (cj), daemonsets (ds), events (ev), controllerrevisions"
        );
    };
    let lookup = |w: &str| {
        KindInfo::lookup(w)
            .with_context(|| format!("the server doesn't have a resource type \"{w}\""))
    };
    if first.contains('/') {
        let mut groups: Vec<(&'static KindInfo, Vec<String>)> = Vec::new();
        for w in words {
            let (k, n) = w.split_once('/').with_context(|| {
                format!("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'bosun get job/pi' instead of 'bosun get job pi'); got {w:?}")
            })?;
            let info = lookup(k)?;
            match groups.iter_mut().find(|(i, _)| i.kind == info.kind) {
                Some((_, names)) => names.push(n.to_string()),
                None => groups.push((info, vec![n.to_string()])),
            }
        }
        return Ok(groups);
    }
    let mut groups = Vec::new();
    for kind_word in first.split(',') {
        groups.push((lookup(kind_word)?, words[1..].to_vec()));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::v1::Kind;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn targets_accept_kind_and_names_or_kind_slash_name() {
        let g = parse_targets(&words("po a b")).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].0.kind, Kind::Pod);
        assert_eq!(g[0].1, vec!["a", "b"]);
        let g = parse_targets(&words("job/pi cj/hello job/e")).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].1, vec!["pi", "e"]);
        assert_eq!(g[1].0.kind, Kind::CronJob);
        let g = parse_targets(&words("jobs,ds")).unwrap();
        assert_eq!(g.len(), 2);
        assert!(parse_targets(&words("deployments")).is_err());
        assert!(parse_targets(&words("job/pi pod")).is_err());
        assert!(parse_targets(&[]).is_err());
    }

    #[test]
    fn only_up_logs_at_info_by_default() {
        assert_eq!(default_log_filter(["bosun", "up"]), "info");
        assert_eq!(
            default_log_filter(["bosun", "--server", "http://x:1", "up", "-f", "a.yaml"]),
            "info"
        );
        for line in [
            &["bosun", "get", "jobs"][..],
            &["bosun", "get", "job", "up"],
            &["bosun", "--help"],
            &["bosun"],
        ] {
            assert_eq!(default_log_filter(line.iter().copied()), "warn", "{line:?}");
        }
    }

    #[tokio::test]
    async fn help_goes_to_stdout_with_exit_code_zero() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(["bosun", "--help"], &mut out, &mut err).await;
        assert_eq!(code, 0);
        assert!(String::from_utf8_lossy(&out).contains("apply"));
    }

    #[tokio::test]
    async fn an_unreachable_broker_says_what_to_do() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(
            ["bosun", "--server", "http://127.0.0.1:1", "get", "jobs"],
            &mut out,
            &mut err,
        )
        .await;
        assert_eq!(code, 1);
        let err = String::from_utf8_lossy(&err);
        assert!(
            err.contains("cannot reach the broker at http://127.0.0.1:1")
                && err.contains("bosun up")
                && err.contains("BOSUN_SERVER"),
            "{err}"
        );
    }
}
