//! Recording Kubernetes Events about objects (`SuccessfulCreate`, `Scheduled`, `BackOff`...),
//! the way client-go's recorder does: best effort (a failure is logged, never returned), and
//! a repeat of the same reason and message on the same object bumps `count` and
//! `lastTimestamp` of one Event instead of adding another. Like client-go's
//! `EventSourceObjectSpamFilter`, each (component, object) pair has a token bucket of 25
//! events refilled at one per 5 minutes: a Job creating 10,000 pods records its first 25
//! `SuccessfulCreate` events, not 10,000 (events are for people, not an audit log).
//!
//! Recording never blocks the caller: events go through a bounded queue to a background
//! task, and when the queue is full they are dropped and counted, never waited for.

use bosun_api::vocab::event_type;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bosun_api::v1::{self, Object};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::client::Broker;
use crate::metrics::{Counter, Metrics};
use crate::writer::Writer;

/// `Normal` or `Warning`, as Kubernetes spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => event_type::NORMAL,
            EventType::Warning => event_type::WARNING,
        }
    }
}

/// Records events for one component (`default-scheduler`, `kubelet`, `job-controller`...).
///
/// Never holds up its caller: [`EventRecorder::record`] passes the event to a background
/// task through a bounded channel and returns at once; when the channel is full the event
/// is dropped and counted ([`EventRecorder::dropped`], and `bosun_events_dropped_total` once
/// [`EventRecorder::with_metrics`] is called). The task writes up to [`WRITES_IN_FLIGHT`]
/// events at once and ends when every clone of the recorder is gone.
#[derive(Clone)]
pub struct EventRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Arc<dyn Writer>,
    component: String,
    host: String,
    spam: Mutex<SpamFilter>,
    /// The queue to the writing task, started on the first event (so a recorder can be made
    /// outside a runtime).
    queue: OnceLock<mpsc::Sender<v1::Event>>,
    capacity: usize,
    dropped: Counter,
}

/// Events waiting to be written at most; beyond, new ones are dropped.
pub const QUEUE_CAPACITY: usize = 1024;
/// Event writes in flight at once.
pub const WRITES_IN_FLIGHT: usize = 32;

/// client-go's spam filter: a token bucket per (source, object).
#[derive(Debug)]
pub struct SpamFilter {
    burst: f64,
    refill_every: Duration,
    buckets: HashMap<String, (f64, Instant)>,
}

/// Objects remembered by the spam filter at most (client-go's LRU holds 4096).
const SPAM_KEYS: usize = 4096;

impl SpamFilter {
    /// Kubernetes' defaults: 25 at once, then one per 5 minutes.
    pub fn kubernetes() -> SpamFilter {
        SpamFilter::new(25, Duration::from_secs(300))
    }

    pub fn new(burst: u32, refill_every: Duration) -> SpamFilter {
        SpamFilter {
            burst: f64::from(burst),
            refill_every,
            buckets: HashMap::new(),
        }
    }

