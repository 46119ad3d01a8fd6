//! The whole request pipeline, readable top to bottom in `apply`: the shared outer layers
//! every request goes through, then three route groups, each with only the layers it needs.
//! The route table (`routes.rs`) says which group a route is in and what the group's layers
//! do with it (who may reach it, its rate-limit rule, HTML or JSON).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::error::{AppError, render_errors};
use super::routes::{Access, MetaByPath, RouteMeta, table, unrouted};
use super::{audit, client_ip, csrf, metrics, ratelimit};
use crate::auth::layers as auth;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest a request may take before it is answered with 503 and dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The application: every route of the table behind its group's layers, behind the shared
/// ones. In axum a later `.layer` wraps the earlier ones, so each stack below is written with
/// `ServiceBuilder`, whose first layer is the outermost: read each list top to bottom in the
/// order a request passes through it.
pub fn apply(state: AppState) -> Router {
    let routes = table();
    let meta: Arc<MetaByPath> = Arc::new(routes.iter().map(|r| (r.path, r.meta)).collect());
    let (mut probes, mut pages, mut api) = (Router::new(), Router::new(), Router::new());
    for route in routes {
        match route.meta.access {
            Access::Probe => probes = probes.route(route.path, route.handler),
            Access::Bearer | Access::BearerPublic => api = api.route(route.path, route.handler),
            Access::Public | Access::SignedIn | Access::Admin => {
                pages = pages.route(route.path, route.handler);
            }
        }
    }

    // Probes and static files (many a second, never a form, never anyone's): nothing else.
    let probes = probes.with_state(state.clone());

    // Pages and the cookie-authenticated JSON routes. Unrouted addresses come here too, so a
    // 404 is counted, and shows the signed-in header.
    let mut pages = pages
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    if let Some(idp) = state.dev_idp.clone() {
        // The built-in provider's pages are public, and no session cookie authenticates
        // them (the relying party's server calls its token endpoint): no CSRF layer to
        // pass, so they join the group below the layers that would look at the session.
        pages = pages.merge(crate::devidp::router(idp));
    }
    let pages = pages.layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(Arc::clone(&meta), tag))
            .layer(from_fn_with_state(state.clone(), client_ip::layer))
            .layer(from_fn_with_state(state.clone(), auth::session))
            .layer(from_fn_with_state(state.clone(), auth::guard))
            .layer(from_fn_with_state(state.clone(), csrf::protect))
            .layer(from_fn_with_state(state.clone(), ratelimit::enforce))
            .layer(from_fn(audit::record)),
    );

    // The Bearer API: never a cookie, so no session and no CSRF. CORS answers a browser's
    // preflight (which carries no token) before anything else. The limiter counts before
    // the guard refuses, so a flood of bad tokens is braked per client address.
    let cors = crate::api::cors(&state.config.api.cors_origins);
    let api = api
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .option_layer(cors)
                .layer(from_fn_with_state(meta, tag))
                .layer(from_fn_with_state(state.clone(), client_ip::layer))
                .layer(from_fn_with_state(state.clone(), auth::bearer))
                .layer(from_fn_with_state(state.clone(), ratelimit::enforce))
                .layer(from_fn_with_state(state.clone(), auth::guard))
                .layer(from_fn(audit::record)),
        );

    let mut app = Router::new().merge(probes).merge(pages).merge(api);
    if state.config.metrics_bind.is_some() {
        app = app.layer(from_fn(metrics::record));
    }
    app.layer(
        ServiceBuilder::new()
            // 1. Every request gets an id (or keeps a valid one from the proxy), echoed back.
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
            // 3. Security headers on every response, errors included; a fresh CSP nonce per
            //    request, which pages put on their stylesheet (and any script) tags.
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

/// First layer of a group: the route's metadata from the table (found by the path pattern
/// the router matched), as a request extension for the layers after it, and its format on
/// the response for the error renderer.
async fn tag(State(meta): State<Arc<MetaByPath>>, mut request: Request, next: Next) -> Response {
    let found = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| meta.get(p.as_str()).copied())
        .unwrap_or_else(|| unrouted(request.uri().path()));
    request.extensions_mut().insert::<RouteMeta>(found);
    let mut response = next.run(request).await;
    response.extensions_mut().insert(found.format);
    response
}

async fn not_found() -> AppError {
    AppError::not_found()
}

async fn method_not_allowed() -> AppError {
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

async fn security_headers(request: Request, next: Next) -> Response {
    // The nonce is made only when something rendered asked for it: a probe's JSON (many a
    // second) costs none, and its policy allows no inline anything.
    let cell = Arc::new(OnceLock::new());
    let mut response = CSP_NONCE.scope(Arc::clone(&cell), next.run(request)).await;
    let sources = cell
        .get()
        .map_or_else(String::new, |nonce| format!(" 'nonce-{nonce}'"));
    let headers = response.headers_mut();
    // No 'unsafe-inline' anywhere: anything inline would need this request's nonce.
    let csp = format!(
        "default-src 'none'; script-src 'self'{sources}; style-src 'self'{sources}; \
         img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
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
