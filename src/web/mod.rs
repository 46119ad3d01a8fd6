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
        ))
        .merge(probes);
    if metrics_on {
        routes = routes.layer(axum::middleware::from_fn(metrics::record));
    }
    middleware::apply(routes)
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
