//! The watch fan-out: one etcd watch per kind, a window of recent events in memory, and any
//! number of subscribers served from it.
//!
//! Each kind has a [`Hub`]. Its etcd watch starts some revisions back (or at etcd's compact
//! revision) so a subscriber resuming after a broker restart misses nothing. Every event is
//! decoded once, into what the filters read (`Selectable`: namespace, labels, selectable
//! fields; the decoded object itself is not kept), and its stored bytes are shared by every
//! subscriber. A
//! subscriber registers under the hub's lock: it takes the window's events after its
//! revision and a broadcast receiver in one step, so nothing falls between backlog and live
//! events. Subscribers that fall behind are cut off with "too slow: resume from revision N";
//! the broadcast never waits for them.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bosun_api::kind::KindInfo;
use bosun_api::selector::{FieldSelector, LabelSelector, Selectable};
use bosun_api::v1::{EventType, Kind, WatchEvent, WatchResponse};
use bytes::Bytes;
use etcd_client::{
    EventType as EtcdEventType, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::metrics::BrokerMetrics;

/// Most events put in one `WatchResponse`.
const MAX_BATCH: usize = 512;
/// Broadcast messages (one per etcd watch response) a hub keeps for slow readers.
const BROADCAST_CAPACITY: usize = 4096;

/// One event as the broker keeps it: the stored bytes plus what the filters read of it.
#[derive(Debug)]
pub struct StoredEvent {
    pub ty: EventType,
    pub revision: i64,
    /// The etcd value (for DELETED: the last stored value), shared by every subscriber.
    pub bytes: Bytes,
    pub view: Selectable,
    /// Its root uid per controller kind (what a shard filter reads).
    pub roots: crate::shards::Roots,
}

impl StoredEvent {
    fn to_proto(&self) -> WatchEvent {
        WatchEvent {
            r#type: self.ty as i32,
            revision: self.revision,
            object: self.bytes.clone(),
        }
    }
}

/// What a hub broadcasts to its subscribers.
#[derive(Debug, Clone)]
enum Msg {
    /// Events of one etcd watch response, in revision order. The window holds them; a
    /// message only points at them, so the channel's ring of past messages (kept for slow
    /// readers) pins no event the window has let go of. A reader that finds an event gone
    /// fell a whole window behind.
    Events(Arc<[(i64, Weak<StoredEvent>)]>),
    /// etcd confirmed every event up to this revision has been delivered.
    Progress(i64),
    /// The hub lost events (etcd compacted while it was reconnecting): everyone relists.
    Reset { oldest: i64 },
}

#[derive(Debug, Default)]
struct State {
    window: VecDeque<Arc<StoredEvent>>,
    /// Subscribers from this revision or newer can be served completely.
    floor: i64,
    /// The newest revision the hub knows everything up to.
    current: i64,
    /// etcd's revision when the hub started ("now" for a subscriber that gives none).
    head_at_start: i64,
}

/// The fan-out point of one kind.
pub struct Hub {
    info: &'static KindInfo,
    capacity: usize,
    state: Mutex<State>,
    tx: broadcast::Sender<Msg>,
    ready: watch::Sender<bool>,
}

/// What a subscriber asked for.
#[derive(Debug, Clone)]
pub struct Filter {
    pub namespace: String,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Only these shards of a controller kind (and the unsharded objects); `None`: all.
    pub shards: Option<crate::shards::ShardSet>,
}

impl Filter {
    fn matches(&self, e: &StoredEvent) -> bool {
        let view = &e.view;
        (self.namespace.is_empty() || view.namespace == self.namespace)
            && self.labels.matches(&view.labels)
            && self.fields.matches_view(view)
            && self
                .shards
                .as_ref()
                .is_none_or(|s| s.passes_roots(&e.roots))
    }
}

/// Settings shared by every hub and subscriber.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub window_events: usize,
    pub bookmark_interval: Duration,
    /// Events a subscriber may have queued before it is cut off as too slow.
    pub subscriber_buffer_events: usize,
}

/// The response stream of one subscriber.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, tonic::Status>> + Send>>;

/// Every kind's hub.
pub struct Hubs {
    hubs: Vec<Arc<Hub>>,
    settings: WatchSettings,
    metrics: BrokerMetrics,
    shutdown: CancellationToken,
}

