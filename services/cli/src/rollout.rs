//! `bosun rollout status|history|undo|restart|pause|resume ds/NAME`: kubectl's rollout verbs
//! for DaemonSets, with kubectl's messages. `pause` and `resume` are bosun's extension
//! (Kubernetes has them for Deployments only): they set and remove
//! [`PAUSED_ANNOTATION`] on the DaemonSet.
//!
//! What is printed and what is written are decided by pure functions ([`status_view`],
//! [`history_table`], [`revision_to_undo`], [`pause`], [`resume`], [`restart`], [`undo`]),
//! table-tested below. Writes are read-modify-writes guarded by the DaemonSet's
//! resourceVersion: a write that lost a race is redone on a fresh read (up to
//! [`CONFLICT_RETRIES`] times) and a conflict that persists is reported, so nothing another
//! writer did is overwritten. `status` follows the broker's watch; it never polls.

use std::time::Duration;

use bosun_api::KindInfo;
use bosun_api::v1::{
    self, GetRequest, Kind, ListRequest, Object, UpdateRequest, object::Object as O,
};
use bosun_api::vocab::daemonset::{
    CHANGE_CAUSE_ANNOTATION, ON_DELETE, PAUSED_ANNOTATION, RESTARTED_AT_ANNOTATION, ROLLING_UPDATE,
};
use bosun_runtime::client::{Broker, BrokerClient, ClientError, Selector, WatchEvent};
use clap::{Args, Subcommand};
use tonic::{Code, Status};

use crate::Ctx;
use crate::delete::parse_duration;

/// How many times a write that lost a race is redone on a fresh read.
pub const CONFLICT_RETRIES: usize = 5;

/// `bosun rollout` verbs.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: RolloutCommand,
}

/// The rollout verbs (DaemonSets: `ds/NAME`, `ds NAME`, `daemonset/NAME`,
/// `daemonsets.apps/NAME`).
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show the rollout's progress and wait until it is done.
    Status(StatusArgs),
    /// List the DaemonSet's revisions, or show one's pod template (--revision).
    History(HistoryArgs),
    /// Roll back to the previous revision, or to --to-revision.
    Undo(UndoArgs),
    /// Replace every pod (sets kubectl.kubernetes.io/restartedAt on the pod template).
    Restart(TargetArgs),
    /// Stop the rollout where it is (bosun's extension: an annotation on the DaemonSet).
    Pause(TargetArgs),
    /// Let a paused rollout continue (bosun's extension).
    Resume(TargetArgs),
}

/// One DaemonSet.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// `ds/NAME` or `ds NAME`.
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
}

/// `bosun rollout status` flags.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// `ds/NAME` or `ds NAME`.
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// Keep watching until the rollout is done (`--watch=false`: print the status once).
    #[arg(short = 'w', long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub watch: bool,
    /// How long to wait (`30s`, `5m`); 0 waits for ever.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Fail unless the running revision is this one (0: any).
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

/// `bosun rollout history` flags.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// `ds/NAME` or `ds NAME`.
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// Show this revision's pod template.
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

/// `bosun rollout undo` flags.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// `ds/NAME` or `ds NAME`.
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// The revision to go back to (0: the one before the newest).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub to_revision: i64,
}

/// Why a rollout verb refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("{0}: rollouts are for daemonsets only (ds/NAME); jobs and cronjobs have no rollouts")]
    NotADaemonSet(String),
    #[error("{0}")]
    BadTarget(String),
    #[error(
        "the server doesn't have a resource type \"{0}\" (rollouts are for daemonsets: ds/NAME)"
    )]
    UnknownKind(String),
    #[error("rollout status is only available for {ROLLING_UPDATE} strategy type")]
    NotRollingUpdate,
    #[error("daemonsets.apps \"{0}\" is already paused")]
    AlreadyPaused(String),
    #[error("daemonsets.apps \"{0}\" is not paused")]
    NotPaused(String),
    #[error(
        "daemonsets.apps \"{0}\" can't restart paused daemon set (run rollout resume first: bosun rollout resume ds/{0})"
    )]
    RestartPaused(String),
    #[error(
        "failed to create patch for {0}: if restart has already been triggered within the past second, please wait before attempting to trigger another"
    )]
    RestartTooSoon(String),
    #[error("no last revision to roll back to")]
    NoLastRevision,
    #[error("unable to find specified revision {0} in history")]
    RevisionNotFound(i64),
    #[error("unable to find the specified revision")]
    HistoryRevisionNotFound,
    #[error("desired revision ({desired}) is different from the running revision ({running})")]
    RevisionMismatch { desired: i64, running: String },
    #[error(
        "daemonset.apps/{name} kept changing while it was written ({attempts} conflicting writes in a row; last: {last}); nothing was changed: try again"
    )]
    Conflict {
        name: String,
        attempts: usize,
        last: String,
    },
    #[error("object has been deleted")]
    Deleted,
    #[error("timed out waiting for the condition")]
    TimedOut,
    #[error("the broker answered with an object that is not a DaemonSet")]
    NotADaemonSetObject,
    /// A broker error, as kubectl prints it (made by [`Ctx::status_error`]).
    #[error("{0}")]
    Server(String),
}

