//! Kind-independent access to an [`Object`]: its kind, metadata, spec and status, so the
//! broker, the CLI and the controller runtime handle every kind with one piece of code.

use prost::Message;

use crate::kind::KindInfo;
use crate::v1::{self, Kind, Object, ObjectMeta, object::Object as O};
use crate::vocab::phase;

/// Whether a pod reached a terminal phase (Succeeded or Failed).
pub fn pod_finished(pod: &v1::Pod) -> bool {
    phase_finished(pod.status.as_ref().map_or("", |s| s.phase.as_str()))
}

/// Whether `phase` is terminal (Succeeded or Failed): no container of the pod runs again.
pub fn phase_finished(phase: &str) -> bool {
    phase == phase::SUCCEEDED || phase == phase::FAILED
}

/// Runs `$body` with `$v` bound to the inner object, whatever its kind.
macro_rules! each_kind {
    ($obj:expr, $v:ident => $body:expr, none => $none:expr) => {
        match $obj {
            Some(O::Pod($v)) => $body,
            Some(O::Node($v)) => $body,
            Some(O::Job($v)) => $body,
            Some(O::CronJob($v)) => $body,
            Some(O::DaemonSet($v)) => $body,
            Some(O::ControllerRevision($v)) => $body,
            Some(O::Event($v)) => $body,
            Some(O::Lease($v)) => $body,
            None => $none,
        }
    };
}

impl Object {
    /// The object's kind (`Kind::Unspecified` for an empty wrapper).
    pub fn kind(&self) -> Kind {
        match &self.object {
            Some(O::Pod(_)) => Kind::Pod,
            Some(O::Node(_)) => Kind::Node,
            Some(O::Job(_)) => Kind::Job,
            Some(O::CronJob(_)) => Kind::CronJob,
            Some(O::DaemonSet(_)) => Kind::DaemonSet,
            Some(O::ControllerRevision(_)) => Kind::ControllerRevision,
            Some(O::Event(_)) => Kind::Event,
            Some(O::Lease(_)) => Kind::Lease,
            None => Kind::Unspecified,
        }
    }