impl Hubs {
    /// Starts one etcd watch per kind; each runs until `shutdown`.
    pub fn start(
        client: &etcd_client::Client,
        settings: WatchSettings,
        metrics: BrokerMetrics,
        shutdown: CancellationToken,
    ) -> (Arc<Hubs>, Vec<tokio::task::JoinHandle<()>>) {
        let mut hubs = Vec::new();
        let mut tasks = Vec::new();
        for info in bosun_api::kind::KINDS {
            let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
            let hub = Arc::new(Hub {
                info,
                capacity: settings.window_events.max(1),
                state: Mutex::new(State::default()),
                tx,
                ready: watch::channel(false).0,
            });
            tasks.push(tokio::spawn(run_hub(
                hub.clone(),
                client.clone(),
                settings.bookmark_interval,
                metrics.clone(),
                shutdown.clone(),
            )));
            hubs.push(hub);
        }
        let hubs = Arc::new(Hubs {
            hubs,
            settings,
            metrics,
            shutdown,
        });
        (hubs, tasks)
    }

    fn hub(&self, kind: Kind) -> Result<&Arc<Hub>, Error> {
        self.hubs
            .iter()
            .find(|h| h.info.kind == kind)
            .ok_or_else(|| Error::BadRequest("kind is required".into()))
    }

    /// Subscribes to `kind` from `revision` (0: from now).
    pub async fn subscribe(
        &self,
        kind: Kind,
        revision: i64,
        filter: Filter,
        allow_bookmarks: bool,
    ) -> Result<WatchStream, Error> {
        let hub = self.hub(kind)?.clone();
        let mut ready = hub.ready.subscribe();
        tokio::select! {
            r = ready.wait_for(|r| *r) => { r.map_err(|_| Error::ShuttingDown { resume_from: revision })?; }
            _ = self.shutdown.cancelled() => return Err(Error::ShuttingDown { resume_from: revision }),
        }
        let (rx, backlog, from) = {
            let state = hub.state.lock().unwrap_or_else(|p| p.into_inner());
            if revision != 0 && revision < state.floor {
                return Err(Error::Expired {
                    requested: revision,
                    oldest: state.floor,
                });
            }
            let from = if revision == 0 {
                state.current.max(state.head_at_start)
            } else {
                revision
            };
            let backlog: Vec<Arc<StoredEvent>> = state
                .window
                .iter()
                .filter(|e| e.revision > from)
                .cloned()
                .collect();
            (hub.tx.subscribe(), backlog, from)
        };
        let (out, out_rx) = mpsc::channel(2);
        let end: Arc<Mutex<Option<tonic::Status>>> = Arc::default();
        let sub = Subscriber {
            kind: hub.info.plural,
            filter,
            allow_bookmarks,
            out,
            end: end.clone(),
            start: from,
            last: from,
            delivered: from,
            pending: VecDeque::new(),
            buffer_limit: self.settings.subscriber_buffer_events.max(1),
            metrics: self.metrics.clone(),
        };
        let shutdown = self.shutdown.clone();
        let span = tracing::debug_span!("watch", kind = hub.info.plural, from);
        tokio::spawn(tracing::Instrument::instrument(
            sub.run(backlog, rx, shutdown),
            span,
        ));
        let data = tokio_stream::wrappers::ReceiverStream::new(out_rx).map(Ok);
        let tail =
            futures::stream::once(
                async move { end.lock().unwrap_or_else(|p| p.into_inner()).take() },
            )
            .filter_map(|s| futures::future::ready(s.map(Err)));
        Ok(Box::pin(data.chain(tail)))
    }
}

impl Hub {
    /// Marks the hub ready with its first revision.
    fn start_at(&self, start: i64, head: i64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.floor = start - 1;
        s.current = s.current.max(start - 1);
        s.head_at_start = head;
        drop(s);
        self.ready.send_replace(true);
    }

    /// The hub lost events: the window restarts at `start`, subscribers must relist.
    fn reset(&self, start: i64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.window.clear();
        s.floor = start - 1;
        s.current = start - 1;
        let _ = self.tx.send(Msg::Reset { oldest: start - 1 });
    }

    fn publish(&self, events: Vec<Arc<StoredEvent>>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for e in &events {
            s.current = s.current.max(e.revision);
            s.window.push_back(e.clone());
        }
        while s.window.len() > self.capacity {
            if let Some(old) = s.window.pop_front() {
                s.floor = s.floor.max(old.revision);
            }
        }
        // Sent under the lock so a subscriber registering concurrently sees each event
        // exactly once: either in its backlog or through its receiver.
        let refs = events.iter().map(|e| (e.revision, Arc::downgrade(e)));
        let _ = self.tx.send(Msg::Events(refs.collect()));
    }

