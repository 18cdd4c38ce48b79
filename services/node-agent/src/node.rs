//! Node registration and heartbeats: the Node object (labels, taints, capacity, addresses,
//! nodeInfo, the Logs port, Ready=True), a Lease in `kube-node-lease` renewed every
//! heartbeat interval, and the Node's Ready heartbeat refreshed less often.

use std::collections::BTreeMap;
use std::time::Duration;

use bosun_api::v1::{self, Kind, Object};
use bosun_api::vocab::{condition, effect as effects, status};
use bosun_runtime::client::Broker;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Error;

/// The Lease namespace.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// This machine's hostname (`localhost` when unreadable).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// RFC 3339 now, with microseconds (Kubernetes' MicroTime).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn machine_memory() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(|kb| format!("{kb}Ki"))
        })
        .unwrap_or_else(|| "1Gi".to_string())
}

/// Parses `key=value:Effect` or `key:Effect`.
pub fn parse_taint(s: &str) -> Result<v1::Taint, String> {
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("taint {s:?}: expected key=value:Effect"))?;
    if ![
        effects::NO_SCHEDULE,
        effects::PREFER_NO_SCHEDULE,
        effects::NO_EXECUTE,
    ]
    .contains(&effect)
    {
        return Err(format!(
            "taint {s:?}: effect must be NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    Ok(v1::Taint {
        key: key.to_string(),
        value: value.to_string(),
        effect: effect.to_string(),
        ..Default::default()
    })
}

/// The Node this agent registers as `name` (pure apart from reading the machine's facts).
pub fn desired_node(config: &Config, name: &str, port: u16) -> Result<v1::Node, Error> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        (
            "kubernetes.io/os".to_string(),
            std::env::consts::OS.to_string(),
        ),
        ("kubernetes.io/arch".to_string(), go_arch().to_string()),
    ]);
    for l in config.labels.iter().filter(|l| !l.is_empty()) {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("label {l:?}: expected key=value")))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let taints = config
        .taints
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| parse_taint(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Config)?;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let resources = BTreeMap::from([
        (
            "cpu".to_string(),
            config.cpu.clone().unwrap_or_else(|| cpus.to_string()),
        ),
        (
            "memory".to_string(),
            config.memory.clone().unwrap_or_else(machine_memory),
        ),
        ("pods".to_string(), config.max_pods.to_string()),
    ]);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    Ok(v1::Node {
        metadata: Some(v1::ObjectMeta {
            name: name.to_string(),
            labels,
            ..Default::default()
        }),
        spec: Some(v1::NodeSpec {
            taints,
            ..Default::default()
        }),
        status: Some(v1::NodeStatus {
            capacity: resources.clone(),
            allocatable: resources,
            conditions: vec![ready_condition(&now())],
            addresses: vec![
                v1::NodeAddress {
                    r#type: "InternalIP".into(),
                    address: config.advertise_address.to_string(),
                },
                v1::NodeAddress {
                    r#type: "Hostname".into(),
                    address: name.to_string(),
                },
            ],
            node_info: Some(v1::NodeSystemInfo {
                kernel_version: kernel,
                os_image: "bosun".into(),
                container_runtime_version: match config.runtime {
                    crate::config::RuntimeKind::Docker => "docker://".into(),
                    _ => "process://bosun".into(),
                },
                kubelet_version: format!("bosun-{}", env!("CARGO_PKG_VERSION")),
                operating_system: std::env::consts::OS.into(),
                architecture: go_arch().into(),
                ..Default::default()
            }),
            phase: String::new(),
            daemon_endpoints: Some(v1::NodeDaemonEndpoints {
                kubelet_endpoint: Some(v1::DaemonEndpoint { port: port.into() }),
            }),
        }),
        ..Default::default()
    })
}

/// Kubernetes' (Go's) architecture names.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn ready_condition(now: &str) -> v1::Condition {
    v1::Condition {
        r#type: condition::READY.into(),
        status: status::TRUE.into(),
        last_heartbeat_time: now.into(),
        last_transition_time: now.into(),
        reason: "KubeletReady".into(),
        message: "bosun node agent is posting ready status".into(),
        ..Default::default()
    }
}

