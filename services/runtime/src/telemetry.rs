//! Telemetry: a `tracing` subscriber for every service, OpenTelemetry OTLP export when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace context carried on every gRPC call.
//!
//! The OpenTelemetry layer is installed even without an exporter: spans then still get
//! trace and span ids, so a service that exports nothing still passes its callers' trace
//! context on to the services it calls, and one trace survives a hop through it.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::metadata::{KeyAndValueRef, MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The environment variable naming the OTLP/gRPC collector (`http://127.0.0.1:4317`).
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The annotation that keeps, on an object, the `traceparent` of the request that last
/// changed its spec: controllers reconcile it as part of that trace.
pub const TRACEPARENT_ANNOTATION: &str = "bosun.dev/traceparent";

/// How long [`Telemetry::shutdown`] waits for the exporter to flush.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one export may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// Setup failures.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(String),
}

/// Keeps the exporter alive; call [`Telemetry::shutdown`] before exit to flush spans.
pub struct Telemetry {
    /// `None` when this call did not install the global subscriber (a second `init` in one
    /// process, as in `bosun up` or tests): the first owner flushes.
    provider: Option<SdkTracerProvider>,
    exporting: bool,
}

impl Telemetry {
    /// Flushes and stops the exporter (well under a second when no collector listens).
    pub fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        if let Err(err) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            // Not worth failing an exit over: the spans are lost either way.
            tracing::debug!(%err, "telemetry shutdown did not complete");
        }
    }

    /// Whether spans are being exported (an OTLP endpoint was configured).
    pub fn is_exporting(&self) -> bool {
        self.exporting
    }
}

/// Set once the global subscriber is installed, so a second `init` is harmless.
static INSTALLED: OnceLock<()> = OnceLock::new();

/// The log filter services use when `RUST_LOG` is unset.
pub const SERVICE_DEFAULT_FILTER: &str = "info";

/// The log filter one-shot CLI commands use when `RUST_LOG` is unset: quiet unless
/// something is wrong.
pub const CLI_DEFAULT_FILTER: &str = "warn";

/// The level spans must reach to be exported (and to carry a trace context onward),
/// whatever the log filter says, unless `RUST_LOG` asks for something else.
const SPAN_DEFAULT_FILTER: &str = "info";

/// OpenTelemetry's own chatter ("Global tracer provider is set") is not worth a log line.
const QUIET_OTEL: &str = "opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn";

/// How to set telemetry up; [`TelemetryOptions::new`] gives the service defaults.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// The `service.name` resource of exported spans.
    pub service_name: String,
    /// The log filter (`EnvFilter` syntax) when `RUST_LOG` is unset: [`SERVICE_DEFAULT_FILTER`]
    /// for services, [`CLI_DEFAULT_FILTER`] for one-shot commands. Spans are recorded for
    /// export at `info` whatever this says, so a quiet CLI still exports its trace.
    pub default_filter: String,
    /// The OTLP/gRPC collector; `None`: no export (spans still get ids, see the module docs).
    pub endpoint: Option<String>,
}

impl TelemetryOptions {
    /// Service defaults: `info` logs, export to `OTEL_EXPORTER_OTLP_ENDPOINT` when it is set.
    pub fn new(service_name: &str) -> TelemetryOptions {
        TelemetryOptions {
            service_name: service_name.to_string(),
            default_filter: SERVICE_DEFAULT_FILTER.to_string(),
            endpoint: std::env::var(OTLP_ENDPOINT_ENV)
                .ok()
                .filter(|e| !e.trim().is_empty()),
        }
    }

    /// Sets the log filter used when `RUST_LOG` is unset.
    pub fn default_filter(mut self, filter: &str) -> TelemetryOptions {
        self.default_filter = filter.to_string();
        self
    }

    /// Sets the OTLP endpoint explicitly (`None`: no export).
    pub fn endpoint(mut self, endpoint: Option<&str>) -> TelemetryOptions {
        self.endpoint = endpoint.map(str::to_string);
        self
    }
}

/// The log filter directives: `RUST_LOG` when set, else `default` with OpenTelemetry's own
/// info chatter silenced.
pub fn log_directives(rust_log: Option<&str>, default: &str) -> String {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(user) => user.to_string(),
        None => format!("{default},{QUIET_OTEL}"),
    }
}

/// The directives for spans handed to OpenTelemetry: `RUST_LOG` when set, else `info`.
pub fn span_directives(rust_log: Option<&str>) -> String {
    log_directives(rust_log, SPAN_DEFAULT_FILTER)
}

/// Installs the global subscriber for `service_name` (`RUST_LOG` filters, default `info`),
/// with OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Call once, inside the tokio
/// runtime.
pub fn init(service_name: &str) -> Result<Telemetry, TelemetryError> {
    init_with(TelemetryOptions::new(service_name))
}

/// [`init`] with the OTLP endpoint given explicitly (`None`: no export).
pub fn init_with_endpoint(
    service_name: &str,
    endpoint: Option<&str>,
) -> Result<Telemetry, TelemetryError> {
    init_with(TelemetryOptions::new(service_name).endpoint(endpoint))
}

