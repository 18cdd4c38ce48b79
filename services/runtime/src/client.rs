//! The broker client: a tonic channel whose every call carries the caller's trace context,
//! and [`Broker`], typed helpers over it that speak [`Object`]s and a [`ClientError`] which
//! tells "not found", "already exists", "conflict" and "expired, relist" apart.

use std::time::Duration;

use bosun_api::v1::objects_client::ObjectsClient;
use bosun_api::v1::{
    CreateRequest, DeleteRequest, EventType, GetRequest, ListRequest, Preconditions, UpdateRequest,
    WatchRequest, WatchResponse,
};
use bosun_api::{Kind, Object};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::balance::{Balanced, Discovery, Member, Target};
use crate::sharded::{ShardSet, current_fence};
use crate::telemetry::TraceInterceptor;
use bosun_api::shard::FENCE_HEADER;

/// The client type every service uses to reach the broker.
pub type BrokerClient = ObjectsClient<InterceptedService<Channel, TraceInterceptor>>;

/// How long establishing the connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default deadline of one unary call (watches have none).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Large lists (thousands of pods) exceed tonic's 4 MiB default.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;
/// Reads (get, list) are retried this many times when the broker is unavailable.
const READ_ATTEMPTS: u32 = 3;

/// Everything a broker call can fail with. The variants a controller branches on are the
/// Kubernetes ones: [`ClientError::NotFound`], [`ClientError::AlreadyExists`],
/// [`ClientError::Conflict`] (stale resourceVersion: re-read and retry),
/// [`ClientError::Expired`] (watch revision too old: relist).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid broker address {addr:?}: {source}")]
    Address {
        addr: String,
        source: tonic::codegen::http::uri::InvalidUri,
    },
    #[error(
        "cannot reach the broker at {addr}: {source}; is it running (`bosun up`), and is --server / BOSUN_SERVER right?"
    )]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
    /// A broker address with a host name that does not resolve.
    #[error(
        "cannot resolve the broker address {addr}: {source}; is the host name right (--server / BOSUN_SERVER)?"
    )]
    Resolve {
        addr: String,
        source: std::io::Error,
    },
    /// A broker address with a host name none of whose addresses accepts connections.
    #[error(
        "cannot reach the broker at {addr}: none of {tried:?} accepts connections; is it running, and is --server / BOSUN_SERVER right?"
    )]
    Unreachable {
        addr: String,
        tried: Vec<std::net::SocketAddr>,
    },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The object changed since it was read (ABORTED / FAILED_PRECONDITION).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The watch revision is older than the broker's window (OUT_OF_RANGE "expired").
    #[error("expired: {0}")]
    Expired(String),
    /// The request was rejected as invalid (INVALID_ARGUMENT).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The broker (or etcd behind it) is unreachable or timed out: retry later.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// Any other gRPC failure.
    #[error("broker call failed: {0}")]
    Rpc(tonic::Status),
    /// The broker answered with bytes that are not an `Object`.
    #[error("cannot decode an object from the broker: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The broker answered without the object it should have sent.
    #[error("the broker's answer carried no object")]
    MissingObject,
}

impl ClientError {
    /// A NOT_FOUND answer.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::NotFound(_))
    }
    /// An ALREADY_EXISTS answer.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, ClientError::AlreadyExists(_))
    }
    /// A resourceVersion conflict: re-read, re-decide, retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ClientError::Conflict(_))
    }
    /// The watch must relist.
    pub fn is_expired(&self) -> bool {
        matches!(self, ClientError::Expired(_))
    }
    /// Worth retrying the same call later unchanged.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClientError::Unavailable(_)
                | ClientError::Connect { .. }
                | ClientError::Unreachable { .. }
        )
    }
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        let msg = status.message().to_string();
        match status.code() {
            Code::NotFound => ClientError::NotFound(msg),
            Code::AlreadyExists => ClientError::AlreadyExists(msg),
            Code::Aborted | Code::FailedPrecondition => ClientError::Conflict(msg),
            Code::OutOfRange if msg.starts_with("expired") => ClientError::Expired(msg),
            Code::InvalidArgument => ClientError::Invalid(msg),
            Code::Unavailable | Code::DeadlineExceeded => ClientError::Unavailable(msg),
            _ => ClientError::Rpc(status),
        }
    }
}

