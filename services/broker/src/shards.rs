//! The `Shards` gRPC service (scale-out: several active replicas of one controller kind
//! share its virtual shards; `proto/bosun/v1/shards.proto`), and the shard filter of lists
//! and watches.
//!
//! Everything lives in etcd under `/bosun/shards/<controller>/`: a replica's member key and
//! the owner key of each shard it holds, all on the replica's own lease. When the lease goes
//! (revoked by `Leave`, or expired) its keys go with it in one etcd revision. The owner key's
//! create revision is the shard's fencing token (checked by the store on every fenced write).

use std::collections::BTreeMap;

use bosun_api::shard::{Controller, SHARDS, member_key, owner_key};
use bosun_api::v1::shards_server::Shards;
use bosun_api::v1::{
    AcquireRequest, AcquireResponse, JoinRequest, JoinResponse, KeepAliveRequest,
    KeepAliveResponse, LeaveRequest, LeaveResponse, ListControllersRequest,
    ListControllersResponse, Member, Membership, ReleaseRequest, ReleaseResponse, ReportRequest,
    ReportResponse, ShardFilter, ShardOwner, WatchMembersRequest,
};
use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp, WatchOptions};
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::error::{Error, Result};
use crate::metrics::BrokerMetrics;

/// etcd 3.4's shortest lease: `ceil(3 × election ticks / 2) × heartbeat` = 1.5 s with the
/// default ticks, rounded up to whole seconds (it grants at least that whatever is asked).
pub const MIN_TTL_SECONDS: i64 = 2;

/// Nested txns per etcd txn (etcd's default `--max-txn-ops` is 128).
const OPS_PER_TXN: usize = 100;

/// The prefix of every key of `controller`'s scale-out.
pub fn prefix(controller: Controller) -> String {
    format!("/bosun/shards/{controller}/")
}

/// The TTL in whole seconds granted for `ttl_ms`: rounded up, at least [`MIN_TTL_SECONDS`].
pub fn ttl_seconds(ttl_ms: u64) -> i64 {
    i64::try_from(ttl_ms.div_ceil(1000))
        .unwrap_or(i64::MAX)
        .max(MIN_TTL_SECONDS)
}

/// A controller kind named in a request.
pub fn controller(name: &str) -> Result<Controller> {
    Controller::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Controller::ALL.iter().map(|c| c.name()).collect();
        Error::BadRequest(format!(
            "unknown controller {name:?}: one of {}",
            known.join(", ")
        ))
    })
}

fn check_shards(shards: &[u32]) -> Result<()> {
    match shards.iter().find(|s| **s >= SHARDS) {
        Some(s) => Err(Error::BadRequest(format!(
            "shard {s} is out of range: a controller kind has shards 0..{SHARDS}"
        ))),
        None => Ok(()),
    }
}

fn check_replica(replica: &str) -> Result<()> {
    if replica.is_empty() || replica.contains('/') {
        return Err(Error::BadRequest(format!(
            "replica name {replica:?}: must be non-empty and without '/' (e.g. host-1234)"
        )));
    }
    Ok(())
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What a list or watch is limited to: the objects of some shards of one controller kind,
/// and the unsharded ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSet {
    pub controller: Controller,
    pub count: u32,
    /// Indexed by shard.
    wanted: Vec<bool>,
}

impl ShardSet {
    /// The set a request's filter names; `None` (everything) when absent or without a
    /// controller. A controller with no shards lets only the unsharded objects through.
    pub fn parse(filter: Option<&ShardFilter>) -> Result<Option<ShardSet>> {
        let Some(f) = filter else { return Ok(None) };
        if f.controller.is_empty() {
            if !f.shards.is_empty() {
                return Err(Error::BadRequest(
                    "shard filter: shards given without a controller (job, cronjob, daemonset)"
                        .into(),
                ));
            }
            return Ok(None);
        }
        let controller = controller(&f.controller)?;
        if f.shard_count == 0 {
            return Err(Error::BadRequest(format!(
                "shard filter: shard_count is 0; the {controller} controller has {SHARDS}"
            )));
        }
        let mut wanted = vec![false; f.shard_count as usize];
        for &s in &f.shards {
            let slot = wanted.get_mut(s as usize).ok_or_else(|| {
                Error::BadRequest(format!(
                    "shard filter: shard {s} is out of range 0..{}",
                    f.shard_count
                ))
            })?;
            *slot = true;
        }
        Ok(Some(ShardSet {
            controller,
            count: f.shard_count,
            wanted,
        }))
    }

