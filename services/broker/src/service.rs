//! The `Objects` gRPC service: thin handlers over [`Store`] and [`Hubs`], each in its own
//! span, each counted and timed.

use std::sync::Arc;
use std::time::Instant;

use bosun_api::selector::{FieldSelector, LabelSelector};
use bosun_api::v1::objects_server::Objects;
use bosun_api::v1::{
    BindRequest, CreateRequest, DeleteRequest, DeleteResponse, FinalizersRequest, GetRequest, Kind,
    ListRequest, ListResponse, ObjectResponse, PatchRequest, PatchResponse, TriggerCronJobRequest,
    TriggerCronJobResponse, UpdateRequest, WatchRequest,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::error::Error;
use crate::metrics::BrokerMetrics;
use crate::shards::ShardSet;
use crate::store::Store;
use crate::watch::{Filter, Hubs, WatchStream};
use bosun_api::shard::{FENCE_HEADER, Fence};

/// The service state shared by every request.
#[derive(Clone)]
pub struct ObjectService {
    pub(crate) store: Store,
    pub(crate) hubs: Arc<Hubs>,
    pub(crate) metrics: BrokerMetrics,
    /// `--unsafe-skip-fence-check` (tests only): `bosun-fence` is parsed but not checked.
    pub(crate) skip_fence_check: bool,
}

/// The `bosun-fence` of a request, if it carries one; a malformed one is refused.
pub fn fence_of(metadata: &tonic::metadata::MetadataMap) -> Result<Option<Fence>, Error> {
    let Some(value) = metadata.get(FENCE_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        Error::BadRequest(format!(
            "{FENCE_HEADER}: not ASCII; want <controller>/<shard>/<token>, e.g. job/17/4242"
        ))
    })?;
    text.parse().map(Some).map_err(Error::BadRequest)
}

impl ObjectService {
    /// The store to write through for a request with `metadata`: fenced by its
    /// `bosun-fence` (unless the broker runs with `--unsafe-skip-fence-check`).
    fn store_for(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Store, Error> {
        let fence = fence_of(metadata)?;
        Ok(if self.skip_fence_check || fence.is_none() {
            self.store.clone()
        } else {
            self.store.with_fence(fence)
        })
    }

    /// Times and counts one request, turning the broker's error into a status.
    async fn observe<T>(
        &self,
        method: &str,
        fut: impl Future<Output = Result<T, Error>>,
    ) -> Result<Response<T>, Status> {
        let started = Instant::now();
        let result = fut.await;
        if let Err(Error::Fenced { controller, .. }) = &result {
            self.metrics.fenced_write(controller.name());
        }
        let result = result.map(Response::new).map_err(Status::from);
        let code = result
            .as_ref()
            .map_or_else(|s| s.code(), |_| tonic::Code::Ok);
        if let Err(status) = &result {
            tracing::debug!(code = ?status.code(), message = status.message(), "request failed");
        }
        self.metrics
            .request(method, code, started.elapsed().as_secs_f64());
        result
    }
}

fn kind_of(raw: i32) -> Result<Kind, Error> {
    match Kind::try_from(raw) {
        Ok(Kind::Unspecified) | Err(_) => Err(Error::BadRequest(format!(
            "kind is required (got {raw}); one of Pod, Node, Job, CronJob, DaemonSet, ControllerRevision, Event"
        ))),
        Ok(k) => Ok(k),
    }
}

fn object_of(obj: Option<bosun_api::Object>) -> Result<bosun_api::Object, Error> {
    obj.ok_or_else(|| Error::BadRequest("the request carries no object".into()))
}

#[tonic::async_trait]
impl Objects for ObjectService {
    #[instrument(skip_all, fields(kind, name))]
    async fn create(
        &self,
        req: Request<CreateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        // The span is already in the caller's trace (lib.rs `request_span`).
        let incoming = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let traceparent = creation_traceparent(
            incoming.as_deref(),
            bosun_runtime::telemetry::current_traceparent(),
        );
        let store = self.store_for(req.metadata());
        let req = req.into_inner();
        self.observe("Create", async {
            let store = store?;
            let mut obj = object_of(req.object)?;
            record(&obj);
            stamp_traceparent(&mut obj, traceparent.as_deref());
            let object = store.create(obj, req.dry_run).await?;
            Ok(ObjectResponse {
                object: Some(object),
                warnings: vec![],
            })
        })
        .await
    }