    /// Whether one more event about `key` may be recorded at `now`.
    pub fn allow(&mut self, key: &str, now: Instant) -> bool {
        if self.buckets.len() >= SPAM_KEYS && !self.buckets.contains_key(key) {
            // Forget the buckets that have refilled: they behave as new ones anyway.
            let (burst, every) = (self.burst, self.refill_every.as_secs_f64());
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() / every < burst
            });
            if self.buckets.len() >= SPAM_KEYS {
                self.buckets.clear();
            }
        }
        let (tokens, at) = self
            .buckets
            .entry(key.to_string())
            .or_insert((self.burst, now));
        let refill =
            now.saturating_duration_since(*at).as_secs_f64() / self.refill_every.as_secs_f64();
        *tokens = (*tokens + refill).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl EventRecorder {
    /// A recorder reporting as `component` on `host` (empty for cluster components).
    pub fn new(broker: Broker, component: &str, host: &str) -> EventRecorder {
        EventRecorder::with_writer(Arc::new(broker), component, host, QUEUE_CAPACITY)
    }

    /// A recorder writing through `writer`, holding at most `capacity` events unwritten.
    pub fn with_writer(
        writer: Arc<dyn Writer>,
        component: &str,
        host: &str,
        capacity: usize,
    ) -> EventRecorder {
        EventRecorder {
            inner: Arc::new(Inner {
                writer,
                component: component.to_string(),
                host: host.to_string(),
                spam: Mutex::new(SpamFilter::kubernetes()),
                queue: OnceLock::new(),
                capacity: capacity.max(1),
                dropped: Counter::default(),
            }),
        }
    }

    /// Counts dropped events in `bosun_events_dropped_total` of `metrics` (call before the
    /// first event; the count so far is carried over).
    pub fn with_metrics(self, metrics: &Metrics) -> EventRecorder {
        let counter = metrics.counter(
            "bosun_events_dropped_total",
            "Events dropped because the recorder's queue was full.",
            &[("component", &self.inner.component)],
        );
        counter.add(self.inner.dropped.get());
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.dropped = counter;
                EventRecorder {
                    inner: Arc::new(inner),
                }
            }
            // Already shared: keep counting where the clones count.
            Err(inner) => EventRecorder { inner },
        }
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.get()
    }

    /// Records `reason`/`message` about `obj`; repeats aggregate into one Event. Returns at
    /// once (see [`EventRecorder::emit`]); `async` only for the callers that await it.
    pub async fn record(&self, obj: &Object, ty: EventType, reason: &str, message: &str) {
        self.emit(obj, ty, reason, message);
    }

    /// Queues `reason`/`message` about `obj` for the writing task; never waits. Dropped (and
    /// counted) when the spam filter refuses it or the queue is full.
    pub fn emit(&self, obj: &Object, ty: EventType, reason: &str, message: &str) {
        let key = format!(
            "{}/{}/{}/{}",
            obj.info().map_or("", |i| i.name),
            obj.namespace(),
            obj.name(),
            obj.uid()
        );
        let allowed = self
            .inner
            .spam
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(&key, Instant::now());
        if !allowed {
            tracing::debug!(object = %obj.key(), reason, "event dropped by the spam filter");
            return;
        }
        let event = self.event_for(obj, ty, reason, message, &now());
        let Some(queue) = self.queue() else {
            tracing::debug!(object = %obj.key(), reason, "no runtime to write events; dropped");
            self.inner.dropped.inc();
            return;
        };
        if let Err(err) = queue.try_send(event) {
            self.inner.dropped.inc();
            let why = match err {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "writer stopped",
            };
            tracing::debug!(object = %obj.key(), reason, why, "event dropped");
        }
    }

    /// The queue to the writing task, starting it on first use (inside a tokio runtime).
    fn queue(&self) -> Option<&mpsc::Sender<v1::Event>> {
        if let Some(q) = self.inner.queue.get() {
            return Some(q);
        }
        let handle = tokio::runtime::Handle::try_current().ok()?;
        Some(self.inner.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.inner.capacity);
            handle.spawn(write_events(self.inner.writer.clone(), rx));
            tx
        }))
    }

    /// The Event this recorder writes for a first occurrence (pure: time given).
    pub fn event_for(
        &self,
        obj: &Object,
        ty: EventType,
        reason: &str,
        message: &str,
        now: &str,
    ) -> v1::Event {
        let (api_version, kind) = obj.type_meta();
        let info = obj.info();
        let namespace = match obj.namespace() {
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        v1::Event {
            metadata: Some(v1::ObjectMeta {
                name: event_name(obj, ty, reason, message),
                namespace,
                ..Default::default()
            }),
            involved_object: Some(v1::ObjectReference {
                api_version: match api_version {
                    "" => info.map_or("", |i| i.api_version).to_string(),
                    v => v.to_string(),
                },
                kind: match kind {
                    "" => info.map_or("", |i| i.name).to_string(),
                    k => k.to_string(),
                },
                namespace: obj.namespace().to_string(),
                name: obj.name().to_string(),
                uid: obj.uid().to_string(),
                resource_version: obj
                    .meta()
                    .map_or(String::new(), |m| m.resource_version.clone()),
                field_path: String::new(),
            }),
            reason: reason.to_string(),
            message: message.to_string(),
            source: Some(v1::EventSource {
                component: self.inner.component.clone(),
                host: self.inner.host.clone(),
            }),
            first_timestamp: now.to_string(),
            last_timestamp: now.to_string(),
            count: 1,
            r#type: ty.as_str().to_string(),
            reporting_component: self.inner.component.clone(),
            reporting_instance: self.inner.host.clone(),
            ..Default::default()
        }
    }
}

/// The writing task: events from `rx`, [`WRITES_IN_FLIGHT`] at a time, until every sender
/// is gone.
async fn write_events(writer: Arc<dyn Writer>, mut rx: mpsc::Receiver<v1::Event>) {
    let mut writes = JoinSet::new();
    while let Some(event) = rx.recv().await {
        while writes.len() >= WRITES_IN_FLIGHT {
            writes.join_next().await;
        }
        let writer = writer.clone();
        writes.spawn(async move {
            let what = event.involved_object.as_ref().map_or(String::new(), |o| {
                bosun_api::object::object_key(&o.namespace, &o.name)
            });
            let reason = event.reason.clone();
            if let Err(err) = write(&*writer, event).await {
                tracing::warn!(object = %what, reason, %err, "could not record an event");
            }
        });
    }
    while writes.join_next().await.is_some() {}
}

