//! `bosun get controllers`: the replicas of each scaled-out controller kind, the shards each
//! holds, its queue depth and its last handoff (from the broker's `Shards` service).

use bosun_api::v1::{ListControllersRequest, ListControllersResponse, Membership};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::Ctx;
use crate::format::{age, render_table};
use crate::output::{Output, json_to_yaml};

/// Whether `bosun get` was asked for controllers.
pub fn is_controllers(resource: &[String]) -> bool {
    matches!(resource, [one] if matches!(one.as_str(), "controllers" | "controller"))
}

/// Runs `bosun get controllers` with `-o` `output`.
pub async fn get(ctx: &mut Ctx<'_>, output: &Output, no_headers: bool) -> anyhow::Result<i32> {
    let mut client = bosun_runtime::shards::connect_lazy(&ctx.server)?;
    let resp = client
        .list_controllers(ListControllersRequest {})
        .await
        .map_err(|s| ctx.status_error(&s, None, "controllers"))?
        .into_inner();
    let text = match output {
        Output::Table | Output::Wide => {
            if resp.controllers.iter().all(|c| c.members.is_empty()) {
                writeln!(ctx.err, "No controller replicas found.")?;
                return Ok(0);
            }
            let mut rows = table(&resp, Utc::now());
            if no_headers {
                rows.remove(0);
            }
            render_table(&rows)
        }
        Output::Json => format!("{}\n", serde_json::to_string_pretty(&value(&resp))?),
        Output::Yaml => json_to_yaml(&value(&resp)),
        _ => anyhow::bail!("bosun get controllers prints a table, -o yaml or -o json"),
    };
    write!(ctx.out, "{text}")?;
    Ok(0)
}

/// Sorted shards as ranges: `0-84,170`; `-` when none.
pub fn ranges(shards: &[u32]) -> String {
    let mut sorted = shards.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

fn shards_of(c: &Membership, lease: i64) -> Vec<u32> {
    c.owners
        .iter()
        .filter(|o| o.lease_id == lease)
        .map(|o| o.shard)
        .collect()
}

/// The table: a header, then one row per replica.
pub fn table(resp: &ListControllersResponse, now: DateTime<Utc>) -> Vec<Vec<String>> {
    let mut rows = vec![
        [
            "CONTROLLER",
            "REPLICA",
            "SHARDS",
            "QUEUE",
            "LAST HANDOFF",
            "AGE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for c in &resp.controllers {
        for m in &c.members {
            let shards = shards_of(c, m.lease_id);
            let handoff = if m.last_handoff_at.is_empty() {
                "<none>".to_string()
            } else {
                format!(
                    "{} ago ({} ms)",
                    age(&m.last_handoff_at, now),
                    m.last_handoff_ms
                )
            };
            rows.push(vec![
                c.controller.clone(),
                m.replica.clone(),
                format!("{} ({})", shards.len(), ranges(&shards)),
                m.queue_depth.to_string(),
                handoff,
                age(&m.joined_at, now),
            ]);
        }
    }
    rows
}

/// `-o json|yaml`: a list of replicas.
pub fn value(resp: &ListControllersResponse) -> Value {
    let items: Vec<Value> = resp
        .controllers
        .iter()
        .flat_map(|c| {
            c.members.iter().map(move |m| {
                let shards = shards_of(c, m.lease_id);
                json!({
                    "controller": c.controller,
                    "replica": m.replica,
                    "leaseId": format!("{:x}", m.lease_id),
                    "joinedAt": m.joined_at,
                    "shardCount": shards.len(),
                    "shards": ranges(&shards),
                    "queueDepth": m.queue_depth,
                    "lastHandoffAt": m.last_handoff_at,
                    "lastHandoffMs": m.last_handoff_ms,
                })
            })
        })
        .collect();
    json!({ "kind": "ControllerReplicaList", "items": items })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::v1::{Member, ShardOwner};

    #[test]
    fn shard_lists_print_as_ranges() {
        let table: [(&[u32], &str); 6] = [
            (&[], "-"),
            (&[3], "3"),
            (&[0, 1, 2], "0-2"),
            (&[170, 0, 1, 2, 84, 3], "0-3,84,170"),
            (&[5, 7, 9], "5,7,9"),
            (&[1, 1, 2], "1-2"),
        ];
        for (shards, want) in table {
            assert_eq!(ranges(shards), want, "{shards:?}");
        }
    }

    #[test]
    fn a_row_per_replica_with_its_shards_queue_and_handoff() {
        let now: DateTime<Utc> = "2026-12-05T12:00:00Z".parse().unwrap();
        let member = |replica: &str, lease: i64, handoff: &str| Member {
            controller: "job".into(),
            replica: replica.into(),
            lease_id: lease,
            joined_at: "2026-12-05T11:58:00Z".into(),
            queue_depth: 3,
            last_handoff_at: handoff.into(),
            last_handoff_ms: 140,
        };
        let owner = |shard: u32, lease: i64| ShardOwner {
            shard,
            lease_id: lease,
            ..Default::default()
        };
        let resp = ListControllersResponse {
            controllers: vec![Membership {
                controller: "job".into(),
                members: vec![member("a", 1, "2026-12-05T11:59:50Z"), member("b", 2, "")],
                owners: vec![owner(0, 1), owner(1, 1), owner(5, 2)],
                revision: 9,
            }],
        };
        let rows = table(&resp, now);
        assert_eq!(
            rows[1],
            ["job", "a", "2 (0-1)", "3", "10s ago (140 ms)", "2m"]
        );
        assert_eq!(rows[2], ["job", "b", "1 (5)", "3", "<none>", "2m"]);
        assert_eq!(value(&resp)["items"][0]["shards"], "0-1");
    }
}