    #[instrument(skip_all, fields(namespace = %req.get_ref().namespace, name = %req.get_ref().name))]
    async fn trigger_cron_job(
        &self,
        req: Request<TriggerCronJobRequest>,
    ) -> Result<Response<TriggerCronJobResponse>, Status> {
        // A triggered Job continues the caller's trace, as a created one does.
        let incoming = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let traceparent = creation_traceparent(
            incoming.as_deref(),
            bosun_runtime::telemetry::current_traceparent(),
        );
        let store = self.store_for(req.metadata());
        let req = req.into_inner();
        self.observe("TriggerCronJob", async {
            crate::trigger::trigger(&store?, &req, |obj| {
                stamp_traceparent(obj, traceparent.as_deref())
            })
            .await
        })
        .await
    }

    #[instrument(skip_all, fields(kind = req.get_ref().kind, namespace = %req.get_ref().namespace, name = %req.get_ref().name))]
    async fn get(&self, req: Request<GetRequest>) -> Result<Response<ObjectResponse>, Status> {
        let req = req.into_inner();
        self.observe("Get", async {
            let object = self
                .store
                .get(kind_of(req.kind)?, &req.namespace, &req.name)
                .await?;
            Ok(ObjectResponse {
                object: Some(object),
                warnings: vec![],
            })
        })
        .await
    }

    #[instrument(skip_all, fields(kind = req.get_ref().kind, namespace = %req.get_ref().namespace))]
    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let req = req.into_inner();
        self.observe("List", async {
            let labels = LabelSelector::parse(&req.label_selector)?;
            let fields = FieldSelector::parse(&req.field_selector)?;
            let shards = ShardSet::parse(req.shards.as_ref())?;
            let (items, revision) = self
                .store
                .list(
                    kind_of(req.kind)?,
                    &req.namespace,
                    &labels,
                    &fields,
                    shards.as_ref(),
                )
                .await?;
            Ok(ListResponse { items, revision })
        })
        .await
    }

    #[instrument(skip_all, fields(kind, name))]
    async fn update(
        &self,
        req: Request<UpdateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let store = self.store_for(req.metadata());
        let req = req.into_inner();
        self.observe("Update", async {
            let store = store?;
            let obj = object_of(req.object)?;
            record(&obj);
            let object = store.update(obj, req.dry_run).await?;
            Ok(ObjectResponse {
                object: Some(object),
                warnings: vec![],
            })
        })
        .await
    }

    #[instrument(skip_all, fields(kind, name))]
    async fn update_status(
        &self,
        req: Request<UpdateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let store = self.store_for(req.metadata());
        let req = req.into_inner();
        self.observe("UpdateStatus", async {
            let store = store?;
            let obj = object_of(req.object)?;
            record(&obj);
            let object = store.update_status(obj, req.dry_run).await?;
            Ok(ObjectResponse {
                object: Some(object),
                warnings: vec![],
            })
        })
        .await
    }

    #[instrument(skip_all, fields(namespace = %req.get_ref().namespace, name = %req.get_ref().name, node = %req.get_ref().node_name))]
    async fn bind(&self, req: Request<BindRequest>) -> Result<Response<ObjectResponse>, Status> {
        let store = self.store_for(req.metadata());
        let req = req.into_inner();
        self.observe("Bind", async {
            let object = store?.bind(&req).await?;
            Ok(ObjectResponse {
                object: Some(object),
                warnings: vec![],
            })
        })
        .await
    }

    #[instrument(skip_all, fields(kind = req.get_ref().kind, namespace = %req.get_ref().namespace, name = %req.get_ref().name))]
    async fn update_finalizers(
        &self,
        req: Request<FinalizersRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let store = self.store_for(req.metadata());
        let req = req.into_inner();
        self.observe("UpdateFinalizers", async {
            let store = store?;
            kind_of(req.kind)?;
            let object = store.update_finalizers(&req).await?;
            Ok(ObjectResponse {
                object: Some(object),
                warnings: vec![],
            })
        })
        .await
    }

    #[instrument(skip_all, fields(kind = req.get_ref().kind, namespace = %req.get_ref().namespace, name = %req.get_ref().name, r#type = req.get_ref().r#type))]
    async fn patch(&self, req: Request<PatchRequest>) -> Result<Response<PatchResponse>, Status> {
        let store = self.store_for(req.metadata());
        let req = req.into_inner();
        self.observe("Patch", async {
            let store = store?;
            kind_of(req.kind)?;
            let (object, changed) = store.patch(&req).await?;
            Ok(PatchResponse {
                object: Some(object),
                changed,
            })
        })
        .await
    }

