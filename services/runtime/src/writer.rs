//! The object writes a controller makes, behind one small trait ([`Writer`]), so the "act"
//! half of a reconcile can be tested in-process: the real [`Broker`] client implements it,
//! and so does [`RecordingWriter`], a fake that keeps objects in memory, records every call
//! and can be told to fail the next call of a kind with a given gRPC status (the model:
//! the fake clients of Kubernetes' CronJob v2 controller tests).
//!
//! Reads a controller makes *to decide* come from its caches; the one read here, [`Writer::get_opt`],
//! is the fresh read a write needs first (adoption re-reads the pod it takes).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bosun_api::{Kind, Object};
use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::client::{Broker, ClientError, DeleteOptions, Deleted};

/// What a call returns.
pub type WriteResult<T> = Result<T, ClientError>;

/// The writes (and the one fresh read) a controller makes against the broker.
pub trait Writer: Send + Sync + 'static {
    /// Reads one object from the broker (not a cache); `None` when it does not exist.
    fn get_opt<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, WriteResult<Option<Object>>>;
    /// Creates `object`; returns it as stored.
    fn create(&self, object: Object) -> BoxFuture<'_, WriteResult<Object>>;
    /// Replaces spec and metadata, conditional on the object's resourceVersion when set.
    fn update(&self, object: Object) -> BoxFuture<'_, WriteResult<Object>>;
    /// Replaces the status, conditional on the object's resourceVersion when set.
    fn update_status(&self, object: Object) -> BoxFuture<'_, WriteResult<Object>>;
    /// Adds and removes finalizers only (`uid`, when not empty, must name the object).
    fn update_finalizers<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
        uid: &'a str,
        add: &'a [&'a str],
        remove: &'a [&'a str],
    ) -> BoxFuture<'a, WriteResult<Object>>;
    /// Deletes an object (with the preconditions in `options`).
    fn delete<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
        options: DeleteOptions,
    ) -> BoxFuture<'a, WriteResult<Deleted>>;
}

impl Writer for Broker {
    fn get_opt<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, WriteResult<Option<Object>>> {
        Broker::get_opt(self, kind, namespace, name).boxed()
    }
    fn create(&self, object: Object) -> BoxFuture<'_, WriteResult<Object>> {
        Broker::create(self, object).boxed()
    }
    fn update(&self, object: Object) -> BoxFuture<'_, WriteResult<Object>> {
        Broker::update(self, object).boxed()
    }
    fn update_status(&self, object: Object) -> BoxFuture<'_, WriteResult<Object>> {
        Broker::update_status(self, object).boxed()
    }
    fn update_finalizers<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
        uid: &'a str,
        add: &'a [&'a str],
        remove: &'a [&'a str],
    ) -> BoxFuture<'a, WriteResult<Object>> {
        Broker::update_finalizers(self, kind, namespace, name, uid, add, remove).boxed()
    }
    fn delete<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
        options: DeleteOptions,
    ) -> BoxFuture<'a, WriteResult<Deleted>> {
        Broker::delete(self, kind, namespace, name, options).boxed()
    }
}

/// Which call (to record it, or to make it fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Create,
    Update,
    UpdateStatus,
    UpdateFinalizers,
    Delete,
}

/// One call the fake received: its verb, the object's kind and `namespace/name` (for a
/// create with `generateName`, the name it was given), and what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub verb: Verb,
    pub kind: Kind,
    pub key: String,
    /// Finalizers added and removed (UpdateFinalizers), else empty.
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// Whether the call succeeded.
    pub ok: bool,
}

/// An in-memory [`Writer`]: objects by (kind, key), resourceVersions from a counter, uids
/// and generated names made up; resourceVersion preconditions and uid preconditions are
/// checked as the broker checks them. Every call is recorded.
#[derive(Default)]
pub struct RecordingWriter {
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    objects: BTreeMap<(i32, String), Object>,
    calls: Vec<Call>,
    failures: HashMap<Verb, Vec<ClientError>>,
    revision: i64,
}

impl RecordingWriter {
    /// An empty fake.
    pub fn new() -> Arc<RecordingWriter> {
        Arc::new(RecordingWriter::default())
    }

