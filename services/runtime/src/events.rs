//! Recording Kubernetes Events about objects (`SuccessfulCreate`, `Scheduled`, `BackOff`...),
//! the way client-go's recorder does: best effort (a failure is logged, never returned), and
//! a repeat of the same reason and message on the same object bumps `count` and
//! `lastTimestamp` of one Event instead of adding another. Like client-go's
//! `EventSourceObjectSpamFilter`, each (component, object) pair has a token bucket of 25
//! events refilled at one per 5 minutes: a Job creating 10,000 pods records its first 25
//! `SuccessfulCreate` events, not 10,000 (events are for people, not an audit log).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bosun_api::v1::{self, Object};

use crate::client::Broker;

/// `Normal` or `Warning`, as Kubernetes spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Records events for one component (`default-scheduler`, `kubelet`, `job-controller`...).
#[derive(Clone)]
pub struct EventRecorder {
    broker: Broker,
    component: String,
    host: String,
    spam: Arc<Mutex<SpamFilter>>,
}

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
        EventRecorder {
            broker,
            component: component.to_string(),
            host: host.to_string(),
            spam: Arc::new(Mutex::new(SpamFilter::kubernetes())),
        }
    }

    /// Records `reason`/`message` about `obj`; repeats aggregate into one Event.
    pub async fn record(&self, obj: &Object, ty: EventType, reason: &str, message: &str) {
        let key = format!(
            "{}/{}/{}/{}",
            obj.info().map_or("", |i| i.name),
            obj.namespace(),
            obj.name(),
            obj.uid()
        );
        let allowed = self
            .spam
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(&key, Instant::now());
        if !allowed {
            tracing::debug!(object = %obj.key(), reason, "event dropped by the spam filter");
            return;
        }
        let event = self.event_for(obj, ty, reason, message, &now());
        if let Err(err) = self.write(event).await {
            tracing::warn!(object = %obj.key(), reason, %err, "could not record an event");
        }
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
                component: self.component.clone(),
                host: self.host.clone(),
            }),
            first_timestamp: now.to_string(),
            last_timestamp: now.to_string(),
            count: 1,
            r#type: ty.as_str().to_string(),
            reporting_component: self.component.clone(),
            reporting_instance: self.host.clone(),
            ..Default::default()
        }
    }

    async fn write(&self, event: v1::Event) -> Result<(), crate::client::ClientError> {
        let ns = event
            .metadata
            .as_ref()
            .map_or(String::new(), |m| m.namespace.clone());
        let name = event
            .metadata
            .as_ref()
            .map_or(String::new(), |m| m.name.clone());
        match self.broker.create(event.clone().into()).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(e),
        }
        // A repeat: bump the stored one (a lost race just retries once more).
        for _ in 0..3 {
            let Some(stored) = self.broker.get_opt(v1::Kind::Event, &ns, &name).await? else {
                self.broker.create(event.clone().into()).await?;
                return Ok(());
            };
            let Some(mut ev) = stored.clone().into_event() else {
                return Ok(());
            };
            ev.count = ev.count.max(1) + 1;
            ev.last_timestamp = event.last_timestamp.clone();
            match self.broker.update(ev.into()).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
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