    /// Static facts about the object's kind.
    pub fn info(&self) -> Option<&'static KindInfo> {
        KindInfo::of(self.kind())
    }

    /// The object's metadata, if it has any.
    pub fn meta(&self) -> Option<&ObjectMeta> {
        each_kind!(&self.object, o => o.metadata.as_ref(), none => None)
    }

    /// The object's metadata, created empty if missing.
    ///
    /// # Panics
    /// On an empty wrapper (no kind): callers check [`Object::kind`] first.
    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        each_kind!(&mut self.object, o => o.metadata.get_or_insert_with(Default::default),
            none => panic!("meta_mut on an Object with no kind"))
    }

    /// Drops everything but the metadata, and of the metadata its annotations: the object
    /// keeps its kind, name, uid, labels, owners and finalizers. For caches that decide on
    /// those alone (the garbage collector's); such a copy must never be written back.
    pub fn retain_identity_only(&mut self) {
        each_kind!(&mut self.object, o => {
            let mut meta = o.metadata.take();
            if let Some(m) = meta.as_mut() {
                m.annotations.clear();
            }
            **o = Default::default();
            o.metadata = meta;
        }, none => {})
    }

    /// Slims a finished pod (phase Succeeded or Failed; any other object is left alone) to
    /// what the components that act on live pods still read of it: all its metadata, of its
    /// spec the node, the restart policy and the container names, of its status the phase,
    /// reason, message and start time. For the caches of the scheduler and the node agent,
    /// where finished pods pile up by the thousand (a decoded pod is ~10 KB, this ~1 KB);
    /// such a copy must never be written back.
    pub fn slim_if_finished_pod(&mut self) {
        let Some(O::Pod(pod)) = &mut self.object else {
            return;
        };
        if !pod_finished(pod) {
            return;
        }
        let status = pod.status.take().unwrap_or_default();
        let names = |cs: &[v1::Container]| -> Vec<v1::Container> {
            cs.iter()
                .map(|c| v1::Container {
                    name: c.name.clone(),
                    ..Default::default()
                })
                .collect()
        };
        pod.spec = pod.spec.take().map(|spec| {
            Box::new(v1::PodSpec {
                node_name: spec.node_name,
                restart_policy: spec.restart_policy,
                containers: names(&spec.containers),
                init_containers: names(&spec.init_containers),
                ..Default::default()
            })
        });
        pod.status = Some(v1::PodStatus {
            phase: status.phase,
            reason: status.reason,
            message: status.message,
            start_time: status.start_time,
            ..Default::default()
        });
    }

    /// `metadata.name` (empty if unset).
    pub fn name(&self) -> &str {
        self.meta().map_or("", |m| m.name.as_str())
    }

    /// `metadata.namespace` (empty if unset or cluster-scoped).
    pub fn namespace(&self) -> &str {
        self.meta().map_or("", |m| m.namespace.as_str())
    }

    /// `metadata.resourceVersion` as a number (0 if unset or not a number).
    pub fn resource_version(&self) -> i64 {
        self.meta()
            .and_then(|m| m.resource_version.parse().ok())
            .unwrap_or(0)
    }

    /// `metadata.uid` (empty if unset).
    pub fn uid(&self) -> &str {
        self.meta().map_or("", |m| m.uid.as_str())
    }

    /// `namespace/name`, or `name` for cluster-scoped objects: the work-queue and cache key.
    pub fn key(&self) -> String {
        object_key(self.namespace(), self.name())
    }

    /// The encoded spec (for Events and ControllerRevisions, their payload): the generation
    /// is bumped only when these bytes change.
    pub fn spec_bytes(&self) -> Vec<u8> {
        match &self.object {
            Some(O::Pod(o)) => o.spec.as_ref().map(Message::encode_to_vec),
            Some(O::Node(o)) => o.spec.as_ref().map(Message::encode_to_vec),
            Some(O::Job(o)) => o.spec.as_ref().map(Message::encode_to_vec),
            Some(O::CronJob(o)) => o.spec.as_ref().map(Message::encode_to_vec),
            Some(O::DaemonSet(o)) => o.spec.as_ref().map(Message::encode_to_vec),
            Some(O::ControllerRevision(o)) => o.data.as_ref().map(Message::encode_to_vec),
            Some(O::Lease(o)) => o.spec.as_ref().map(Message::encode_to_vec),
            Some(O::Event(_)) | None => None,
        }
        .unwrap_or_default()
    }

    /// Whether the object carries a non-empty status.
    pub fn has_status(&self) -> bool {
        match &self.object {
            Some(O::Pod(o)) => o.status.as_ref().is_some_and(|s| *s != Default::default()),
            Some(O::Node(o)) => o.status.as_ref().is_some_and(|s| *s != Default::default()),
            Some(O::Job(o)) => o.status.as_ref().is_some_and(|s| *s != Default::default()),
            Some(O::CronJob(o)) => o.status.as_ref().is_some_and(|s| *s != Default::default()),
            Some(O::DaemonSet(o)) => o.status.as_ref().is_some_and(|s| *s != Default::default()),
            _ => false,
        }
    }

    /// Replaces this object's status with `other`'s (same kind; otherwise nothing happens).
    /// An update keeps the stored status this way, and an update-status keeps the stored spec
    /// by copying the request's status onto the stored object.
    pub fn copy_status_from(&mut self, other: &Object) {
        match (&mut self.object, &other.object) {
            (Some(O::Pod(a)), Some(O::Pod(b))) => a.status.clone_from(&b.status),
            (Some(O::Node(a)), Some(O::Node(b))) => a.status.clone_from(&b.status),
            (Some(O::Job(a)), Some(O::Job(b))) => a.status.clone_from(&b.status),
            (Some(O::CronJob(a)), Some(O::CronJob(b))) => a.status.clone_from(&b.status),
            (Some(O::DaemonSet(a)), Some(O::DaemonSet(b))) => a.status.clone_from(&b.status),
            _ => {}
        }
    }

    /// Sets `apiVersion` and `kind` to the kind's preferred values (what the broker stores and
    /// returns, whatever version the manifest used).
    pub fn set_type_meta(&mut self) {
        let Some(info) = self.info() else { return };
        each_kind!(&mut self.object, o => {
            o.api_version = info.api_version.to_string();
            o.kind = info.name.to_string();
        }, none => {})
    }

    /// `(apiVersion, kind)` as written on the object.
    pub fn type_meta(&self) -> (&str, &str) {
        each_kind!(&self.object, o => (o.api_version.as_str(), o.kind.as_str()), none => ("", ""))
    }

    /// The object's controller reference (the ownerReference with `controller: true`).
    pub fn controller_ref(&self) -> Option<&v1::OwnerReference> {
        self.meta()?
            .owner_references
            .iter()
            .find(|r| r.controller == Some(true))
    }

    /// Decodes an object as stored in etcd and stamps its resourceVersion.
    pub fn decode_stored(bytes: &[u8], revision: i64) -> Result<Object, prost::DecodeError> {
        let mut obj = Object::decode(bytes)?;
        if obj.kind() != Kind::Unspecified {
            obj.meta_mut().resource_version = revision.to_string();
        }
        Ok(obj)
    }
}

/// The cache/queue key of an object: `namespace/name`, or `name` when cluster-scoped.
pub fn object_key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