    /// Stores `object` as if it existed (a uid and resourceVersion are given when missing);
    /// returns it as stored.
    pub fn seed(&self, mut object: Object) -> Object {
        let mut s = self.lock();
        s.revision += 1;
        let rv = s.revision;
        let meta = object.meta_mut();
        if meta.uid.is_empty() {
            meta.uid = format!("uid-{rv}");
        }
        meta.resource_version = rv.to_string();
        s.objects
            .insert((object.kind() as i32, object.key()), object.clone());
        object
    }

    /// Makes the next `verb` call fail with `error` (a `tonic::Status`, mapped as the real
    /// client maps it, or a [`ClientError`]); queued: call it twice to fail two.
    pub fn fail_next(&self, verb: Verb, error: impl Into<ClientError>) {
        self.lock()
            .failures
            .entry(verb)
            .or_default()
            .push(error.into());
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls of one verb.
    pub fn calls_of(&self, verb: Verb) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.verb == verb)
            .collect()
    }

    /// The stored object of `kind` at `key`.
    pub fn object(&self, kind: Kind, key: &str) -> Option<Object> {
        self.lock()
            .objects
            .get(&(kind as i32, key.to_string()))
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one call: a queued failure, else `apply`; records it either way.
    fn call<T>(
        &self,
        verb: Verb,
        kind: Kind,
        key: String,
        finalizers: (&[&str], &[&str]),
        apply: impl FnOnce(&mut FakeState) -> WriteResult<(String, T)>,
    ) -> WriteResult<T> {
        let mut s = self.lock();
        let failure = s.failures.get_mut(&verb).and_then(|q| {
            if q.is_empty() {
                None
            } else {
                Some(q.remove(0))
            }
        });
        let result = match failure {
            Some(error) => Err(error),
            None => apply(&mut s),
        };
        let (key, ok) = match &result {
            Ok((k, _)) => (k.clone(), true),
            Err(_) => (key, false),
        };
        let owned = |v: &[&str]| v.iter().map(|f| f.to_string()).collect();
        s.calls.push(Call {
            verb,
            kind,
            key,
            add: owned(finalizers.0),
            remove: owned(finalizers.1),
            ok,
        });
        result.map(|(_, t)| t)
    }
}

impl FakeState {
    fn next_revision(&mut self) -> i64 {
        self.revision += 1;
        self.revision
    }

    /// The stored object `requested` names, checking its resourceVersion when set.
    fn existing(&self, requested: &Object) -> WriteResult<&Object> {
        let key = (requested.kind() as i32, requested.key());
        let stored = self
            .objects
            .get(&key)
            .ok_or_else(|| ClientError::NotFound(requested.key()))?;
        let sent = requested.resource_version();
        if sent != 0 && sent != stored.resource_version() {
            return Err(ClientError::Conflict(format!(
                "{}: resourceVersion {sent} is stale (now {})",
                requested.key(),
                stored.resource_version()
            )));
        }
        Ok(stored)
    }

    fn store(&mut self, mut object: Object) -> Object {
        let rv = self.next_revision();
        object.meta_mut().resource_version = rv.to_string();
        self.objects
            .insert((object.kind() as i32, object.key()), object.clone());
        object
    }
}

fn key_of(namespace: &str, name: &str) -> String {
    bosun_api::object::object_key(namespace, name)
}

impl Writer for RecordingWriter {
    fn get_opt<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, WriteResult<Option<Object>>> {
        let key = key_of(namespace, name);
        let r = self.call(Verb::Get, kind, key.clone(), (&[], &[]), |s| {
            Ok((key.clone(), s.objects.get(&(kind as i32, key)).cloned()))
        });
        async move { r }.boxed()
    }

