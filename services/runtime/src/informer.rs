//! The informer: keeps a [`Store`] in step with the broker for one kind, as a small state
//! machine (kube-runtime's watcher):
//!
//! ```text
//!   Relist ──list ok──► Watch(rev) ──event──► Watch(event rev)      (bookmarks too)
//!     ▲                    │  └──stream ended / transient error──► Watch(rev) (resume)
//!     └──── expired ───────┘
//! ```
//!
//! A relist replaces the store and reports the difference (including synthetic deletes for
//! objects that vanished while the watch was down). Every change goes to the registered
//! handlers, which only compute keys and enqueue them (sample-controller style); helpers
//! for the two usual handlers are [`enqueue_self`] and [`enqueue_controller_owner`].
//!
//! An informer caches whole objects, or with [`Informer::projected`] a compact entry built
//! from each (a controller that caches every pod of a large Job keeps only what it reads).
//!
//! A **sharded** informer ([`Informer::sharded`], scale-out) lists and watches only the
//! objects of the shards its replica holds (a `ShardFilter`, none when it holds them all);
//! when the held shards change, it relists with the new filter and reports the difference
//! as a relist after "expired" does: deletes for the objects of shards that left, adds for
//! those of shards that came. A broker that ignores the filter just sends everything.

use std::sync::Arc;
use std::time::Duration;

use bosun_api::object::object_key;
use bosun_api::{Kind, Object};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::cache::{self, Cached, Change, ChangeKind, Store, StoreWriter};
use crate::client::{Broker, ClientError, ObjectList, Selector, WatchEvent};
use crate::metrics::{Counter, Gauge, Metrics};
use crate::queue::{Backoff, WorkQueue};
use crate::sharded::{Coverage, Held, ShardSet, filter_of};

/// A stream of decoded watch events; it ends when the server ends the watch.
pub type EventStream = BoxStream<'static, Result<WatchEvent, ClientError>>;

/// Where an informer lists and watches: the broker, or a fake in tests.
pub trait ListWatch: Send + Sync + 'static {
    /// Lists `kind` with the revision read at.
    fn list<'a>(
        &'a self,
        kind: Kind,
        selector: &'a Selector,
    ) -> BoxFuture<'a, Result<ObjectList, ClientError>>;

    /// Watches `kind` for events after `revision`.
    fn watch<'a>(
        &'a self,
        kind: Kind,
        selector: &'a Selector,
        revision: i64,
    ) -> BoxFuture<'a, Result<EventStream, ClientError>>;
}

impl ListWatch for Broker {
    fn list<'a>(
        &'a self,
        kind: Kind,
        selector: &'a Selector,
    ) -> BoxFuture<'a, Result<ObjectList, ClientError>> {
        Box::pin(Broker::list(self, kind, selector))
    }

    fn watch<'a>(
        &'a self,
        kind: Kind,
        selector: &'a Selector,
        revision: i64,
    ) -> BoxFuture<'a, Result<EventStream, ClientError>> {
        Box::pin(async move {
            let stream = Broker::watch(self, kind, selector, revision).await?;
            let events = futures::stream::unfold(Some(stream), |state| async move {
                let mut stream = state?;
                match stream.next().await {
                    Ok(Some(ev)) => Some((Ok(ev), Some(stream))),
                    Ok(None) => None,
                    // Yield the error, then end.
                    Err(err) => Some((Err(err), None)),
                }
            });
            Ok(events.boxed())
        })
    }
}

/// A change handler: computes keys from a change and enqueues them. Must not block.
pub type Handler<T = Object> = Box<dyn Fn(&Change<T>) + Send + Sync>;

/// Builds the cache entry of each listed or watched object (see [`Informer::projected`]).
pub type Projection<T> = Box<dyn Fn(Object) -> T + Send + Sync>;

struct InformerMetrics {
    events: Counter,
    relists: Counter,
    objects: Gauge,
    revision: Gauge,
}