/// The DaemonSet named by `words` (`ds/NAME`, `ds NAME`, `daemonset/NAME`,
/// `daemonsets.apps/NAME`); any other kind is refused.
pub fn parse_target(words: &[String]) -> Result<String, RolloutError> {
    let (kind, name) = match words {
        [one] => match one.split_once('/') {
            Some((k, n)) => (k, n),
            None => {
                return Err(RolloutError::BadTarget(format!(
                    "{one:?}: name the daemon set as ds/NAME or ds NAME"
                )));
            }
        },
        [k, n] if !k.contains('/') && !n.contains('/') => (k.as_str(), n.as_str()),
        _ => {
            return Err(RolloutError::BadTarget(format!(
                "one daemon set at a time, as ds/NAME or ds NAME; got {}",
                words.join(" ")
            )));
        }
    };
    let info = KindInfo::lookup(kind).ok_or_else(|| RolloutError::UnknownKind(kind.into()))?;
    if info.kind != Kind::DaemonSet {
        return Err(RolloutError::NotADaemonSet(crate::errors::resource_plural(
            info,
        )));
    }
    if name.is_empty() {
        return Err(RolloutError::BadTarget(
            "resource name may not be empty".into(),
        ));
    }
    Ok(name.to_string())
}

/// Whether the DaemonSet's rollout is paused (bosun's [`PAUSED_ANNOTATION`] is `"true"`).
pub fn is_paused(ds: &v1::DaemonSet) -> bool {
    ds.metadata
        .as_ref()
        .and_then(|m| m.annotations.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// What `rollout status` says about a DaemonSet, and whether the rollout is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusView {
    /// One line, kubectl's words (with bosun's paused line when paused).
    pub message: String,
    pub done: bool,
}

/// kubectl's DaemonSet status viewer: done when the controller saw the current generation
/// and every desired node has an updated, available pod. OnDelete has no rollout to follow
/// (kubectl's error). A paused, unfinished rollout says so (bosun's extension).
pub fn status_view(ds: &v1::DaemonSet) -> Result<StatusView, RolloutError> {
    let meta = ds.metadata.clone().unwrap_or_default();
    let spec = ds.spec.clone().unwrap_or_default();
    let st = ds.status.clone().unwrap_or_default();
    let strategy = spec
        .update_strategy
        .as_ref()
        .map_or(ROLLING_UPDATE, |u| u.r#type.as_str());
    if strategy == ON_DELETE || (strategy != ROLLING_UPDATE && !strategy.is_empty()) {
        return Err(RolloutError::NotRollingUpdate);
    }
    let name = &meta.name;
    let waiting = |what: String| StatusView {
        message: if is_paused(ds) {
            format!(
                "daemon set {name:?} rollout is paused: {what} (bosun rollout resume ds/{name} lets it continue)"
            )
        } else {
            format!("Waiting for daemon set {name:?} rollout to finish: {what}...")
        },
        done: false,
    };
    if meta.generation > st.observed_generation {
        return Ok(StatusView {
            message: "Waiting for daemon set spec update to be observed...".into(),
            done: false,
        });
    }
    let desired = st.desired_number_scheduled;
    if st.updated_number_scheduled < desired {
        return Ok(waiting(format!(
            "{} out of {desired} new pods have been updated",
            st.updated_number_scheduled
        )));
    }
    if st.number_available < desired {
        return Ok(waiting(format!(
            "{} of {desired} updated pods are available",
            st.number_available
        )));
    }
    Ok(StatusView {
        message: format!("daemon set {name:?} successfully rolled out"),
        done: true,
    })
}

fn template_of(r: &v1::ControllerRevision) -> Option<&v1::PodTemplateSpec> {
    r.data.as_ref().and_then(|d| d.template.as_ref())
}

/// The running revision: the newest revision whose template is the DaemonSet's.
pub fn current_revision(ds: &v1::DaemonSet, history: &[v1::ControllerRevision]) -> Option<i64> {
    let template = ds.spec.as_ref().and_then(|s| s.template.as_ref());
    history
        .iter()
        .filter(|r| template.is_some() && template_of(r) == template)
        .map(|r| r.revision)
        .max()
}

/// kubectl's history table (REVISION, CHANGE-CAUSE from `kubernetes.io/change-cause`),
/// oldest first; "No rollout history found." without revisions.
pub fn history_table(history: &[v1::ControllerRevision]) -> String {
    if history.is_empty() {
        return "No rollout history found.\n".into();
    }
    let mut sorted: Vec<&v1::ControllerRevision> = history.iter().collect();
    sorted.sort_by_key(|r| r.revision);
    // kubectl assumes revisions do not repeat; when they do, the last listed wins.
    sorted.dedup_by_key(|r| r.revision);
    let mut rows = vec![("REVISION".to_string(), "CHANGE-CAUSE".to_string())];
    for r in sorted {
        let cause = r
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.get(CHANGE_CAUSE_ANNOTATION))
            .filter(|c| !c.is_empty())
            .cloned()
            .unwrap_or_else(|| "<none>".into());
        rows.push((r.revision.to_string(), cause));
    }
    // kubectl's tabwriter here pads with two spaces (`get` tables have three).
    let width = rows.iter().map(|(r, _)| r.len()).max().unwrap_or(0) + 2;
    rows.iter()
        .map(|(r, c)| format!("{r:<width$}{c}\n"))
        .collect()
}

/// The revision `undo --to-revision=to` goes back to: `to`, or with 0 the one before the
/// newest (kubectl's rule).
pub fn revision_to_undo(
    history: &[v1::ControllerRevision],
    to: i64,
) -> Result<&v1::ControllerRevision, RolloutError> {
    if to < 0 {
        return Err(RolloutError::RevisionNotFound(to));
    }
    if to == 0 {
        if history.len() <= 1 {
            return Err(RolloutError::NoLastRevision);
        }
        let mut sorted: Vec<&v1::ControllerRevision> = history.iter().collect();
        sorted.sort_by_key(|r| r.revision);
        return Ok(sorted[sorted.len() - 2]);
    }
    history
        .iter()
        .find(|r| r.revision == to)
        .ok_or(RolloutError::RevisionNotFound(to))
}

/// What a write verb did to the DaemonSet it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Write it; print `daemonset.apps/NAME <the text>`.
    Write(String),
    /// Nothing to write; print `daemonset.apps/NAME <the text>`.
    Skip(String),
}