    /// Whether an object whose root uid for the set's controller is `root` passes.
    pub fn passes_root(&self, root: Option<&str>) -> bool {
        root.is_none_or(|uid| self.wanted[bosun_api::shard::of_uid(uid, self.count) as usize])
    }

    /// Whether `obj` passes (unsharded objects always do).
    pub fn passes(&self, obj: &bosun_api::Object) -> bool {
        self.passes_root(bosun_api::shard::root_uid(self.controller, obj))
    }

    /// Whether an object with these roots (see [`Roots`]) passes.
    pub fn passes_roots(&self, roots: &Roots) -> bool {
        self.passes_root(roots.of(self.controller))
    }
}

/// An object's root uid for each controller kind (kept with each watch event, so a shard
/// filter reads no object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roots([Option<Box<str>>; 3]);

impl Roots {
    pub fn of_object(obj: &bosun_api::Object) -> Roots {
        Roots(Controller::ALL.map(|c| bosun_api::shard::root_uid(c, obj).map(Box::from)))
    }

    fn of(&self, controller: Controller) -> Option<&str> {
        let i = Controller::ALL
            .iter()
            .position(|c| *c == controller)
            .unwrap_or(0);
        self.0[i].as_deref()
    }
}

/// The `Shards` service.
#[derive(Clone)]
pub struct ShardService {
    pub(crate) client: etcd_client::Client,
    pub(crate) metrics: BrokerMetrics,
    pub(crate) shutdown: CancellationToken,
}

/// Reads a controller kind's members and owners out of the keys under its prefix.
fn snapshot(controller: Controller, kvs: &[KeyValue], revision: i64) -> Membership {
    let base = prefix(controller);
    let mut members = Vec::new();
    let mut owners = Vec::new();
    for kv in kvs {
        let Ok(key) = kv.key_str() else { continue };
        let Some(rest) = key.strip_prefix(&base) else {
            continue;
        };
        if rest.starts_with("members/") {
            match Member::decode(kv.value()) {
                Ok(mut m) => {
                    m.lease_id = kv.lease();
                    members.push(m);
                }
                Err(err) => tracing::warn!(key, %err, "member key does not decode; skipped"),
            }
        } else if let Some(shard) = rest.strip_prefix("owners/") {
            let mut o = ShardOwner::decode(kv.value()).unwrap_or_default();
            o.shard = shard.parse().unwrap_or(o.shard);
            o.lease_id = kv.lease();
            o.token = kv.create_revision();
            owners.push(o);
        }
    }
    members.sort_by(|a, b| a.replica.cmp(&b.replica));
    owners.sort_by_key(|o| o.shard);
    Membership {
        controller: controller.name().to_string(),
        members,
        owners,
        revision,
    }
}

