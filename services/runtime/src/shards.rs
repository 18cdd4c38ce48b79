//! Scale-out: a replica's membership among the replicas of its controller kind, and the
//! shards it holds (`proto/bosun/v1/shards.proto`, `bosun_api::shard`).
//!
//! [`Held`] is the contract between the membership (which joins, keeps its lease alive,
//! follows the other members and takes or releases shards) and the controller runtime
//! (which filters its informers by the held shards, reconciles only their keys, and stamps
//! each write with the fence of the shard it is made for).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bosun_api::shard::{Controller, Fence, SHARDS};
use bosun_api::v1;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Counter, Gauge, Metrics};

/// The shards a replica holds now, each with its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub controller: Controller,
    /// The kind's shard count (`bosun_api::shard::SHARDS`).
    pub count: u32,
    /// shard → token (the create revision of its owner key).
    pub tokens: BTreeMap<u32, i64>,
}

impl Held {
    /// Nothing held (before the first acquire, after the lease was lost).
    pub fn none(controller: Controller, count: u32) -> Held {
        Held {
            controller,
            count,
            tokens: BTreeMap::new(),
        }
    }

    /// The fence for writes made for `shard`, if held.
    pub fn fence(&self, shard: u32) -> Option<Fence> {
        self.tokens.get(&shard).map(|&token| Fence {
            controller: self.controller,
            shard,
            token,
        })
    }

    /// Whether every shard is held (a lone replica): filters can be skipped.
    pub fn all(&self) -> bool {
        self.tokens.len() == self.count as usize
    }
}

/// The Shards API client (over a channel like the [`crate::client::BrokerClient`]'s).
pub type ShardsClient = bosun_api::v1::shards_client::ShardsClient<tonic::transport::Channel>;

/// A Shards client that connects on first use (and reconnects after failures).
pub fn connect_lazy(addr: &str) -> Result<ShardsClient, crate::client::ClientError> {
    Ok(ShardsClient::new(
        crate::client::endpoint(addr)?.connect_lazy(),
    ))
}

/// `<hostname>-<pid>`: the default replica name (unique among live replicas).
pub fn default_replica() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "bosun".into());
    format!("{host}-{}", std::process::id())
}

/// How a replica takes part in its controller kind's membership.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    pub controller: Controller,
    /// Unique among live replicas ([`default_replica`]).
    pub replica: String,
    /// The lease's TTL: how long a replica that stopped renewing keeps its shards (the
    /// broker rounds it up to whole seconds, at least 2 s).
    pub ttl: Duration,
    /// How often queue depth and last handoff are reported on the member key.
    pub report_every: Duration,
}

impl MembershipConfig {
    /// `controller` with the default replica name, a 10 s TTL, reports every 2 s.
    pub fn new(controller: Controller) -> MembershipConfig {
        MembershipConfig {
            controller,
            replica: default_replica(),
            ttl: Duration::from_secs(10),
            report_every: Duration::from_secs(2),
        }
    }
}

/// A replica's membership: joins, keeps its lease alive, follows the other members and
/// takes or releases shards so that it holds its rendezvous share
/// (`bosun_api::shard::assigned`), and publishes what it holds ([`Membership::held`]).
///
/// When the lease is lost (expired while the broker was unreachable, revoked), it publishes
/// [`Held::none`] at once, then joins again. Dropping it stops it without a word (the
/// lease then expires: the other replicas take its shards after the TTL); [`Membership::leave`]
/// revokes the lease so they take them at once.
pub struct Membership {
    replica: String,
    held: watch::Receiver<Held>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    leave: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    queue_depth: AtomicU64,
    lease: AtomicI64,
}

/// The membership's metrics.
#[derive(Clone)]
struct MembershipMetrics {
    held: Gauge,
    handoffs: Counter,
    lease_losses: Counter,
}