/// Lists then watches one kind into a [`Store`]; see the module docs.
pub struct Informer<T = Object> {
    kind: Kind,
    selector: Selector,
    source: Arc<dyn ListWatch>,
    writer: StoreWriter<T>,
    handlers: Vec<Handler<T>>,
    metrics: Option<InformerMetrics>,
    /// Delay between failed list/watch attempts.
    retry: Backoff,
    /// Turns every listed or watched object into what is stored.
    project: Projection<T>,
    /// The shards held, when sharded.
    held: Option<watch::Receiver<Held>>,
    /// Where a sharded informer says which shards its cache covers.
    covered: Option<(watch::Sender<Option<Option<ShardSet>>>, Coverage)>,
}

/// The shard filter a sharded informer lists and watches with, and the channel it follows.
struct Shards {
    held: Option<watch::Receiver<Held>>,
    /// The filter of the last list (what the store holds).
    in_use: Option<ShardSet>,
}

impl Shards {
    /// `base` with the filter of the shards held now, which becomes the one in use.
    fn selector(&mut self, base: &Selector) -> Selector {
        if let Some(held) = &mut self.held {
            self.in_use = filter_of(&held.borrow_and_update());
        }
        base.clone().shards(self.in_use.clone())
    }

    /// `base` with the filter in use.
    fn current(&self, base: &Selector) -> Selector {
        base.clone().shards(self.in_use.clone())
    }

    /// Resolves once the held shards differ from the filter in use (a token-only change
    /// does not count); never for an unsharded informer, or once the channel is closed.
    async fn moved(&mut self) {
        loop {
            let Some(held) = &mut self.held else {
                return std::future::pending().await;
            };
            if held.changed().await.is_err() {
                // The membership is gone for good: keep the last filter.
                self.held = None;
                continue;
            }
            if filter_of(&held.borrow_and_update()) != self.in_use {
                return;
            }
        }
    }
}

/// Where the informer's state machine stands.
enum Step {
    Relist,
    Watch(i64),
}

impl Informer<Object> {
    /// An informer for `kind` objects that `selector` picks, from `source`, caching whole
    /// objects.
    pub fn new(source: Arc<dyn ListWatch>, kind: Kind, selector: Selector) -> Informer {
        Informer::projected(source, kind, selector, |obj| obj)
    }

    /// An informer over the broker.
    pub fn for_broker(broker: &Broker, kind: Kind, selector: Selector) -> Informer {
        Informer::new(Arc::new(broker.clone()), kind, selector)
    }

    /// Applies `transform` to every object (list items and watch events) before it is stored,
    /// e.g. to drop the fields a controller never reads and keep a large cache small (for a
    /// cache of a few fields, [`Informer::projected`] is smaller still).
    ///
    /// A transformed cache holds partial objects: they must never be written back to the
    /// broker (an update would wipe the dropped fields). Read the object fresh with
    /// `Broker::get` before updating it.
    pub fn with_transform(
        mut self,
        transform: impl Fn(&mut Object) + Send + Sync + 'static,
    ) -> Informer {
        let project = std::mem::replace(&mut self.project, Box::new(|obj| obj));
        self.project = Box::new(move |obj| {
            let mut obj = project(obj);
            transform(&mut obj);
            obj
        });
        self
    }
}

impl<T: Cached> Informer<T> {
    /// An informer for `kind` objects that `selector` picks, from `source`, caching
    /// `project(object)` for each listed or watched object (deletions included), e.g. the
    /// few fields a controller reads, so a large cache stays small.
    ///
    /// A projected entry is not the object: a controller never writes one back, it reads
    /// the object fresh with `Broker::get` or sends a targeted update
    /// (`Broker::update_finalizers`).
    pub fn projected(
        source: Arc<dyn ListWatch>,
        kind: Kind,
        selector: Selector,
        project: impl Fn(Object) -> T + Send + Sync + 'static,
    ) -> Informer<T> {
        let (_, writer) = cache::store();
        Informer {
            kind,
            selector,
            source,
            writer,
            handlers: Vec::new(),
            metrics: None,
            retry: Backoff::new(Duration::from_millis(100), Duration::from_secs(10)),
            project: Box::new(project),
            held: None,
            covered: None,
        }
    }