/// Installs the global subscriber as `options` say: logs to stderr filtered by `RUST_LOG` or
/// `options.default_filter`, and spans (at `info` unless `RUST_LOG` says otherwise) to
/// OpenTelemetry, exported when `options.endpoint` is set. A second call in one process
/// does nothing.
pub fn init_with(options: TelemetryOptions) -> Result<Telemetry, TelemetryError> {
    use tracing_subscriber::Layer as _;

    if INSTALLED.get().is_some() {
        return Ok(Telemetry {
            provider: None,
            exporting: false,
        });
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let TelemetryOptions {
        service_name,
        default_filter,
        endpoint,
    } = options;

    let resource = Resource::builder()
        .with_service_name(service_name.clone())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| TelemetryError::Exporter(format!("{endpoint}: {e}")))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer(service_name.clone());

    // Two filters: what is printed and what is traced differ, so a CLI that prints only
    // warnings still records (and propagates, and exports) its spans.
    let rust_log = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let logs = EnvFilter::try_new(log_directives(rust_log.as_deref(), &default_filter))
        .unwrap_or_else(|_| EnvFilter::new(log_directives(None, &default_filter)));
    let spans = EnvFilter::try_new(span_directives(rust_log.as_deref()))
        .unwrap_or_else(|_| EnvFilter::new(span_directives(None)));
    let installed = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(logs),
        )
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(spans),
        )
        .try_init();
    if installed.is_err() {
        // Someone else (a test harness) owns the global subscriber: keep theirs.
        let _ = provider.shutdown();
        return Ok(Telemetry {
            provider: None,
            exporting: false,
        });
    }
    let _ = INSTALLED.set(());
    opentelemetry::global::set_tracer_provider(provider.clone());
    tracing::debug!(
        service = %service_name,
        exporting = endpoint.is_some(),
        "telemetry ready"
    );
    Ok(Telemetry {
        provider: Some(provider),
        exporting: endpoint.is_some(),
    })
}

/// Writes `metadata` entries for the trace context propagator.
struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagator keys (`traceparent`, `tracestate`) are valid ASCII metadata keys; a
        // value that is not valid metadata is dropped rather than failing the call.
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Reads `metadata` entries for the trace context propagator.
struct MetadataExtractor<'a>(&'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|kv| match kv {
                KeyAndValueRef::Ascii(k, _) => Some(k.as_str()),
                KeyAndValueRef::Binary(_, _) => None,
            })
            .collect()
    }
}

/// Writes the current span's context into outgoing gRPC metadata (`traceparent`).
pub fn inject_context(metadata: &mut MetadataMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut MetadataInjector(metadata));
    });
}

/// Makes `span` a child of the trace context found in incoming gRPC metadata, if any.
pub fn set_parent_from_metadata(span: &tracing::Span, metadata: &MetadataMap) {
    if metadata.get("traceparent").is_none() {
        return;
    }
    let cx =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&MetadataExtractor(metadata)));
    // Fails only when the span is disabled or already started elsewhere: nothing to do.
    let _ = span.set_parent(cx);
}

/// The current span's W3C `traceparent`, if it belongs to a trace (to keep on an object so
/// the controllers acting on it later continue the same trace).
pub fn current_traceparent() -> Option<String> {
    let mut map = std::collections::HashMap::new();
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut map));
    map.remove("traceparent")
}

/// Makes `span` a child of a W3C `traceparent` string (as returned by
/// [`current_traceparent`]); an invalid string is ignored.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    let mut map = std::collections::HashMap::new();
    map.insert("traceparent".to_string(), traceparent.to_string());
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&map));
    let _ = span.set_parent(cx);
}

/// Links `span` to the current span: an OpenTelemetry *link*, not a parent. For a span that
/// starts a trace of its own on behalf of the current one (a CronJob's fire, made during a
/// reconcile of the CronJob), so the two traces can still be found from each other. Nothing
/// happens when the current span belongs to no trace.
pub fn link_to_current(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt as _;
    let cx = tracing::Span::current().context();
    span.add_link(cx.span().span_context().clone());
}

/// A tonic client interceptor that injects the current trace context into every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceInterceptor;

impl tonic::service::Interceptor for TraceInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_context(req.metadata_mut());
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_a_traceparent() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut md = MetadataMap::new();
        MetadataInjector(&mut md).set("traceparent", tp.to_string());
        assert_eq!(MetadataExtractor(&md).get("traceparent"), Some(tp));
        assert_eq!(MetadataExtractor(&md).keys(), vec!["traceparent"]);
    }

    #[test]
    fn rust_log_wins_else_the_default_with_opentelemetry_chatter_silenced() {
        assert_eq!(log_directives(Some("debug"), "warn"), "debug");
        assert_eq!(
            log_directives(Some("  "), "warn"),
            format!("warn,{QUIET_OTEL}")
        );
        assert_eq!(log_directives(None, "info"), format!("info,{QUIET_OTEL}"));
        // A quiet CLI still records info spans for export.
        assert_eq!(span_directives(None), format!("info,{QUIET_OTEL}"));
        assert_eq!(span_directives(Some("trace")), "trace");
        for d in [
            log_directives(None, CLI_DEFAULT_FILTER),
            span_directives(None),
        ] {
            assert!(EnvFilter::try_new(&d).is_ok(), "{d}");
        }
    }

    #[test]
    fn options_default_to_the_service_filter_and_can_be_made_quiet() {
        let o = TelemetryOptions::new("svc").endpoint(None);
        assert_eq!(o.default_filter, SERVICE_DEFAULT_FILTER);
        assert_eq!(o.endpoint, None);
        let o = o
            .default_filter(CLI_DEFAULT_FILTER)
            .endpoint(Some("http://c:4317"));
        assert_eq!(o.default_filter, "warn");
        assert_eq!(o.endpoint.as_deref(), Some("http://c:4317"));
    }

    #[test]
    fn injecting_outside_any_trace_writes_nothing() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let mut md = MetadataMap::new();
        inject_context(&mut md);
        assert!(md.get("traceparent").is_none());
    }
}
