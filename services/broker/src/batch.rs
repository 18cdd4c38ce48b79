//! Coalesces the broker's single-key etcd requests into few etcd transactions.
//!
//! Every object write is one guarded operation (`compare` on one key, then one put or
//! delete). Under load many such writes wait at the same time; sending each as its own txn
//! makes etcd pay a raft round, a WAL append and an fsync per object. The [`Batcher`] takes
//! whatever is waiting (up to [`MAX_WRITES`]) and sends it as one txn whose operations are
//! nested txns, one per request: each keeps its own compare, so one conflict fails only its
//! own write, and the whole batch costs etcd one raft round. Reads are batched the same way
//! (one read-only txn of ranges). With one request waiting, it goes out alone, unchanged, so
//! an idle broker adds no latency.
//!
//! All writes of one batch share one etcd revision, so several objects can carry the same
//! resourceVersion; the watch path keeps a revision's events together (see `watch.rs`).
//!
//! etcd refuses a txn that writes one key twice, so a write whose key is already in the
//! batch waits for the next one. It also refuses a txn of more operations than its
//! `--max-txn-ops` or of more bytes than its `--max-request-bytes`: a batch is cut at
//! [`Limits::writes`] writes and at [`BATCH_BYTES`] bytes (a write larger than that goes
//! alone), so one large object never fails the writes batched with it.

use std::collections::HashSet;
use std::sync::Arc;

use etcd_client::{Compare, CompareOp, KeyValue, KvClient, Txn, TxnOp, TxnOpResponse};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::{Error, Result};

/// etcd's default `--max-txn-ops`.
pub const ETCD_DEFAULT_MAX_TXN_OPS: usize = 128;
/// Writes per etcd txn at most, whatever etcd allows. Measured with `bosun-bench cronjobs`
/// (1,000 Job creates at one instant, etcd at `--max-txn-ops=1024`): batches of up to 500
/// gave a creation skew p99 of 109–114 ms where batches of 100 gave 130–134 ms.
pub const MAX_WRITES: usize = 500;
/// Bytes of keys and values per write batch at most: etcd refuses a request over its
/// `--max-request-bytes` (1.5 MiB by default), and the txn's envelope needs room too.
pub const BATCH_BYTES: usize = 1 << 20;

/// How large a batch may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Writes per txn: each is a nested txn of two compares (the object's, and a shard's
    /// fence) and one operation, and etcd gives a nested txn only what its parent leaves
    /// (`--max-txn-ops` − the parent's ops), so at most `--max-txn-ops` − 2.
    pub writes: usize,
    /// Reads per txn (plain ranges: `--max-txn-ops`).
    pub reads: usize,
}

impl Limits {
    /// The limits for an etcd started with `--max-txn-ops=max_txn_ops`.
    pub fn for_etcd(max_txn_ops: usize) -> Limits {
        Limits {
            writes: max_txn_ops.saturating_sub(2).clamp(1, MAX_WRITES),
            reads: max_txn_ops.clamp(1, MAX_WRITES),
        }
    }
}
/// Batches sent to etcd at once; the next batch forms while these are out. Measured with
/// `bosun-bench sched`: 2 in flight gave 2,220 binds/s, 4 gave 2,141, 8 gave 1,897.
const IN_FLIGHT: usize = 2;

/// What a guarded write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Whether the compares held (and the operation ran).
    pub succeeded: bool,
    /// etcd's revision after the txn: the new object's mod_revision when it succeeded.
    pub revision: i64,
    /// When the write was fenced and its fence no longer holds: the owner key's create
    /// revision now (`Some(None)`: no one holds the shard). `None`: not fenced, or the fence
    /// held (a failure is then the object's own compare: a conflict).
    pub fence_lost: Option<Option<i64>>,
}

/// The second compare of a fenced write: the shard's owner key still has the create revision
/// the writer took it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceGuard {
    pub owner_key: Vec<u8>,
    pub token: i64,
}

impl FenceGuard {
    /// The guard of `fence`.
    pub fn of(fence: &bosun_api::shard::Fence) -> FenceGuard {
        FenceGuard {
            owner_key: bosun_api::shard::owner_key(fence.controller, fence.shard).into_bytes(),
            token: fence.token,
        }
    }
}