pub(crate) fn endpoint(addr: &str) -> Result<Endpoint, ClientError> {
    let endpoint =
        Channel::from_shared(addr.to_string()).map_err(|source| ClientError::Address {
            addr: addr.to_string(),
            source,
        })?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true))
}

fn wrap(channel: Channel) -> BrokerClient {
    ObjectsClient::with_interceptor(channel, TraceInterceptor)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// Connects to the broker at `addr` (`http://127.0.0.1:7440`); fails within a few seconds
/// with a clear error when nothing answers. An address whose host is a name
/// (`http://broker:7440`) is resolved to all its addresses and the calls are balanced over
/// those that answer, kept fresh as brokers come and go (see [`crate::balance`]).
pub async fn connect(addr: &str) -> Result<BrokerClient, ClientError> {
    connect_with(addr, &Discovery::default()).await
}

/// [`connect`], resolving names with `discovery`.
pub async fn connect_with(addr: &str, discovery: &Discovery) -> Result<BrokerClient, ClientError> {
    let single = endpoint(addr)?;
    let Some(balanced) = balanced(addr, single.uri(), discovery) else {
        let channel = single
            .connect()
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        return Ok(wrap(channel));
    };
    let resolved = balanced
        .resolve()
        .await
        .map_err(|source| ClientError::Resolve {
            addr: addr.to_string(),
            source,
        })?;
    if resolved.is_empty() {
        return Err(ClientError::Resolve {
            addr: addr.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        });
    }
    let up = crate::balance::probe(&resolved, CONNECT_TIMEOUT).await;
    if up.is_empty() {
        return Err(ClientError::Unreachable {
            addr: addr.to_string(),
            tried: resolved,
        });
    }
    let (channel, _refresh) = balanced.start(up.into_iter().map(Member::Addr).collect());
    Ok(wrap(channel))
}

/// A client that connects on first use (and reconnects after failures): services start
/// before the broker is up this way. Fails only on a malformed address. A name is resolved
/// and balanced as in [`connect`].
pub fn connect_lazy(addr: &str) -> Result<BrokerClient, ClientError> {
    connect_lazy_with(addr, &Discovery::default())
}

/// [`connect_lazy`], resolving names with `discovery`.
pub fn connect_lazy_with(addr: &str, discovery: &Discovery) -> Result<BrokerClient, ClientError> {
    let single = endpoint(addr)?;
    match balanced(addr, single.uri(), discovery) {
        None => Ok(wrap(single.connect_lazy())),
        Some(balanced) => Ok(wrap(balanced.start(Default::default()).0)),
    }
}

/// The balancing of `addr`, when its host is a name.
fn balanced(
    addr: &str,
    uri: &tonic::codegen::http::Uri,
    discovery: &Discovery,
) -> Option<Balanced> {
    let Target::Name { scheme, host, port } = crate::balance::target(uri) else {
        return None;
    };
    Some(Balanced {
        addr: addr.to_string(),
        scheme,
        host,
        port,
        discovery: discovery.clone(),
        endpoint: std::sync::Arc::new(|uri: &str| endpoint(uri).ok()),
    })
}

/// A list's items and the revision it was read at (watch from there to miss nothing).
#[derive(Debug, Clone, Default)]
pub struct ObjectList {
    pub items: Vec<Object>,
    pub revision: i64,
}

/// Which objects a list or watch covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Empty: every namespace.
    pub namespace: String,
    /// Kubernetes label selector syntax (`app=x,tier!=db`).
    pub labels: String,
    /// Field selector (`spec.nodeName=node-1`).
    pub fields: String,
    /// Only the objects of these shards (plus the unsharded ones); `None`: no shard filter.
    /// Set by a sharded informer from the shards its replica holds.
    pub shards: Option<ShardSet>,
}

impl Selector {
    /// Everything of a kind.
    pub fn all() -> Selector {
        Selector::default()
    }
    /// One namespace.
    pub fn namespace(ns: impl Into<String>) -> Selector {
        Selector {
            namespace: ns.into(),
            ..Default::default()
        }
    }
    /// With a label selector.
    pub fn labels(mut self, labels: impl Into<String>) -> Selector {
        self.labels = labels.into();
        self
    }
    /// With a field selector.
    pub fn fields(mut self, fields: impl Into<String>) -> Selector {
        self.fields = fields.into();
        self
    }
    /// With a shard filter (`None`: none).
    pub fn shards(mut self, shards: Option<ShardSet>) -> Selector {
        self.shards = shards;
        self
    }
    fn shard_filter(&self) -> Option<bosun_api::v1::ShardFilter> {
        self.shards.as_ref().map(ShardSet::to_proto)
    }
}