macro_rules! wrap {
    ($ty:ident, $variant:ident, $as_ref:ident, $into:ident) => {
        impl From<v1::$ty> for Object {
            fn from(o: v1::$ty) -> Self {
                Object {
                    object: Some(O::$variant(Box::new(o))),
                }
            }
        }

        impl Object {
            #[doc = concat!("The inner ", stringify!($ty), ", if this object is one.")]
            pub fn $as_ref(&self) -> Option<&v1::$ty> {
                match &self.object {
                    Some(O::$variant(o)) => Some(o),
                    _ => None,
                }
            }

            #[doc = concat!("Unwraps the inner ", stringify!($ty), ", if this object is one.")]
            pub fn $into(self) -> Option<v1::$ty> {
                match self.object {
                    Some(O::$variant(o)) => Some(*o),
                    _ => None,
                }
            }
        }
    };
}

wrap!(Pod, Pod, as_pod, into_pod);
wrap!(Node, Node, as_node, into_node);
wrap!(Job, Job, as_job, into_job);
wrap!(CronJob, CronJob, as_cron_job, into_cron_job);
wrap!(DaemonSet, DaemonSet, as_daemon_set, into_daemon_set);
wrap!(
    ControllerRevision,
    ControllerRevision,
    as_controller_revision,
    into_controller_revision
);
wrap!(Event, Event, as_event, into_event);
wrap!(Lease, Lease, as_lease, into_lease);

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, image: &str) -> Object {
        v1::Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                containers: vec![v1::Container {
                    name: "c".into(),
                    image: image.into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn spec_bytes_change_only_when_the_spec_changes() {
        let a = pod("a", "busybox");
        let mut b = pod("a", "busybox");
        b.meta_mut().labels.insert("x".into(), "y".into());
        assert_eq!(a.spec_bytes(), b.spec_bytes());
        assert_ne!(a.spec_bytes(), pod("a", "nginx").spec_bytes());
    }

    #[test]
    fn stored_bytes_decode_with_their_revision_as_resource_version() {
        let bytes = pod("a", "busybox").encode_to_vec();
        let back = Object::decode_stored(&bytes, 42).unwrap();
        assert_eq!(back.resource_version(), 42);
        assert_eq!(back.key(), "default/a");
        assert_eq!(back.kind(), Kind::Pod);
    }

    #[test]
    fn only_finished_pods_are_slimmed_and_they_keep_what_live_pod_components_read() {
        let with = |phase: &str| {
            let mut p = pod("a", "busybox").into_pod().unwrap();
            let spec = p.spec.as_mut().unwrap();
            spec.node_name = "n1".into();
            spec.restart_policy = "Never".into();
            spec.init_containers = spec.containers.clone();
            p.status = Some(v1::PodStatus {
                phase: phase.into(),
                reason: "R".into(),
                start_time: "2026-12-02T00:00:00Z".into(),
                conditions: vec![v1::Condition::default()],
                container_statuses: vec![v1::ContainerStatus::default()],
                ..Default::default()
            });
            let mut o = Object::from(p);
            o.meta_mut().labels.insert("job-name".into(), "j".into());
            o
        };
        // (phase, slimmed)
        let table = [
            ("", false),
            ("Pending", false),
            ("Running", false),
            ("Succeeded", true),
            ("Failed", true),
        ];
        for (phase, slimmed) in table {
            let before = with(phase);
            let mut after = before.clone();
            after.slim_if_finished_pod();
            if !slimmed {
                assert_eq!(after, before, "{phase}");
                continue;
            }
            assert_eq!(after.meta(), before.meta(), "{phase}: metadata kept whole");
            let p = after.as_pod().unwrap();
            let spec = p.spec.as_ref().unwrap();
            assert_eq!(
                (spec.node_name.as_str(), spec.restart_policy.as_str()),
                ("n1", "Never")
            );
            assert_eq!(spec.containers[0].name, "c", "{phase}");
            assert_eq!(spec.init_containers[0].name, "c", "{phase}");
            assert!(spec.containers[0].image.is_empty(), "{phase}");
            let status = p.status.as_ref().unwrap();
            assert_eq!(
                (status.phase.as_str(), status.reason.as_str()),
                (phase, "R")
            );
            assert_eq!(status.start_time, "2026-12-02T00:00:00Z");
            assert!(status.conditions.is_empty() && status.container_statuses.is_empty());
        }
        let mut node: Object = v1::Node::default().into();
        node.slim_if_finished_pod();
        assert_eq!(node, v1::Node::default().into());
    }

    #[test]
    fn type_meta_is_set_to_the_preferred_version() {
        let mut o = pod("a", "busybox");
        o.set_type_meta();
        assert_eq!(o.type_meta(), ("v1", "Pod"));
    }
}