/// Merges the desired node into the stored one (agent restart): labels are ours over theirs,
/// taints others added are kept, spec.unschedulable is kept; status is ours.
pub fn merge_node(stored: &v1::Node, desired: &v1::Node) -> v1::Node {
    let mut out = stored.clone();
    let meta = out.metadata.get_or_insert_with(Default::default);
    for (k, v) in desired
        .metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default()
    {
        meta.labels.insert(k, v);
    }
    let spec = out.spec.get_or_insert_with(Default::default);
    for t in desired
        .spec
        .as_ref()
        .map(|s| s.taints.clone())
        .unwrap_or_default()
    {
        if !spec
            .taints
            .iter()
            .any(|x| x.key == t.key && x.effect == t.effect)
        {
            spec.taints.push(t);
        }
    }
    let mut status = desired.status.clone().unwrap_or_default();
    // Keep the Ready transition time when it was already Ready.
    if let Some(old) = stored
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == condition::READY))
        && old.status == status::TRUE
        && let Some(c) = status
            .conditions
            .iter_mut()
            .find(|c| c.r#type == condition::READY)
    {
        c.last_transition_time = old.last_transition_time.clone();
    }
    out.status = Some(status);
    out
}

/// Creates or updates the Node `name`.
pub async fn register(broker: &Broker, desired: v1::Node) -> Result<(), Error> {
    let name = desired
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    for _ in 0..5 {
        let stored = broker.get_opt(Kind::Node, "", &name).await?;
        let result = match stored.and_then(|o| o.into_node()) {
            None => match broker.create(Object::from(desired.clone())).await {
                Ok(created) => {
                    let mut o = created;
                    if let Some(n) = o.as_node().cloned() {
                        let mut n = n;
                        n.status = desired.status.clone();
                        o = Object::from(n);
                    }
                    broker.update_status(o).await.map(|_| ())
                }
                Err(e) => Err(e),
            },
            Some(stored) => {
                let merged = merge_node(&stored, &desired);
                match broker.update(Object::from(merged.clone())).await {
                    Ok(updated) => {
                        let mut n = updated.into_node().unwrap_or_default();
                        n.status = merged.status;
                        broker.update_status(Object::from(n)).await.map(|_| ())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(node = %name, "node registered");
                return Ok(());
            }
            Err(e) if e.is_conflict() || e.is_already_exists() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Config(format!("node {name}: kept conflicting")))
}

/// Renews each node's Lease every `interval`, and the Node's Ready heartbeat every
/// `status_interval`, until `shutdown`.
pub async fn heartbeat(
    broker: Broker,
    nodes: Vec<String>,
    interval: Duration,
    lease_seconds: i32,
    status_interval: Duration,
    shutdown: CancellationToken,
) {
    let mut leases: BTreeMap<String, Option<Object>> =
        nodes.iter().map(|n| (n.clone(), None)).collect();
    let mut last_status = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // One round renews every node's Lease concurrently (sim mode: many nodes).
        let now = now();
        let renewals = leases.iter().map(|(node, cached)| {
            let broker = broker.clone();
            let now = now.clone();
            let cached = cached.clone();
            let node = node.clone();
            async move {
                let r = renew_lease(&broker, &node, cached, lease_seconds, &now).await;
                (node, r)
            }
        });
        for (node, r) in futures::future::join_all(renewals).await {
            match r {
                Ok(obj) => {
                    leases.insert(node, Some(obj));
                }
                Err(err) => {
                    tracing::warn!(%node, %err, "lease renewal failed");
                    leases.insert(node, None);
                }
            }
        }
        // Every round also checks each Node's Ready condition: one another party changed
        // (the node lifecycle controller set it Unknown after missed leases, or removed it)
        // is re-posted at once, as the kubelet does; a matching one only every
        // `status_interval`.
        let status_due = last_status.elapsed() >= status_interval;
        if status_due {
            last_status = tokio::time::Instant::now();
        }
        let refreshes = nodes.iter().map(|node| {
            let broker = broker.clone();
            async move { (node, refresh_ready(&broker, node, status_due).await) }
        });
        for (node, r) in futures::future::join_all(refreshes).await {
            if let Err(err) = r {
                tracing::warn!(%node, %err, "node status heartbeat failed");
            }
        }
    }
}

async fn renew_lease(
    broker: &Broker,
    node: &str,
    cached: Option<Object>,
    lease_seconds: i32,
    now: &str,
) -> Result<Object, bosun_runtime::client::ClientError> {
    let stored = match cached {
        Some(o) => Some(o),
        None => broker.get_opt(Kind::Lease, LEASE_NAMESPACE, node).await?,
    };
    match stored.and_then(|o| o.into_lease()) {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.renew_time = now.to_string();
            spec.holder_identity = Some(node.to_string());
            spec.lease_duration_seconds = Some(lease_seconds);
            broker.update(Object::from(lease)).await
        }
        None => {
            let lease = v1::Lease {
                metadata: Some(v1::ObjectMeta {
                    name: node.to_string(),
                    namespace: LEASE_NAMESPACE.to_string(),
                    ..Default::default()
                }),
                spec: Some(v1::LeaseSpec {
                    holder_identity: Some(node.to_string()),
                    lease_duration_seconds: Some(lease_seconds),
                    acquire_time: now.to_string(),
                    renew_time: now.to_string(),
                    lease_transitions: Some(0),
                }),
                ..Default::default()
            };
            broker.create(Object::from(lease)).await
        }
    }
}

/// What a heartbeat round does with the stored Node's Ready condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyPost {
    /// It says what the agent would post and no status heartbeat is due: nothing.
    Keep,
    /// It says Ready=True and the status heartbeat is due: move its heartbeat time.
    Heartbeat,
    /// It differs from Ready=True (Unknown/False, or missing): post a fresh Ready=True,
    /// transition time now.
    Repost,
}

