//! `bosun logs POD [-c C] [-f] [--previous] [--tail N] [--timestamps]`, and
//! `bosun logs job/NAME` / `ds/NAME` (every pod of the owner, each line prefixed
//! `[pod/NAME/CONTAINER]`), through the broker's Logs API.

use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};
use bosun_api::v1::logs_client::LogsClient;
use bosun_api::v1::{self, Kind, ListRequest, LogsRequest};
use bosun_api::{KindInfo, Object};
use clap::Args;
use futures::StreamExt as _;

use crate::Ctx;
use crate::label::fetch;

/// `bosun logs` flags.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// `POD`, `pod/NAME`, `job/NAME` or `ds/NAME`.
    pub target: String,
    /// The container (default: the pod's first; every container for job/ds).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The previous (terminated) instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Prefix each line with its RFC3339 timestamp.
    #[arg(long)]
    pub timestamps: bool,
}

/// One stream to read: a pod's container, and the prefix of its lines (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub prefix: Option<String>,
}

/// What the target word names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pod(String),
    /// The pods of an owner (Job, DaemonSet).
    Owner(&'static KindInfo, String),
}

/// Parses `POD`, `pod/NAME`, `job/NAME`, `ds/NAME`.
pub fn parse_target(word: &str) -> anyhow::Result<Target> {
    let Some((kind, name)) = word.split_once('/') else {
        return Ok(Target::Pod(word.to_string()));
    };
    let info = KindInfo::lookup(kind)
        .with_context(|| format!("the server doesn't have a resource type \"{kind}\""))?;
    match info.kind {
        Kind::Pod => Ok(Target::Pod(name.to_string())),
        Kind::Job | Kind::DaemonSet => Ok(Target::Owner(info, name.to_string())),
        _ => bail!(
            "cannot get logs of a {}: use a pod, job/NAME or ds/NAME",
            info.singular
        ),
    }
}

/// The streams to read for `pods` (`prefixed` for owners: every container, prefixed).
pub fn sources(
    pods: &[v1::Pod],
    container: Option<&str>,
    prefixed: bool,
) -> anyhow::Result<Vec<Source>> {
    let mut out = Vec::new();
    for p in pods {
        let Some(m) = &p.metadata else { continue };
        let names: Vec<String> = p
            .spec
            .as_ref()
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let chosen: Vec<String> = match container {
            Some(c) if names.iter().any(|n| n == c) => vec![c.to_string()],
            Some(c) => bail!(
                "container {c} is not valid for pod {}, choose one of: [{}]",
                m.name,
                names.join(" ")
            ),
            None if prefixed => names,
            None => names.into_iter().take(1).collect(),
        };
        for c in chosen {
            out.push(Source {
                namespace: m.namespace.clone(),
                pod: m.name.clone(),
                prefix: prefixed.then(|| format!("[pod/{}/{c}] ", m.name)),
                container: c,
            });
        }
    }
    Ok(out)
}

/// Splits a byte stream into whole lines, each with an optional prefix; keeps a partial
/// last line until its end arrives (or [`Lines::finish`]).
#[derive(Debug, Default)]
pub struct Lines {
    prefix: String,
    pending: Vec<u8>,
}

impl Lines {
    /// Lines prefixed with `prefix` (empty: none).
    pub fn new(prefix: Option<&str>) -> Lines {
        Lines {
            prefix: prefix.unwrap_or("").to_string(),
            pending: Vec::new(),
        }
    }

    /// Feeds a chunk; returns the complete lines it finished, prefixed, with newlines.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            out.extend_from_slice(self.prefix.as_bytes());
            out.extend_from_slice(&line);
        }
        out
    }

    /// The unterminated rest, prefixed and newline-terminated (empty if none).
    pub fn finish(&mut self) -> Vec<u8> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let mut out = self.prefix.as_bytes().to_vec();
        out.append(&mut self.pending);
        out.push(b'\n');
        out
    }
}

/// Runs `bosun logs`.
pub async fn logs(ctx: &mut Ctx<'_>, args: LogsArgs) -> anyhow::Result<i32> {
    let ns = ctx.namespace();
    let pod_info = KindInfo::of(Kind::Pod).context("no Pod kind")?;
    let (pods, prefixed) = match parse_target(&args.target)? {
        Target::Pod(name) => {
            let obj = fetch(ctx, pod_info, &ns, &name).await?;
            (obj.into_pod().into_iter().collect::<Vec<_>>(), false)
        }
        Target::Owner(info, name) => {
            let owner = fetch(ctx, info, &ns, &name).await?;
            (owned_pods(ctx, &owner).await?, true)
        }
    };
    if pods.is_empty() {
        bail!("no pods found for {}", args.target);
    }
    let sources = sources(&pods, args.container.as_deref(), prefixed)?;
    if !prefixed
        && args.container.is_none()
        && let Some(spec) = pods[0].spec.as_ref()
        && spec.containers.len() > 1
    {
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        writeln!(
            ctx.err,
            "Defaulted container \"{}\" out of: {}",
            names[0],
            names.join(", ")
        )?;
    }
    let channel = tonic::transport::Endpoint::from_shared(ctx.server.clone())
        .with_context(|| format!("invalid broker address {:?}", ctx.server))?
        .connect()
        .await
        .map_err(|_| anyhow::anyhow!(crate::errors::unreachable(&ctx.server)))?;
    let client = LogsClient::new(channel);
    // One stream per source, merged line by line as they come.
    let mut streams = Vec::new();
    for s in sources {
        let req = LogsRequest {
            namespace: s.namespace.clone(),
            pod: s.pod.clone(),
            container: s.container.clone(),
            follow: args.follow,
            previous: args.previous,
            tail_lines: (args.tail >= 0).then_some(args.tail),
            timestamps: args.timestamps,
        };
        let stream = client
            .clone()
            .pod_logs(req)
            .await
            .map_err(|st| anyhow::anyhow!(logs_error(&st, &s)))?
            .into_inner();
        let lines = Arc::new(Mutex::new(Lines::new(s.prefix.as_deref())));
        let (feed, rest) = (lines.clone(), lines);
        let source = s.clone();
        let chunks = stream
            .map(move |r| match r {
                Ok(chunk) => Ok(lock(&feed).push(&chunk.data)),
                Err(st) => Err(logs_error(&st, &source)),
            })
            .chain(futures::stream::once(
                async move { Ok(lock(&rest).finish()) },
            ));
        streams.push(Box::pin(chunks));
    }
    let mut merged = futures::stream::select_all(streams);
    let mut code = 0;
    while let Some(item) = merged.next().await {
        match item {
            Ok(bytes) => {
                ctx.out.write_all(&bytes)?;
                ctx.out.flush()?;
            }
            Err(msg) => {
                writeln!(ctx.err, "{msg}")?;
                code = 1;
            }
        }
    }
    Ok(code)
}