    /// Lists and watches only the objects of the shards `held` says this replica holds
    /// (plus the unsharded ones), relisting when they change (see the module docs). For the
    /// kinds a controller manages or owns; never for the ones it only reads (nodes).
    pub fn sharded(
        mut self,
        held: watch::Receiver<Held>,
        controller: bosun_api::shard::Controller,
    ) -> Informer<T> {
        self.set_sharded(held, controller);
        self
    }

    /// [`Informer::sharded`] in place.
    pub fn set_sharded(
        &mut self,
        held: watch::Receiver<Held>,
        controller: bosun_api::shard::Controller,
    ) {
        debug_assert_eq!(
            held.borrow().controller,
            controller,
            "a Held of another controller kind"
        );
        self.held = Some(held);
        self.covered = Some(Coverage::channel());
    }

    /// The shards this informer's cache covers (sharded informers only): the filter of its
    /// last completed list.
    pub fn coverage(&self) -> Option<Coverage> {
        self.covered.as_ref().map(|(_, c)| c.clone())
    }

    /// The store this informer fills (ready after the first list).
    pub fn store(&self) -> Store<T> {
        self.writer.reader()
    }

    /// Registers a change handler (before [`Informer::run`]).
    pub fn on_change(&mut self, handler: impl Fn(&Change<T>) + Send + Sync + 'static) -> &mut Self {
        self.handlers.push(Box::new(handler));
        self
    }

    /// Reports `bosun_informer_events_total`, `bosun_informer_relists_total`,
    /// `bosun_informer_objects` and `bosun_informer_revision`, labelled `kind`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Informer<T> {
        let name = format!("{:?}", self.kind);
        let labels = [("kind", name.as_str())];
        self.metrics = Some(InformerMetrics {
            events: metrics.counter(
                "bosun_informer_events_total",
                "Watch events applied to the informer cache.",
                &labels,
            ),
            relists: metrics.counter(
                "bosun_informer_relists_total",
                "Full lists loaded into the informer cache.",
                &labels,
            ),
            objects: metrics.gauge(
                "bosun_informer_objects",
                "Objects in the informer cache.",
                &labels,
            ),
            revision: metrics.gauge(
                "bosun_informer_revision",
                "The etcd revision the informer cache reflects.",
                &labels,
            ),
        });
        self
    }

    /// Sets the delay between failed attempts (default 100 ms doubling to 10 s).
    pub fn with_retry(mut self, retry: Backoff) -> Informer<T> {
        self.retry = retry;
        self
    }

    /// Runs in the background until `shutdown`; returns the store and the task.
    pub fn spawn(self, shutdown: CancellationToken) -> (Store<T>, tokio::task::JoinHandle<()>) {
        let store = self.store();
        (store, tokio::spawn(self.run(shutdown)))
    }

    fn emit(&self, change: &Change<T>) {
        for handler in &self.handlers {
            handler(change);
        }
    }

    fn report(&self) {
        if let Some(m) = &self.metrics {
            let store = self.writer.reader();
            m.objects.set(store.len() as i64);
            m.revision.set(self.writer.revision());
        }
    }

    /// Keeps the store in step until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let span = tracing::info_span!("informer", kind = ?self.kind);
        async move {
            let mut step = Step::Relist;
            let mut failures = 0u32;
            let mut shards = Shards {
                held: self.held.clone(),
                in_use: None,
            };
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = self.step(step, &mut failures, &mut shards) => next,
                };
                step = match next {
                    Ok(step) => step,
                    Err((step, err)) => {
                        failures = failures.saturating_add(1);
                        let delay = self.retry.delay(failures);
                        tracing::warn!(%err, ?delay, "list/watch failed; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        step
                    }
                };
            }
        }
        .instrument(span)
        .await
    }

    /// One step of the state machine; on failure, the step to retry after a delay.
    async fn step(
        &self,
        step: Step,
        failures: &mut u32,
        shards: &mut Shards,
    ) -> Result<Step, (Step, ClientError)> {
        match step {
            Step::Relist => {
                let selector = shards.selector(&self.selector);
                let list = self
                    .source
                    .list(self.kind, &selector)
                    .await
                    .map_err(|e| (Step::Relist, e))?;
                *failures = 0;
                let revision = list.revision;
                let items = list.items.into_iter().map(&self.project).collect();
                let changes = self.writer.replace(items, revision);
                if let Some((covered, _)) = &self.covered {
                    covered.send_replace(Some(shards.in_use.clone()));
                }
                tracing::debug!(revision, changes = changes.len(), shards = ?selector.shards.as_ref().map(|s| s.shards.len()), "listed");
                self.writer.mark_ready();
                if let Some(m) = &self.metrics {
                    m.relists.inc();
                }
                self.report();
                for change in &changes {
                    self.emit(change);
                }
                Ok(Step::Watch(revision))
            }
            Step::Watch(mut revision) => {
                let selector = shards.current(&self.selector);
                let mut events = match self.source.watch(self.kind, &selector, revision).await {
                    Ok(events) => events,
                    Err(err) if err.is_expired() => return Ok(self.expired(revision)),
                    Err(err) => return Err((Step::Watch(revision), err)),
                };
                let mut received = 0usize;
                loop {
                    let event = tokio::select! {
                        event = events.next() => event,
                        _ = shards.moved() => {
                            tracing::info!(revision, "the shards held changed; relisting");
                            return Ok(Step::Relist);
                        }
                    };
                    let Some(event) = event else { break };
                    match event {
                        Ok(event) => {
                            received += 1;
                            *failures = 0;
                            revision = revision.max(event.revision());
                            if let Some(change) = self.apply(event) {
                                self.emit(&change);
                            }
                            if let Some(m) = &self.metrics {
                                m.events.inc();
                            }
                            self.report();
                        }
                        Err(err) if err.is_expired() => return Ok(self.expired(revision)),
                        Err(err) => return Err((Step::Watch(revision), err)),
                    }
                }
                if received == 0 {
                    // A stream that ends at once, again and again, must not spin.
                    return Err((
                        Step::Watch(revision),
                        ClientError::Unavailable("the watch ended without events".into()),
                    ));
                }
                tracing::debug!(revision, "watch ended; resuming");
                Ok(Step::Watch(revision))
            }
        }
    }

    /// Applies one watch event to the store, projected.
    fn apply(&self, event: WatchEvent) -> Option<Change<T>> {
        match event {
            WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                self.writer.upsert((self.project)(obj))
            }
            WatchEvent::Deleted(obj) => self.writer.delete((self.project)(obj)),
            WatchEvent::Bookmark(revision) => {
                self.writer.bookmark(revision);
                None
            }
        }
    }

    fn expired(&self, revision: i64) -> Step {
        tracing::info!(revision, "watch revision expired; relisting");
        Step::Relist
    }
}