/// Writes one event: created, or a repeat bumped on the stored one.
async fn write(writer: &dyn Writer, event: v1::Event) -> Result<(), crate::client::ClientError> {
    let ns = event
        .metadata
        .as_ref()
        .map_or(String::new(), |m| m.namespace.clone());
    let name = event
        .metadata
        .as_ref()
        .map_or(String::new(), |m| m.name.clone());
    match writer.create(event.clone().into()).await {
        Ok(_) => return Ok(()),
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e),
    }
    // A repeat: bump the stored one (a lost race just retries once more).
    for _ in 0..3 {
        let Some(stored) = writer.get_opt(v1::Kind::Event, &ns, &name).await? else {
            writer.create(event.clone().into()).await?;
            return Ok(());
        };
        let Some(mut ev) = stored.clone().into_event() else {
            return Ok(());
        };
        ev.count = ev.count.max(1) + 1;
        ev.last_timestamp = event.last_timestamp.clone();
        match writer.update(ev.into()).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `<object>.<hash>`: one Event per object, type, reason and message.
pub fn event_name(obj: &Object, ty: EventType, reason: &str, message: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (obj.uid(), obj.name(), ty.as_str(), reason, message).hash(&mut h);
    format!("{}.{:016x}", obj.name(), h.finish())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, uid: &str) -> Object {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                uid: uid.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn the_spam_filter_allows_a_burst_of_25_per_object_then_one_per_5_minutes() {
        let mut f = SpamFilter::kubernetes();
        let t0 = Instant::now();
        let allowed = (0..100).filter(|_| f.allow("job/a", t0)).count();
        assert_eq!(allowed, 25);
        assert!(f.allow("job/b", t0), "another object has its own bucket");
        assert!(!f.allow("job/a", t0 + Duration::from_secs(299)));
        assert!(f.allow("job/a", t0 + Duration::from_secs(301)));
        assert!(!f.allow("job/a", t0 + Duration::from_secs(302)));
        // Long quiet: the bucket is full again, but never above the burst.
        let later = t0 + Duration::from_secs(3600 * 24);
        assert_eq!((0..100).filter(|_| f.allow("job/a", later)).count(), 25);
    }

    #[test]
    fn the_same_reason_and_message_on_the_same_object_share_one_event_name() {
        let a = event_name(&pod("p", "u1"), EventType::Normal, "Scheduled", "to node-1");
        let b = event_name(&pod("p", "u1"), EventType::Normal, "Scheduled", "to node-1");
        let c = event_name(&pod("p", "u1"), EventType::Normal, "Scheduled", "to node-2");
        let d = event_name(&pod("p", "u2"), EventType::Normal, "Scheduled", "to node-1");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert!(a.starts_with("p."));
    }

    #[tokio::test]
    async fn events_are_written_in_the_background_and_repeats_bump_one_event() {
        let w = crate::writer::RecordingWriter::new();
        let rec = EventRecorder::with_writer(w.clone(), "job-controller", "", 16);
        let p = pod("p", "u1");
        rec.record(&p, EventType::Normal, "SuccessfulCreate", "Created pod: p")
            .await;
        rec.emit(&p, EventType::Normal, "SuccessfulCreate", "Created pod: p");
        let name = event_name(&p, EventType::Normal, "SuccessfulCreate", "Created pod: p");
        let key = format!("default/{name}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let count = w
                .object(v1::Kind::Event, &key)
                .and_then(|o| o.into_event())
                .map_or(0, |e| e.count);
            if count == 2 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "count {count}");
            tokio::task::yield_now().await;
        }
        assert_eq!(rec.dropped(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_and_counts_events_instead_of_waiting() {
        let w = crate::writer::RecordingWriter::new();
        let metrics = Metrics::new();
        let rec =
            EventRecorder::with_writer(w.clone(), "job-controller", "", 1).with_metrics(&metrics);
        // The writing task cannot run between these calls (one thread, no await): the
        // first event fills the queue, every other one is dropped at once.
        for i in 0..100 {
            rec.emit(&pod(&format!("p{i}"), "u"), EventType::Normal, "R", "m");
        }
        assert_eq!(rec.dropped(), 99);
        assert!(
            metrics
                .render()
                .contains("bosun_events_dropped_total{component=\"job-controller\"} 99")
        );
    }

    #[tokio::test]
    async fn an_event_names_its_object_source_and_type() {
        let broker = Broker::connect_lazy("http://127.0.0.1:1").expect("lazy client");
        let rec = EventRecorder::new(broker, "default-scheduler", "");
        let ev = rec.event_for(
            &pod("p", "u1"),
            EventType::Warning,
            "FailedScheduling",
            "0/3 nodes are available",
            "2026-01-01T00:00:00Z",
        );
        let inv = ev.involved_object.unwrap();
        assert_eq!(
            (inv.kind.as_str(), inv.name.as_str(), inv.uid.as_str()),
            ("Pod", "p", "u1")
        );
        assert_eq!(inv.api_version, "v1");
        assert_eq!(ev.r#type, "Warning");
        assert_eq!(ev.count, 1);
        assert_eq!(ev.source.unwrap().component, "default-scheduler");
        assert_eq!(ev.metadata.unwrap().namespace, "default");
    }
}