impl MembershipMetrics {
    fn new(metrics: &Metrics, controller: Controller) -> MembershipMetrics {
        let labels = [("controller", controller.name())];
        MembershipMetrics {
            held: metrics.gauge(
                "bosun_shards_held",
                "virtual shards this replica holds",
                &labels,
            ),
            handoffs: metrics.counter(
                "bosun_shard_handoffs_total",
                "membership changes this replica settled (its shards taken or released)",
                &labels,
            ),
            lease_losses: metrics.counter(
                "bosun_shard_lease_losses_total",
                "times this replica's lease expired or was revoked under it (every shard dropped at once)",
                &labels,
            ),
        }
    }
}

impl Membership {
    /// Starts taking part (in a task of its own); [`Membership::held`] is [`Held::none`] until
    /// the first shards are taken.
    pub fn start(client: ShardsClient, config: MembershipConfig, metrics: &Metrics) -> Membership {
        let (tx, held) = watch::channel(Held::none(config.controller, SHARDS));
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let leave = CancellationToken::new();
        let replica = config.replica.clone();
        let run = Run {
            client,
            metrics: MembershipMetrics::new(metrics, config.controller),
            config,
            tx,
            shared: shared.clone(),
            stop: stop.clone(),
            leave: leave.clone(),
            last_handoff: None,
        };
        let task = tokio::spawn(run.run());
        Membership {
            replica,
            held,
            shared,
            stop,
            leave,
            task: Some(task),
        }
    }

    /// What this replica holds, updated at every change.
    pub fn held(&self) -> watch::Receiver<Held> {
        self.held.clone()
    }

    /// This replica's name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The current lease (0 between sessions).
    pub fn lease_id(&self) -> i64 {
        self.shared.lease.load(Ordering::Relaxed)
    }

    /// The controller's queue depth, reported on the member key (`bosun get controllers`).
    pub fn set_queue_depth(&self, depth: u64) {
        self.shared.queue_depth.store(depth, Ordering::Relaxed);
    }

    /// Starts leaving as [`Membership::leave`] does, without waiting for it (from a shared
    /// handle: a shutdown signal hands the shards over while the controller drains).
    pub fn start_leaving(&self) {
        self.leave.cancel();
        self.stop.cancel();
    }

    /// Leaves gracefully: publishes [`Held::none`], revokes the lease (the others take the
    /// shards at once) and waits for the task to end.
    pub async fn leave(mut self) {
        self.leave.cancel();
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Without leave(): stop renewing; the lease expires by itself.
        self.stop.cancel();
    }
}

/// What one session (one lease) knows.
struct Session {
    lease: i64,
    ttl: Duration,
    /// shard → token, as last published.
    held: BTreeMap<u32, i64>,
    /// The member names of the last snapshot.
    members: Vec<String>,
    /// When a membership change was seen and not yet settled.
    change_at: Option<Instant>,
    last: Option<v1::Membership>,
}

/// Why a session ended.
enum End {
    Stopped,
    LeaseLost,
}

struct Run {
    client: ShardsClient,
    config: MembershipConfig,
    metrics: MembershipMetrics,
    tx: watch::Sender<Held>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    leave: CancellationToken,
    /// (at, how long) of the last settled handoff.
    last_handoff: Option<(chrono::DateTime<chrono::Utc>, Duration)>,
}

/// Pause between attempts to join or to reopen the members stream.
const RETRY: Duration = Duration::from_millis(200);
/// How often an unsettled replica retries acquiring (besides every membership change).
const RESETTLE: Duration = Duration::from_millis(500);

impl Run {
    async fn run(mut self) {
        let c = self.config.controller;
        loop {
            let Some(session) = self.join().await else {
                return;
            };
            self.shared.lease.store(session.lease, Ordering::Relaxed);
            let end = self.session(session).await;
            self.publish(BTreeMap::new());
            self.shared.lease.store(0, Ordering::Relaxed);
            match end {
                End::Stopped => return,
                End::LeaseLost => {
                    self.metrics.lease_losses.inc();
                    tracing::warn!(controller = %c, replica = %self.config.replica, "lease lost: every shard dropped; joining again");
                }
            }
        }
    }

