//! One trace from the command line through the broker: the real `bosun` binary and the real
//! `bosun-broker` binary export to an in-process OTLP receiver, and the broker's handler span
//! is a descendant of the CLI's span in the same trace, each under its own service.name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_tests::{Bosun, Broker, Etcd, manifests_dir};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// One exported span.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

/// An OTLP/gRPC trace receiver that keeps every span.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("receiver lock");
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push(Span {
                        service: service.clone(),
                        name: s.name,
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent_span_id: s.parent_span_id,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves on `127.0.0.1:0`; returns its `http://` endpoint.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(self.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("receiver lock").clone()
    }
}

/// Whether `span` descends from `ancestor` through the parent links among `all`.
fn descends_from(span: &Span, ancestor: &Span, all: &[Span]) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..all.len() {
        if parent.is_empty() {
            return false;
        }
        if parent == ancestor.span_id {
            return true;
        }
        match all.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

/// Waits (10 s at most) until the CLI's root span for `command` and a broker span named
/// `handler` in its trace have both arrived; returns them.
async fn cli_and_broker_spans(receiver: &Receiver, handler: &str) -> (Span, Span, Vec<Span>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let all = receiver.spans();
        let found = all
            .iter()
            .filter(|s| s.service == "bosun-cli" && s.parent_span_id.is_empty())
            .find_map(|cli| {
                all.iter()
                    .find(|s| {
                        s.service == "bosun-broker"
                            && s.name == handler
                            && s.trace_id == cli.trace_id
                    })
                    .map(|b| (cli.clone(), b.clone()))
            });
        if let Some((cli, broker)) = found {
            return (cli, broker, all);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no CLI span with a broker {handler:?} span in its trace; got {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_cli_and_broker_spans_share_one_trace_with_the_broker_span_under_the_cli_span() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let etcd = Etcd::start().await;
    let envs = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let broker = Broker::spawn_process_with(&etcd, &[], &envs).await;
    let mut bosun = Bosun::new(&broker.url()).in_dir(manifests_dir());
    for (k, v) in envs {
        bosun = bosun.env(k, v);
    }

    let out = bosun.run(&["get", "pods"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let (cli, list, all) = cli_and_broker_spans(&receiver, "list").await;
    assert_eq!(cli.name, "bosun");
    assert_eq!(cli.trace_id, list.trace_id);
    assert!(
        descends_from(&list, &cli, &all),
        "the broker's list span descends from the CLI span: {all:#?}"
    );

    let out = bosun.run(&["apply", "-f", "examples/job-pi.yaml"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let (cli2, create, all) = cli_and_broker_spans(&receiver, "create").await;
    assert_ne!(cli2.trace_id, cli.trace_id, "a new command, a new trace");
    assert!(descends_from(&create, &cli2, &all), "{all:#?}");
}
