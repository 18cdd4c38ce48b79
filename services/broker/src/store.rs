//! The object API over etcd: every write is one txn guarded by the object's mod_revision (or
//! its absence), so a conflict is reported, never lost.
//!
//! The pure parts (what an update keeps from the stored object, what a delete does with
//! finalizers) are free functions at the bottom, tested without etcd.

use bosun_api::kind::KindInfo;
use bosun_api::selector::{FieldSelector, LabelSelector};
use bosun_api::v1::{self, Kind, Object};
use bosun_api::validation::FieldError;
use bosun_api::vocab::{self, condition, phase, propagation};
use etcd_client::{Compare, CompareOp, GetOptions, KvClient, TxnOp};
use prost::Message;
use rand::Rng;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::batch::{Batcher, FenceGuard, Limits, Written};
use crate::error::{Error, Result};
use crate::patch::{PatchError, Patched};
use crate::recent::Recent;
use bosun_api::shard::Fence;

/// The finalizers a Foreground delete and an Orphan delete add: the garbage collector removes
/// them once the dependents are gone, or their ownerReferences stripped.
pub use bosun_api::vocab::finalizer::{
    FOREGROUND as FOREGROUND_FINALIZER, ORPHAN as ORPHAN_FINALIZER,
};

/// How many times an unconditional write re-reads and retries after losing a race.
const WRITE_ATTEMPTS: usize = 16;
/// How many times a patch runs the whole read-merge-write loop before reporting contention.
const PATCH_ROUNDS: usize = 8;
/// How many random names `generateName` tries before giving up.
const NAME_ATTEMPTS: usize = 8;

/// The result of a delete.
#[derive(Debug)]
pub struct Deleted {
    /// The last stored state (marked with a deletionTimestamp when not yet deleted).
    pub object: Object,
    pub deleted: bool,
}

/// Object storage in etcd.
#[derive(Clone)]
pub struct Store {
    kv: KvClient,
    batcher: Batcher,
    max_object_bytes: usize,
    /// What this broker last wrote or read of each object (see [`Recent`]).
    recent: Arc<Recent>,
    /// The fence every write of this handle is checked against, in the write's own txn
    /// (see [`Store::with_fence`]).
    fence: Option<Fence>,
}

impl Store {
    /// A store over `kv`, refusing objects larger than `max_object_bytes` once encoded and
    /// remembering up to `cache_bytes` of objects it wrote or read (see [`Recent`]).
    /// Single-object reads and writes go through a [`Batcher`] (started here, so this must
    /// run inside a tokio runtime).
    pub fn new(kv: KvClient, limits: Limits, max_object_bytes: usize, cache_bytes: usize) -> Store {
        Store {
            batcher: Batcher::start(kv.clone(), limits),
            kv,
            max_object_bytes,
            recent: Arc::new(Recent::new(cache_bytes)),
            fence: None,
        }
    }

    /// This store, with every write made through it fenced by `fence` (the request's
    /// `bosun-fence`): applied only while the shard's owner key still has the token as its
    /// create revision, checked in the same etcd txn as the write. A write that goes through
    /// several etcd steps is fenced on each step made through the handle.
    pub fn with_fence(&self, fence: Option<Fence>) -> Store {
        Store {
            fence,
            ..self.clone()
        }
    }

    /// A guarded write through the batcher, fenced when this handle is: a lost fence is
    /// [`Error::Fenced`], whatever the object's own compare said.
    async fn guarded_write(
        &self,
        key: &str,
        value_len: usize,
        compare: Compare,
        op: TxnOp,
    ) -> Result<Written> {
        let guard = self.fence.as_ref().map(FenceGuard::of);
        let written = self
            .batcher
            .write(key.as_bytes().to_vec(), value_len, compare, guard, op)
            .await?;
        match (written.fence_lost, self.fence) {
            (Some(now), Some(f)) => {
                tracing::info!(key, fence = %f, ?now, "write refused: fenced");
                Err(Error::Fenced {
                    controller: f.controller,
                    shard: f.shard,
                    token: f.token,
                    now,
                })
            }
            _ => Ok(written),
        }
    }

    /// Creates `obj` (see the module docs of the broker for every step).
    pub async fn create(&self, mut obj: Object, dry_run: bool) -> Result<Object> {
        let info = kind_info(&obj)?;
        prepare_create(&mut obj, info)?;
        let generated = obj.name().is_empty();
        for _ in 0..NAME_ATTEMPTS {
            if generated {
                let prefix = obj
                    .meta()
                    .map(|m| m.generate_name.clone())
                    .unwrap_or_default();
                obj.meta_mut().name = format!("{prefix}{}", random_suffix());
            }
            bosun_api::defaults::apply_defaults(&mut obj);
            bosun_api::validation::validate_create(&obj).map_err(|errors| Error::Invalid {
                resource: info.resource_word(),
                name: obj.name().to_string(),
                errors,
            })?;
            let bytes = self.encode(&obj, info)?;
            if dry_run {
                return Ok(obj);
            }
            let key = info.etcd_key(obj.namespace(), obj.name());
            let compare = Compare::version(key.clone(), CompareOp::Equal, 0);
            let remembered: Arc<[u8]> = Arc::from(&bytes[..]);
            let value_len = bytes.len();
            let op = TxnOp::put(key.clone(), bytes, None);
            let written = self.guarded_write(&key, value_len, compare, op).await?;
            if written.succeeded {
                self.recent.put(&key, remembered, written.revision);
                obj.meta_mut().resource_version = written.revision.to_string();
                return Ok(obj);
            }
            if !generated {
                return Err(Error::AlreadyExists {
                    resource: info.resource_word(),
                    name: obj.key(),
                });
            }
        }
        Err(Error::AlreadyExists {
            resource: info.resource_word(),
            name: format!("{}* ({NAME_ATTEMPTS} generated names taken)", obj.name()),
        })
    }

    /// Reads one object with its mod_revision as resourceVersion.
    pub async fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Object> {
        let info = info_of(kind)?;
        let namespace = effective_namespace(info, namespace);
        self.read(info, &namespace, name)
            .await?
            .map(|(obj, _)| obj)
            .ok_or_else(|| not_found(info, &namespace, name))
    }