    fn progress(&self, revision: i64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.current = s.current.max(revision);
        let _ = self.tx.send(Msg::Progress(revision));
    }
}

/// Keeps one kind's etcd watch running, reconnecting from the last revision seen.
async fn run_hub(
    hub: Arc<Hub>,
    client: etcd_client::Client,
    bookmark_interval: Duration,
    metrics: BrokerMetrics,
    shutdown: CancellationToken,
) {
    let prefix = hub.info.etcd_prefix();
    let kv = client
        .kv_client()
        .max_decoding_message_size(crate::ETCD_MAX_MESSAGE_BYTES);
    let mut backoff = Duration::from_millis(100);
    // The first revision the watch asks for; None until etcd's head is known.
    let mut next: Option<i64> = None;
    let mut started = false;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let start = match next {
            Some(n) => n,
            None => match head_revision(&client).await {
                Ok(head) => {
                    // Replay a window's worth of revisions so resuming after a restart works.
                    let start = (head - hub.capacity as i64 + 1).max(1);
                    hub.state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .head_at_start = head;
                    next = Some(start);
                    start
                }
                Err(err) => {
                    tracing::warn!(kind = hub.info.plural, %err, "cannot read etcd's revision; retrying");
                    pause(&shutdown, &mut backoff).await;
                    continue;
                }
            },
        };
        // No prev_kv: see `deleted_values`.
        let opts = WatchOptions::new()
            .with_prefix()
            .with_progress_notify()
            .with_start_revision(start);
        let stream = match client
            .watch_client()
            .max_decoding_message_size(crate::ETCD_MAX_MESSAGE_BYTES)
            .watch(prefix.clone(), Some(opts))
            .await
        {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(kind = hub.info.plural, %err, "cannot open the etcd watch; retrying");
                pause(&shutdown, &mut backoff).await;
                continue;
            }
        };
        let (mut sender, mut responses) = stream.split();
        // No progress request right after (re)connecting: etcd 3.4 (before 3.4.24) answers
        // one with its current revision even while this watch is still replaying older
        // events, and that early "progress" would become a bookmark ahead of them.
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + bookmark_interval,
            bookmark_interval,
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let resp = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {
                    if started && let Err(err) = sender.request_progress().await {
                        tracing::warn!(kind = hub.info.plural, %err, "progress request failed");
                    }
                    continue;
                }
                r = responses.message() => r,
            };
            let resp = match resp {
                Ok(Some(r)) => r,
                Ok(None) => {
                    tracing::warn!(kind = hub.info.plural, "etcd watch ended; reconnecting");
                    break;
                }
                Err(err) => {
                    tracing::warn!(kind = hub.info.plural, %err, "etcd watch failed; reconnecting");
                    break;
                }
            };
            backoff = Duration::from_millis(100);
            if resp.canceled() {
                let compacted = resp.compact_revision();
                if compacted > 0 {
                    tracing::info!(
                        kind = hub.info.plural,
                        start,
                        compacted,
                        "etcd compacted the revisions asked for; starting at its compact revision"
                    );
                    if started {
                        hub.reset(compacted);
                    }
                    next = Some(compacted);
                } else {
                    tracing::warn!(
                        kind = hub.info.plural,
                        reason = resp.cancel_reason(),
                        "etcd canceled the watch; reconnecting"
                    );
                }
                break;
            }
            if resp.created() {
                if !started {
                    let head = hub
                        .state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .head_at_start;
                    hub.start_at(start, head);
                    started = true;
                    tracing::info!(kind = hub.info.plural, start, "watching etcd");
                }
                continue;
            }
            let header_rev = resp.header().map_or(0, |h| h.revision());
            if resp.events().is_empty() {
                hub.progress(header_rev);
                continue;
            }
            let deleted = match deleted_values(&kv, resp.events()).await {
                Ok(values) => values,
                Err(err) if is_compacted(&err) => {
                    // Only when the hub lags behind etcd's compaction: subscribers relist.
                    tracing::warn!(kind = hub.info.plural, %err, "a deleted object's last value is compacted away; subscribers relist");
                    hub.reset(header_rev + 1);
                    next = Some(header_rev + 1);
                    break;
                }
                Err(err) => {
                    tracing::warn!(kind = hub.info.plural, %err, "cannot read what deleted objects held; reconnecting");
                    break;
                }
            };
            let mut batch = Vec::with_capacity(resp.events().len());
            for ev in resp.events() {
                match convert(ev, &deleted) {
                    Ok(Some(e)) => {
                        next = Some(e.revision + 1);
                        batch.push(Arc::new(e));
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::error!(kind = hub.info.plural, %err, "skipping an undecodable event")
                    }
                }
            }
            metrics.events_received(hub.info.plural, batch.len());
            hub.publish(batch);
        }
        pause(&shutdown, &mut backoff).await;
    }
}

