//! Trace context crosses a gRPC hop and spans reach an OTLP collector: a client span, its
//! context injected by `TraceInterceptor`, and a server span parented from the metadata are
//! exported with one trace id to an in-process OTLP receiver.
//!
//! Its own test binary because it installs the process-global subscriber.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_runtime::telemetry::{self, TraceInterceptor};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::service::Interceptor as _;

/// Every exported span as (service name, span name, trace id, span id, parent span id).
type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>, Vec<u8>, Vec<u8>)>>>;

#[derive(Clone, Default)]
struct Collector {
    seen: Seen,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.seen.lock().expect("collector lock");
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    seen.push((
                        service.clone(),
                        s.name,
                        s.trace_id,
                        s.span_id,
                        s.parent_span_id,
                    ));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_span_parented_from_grpc_metadata_joins_the_client_trace() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    let seen = collector.seen.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let tel = telemetry::init_with_endpoint("telemetry-test", Some(&format!("http://{addr}")))
        .expect("telemetry init");
    assert!(tel.is_exporting());

    // The "client": a span whose context the interceptor writes into the request.
    let request = {
        let span = tracing::info_span!("client_call");
        let _guard = span.enter();
        TraceInterceptor
            .call(tonic::Request::new(()))
            .expect("interceptor")
    };
    let traceparent = request
        .metadata()
        .get("traceparent")
        .expect("traceparent injected")
        .to_str()
        .unwrap()
        .to_string();
    assert!(traceparent.starts_with("00-"), "{traceparent}");

    // The "server": a span parented from the incoming metadata.
    {
        let span = tracing::info_span!("server_handle");
        telemetry::set_parent_from_metadata(&span, request.metadata());
        let _guard = span.enter();
        assert_eq!(
            telemetry::current_traceparent().map(|t| t[3..35].to_string()),
            Some(traceparent[3..35].to_string()),
            "the server span continues the client's trace"
        );
    }

    // Shutdown flushes the batch exporter.
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || tel.shutdown())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));

    let seen = seen.lock().unwrap().clone();
    let client = seen
        .iter()
        .find(|s| s.1 == "client_call")
        .expect("client span exported");
    let server = seen
        .iter()
        .find(|s| s.1 == "server_handle")
        .expect("server span exported");
    assert_eq!(client.2, server.2, "one trace id");
    assert_eq!(
        server.4, client.3,
        "server span's parent is the client span"
    );
    assert!(
        client.0.contains("telemetry-test"),
        "service name resource: {}",
        client.0
    );
}