impl ShardService {
    async fn read(&self, controller: Controller) -> Result<Membership> {
        let resp = self
            .client
            .kv_client()
            .get(prefix(controller), Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        Ok(snapshot(controller, resp.kvs(), revision))
    }

    async fn observe<T>(
        &self,
        method: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<Response<T>, Status> {
        let started = std::time::Instant::now();
        let result = fut.await.map(Response::new).map_err(Status::from);
        let code = result
            .as_ref()
            .map_or_else(|s| s.code(), |_| tonic::Code::Ok);
        if let Err(status) = &result {
            tracing::debug!(code = ?status.code(), message = status.message(), "shards request failed");
        }
        self.metrics
            .request(method, code, started.elapsed().as_secs_f64());
        result
    }

    /// Runs `ops` (nested txns) in etcd txns of at most [`OPS_PER_TXN`]; a lease that is gone
    /// is [`Error::LeaseGone`].
    async fn run_nested(&self, lease: i64, ops: Vec<TxnOp>) -> Result<()> {
        let mut kv = self.client.kv_client();
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let chunk: Vec<TxnOp> = ops.by_ref().take(OPS_PER_TXN).collect();
            kv.txn(Txn::new().and_then(chunk))
                .await
                .map_err(|e| lease_error(lease, e))?;
        }
        Ok(())
    }
}

/// etcd's "lease not found" as [`Error::LeaseGone`]; anything else as it is.
fn lease_error(lease: i64, err: etcd_client::Error) -> Error {
    // A txn's put: a gRPC status; a keepalive: the client's own error; same words.
    if err.to_string().contains("lease not found") {
        Error::LeaseGone { lease }
    } else {
        Error::Etcd(err)
    }
}

type MembersStream = ReceiverStream<Result<Membership, Status>>;

#[tonic::async_trait]
impl Shards for ShardService {
    #[instrument(skip_all, fields(controller = %req.get_ref().controller, replica = %req.get_ref().replica))]
    async fn join(&self, req: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let req = req.into_inner();
        self.observe("Join", async {
            let c = controller(&req.controller)?;
            check_replica(&req.replica)?;
            let ttl = ttl_seconds(req.ttl_ms);
            let granted = self.client.lease_client().grant(ttl, None).await?;
            let lease = granted.id();
            let member = Member {
                controller: c.name().to_string(),
                replica: req.replica.clone(),
                lease_id: lease,
                joined_at: now_rfc3339(),
                ..Default::default()
            };
            let key = member_key(c, &req.replica);
            let put = TxnOp::put(
                key.clone(),
                member.encode_to_vec(),
                Some(etcd_client::PutOptions::new().with_lease(lease)),
            );
            let resp = self
                .client
                .kv_client()
                .txn(
                    Txn::new()
                        .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
                        .and_then([put]),
                )
                .await?;
            if !resp.succeeded() {
                let _ = self.client.lease_client().revoke(lease).await;
                return Err(Error::AlreadyExists {
                    resource: format!("{c} controller replica"),
                    name: format!(
                        "{} (a live member on another lease: choose another replica name, or wait for its lease to expire)",
                        req.replica
                    ),
                });
            }
            tracing::info!(controller = %c, replica = %req.replica, lease = format!("{lease:x}"), ttl, "replica joined");
            Ok(JoinResponse {
                lease_id: lease,
                ttl_ms: u64::try_from(granted.ttl()).unwrap_or(0) * 1000,
            })
        })
        .await
    }

    #[instrument(skip_all, fields(lease = req.get_ref().lease_id))]
    async fn keep_alive(
        &self,
        req: Request<KeepAliveRequest>,
    ) -> Result<Response<KeepAliveResponse>, Status> {
        let lease = req.into_inner().lease_id;
        self.observe("KeepAlive", async {
            let gone = |e| lease_error(lease, e);
            let (mut keeper, mut stream) = self
                .client
                .lease_client()
                .keep_alive(lease)
                .await
                .map_err(gone)?;
            keeper.keep_alive().await.map_err(gone)?;
            let resp = stream.message().await.map_err(gone)?;
            match resp {
                Some(r) if r.ttl() > 0 => Ok(KeepAliveResponse {
                    ttl_ms: u64::try_from(r.ttl()).unwrap_or(0) * 1000,
                }),
                _ => Err(Error::LeaseGone { lease }),
            }
        })
        .await
    }

    #[instrument(skip_all, fields(lease = req.get_ref().lease_id))]
    async fn leave(&self, req: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        let lease = req.into_inner().lease_id;
        self.observe("Leave", async {
            match self.client.lease_client().revoke(lease).await {
                Ok(_) => {}
                // Already gone: leaving is done.
                Err(e) => match lease_error(lease, e) {
                    Error::LeaseGone { .. } => {}
                    other => return Err(other),
                },
            }
            tracing::info!(lease = format!("{lease:x}"), "replica left");
            Ok(LeaveResponse {})
        })
        .await
    }