/// `rollout pause`: sets [`PAUSED_ANNOTATION`].
pub fn pause(ds: &mut v1::DaemonSet) -> Result<Change, RolloutError> {
    let meta = ds.metadata.get_or_insert_default();
    if meta
        .annotations
        .get(PAUSED_ANNOTATION)
        .is_some_and(|v| v == "true")
    {
        return Err(RolloutError::AlreadyPaused(meta.name.clone()));
    }
    meta.annotations
        .insert(PAUSED_ANNOTATION.into(), "true".into());
    Ok(Change::Write("paused".into()))
}

/// `rollout resume`: removes [`PAUSED_ANNOTATION`].
pub fn resume(ds: &mut v1::DaemonSet) -> Result<Change, RolloutError> {
    if !is_paused(ds) {
        let name = ds
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        return Err(RolloutError::NotPaused(name));
    }
    ds.metadata
        .get_or_insert_default()
        .annotations
        .remove(PAUSED_ANNOTATION);
    Ok(Change::Write("resumed".into()))
}

/// `rollout restart` at `now` (RFC 3339): sets [`RESTARTED_AT_ANNOTATION`] on the pod
/// template, so every pod is replaced; a paused DaemonSet is refused, as kubectl refuses a
/// paused Deployment.
pub fn restart(ds: &mut v1::DaemonSet, now: &str) -> Result<Change, RolloutError> {
    let name = ds
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    if is_paused(ds) {
        return Err(RolloutError::RestartPaused(name));
    }
    let template = ds
        .spec
        .get_or_insert_default()
        .template
        .get_or_insert_default();
    let annotations = &mut template.metadata.get_or_insert_default().annotations;
    if annotations
        .get(RESTARTED_AT_ANNOTATION)
        .is_some_and(|v| v == now)
    {
        return Err(RolloutError::RestartTooSoon(name));
    }
    annotations.insert(RESTARTED_AT_ANNOTATION.into(), now.into());
    Ok(Change::Write("restarted".into()))
}