    fn publish(&self, tokens: BTreeMap<u32, i64>) {
        self.metrics.held.set(tokens.len() as i64);
        let held = Held {
            controller: self.config.controller,
            count: SHARDS,
            tokens,
        };
        self.tx.send_if_modified(|h| {
            let changed = *h != held;
            *h = held;
            changed
        });
    }

    /// Joins, retrying until it works or the membership stops.
    async fn join(&mut self) -> Option<Session> {
        let req = v1::JoinRequest {
            controller: self.config.controller.name().to_string(),
            replica: self.config.replica.clone(),
            ttl_ms: u64::try_from(self.config.ttl.as_millis()).unwrap_or(u64::MAX),
        };
        loop {
            if self.stop.is_cancelled() {
                return None;
            }
            match self.client.join(req.clone()).await {
                Ok(r) => {
                    let r = r.into_inner();
                    tracing::info!(controller = %self.config.controller, replica = %self.config.replica, lease = format!("{:x}", r.lease_id), ttl_ms = r.ttl_ms, "joined");
                    return Some(Session {
                        lease: r.lease_id,
                        ttl: Duration::from_millis(r.ttl_ms.max(1000)),
                        held: BTreeMap::new(),
                        members: Vec::new(),
                        change_at: Some(Instant::now()),
                        last: None,
                    });
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "join failed; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = self.stop.cancelled() => return None,
            }
        }
    }

    async fn session(&mut self, mut s: Session) -> End {
        let c = self.config.controller;
        let mut keepalive = tokio::time::interval(s.ttl / 3);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut report = tokio::time::interval(self.config.report_every);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resettle = tokio::time::interval(RESETTLE);
        resettle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_renewed = Instant::now();
        let mut stream: Option<tonic::Streaming<v1::Membership>> = None;
        loop {
            if stream.is_none() {
                match self
                    .client
                    .watch_members(v1::WatchMembersRequest {
                        controller: c.name().to_string(),
                    })
                    .await
                {
                    Ok(r) => stream = Some(r.into_inner()),
                    Err(status) => {
                        tracing::warn!(code = ?status.code(), message = status.message(), "watching members failed; retrying");
                    }
                }
            }
            let next = async {
                match stream.as_mut() {
                    Some(st) => st.message().await,
                    None => {
                        tokio::time::sleep(RETRY).await;
                        Ok(None)
                    }
                }
            };
            tokio::select! {
                _ = self.stop.cancelled() => {
                    if self.leave.is_cancelled() {
                        self.publish(BTreeMap::new());
                        let _ = self.client.leave(v1::LeaveRequest { lease_id: s.lease }).await;
                        tracing::info!(controller = %c, replica = %self.config.replica, "left");
                    }
                    return End::Stopped;
                }
                _ = keepalive.tick() => {
                    match self.client.keep_alive(v1::KeepAliveRequest { lease_id: s.lease }).await {
                        Ok(_) => last_renewed = Instant::now(),
                        Err(status) if status.code() == tonic::Code::NotFound => return End::LeaseLost,
                        Err(status) => {
                            tracing::warn!(code = ?status.code(), message = status.message(), "keepalive failed");
                            if last_renewed.elapsed() >= s.ttl {
                                return End::LeaseLost;
                            }
                        }
                    }
                }
                _ = report.tick() => self.report(&s).await,
                _ = resettle.tick(), if s.change_at.is_some() => {
                    if let Some(snap) = s.last.clone()
                        && let Err(end) = self.settle(&mut s, snap).await
                    {
                        return end;
                    }
                }
                msg = next => match msg {
                    Ok(Some(snap)) => {
                        if let Err(end) = self.settle(&mut s, snap).await {
                            return end;
                        }
                    }
                    Ok(None) => {
                        if stream.take().is_some() {
                            tracing::debug!("members stream ended; reopening");
                        }
                    }
                    Err(status) => {
                        tracing::warn!(code = ?status.code(), message = status.message(), "members stream failed; reopening");
                        stream = None;
                    }
                },
            }
        }
    }

    /// Releases what this replica should no longer hold, takes what it should and is free,
    /// and publishes what it holds. `Err` when the lease is gone.
    async fn settle(&mut self, s: &mut Session, snap: v1::Membership) -> Result<(), End> {
        let me = self.config.replica.as_str();
        let mut members: Vec<String> = snap.members.iter().map(|m| m.replica.clone()).collect();
        if !members.iter().any(|m| m == me) {
            members.push(me.to_string());
        }
        members.sort();
        if members != s.members {
            s.members = members.clone();
            s.change_at.get_or_insert_with(Instant::now);
        }
        let names: Vec<&str> = members.iter().map(String::as_str).collect();
        let desired = plan(me, s.lease, &names, &snap, &s.held);
        s.last = Some(snap);

        if !desired.release.is_empty() {
            // Stop acting for them before anyone else can take them.
            let kept: BTreeMap<u32, i64> = s
                .held
                .iter()
                .filter(|(k, _)| !desired.release.contains(k))
                .map(|(k, v)| (*k, *v))
                .collect();
            s.held = kept.clone();
            self.publish(kept);
            let req = v1::ReleaseRequest {
                controller: self.config.controller.name().to_string(),
                lease_id: s.lease,
                shards: desired.release.clone(),
            };
            if let Err(status) = self.client.release(req).await {
                if status.code() == tonic::Code::NotFound {
                    return Err(End::LeaseLost);
                }
                tracing::warn!(code = ?status.code(), message = status.message(), "release failed; retrying");
                return Ok(());
            }
        }
        let mut held = desired.mine.clone();
        held.retain(|k, _| !desired.release.contains(k));
        if !desired.acquire.is_empty() {
            let req = v1::AcquireRequest {
                controller: self.config.controller.name().to_string(),
                replica: me.to_string(),
                lease_id: s.lease,
                shards: desired.acquire.clone(),
            };
            match self.client.acquire(req).await {
                Ok(r) => {
                    held = r
                        .into_inner()
                        .held
                        .into_iter()
                        .filter(|o| !desired.release.contains(&o.shard))
                        .map(|o| (o.shard, o.token))
                        .collect();
                }
                Err(status) if status.code() == tonic::Code::NotFound => {
                    return Err(End::LeaseLost);
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "acquire failed; retrying");
                }
            }
        }
        s.held = held.clone();
        self.publish(held);
        let settled = desired.want.iter().all(|w| s.held.contains_key(w))
            && s.held.keys().all(|k| desired.want.contains(k));
        if settled && let Some(at) = s.change_at.take() {
            let took = at.elapsed();
            self.last_handoff = Some((chrono::Utc::now(), took));
            self.metrics.handoffs.inc();
            tracing::info!(controller = %self.config.controller, replica = me, held = s.held.len(), took_ms = took.as_millis() as u64, "handoff settled");
        }
        Ok(())
    }