/// Decides what to post for a Node whose stored Ready condition is `stored` (pure).
pub fn ready_post(stored: Option<&v1::Condition>, status_due: bool) -> ReadyPost {
    match stored {
        Some(c) if c.status == status::TRUE && status_due => ReadyPost::Heartbeat,
        Some(c) if c.status == status::TRUE => ReadyPost::Keep,
        _ => ReadyPost::Repost,
    }
}

/// Reads the Node and posts Ready=True when [`ready_post`] says so (the node lifecycle
/// controller then lifts its unreachable / not-ready taints).
async fn refresh_ready(broker: &Broker, node: &str, status_due: bool) -> Result<(), Error> {
    let Some(mut n) = broker
        .get_opt(Kind::Node, "", node)
        .await?
        .and_then(|o| o.into_node())
    else {
        return Ok(());
    };
    let now = now();
    let status = n.status.get_or_insert_with(Default::default);
    let stored = status
        .conditions
        .iter()
        .position(|c| c.r#type == condition::READY);
    match (
        ready_post(stored.map(|i| &status.conditions[i]), status_due),
        stored,
    ) {
        (ReadyPost::Keep, _) => return Ok(()),
        (ReadyPost::Heartbeat, Some(i)) => status.conditions[i].last_heartbeat_time = now,
        (_, Some(i)) => {
            tracing::info!(%node, was = %status.conditions[i].status, "re-posting Ready=True");
            status.conditions[i] = ready_condition(&now);
        }
        (_, None) => {
            tracing::info!(%node, "re-posting the missing Ready condition");
            status.conditions.push(ready_condition(&now));
        }
    }
    broker.update_status(Object::from(n)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_condition_others_changed_is_reposted_at_the_next_heartbeat() {
        let cond = |status: &str| v1::Condition {
            r#type: condition::READY.into(),
            status: status.into(),
            ..Default::default()
        };
        let (t, u, f) = (cond("True"), cond("Unknown"), cond("False"));
        for (stored, due, want) in [
            (Some(&t), false, ReadyPost::Keep),
            (Some(&t), true, ReadyPost::Heartbeat),
            (Some(&u), false, ReadyPost::Repost),
            (Some(&u), true, ReadyPost::Repost),
            (Some(&f), false, ReadyPost::Repost),
            (None, false, ReadyPost::Repost),
            (None, true, ReadyPost::Repost),
        ] {
            assert_eq!(ready_post(stored, due), want, "{stored:?} due={due}");
        }
    }

    #[test]
    fn taints_parse_with_and_without_values() {
        let t = parse_taint("gpu=true:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_str(), t.effect.as_str()),
            ("gpu", "true", "NoSchedule")
        );
        let t = parse_taint("dedicated:NoExecute").unwrap();
        assert_eq!((t.key.as_str(), t.value.as_str()), ("dedicated", ""));
        assert!(parse_taint("x=y:Sometimes").is_err());
        assert!(parse_taint("x").is_err());
    }

    #[test]
    fn a_restarted_agent_keeps_what_others_set_on_its_node() {
        let mut config = Config::new("http://x", "n1");
        config.labels = vec!["zone=a".into()];
        let desired = desired_node(&config, "n1", 1234).unwrap();
        let mut stored = desired.clone();
        let spec = stored.spec.get_or_insert_with(Default::default);
        spec.unschedulable = true;
        spec.taints.push(v1::Taint {
            key: "node.kubernetes.io/unreachable".into(),
            effect: "NoExecute".into(),
            ..Default::default()
        });
        stored
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .insert("user".into(), "set".into());
        let merged = merge_node(&stored, &desired);
        let spec = merged.spec.unwrap();
        assert!(spec.unschedulable);
        assert_eq!(spec.taints.len(), 1);
        let labels = merged.metadata.unwrap().labels;
        assert_eq!(labels.get("user").map(String::as_str), Some("set"));
        assert_eq!(labels.get("zone").map(String::as_str), Some("a"));
        let port = merged
            .status
            .unwrap()
            .daemon_endpoints
            .unwrap()
            .kubelet_endpoint
            .unwrap()
            .port;
        assert_eq!(port, 1234);
    }
}
