//! The HTTP shell: routes of the shell itself, the error type, assets and the middleware
//! stack. Business logic lives in the feature folders.

pub mod assets;
pub mod client_ip;
pub mod csrf;
pub mod error;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod ratelimit;
pub mod routes;

use axum::Router;

use crate::state::AppState;
use error::AppError;

pub fn router(state: AppState) -> Router {
    let metrics_on = state.config.metrics_bind.is_some();
    let dev_idp = state.dev_idp.clone();
    let limiter_state = state.clone();
    let cors_origins = state.config.api.cors_origins.clone();
    // Health probes (many a second, never limited, never a form) skip the rate-limit and
    // CSRF layers entirely rather than passing through them to be waved on.
    let mut probes = Router::new();
    let mut routes = Router::new();
    for route in routes::table() {
        if route.path.starts_with("/health") {
            probes = probes.route(route.path, route.handler);
        } else {
            routes = routes.route(route.path, route.handler);
        }
    }
    let probes = probes.with_state(state.clone());
    let mut routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    if let Some(idp) = dev_idp {
        routes = routes.merge(crate::devidp::router(idp));
    }
    // CSRF inside the limiter: it reuses the session the limiter looked up.
    routes = routes
        .layer(axum::middleware::from_fn_with_state(
            limiter_state.clone(),
            csrf::protect,
        ))
        .layer(axum::middleware::from_fn_with_state(
            limiter_state,
            ratelimit::enforce,
        ));
    if !cors_origins.is_empty() {
        routes = routes.layer(api_cors(cors_origins));
    }
    let mut routes = routes.merge(probes);
    if metrics_on {
        routes = routes.layer(axum::middleware::from_fn(metrics::record));
    }
    middleware::apply(routes)
}

/// CORS for the API only, and only for `GATEHOUSE_CORS_ORIGINS`: Bearer tokens, never
/// cookies, so no credentials are allowed. Preflights are answered before the limiter.
fn api_cors(origins: Vec<String>) -> tower_http::cors::CorsLayer {
    use axum::http::{Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| {
            parts.uri.path().starts_with("/api/")
                && origins.iter().any(|o| o.as_bytes() == origin.as_bytes())
        }))
        .allow_methods([Method::GET, Method::PUT])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static("x-ratelimit-limit"),
            header::HeaderName::from_static("x-ratelimit-remaining"),
            header::HeaderName::from_static("x-ratelimit-reset"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