    async fn report(&mut self, s: &Session) {
        let (at, ms) = match self.last_handoff {
            Some((at, took)) => (
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                took.as_millis() as u64,
            ),
            None => (String::new(), 0),
        };
        let req = v1::ReportRequest {
            controller: self.config.controller.name().to_string(),
            replica: self.config.replica.clone(),
            lease_id: s.lease,
            queue_depth: self.shared.queue_depth.load(Ordering::Relaxed),
            last_handoff_at: at,
            last_handoff_ms: ms,
        };
        if let Err(status) = self.client.report(req).await {
            tracing::debug!(code = ?status.code(), message = status.message(), "report failed");
        }
    }
}

/// What a replica should do with a membership snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Its rendezvous share.
    pub want: Vec<u32>,
    /// What its lease holds now (shard → token).
    pub mine: BTreeMap<u32, i64>,
    /// Held, no longer its share.
    pub release: Vec<u32>,
    /// Its share, free now (those another lease holds wait for their release or expiry).
    pub acquire: Vec<u32>,
}

/// The plan of replica `me` (on `lease`) among `members`, given the snapshot `snap` and what
/// it `held` before. A shard taken after the snapshot was read (its token, a create revision,
/// is newer than the snapshot's revision) and free in it is still held: a snapshot read just
/// before an acquire must not make the replica drop what it has just taken.
pub fn plan(
    me: &str,
    lease: i64,
    members: &[&str],
    snap: &v1::Membership,
    held: &BTreeMap<u32, i64>,
) -> Plan {
    let want = bosun_api::shard::assigned(me, members, SHARDS);
    let owners = &snap.owners;
    let taken: std::collections::HashSet<u32> = owners.iter().map(|o| o.shard).collect();
    let mut mine: BTreeMap<u32, i64> = owners
        .iter()
        .filter(|o| o.lease_id == lease)
        .map(|o| (o.shard, o.token))
        .collect();
    for (&shard, &token) in held {
        if token > snap.revision && !taken.contains(&shard) {
            mine.insert(shard, token);
        }
    }
    let taken: std::collections::HashSet<u32> = taken
        .union(&mine.keys().copied().collect())
        .copied()
        .collect();
    let release = mine
        .keys()
        .filter(|s| want.binary_search(s).is_err())
        .copied()
        .collect();
    let acquire = want
        .iter()
        .filter(|s| !taken.contains(s))
        .copied()
        .collect();
    Plan {
        want,
        mine,
        release,
        acquire,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(shard: u32, lease: i64) -> v1::ShardOwner {
        v1::ShardOwner {
            shard,
            replica: String::new(),
            lease_id: lease,
            token: 100 + i64::from(shard),
        }
    }

    #[test]
    fn a_plan_releases_what_is_not_its_share_and_takes_only_free_shards() {
        let both = ["a", "b"];
        let a_share = bosun_api::shard::assigned("a", &both, SHARDS);
        let b_share = bosun_api::shard::assigned("b", &both, SHARDS);
        let (a0, b0) = (a_share[0], b_share[0]);
        // (what, owners, want released, want acquired)
        type Case = (&'static str, Vec<v1::ShardOwner>, Vec<u32>, Vec<u32>);
        let cases: [Case; 4] = [
            (
                "nothing held: takes its whole share",
                vec![],
                vec![],
                a_share.clone(),
            ),
            (
                "holds b's shard: releases it",
                vec![owner(b0, 1)],
                vec![b0],
                a_share.clone(),
            ),
            (
                "b still holds a's shard: waits for it",
                vec![owner(a0, 2)],
                vec![],
                a_share[1..].to_vec(),
            ),
            (
                "holds its own: nothing more to take for it",
                vec![owner(a0, 1)],
                vec![],
                a_share[1..].to_vec(),
            ),
        ];
        for (what, owners, release, acquire) in cases {
            let snap = v1::Membership {
                owners,
                revision: 1000,
                ..Default::default()
            };
            let p = plan("a", 1, &both, &snap, &BTreeMap::new());
            assert_eq!(p.want, a_share, "{what}");
            assert_eq!(p.release, release, "{what}");
            assert_eq!(p.acquire, acquire, "{what}");
        }
        // Alone: everything.
        let empty = v1::Membership::default();
        let none = BTreeMap::new();
        assert_eq!(
            plan("a", 1, &["a"], &empty, &none).acquire.len(),
            SHARDS as usize
        );
        // Taken after the snapshot was read: still held, not taken again; taken before and
        // free in the snapshot: lost (released, or the lease's keys expired).
        let snap = v1::Membership {
            revision: 1000,
            ..Default::default()
        };
        let held = BTreeMap::from([(a_share[0], 1001), (a_share[1], 999)]);
        let p = plan("a", 1, &both, &snap, &held);
        assert_eq!(p.mine, BTreeMap::from([(a_share[0], 1001)]));
        assert!(!p.acquire.contains(&a_share[0]));
        assert!(p.acquire.contains(&a_share[1]));
    }
}
