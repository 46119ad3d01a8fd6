//! Traces by OpenTelemetry, exported over OTLP when the standard `OTEL_*` variables ask for it.
//!
//! Spans come from `tracing`: a server span per request (named by its route template), and a
//! client span per Redis command, database query and outbound HTTP call, all under target
//! [`TARGET`] so that only they reach the exporter and none of them reach the log. With no
//! endpoint configured nothing here is installed and [`enabled`] is false: the hot path then
//! makes none of these spans.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `tracing` target of every span meant for the exporter.
pub const TARGET: &str = "gatehouse::otel";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are being exported (spans are worth making).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The samplers the SDK knows by name (`OTEL_TRACES_SAMPLER`).
const SAMPLERS: &[&str] = &[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

/// An installed exporter; [`Telemetry::shutdown`] sends what is still queued.
pub struct Telemetry {
    provider: SdkTracerProvider,
    pub tracer: SdkTracer,
}

#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct TelemetryError {
    pub var: &'static str,
    pub message: String,
}

fn invalid(var: &'static str, message: impl Into<String>) -> TelemetryError {
    TelemetryError {
        var,
        message: message.into(),
    }
}

impl Telemetry {
    /// From the standard variables: `None` without an OTLP endpoint (or with
    /// `OTEL_SDK_DISABLED=true`). The exporter reads the endpoint, headers, timeout and
    /// compression itself, the SDK the sampler and the resource; what they would quietly
    /// ignore or fall back from (an unknown protocol or sampler) is refused here, by name.
    /// Needs a Tokio runtime (the gRPC exporter's channel).
    pub fn from_env(env: &HashMap<String, String>) -> Result<Option<Telemetry>, TelemetryError> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if get("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
            && get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        {
            return Ok(None);
        }
        let (protocol_var, protocol) = match get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
            Some(p) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", p),
            None => (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                get("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or("http/protobuf"),
            ),
        };
        let exporter = match protocol {
            "http/protobuf" => SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build(),
            "grpc" => SpanExporter::builder().with_tonic().build(),
            other => {
                return Err(invalid(
                    protocol_var,
                    format!("'{other}' is not a supported protocol: http/protobuf or grpc"),
                ));
            }
        }
        .map_err(|e| invalid("OTEL_EXPORTER_OTLP_ENDPOINT", e.to_string()))?;
        if let Some(sampler) = get("OTEL_TRACES_SAMPLER")
            && !SAMPLERS.contains(&sampler)
        {
            return Err(invalid(
                "OTEL_TRACES_SAMPLER",
                format!("'{sampler}' is none of {}", SAMPLERS.join(", ")),
            ));
        }
        if let Some(arg) = get("OTEL_TRACES_SAMPLER_ARG")
            && !arg.parse::<f64>().is_ok_and(|r| (0.0..=1.0).contains(&r))
        {
            return Err(invalid(
                "OTEL_TRACES_SAMPLER_ARG",
                format!("'{arg}' is not a ratio between 0 and 1"),
            ));
        }
        let named = get("OTEL_SERVICE_NAME").is_some()
            || get("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="));
        let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ));
        if !named {
            resource = resource.with_service_name("gatehouse");
        }
        // The SDK's default configuration reads OTEL_TRACES_SAMPLER(_ARG) and the span limits.
        let provider = SdkTracerProvider::builder()
            .with_resource(resource.build())
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("gatehouse");
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        ENABLED.store(true, Ordering::Relaxed);
        Ok(Some(Telemetry { provider, tracer }))
    }

    /// Sends the spans still queued (waits up to a few seconds for the collector).
    pub async fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        let provider = self.provider;
        // The batch processor's flush blocks its caller: off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = provider.shutdown() {
                eprintln!("gatehouse: traces not all sent at exit: {e}");
            }
        })
        .await;
    }
}

/// The trace id of a span, when it belongs to a trace.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Continues the caller's trace (W3C `traceparent`/`tracestate`) on a server span; call it
/// before the span is entered.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    // Fails only for a span that is filtered out or already started: then it has no parent.
    let _ = span.set_parent(parent);
}

/// Adds this span's `traceparent` to an outgoing request.
pub fn inject(span: &tracing::Span, headers: &mut axum::http::HeaderMap) {
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers))
    });
}

/// Sends an outgoing request; while traces are exported, inside a client span whose
/// `traceparent` goes with it. The span names the method and host, and keeps the path but
/// never the query string (a token or an email can ride there).
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    if !enabled() {
        return request.send().await;
    }
    let (client, request) = request.build_split();
    let mut request = request?;
    let host = request.url().host_str().unwrap_or("?").to_string();
    let span = tracing::info_span!(
        target: TARGET,
        "http",
        otel.name = %format_args!("{} {host}", request.method()),
        otel.kind = "client",
        http.request.method = %request.method(),
        server.address = %host,
        url.path = request.url().path(),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    inject(&span, request.headers_mut());
    let result = client.execute(request).instrument(span.clone()).await;
    match &result {
        Ok(response) => {
            span.record(
                "http.response.status_code",
                i64::from(response.status().as_u16()),
            );
            if response.status().is_server_error() {
                span.record("otel.status_code", "error");
            }
        }
        Err(_) => {
            span.record("otel.status_code", "error");
        }
    }
    result
}