/// `rollout undo --to-revision=to`: the chosen revision's template written to the
/// DaemonSet, or nothing when the DaemonSet already runs it.
pub fn undo(
    ds: &mut v1::DaemonSet,
    history: &[v1::ControllerRevision],
    to: i64,
) -> Result<Change, RolloutError> {
    let target = revision_to_undo(history, to)?;
    let template = template_of(target).cloned().unwrap_or_default();
    let spec = ds.spec.get_or_insert_default();
    if spec.template.as_ref() == Some(&template) {
        return Ok(Change::Skip(format!(
            "skipped rollback (current template already matches revision {})",
            target.revision
        )));
    }
    spec.template = Some(template);
    Ok(Change::Write("rolled back".into()))
}

/// What the write verbs need from the broker: one DaemonSet, its revisions, a conditional
/// write.
pub(crate) trait DsStore {
    async fn get(&mut self, namespace: &str, name: &str) -> Result<Object, Status>;
    async fn revisions(
        &mut self,
        ds: &v1::DaemonSet,
    ) -> Result<Vec<v1::ControllerRevision>, Status>;
    async fn update(&mut self, obj: Object) -> Result<Object, Status>;
}

impl DsStore for BrokerClient {
    async fn get(&mut self, namespace: &str, name: &str) -> Result<Object, Status> {
        BrokerClient::get(
            self,
            GetRequest {
                kind: Kind::DaemonSet as i32,
                namespace: namespace.into(),
                name: name.into(),
            },
        )
        .await?
        .into_inner()
        .object
        .ok_or_else(|| Status::internal("the broker sent no object"))
    }

    async fn revisions(
        &mut self,
        ds: &v1::DaemonSet,
    ) -> Result<Vec<v1::ControllerRevision>, Status> {
        let meta = ds.metadata.clone().unwrap_or_default();
        let selector = ds
            .spec
            .as_ref()
            .map(|s| crate::format::format_selector(s.selector.as_ref()))
            .filter(|s| s != "<none>")
            .unwrap_or_default();
        let items = BrokerClient::list(
            self,
            ListRequest {
                shards: None,
                kind: Kind::ControllerRevision as i32,
                namespace: meta.namespace.clone(),
                label_selector: selector,
                field_selector: String::new(),
            },
        )
        .await?
        .into_inner()
        .items;
        Ok(owned_revisions(&meta.uid, items))
    }

    async fn update(&mut self, obj: Object) -> Result<Object, Status> {
        BrokerClient::update(
            self,
            UpdateRequest {
                object: Some(obj),
                dry_run: false,
            },
        )
        .await?
        .into_inner()
        .object
        .ok_or_else(|| Status::internal("the broker sent no object"))
    }
}

/// The revisions among `items` whose controller is the DaemonSet with `uid` (kubectl's
/// `IsControlledBy`).
pub fn owned_revisions(uid: &str, items: Vec<Object>) -> Vec<v1::ControllerRevision> {
    items
        .into_iter()
        .filter(|o| {
            o.controller_ref()
                .is_some_and(|r| !uid.is_empty() && r.uid == uid)
        })
        .filter_map(|o| match o.object {
            Some(O::ControllerRevision(r)) => Some(*r),
            _ => None,
        })
        .collect()
}

/// Why [`write_daemonset`] did not write: the verb refused, or the broker did.
#[derive(Debug)]
pub(crate) enum WriteError {
    Refused(RolloutError),
    Server(Status),
    Conflict { attempts: usize, last: Status },
}