    fn create(&self, object: Object) -> BoxFuture<'_, WriteResult<Object>> {
        let kind = object.kind();
        let r = self.call(Verb::Create, kind, object.key(), (&[], &[]), |s| {
            let mut object = object;
            let rv = s.revision + 1;
            let meta = object.meta_mut();
            if meta.name.is_empty() {
                meta.name = format!("{}{rv:05}", meta.generate_name);
            }
            meta.uid = format!("uid-{rv}");
            if s.objects.contains_key(&(kind as i32, object.key())) {
                return Err(ClientError::AlreadyExists(object.key()));
            }
            let stored = s.store(object);
            Ok((stored.key(), stored))
        });
        async move { r }.boxed()
    }

    fn update(&self, object: Object) -> BoxFuture<'_, WriteResult<Object>> {
        let r = self.call(Verb::Update, object.kind(), object.key(), (&[], &[]), |s| {
            let stored = s.existing(&object)?;
            let mut next = object.clone();
            next.meta_mut().uid = stored.uid().to_string();
            next.copy_status_from(stored);
            let stored = s.store(next);
            Ok((stored.key(), stored))
        });
        async move { r }.boxed()
    }

    fn update_status(&self, object: Object) -> BoxFuture<'_, WriteResult<Object>> {
        let r = self.call(
            Verb::UpdateStatus,
            object.kind(),
            object.key(),
            (&[], &[]),
            |s| {
                let mut next = s.existing(&object)?.clone();
                next.copy_status_from(&object);
                let stored = s.store(next);
                Ok((stored.key(), stored))
            },
        );
        async move { r }.boxed()
    }

    fn update_finalizers<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
        uid: &'a str,
        add: &'a [&'a str],
        remove: &'a [&'a str],
    ) -> BoxFuture<'a, WriteResult<Object>> {
        let key = key_of(namespace, name);
        let r = self.call(
            Verb::UpdateFinalizers,
            kind,
            key.clone(),
            (add, remove),
            |s| {
                let mut next = s
                    .objects
                    .get(&(kind as i32, key.clone()))
                    .filter(|o| uid.is_empty() || o.uid() == uid)
                    .cloned()
                    .ok_or_else(|| ClientError::NotFound(key.clone()))?;
                let fin = &mut next.meta_mut().finalizers;
                fin.retain(|f| !remove.contains(&f.as_str()));
                for a in add {
                    if !fin.iter().any(|f| f == a) {
                        fin.push(a.to_string());
                    }
                }
                let stored = s.store(next);
                Ok((key, stored))
            },
        );
        async move { r }.boxed()
    }

    fn delete<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
        options: DeleteOptions,
    ) -> BoxFuture<'a, WriteResult<Deleted>> {
        let key = key_of(namespace, name);
        let r = self.call(Verb::Delete, kind, key.clone(), (&[], &[]), |s| {
            let stored = s
                .objects
                .get(&(kind as i32, key.clone()))
                .cloned()
                .ok_or_else(|| ClientError::NotFound(key.clone()))?;
            if options.uid.as_ref().is_some_and(|u| u != stored.uid()) {
                return Err(ClientError::Conflict(format!("{key}: uid precondition")));
            }
            s.objects.remove(&(kind as i32, key.clone()));
            Ok((
                key,
                Deleted {
                    object: stored,
                    deleted: true,
                },
            ))
        });
        async move { r }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::v1;

    fn pod(name: &str) -> Object {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "ns".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    #[tokio::test]
    async fn the_fake_records_calls_checks_resource_versions_and_fails_on_request() {
        let w = RecordingWriter::new();
        let stored = w.create(pod("a")).await.expect("create");
        assert!(!stored.uid().is_empty());
        // A write on the version read succeeds; a second one on the same version conflicts.
        w.update(stored.clone()).await.expect("update");
        let stale = w.update(stored.clone()).await.expect_err("stale");
        assert!(stale.is_conflict());
        w.fail_next(Verb::Create, tonic::Status::unavailable("down"));
        let err = w.create(pod("b")).await.expect_err("told to fail");
        assert!(err.is_transient());
        w.create(pod("b")).await.expect("the failure was used up");
        let verbs: Vec<(Verb, bool)> = w.calls().iter().map(|c| (c.verb, c.ok)).collect();
        assert_eq!(
            verbs,
            [
                (Verb::Create, true),
                (Verb::Update, true),
                (Verb::Update, false),
                (Verb::Create, false),
                (Verb::Create, true),
            ]
        );
        let gone = w
            .update_finalizers(Kind::Pod, "ns", "a", "other-uid", &[], &["f"])
            .await
            .expect_err("uid precondition");
        assert!(gone.is_not_found());
    }
}