fn lock(l: &Mutex<Lines>) -> std::sync::MutexGuard<'_, Lines> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

/// A Logs API failure as kubectl words it.
fn logs_error(status: &tonic::Status, s: &Source) -> String {
    match status.code() {
        tonic::Code::NotFound => format!("Error from server (NotFound): {}", status.message()),
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => {
            format!("Error from server (BadRequest): {}", status.message())
        }
        _ => format!(
            "error: cannot get logs of pod {}/{} container {}: {}",
            s.namespace,
            s.pod,
            s.container,
            status.message()
        ),
    }
}

/// The pods whose controller is `owner` (by uid).
async fn owned_pods(ctx: &mut Ctx<'_>, owner: &Object) -> anyhow::Result<Vec<v1::Pod>> {
    let mut client = ctx.client().await?;
    let list = client
        .list(ListRequest {
            shards: None,
            kind: Kind::Pod as i32,
            namespace: owner.namespace().to_string(),
            label_selector: String::new(),
            field_selector: String::new(),
        })
        .await
        .map_err(|s| ctx.status_error(&s, KindInfo::of(Kind::Pod), ""))?
        .into_inner();
    let mut pods: Vec<v1::Pod> = list
        .items
        .into_iter()
        .filter(|o| o.controller_ref().is_some_and(|r| r.uid == owner.uid()))
        .filter_map(|o| o.into_pod())
        .collect();
    pods.sort_by(|a, b| {
        let name = |p: &v1::Pod| p.metadata.as_ref().map(|m| m.name.clone());
        name(a).cmp(&name(b))
    });
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_a_pod_or_an_owner() {
        assert_eq!(parse_target("web").unwrap(), Target::Pod("web".into()));
        assert_eq!(parse_target("pod/web").unwrap(), Target::Pod("web".into()));
        assert!(
            matches!(parse_target("job/pi").unwrap(), Target::Owner(i, n) if i.kind == Kind::Job && n == "pi")
        );
        assert!(
            matches!(parse_target("ds/agent").unwrap(), Target::Owner(i, _) if i.kind == Kind::DaemonSet)
        );
        assert!(parse_target("cj/hello").is_err());
        assert!(parse_target("widget/x").is_err());
    }

    fn pod(name: &str, containers: &[&str]) -> v1::Pod {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                containers: containers
                    .iter()
                    .map(|c| v1::Container {
                        name: c.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn sources_pick_containers_and_prefix_owner_streams() {
        let one = sources(&[pod("a", &["main", "side"])], None, false).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(
            (one[0].container.as_str(), one[0].prefix.clone()),
            ("main", None)
        );
        let chosen = sources(&[pod("a", &["main", "side"])], Some("side"), false).unwrap();
        assert_eq!(chosen[0].container, "side");
        let err = sources(&[pod("a", &["main"])], Some("nope"), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container nope is not valid for pod a, choose one of: [main]"
        );
        let all = sources(
            &[pod("a", &["main", "side"]), pod("b", &["main"])],
            None,
            true,
        )
        .unwrap();
        let prefixes: Vec<_> = all.iter().map(|s| s.prefix.clone().unwrap()).collect();
        assert_eq!(
            prefixes,
            vec!["[pod/a/main] ", "[pod/a/side] ", "[pod/b/main] "]
        );
    }

    #[test]
    fn lines_are_prefixed_whole_even_across_chunks() {
        let mut l = Lines::new(Some("[pod/a/main] "));
        assert_eq!(l.push(b"hel"), b"");
        assert_eq!(l.push(b"lo\nwor"), b"[pod/a/main] hello\n");
        assert_eq!(l.push(b"ld\nx\n"), b"[pod/a/main] world\n[pod/a/main] x\n");
        assert_eq!(l.push(b"tail"), b"");
        assert_eq!(l.finish(), b"[pod/a/main] tail\n");
        assert_eq!(l.finish(), b"");
        let mut plain = Lines::new(None);
        assert_eq!(plain.push(b"a\nb"), b"a\n");
        assert_eq!(plain.finish(), b"b\n");
    }
}
