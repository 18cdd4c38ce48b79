//! `bosun get`: list or fetch objects and print them as tables, names, YAML, JSON or
//! JSONPath; `--watch` follows the broker's watch from the list's revision.

use anyhow::Context as _;
use bosun_api::KindInfo;
use bosun_api::v1::{EventType, GetRequest, ListRequest, Object, WatchRequest};
use chrono::Utc;
use clap::Args;
use futures::StreamExt;

use crate::Ctx;
use crate::format::render_table;
use crate::output::{Output, json_to_yaml, value_of, yaml_of};
use crate::printers::{self, Columns};

/// `bosun get` flags.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// `KIND [NAME...]`, `KIND/NAME...`, `KIND1,KIND2` or `all`.
    pub resource: Vec<String>,
    /// Output format: wide, yaml, json, name, jsonpath=TEMPLATE.
    #[arg(short = 'o', long, env = "BOSUN_OUTPUT")]
    pub output: Option<String>,
    /// Label selector (`app=x,tier!=db`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector (`status.phase=Running`).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// After listing, keep printing changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// No header row.
    #[arg(long)]
    pub no_headers: bool,
    /// A LABELS column.
    #[arg(long)]
    pub show_labels: bool,
}

/// The kinds `get all` shows.
const ALL_KINDS: &[&str] = &["pods", "jobs", "cronjobs", "daemonsets"];

/// Runs `bosun get`.
pub async fn get(ctx: &mut Ctx<'_>, args: GetArgs) -> anyhow::Result<i32> {
    let output = Output::parse(args.output.as_deref())?;
    if crate::controllers::is_controllers(&args.resource) {
        return crate::controllers::get(ctx, &output, args.no_headers).await;
    }
    let is_all = args.resource.first().is_some_and(|w| w == "all");
    let targets = if is_all {
        ALL_KINDS
            .iter()
            .filter_map(|k| KindInfo::lookup(k))
            .map(|i| (i, Vec::new()))
            .collect()
    } else {
        crate::parse_targets(&args.resource)?
    };
    if args.watch && targets.len() != 1 {
        anyhow::bail!("you may only watch one kind of resource at a time");
    }
    let cols = Columns {
        wide: output == Output::Wide,
        namespace: ctx.all_namespaces,
        labels: args.show_labels,
        kind_prefix: targets.len() > 1 || args.resource.first().is_some_and(|w| w.contains('/')),
    };
    let single = targets.len() == 1 && targets[0].1.len() == 1;
    let mut all_items: Vec<Object> = Vec::new();
    let mut code = 0;
    let mut revision = 0;
    let mut printed_tables = 0;
    for (info, names) in &targets {
        let (items, rev, failed) = fetch(ctx, info, names, &args).await?;
        revision = rev;
        if failed {
            code = 1;
        }
        if matches!(output, Output::Table | Output::Wide) {
            if items.is_empty() {
                continue;
            }
            if printed_tables > 0 {
                writeln!(ctx.out)?;
            }
            printed_tables += 1;
            write!(ctx.out, "{}", table(info, &items, cols, !args.no_headers))?;
        } else {
            all_items.extend(items);
        }
    }
    let nothing = printed_tables == 0 && all_items.is_empty();
    match &output {
        Output::Table | Output::Wide => {}
        Output::Name => {
            for o in &all_items {
                writeln!(ctx.out, "{}", printers::resource_name(o))?;
            }
        }
        Output::Json => writeln!(ctx.out, "{:#}", value_of(&all_items, single))?,
        Output::Yaml => write!(ctx.out, "{}", yaml_of(&all_items, single))?,
        Output::JsonPath(t) => write!(ctx.out, "{}", t.render(&value_of(&all_items, single)))?,
    }
    let named = targets.iter().any(|(_, n)| !n.is_empty());
    if nothing && !named && !args.watch {
        let info = targets[0].0;
        if info.namespaced && !ctx.all_namespaces {
            writeln!(
                ctx.err,
                "No resources found in {} namespace.",
                ctx.namespace()
            )?;
        } else {
            writeln!(ctx.err, "No resources found")?;
        }
    }
    ctx.out.flush()?;
    if args.watch {
        let (info, names) = &targets[0];
        watch(ctx, info, names, &args, &output, cols, revision, nothing).await?;
    }
    Ok(code)
}