/// A handler that enqueues the changed object's own key.
pub fn enqueue_self<T>(queue: WorkQueue<String>) -> impl Fn(&Change<T>) + Send + Sync + 'static {
    move |change| queue.add(change.key.clone())
}

/// A handler that enqueues the key of the changed object's controller (its ownerReference
/// with `controller: true`) when that controller is of kind `owner_kind` (`"Job"`). When an
/// update moved the object to another controller, both are enqueued.
pub fn enqueue_controller_owner<T: Cached>(
    queue: WorkQueue<String>,
    owner_kind: &'static str,
) -> impl Fn(&Change<T>) + Send + Sync + 'static {
    move |change| {
        let owner_key = |obj: &Option<Arc<T>>| {
            let obj = obj.as_ref()?;
            let owner = obj.controller()?;
            (owner.kind == owner_kind).then(|| object_key(obj.namespace(), owner.name))
        };
        let new = owner_key(&change.new);
        let old = owner_key(&change.old);
        if let Some(key) = &new {
            queue.add(key.clone());
        }
        if change.kind != ChangeKind::Added
            && let Some(key) = old
            && Some(&key) != new.as_ref()
        {
            queue.add(key);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::cache::tests::pod;

    type Script = Vec<Result<WatchEvent, ClientError>>;

    /// A scripted source: lists and watch streams are handed out in order; once the watch
    /// scripts run out, a watch stays open and silent. Every call is logged.
    #[derive(Default)]
    pub(crate) struct Fake {
        pub(crate) lists: Mutex<VecDeque<Result<ObjectList, ClientError>>>,
        pub(crate) watches: Mutex<VecDeque<Script>>,
        pub(crate) calls: Mutex<Vec<String>>,
        /// The shards each list asked for (`None`: no filter).
        pub(crate) listed_shards: Mutex<Vec<Option<Vec<u32>>>>,
    }

    impl ListWatch for Fake {
        fn list<'a>(
            &'a self,
            _: Kind,
            selector: &'a Selector,
        ) -> BoxFuture<'a, Result<ObjectList, ClientError>> {
            self.calls.lock().unwrap().push("list".into());
            self.listed_shards
                .lock()
                .unwrap()
                .push(selector.shards.as_ref().map(|s| s.shards.clone()));
            let next = self.lists.lock().unwrap().pop_front();
            Box::pin(async move {
                next.unwrap_or_else(|| Err(ClientError::Unavailable("no more lists".into())))
            })
        }

        fn watch<'a>(
            &'a self,
            _: Kind,
            _: &'a Selector,
            revision: i64,
        ) -> BoxFuture<'a, Result<EventStream, ClientError>> {
            self.calls.lock().unwrap().push(format!("watch {revision}"));
            let next = self.watches.lock().unwrap().pop_front();
            Box::pin(async move {
                Ok(match next {
                    Some(script) => futures::stream::iter(script).boxed(),
                    None => futures::stream::pending().boxed(),
                })
            })
        }
    }

    pub(crate) fn list(
        items: Vec<bosun_api::Object>,
        revision: i64,
    ) -> Result<ObjectList, ClientError> {
        Ok(ObjectList { items, revision })
    }

    pub(crate) fn p(name: &str, rv: i64) -> bosun_api::Object {
        pod(name, rv, &[], &[], "")
    }

    /// Waits (up to 5 s) until the fake has seen `n` calls.
    async fn wait_for_calls(fake: &Fake, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while fake.calls.lock().unwrap().len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "calls: {:?}",
                fake.calls.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_transform_rewrites_listed_and_watched_objects_before_they_are_stored() {
        let labelled = |name: &str, rv: i64| pod(name, rv, &[("app", "x")], &[], "");
        let fake = Arc::new(Fake::default());
        fake.lists
            .lock()
            .unwrap()
            .push_back(list(vec![labelled("a", 1)], 5));
        fake.watches.lock().unwrap().push_back(vec![
            Ok(WatchEvent::Added(labelled("b", 6))),
            Ok(WatchEvent::Modified(labelled("a", 7))),
        ]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut informer = Informer::new(fake.clone(), Kind::Pod, Selector::all())
            .with_transform(|o| o.meta_mut().labels.clear());
        {
            let seen = seen.clone();
            informer.on_change(move |c| {
                let labels = c.new.as_ref().map(|o| o.meta().unwrap().labels.len());
                seen.lock().unwrap().push(labels);
            });
        }
        let shutdown = CancellationToken::new();
        let (store, task) = informer.spawn(shutdown.clone());
        store.wait_until_ready().await;
        // list, the scripted watch, then the silent watch after it: all events applied.
        wait_for_calls(&fake, 3).await;
        assert_eq!(store.len(), 2);
        for obj in store.list() {
            assert!(obj.meta().unwrap().labels.is_empty(), "{}", obj.key());
        }
        assert_eq!(store.get("ns/a").map(|o| o.resource_version()), Some(7));
        assert_eq!(*seen.lock().unwrap(), [Some(0), Some(0), Some(0)]);
        shutdown.cancel();
        task.await.unwrap();
    }

    /// A projected entry: the pod's name, version and how many labels it had.
    #[derive(Debug)]
    struct Entry {
        name: String,
        rv: i64,
        labels: usize,
    }

    impl Cached for Entry {
        fn namespace(&self) -> &str {
            "ns"
        }
        fn name(&self) -> &str {
            &self.name
        }
        fn resource_version(&self) -> i64 {
            self.rv
        }
        fn owners(&self) -> Vec<crate::cache::OwnerRef<'_>> {
            Vec::new()
        }
    }

    #[tokio::test]
    async fn a_projected_informer_caches_the_projection_of_listed_and_watched_objects() {
        let labelled = |name: &str, rv: i64| pod(name, rv, &[("app", "x")], &[], "");
        let fake = Arc::new(Fake::default());
        fake.lists
            .lock()
            .unwrap()
            .push_back(list(vec![labelled("a", 1), labelled("c", 2)], 5));
        fake.watches.lock().unwrap().push_back(vec![
            Ok(WatchEvent::Added(labelled("b", 6))),
            Ok(WatchEvent::Modified(labelled("a", 7))),
            Ok(WatchEvent::Deleted(labelled("c", 8))),
        ]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut informer =
            Informer::projected(fake.clone(), Kind::Pod, Selector::all(), |o| Entry {
                name: o.name().to_string(),
                rv: o.resource_version(),
                labels: o.meta().map_or(0, |m| m.labels.len()),
            });
        {
            let seen = seen.clone();
            informer.on_change(move |c: &Change<Entry>| {
                let e = c.object().unwrap();
                seen.lock().unwrap().push((c.kind, e.name.clone(), e.rv));
            });
        }
        let shutdown = CancellationToken::new();
        let (store, task) = informer.spawn(shutdown.clone());
        store.wait_until_ready().await;
        // list, the scripted watch, then the silent watch after it: all events applied.
        wait_for_calls(&fake, 3).await;
        assert_eq!(store.keys(), ["ns/a", "ns/b"]);
        assert!(store.list().iter().all(|e| e.labels == 1));
        assert_eq!(store.get("ns/a").map(|e| e.rv), Some(7));
        use ChangeKind::*;
        let mut list_changes = seen.lock().unwrap()[..2].to_vec();
        list_changes.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(
            list_changes,
            [(Added, "a".to_string(), 1), (Added, "c".to_string(), 2)]
        );
        assert_eq!(
            seen.lock().unwrap()[2..],
            [
                (Added, "b".to_string(), 6),
                (Modified, "a".to_string(), 7),
                (Deleted, "c".to_string(), 2),
            ],
            "a delete reports the last cached state"
        );
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_informer_resumes_after_a_dropped_stream_and_relists_when_expired() {
        let fake = Arc::new(Fake::default());
        fake.lists.lock().unwrap().extend([
            list(vec![p("a", 1), p("b", 2)], 5),
            list(vec![p("a", 9), p("d", 12)], 12),
        ]);
        fake.watches.lock().unwrap().extend([
            // Ends cleanly after a bookmark: resume from 8.
            vec![
                Ok(WatchEvent::Added(p("c", 6))),
                Ok(WatchEvent::Bookmark(8)),
            ],
            // Then the broker says the revision is too old: relist.
            vec![
                Ok(WatchEvent::Modified(p("a", 9))),
                Err(ClientError::Expired("expired: relist".into())),
            ],
        ]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut informer = Informer::new(fake.clone(), Kind::Pod, Selector::all());
        {
            let seen = seen.clone();
            informer.on_change(move |c| seen.lock().unwrap().push((c.kind, c.key.clone())));
        }
        let shutdown = CancellationToken::new();
        let (store, task) = informer.spawn(shutdown.clone());
        store.wait_until_ready().await;
        wait_for_calls(&fake, 5).await;

        assert_eq!(
            *fake.calls.lock().unwrap(),
            ["list", "watch 5", "watch 8", "list", "watch 12"]
        );
        use ChangeKind::*;
        let k = |kind, key: &str| (kind, format!("ns/{key}"));
        let mut relist: Vec<_> = seen.lock().unwrap()[4..].to_vec();
        relist.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(
            seen.lock().unwrap()[..4],
            [
                k(Added, "a"),
                k(Added, "b"),
                k(Added, "c"),
                k(Modified, "a")
            ]
        );
        assert_eq!(
            relist,
            [k(Deleted, "b"), k(Deleted, "c"), k(Added, "d")],
            "a is unchanged at rv 9"
        );
        assert_eq!(store.keys(), ["ns/a", "ns/d"]);
        assert_eq!(store.revision(), 12);

        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_sharded_informer_relists_with_the_new_filter_when_the_held_shards_change() {
        use crate::sharded::Held;
        use bosun_api::shard::Controller;
        let held = |shards: &[u32]| Held {
            controller: Controller::Job,
            count: 4,
            tokens: shards.iter().map(|s| (*s, 7)).collect(),
        };
        let fake = Arc::new(Fake::default());
        // What a filtering broker answers: a and b in shards 0 and 1, then b and c.
        fake.lists.lock().unwrap().extend([
            list(vec![p("a", 1), p("b", 2)], 5),
            list(vec![p("b", 2), p("c", 3)], 6),
            list(vec![p("b", 2), p("c", 3)], 7),
        ]);
        let (tx, rx) = watch::channel(held(&[0, 1]));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut informer =
            Informer::new(fake.clone(), Kind::Pod, Selector::all()).sharded(rx, Controller::Job);
        {
            let seen = seen.clone();
            informer.on_change(move |c| seen.lock().unwrap().push((c.kind, c.key.clone())));
        }
        let shutdown = CancellationToken::new();
        let (store, task) = informer.spawn(shutdown.clone());
        store.wait_until_ready().await;
        wait_for_calls(&fake, 2).await;
        // A new token for the same shards: no relist.
        tx.send(held(&[0, 1])).unwrap();
        // Shard 0 goes, 2 comes: relist with [1, 2]; the difference is reported.
        tx.send(held(&[1, 2])).unwrap();
        wait_for_calls(&fake, 4).await;
        // Every shard: no filter at all.
        let all = Held {
            tokens: (0..4).map(|s| (s, 0)).collect(),
            ..held(&[])
        };
        tx.send(all).unwrap();
        wait_for_calls(&fake, 6).await;
        assert_eq!(
            *fake.calls.lock().unwrap(),
            ["list", "watch 5", "list", "watch 6", "list", "watch 7"]
        );
        assert_eq!(
            *fake.listed_shards.lock().unwrap(),
            [Some(vec![0, 1]), Some(vec![1, 2]), None]
        );
        use ChangeKind::*;
        let mut relist: Vec<_> = seen.lock().unwrap()[2..].to_vec();
        relist.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(
            relist,
            [(Deleted, "ns/a".to_string()), (Added, "ns/c".to_string())],
            "b stayed"
        );
        assert_eq!(store.keys(), ["ns/b", "ns/c"]);
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_list_is_retried_with_backoff_before_the_store_is_ready() {
        let fake = Arc::new(Fake::default());
        fake.lists.lock().unwrap().extend([
            Err(ClientError::Unavailable("down".into())),
            Err(ClientError::Unavailable("down".into())),
            list(vec![p("a", 1)], 1),
        ]);
        let informer = Informer::new(fake.clone(), Kind::Pod, Selector::all());
        let shutdown = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let (store, task) = informer.spawn(shutdown.clone());
        store.wait_until_ready().await;
        // 100 ms, then 200 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert_eq!(store.keys(), ["ns/a"]);
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn owner_handlers_enqueue_the_controller_of_the_right_kind() {
        let q: WorkQueue<String> = WorkQueue::default();
        let handler = enqueue_controller_owner(q.clone(), "Job");
        let owned = |uid: &str| {
            let mut o = pod("x", 1, &[], &[uid], "");
            o.meta_mut().owner_references[0].name = format!("job-{uid}");
            Arc::new(o)
        };
        let change = |kind,
                      old: Option<Arc<bosun_api::Object>>,
                      new: Option<Arc<bosun_api::Object>>| Change {
            kind,
            key: "ns/x".into(),
            old,
            new,
        };
        handler(&change(ChangeKind::Added, None, Some(owned("1"))));
        handler(&change(
            ChangeKind::Modified,
            Some(owned("1")),
            Some(owned("2")),
        ));
        handler(&change(ChangeKind::Deleted, Some(owned("3")), None));
        let mut other = (*owned("4")).clone();
        other.meta_mut().owner_references[0].kind = "DaemonSet".into();
        handler(&change(ChangeKind::Added, None, Some(Arc::new(other))));
        let mut keys = vec![];
        while !q.is_empty() {
            let k = q.next().await.unwrap();
            q.done(&k);
            keys.push(k);
        }
        assert_eq!(keys, ["ns/job-1", "ns/job-2", "ns/job-3"]);
    }
}