    /// Lists a kind in one namespace (or all), filtered in the broker; returns the items and
    /// the etcd revision of the read.
    pub async fn list(
        &self,
        kind: Kind,
        namespace: &str,
        labels: &LabelSelector,
        fields: &FieldSelector,
        shards: Option<&crate::shards::ShardSet>,
    ) -> Result<(Vec<Object>, i64)> {
        let info = info_of(kind)?;
        fields.check_kind(kind)?;
        let prefix = if info.namespaced {
            info.etcd_namespace_prefix(namespace)
        } else {
            info.etcd_prefix()
        };
        let resp = self
            .kv
            .clone()
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut items = Vec::with_capacity(resp.kvs().len());
        for kv in resp.kvs() {
            let obj = decode(kv.key(), kv.value(), kv.mod_revision())?;
            if labels.matches_object(&obj)
                && fields.matches(&obj)
                && shards.is_none_or(|s| s.passes(&obj))
            {
                items.push(obj);
            }
        }
        Ok((items, revision))
    }

    /// Replaces an object's spec and metadata, keeping its stored status.
    pub async fn update(&self, obj: Object, dry_run: bool) -> Result<Object> {
        let target = Target::of(&obj)?;
        let merge = |stored: &Object| Ok(merge_update(stored, &obj));
        let check = bosun_api::validation::validate_update;
        self.write_existing(target, dry_run, merge, check).await
    }

    /// Replaces an object's status only.
    pub async fn update_status(&self, obj: Object, dry_run: bool) -> Result<Object> {
        let target = Target::of(&obj)?;
        let merge = |stored: &Object| Ok(merge_status(stored, &obj));
        let check = bosun_api::validation::validate_update;
        self.write_existing(target, dry_run, merge, check).await
    }

    /// Adds and removes finalizers of one object, nothing else (the narrow metadata patch a
    /// controller releasing its finalizer needs: no read, no full object on the wire).
    /// Removing the last finalizer of an object marked for deletion deletes it.
    pub async fn update_finalizers(&self, req: &v1::FinalizersRequest) -> Result<Object> {
        let kind = Kind::try_from(req.kind).unwrap_or(Kind::Unspecified);
        let info = info_of(kind)?;
        let target = Target {
            info,
            namespace: effective_namespace(info, &req.namespace),
            name: req.name.clone(),
            sent: 0,
        };
        let merge = |stored: &Object| merge_finalizers(info, stored, req);
        let check = bosun_api::validation::validate_update;
        self.write_existing(target, false, merge, check).await
    }