/// Waits `backoff` (doubling it up to 5 s) unless shutting down.
async fn pause(shutdown: &CancellationToken, backoff: &mut Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
}

async fn head_revision(client: &etcd_client::Client) -> Result<i64, etcd_client::Error> {
    let resp = client
        .kv_client()
        .get(
            "/bosun/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await?;
    Ok(resp.header().map_or(0, |h| h.revision()))
}

/// The last values of the keys deleted among `events`, by (key, revision of the delete).
///
/// The hub watches without etcd's prev_kv: with it, etcd reads the previous value of every
/// event it sends (measured on `bosun-bench jobs`: half of etcd's CPU), where only a DELETED
/// event needs it. The deletes of one watch response are read back here instead, in one txn
/// of ranges at each delete's revision − 1.
async fn deleted_values(
    kv: &KvClient,
    events: &[etcd_client::Event],
) -> Result<HashMap<(Vec<u8>, i64), Vec<u8>>, etcd_client::Error> {
    let deletes: Vec<(&[u8], i64)> = events
        .iter()
        .filter(|e| e.event_type() == EtcdEventType::Delete)
        .filter_map(|e| e.kv())
        .map(|kv| (kv.key(), kv.mod_revision()))
        .collect();
    let mut values = HashMap::new();
    for chunk in deletes.chunks(crate::batch::ETCD_DEFAULT_MAX_TXN_OPS) {
        let ops: Vec<TxnOp> = chunk
            .iter()
            .map(|(key, rev)| TxnOp::get(*key, Some(GetOptions::new().with_revision(rev - 1))))
            .collect();
        let resp = kv.clone().txn(Txn::new().and_then(ops)).await?;
        for ((key, rev), op) in chunk.iter().zip(resp.op_responses()) {
            if let TxnOpResponse::Get(got) = op
                && let Some(found) = got.kvs().first()
            {
                values.insert((key.to_vec(), *rev), found.value().to_vec());
            }
        }
    }
    Ok(values)
}

/// Whether etcd refused a read because the revision asked for is compacted away.
fn is_compacted(err: &etcd_client::Error) -> bool {
    matches!(err, etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::OutOfRange)
}

/// An etcd event as the broker keeps it (`deleted`: see [`deleted_values`]).
fn convert(
    ev: &etcd_client::Event,
    deleted: &HashMap<(Vec<u8>, i64), Vec<u8>>,
) -> Result<Option<StoredEvent>, Error> {
    let Some(kv) = ev.kv() else { return Ok(None) };
    let revision = kv.mod_revision();
    let (ty, value) = match ev.event_type() {
        EtcdEventType::Put if kv.create_revision() == kv.mod_revision() => {
            (EventType::Added, kv.value())
        }
        EtcdEventType::Put => (EventType::Modified, kv.value()),
        EtcdEventType::Delete => match deleted.get(&(kv.key().to_vec(), revision)) {
            Some(prev) => (EventType::Deleted, &prev[..]),
            None => return Ok(None),
        },
    };
    let object = crate::store::decode(kv.key(), value, revision)?;
    Ok(Some(StoredEvent {
        ty,
        revision,
        bytes: Bytes::copy_from_slice(value),
        view: Selectable::of(&object),
        roots: crate::shards::Roots::of_object(&object),
    }))
}

/// One subscriber's task: filters, batches and forwards; never blocks the hub.
struct Subscriber {
    kind: &'static str,
    filter: Filter,
    allow_bookmarks: bool,
    out: mpsc::Sender<WatchResponse>,
    end: Arc<Mutex<Option<tonic::Status>>>,
    /// The revision the subscriber started from: it has every event up to it.
    start: i64,
    /// The newest revision looked at.
    last: i64,
    /// The revision the client can resume from (everything up to it handed over).
    delivered: i64,
    pending: VecDeque<WatchEvent>,
    buffer_limit: usize,
    metrics: BrokerMetrics,
}

impl Subscriber {
    async fn run(
        mut self,
        backlog: Vec<Arc<StoredEvent>>,
        mut rx: broadcast::Receiver<Msg>,
        shutdown: CancellationToken,
    ) {
        let _gauge = self.metrics.subscriber(self.kind);
        // A resuming subscriber's backlog (bounded by the window) is not a sign of slowness:
        // the limit applies to what piles up on top of it.
        self.buffer_limit += backlog.len();
        self.take_events(&backlog);
        let mut sent_since_progress = false;
        let outcome: Option<Error> = loop {
            if self.pending.len() > self.buffer_limit {
                break Some(Error::TooSlow {
                    resume_from: self.delivered,
                });
            }
            if self.pending.is_empty() {
                self.delivered = self.last;
            }
            let out = self.out.clone();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Some(Error::ShuttingDown { resume_from: self.delivered }),
                _ = out.closed() => break None,
                permit = out.reserve(), if !self.pending.is_empty() => {
                    let Ok(permit) = permit else { break None };
                    let mut n = self.pending.len().min(MAX_BATCH);
                    // One etcd txn can write several objects at one revision: never split a
                    // revision across responses, or a client resuming from the last revision
                    // it saw would miss the rest of it.
                    while n < self.pending.len() && self.pending[n].revision == self.pending[n - 1].revision {
                        n += 1;
                    }
                    let events: Vec<WatchEvent> = self.pending.drain(..n).collect();
                    if let Some(e) = events.last() {
                        self.delivered = e.revision;
                    }
                    self.metrics.events_sent(self.kind, events.len());
                    sent_since_progress = true;
                    permit.send(WatchResponse { events });
                }
                msg = rx.recv() => match msg {
                    Ok(Msg::Events(evs)) => {
                        if !self.take_broadcast(&evs) {
                            break Some(Error::TooSlow { resume_from: self.delivered });
                        }
                        // Batch whatever else is already queued.
                        while self.pending.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(Msg::Events(evs)) => {
                                    if !self.take_broadcast(&evs) {
                                        let err = Error::TooSlow { resume_from: self.delivered };
                                        return self.finish(Some(err));
                                    }
                                }
                                Ok(Msg::Progress(_)) => {}
                                Ok(Msg::Reset { oldest }) => {
                                    let err = Error::Expired { requested: self.delivered, oldest };
                                    return self.finish(Some(err));
                                }
                                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                    let err = Error::TooSlow { resume_from: self.delivered };
                                    return self.finish(Some(err));
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    Ok(Msg::Progress(rev)) => {
                        if self.allow_bookmarks && !sent_since_progress && self.pending.is_empty() && rev >= self.last {
                            self.last = rev;
                            self.pending.push_back(WatchEvent {
                                r#type: EventType::Bookmark as i32,
                                revision: rev,
                                object: Bytes::new(),
                            });
                        }
                        sent_since_progress = false;
                    }
                    Ok(Msg::Reset { oldest }) => break Some(Error::Expired { requested: self.delivered, oldest }),
                    Err(broadcast::error::RecvError::Lagged(_)) => break Some(Error::TooSlow { resume_from: self.delivered }),
                    Err(broadcast::error::RecvError::Closed) => break Some(Error::ShuttingDown { resume_from: self.delivered }),
                },
            }
        };
        self.finish(outcome);
    }

    /// Queues the events after `last` that pass the filter.
    fn take_events(&mut self, events: &[Arc<StoredEvent>]) {
        for e in events {
            self.take_event(e);
        }
    }

    /// Queues the events of a broadcast message; `false` when one it needs has already left
    /// the window (this subscriber fell a whole window behind).
    fn take_broadcast(&mut self, events: &[(i64, Weak<StoredEvent>)]) -> bool {
        for (revision, e) in events {
            if !self.wants(*revision) {
                continue;
            }
            let Some(e) = e.upgrade() else {
                return false;
            };
            self.take_event(&e);
        }
        true
    }

    /// Whether an event at `revision` is new to this subscriber. Several events can share a
    /// revision (one etcd txn); a subscriber has everything up to the revision it started
    /// from.
    fn wants(&self, revision: i64) -> bool {
        revision > self.start && revision >= self.last
    }

    fn take_event(&mut self, e: &StoredEvent) {
        if !self.wants(e.revision) {
            return;
        }
        self.last = e.revision;
        if self.filter.matches(e) {
            self.pending.push_back(e.to_proto());
        }
    }

    /// Ends the stream: the status (if any) follows whatever was already handed over.
    fn finish(self, outcome: Option<Error>) {
        if let Some(err) = outcome {
            match &err {
                Error::TooSlow { .. } => {
                    tracing::warn!(kind = self.kind, %err, "cutting off a slow subscriber")
                }
                _ => tracing::debug!(kind = self.kind, %err, "watch ended"),
            }
            *self.end.lock().unwrap_or_else(|p| p.into_inner()) = Some(err.into());
        }
    }
}