/// How to delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Delete only if the object still has this uid.
    pub uid: Option<String>,
    /// Delete only if the object is still at this resourceVersion.
    pub resource_version: Option<String>,
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation_policy: Option<String>,
    pub grace_period_seconds: Option<i64>,
}

/// A delete's outcome: the object as last stored, and whether it is gone (`false`: it is
/// marked for deletion and waits for its finalizers).
#[derive(Debug, Clone)]
pub struct Deleted {
    pub object: Object,
    pub deleted: bool,
}

/// The object a [`Broker::patch`] changes, and how.
#[derive(Debug, Clone, Copy)]
pub struct PatchTarget<'a> {
    pub kind: Kind,
    /// Empty for cluster-scoped kinds (`default` for a namespaced kind).
    pub namespace: &'a str,
    pub name: &'a str,
    /// Merge (RFC 7386) or Json (RFC 6902).
    pub patch_type: bosun_api::v1::PatchType,
    /// Patch the status subresource (everything else is kept).
    pub status: bool,
}

/// What [`Broker::trigger_cron_job`] answered: the run's Job, and whether this call made it
/// (false: the key was used before and this is the Job that trigger made).
#[derive(Debug, Clone)]
pub struct Triggered {
    pub job: bosun_api::v1::Job,
    pub created: bool,
}

/// A patch's outcome: the object as stored after it, and whether it changed anything
/// (`false`: nothing was written, kubectl's "(no change)").
#[derive(Debug, Clone)]
pub struct Patched {
    pub object: Object,
    pub changed: bool,
}

/// One decoded watch event.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    Added(Object),
    Modified(Object),
    /// The object's last stored state.
    Deleted(Object),
    /// Nothing changed for this watch up to `revision`: resume from here.
    Bookmark(i64),
}

impl WatchEvent {
    /// The revision this event brings the watcher to.
    pub fn revision(&self) -> i64 {
        match self {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                o.resource_version()
            }
            WatchEvent::Bookmark(rev) => *rev,
        }
    }

    /// Decodes a wire event (its `object` bytes are an `Object` as stored); `None` for an
    /// event type this client does not know (skipped, like Kubernetes clients do).
    pub fn decode(ev: &bosun_api::v1::WatchEvent) -> Result<Option<WatchEvent>, ClientError> {
        let obj = || Object::decode_stored(&ev.object, ev.revision);
        Ok(Some(match EventType::try_from(ev.r#type) {
            Ok(EventType::Added) => WatchEvent::Added(obj()?),
            Ok(EventType::Modified) => WatchEvent::Modified(obj()?),
            Ok(EventType::Deleted) => WatchEvent::Deleted(obj()?),
            Ok(EventType::Bookmark) => WatchEvent::Bookmark(ev.revision),
            Ok(EventType::Unspecified) | Err(_) => return Ok(None),
        }))
    }
}

/// A running watch, yielding events one at a time.
pub struct WatchStream {
    inner: tonic::Streaming<WatchResponse>,
    /// The rest of the last response, still encoded: each event is decoded when it is
    /// taken, so a batch of hundreds of events never sits decoded in memory at once (a
    /// decoded object is several times its encoded size).
    pending: std::vec::IntoIter<bosun_api::v1::WatchEvent>,
}

impl WatchStream {
    /// The next event; `Ok(None)` when the broker ended the stream (resume from the last
    /// revision seen), `Err(Expired)` when the caller must relist.
    pub async fn next(&mut self) -> Result<Option<WatchEvent>, ClientError> {
        loop {
            for ev in self.pending.by_ref() {
                if let Some(ev) = WatchEvent::decode(&ev)? {
                    return Ok(Some(ev));
                }
            }
            let Some(resp) = self.inner.message().await? else {
                return Ok(None);
            };
            self.pending = resp.events.into_iter();
        }
    }
}

/// Typed access to the broker's object API. Cheap to clone; share one per service.
#[derive(Clone)]
pub struct Broker {
    client: BrokerClient,
    timeout: Duration,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

fn object_of(resp: bosun_api::v1::ObjectResponse) -> Result<Object, ClientError> {
    resp.object.ok_or(ClientError::MissingObject)
}

impl Broker {
    /// Wraps a connected client.
    pub fn new(client: BrokerClient) -> Broker {
        Broker {
            client,
            timeout: CALL_TIMEOUT,
        }
    }