    /// Patches one object (see [`crate::patch`]): the patch is applied to the stored object
    /// inside the same read-merge-write loop as an update (or, for the `status`
    /// subresource, an update-status), so a lost race re-reads and applies it again.
    /// Returns the object and whether anything changed (an unchanged object is not written).
    pub async fn patch(&self, req: &v1::PatchRequest) -> Result<(Object, bool)> {
        let kind = Kind::try_from(req.kind).unwrap_or(Kind::Unspecified);
        let info = info_of(kind)?;
        let status_only = match req.subresource.as_str() {
            "" => false,
            "status" => true,
            other => {
                return Err(Error::BadRequest(format!(
                    "subresource {other:?} cannot be patched: use \"status\" or none"
                )));
            }
        };
        let target = Target {
            info,
            namespace: effective_namespace(info, &req.namespace),
            name: req.name.clone(),
            sent: 0,
        };
        // The revision the last merge started from: a write returns a newer one, so the same
        // revision back means nothing was written. A dry run writes nothing: it compares.
        let read_at = AtomicI64::new(-1);
        let would_change = AtomicBool::new(false);
        let merge = |stored: &Object| {
            read_at.store(stored.resource_version(), Ordering::Relaxed);
            let next = merge_patch(info, stored, req, status_only)?;
            if req.dry_run {
                let mut defaulted = next.clone();
                bosun_api::defaults::apply_defaults(&mut defaulted);
                would_change.store(!same_stored_form(stored, &defaulted), Ordering::Relaxed);
            }
            Ok(next)
        };
        let check = bosun_api::validation::validate_update;
        // A patch is relative to whatever is stored, so applying it again after a lost race
        // is always right: under heavy contention it gets more rounds of the loop's
        // attempts, a random pause apart, before contention is reported.
        let mut round = 1;
        let object = loop {
            match self
                .write_existing(target.clone(), req.dry_run, &merge, check)
                .await
            {
                Err(Error::Contended { .. }) if round < PATCH_ROUNDS => {
                    round += 1;
                    tracing::warn!(round, "patch kept losing races; retrying");
                    let pause = rand::rng().random_range(1..=20);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                other => break other?,
            }
        };
        let changed = if req.dry_run {
            would_change.load(Ordering::Relaxed)
        } else {
            object.resource_version() != read_at.load(Ordering::Relaxed)
        };
        Ok((object, changed))
    }

    /// Binds a pod to a node (the scheduler's write): `spec.nodeName` and the PodScheduled
    /// condition, in one conflict-checked transaction. Binding is the one spec change a pod
    /// allows, so it skips the update immutability rules and is checked as a new object.
    pub async fn bind(&self, req: &v1::BindRequest) -> Result<Object> {
        if req.node_name.is_empty() {
            return Err(Error::BadRequest("bind: nodeName is required".into()));
        }
        let requested: Object = v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: req.name.clone(),
                namespace: req.namespace.clone(),
                uid: req.uid.clone(),
                resource_version: req.resource_version.clone(),
                ..Default::default()
            }),
            spec: Some(Box::new(v1::PodSpec {
                node_name: req.node_name.clone(),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let target = Target::of(&requested)?;
        let merge = |stored: &Object| merge_bind(stored, &requested, &now);
        let check = |_: &Object, next: &Object| bosun_api::validation::validate_create(next);
        self.write_existing(target, false, merge, check).await
    }

    /// The shared read-merge-txn loop of update, update-status, bind and update-finalizers.
    ///
    /// The first attempt starts from the object as this broker last wrote or read it, when
    /// it remembers it (and, for a conditional write, at the revision the caller sent);
    /// anything but a clean write decided on that copy is decided again on a fresh read.
    async fn write_existing(
        &self,
        target: Target,
        dry_run: bool,
        merge: impl Fn(&Object) -> Result<Object>,
        check: impl Fn(&Object, &Object) -> std::result::Result<(), Vec<FieldError>>,
    ) -> Result<Object> {
        match self
            .write_existing_once(target, dry_run, merge, check)
            .await
        {
            Err(err @ Error::Conflict { .. }) => Err(self.fenced_rather_than(err).await),
            other => other,
        }
    }

    /// A conflict decided before any txn (a stale resourceVersion against the stored or
    /// remembered object) of a fenced write: [`Error::Fenced`] when the fence is lost too, so
    /// a deposed replica learns it has to stop rather than re-read and retry.
    async fn fenced_rather_than(&self, err: Error) -> Error {
        let Some(f) = self.fence else { return err };
        let key = bosun_api::shard::owner_key(f.controller, f.shard);
        match self.batcher.read(key.into_bytes()).await {
            Ok(kv) => {
                let now = kv.map(|kv| kv.create_revision());
                if now == Some(f.token) {
                    err
                } else {
                    Error::Fenced {
                        controller: f.controller,
                        shard: f.shard,
                        token: f.token,
                        now,
                    }
                }
            }
            Err(_) => err,
        }
    }

    async fn write_existing_once(
        &self,
        target: Target,
        dry_run: bool,
        merge: impl Fn(&Object) -> Result<Object>,
        check: impl Fn(&Object, &Object) -> std::result::Result<(), Vec<FieldError>>,
    ) -> Result<Object> {
        let Target {
            info,
            namespace,
            name,
            sent,
        } = target;
        if name.is_empty() {
            return Err(Error::BadRequest("metadata.name is required".into()));
        }
        let key = info.etcd_key(&namespace, &name);
        let mut remembered = self
            .recent
            .get(&key)
            .filter(|e| !dry_run && (sent == 0 || sent == e.revision));
        for _ in 0..WRITE_ATTEMPTS {
            let cached = remembered.is_some();
            let (stored, stored_bytes) = match remembered.take() {
                Some(e) => (decode(key.as_bytes(), &e.bytes, e.revision)?, e.bytes),
                None => self
                    .read(info, &namespace, &name)
                    .await?
                    .ok_or_else(|| not_found(info, &namespace, &name))?,
            };
            let current = stored.resource_version();
            let planned = self.plan_write(info, &stored, &stored_bytes, sent, &merge, &check);
            let (mut next, bytes) = match planned {
                Ok(Planned::Write(next, bytes)) => (next, bytes),
                // Decided on a remembered copy that may be stale: decide again on a fresh read.
                _ if cached => {
                    self.recent.remove(&key);
                    continue;
                }
                Ok(Planned::Unchanged(next)) => return Ok(next),
                Err(err) => return Err(err),
            };
            if dry_run {
                next.meta_mut().resource_version = current.to_string();
                return Ok(next);
            }
            let finished = finalized(&next);
            let remember: Arc<[u8]> = Arc::from(&bytes[..]);
            let value_len = if finished { 0 } else { bytes.len() };
            let op = if finished {
                TxnOp::delete(key.clone(), None)
            } else {
                TxnOp::put(key.clone(), bytes, None)
            };
            let compare = Compare::mod_revision(key.clone(), CompareOp::Equal, current);
            let written = self.guarded_write(&key, value_len, compare, op).await?;
            if written.succeeded {
                next.meta_mut().resource_version = written.revision.to_string();
                if finished {
                    self.recent.remove(&key);
                    tracing::debug!(key = %key, "last finalizer removed: deleted");
                } else {
                    self.recent.put(&key, remember, written.revision);
                }
                return Ok(next);
            }
            self.recent.remove(&key);
            if cached {
                continue;
            }
            if sent != 0 {
                // Someone wrote between our read and our txn: report the version now stored.
                let now = self
                    .read(info, &namespace, &name)
                    .await?
                    .map_or(0, |(o, _)| o.resource_version());
                return Err(conflict(info, &stored, sent, now));
            }
            tracing::warn!(key = %key, "update lost a race; retrying");
        }
        Err(Error::Contended {
            resource: info.resource_word(),
            name: bosun_api::object::object_key(&namespace, &name),
        })
    }

    /// What one read-merge-write does with the stored object: refuse (a conflict with the
    /// revision the caller `sent`, a failed merge, an invalid result), write new bytes, or
    /// nothing (no change, or a dry run: the object as it would be).
    fn plan_write(
        &self,
        info: &'static KindInfo,
        stored: &Object,
        stored_bytes: &[u8],
        sent: i64,
        merge: &impl Fn(&Object) -> Result<Object>,
        check: &impl Fn(&Object, &Object) -> std::result::Result<(), Vec<FieldError>>,
    ) -> Result<Planned> {
        let current = stored.resource_version();
        if sent != 0 && sent != current {
            return Err(conflict(info, stored, sent, current));
        }
        let mut next = merge(stored)?;
        bosun_api::defaults::apply_defaults(&mut next);
        check(stored, &next).map_err(|errors| Error::Invalid {
            resource: info.resource_word(),
            name: stored.key(),
            errors,
        })?;
        let bytes = self.encode(&next, info)?;
        if !finalized(&next) && bytes == stored_bytes {
            // Nothing changed: no write, no event, same resourceVersion.
            next.meta_mut().resource_version = current.to_string();
            return Ok(Planned::Unchanged(next));
        }
        Ok(Planned::Write(next, bytes))
    }

    /// Deletes an object, or marks it for deletion when finalizers hold it.
    pub async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        preconditions: Option<&bosun_api::v1::Preconditions>,
        propagation_policy: &str,
        grace_period_seconds: Option<i64>,
    ) -> Result<Deleted> {
        let info = info_of(kind)?;
        let namespace = effective_namespace(info, namespace);
        let policy = Propagation::parse(propagation_policy)?;
        let key = info.etcd_key(&namespace, name);
        for _ in 0..WRITE_ATTEMPTS {
            let (stored, _) = self
                .read(info, &namespace, name)
                .await?
                .ok_or_else(|| not_found(info, &namespace, name))?;
            check_preconditions(info, &stored, preconditions)?;
            let current = stored.resource_version();
            let now = chrono::Utc::now();
            let plan = plan_delete(&stored, policy, grace_period_seconds, now);
            let guard = Compare::mod_revision(key.clone(), CompareOp::Equal, current);
            let mut remember: Option<Arc<[u8]>> = None;
            let (op, deleted) = match &plan {
                DeletePlan::DeleteNow => (TxnOp::delete(key.clone(), None), true),
                DeletePlan::Mark(marked) => {
                    let bytes = self.encode(marked, info)?;
                    remember = Some(Arc::from(&bytes[..]));
                    (TxnOp::put(key.clone(), bytes, None), false)
                }
                DeletePlan::AlreadyMarked => {
                    return Ok(Deleted {
                        object: stored,
                        deleted: false,
                    });
                }
            };
            let value_len = remember.as_ref().map_or(0, |b| b.len());
            let written = self.guarded_write(&key, value_len, guard, op).await?;
            match remember {
                Some(bytes) if written.succeeded => self.recent.put(&key, bytes, written.revision),
                _ => self.recent.remove(&key),
            }
            if written.succeeded {
                let rev = written.revision;
                let mut object = match plan {
                    DeletePlan::Mark(marked) => *marked,
                    _ => stored,
                };
                if !deleted {
                    object.meta_mut().resource_version = rev.to_string();
                }
                return Ok(Deleted { object, deleted });
            }
            tracing::warn!(key = %key, "delete lost a race; retrying");
        }
        Err(Error::Contended {
            resource: info.resource_word(),
            name: bosun_api::object::object_key(&namespace, name),
        })
    }

    /// The current etcd revision.
    pub async fn current_revision(&self) -> Result<i64> {
        let resp = self
            .kv
            .clone()
            .get(
                "/bosun/",
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn read(
        &self,
        info: &KindInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Option<(Object, Arc<[u8]>)>> {
        let key = info.etcd_key(namespace, name);
        let Some(kv) = self.batcher.read(key.clone().into_bytes()).await? else {
            self.recent.remove(&key);
            return Ok(None);
        };
        let obj = decode(kv.key(), kv.value(), kv.mod_revision())?;
        let bytes: Arc<[u8]> = Arc::from(kv.value());
        self.recent.put(&key, bytes.clone(), kv.mod_revision());
        Ok(Some((obj, bytes)))
    }

    /// Encodes for storage: resourceVersion cleared, within the size limit.
    fn encode(&self, obj: &Object, info: &KindInfo) -> Result<Vec<u8>> {
        let mut stored = obj.clone();
        stored.meta_mut().resource_version.clear();
        let bytes = stored.encode_to_vec();
        if bytes.len() > self.max_object_bytes {
            return Err(Error::TooLarge {
                resource: info.resource_word(),
                name: obj.key(),
                size: bytes.len(),
                limit: self.max_object_bytes,
            });
        }
        Ok(bytes)
    }
}

/// Whether two objects store as the same bytes (resourceVersion aside).
fn same_stored_form(a: &Object, b: &Object) -> bool {
    let bytes = |o: &Object| {
        let mut o = o.clone();
        o.meta_mut().resource_version.clear();
        o.encode_to_vec()
    };
    bytes(a) == bytes(b)
}

/// Decodes a stored value, naming the key when it is corrupt.
pub fn decode(key: &[u8], value: &[u8], revision: i64) -> Result<Object> {
    Object::decode_stored(value, revision).map_err(|source| Error::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

fn info_of(kind: Kind) -> Result<&'static KindInfo> {
    KindInfo::of(kind).ok_or_else(|| Error::BadRequest("kind is required".into()))
}

/// What a read-merge-write does, once merged and checked.
enum Planned {
    /// Write these bytes (or delete, when the object is finalized).
    Write(Object, Vec<u8>),
    /// Nothing changed: the object as it is stored.
    Unchanged(Object),
}

/// The object a read-merge-write names: its kind, where it lives, and the resourceVersion the
/// caller based its change on (0: unconditional).
#[derive(Clone)]
struct Target {
    info: &'static KindInfo,
    namespace: String,
    name: String,
    sent: i64,
}

impl Target {
    fn of(requested: &Object) -> Result<Target> {
        let info = kind_info(requested)?;
        Ok(Target {
            info,
            namespace: effective_namespace(info, requested.namespace()),
            name: requested.name().to_string(),
            sent: requested.resource_version(),
        })
    }
}

fn kind_info(obj: &Object) -> Result<&'static KindInfo> {
    let info = obj
        .info()
        .ok_or_else(|| Error::BadRequest("the request carries no object".into()))?;
    if obj.meta().is_none() {
        return Err(Error::BadRequest("metadata is required".into()));
    }
    Ok(info)
}

/// `default` for a namespaced kind with no namespace; nothing for cluster-scoped kinds.
fn effective_namespace(info: &KindInfo, namespace: &str) -> String {
    match (info.namespaced, namespace.is_empty()) {
        (true, true) => "default".into(),
        (true, false) => namespace.into(),
        (false, _) => String::new(),
    }
}

fn not_found(info: &KindInfo, namespace: &str, name: &str) -> Error {
    Error::NotFound {
        resource: info.resource_word(),
        name: bosun_api::object::object_key(namespace, name),
    }
}

fn conflict(info: &KindInfo, stored: &Object, sent: i64, current: i64) -> Error {
    Error::Conflict {
        resource: info.resource_word(),
        name: stored.key(),
        sent,
        current,
    }
}

/// Five random characters from `[a-z0-9]`, as Kubernetes' name generator appends.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Fills what the server owns on create: namespace, uid, timestamps, generation.
fn prepare_create(obj: &mut Object, info: &KindInfo) -> Result<()> {
    obj.set_type_meta();
    let namespace = effective_namespace(info, obj.namespace());
    let meta = obj.meta_mut();
    if meta.name.is_empty() && meta.generate_name.is_empty() {
        return Err(Error::BadRequest(format!(
            "{}: metadata.name or metadata.generateName is required",
            info.resource_word()
        )));
    }
    meta.namespace = namespace;
    meta.uid = uuid::Uuid::new_v4().to_string();
    meta.creation_timestamp = timestamp(chrono::Utc::now());
    meta.generation = 1;
    meta.resource_version.clear();
    meta.deletion_timestamp.clear();
    meta.deletion_grace_period_seconds = None;
    pending_on_create(obj);
    Ok(())
}

/// A new pod is `Pending` until a node takes it (Kubernetes' pod strategy sets the phase in
/// `PrepareForCreate`), so `get pod -o jsonpath='{.status.phase}'` and the field selector
/// `status.phase=Pending` see it before any node does. Kubernetes also drops the rest of
/// the status a create sends; bosun keeps it (controllers' tests and the benchmarks seed
/// pods with a status) and only fills the phase when none is given.
pub fn pending_on_create(obj: &mut Object) {
    if let Some(v1::object::Object::Pod(pod)) = obj.object.as_mut() {
        let status = pod.status.get_or_insert_with(Default::default);
        if status.phase.is_empty() {
            status.phase = phase::PENDING.to_string();
        }
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An update: the request's spec and metadata, the stored status, and the server-owned
/// metadata (uid, creationTimestamp, name, namespace, deletion marks) from the stored object;
/// generation bumped only when the spec changed.
pub fn merge_update(stored: &Object, requested: &Object) -> Object {
    let mut next = requested.clone();
    next.set_type_meta();
    next.copy_status_from(stored);
    let spec_changed = stored.spec_bytes() != requested.spec_bytes();
    let old = stored.meta().cloned().unwrap_or_default();
    let meta = next.meta_mut();
    meta.uid = old.uid;
    meta.creation_timestamp = old.creation_timestamp;
    meta.name = old.name;
    meta.namespace = old.namespace;
    meta.deletion_timestamp = old.deletion_timestamp;
    meta.deletion_grace_period_seconds = old.deletion_grace_period_seconds;
    meta.generate_name = old.generate_name;
    meta.generation = old.generation + i64::from(spec_changed);
    next
}

/// An update-status: the stored object with the request's status.
/// A bind of `stored` to the node `requested` names: refused when the pod is already bound
/// elsewhere or is not the pod the scheduler saw (uid).
/// `stored` with `req.add` appended (those not there yet) and `req.remove` taken out. A uid
/// naming another object is `NotFound`: the object the caller means is gone, replaced by
/// another of the same name.
pub fn merge_finalizers(
    info: &KindInfo,
    stored: &Object,
    req: &v1::FinalizersRequest,
) -> Result<Object> {
    if !req.uid.is_empty() && req.uid != stored.uid() {
        return Err(not_found(info, stored.namespace(), stored.name()));
    }
    let mut next = stored.clone();
    let finalizers = &mut next.meta_mut().finalizers;
    finalizers.retain(|f| !req.remove.contains(f));
    for f in &req.add {
        if !finalizers.contains(f) {
            finalizers.push(f.clone());
        }
    }
    Ok(next)
}

pub fn merge_bind(stored: &Object, requested: &Object, now: &str) -> Result<Object> {
    let info = kind_info(stored)?;
    let node = requested
        .as_pod()
        .and_then(|p| p.spec.as_ref())
        .map_or("", |s| s.node_name.as_str());
    let precondition = |reason: String| Error::Precondition {
        resource: info.resource_word(),
        name: stored.key(),
        reason,
    };
    if !requested.uid().is_empty() && requested.uid() != stored.uid() {
        return Err(precondition(format!(
            "uid is {}, the bind names {}",
            stored.uid(),
            requested.uid()
        )));
    }
    if stored
        .meta()
        .is_some_and(|m| !m.deletion_timestamp.is_empty())
    {
        return Err(precondition("the pod is being deleted".into()));
    }
    let mut next = stored.clone();
    let Some(v1::object::Object::Pod(pod)) = next.object.as_mut() else {
        return Err(Error::BadRequest("only pods can be bound".into()));
    };
    let spec = pod.spec.get_or_insert_with(Default::default);
    if !spec.node_name.is_empty() {
        if spec.node_name == node {
            return Ok(next);
        }
        return Err(precondition(format!(
            "already bound to node {:?}",
            spec.node_name
        )));
    }
    spec.node_name = node.to_string();
    let status = pod.status.get_or_insert_with(Default::default);
    if status.phase.is_empty() {
        status.phase = phase::PENDING.into();
    }
    status
        .conditions
        .retain(|c| c.r#type != condition::POD_SCHEDULED);
    status.conditions.push(v1::Condition {
        r#type: condition::POD_SCHEDULED.into(),
        status: vocab::status::TRUE.into(),
        last_transition_time: now.to_string(),
        ..Default::default()
    });
    Ok(next)
}

/// A patch of `stored`: the object the patch asks for (see [`crate::patch::patched`]),
/// merged with the stored one as an update merges a request (status and server-owned
/// metadata kept) or, for the status subresource, as an update-status does (only the
/// status taken). A `metadata.resourceVersion` in the patch other than the stored one is a
/// conflict; a patched object that does not decode is invalid like a rejected update.
pub fn merge_patch(
    info: &KindInfo,
    stored: &Object,
    req: &v1::PatchRequest,
    status_only: bool,
) -> Result<Object> {
    let patch_type = v1::PatchType::try_from(req.r#type).unwrap_or(v1::PatchType::Unspecified);
    let requested = match crate::patch::patched(stored, patch_type, &req.patch) {
        Ok(Patched::Object(o)) => *o,
        Ok(Patched::Stale { sent }) => {
            let sent = sent.parse().map_err(|_| {
                Error::BadRequest(format!(
                    "metadata.resourceVersion {sent:?} in the patch is not a resourceVersion (a number, as `get` prints it)"
                ))
            })?;
            return Err(conflict(info, stored, sent, stored.resource_version()));
        }
        Err(PatchError::Invalid(errors)) => {
            return Err(Error::Invalid {
                resource: info.resource_word(),
                name: stored.key(),
                errors,
            });
        }
        Err(err) => return Err(Error::Patch(err)),
    };
    Ok(if status_only {
        merge_status(stored, &requested)
    } else {
        merge_update(stored, &requested)
    })
}

pub fn merge_status(stored: &Object, requested: &Object) -> Object {
    let mut next = stored.clone();
    next.copy_status_from(requested);
    next
}

/// Whether an object marked for deletion is done with: no finalizers left and no graceful
/// termination pending (a pod marked with a grace period goes when its node agent deletes it
/// with grace 0, not when its last finalizer is removed; Kubernetes does the same).
pub fn finalized(obj: &Object) -> bool {
    obj.meta().is_some_and(|m| {
        !m.deletion_timestamp.is_empty()
            && m.finalizers.is_empty()
            && m.deletion_grace_period_seconds.unwrap_or(0) == 0
    })
}

/// Delete propagation policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    /// `""` (no policy given) is `None`: the object's garbage-collector finalizers are left
    /// as they are, which for a fresh object is Background.
    pub fn parse(s: &str) -> Result<Option<Propagation>> {
        match s {
            "" => Ok(None),
            propagation::BACKGROUND => Ok(Some(Propagation::Background)),
            propagation::FOREGROUND => Ok(Some(Propagation::Foreground)),
            propagation::ORPHAN => Ok(Some(Propagation::Orphan)),
            other => Err(Error::BadRequest(format!(
                "propagationPolicy {other:?} is not supported: supported values: \"Background\", \"Foreground\", \"Orphan\""
            ))),
        }
    }
}

/// What a delete does to the stored object.
#[derive(Debug, Clone, PartialEq)]
pub enum DeletePlan {
    /// Nothing holds it: remove the key.
    DeleteNow,
    /// Finalizers or a grace period hold it: write it back marked (deletionTimestamp,
    /// deletionGracePeriodSeconds, the policy's finalizer).
    Mark(Box<Object>),
    /// Already marked and this delete changes nothing.
    AlreadyMarked,
}

/// The finalizers after a delete with `policy`, as Kubernetes computes them: an explicit
/// policy sets exactly its garbage-collector finalizer (Background: neither), removing the
/// other one; no policy keeps what is there.
pub fn gc_finalizers(finalizers: &[String], policy: Option<Propagation>) -> Vec<String> {
    let Some(policy) = policy else {
        return finalizers.to_vec();
    };
    let mut out: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != FOREGROUND_FINALIZER && *f != ORPHAN_FINALIZER)
        .cloned()
        .collect();
    match policy {
        Propagation::Background => {}
        Propagation::Foreground => out.push(FOREGROUND_FINALIZER.to_string()),
        Propagation::Orphan => out.push(ORPHAN_FINALIZER.to_string()),
    }
    out
}

/// The grace period a first delete gives an object: for a pod the request's
/// `gracePeriodSeconds`, else its `terminationGracePeriodSeconds` (default 30), but 0 when
/// the pod is not bound to a node or has already finished (nobody has anything to stop) and
/// at least 1 when negative; 0 for every other kind. Kubernetes' pod strategy, exactly.
pub fn grace_period(stored: &Object, requested: Option<i64>) -> i64 {
    let Some(pod) = stored.as_pod() else {
        return 0;
    };
    let spec = pod.spec.as_ref();
    let bound = spec.is_some_and(|s| !s.node_name.is_empty());
    let phase = pod.status.as_ref().map_or("", |s| s.phase.as_str());
    if !bound || bosun_api::object::phase_finished(phase) {
        return 0;
    }
    let period = requested
        .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30);
    if period < 0 { 1 } else { period }
}

/// Decides a delete, following Kubernetes:
/// - a first delete sets the policy's finalizer and, when anything holds the object
///   (finalizers, or a bound pod's grace period), marks it with deletionTimestamp = now +
///   grace period; otherwise the object goes at once;
/// - a second delete of an object whose graceful termination is pending may only shorten the
///   grace period (to 0 with no finalizers: gone at once, the node agent's last word);
/// - a second delete of an object held only by finalizers may change the garbage-collector
///   finalizer (Foreground, Orphan) like a first one.
pub fn plan_delete(
    stored: &Object,
    policy: Option<Propagation>,
    grace_period_seconds: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> DeletePlan {
    let meta = stored.meta().cloned().unwrap_or_default();
    let mut marked = stored.clone();
    let m = marked.meta_mut();
    if !meta.deletion_timestamp.is_empty() {
        let pending = meta.deletion_grace_period_seconds.unwrap_or(0);
        if pending > 0 {
            // Graceful termination under way: finalizers cannot change, only the wait shrink.
            let Some(shorter) = grace_period_seconds
                .map(|g| g.max(0))
                .filter(|g| *g < pending)
            else {
                return DeletePlan::AlreadyMarked;
            };
            if shorter == 0 && meta.finalizers.is_empty() {
                return DeletePlan::DeleteNow;
            }
            let deadline = chrono::DateTime::parse_from_rfc3339(&meta.deletion_timestamp)
                .map_or(now, |t| t.with_timezone(&chrono::Utc));
            m.deletion_timestamp =
                timestamp(deadline - chrono::Duration::seconds(pending - shorter));
            m.deletion_grace_period_seconds = Some(shorter);
            return DeletePlan::Mark(Box::new(marked));
        }
        m.finalizers = gc_finalizers(&meta.finalizers, policy);
        if m.finalizers == meta.finalizers {
            return DeletePlan::AlreadyMarked;
        }
        if m.finalizers.is_empty() {
            return DeletePlan::DeleteNow;
        }
        return DeletePlan::Mark(Box::new(marked));
    }
    m.finalizers = gc_finalizers(&meta.finalizers, policy);
    let grace = grace_period(stored, grace_period_seconds);
    if m.finalizers.is_empty() && grace == 0 {
        return DeletePlan::DeleteNow;
    }
    m.deletion_timestamp = timestamp(now + chrono::Duration::seconds(grace));
    m.deletion_grace_period_seconds = Some(grace);
    DeletePlan::Mark(Box::new(marked))
}

fn check_preconditions(
    info: &KindInfo,
    stored: &Object,
    pre: Option<&bosun_api::v1::Preconditions>,
) -> Result<()> {
    let Some(pre) = pre else { return Ok(()) };
    let fail = |reason: String| Error::Precondition {
        resource: info.resource_word(),
        name: stored.key(),
        reason,
    };
    if !pre.uid.is_empty() && pre.uid != stored.uid() {
        return Err(fail(format!(
            "UID in precondition: {}, UID in object meta: {}",
            pre.uid,
            stored.uid()
        )));
    }
    if !pre.resource_version.is_empty()
        && pre.resource_version != stored.resource_version().to_string()
    {
        return Err(fail(format!(
            "ResourceVersion in precondition: {}, ResourceVersion in object meta: {}",
            pre.resource_version,
            stored.resource_version()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::v1;

    fn pod(image: &str, phase: &str) -> Object {
        v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: "p".into(),
                namespace: "default".into(),
                uid: "u1".into(),
                creation_timestamp: "2026-01-01T00:00:00Z".into(),
                generation: 3,
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
            status: Some(v1::PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn an_update_keeps_status_and_server_metadata_and_bumps_generation_on_spec_change_only() {
        let stored = pod("busybox", "Running");
        let mut req = pod("busybox", "Pending");
        req.meta_mut().uid = "forged".into();
        req.meta_mut().labels.insert("a".into(), "b".into());
        let next = merge_update(&stored, &req);
        assert_eq!(
            next.as_pod().unwrap().status.as_ref().unwrap().phase,
            "Running"
        );
        assert_eq!(next.uid(), "u1");
        assert_eq!(next.meta().unwrap().generation, 3);
        assert_eq!(
            next.meta().unwrap().labels.get("a").map(String::as_str),
            Some("b")
        );

        let next = merge_update(&stored, &pod("nginx", ""));
        assert_eq!(next.meta().unwrap().generation, 4);
    }

    #[test]
    fn a_patch_merges_like_an_update_or_an_update_status() {
        let info = KindInfo::of(Kind::Pod).unwrap();
        let mut stored = pod("busybox", "Running");
        bosun_api::defaults::apply_defaults(&mut stored);
        stored.meta_mut().resource_version = "5".into();
        let req = |t: v1::PatchType, patch: &str| v1::PatchRequest {
            r#type: t as i32,
            patch: patch.into(),
            ..Default::default()
        };
        let merge = v1::PatchType::Merge;
        let phase = |o: &Object| o.as_pod().unwrap().status.as_ref().unwrap().phase.clone();
        let image = |o: &Object| {
            o.as_pod().unwrap().spec.as_ref().unwrap().containers[0]
                .image
                .clone()
        };

        // The object: labels and spec change, the status sent is ignored.
        let patch = r#"{"metadata": {"labels": {"a": "b"}}, "status": {"phase": "Failed"}}"#;
        let next = merge_patch(info, &stored, &req(merge, patch), false).unwrap();
        assert_eq!(
            next.meta().unwrap().labels.get("a").map(String::as_str),
            Some("b")
        );
        assert_eq!(phase(&next), "Running");
        assert_eq!(next.meta().unwrap().generation, 3, "no spec change");
        let patch = r#"[{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx"}]"#;
        let next = merge_patch(info, &stored, &req(v1::PatchType::Json, patch), false).unwrap();
        assert_eq!(image(&next), "nginx");
        assert_eq!(next.meta().unwrap().generation, 4, "a spec change");

        // The status subresource: only the status is taken.
        let patch = r#"{"metadata": {"labels": {"a": "b"}}, "status": {"phase": "Failed"}}"#;
        let next = merge_patch(info, &stored, &req(merge, patch), true).unwrap();
        assert_eq!(phase(&next), "Failed");
        assert!(next.meta().unwrap().labels.is_empty());

        // Refusals, each its own error.
        let refused = |patch: &str| merge_patch(info, &stored, &req(merge, patch), false);
        assert!(matches!(
            refused(r#"{"metadata": {"resourceVersion": "4"}}"#),
            Err(Error::Conflict {
                sent: 4,
                current: 5,
                ..
            })
        ));
        assert!(matches!(
            refused(r#"{"metadata": {"resourceVersion": "x"}}"#),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            refused(r#"{"spec": {"bogus": 1}}"#),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            refused(r#"{"metadata": {"name": "q"}}"#),
            Err(Error::Patch(PatchError::Identity { .. }))
        ));
        assert!(matches!(
            merge_patch(info, &stored, &req(v1::PatchType::Unspecified, "{}"), false),
            Err(Error::Patch(PatchError::NoType))
        ));
    }

    #[test]
    fn a_new_pod_is_pending_unless_its_create_names_a_phase() {
        let mut no_status = pod("busybox", "");
        if let Some(v1::object::Object::Pod(p)) = &mut no_status.object {
            p.status = None;
        }
        let table = [
            ("no status", no_status, "Pending"),
            ("an empty phase", pod("busybox", ""), "Pending"),
            ("a phase given", pod("busybox", "Running"), "Running"),
        ];
        for (name, mut obj, want) in table {
            pending_on_create(&mut obj);
            let got = obj.as_pod().unwrap().status.as_ref().unwrap().phase.clone();
            assert_eq!(got, want, "{name}");
        }
        let mut job: Object = v1::Job::default().into();
        pending_on_create(&mut job);
        assert_eq!(job, v1::Job::default().into(), "only pods have a phase");
    }

    #[test]
    fn an_update_status_keeps_the_stored_spec() {
        let stored = pod("busybox", "Running");
        let next = merge_status(&stored, &pod("nginx", "Succeeded"));
        let p = next.as_pod().unwrap();
        assert_eq!(p.spec.as_ref().unwrap().containers[0].image, "busybox");
        assert_eq!(p.status.as_ref().unwrap().phase, "Succeeded");
    }

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    fn marked(plan: DeletePlan) -> v1::ObjectMeta {
        match plan {
            DeletePlan::Mark(o) => o.meta().cloned().unwrap(),
            other => panic!("expected a mark, got {other:?}"),
        }
    }

    fn bound_pod(node: &str, grace: Option<i64>, phase: &str) -> Object {
        let mut p = pod("busybox", phase);
        if let Some(v1::object::Object::Pod(pod)) = &mut p.object {
            let spec = pod.spec.as_mut().unwrap();
            spec.node_name = node.into();
            spec.termination_grace_period_seconds = grace;
        }
        p
    }

    #[test]
    fn deletes_follow_finalizers_and_propagation_policy() {
        let now = at("2026-01-01T00:00:00Z");
        let plain = pod("busybox", "");
        for policy in [None, Some(Propagation::Background)] {
            assert_eq!(
                plan_delete(&plain, policy, None, now),
                DeletePlan::DeleteNow
            );
        }
        let m = marked(plan_delete(
            &plain,
            Some(Propagation::Foreground),
            Some(30),
            now,
        ));
        assert_eq!(m.finalizers, vec![FOREGROUND_FINALIZER]);
        // An unbound pod has nothing to stop: no grace period, marked now.
        assert_eq!(m.deletion_timestamp, "2026-01-01T00:00:00Z");
        assert_eq!(m.deletion_grace_period_seconds, Some(0));
        let m = marked(plan_delete(&plain, Some(Propagation::Orphan), None, now));
        assert_eq!(m.finalizers, vec![ORPHAN_FINALIZER]);
        let mut held = pod("busybox", "");
        held.meta_mut().finalizers.push("x/y".into());
        let m = marked(plan_delete(&held, None, None, now));
        assert_eq!(m.finalizers, vec!["x/y"]);
        assert!(Propagation::parse("Sideways").is_err());
        assert!(matches!(Propagation::parse(""), Ok(None)));
    }

    #[test]
    fn a_second_delete_of_an_object_held_by_finalizers_may_change_its_gc_finalizer() {
        let now = at("2026-01-01T00:00:00Z");
        let later = at("2026-01-01T00:05:00Z");
        let mut first = pod("busybox", "");
        first.meta_mut().finalizers.push("x/y".into());
        let DeletePlan::Mark(first) = plan_delete(&first, None, None, now) else {
            panic!("held by x/y");
        };
        let table: [(Option<Propagation>, Option<Vec<&str>>); 4] = [
            (None, None),
            (Some(Propagation::Background), None),
            (
                Some(Propagation::Foreground),
                Some(vec!["x/y", FOREGROUND_FINALIZER]),
            ),
            (
                Some(Propagation::Orphan),
                Some(vec!["x/y", ORPHAN_FINALIZER]),
            ),
        ];
        for (policy, want) in table {
            match (plan_delete(&first, policy, None, later), want) {
                (DeletePlan::AlreadyMarked, None) => {}
                (DeletePlan::Mark(o), Some(want)) => {
                    let m = o.meta().unwrap();
                    assert_eq!(m.finalizers, want, "{policy:?}");
                    // The first delete's mark stands.
                    assert_eq!(m.deletion_timestamp, "2026-01-01T00:00:00Z");
                }
                (got, want) => panic!("{policy:?}: got {got:?}, want {want:?}"),
            }
        }
        // Orphan switches to Foreground, as in Kubernetes.
        let DeletePlan::Mark(orphaned) =
            plan_delete(&first, Some(Propagation::Orphan), None, later)
        else {
            panic!("orphan marks");
        };
        let m = marked(plan_delete(
            &orphaned,
            Some(Propagation::Foreground),
            None,
            later,
        ));
        assert_eq!(m.finalizers, vec!["x/y", FOREGROUND_FINALIZER]);
        // An explicit Background drops the GC finalizer; when it was the last, the object goes.
        let only_fg = marked(plan_delete(
            &pod("busybox", ""),
            Some(Propagation::Foreground),
            None,
            now,
        ));
        let mut only_fg_obj = pod("busybox", "");
        *only_fg_obj.meta_mut() = only_fg;
        assert_eq!(
            plan_delete(&only_fg_obj, Some(Propagation::Background), None, later),
            DeletePlan::DeleteNow
        );
        assert_eq!(
            plan_delete(&only_fg_obj, None, None, later),
            DeletePlan::AlreadyMarked
        );
    }

    #[test]
    fn pod_grace_periods_follow_the_kubernetes_pod_strategy() {
        let job: Object = v1::Job::default().into();
        let table = [
            // (pod, requested, want)
            (bound_pod("n1", None, "Running"), None, 30),
            (bound_pod("n1", Some(5), "Running"), None, 5),
            (bound_pod("n1", Some(5), "Running"), Some(12), 12),
            (bound_pod("n1", Some(5), "Running"), Some(0), 0),
            (bound_pod("n1", Some(5), "Running"), Some(-3), 1),
            (bound_pod("", Some(5), "Pending"), Some(12), 0),
            (bound_pod("n1", Some(5), "Succeeded"), None, 0),
            (bound_pod("n1", Some(5), "Failed"), Some(9), 0),
            (job, Some(30), 0),
        ];
        for (obj, requested, want) in table {
            assert_eq!(grace_period(&obj, requested), want, "{obj:?} {requested:?}");
        }
    }

    #[test]
    fn a_bound_pod_is_marked_for_its_grace_period_and_an_unbound_one_goes_at_once() {
        let now = at("2026-01-01T00:00:00Z");
        let running = bound_pod("n1", Some(20), "Running");
        let m = marked(plan_delete(&running, None, None, now));
        assert_eq!(m.deletion_timestamp, "2026-01-01T00:00:20Z");
        assert_eq!(m.deletion_grace_period_seconds, Some(20));
        assert!(m.finalizers.is_empty());
        assert_eq!(
            plan_delete(&running, None, Some(0), now),
            DeletePlan::DeleteNow
        );
        assert_eq!(
            plan_delete(&bound_pod("", Some(20), "Pending"), None, None, now),
            DeletePlan::DeleteNow
        );
    }

    #[test]
    fn a_pending_graceful_delete_may_only_be_shortened() {
        let now = at("2026-01-01T00:00:00Z");
        let later = at("2026-01-01T00:00:05Z");
        let mut obj = bound_pod("n1", Some(30), "Running");
        *obj.meta_mut() = marked(plan_delete(&obj, None, None, now));
        // Longer, equal or unset: nothing changes, not even the GC finalizers.
        for (policy, grace) in [
            (None, None),
            (None, Some(30)),
            (None, Some(60)),
            (Some(Propagation::Foreground), None),
        ] {
            assert_eq!(
                plan_delete(&obj, policy, grace, later),
                DeletePlan::AlreadyMarked,
                "{policy:?} {grace:?}"
            );
        }
        let m = marked(plan_delete(&obj, None, Some(10), later));
        assert_eq!(m.deletion_timestamp, "2026-01-01T00:00:10Z");
        assert_eq!(m.deletion_grace_period_seconds, Some(10));
        assert_eq!(
            plan_delete(&obj, None, Some(0), later),
            DeletePlan::DeleteNow
        );
        // With a finalizer left, grace 0 marks instead; the update removing it then deletes.
        let mut held = obj.clone();
        held.meta_mut().finalizers.push("x/y".into());
        let m = marked(plan_delete(&held, None, Some(0), later));
        assert_eq!(m.deletion_grace_period_seconds, Some(0));
        assert_eq!(m.deletion_timestamp, "2026-01-01T00:00:00Z");
    }

    #[test]
    fn a_marked_object_without_finalizers_is_finalized() {
        let mut o = pod("busybox", "");
        assert!(!finalized(&o));
        o.meta_mut().deletion_timestamp = "2026-01-01T00:00:00Z".into();
        assert!(finalized(&o));
        o.meta_mut().finalizers.push("f".into());
        assert!(!finalized(&o));
        // A pod in its grace period waits for its node agent even without finalizers.
        o.meta_mut().finalizers.clear();
        o.meta_mut().deletion_grace_period_seconds = Some(30);
        assert!(!finalized(&o));
        o.meta_mut().deletion_grace_period_seconds = Some(0);
        assert!(finalized(&o));
    }
}
