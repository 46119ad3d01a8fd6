//! Prometheus metrics: request counts and latencies per route template, served only on the
//! separate `GATEHOUSE_METRICS_BIND` listener, never on the public port.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder (metrics are global in the `metrics` crate), installed once.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics stays empty");
        }
        metrics::gauge!("gatehouse_start_time_seconds").set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        handle
    })
}

/// Counts every request by method, route template (bounded cardinality) and status.
pub async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "gatehouse_http_requests_total",
        "method" => method, "route" => route.clone(), "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "gatehouse_http_request_duration_seconds",
        "method" => method, "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// A method as a label: anyone may send any token as a method (`X1`, `X2`, …), and each new
/// label value is a new series kept forever, so only the standard methods are named.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The router of the metrics listener: `/metrics`, and readiness with its failures' details
/// (kept off the public port, where they would name internal hosts).
pub fn router(state: crate::state::AppState) -> Router {
    let handle = handle();
    Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
                    .into_response()
            }),
        )
        .route("/health/ready", get(super::health::ready_detailed))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::method_label;

    #[test]
    fn odd_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        for odd in ["X1", "PROPFIND", "get", "BREW"] {
            let m = Method::from_bytes(odd.as_bytes()).expect("a valid token");
            assert_eq!(method_label(&m), "other", "{odd}");
        }
    }
}