/// Lists (or gets by name) one kind; returns the items, the list revision, and whether some
/// named object was missing (already reported).
async fn fetch(
    ctx: &mut Ctx<'_>,
    info: &'static KindInfo,
    names: &[String],
    args: &GetArgs,
) -> anyhow::Result<(Vec<Object>, i64, bool)> {
    let mut client = ctx.client().await?;
    if names.is_empty() {
        let resp = client
            .list(ListRequest {
                shards: None,
                kind: info.kind as i32,
                namespace: ctx.list_namespace(info),
                label_selector: args.selector.clone().unwrap_or_default(),
                field_selector: args.field_selector.clone().unwrap_or_default(),
            })
            .await
            .map_err(|s| ctx.status_error(&s, Some(info), ""))?
            .into_inner();
        return Ok((resp.items, resp.revision, false));
    }
    let mut items = Vec::new();
    let mut failed = false;
    let mut revision = 0;
    for name in names {
        let req = GetRequest {
            kind: info.kind as i32,
            namespace: if info.namespaced {
                ctx.namespace()
            } else {
                String::new()
            },
            name: name.clone(),
        };
        match client.get(req).await {
            Ok(r) => {
                if let Some(o) = r.into_inner().object {
                    revision = revision.max(o.resource_version());
                    items.push(o);
                }
            }
            Err(s) => {
                failed = true;
                let e = ctx.status_error(&s, Some(info), name);
                crate::report(ctx.err, &e);
            }
        }
    }
    Ok((items, revision, failed))
}

/// The header and rows for `items` of one kind, laid out in columns.
pub fn table(info: &KindInfo, items: &[Object], cols: Columns, with_headers: bool) -> String {
    let now = Utc::now();
    let mut rows = Vec::new();
    if with_headers {
        rows.push(printers::headers(info.kind, cols));
    }
    rows.extend(items.iter().map(|o| printers::row(o, cols, now)));
    render_table(&rows)
}

/// Follows the watch from `revision`, printing one row (or document) per change; relists
/// when the broker says the revision has expired.
#[allow(clippy::too_many_arguments)]
async fn watch(
    ctx: &mut Ctx<'_>,
    info: &'static KindInfo,
    names: &[String],
    args: &GetArgs,
    output: &Output,
    cols: Columns,
    mut revision: i64,
    mut need_headers: bool,
) -> anyhow::Result<()> {
    let mut client = ctx.client().await?;
    loop {
        let req = WatchRequest {
            shards: None,
            kind: info.kind as i32,
            namespace: ctx.list_namespace(info),
            label_selector: args.selector.clone().unwrap_or_default(),
            field_selector: args.field_selector.clone().unwrap_or_default(),
            resource_version: revision,
            allow_bookmarks: true,
        };
        let mut stream = client
            .watch(req)
            .await
            .map_err(|s| ctx.status_error(&s, Some(info), ""))?
            .into_inner();
        let mut expired = false;
        while let Some(msg) = stream.next().await {
            let resp = match msg {
                Ok(r) => r,
                Err(s) if s.code() == tonic::Code::OutOfRange => {
                    expired = true;
                    break;
                }
                Err(s) => return Err(ctx.status_error(&s, Some(info), "")),
            };
            for ev in resp.events {
                revision = revision.max(ev.revision);
                if ev.r#type == EventType::Bookmark as i32 {
                    continue;
                }
                let obj = Object::decode_stored(&ev.object, ev.revision)
                    .context("the broker sent an object that does not decode")?;
                if !names.is_empty() && !names.iter().any(|n| n == obj.name()) {
                    continue;
                }
                print_watched(
                    ctx,
                    info,
                    &obj,
                    output,
                    cols,
                    need_headers && !args.no_headers,
                )?;
                need_headers = false;
            }
        }
        if !expired {
            anyhow::bail!("the broker closed the watch");
        }
        // Too far behind the broker's window: relist and carry on from the new revision.
        tracing::warn!(revision, "watch expired, relisting");
        let (items, rev, _) = fetch(ctx, info, names, args).await?;
        revision = rev;
        for obj in &items {
            print_watched(ctx, info, obj, output, cols, false)?;
        }
    }
}

fn print_watched(
    ctx: &mut Ctx<'_>,
    info: &KindInfo,
    obj: &Object,
    output: &Output,
    cols: Columns,
    headers: bool,
) -> anyhow::Result<()> {
    let one = std::slice::from_ref(obj);
    match output {
        Output::Table | Output::Wide => write!(ctx.out, "{}", table(info, one, cols, headers))?,
        Output::Name => writeln!(ctx.out, "{}", printers::resource_name(obj))?,
        Output::Json => writeln!(ctx.out, "{:#}", value_of(one, true))?,
        Output::Yaml => write!(ctx.out, "---\n{}", json_to_yaml(&value_of(one, true)))?,
        Output::JsonPath(t) => write!(ctx.out, "{}", t.render(&value_of(one, true)))?,
    }
    ctx.out.flush()?;
    Ok(())
}