/// Reads the DaemonSet (and, with `with_history`, its revisions), lets `change` decide and
/// edit, and writes it back guarded by its resourceVersion; a lost race is redone on a fresh
/// read up to [`CONFLICT_RETRIES`] times.
pub(crate) async fn write_daemonset<S, F>(
    store: &mut S,
    namespace: &str,
    name: &str,
    with_history: bool,
    mut change: F,
) -> Result<Change, WriteError>
where
    S: DsStore,
    F: FnMut(&mut v1::DaemonSet, &[v1::ControllerRevision]) -> Result<Change, RolloutError>,
{
    let mut last = None;
    for attempt in 1..=CONFLICT_RETRIES {
        let mut obj = store
            .get(namespace, name)
            .await
            .map_err(WriteError::Server)?;
        let Some(O::DaemonSet(ds)) = obj.object.as_mut() else {
            return Err(WriteError::Refused(RolloutError::NotADaemonSetObject));
        };
        let history = if with_history {
            store.revisions(ds).await.map_err(WriteError::Server)?
        } else {
            Vec::new()
        };
        let decided = change(ds, &history).map_err(WriteError::Refused)?;
        if let Change::Skip(_) = decided {
            return Ok(decided);
        }
        match store.update(obj).await {
            Ok(_) => return Ok(decided),
            Err(s) if s.code() == Code::Aborted => {
                tracing::warn!(namespace, name, attempt, err = %s.message(), "conflict while writing the daemon set, retrying on a fresh read");
                last = Some(s);
            }
            Err(s) => return Err(WriteError::Server(s)),
        }
    }
    Err(WriteError::Conflict {
        attempts: CONFLICT_RETRIES,
        last: last.unwrap_or_else(|| Status::aborted("conflict")),
    })
}

fn ds_info() -> &'static KindInfo {
    KindInfo::of(Kind::DaemonSet).expect("DaemonSet is a known kind")
}

/// Runs `bosun rollout`.
pub async fn rollout(ctx: &mut Ctx<'_>, args: RolloutArgs) -> anyhow::Result<i32> {
    if ctx.all_namespaces {
        anyhow::bail!("rollout works in one namespace: use -n NAMESPACE instead of -A");
    }
    let ns = ctx.namespace();
    match args.command {
        RolloutCommand::Status(a) => status(ctx, &ns, a).await,
        RolloutCommand::History(a) => history(ctx, &ns, a).await,
        RolloutCommand::Undo(a) => {
            let name = parse_target(&a.resource)?;
            let to = a.to_revision;
            write(ctx, &ns, &name, true, |ds, h| undo(ds, h, to)).await
        }
        RolloutCommand::Restart(a) => {
            let name = parse_target(&a.resource)?;
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            write(ctx, &ns, &name, false, |ds, _| restart(ds, &now)).await
        }
        RolloutCommand::Pause(a) => {
            let name = parse_target(&a.resource)?;
            write(ctx, &ns, &name, false, |ds, _| pause(ds)).await
        }
        RolloutCommand::Resume(a) => {
            let name = parse_target(&a.resource)?;
            write(ctx, &ns, &name, false, |ds, _| resume(ds)).await
        }
    }
}

async fn write<F>(
    ctx: &mut Ctx<'_>,
    ns: &str,
    name: &str,
    with_history: bool,
    change: F,
) -> anyhow::Result<i32>
where
    F: FnMut(&mut v1::DaemonSet, &[v1::ControllerRevision]) -> Result<Change, RolloutError>,
{
    let mut client = ctx.client().await?;
    match write_daemonset(&mut client, ns, name, with_history, change).await {
        Ok(Change::Write(text) | Change::Skip(text)) => {
            writeln!(ctx.out, "daemonset.apps/{name} {text}")?;
            Ok(0)
        }
        Err(WriteError::Refused(e)) => Err(e.into()),
        Err(WriteError::Server(s)) => Err(ctx.status_error(&s, Some(ds_info()), name)),
        Err(WriteError::Conflict { attempts, last }) => Err(RolloutError::Conflict {
            name: name.into(),
            attempts,
            last: last.message().into(),
        }
        .into()),
    }
}

async fn get_ds(ctx: &mut Ctx<'_>, ns: &str, name: &str) -> anyhow::Result<(v1::DaemonSet, i64)> {
    let mut client = ctx.client().await?;
    let obj = DsStore::get(&mut client, ns, name)
        .await
        .map_err(|s| ctx.status_error(&s, Some(ds_info()), name))?;
    let rev = obj.resource_version();
    match obj.object {
        Some(O::DaemonSet(ds)) => Ok((*ds, rev)),
        _ => Err(RolloutError::NotADaemonSetObject.into()),
    }
}