/// One guarded write as a txn: the object's compare (and the fence's), the operation, and on
/// failure a read of the owner key so the caller tells "fenced" from "conflict" in one round
/// trip.
fn guarded(compare: Compare, fence: Option<&FenceGuard>, op: TxnOp) -> Txn {
    match fence {
        None => Txn::new().when([compare]).and_then([op]),
        Some(f) => Txn::new()
            .when([
                compare,
                Compare::create_revision(f.owner_key.clone(), CompareOp::Equal, f.token),
            ])
            .and_then([op])
            .or_else([TxnOp::get(f.owner_key.clone(), None)]),
    }
}

/// Whether a failed fenced write lost its fence: the owner key's create revision now
/// (`Some(None)`: free) when it differs from the token.
fn fence_outcome(
    succeeded: bool,
    fence: Option<&FenceGuard>,
    failure: &[TxnOpResponse],
) -> Option<Option<i64>> {
    let f = fence.filter(|_| !succeeded)?;
    let now = failure.iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => Some(g.kvs().first().map(|kv| kv.create_revision())),
        _ => None,
    })?;
    (now != Some(f.token)).then_some(now)
}

// A write is the common request and is moved through a channel once: boxing its large
// `Compare`/`TxnOp` would cost an allocation per write for nothing.
#[allow(clippy::large_enum_variant)]
enum Request {
    Write {
        key: Vec<u8>,
        /// Bytes the write adds to a txn (key and value).
        size: usize,
        compare: Compare,
        fence: Option<FenceGuard>,
        op: TxnOp,
        reply: oneshot::Sender<Result<Written>>,
    },
    Read {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<Option<KeyValue>>>,
    },
}

/// The handle the store uses; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::UnboundedSender<Request>,
}

impl Batcher {
    /// Starts the dispatcher task (it ends when every handle is dropped).
    pub fn start(kv: KvClient, limits: Limits) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(kv, limits, rx));
        Batcher { tx }
    }

    /// Runs `op` on `key` if `compare` holds (and, when fenced, the fence too);
    /// `value_len` is the size of the value `op` writes (0 for a delete).
    pub async fn write(
        &self,
        key: Vec<u8>,
        value_len: usize,
        compare: Compare,
        fence: Option<FenceGuard>,
        op: TxnOp,
    ) -> Result<Written> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Write {
            size: key.len() + value_len,
            key,
            compare,
            fence,
            op,
            reply,
        })?;
        rx.await.map_err(|_| stopped())?
    }

    /// Reads one key.
    pub async fn read(&self, key: Vec<u8>) -> Result<Option<KeyValue>> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Read { key, reply })?;
        rx.await.map_err(|_| stopped())?
    }

    fn send(&self, req: Request) -> Result<()> {
        self.tx.send(req).map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::Etcd(etcd_client::Error::Internal(
        "the broker's etcd batcher stopped".into(),
    ))
}

/// Gives each waiter of a failed batch its own copy of the error.
fn share(err: &etcd_client::Error) -> Error {
    Error::Etcd(match err {
        etcd_client::Error::GRpcStatus(s) => etcd_client::Error::GRpcStatus(s.clone()),
        other => etcd_client::Error::Internal(other.to_string()),
    })
}

struct WriteBatch {
    ops: Vec<(Compare, Option<FenceGuard>, TxnOp)>,
    replies: Vec<oneshot::Sender<Result<Written>>>,
}

struct ReadBatch {
    keys: Vec<Vec<u8>>,
    replies: Vec<oneshot::Sender<Result<Option<KeyValue>>>>,
}

async fn dispatch(kv: KvClient, limits: Limits, mut rx: mpsc::UnboundedReceiver<Request>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    // A write whose key was already in the batch being formed opens the next one.
    let mut carried: Option<Request> = None;
    loop {
        // Wait for a free slot first, so requests pile up (and batch) while etcd is busy.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(r) => r,
            None => match rx.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        let mut writes = WriteBatch {
            ops: Vec::new(),
            replies: Vec::new(),
        };
        let mut reads = ReadBatch {
            keys: Vec::new(),
            replies: Vec::new(),
        };
        let mut keys: HashSet<Vec<u8>> = HashSet::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Write {
                    key,
                    size,
                    compare,
                    fence,
                    op,
                    reply,
                } => {
                    let too_big = !writes.ops.is_empty() && bytes + size > BATCH_BYTES;
                    if too_big || keys.contains(&key) {
                        carried = Some(Request::Write {
                            key,
                            size,
                            compare,
                            fence,
                            op,
                            reply,
                        });
                        break;
                    }
                    bytes += size;
                    keys.insert(key);
                    writes.ops.push((compare, fence, op));
                    writes.replies.push(reply);
                }
                Request::Read { key, reply } => {
                    reads.keys.push(key);
                    reads.replies.push(reply);
                }
            }
            if writes.ops.len() >= limits.writes
                || reads.keys.len() >= limits.reads
                || bytes >= BATCH_BYTES
            {
                break;
            }
            next = rx.try_recv().ok();
        }
        let kv = kv.clone();
        tokio::spawn(async move {
            let both = futures::future::join(run_writes(&kv, writes), run_reads(&kv, reads));
            both.await;
            drop(permit);
        });
    }
}

