//! The shell's part of the request pipeline (`crate::pipeline::router` assembles the whole):
//! the shared outer layers every request goes through, the tag layer that opens each route
//! group, the fallbacks, and the security headers with their per-request CSP nonce.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::client_ip;
use super::error::{AppError, ErrorReport, render_errors};
use super::routes::{MetaByPath, RouteMeta, unrouted};
use crate::config::TrustedProxies;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest a request may take before it is answered with 503 and dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared outer layers, around the route groups `crate::pipeline::router` assembles.
/// `ServiceBuilder`'s first layer is the outermost: read the list in the order a request
/// passes through it.
pub fn shared(app: Router) -> Router {
    app.layer(
        ServiceBuilder::new()
            // 1. Every request gets an id (or keeps a plain one from the proxy), echoed back.
            .map_request(drop_unplain_request_id)
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            // 2. One span per request, carrying the id, so every log line names its request.
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request| {
                        let id = req
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!(
                            "request",
                            method = %req.method(),
                            path = %req.uri().path(),
                            request_id = %id,
                        )
                    })
                    .on_request(())
                    .on_response(log_response),
            )
            // 3. Security headers on every response, errors included, with this request's
            //    CSP nonce when a page used one.
            .layer(from_fn(security_headers))
            // 4. Errors from anything below are rendered (HTML or JSON) and logged once.
            .layer(from_fn(render_errors))
            // 5. A panic becomes a rendered 500 instead of a dropped connection.
            .layer(CatchPanicLayer::custom(|_| {
                AppError::Internal(anyhow::anyhow!("handler panicked")).into_response()
            }))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                REQUEST_TIMEOUT,
            )),
    )
}

/// The longest client-supplied request id that is kept.
const REQUEST_ID_MAX: usize = 64;

/// A client's `X-Request-Id` goes into log lines and audit rows as it is, so only one short
/// value of plain characters is kept; anything else (markup, quotes, spaces, a second
/// header, a flood of bytes) is dropped here and the next layer makes a fresh id.
fn drop_unplain_request_id(mut request: Request) -> Request {
    let headers = request.headers_mut();
    let mut values = headers.get_all(REQUEST_ID).iter();
    let keep = match (values.next(), values.next()) {
        (None, _) => return request,
        (Some(one), None) => is_plain_request_id(one.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        headers.remove(REQUEST_ID);
    }
    request
}

fn is_plain_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= REQUEST_ID_MAX
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What the first layer of a group needs.
#[derive(Clone)]
pub struct Tagging {
    pub meta: Arc<MetaByPath>,
    pub trusted: Arc<TrustedProxies>,
}

/// First layer of a group: the route's metadata from the table (found by the path pattern
/// the router matched) and the client's address, as request extensions for the layers after
/// it; the route's format on an error answer, for the renderer. (One layer for both: each
/// layer costs a boxed call per request, and these two are always together.)
pub async fn tag(State(tagging): State<Tagging>, mut request: Request, next: Next) -> Response {
    let found = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| tagging.meta.get(p.as_str()).copied())
        .unwrap_or_else(|| unrouted(request.uri().path()));
    let ip = client_ip::of_request(&request, &tagging.trusted);
    let extensions = request.extensions_mut();
    extensions.insert::<RouteMeta>(found);
    extensions.insert(ip);
    let mut response = next.run(request).await;
    if response.extensions().get::<ErrorReport>().is_some() {
        response.extensions_mut().insert(found.format);
    }
    response
}

/// After a write through this instance (any method but the safe ones), the data versions are
/// read again before the answer leaves, so the next request of whoever wrote sees the change
/// even if the database's announcement of it has not arrived yet. Writes are rare: one small
/// query each.
pub async fn read_own_writes(
    State(state): State<crate::state::AppState>,
    request: Request,
    next: Next,
) -> Response {
    let writes = !request.method().is_safe();
    let response = next.run(request).await;
    if writes
        && state.data_versions.is_live()
        && let Err(error) = state.data_versions.refresh(&state.store.db()).await
    {
        tracing::warn!(%error, "cannot read the data versions after a write");
    }
    response
}

pub async fn not_found() -> AppError {
    AppError::not_found()
}

pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// Marks a response whose request is not worth an INFO line (load-balancer health probes,
/// many per second); it is still logged at DEBUG.
#[derive(Clone, Copy)]
pub struct QuietLog;

fn log_response(response: &Response, latency: Duration, _span: &Span) {
    let status = response.status().as_u16();
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    if response.extensions().get::<QuietLog>().is_some() {
        tracing::debug!(status, latency_us, "response");
    } else {
        tracing::info!(status, latency_us, "response");
    }
}

tokio::task_local! {
    /// This request's CSP nonce, made on first use (`Layout::new` asks for it).
    static CSP_NONCE: Arc<OnceLock<String>>;
    /// This request's path, for the header to mark the page the user is on.
    static REQUEST_PATH: Arc<str>;
}

/// The current request's path; empty outside a request.
pub fn request_path() -> Arc<str> {
    REQUEST_PATH
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::from(""))
}

/// The current request's CSP nonce; empty outside a request.
pub fn csp_nonce() -> String {
    CSP_NONCE
        .try_with(|cell| {
            cell.get_or_init(|| {
                use base64::Engine;
                let bytes: [u8; 16] = rand::random();
                base64::engine::general_purpose::STANDARD.encode(bytes)
            })
            .clone()
        })
        .unwrap_or_default()
}

/// The content security policy, with `$sources` added to the script and style sources.
macro_rules! csp {
    ($sources:literal) => {
        concat!(
            "default-src 'none'; script-src 'self'",
            $sources,
            "; style-src 'self'",
            $sources,
            "; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'; object-src 'none'"
        )
    };
}

async fn security_headers(request: Request, next: Next) -> Response {
    // The nonce is made only when something rendered asked for it: a probe's JSON (many a
    // second) costs none, and its policy allows no inline anything.
    let cell = Arc::new(OnceLock::new());
    let path: Arc<str> = Arc::from(request.uri().path());
    let mut response = CSP_NONCE
        .scope(
            Arc::clone(&cell),
            REQUEST_PATH.scope(path, next.run(request)),
        )
        .await;
    let headers = response.headers_mut();
    // No 'unsafe-inline' anywhere: anything inline would need this request's nonce. Without
    // one (JSON, probes, most answers) the policy is a constant, not built per request.
    let csp = match cell.get() {
        None => Some(HeaderValue::from_static(csp!(""))),
        Some(nonce) => HeaderValue::from_str(&format!(csp!(" 'nonce-{0}'"), nonce)).ok(),
    };
    if let Some(value) = csp {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(value);
    }
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // same-origin keeps URLs (and codes in them) from other sites while letting browsers
    // send a real `Origin` on our own forms; the sign-in callback sets no-referrer itself.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(
        headers,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains; preload",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        for ok in [
            "a",
            "req-42.A_b",
            &"x".repeat(64),
            "0f8fad5b-d9cb-469f-a165-70867728950e",
        ] {
            assert!(is_plain_request_id(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a/b",
            "<b>",
            "a\tb",
            "id\"x",
            "é",
        ] {
            assert!(!is_plain_request_id(bad.as_bytes()), "{bad}");
        }
    }
}