    #[instrument(skip_all, fields(controller = %req.get_ref().controller, replica = %req.get_ref().replica, lease = req.get_ref().lease_id))]
    async fn acquire(
        &self,
        req: Request<AcquireRequest>,
    ) -> Result<Response<AcquireResponse>, Status> {
        let req = req.into_inner();
        self.observe("Acquire", async {
            let c = controller(&req.controller)?;
            check_shards(&req.shards)?;
            let lease = req.lease_id;
            let ops: Vec<TxnOp> = req
                .shards
                .iter()
                .map(|&shard| {
                    let key = owner_key(c, shard);
                    let value = ShardOwner {
                        shard,
                        replica: req.replica.clone(),
                        lease_id: lease,
                        token: 0,
                    };
                    TxnOp::txn(
                        Txn::new()
                            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                            .and_then([TxnOp::put(
                                key,
                                value.encode_to_vec(),
                                Some(etcd_client::PutOptions::new().with_lease(lease)),
                            )]),
                    )
                })
                .collect();
            self.run_nested(lease, ops).await?;
            let now = self.read(c).await?;
            if !now.members.iter().any(|m| m.lease_id == lease) {
                return Err(Error::LeaseGone { lease });
            }
            let held = now
                .owners
                .into_iter()
                .filter(|o| o.lease_id == lease)
                .collect();
            Ok(AcquireResponse { held })
        })
        .await
    }

    #[instrument(skip_all, fields(controller = %req.get_ref().controller, lease = req.get_ref().lease_id))]
    async fn release(
        &self,
        req: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        let req = req.into_inner();
        self.observe("Release", async {
            let c = controller(&req.controller)?;
            check_shards(&req.shards)?;
            let lease = req.lease_id;
            let ops: Vec<TxnOp> = req
                .shards
                .iter()
                .map(|&shard| {
                    let key = owner_key(c, shard);
                    TxnOp::txn(
                        Txn::new()
                            .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
                            .and_then([TxnOp::delete(key, None)]),
                    )
                })
                .collect();
            self.run_nested(lease, ops).await?;
            Ok(ReleaseResponse {})
        })
        .await
    }

    type WatchMembersStream = MembersStream;

    #[instrument(skip_all, fields(controller = %req.get_ref().controller))]
    async fn watch_members(
        &self,
        req: Request<WatchMembersRequest>,
    ) -> Result<Response<MembersStream>, Status> {
        let req = req.into_inner();
        self.observe("WatchMembers", async {
            let c = controller(&req.controller)?;
            let first = self.read(c).await?;
            let mut watch = self
                .client
                .watch_client()
                .watch(
                    prefix(c),
                    Some(
                        WatchOptions::new()
                            .with_prefix()
                            .with_start_revision(first.revision + 1),
                    ),
                )
                .await?;
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            let service = self.clone();
            tokio::spawn(async move {
                let mut last = first.revision;
                if tx.send(Ok(first)).await.is_err() {
                    return;
                }
                loop {
                    let message = tokio::select! {
                        m = watch.message() => m,
                        _ = tx.closed() => return,
                        _ = service.shutdown.cancelled() => {
                            let _ = tx.send(Err(Status::unavailable("the broker is shutting down: watch members again"))).await;
                            return;
                        }
                    };
                    let resp = match message {
                        Ok(Some(r)) => r,
                        Ok(None) => {
                            let _ = tx.send(Err(Status::unavailable("etcd ended the members watch: watch again"))).await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(Error::Etcd(e).into())).await;
                            return;
                        }
                    };
                    if resp.canceled() {
                        let _ = tx.send(Err(Status::unavailable("etcd cancelled the members watch: watch again"))).await;
                        return;
                    }
                    if resp.events().is_empty() {
                        continue;
                    }
                    match service.read(c).await {
                        Ok(snap) if snap.revision > last => {
                            last = snap.revision;
                            if tx.send(Ok(snap)).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                    }
                }
            });
            Ok(ReceiverStream::new(rx))
        })
        .await
    }

