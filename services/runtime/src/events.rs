//! Recording Kubernetes Events about objects (`SuccessfulCreate`, `Scheduled`, `BackOff`...),
//! the way client-go's recorder does: best effort (a failure is logged, never returned), and
//! a repeat of the same reason and message on the same object bumps `count` and
//! `lastTimestamp` of one Event instead of adding another.

use std::hash::{Hash, Hasher};

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
}

impl EventRecorder {
    /// A recorder reporting as `component` on `host` (empty for cluster components).
    pub fn new(broker: Broker, component: &str, host: &str) -> EventRecorder {
        EventRecorder {
            broker,
            component: component.to_string(),
            host: host.to_string(),
        }
    }

    /// Records `reason`/`message` about `obj`; repeats aggregate into one Event.
    pub async fn record(&self, obj: &Object, ty: EventType, reason: &str, message: &str) {
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