async fn history(ctx: &mut Ctx<'_>, ns: &str, a: HistoryArgs) -> anyhow::Result<i32> {
    let name = parse_target(&a.resource)?;
    let (ds, _) = get_ds(ctx, ns, &name).await?;
    let mut client = ctx.client().await?;
    let revisions = client
        .revisions(&ds)
        .await
        .map_err(|s| ctx.status_error(&s, None, ""))?;
    if a.revision > 0 {
        let Some(r) = revisions.iter().find(|r| r.revision == a.revision) else {
            return Err(RolloutError::HistoryRevisionNotFound.into());
        };
        let template = template_of(r).cloned().unwrap_or_default();
        writeln!(
            ctx.out,
            "daemonset.apps/{name} with revision #{}",
            a.revision
        )?;
        write!(ctx.out, "{}", crate::describe::pod_template_text(&template))?;
        writeln!(ctx.out)?;
        return Ok(0);
    }
    writeln!(ctx.out, "daemonset.apps/{name}")?;
    write!(ctx.out, "{}", history_table(&revisions))?;
    writeln!(ctx.out)?;
    Ok(0)
}

async fn status(ctx: &mut Ctx<'_>, ns: &str, a: StatusArgs) -> anyhow::Result<i32> {
    let name = parse_target(&a.resource)?;
    let follow = async {
        let (ds, rev) = get_ds(ctx, ns, &name).await?;
        if a.revision > 0 {
            let mut client = ctx.client().await?;
            let history = client
                .revisions(&ds)
                .await
                .map_err(|s| ctx.status_error(&s, None, ""))?;
            let running = current_revision(&ds, &history);
            if running != Some(a.revision) {
                return Err(RolloutError::RevisionMismatch {
                    desired: a.revision,
                    running: running
                        .map_or_else(|| "none recorded yet".to_string(), |r| r.to_string()),
                }
                .into());
            }
        }
        follow_status(ctx, ns, &name, ds, rev, a.watch).await
    };
    if a.timeout.is_zero() {
        follow.await
    } else {
        match tokio::time::timeout(a.timeout, follow).await {
            Ok(r) => r,
            Err(_) => Err(RolloutError::TimedOut.into()),
        }
    }
}

/// Prints the status of `ds` (read at `rev`), then, with `watch`, every change the broker's
/// watch brings until the rollout is done.
async fn follow_status(
    ctx: &mut Ctx<'_>,
    ns: &str,
    name: &str,
    ds: v1::DaemonSet,
    mut rev: i64,
    watch: bool,
) -> anyhow::Result<i32> {
    let uid = ds
        .metadata
        .as_ref()
        .map(|m| m.uid.clone())
        .unwrap_or_default();
    let mut last = String::new();
    let mut show = |ctx: &mut Ctx<'_>, ds: &v1::DaemonSet| -> anyhow::Result<bool> {
        let view = status_view(ds)?;
        if view.message != last {
            writeln!(ctx.out, "{}", view.message)?;
            ctx.out.flush()?;
            last = view.message;
        }
        Ok(view.done)
    };
    if show(ctx, &ds)? || !watch {
        return Ok(0);
    }
    let broker = Broker::new(ctx.client().await?);
    loop {
        let mut stream = broker
            .watch(Kind::DaemonSet, &Selector::namespace(ns), rev)
            .await
            .map_err(|e| watch_error(ctx, e))?;
        loop {
            match stream.next().await {
                Ok(Some(ev)) => {
                    rev = rev.max(ev.revision());
                    match ev {
                        WatchEvent::Added(o) | WatchEvent::Modified(o) if o.name() == name => {
                            if o.uid() != uid {
                                return Err(RolloutError::Deleted.into());
                            }
                            if let Some(O::DaemonSet(ds)) = &o.object
                                && show(ctx, ds)?
                            {
                                return Ok(0);
                            }
                        }
                        WatchEvent::Deleted(o) if o.name() == name => {
                            return Err(RolloutError::Deleted.into());
                        }
                        _ => {}
                    }
                }
                // The broker ended the stream (or went away for a moment): resume from the
                // last revision seen.
                Ok(None) => break,
                Err(e) if e.is_transient() => {
                    tracing::warn!(err = %e, rev, "watch interrupted, resuming");
                    break;
                }
                Err(e) if e.is_expired() => {
                    // Too far behind: read it again and watch from there.
                    let (ds, at) = get_ds(ctx, ns, name).await?;
                    if ds.metadata.as_ref().map(|m| m.uid.as_str()) != Some(uid.as_str()) {
                        return Err(RolloutError::Deleted.into());
                    }
                    rev = at;
                    if show(ctx, &ds)? {
                        return Ok(0);
                    }
                    break;
                }
                Err(e) => return Err(watch_error(ctx, e)),
            }
        }
    }
}

fn watch_error(ctx: &Ctx<'_>, e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Rpc(s) => ctx.status_error(&s, Some(ds_info()), ""),
        other => anyhow::Error::new(other),
    }
}

#[cfg(test)]
mod tests;