    #[instrument(skip_all, fields(controller = %req.get_ref().controller, replica = %req.get_ref().replica))]
    async fn report(
        &self,
        req: Request<ReportRequest>,
    ) -> Result<Response<ReportResponse>, Status> {
        let req = req.into_inner();
        self.observe("Report", async {
            let c = controller(&req.controller)?;
            let lease = req.lease_id;
            let key = member_key(c, &req.replica);
            let mut kv = self.client.kv_client();
            let stored = kv.get(key.clone(), None).await?;
            let Some(current) = stored.kvs().first().filter(|kv| kv.lease() == lease) else {
                return Err(Error::LeaseGone { lease });
            };
            let mut member = Member::decode(current.value()).map_err(|source| Error::Decode {
                key: key.clone(),
                source,
            })?;
            member.queue_depth = req.queue_depth;
            member.last_handoff_at = req.last_handoff_at.clone();
            member.last_handoff_ms = req.last_handoff_ms;
            let resp = kv
                .txn(
                    Txn::new()
                        .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
                        .and_then([TxnOp::put(
                            key,
                            member.encode_to_vec(),
                            Some(etcd_client::PutOptions::new().with_lease(lease)),
                        )]),
                )
                .await
                .map_err(|e| lease_error(lease, e))?;
            if !resp.succeeded() {
                return Err(Error::LeaseGone { lease });
            }
            Ok(ReportResponse {})
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_controllers(
        &self,
        _req: Request<ListControllersRequest>,
    ) -> Result<Response<ListControllersResponse>, Status> {
        self.observe("ListControllers", async {
            let resp = self
                .client
                .kv_client()
                .get("/bosun/shards/", Some(GetOptions::new().with_prefix()))
                .await?;
            let revision = resp.header().map_or(0, |h| h.revision());
            let mut by_controller: BTreeMap<Controller, Vec<KeyValue>> = BTreeMap::new();
            for kv in resp.kvs() {
                let Ok(key) = kv.key_str() else { continue };
                let name = key
                    .strip_prefix("/bosun/shards/")
                    .and_then(|r| r.split('/').next())
                    .unwrap_or("");
                if let Some(c) = Controller::parse(name) {
                    by_controller.entry(c).or_default().push(kv.clone());
                }
            }
            let controllers = by_controller
                .into_iter()
                .map(|(c, kvs)| snapshot(c, &kvs, revision))
                .collect();
            Ok(ListControllersResponse { controllers })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds_and_etcds_minimum() {
        for (ms, want) in [
            (0, 2),
            (1, 2),
            (1500, 2),
            (2000, 2),
            (2001, 3),
            (10_000, 10),
        ] {
            assert_eq!(ttl_seconds(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn shard_filters_are_checked() {
        let f = |controller: &str, count: u32, shards: &[u32]| ShardFilter {
            controller: controller.into(),
            shard_count: count,
            shards: shards.to_vec(),
        };
        let table: [(&str, Option<ShardFilter>, Result<bool, &str>); 7] = [
            ("absent", None, Ok(false)),
            ("empty", Some(ShardFilter::default()), Ok(false)),
            ("some shards", Some(f("job", 256, &[1, 2])), Ok(true)),
            (
                "no shards: unsharded only",
                Some(f("job", 256, &[])),
                Ok(true),
            ),
            (
                "unknown controller",
                Some(f("pod", 256, &[1])),
                Err("unknown controller"),
            ),
            ("no count", Some(f("job", 0, &[1])), Err("shard_count is 0")),
            ("out of range", Some(f("job", 4, &[4])), Err("out of range")),
        ];
        for (what, filter, want) in table {
            match (ShardSet::parse(filter.as_ref()), want) {
                (Ok(set), Ok(some)) => assert_eq!(set.is_some(), some, "{what}"),
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{what}: {e}"),
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_filter_passes_its_shards_and_the_unsharded() {
        let set = ShardSet::parse(Some(&ShardFilter {
            controller: "job".into(),
            shard_count: 4,
            shards: vec![bosun_api::shard::of_uid("in", 4)],
        }))
        .unwrap()
        .unwrap();
        assert!(set.passes_root(Some("in")));
        assert!(set.passes_root(None));
        let out = (0..100)
            .map(|i| format!("uid-{i}"))
            .find(|u| bosun_api::shard::of_uid(u, 4) != bosun_api::shard::of_uid("in", 4))
            .unwrap();
        assert!(!set.passes_root(Some(&out)));
    }
}