    #[instrument(skip_all, fields(kind = req.get_ref().kind, namespace = %req.get_ref().namespace, name = %req.get_ref().name))]
    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let store = self.store_for(req.metadata());
        let req = req.into_inner();
        self.observe("Delete", async {
            let done = store?
                .delete(
                    kind_of(req.kind)?,
                    &req.namespace,
                    &req.name,
                    req.preconditions.as_ref(),
                    &req.propagation_policy,
                    req.grace_period_seconds,
                )
                .await?;
            Ok(DeleteResponse {
                object: Some(done.object),
                deleted: done.deleted,
            })
        })
        .await
    }

    type WatchStream = WatchStream;

    #[instrument(skip_all, fields(kind = req.get_ref().kind, namespace = %req.get_ref().namespace, from = req.get_ref().resource_version))]
    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let req = req.into_inner();
        self.observe("Watch", async {
            let kind = kind_of(req.kind)?;
            let fields = FieldSelector::parse(&req.field_selector)?;
            fields.check_kind(kind)?;
            let filter = Filter {
                namespace: req.namespace,
                labels: LabelSelector::parse(&req.label_selector)?,
                fields,
                shards: ShardSet::parse(req.shards.as_ref())?,
            };
            self.hubs
                .subscribe(kind, req.resource_version, filter, req.allow_bookmarks)
                .await
        })
        .await
    }
}

/// The trace context to keep on an object being created: none unless the request carried
/// one; then the broker's own create span when it belongs to that trace (so what follows
/// hangs under the create), else the caller's context as it came.
pub fn creation_traceparent(incoming: Option<&str>, own: Option<String>) -> Option<String> {
    let incoming = incoming.filter(|tp| trace_id(tp).is_some())?;
    match own {
        Some(own) if trace_id(&own) == trace_id(incoming) => Some(own),
        _ => Some(incoming.to_string()),
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if well formed.
fn trace_id(traceparent: &str) -> Option<&str> {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    match parts.as_slice() {
        [v, t, s, f] if hex(v, 2) && hex(t, 32) && hex(s, 16) && hex(f, 2) => Some(t),
        _ => None,
    }
}

/// Writes the creating request's trace context onto a new object as the annotation
/// [`bosun_runtime::telemetry::TRACEPARENT_ANNOTATION`] (`bosun.dev/traceparent`), so the
/// controllers that act on it later continue the trace of, say, `bosun apply`. Only creates
/// are stamped (updates keep whatever annotations they send): the trace that made an object
/// is the one its reconciles belong to. Without a trace context the object is left alone.
pub fn stamp_traceparent(obj: &mut bosun_api::Object, traceparent: Option<&str>) {
    if let Some(tp) = traceparent {
        obj.meta_mut().annotations.insert(
            bosun_runtime::telemetry::TRACEPARENT_ANNOTATION.to_string(),
            tp.to_string(),
        );
    }
}

/// Records the object's kind and name on the request span.
fn record(obj: &bosun_api::Object) {
    let span = tracing::Span::current();
    span.record("kind", obj.info().map_or("", |i| i.name));
    span.record("name", obj.key().as_str());
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_runtime::telemetry::TRACEPARENT_ANNOTATION;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const BROKER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01";
    const OTHER: &str = "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1111111111111111-01";

    #[test]
    fn the_kept_trace_context_is_the_brokers_span_in_the_callers_trace() {
        let table = [
            (None, Some(BROKER), None),
            (Some("garbage"), Some(BROKER), None),
            (Some(CALLER), None, Some(CALLER)),
            (Some(CALLER), Some(BROKER), Some(BROKER)),
            (Some(CALLER), Some(OTHER), Some(CALLER)),
        ];
        for (incoming, own, want) in table {
            assert_eq!(
                creation_traceparent(incoming, own.map(str::to_string)).as_deref(),
                want,
                "{incoming:?} {own:?}"
            );
        }
    }

    #[test]
    fn a_created_object_carries_the_traceparent_annotation_only_with_a_trace() {
        let mut obj: bosun_api::Object = bosun_api::v1::Pod::default().into();
        stamp_traceparent(&mut obj, None);
        assert!(obj.meta().is_none_or(|m| m.annotations.is_empty()));
        obj.meta_mut()
            .annotations
            .insert(TRACEPARENT_ANNOTATION.into(), OTHER.into());
        stamp_traceparent(&mut obj, Some(CALLER));
        assert_eq!(
            obj.meta()
                .unwrap()
                .annotations
                .get(TRACEPARENT_ANNOTATION)
                .map(String::as_str),
            Some(CALLER)
        );
    }
}
