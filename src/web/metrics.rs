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
    metrics::counter!(
        "gatehouse_http_requests_total",
        "method" => method, "route" => route.clone(), "status" => status_class(response.status())
    )
    .increment(1);
    metrics::histogram!(
        "gatehouse_http_request_duration_seconds",
        "method" => method, "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// A status as its class (`2xx` … `5xx`): what alerts are written against, with five series
/// per route rather than one per code.
fn status_class(status: axum::http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The gauges read when scraped: the database pool's connections and whether the session
/// store answers (within a second; a scrape must not hang on a dead store).
async fn refresh_gauges(state: &crate::state::AppState) {
    let (size, idle, max) = match state.store.db() {
        crate::store::Db::Postgres(p) => {
            (p.size(), p.num_idle(), p.options().get_max_connections())
        }
        crate::store::Db::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    metrics::gauge!("gatehouse_db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("gatehouse_db_pool_connections", "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!("gatehouse_db_pool_max_connections").set(f64::from(max));
    let backend = state.auth.sessions.backend_name();
    let within = std::time::Duration::from_secs(1);
    let up = match (&state.redis, backend) {
        (Some(redis), "redis") => {
            matches!(tokio::time::timeout(within, redis.ping()).await, Ok(Ok(())))
        }
        _ => matches!(
            tokio::time::timeout(within, crate::store::ping(&state.store.db())).await,
            Ok(Ok(()))
        ),
    };
    metrics::gauge!("gatehouse_session_store_up", "backend" => backend).set(if up {
        1.0
    } else {
        0.0
    });
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
            get(
                move |axum::extract::State(state): axum::extract::State<crate::state::AppState>| async move {
                    refresh_gauges(&state).await;
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        handle.render(),
                    )
                        .into_response()
                },
            ),
        )
        .route("/health/ready", get(super::health::ready_detailed))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::{method_label, status_class};

    #[test]
    fn statuses_are_counted_by_class() {
        use axum::http::StatusCode;
        for (code, class) in [
            (StatusCode::OK, "2xx"),
            (StatusCode::SEE_OTHER, "3xx"),
            (StatusCode::TOO_MANY_REQUESTS, "4xx"),
            (StatusCode::SERVICE_UNAVAILABLE, "5xx"),
            (StatusCode::SWITCHING_PROTOCOLS, "1xx"),
        ] {
            assert_eq!(status_class(code), class, "{code}");
        }
    }

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