async fn run_writes(kv: &KvClient, batch: WriteBatch) {
    let WriteBatch { ops, replies } = batch;
    match ops.len() {
        0 => {}
        1 => {
            let (compare, fence, op) = ops.into_iter().next().expect("one op");
            let result = kv.clone().txn(guarded(compare, fence.as_ref(), op)).await;
            let written = result.map_err(Error::from).map(|resp| Written {
                succeeded: resp.succeeded(),
                revision: resp.header().map_or(0, |h| h.revision()),
                fence_lost: fence_outcome(
                    resp.succeeded(),
                    fence.as_ref(),
                    resp.op_responses().as_slice(),
                ),
            });
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(written);
            }
        }
        n => {
            let mut fences = Vec::with_capacity(n);
            let nested: Vec<TxnOp> = ops
                .into_iter()
                .map(|(compare, fence, op)| {
                    let txn = TxnOp::txn(guarded(compare, fence.as_ref(), op));
                    fences.push(fence);
                    txn
                })
                .collect();
            match kv.clone().txn(Txn::new().and_then(nested)).await {
                Ok(resp) => {
                    let revision = resp.header().map_or(0, |h| h.revision());
                    let outcomes = resp.op_responses();
                    debug_assert_eq!(outcomes.len(), n);
                    for ((reply, outcome), fence) in replies.into_iter().zip(outcomes).zip(fences) {
                        let (succeeded, fence_lost) = match outcome {
                            TxnOpResponse::Txn(t) => (
                                t.succeeded(),
                                fence_outcome(
                                    t.succeeded(),
                                    fence.as_ref(),
                                    t.op_responses().as_slice(),
                                ),
                            ),
                            _ => (false, None),
                        };
                        let _ = reply.send(Ok(Written {
                            succeeded,
                            revision,
                            fence_lost,
                        }));
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, writes = n, "etcd refused a batch of writes");
                    for reply in replies {
                        let _ = reply.send(Err(share(&err)));
                    }
                }
            }
        }
    }
}

async fn run_reads(kv: &KvClient, batch: ReadBatch) {
    let ReadBatch { keys, replies } = batch;
    match keys.len() {
        0 => {}
        1 => {
            let key = keys.into_iter().next().expect("one key");
            let result = kv.clone().get(key, None).await;
            let read = result
                .map_err(Error::from)
                .map(|mut resp| resp.take_kvs().into_iter().next());
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(read);
            }
        }
        n => {
            let ops: Vec<TxnOp> = keys.into_iter().map(|k| TxnOp::get(k, None)).collect();
            match kv.clone().txn(Txn::new().and_then(ops)).await {
                Ok(resp) => {
                    let outcomes = resp.op_responses();
                    debug_assert_eq!(outcomes.len(), n);
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let kv = match outcome {
                            TxnOpResponse::Get(mut g) => g.take_kvs().into_iter().next(),
                            _ => None,
                        };
                        let _ = reply.send(Ok(kv));
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, reads = n, "etcd refused a batch of reads");
                    for reply in replies {
                        let _ = reply.send(Err(share(&err)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_limits_follow_etcds_max_txn_ops() {
        // (etcd's --max-txn-ops, writes per txn, reads per txn)
        let cases = [
            (ETCD_DEFAULT_MAX_TXN_OPS, 126, 128),
            (1024, MAX_WRITES, MAX_WRITES),
            (3, 1, 3),
            (2, 1, 2),
        ];
        for (max_txn_ops, writes, reads) in cases {
            assert_eq!(
                Limits::for_etcd(max_txn_ops),
                Limits { writes, reads },
                "--max-txn-ops={max_txn_ops}"
            );
        }
    }
}