    /// Connects now (see [`connect`]).
    pub async fn connect(addr: &str) -> Result<Broker, ClientError> {
        Ok(Broker::new(connect(addr).await?))
    }

    /// Connects on first use (see [`connect_lazy`]).
    pub fn connect_lazy(addr: &str) -> Result<Broker, ClientError> {
        Ok(Broker::new(connect_lazy(addr)?))
    }

    /// Sets the deadline of each unary call.
    pub fn with_timeout(mut self, timeout: Duration) -> Broker {
        self.timeout = timeout;
        self
    }

    /// The raw gRPC client, for options the helpers do not cover (dry runs, warnings).
    pub fn raw(&self) -> BrokerClient {
        self.client.clone()
    }

    /// A unary request with the call deadline and, inside a fenced scope
    /// ([`crate::sharded::fenced`]), the `bosun-fence` metadata the broker checks the write
    /// against.
    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.timeout);
        if let Some(fence) = current_fence() {
            // `<controller>/<shard>/<token>` is always ASCII.
            if let Ok(value) = fence.to_string().parse() {
                req.metadata_mut().insert(FENCE_HEADER, value);
            }
        }
        req
    }

    /// Runs a read, retrying a few times (50 ms, 100 ms) while the broker is unavailable.
    async fn read<T, F, Fut>(&self, mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(BrokerClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call(self.client.clone()).await {
                Err(err) if err.is_transient() && attempt < READ_ATTEMPTS => {
                    tracing::debug!(%err, attempt, "broker read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50 << (attempt - 1))).await;
                }
                other => return other,
            }
        }
    }

    /// Reads one object (`namespace` empty for cluster-scoped kinds).
    pub async fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Object, ClientError> {
        self.read(|mut c| {
            let req = self.request(GetRequest {
                kind: kind as i32,
                namespace: namespace.to_string(),
                name: name.to_string(),
            });
            async move { object_of(c.get(req).await?.into_inner()) }
        })
        .await
    }

    /// Reads one object, `None` when it does not exist.
    pub async fn get_opt(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Object>, ClientError> {
        match self.get(kind, namespace, name).await {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists the objects of `kind` that `selector` picks, with the revision read at.
    pub async fn list(&self, kind: Kind, selector: &Selector) -> Result<ObjectList, ClientError> {
        self.read(|mut c| {
            let req = self.request(ListRequest {
                shards: selector.shard_filter(),
                kind: kind as i32,
                namespace: selector.namespace.clone(),
                label_selector: selector.labels.clone(),
                field_selector: selector.fields.clone(),
            });
            async move {
                let resp = c.list(req).await?.into_inner();
                Ok(ObjectList {
                    items: resp.items,
                    revision: resp.revision,
                })
            }
        })
        .await
    }

    /// Creates `object`; returns it as stored (uid, resourceVersion, defaults filled).
    pub async fn create(&self, object: Object) -> Result<Object, ClientError> {
        let req = self.request(CreateRequest {
            object: Some(object),
            dry_run: false,
        });
        object_of(self.client.clone().create(req).await?.into_inner())
    }

    /// Starts a run of the CronJob `namespace/name` now (the broker's `TriggerCronJob`): a
    /// Job from its jobTemplate, once per `idempotency_key`. Retried while the broker is
    /// unavailable, which is safe because the key makes it idempotent: a trigger that
    /// reached the broker before the connection broke is found, not repeated
    /// (`created: false`). `dry_run`: build and validate the Job, write nothing.
    pub async fn trigger_cron_job(
        &self,
        namespace: &str,
        name: &str,
        idempotency_key: &str,
        dry_run: bool,
    ) -> Result<Triggered, ClientError> {
        self.read(|mut c| {
            let req = self.request(bosun_api::v1::TriggerCronJobRequest {
                namespace: namespace.to_string(),
                name: name.to_string(),
                idempotency_key: idempotency_key.to_string(),
                dry_run,
            });
            async move {
                let resp = c.trigger_cron_job(req).await?.into_inner();
                Ok(Triggered {
                    job: resp.job.ok_or(ClientError::MissingObject)?,
                    created: resp.created,
                })
            }
        })
        .await
    }

    /// Replaces `object`'s spec and metadata (status is kept); conditional on its
    /// resourceVersion when set ([`ClientError::Conflict`] if stale).
    pub async fn update(&self, object: Object) -> Result<Object, ClientError> {
        let req = self.request(UpdateRequest {
            object: Some(object),
            dry_run: false,
        });
        object_of(self.client.clone().update(req).await?.into_inner())
    }

    /// Replaces `object`'s status only; conditional on its resourceVersion when set.
    pub async fn update_status(&self, object: Object) -> Result<Object, ClientError> {
        let req = self.request(UpdateRequest {
            object: Some(object),
            dry_run: false,
        });
        object_of(self.client.clone().update_status(req).await?.into_inner())
    }

    /// Binds the pod `namespace/name` (uid `uid`, if given) to `node`: the scheduler's write.
    /// A pod already bound elsewhere, or a different pod by that name, is a `Conflict`.
    pub async fn bind(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        node: &str,
    ) -> Result<Object, ClientError> {
        let req = self.request(bosun_api::v1::BindRequest {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            node_name: node.to_string(),
            resource_version: String::new(),
        });
        object_of(self.client.clone().bind(req).await?.into_inner())
    }

    /// Adds `add` to and removes `remove` from the finalizers of `namespace/name`, changing
    /// nothing else (no read, no object sent). A missing object, or with `uid` set a
    /// different object by that name, is `NotFound`.
    pub async fn update_finalizers(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        uid: &str,
        add: &[&str],
        remove: &[&str],
    ) -> Result<Object, ClientError> {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let req = self.request(bosun_api::v1::FinalizersRequest {
            kind: kind as i32,
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            add: owned(add),
            remove: owned(remove),
        });
        object_of(
            self.client
                .clone()
                .update_finalizers(req)
                .await?
                .into_inner(),
        )
    }

    /// Patches `namespace/name` in the broker with a JSON merge patch (RFC 7386) or a JSON
    /// patch (RFC 6902), as `kubectl patch --type merge|json`. The broker applies it to the
    /// object as stored, re-applying it when it loses a race, so no concurrent write is
    /// lost; a `metadata.resourceVersion` in the patch is a precondition (`Conflict` when
    /// stale). `status` patches the status subresource instead of the object.
    pub async fn patch(
        &self,
        target: PatchTarget<'_>,
        patch: &str,
    ) -> Result<Patched, ClientError> {
        let req = self.request(bosun_api::v1::PatchRequest {
            kind: target.kind as i32,
            namespace: target.namespace.to_string(),
            name: target.name.to_string(),
            r#type: target.patch_type as i32,
            patch: patch.to_string(),
            subresource: if target.status {
                "status".into()
            } else {
                String::new()
            },
            dry_run: false,
        });
        let resp = self.client.clone().patch(req).await?.into_inner();
        Ok(Patched {
            object: resp.object.ok_or(ClientError::MissingObject)?,
            changed: resp.changed,
        })
    }

    /// Deletes an object.
    pub async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        options: DeleteOptions,
    ) -> Result<Deleted, ClientError> {
        let preconditions =
            (options.uid.is_some() || options.resource_version.is_some()).then(|| Preconditions {
                uid: options.uid.unwrap_or_default(),
                resource_version: options.resource_version.unwrap_or_default(),
            });
        let req = self.request(DeleteRequest {
            kind: kind as i32,
            namespace: namespace.to_string(),
            name: name.to_string(),
            preconditions,
            propagation_policy: options.propagation_policy.unwrap_or_default(),
            grace_period_seconds: options.grace_period_seconds,
        });
        let resp = self.client.clone().delete(req).await?.into_inner();
        Ok(Deleted {
            object: resp.object.ok_or(ClientError::MissingObject)?,
            deleted: resp.deleted,
        })
    }

    /// Watches `kind` from just after `revision` (0: from now), with bookmarks.
    pub async fn watch(
        &self,
        kind: Kind,
        selector: &Selector,
        revision: i64,
    ) -> Result<WatchStream, ClientError> {
        let req = WatchRequest {
            shards: selector.shard_filter(),
            kind: kind as i32,
            namespace: selector.namespace.clone(),
            label_selector: selector.labels.clone(),
            field_selector: selector.fields.clone(),
            resource_version: revision,
            allow_bookmarks: true,
        };
        let inner = self.client.clone().watch(req).await?.into_inner();
        Ok(WatchStream {
            inner,
            pending: Vec::new().into_iter(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::v1;
    use prost::Message as _;

    #[test]
    fn grpc_codes_map_to_the_errors_controllers_branch_on() {
        type Check = fn(&ClientError) -> bool;
        let cases: &[(Code, &str, Check)] = &[
            (Code::NotFound, "pods x", ClientError::is_not_found),
            (
                Code::AlreadyExists,
                "pods x",
                ClientError::is_already_exists,
            ),
            (Code::Aborted, "stale", ClientError::is_conflict),
            (Code::FailedPrecondition, "uid", ClientError::is_conflict),
            (Code::OutOfRange, "expired: relist", ClientError::is_expired),
            (Code::Unavailable, "down", ClientError::is_transient),
            (Code::DeadlineExceeded, "slow", ClientError::is_transient),
            (Code::InvalidArgument, "bad", |e| {
                matches!(e, ClientError::Invalid(_))
            }),
            (Code::OutOfRange, "something else", |e| {
                matches!(e, ClientError::Rpc(_))
            }),
            (Code::Internal, "boom", |e| matches!(e, ClientError::Rpc(_))),
        ];
        for (code, msg, check) in cases {
            let err = ClientError::from(tonic::Status::new(*code, *msg));
            assert!(check(&err), "{code:?} {msg:?} became {err:?}");
        }
    }

    #[test]
    fn watch_events_decode_with_their_revision() {
        let pod: Object = v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: "a".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into();
        let wire = |t: EventType, rev: i64, obj: &[u8]| v1::WatchEvent {
            r#type: t as i32,
            revision: rev,
            object: bytes::Bytes::copy_from_slice(obj),
        };
        let bytes = pod.encode_to_vec();
        let added = WatchEvent::decode(&wire(EventType::Added, 7, &bytes))
            .unwrap()
            .unwrap();
        assert_eq!(added.revision(), 7);
        assert!(matches!(&added, WatchEvent::Added(o) if o.key() == "default/a"));
        let bm = WatchEvent::decode(&wire(EventType::Bookmark, 9, &[])).unwrap();
        assert_eq!(bm, Some(WatchEvent::Bookmark(9)));
        let unknown = WatchEvent::decode(&wire(EventType::Unspecified, 9, &[])).unwrap();
        assert_eq!(unknown, None);
    }

    #[tokio::test]
    async fn a_call_inside_a_fenced_scope_carries_the_fence_and_one_outside_does_not() {
        use crate::sharded::fenced_sync;
        use bosun_api::shard::{Controller, Fence};
        let port = crate::ports::free_loopback_addr().unwrap().port();
        let broker = Broker::connect_lazy(&format!("http://127.0.0.1:{port}")).unwrap();
        let fence = Fence {
            controller: Controller::DaemonSet,
            shard: 3,
            token: 77,
        };
        let header = |req: tonic::Request<()>| {
            req.metadata()
                .get(FENCE_HEADER)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            header(fenced_sync(Some(fence), || broker.request(()))),
            Some("daemonset/3/77".to_string())
        );
        assert_eq!(header(broker.request(())), None);
        assert_eq!(header(fenced_sync(None, || broker.request(()))), None);
    }

    #[tokio::test]
    async fn connecting_to_nothing_fails_with_a_clear_error() {
        let port = crate::ports::free_loopback_addr().unwrap().port();
        let err = connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot reach the broker"), "{err}");
        assert!(matches!(
            connect("not a uri").await,
            Err(ClientError::Address { .. })
        ));
        assert!(connect_lazy(&format!("http://127.0.0.1:{port}")).is_ok());
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_or_answers_nowhere_fails_with_what_was_tried() {
        let closed = crate::ports::free_loopback_addr().unwrap();
        let resolver: crate::balance::Resolver =
            std::sync::Arc::new(move |host: &str, _port: u16| {
                let answer = match host {
                    "down.test" => Ok(vec![closed]),
                    _ => Err(std::io::Error::other(format!("no such host {host}"))),
                };
                Box::pin(async move { answer })
            });
        let discovery = Discovery {
            resolver,
            ..Discovery::default()
        };
        let err = connect_with("http://nowhere.test:7440", &discovery)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Resolve { .. }), "{err}");
        assert!(
            err.to_string().contains("no such host nowhere.test"),
            "{err}"
        );
        let err = connect_with("http://down.test:7440", &discovery)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains(&closed.to_string()), "{err}");
        assert!(err.is_transient());
        // A lazy client does not resolve up front.
        assert!(connect_lazy_with("http://nowhere.test:7440", &discovery).is_ok());
    }
}
